"""Crash- and concurrency-safe files: replaced whole or not at all, built by one process at a time.

`replacing(file)` hands out a temporary name of this process beside `file` and renames it over
`file` only when the block ends without an error (`os.replace` is atomic on POSIX), so a reader
sees the old file or the new one, never a half-written one: not after a SIGKILL, a full disk or
two processes writing at once. A process killed while writing leaves its temporary file
(`<file>.tmp<pid>...`) behind, which `remove_stale` deletes once that process is gone. (No fsync:
this guards against a process dying, not against the machine losing power.)

`exclusive(lock_file)` holds an `fcntl.flock` lock on a file beside what it guards. The kernel
releases it when the holder ends, however it ends, so a killed holder never blocks the next run.
"""
from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import logging
import os
import re
from typing import Any, Iterator


class LockHeld(OSError):
  """Another process holds the lock (`exclusive(..., wait=False)`); the message names it."""


@contextlib.contextmanager
def replacing(file: str, suffix: str = '') -> Iterator[str]:
  """Yields a temporary path for `file`, ending in `suffix` for writers that go by the extension
  (Keras' `.weights.h5`). It replaces `file` when the block succeeds; on an error it is removed
  and `file` is left as it was."""
  tmp = f'{file}.tmp{os.getpid()}{suffix}'
  try:
    yield tmp
    os.replace(tmp, file)
  except BaseException:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    raise


def write_text(file: str, text: str) -> None:
  with replacing(file) as tmp:
    with open(tmp, 'w', encoding='utf-8') as f:
      f.write(text)


def write_json(file: str, blob: Any) -> None:
  write_text(file, json.dumps(blob, indent=2) + '\n')


def _running(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # another user's process
    return True
  return True


def remove_stale(file: str) -> None:
  """Deletes the temporary files of `replacing(file)` whose process has ended (killed mid-write)."""
  for tmp in glob.glob(glob.escape(file) + '.tmp*'):
    match = re.match(r'\.tmp(\d+)', tmp[len(file):])
    if match and not _running(int(match.group(1))):
      with contextlib.suppress(OSError):
        os.remove(tmp)


@contextlib.contextmanager
def exclusive(lock_file: str, what: str, wait: bool = True) -> Iterator[None]:
  """Holds an exclusive lock on `lock_file` (created if absent) for the block.

  `what` says what the lock guards, for the messages. With `wait`, a lock held by another process
  is waited for (logged); without, it is a `LockHeld` error naming the holder's process id.
  """
  fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(fd, 32, 0).decode('ascii', 'replace').strip() or '?'
      if not wait:
        raise LockHeld(f'{what}: process {holder} holds {lock_file}') from None
      logging.info('waiting for process %s, which holds %s (%s)', holder, lock_file, what)
      fcntl.flock(fd, fcntl.LOCK_EX)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f'{os.getpid()}\n'.encode('ascii'), 0)  # for the message of the next one
    yield
  finally:
    os.close(fd)  # releases the lock
