"""Which `tf.distribute` strategy trains, and this process's role in a cluster of workers.

`multi_worker` is `tf.distribute.MultiWorkerMirroredStrategy` configured from the `TF_CONFIG`
environment variable, as TensorFlow documents it: every worker runs the same train.py command
with its own `task`, each step's gradients are summed over all replicas of all workers, and the
chief (the `chief` task, else worker 0) alone writes to the workdir. The others write their
checkpoints to a temporary folder they delete (saving can be collective, so all must take part).

TensorFlow is imported only inside `make_strategy`: train.py reads the cluster role before the
slow import, to check the workdir at once, and runs a multi-worker training under a supervisor
that bounds the wait for the cluster (`cluster_wait`).
"""
from __future__ import annotations

import json
import os
from typing import Any, Mapping

from tf_partfash.errors import UserError
from tf_partfash.training.cluster_wait import notify_cluster_ready

STRATEGIES = ('auto', 'default', 'mirrored', 'multi_worker')


def _is_chief(task_type: str | None, task_id: int, cluster: Mapping[str, Any]) -> bool:
  if not task_type:
    return True
  return task_type == 'chief' or (task_type == 'worker' and task_id == 0 and 'chief' not in cluster)


def cluster_role(environ: Mapping[str, str] = os.environ) -> tuple[bool, int]:
  """(is this the chief, its task index) from `TF_CONFIG`; a malformed one is a ValueError
  naming what is wrong."""
  text = environ.get('TF_CONFIG')
  if not text:
    raise UserError('--strategy=multi_worker needs TF_CONFIG, e.g. TF_CONFIG=\'{"cluster": '
                    '{"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", '
                    '"index": 0}}\' (README: training on several machines)')
  try:
    config = json.loads(text)
    cluster, task = config['cluster'], config['task']
    task_type, task_id = task['type'], int(task['index'])
    hosts = cluster[task_type]
  except (ValueError, KeyError, TypeError) as e:
    raise UserError(f'TF_CONFIG={text!r} is not a cluster and task as TensorFlow documents '
                    f'them ({type(e).__name__}: {e})') from None
  if not 0 <= task_id < len(hosts):
    raise UserError(f'TF_CONFIG: task index {task_id} is not one of the {len(hosts)} '
                    f'{task_type} address(es) {hosts}')
  return _is_chief(task_type, task_id, cluster), task_id


def strategy_role(strategy) -> tuple[bool, int]:
  """(is this the chief, its task index) of this process in the strategy's cluster; (True, 0)
  for a strategy on one machine."""
  resolver = getattr(strategy, 'cluster_resolver', None)
  task_type = getattr(resolver, 'task_type', None)
  if not task_type:
    return True, 0
  return _is_chief(task_type, resolver.task_id, resolver.cluster_spec().as_dict()), resolver.task_id


def make_strategy(name: str = 'auto'):
  """`auto`: MirroredStrategy over all GPUs when there are several, else the default strategy;
  `mirrored`: MirroredStrategy over this machine's devices; `multi_worker`: see the module doc.

  A multi-worker strategy must be made before TensorFlow runs anything, so make it first.
  """
  if name not in STRATEGIES:
    raise UserError(f'strategy={name!r}; valid values: {", ".join(STRATEGIES)}')
  import tensorflow as tf
  if name == 'multi_worker':
    cluster_role()  # a missing or malformed TF_CONFIG says so, rather than training alone
    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # waits for every worker
    notify_cluster_ready()
    return strategy
  if name == 'mirrored' or (name == 'auto' and len(tf.config.list_logical_devices('GPU')) > 1):
    return tf.distribute.MirroredStrategy()
  return tf.distribute.get_strategy()

