"""Two-stage training: the learning-rate schedule, run configuration checks, two replicas.

Resumption after SIGKILL is tested end to end in test_end_to_end.py (every weight
restored: conftest.assert_checkpoint_restores_every_weight).
"""
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tf_partfash.training import StagedSchedule

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_staged_schedule_golden_values():
  # Stage 1: 10 steps at 0.1 with 2 warm-up steps; stage 2: 4 steps cosine from 0.01.
  schedule = StagedSchedule(10, 4, 0.1, 0.01, schedule='cosine', warmup_steps=2)
  got = [float(schedule(s)) for s in (0, 1, 5, 10, 11, 12)]
  # step 0: 0.1 * cos-factor (1 + cos(0)) / 2 = 1 * warm-up 1/2 -> 0.05
  # step 1: 0.1 * (1 + cos(pi/10)) / 2 = 0.097553, warm-up 2/2
  # step 5: 0.1 * (1 + cos(pi/2)) / 2 = 0.05
  # step 10: stage 2 step 0: 0.01 * 1 * 1/2 = 0.005; step 11: 0.01 * (1 + cos(pi/4)) / 2 = 0.0085355
  # step 12: 0.01 * (1 + cos(pi/2)) / 2 = 0.005
  np.testing.assert_allclose(got, [0.05, 0.0975528, 0.05, 0.005, 0.0085355, 0.005], rtol=1e-5)


def test_rerun_with_another_model_config_is_refused(tiny_synthetic, tmp_path):
  from tf_partfash.config import ModelConfig, TrainConfig
  from tf_partfash.workdir import RunConfig, save_run_config
  run = RunConfig('partnet', ModelConfig(), TrainConfig(), {'data_dir': None})
  save_run_config(str(tmp_path), run)
  other = RunConfig('partnet', ModelConfig(signature_size=64), TrainConfig(log_every_secs=1.0),
                    {'data_dir': None})
  with pytest.raises(ValueError, match='signature_size: stored 256, requested 64'):
    save_run_config(str(tmp_path), other)
  # Logging cadence alone may change between a run and its resumption.
  save_run_config(str(tmp_path), RunConfig('partnet', ModelConfig(), TrainConfig(log_every_secs=1.0),
                                           {'data_dir': None}))


# Two replicas against one on the same global batches, built of two identical halves so that
# each replica's batch (BatchNorm statistics, mean loss) is the whole batch's: the summed replica
# gradients must equal the one-replica gradient. A small learning rate without momentum keeps the
# runs in the linear regime, where rounding differences between the two stay small; the update of
# all trainable weights is compared (a gradient scaled by the replica count would be 1/2 or 2x).
_TWO_REPLICAS = r'''
import dataclasses, sys
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from tf_partfash.config import ModelConfig, TrainConfig
from tf_partfash.inputs.sampling import BalancedBatchSampler
from tf_partfash.methods import method
from tf_partfash.models.partnet import build_partnet
from tf_partfash.prepared import prepare
from tf_partfash.training import Trainer

class Twice:
  def __init__(self, labels, batch_size, seed):
    self.half = BalancedBatchSampler(labels, batch_size // 2, seed)
    self.batches_per_epoch = self.half.batches_per_epoch
  def epoch(self, epoch):
    half = self.half.epoch(epoch)
    return np.concatenate([half, half], axis=1)

data = prepare(sys.argv[1], sys.argv[2], 0, 1, False, 0, 0)
train = data.examples.subset(data.rows('train'))
model = ModelConfig(image_size=147, hidden_size=16, signature_size=8, backbone_norm='batch',
                    dropout=0.0)
config = TrainConfig(stage1_epochs=1, stage2_epochs=0, batch_size=48, flip=False,
                     stage1_learning_rate=1e-5, momentum=0.0, weight_decay=0.0, log_every_secs=0)
twice = dataclasses.replace(method('partnet'), samplers=('__main__:Twice',) * 2)
def build():
  keras.utils.set_random_seed(0)
  return build_partnet(model)
initial = build()
trainable = [k for k, w in enumerate(initial.weights) if w.trainable]
flat = lambda net: np.concatenate([net.weights[k].numpy().ravel() for k in trainable])
start, update = flat(initial), {}
for name, strategy in (('one', tf.distribute.get_strategy()),
                       ('two', tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1']))):
  trainer = Trainer(build, model, config, train, f'{sys.argv[2]}/{name}', strategy, twice)
  trainer.run()
  update[name] = flat(trainer.model) - start
  print(name, 'replicas', strategy.num_replicas_in_sync, 'steps', trainer.total_steps)
size = np.linalg.norm(update['one'])
print('ratio', np.linalg.norm(update['two']) / size,
      'apart', np.linalg.norm(update['two'] - update['one']) / size)
'''


def test_two_replicas_train_as_one_on_the_same_global_batch(tiny_synthetic, tmp_path):
  data = tmp_path / 'data'
  shutil.copytree(tiny_synthetic, data)
  result = subprocess.run([sys.executable, '-c', _TWO_REPLICAS, str(data), str(tmp_path / 'run')],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.splitlines()
  assert re.fullmatch(r'one replicas 1 steps ([1-9]\d*)', lines[0])
  assert lines[1] == lines[0].replace('one replicas 1', 'two replicas 2')
  ratio, apart = map(float, re.fullmatch(r'ratio (\S+) apart (\S+)', lines[2]).groups())
  assert abs(ratio - 1) < 0.01 and apart < 0.05, lines[2]


def test_a_short_run_trains_the_first_batches_of_each_epoch(tiny_method_run):
  import tensorflow as tf

  from tf_partfash.methods import method
  from tf_partfash.training import Trainer
  from tf_partfash.workdir import build_model
  # Two epochs of stage 1 only (one traced step function), one batch each.
  run, workdir, data = tiny_method_run('classic', steps_per_epoch=1, stage1_epochs=2,
                                       stage2_epochs=0)
  trainer = Trainer(lambda: build_model(run), run.model, run.train,
                    data.examples.subset(data.rows('train')), workdir, tf.distribute.get_strategy(),
                    method(run.method))
  assert trainer.samplers[1].batches_per_epoch > 1 and trainer.steps_per_epoch == {1: 1, 2: 1}
  assert (trainer.stage1_steps, trainer.total_steps) == (2, 2)
  trainer.run()
  assert int(trainer.optimizer.iterations.numpy()) == 2
