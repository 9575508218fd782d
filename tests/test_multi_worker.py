"""--strategy=multi_worker: the cluster role from TF_CONFIG, each worker's share of a batch, and
two local worker processes (loopback only) training as one worker does on the same global batch.
"""
import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

from tf_partfash.inputs.pipeline import batch_shard
from tf_partfash.training.distribution import cluster_role

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tf_config(cluster, task_type, index):
  return {'TF_CONFIG': json.dumps({'cluster': cluster, 'task': {'type': task_type,
                                                                 'index': index}})}


def test_the_chief_is_the_chief_task_else_worker_0():
  workers = {'worker': ['a:1', 'b:1']}
  assert cluster_role(_tf_config(workers, 'worker', 0)) == (True, 0)
  assert cluster_role(_tf_config(workers, 'worker', 1)) == (False, 1)
  with_chief = {'chief': ['c:1'], **workers}
  assert cluster_role(_tf_config(with_chief, 'chief', 0)) == (True, 0)
  assert cluster_role(_tf_config(with_chief, 'worker', 0)) == (False, 0)


def test_a_missing_or_malformed_tf_config_says_what_is_wrong():
  with pytest.raises(ValueError, match='needs TF_CONFIG'):
    cluster_role({})
  with pytest.raises(ValueError, match=r"TF_CONFIG='\{\"cluster\": 1\}' is not a cluster"):
    cluster_role({'TF_CONFIG': '{"cluster": 1}'})
  with pytest.raises(ValueError, match='is not a cluster'):
    cluster_role({'TF_CONFIG': 'worker 0'})
  with pytest.raises(ValueError, match=r"task index 2 is not one of the 2 worker address\(es\)"):
    cluster_role(_tf_config({'worker': ['a:1', 'b:1']}, 'worker', 2))


def test_batch_shards_are_slices_of_every_batch_with_their_epoch_positions():
  order = np.array([10, 11, 12, 13, 20, 21, 22, 23])  # two batches of 4, from position 8
  rows, positions = batch_shard(order, 4, 1, 2, start=8)
  assert rows.tolist() == [12, 13, 22, 23] and positions.tolist() == [10, 11, 14, 15]
  rows, positions = batch_shard(order, 4, 0, 1, start=8)
  assert rows.tolist() == order.tolist() and positions.tolist() == list(range(8, 16))
  with pytest.raises(ValueError, match='batch_size 4 does not split over 3 input pipelines'):
    batch_shard(order, 4, 0, 3)


def test_the_workers_slices_of_a_batch_are_the_batch_with_its_flips(tiny_synthetic, tmp_path):
  from tf_partfash.config import DataConfig
  from tf_partfash.inputs.pipeline import PipelineConfig, make_dataset
  from tf_partfash.inputs.prepared import prepare
  data = prepare(DataConfig(data_dir=tiny_synthetic), str(tmp_path))
  train = data.examples.subset(data.rows('train'))
  order = np.random.default_rng(0).permutation(len(train))[:24]  # 3 batches of 8, from 16
  whole = list(make_dataset(train, order, PipelineConfig(64, 8, flip=True), epoch=1,
                            positions=16 + np.arange(24)))
  slices = [list(make_dataset(train, rows, PipelineConfig(64, 4, flip=True), epoch=1,
                              positions=positions))
            for rows, positions in (batch_shard(order, 8, k, 2, start=16) for k in range(2))]
  for batch, first, second in zip(whole, *slices, strict=True):
    for key in ('image', 'boxes', 'present', 'index'):
      np.testing.assert_array_equal(np.concatenate([first[key], second[key]]), batch[key])


