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


_TWO_REPLICAS = r'''
import sys, tensorflow as tf
cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tf_partfash.config import ModelConfig, TrainConfig
from tf_partfash.run import train_and_report
from tf_partfash.workdir import RunConfig
strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
run = RunConfig('partnet', ModelConfig(image_size=147, hidden_size=16, signature_size=8,
                                       backbone_norm='batch'),
                TrainConfig(stage1_epochs=1, stage2_epochs=1, batch_size=24, log_every_secs=0),
                {'data_dir': sys.argv[1], 'split_seed': 0, 'synthetic_images': 0,
                 'synthetic_seed': 0, 'alexnet_weights': None})
train_and_report(run, sys.argv[2], strategy=strategy)
print('replicas', strategy.num_replicas_in_sync)
'''


def test_training_runs_under_mirrored_strategy_on_two_cpus(tiny_synthetic, tmp_path):
  data = tmp_path / 'data'
  shutil.copytree(tiny_synthetic, data)
  result = subprocess.run([sys.executable, '-c', _TWO_REPLICAS, str(data), str(tmp_path / 'run')],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'replicas 2' in result.stdout
  assert re.search(r'stage 2 epoch 1 \| step (\d+)/\1 ', result.stderr)
