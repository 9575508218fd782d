"""Two-stage training: the learning-rate schedule, run configuration checks, short runs (two
replicas and two workers: test_multi_worker.py).

Resumption after SIGKILL is tested end to end in test_end_to_end.py: every weight restored
(conftest.assert_checkpoint_restores_every_weight), and the resumed run ends bitwise where an
uninterrupted one ends.
"""
import numpy as np
import pytest

from tf_partfash.training.trainer import StagedSchedule

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
  from tf_partfash.config import DataConfig, ModelConfig, TrainConfig
  from tf_partfash.storage.workdir import RunConfig, save_run_config
  run = RunConfig('partnet', ModelConfig(), TrainConfig(), DataConfig())
  save_run_config(str(tmp_path), run)
  other = RunConfig('partnet', ModelConfig(signature_size=64), TrainConfig(log_every_secs=1.0),
                    DataConfig())
  with pytest.raises(ValueError, match='signature_size: stored 256, requested 64'):
    save_run_config(str(tmp_path), other)
  # Logging cadence alone may change between a run and its resumption.
  save_run_config(str(tmp_path), RunConfig('partnet', ModelConfig(),
                                           TrainConfig(log_every_secs=1.0), DataConfig()))


def test_a_short_run_trains_the_first_batches_of_each_epoch(tiny_method_run):
  import tensorflow as tf

  from tf_partfash.methods import method
  from tf_partfash.models.saved import build_model
  from tf_partfash.training.trainer import Trainer
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