def test_train_py_without_tf_config_is_one_line_error(tmp_path):
  env = {k: v for k, v in os.environ.items() if k != 'TF_CONFIG'}
  result = subprocess.run([sys.executable, 'train.py', f'--workdir={tmp_path}',
                           '--alexnet_weights=none', '--strategy=multi_worker'], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
  assert result.returncode == 1, result.stderr[-2000:]
  assert result.stderr.strip().splitlines()[-1].startswith(
      'train.py: error: --strategy=multi_worker needs TF_CONFIG'), result.stderr[-2000:]


# One training of the tiny network with the paper's LRN backbone (BatchNorm in fc6), stage 1, under
# the strategy named by argv[3]: 'two_cpus' is MirroredStrategy over two logical CPUs (as over two
# GPUs); 'one_ulp' is one device with every initial weight moved by one float32 step (a rounding
# difference, to measure how far rounding alone carries the weights). The trainable weights before
# and after are saved as initial_<task>.npy and weights_<task>.npy in argv[4]. The strategy is made
# first, as a multi-worker one must be. No dropout and no flips: one random draw fewer to match.
_TRAIN = r"""
import dataclasses, json, sys
import tensorflow as tf
from tf_partfash.training.distribution import make_strategy, strategy_role
if sys.argv[3] == 'two_cpus':
  cpu = tf.config.list_physical_devices('CPU')[0]
  tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
  strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
else:
  strategy = make_strategy('default' if sys.argv[3] == 'one_ulp' else sys.argv[3])
import keras
tf.config.experimental.enable_op_determinism()  # the same sums whatever else loads the cores
import numpy as np
from tf_partfash.methods import method
from tf_partfash.models.partnet import build_partnet
from tf_partfash.config import DataConfig, TrainConfig
from tf_partfash.inputs.prepared import prepare
from tf_partfash.training.trainer import Trainer
data_dir, workdir, _, out, epochs = sys.argv[1:6]
data = prepare(DataConfig(data_dir=data_dir), out)
sys.path.insert(0, 'tests')
import tiny
model = dataclasses.replace(tiny.MODEL, backbone_norm='lrn', dropout=0.0)
config = TrainConfig(stage1_epochs=int(epochs), stage2_epochs=0, batch_size=16, flip=False,
                     steps_per_epoch=1, stage1_learning_rate=1e-3, momentum=0.0, log_every_secs=0)
def build():
  keras.utils.set_random_seed(0)
  network = build_partnet(model)
  if sys.argv[3] == 'one_ulp':
    up = np.random.default_rng(0)
    for w in network.trainable_weights:
      value = w.numpy()
      w.assign(np.nextafter(value, np.where(up.random(value.shape) < 0.5, -np.inf, np.inf),
                            dtype=np.float32))
  return network
trainer = Trainer(build, model, config, data.examples.subset(data.rows('train')), workdir,
                  strategy, method('partnet'))
flat = lambda: np.concatenate([w.numpy().ravel() for w in trainer.model.weights if w.trainable])
chief, task = strategy_role(strategy)
np.save(f'{out}/initial_{task}.npy', flat())
started = trainer.latest_checkpoint()
trainer.run()
np.save(f'{out}/weights_{task}.npy', flat())
print(json.dumps({'chief': chief, 'task': task, 'replicas': strategy.num_replicas_in_sync,
                  'resumed': started and started.rsplit('-', 1)[1],
                  'step': int(trainer.optimizer.iterations.numpy())}))
"""


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(('127.0.0.1', 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


_STARTED = []


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test():
  yield
  while _STARTED:
    process = _STARTED.pop()
    if process.poll() is None:  # a failed assertion left it waiting for its peer
      process.kill()
      process.wait()


def _train(data, workdir, out, epochs, strategy='default', tf_config=None):
  env = {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'}
  env.pop('TF_CONFIG', None)
  env.update(tf_config or {})
  _STARTED.append(subprocess.Popen([sys.executable, '-c', _TRAIN, data, workdir, strategy, out,
                                    str(epochs)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True))
  return _STARTED[-1]


def _result(process):
  stdout, stderr = process.communicate(timeout=300)
  assert process.returncode == 0, stderr[-3000:]
  return json.loads(stdout.strip().splitlines()[-1])


def _update(out):
  """The weights' change over the training (task 0's) that wrote to `out`."""
  return np.load(out / 'weights_0.npy') - np.load(out / 'initial_0.npy')


def _apart(update, reference):
  return float(np.linalg.norm(update - reference) / np.linalg.norm(reference))


def test_two_workers_resume_from_the_chiefs_checkpoint_and_train_as_one_as_two_replicas_do(tiny_synthetic, tmp_path):
  data = tmp_path / 'data'
  shutil.copytree(tiny_synthetic, data)
  workdir, outs = tmp_path / 'run', [tmp_path / 'worker0', tmp_path / 'worker1']
  outputs = {name: tmp_path / name for name in ('alone', 'one_ulp', 'two_cpus', *outs)}
  for out in outputs.values():
    out.mkdir(exist_ok=True)
  hosts = [f'127.0.0.1:{port}' for port in _free_ports(2)]

  # One worker trains 2 epochs of 1 step; its checkpoint after the first epoch, put in the
  # cluster's workdir, is where both workers resume, as after an interruption of their own run.
  # Beside it, the same training from weights one rounding step away.
  one_ulp = _train(str(data), str(tmp_path / 'nudged'), str(outputs['one_ulp']), 2, 'one_ulp')
  assert _result(_train(str(data), str(tmp_path / 'one'), str(outputs['alone']), 2))['step'] == 2
  (workdir / 'checkpoints').mkdir(parents=True)
  for file in (tmp_path / 'one' / 'checkpoints').glob('ckpt-1.*'):
    shutil.copy(file, workdir / 'checkpoints')
  (workdir / 'checkpoints' / 'checkpoint').write_text('model_checkpoint_path: "ckpt-1"\n')
  started = [_train(str(data), str(workdir), str(out), 2, 'multi_worker',
                    _tf_config({'worker': hosts}, 'worker', task)) for task, out in enumerate(outs)]
  # Meanwhile: two replicas on one machine, from the start.
  mirrored = _train(str(data), str(tmp_path / 'mirrored'), str(outputs['two_cpus']), 2, 'two_cpus')
  results = [_result(p) for p in started]
  assert [(r['chief'], r['replicas'], r['resumed'], r['step']) for r in results] == [
      (True, 2, '1', 2), (False, 2, '1', 2)]
  assert sorted(os.listdir(workdir)) == ['checkpoints', 'tensorboard']  # workertemp_1 is gone
  assert 'ckpt-2.index' in os.listdir(workdir / 'checkpoints')
  theirs = [np.load(out / f'weights_{task}.npy') for task, out in enumerate(outs)]
  np.testing.assert_array_equal(theirs[0], theirs[1])
  assert _result(mirrored)['replicas'] == 2
  _result(one_ulp)

  # The bound is what rounding alone does on this machine: one device started from weights one
  # float32 step away. This training amplifies any rounding difference about twentyfold a step
  # (measured over four steps: 5e-6 after the first, 0.055 after the fourth, alike for two
  # replicas and for a nudge of the weights), so a fixed bound holds on one machine and fails on
  # another. Summing a batch's halves in another order is such a difference: measured 0.5x
  # (workers) and 0.7x (replicas) the nudge's 7.8e-6 over these two steps. Per-replica BatchNorm
  # statistics, or masked means over one replica's half, put them 0.28 to 1.05 of the update away.
  # The floor itself differs by machine (7.8e-6 on one, 3.1e-3 on another of the same kind): it
  # must only stay low enough that 10x it is below the smallest of those bugs.
  one = _update(outputs['alone'])
  floor = _apart(_update(outputs['one_ulp']), one)
  assert 0 < floor < 0.02, floor
  workers = _apart(_update(outs[0]), one)
  replicas = _apart(_update(outputs['two_cpus']), one)
  assert workers < 10 * floor and replicas < 10 * floor, (workers, replicas, floor)


def test_peers_are_the_other_tasks_and_unreachable_ones_are_named():
  from tf_partfash.training.cluster_wait import peers, unreachable
  listening = socket.socket()
  listening.bind(('127.0.0.1', 0))
  listening.listen()
  up = f'127.0.0.1:{listening.getsockname()[1]}'
  down = f'127.0.0.1:{_free_ports(1)[0]}'
  config = _tf_config({'chief': ['me:1'], 'worker': [up, down]}, 'chief', 0)
  assert peers(config) == [('worker 0', up), ('worker 1', down)]
  assert unreachable(peers(config)) == [('worker 1', down)]
  listening.close()


def _train_cli_in_a_cluster_without_its_peer(workdir, wait_secs):
  """train.py as worker 0 of a two-worker cluster whose worker 1 never starts."""
  import tiny
  hosts = [f'127.0.0.1:{port}' for port in _free_ports(2)]
  env = {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2',
         **_tf_config({'worker': hosts}, 'worker', 0)}
  process = subprocess.Popen(
      [sys.executable, 'train.py', f'--workdir={workdir}', '--strategy=multi_worker',
       f'--cluster_wait_secs={wait_secs}', '--synthetic_images=100', *tiny.train_flags()],
      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  _STARTED.append(process)
  return process, hosts[1]


def _still_running(workdir) -> list[int]:
  """Processes whose command line names `workdir` (a training left behind)."""
  found = []
  for pid in filter(str.isdigit, os.listdir('/proc')):
    try:
      with open(f'/proc/{pid}/cmdline', 'rb') as f:
        if str(workdir).encode() in f.read():
          found.append(int(pid))
    except OSError:
      pass
  return found


def test_a_cluster_that_never_comes_up_ends_in_bounded_time_and_on_sigterm_or_ctrl_c(tmp_path):
  import signal
  import time
  # Three at once (each imports TensorFlow): a time-out, a SIGTERM and a Ctrl-C while waiting.
  timed_out, missing = _train_cli_in_a_cluster_without_its_peer(tmp_path / 'timeout', 3)
  stopped = {s: _train_cli_in_a_cluster_without_its_peer(tmp_path / s.name, 600)[0]
             for s in (signal.SIGTERM, signal.SIGINT)}
  time.sleep(4)  # the children are importing TensorFlow or already waiting for worker 1
  for s, process in stopped.items():
    assert process.poll() is None
    process.send_signal(s)
  for s, process in stopped.items():
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 1, stderr[-2000:]
    assert stderr.strip().splitlines()[-1].startswith(
        f'train.py: error: stopped ({s.name}) while waiting for the cluster'), stderr[-2000:]
  _, stderr = timed_out.communicate(timeout=120)
  assert timed_out.returncode == 1, stderr[-2000:]
  assert stderr.strip().splitlines()[-1] == (
      'train.py: error: the cluster did not come up within --cluster_wait_secs=3: not '
      f'reachable: worker 1 ({missing}); start train.py there with its own TF_CONFIG task')
  for name in ('timeout', 'SIGTERM', 'SIGINT'):
    assert not _still_running(tmp_path / name), name  # the supervised child is gone too
