"""A bounded wait for a multi-worker cluster: train.py's `--strategy=multi_worker` in a child.

Making `tf.distribute.MultiWorkerMirroredStrategy` blocks inside TensorFlow until every worker of
`TF_CONFIG` has joined, with no message and no time limit, and TensorFlow catches SIGTERM there
(its preemption notifier) while Python cannot run its Ctrl-C handler. So train.py runs the
training in a child process and this supervisor, which imports no TensorFlow, stays responsive:

- until the child says its strategy is made (a byte on an inherited pipe, `notify_cluster_ready`),
  it prints a progress line every `PROGRESS_EVERY_SECS` naming the workers whose address does not
  accept connections yet, and after `wait_secs` kills the child and ends with a one-line error;
- SIGTERM or Ctrl-C while waiting kills the child at once (nothing is trained yet); afterwards they
  are passed on to the child, which stops as any training does (and resumes from its checkpoint).
"""
from __future__ import annotations

import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time

from tf_partfash.errors import UserError

READY_FD = 'TF_PARTFASH_CLUSTER_READY_FD'  # set in the child: where to say the cluster is up
PROGRESS_EVERY_SECS = 10.0


def supervised() -> bool:
  """Whether this process is the supervised child (it trains)."""
  return READY_FD in os.environ


def peers(environ=os.environ) -> list[tuple[str, str]]:
  """(task name, address) of every other task of `TF_CONFIG` (already checked by
  `distribution.cluster_role`)."""
  config = json.loads(environ['TF_CONFIG'])
  me = (config['task']['type'], int(config['task']['index']))
  return [(f'{kind} {i}', address) for kind, addresses in config['cluster'].items()
          for i, address in enumerate(addresses) if (kind, i) != me]


def unreachable(tasks: list[tuple[str, str]], timeout: float = 1.0) -> list[tuple[str, str]]:
  """The tasks whose `host:port` does not accept a TCP connection now."""
  missing = []
  for name, address in tasks:
    host, _, port = address.rpartition(':')
    try:
      socket.create_connection((host.strip('[]'), int(port)), timeout=timeout).close()
    except (OSError, ValueError):
      missing.append((name, address))
  return missing


def _named(tasks: list[tuple[str, str]]) -> str:
  return ', '.join(f'{name} ({address})' for name, address in tasks)


def supervise(argv: list[str], wait_secs: float) -> int:
  """Runs `python argv` as the supervised child and returns its exit status (see the module doc);
  a cluster that does not come up within `wait_secs` is a UserError naming the missing workers."""
  read, write = os.pipe()
  # Its own process group: Ctrl-C at the terminal reaches the supervisor alone, which passes it
  # on once (a second one could cut the child's clean-up short).
  child = subprocess.Popen([sys.executable, *argv], env={**os.environ, READY_FD: str(write)},
                           pass_fds=(write,), process_group=0)
  os.close(write)
  stop = []
  previous = {s: signal.signal(s, lambda signum, frame: stop.append(signum))
              for s in (signal.SIGTERM, signal.SIGINT)}
  try:
    if not _wait_until_ready(child, read, wait_secs, stop):
      child.wait()  # it ended (an error of its own, or killed) before the cluster was up
    while child.poll() is None:
      if stop:
        child.send_signal(stop.pop())
      time.sleep(0.2)
    # Killed by a signal: the status a shell gives (128 + its number).
    return child.returncode if child.returncode >= 0 else 128 - child.returncode
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)
    if child.poll() is None:
      child.kill()
      child.wait()
    os.close(read)


def _wait_until_ready(child: subprocess.Popen, read: int, wait_secs: float, stop: list) -> bool:
  """True once the child reports its strategy made; False if it ended first. Raises UserError on
  a time-out or a stop signal, after killing the child."""
  tasks, start, last_line = peers(), time.monotonic(), time.monotonic()
  while True:
    ready, _, _ = select.select([read], [], [], 0.5)
    if ready:
      return bool(os.read(read, 1))  # empty: the pipe closed, the child ended
    waited = time.monotonic() - start
    if stop or waited >= wait_secs:
      child.kill()
      child.wait()
      missing = unreachable(tasks)
      if stop:
        raise UserError(f'stopped ({signal.Signals(stop[0]).name}) while waiting for the cluster'
                        + (f'; not reachable: {_named(missing)}' if missing else ''))
      raise UserError(
          f'the cluster did not come up within --cluster_wait_secs={wait_secs:g}: '
          + (f'not reachable: {_named(missing)}; start train.py there with its own TF_CONFIG '
             'task' if missing else 'every worker is reachable but not all joined; check that '
             'they run the same command with the same TF_CONFIG cluster'))
    if time.monotonic() - last_line >= PROGRESS_EVERY_SECS:
      missing = unreachable(tasks)
      logging.warning('waiting for the cluster (%.0f of %g s): %s', waited, wait_secs,
                      f'not reachable: {_named(missing)}' if missing
                      else 'every worker reachable, joining')
      last_line = time.monotonic()


def notify_cluster_ready() -> None:
  """In the supervised child, once the strategy is made: tells the supervisor, and gives SIGTERM
  back its default action (TensorFlow's preemption notifier would otherwise swallow it)."""
  signal.signal(signal.SIGTERM, signal.SIG_DFL)
  fd = os.environ.pop(READY_FD, None)
  if fd is not None:
    os.write(int(fd), b'1')
    os.close(int(fd))
