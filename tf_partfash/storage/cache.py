"""The feature caches of a workdir: versioned .npz files, built by one process at a time, resumable.

Every file records the format version and the model's identity (`workdir.model_id`), so features of
another model are recomputed or refused, never mixed. A file is replaced whole
(`atomic.replacing`); one of another model or version, or unreadable (cut short, damaged), is
rebuilt, and the log says why. `ensure` holds a lock beside the file while it builds, so
concurrent first searches or evaluations all succeed; `chunked` keeps each finished chunk of a long
computation in `<file>.partial/`, so a run killed mid-way resumes from them.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import zipfile
import zlib
from typing import Callable, Sequence, TypeVar

import numpy as np

from tf_partfash.errors import UserError
from tf_partfash.storage import atomic
from tf_partfash.storage.progress import ProgressLine

# 2: gallery and query images' parts come from the image alone (§4.2), not the labels: indexes
# of version 1 hold features of label-settled parts and are rebuilt.
FORMAT_VERSION = 2
PROGRESS_EVERY_SECS = 10.0
CHUNK_SIZE = 1024  # images per resumable chunk of feature extraction (`chunked`)
T = TypeVar('T')


def digest(data: bytes) -> str:
  """A short content hash, for cache keys and file names."""
  return hashlib.blake2b(data, digest_size=8).hexdigest()


class UnreadableCache(UserError):
  """A cached file that cannot be read (cut short, damaged); the message names it."""

  def __init__(self, file: str, reason: str):
    super().__init__(f'{file} is unreadable ({reason}): cut short or damaged; delete it, and it is '
                     'rebuilt when next needed')
    self.file, self.reason = file, reason


def cached_by(file: str) -> str | None:
  """The model id of a cached file of this format version; None if absent or of another version."""
  if not os.path.exists(file):
    return None
  stored = load_npz(file, ('format_version', 'model_id'))  # only the two small header entries
  if int(stored['format_version']) != FORMAT_VERSION:
    return None
  return str(stored['model_id'])


def check_header(file: str, stored: dict, expected_model_id: str | None) -> None:
  """A file of another format version, or (given `expected_model_id`) another model's: an error."""
  version = int(stored['format_version'])
  if version != FORMAT_VERSION:
    raise UserError(f'{file}: index format version {version}, this tf_partfash reads version '
                    f'{FORMAT_VERSION}; rebuild it')
  found = str(stored['model_id'])
  if expected_model_id is not None and found != expected_model_id:
    raise UserError(f'{file} was built by model {found}, not by the requested model '
                    f'{expected_model_id}; rebuild it with this model')


def save_npz(file: str, arrays: dict[str, np.ndarray]) -> None:
  with atomic.replacing(file) as tmp, open(tmp, 'wb') as f:
    np.savez(f, **arrays)


def load_npz(file: str, names: Sequence[str] | None = None,
             skip: Sequence[str] = ()) -> dict[str, np.ndarray]:
  """The arrays of an .npz file (only `names`, when given; not those in `skip`); a damaged one is
  `UnreadableCache`."""
  if not os.path.exists(file):
    raise FileNotFoundError(f'index file not found: {file}')
  try:
    with np.load(file, allow_pickle=False) as z:
      return {k: z[k] for k in (z.files if names is None else names) if k not in skip}
  except (zipfile.BadZipFile, zlib.error, EOFError, KeyError, ValueError, OSError) as e:
    raise UnreadableCache(file, f'{type(e).__name__}: {e}') from None


def _read_cache(file: str, mid: str, reader: Callable[[str, str], T], log: bool) -> T | None:
  """`reader(file, mid)` when `file` holds model `mid`'s features in this format version; None
  when it is absent, of another model or version, or unreadable (with `log`: why, in the log)."""
  if not os.path.exists(file):
    return None
  try:
    found = cached_by(file)
    if found == mid:
      return reader(file, mid)
    reason = f'built by model {found}, not {mid}' if found else 'of another format version'
  except UnreadableCache as e:
    if log:
      logging.warning('%s is unreadable (%s): rebuilding it', file, e.reason)
    return None
  if log:
    logging.info('%s is %s: rebuilding it', file, reason)
  return None


def ensure(file: str, mid: str, reader: Callable[[str, str], T],
           stale: Callable[[T], str | None], build: Callable[[], T]) -> T:
  """The object cached in `file`, or `build()` saved there.

  `stale(found)` says why a readable file of the model does not fit the request (None: it fits).
  One process builds at a time (a lock beside the file), so concurrent first searches or
  evaluations all succeed: the others wait, then read what it built. The fast path takes no lock,
  so a read-only workdir with its caches in place can still be searched.
  """
  found = _read_cache(file, mid, reader, log=False)
  if found is not None and stale(found) is None:
    return found
  with atomic.exclusive(f'{file}.lock', f'building {file}'):
    found = _read_cache(file, mid, reader, log=True)  # another process may have built it
    if found is not None:
      reason = stale(found)
      if reason is None:
        return found
      logging.info('%s: %s: rebuilding it', file, reason)
    atomic.remove_stale(file)
    built = build()
    built.save(file)
    shutil.rmtree(f'{file}.partial', ignore_errors=True)
    return built


def chunked(directory: str, key: dict, rows: np.ndarray, chunk_size: int, what: str,
             compute: Callable[[np.ndarray], dict[str, np.ndarray]],
             progress: bool) -> list[dict[str, np.ndarray]]:
  """`compute` over `rows` in chunks, each kept in `directory` so an interrupted run resumes.

  `key` identifies the job (model, rows); chunks of another job in `directory` are discarded, and
  a chunk that cannot be read is computed again. The caller holds the lock of the job's file.
  """
  start_job(directory, key)
  line = ProgressLine(len(rows), PROGRESS_EVERY_SECS, unit='image') if progress else None
  results = []
  for start in range(0, len(rows), chunk_size):
    file = os.path.join(directory, f'chunk_{start // chunk_size:05d}.npz')
    try:
      results.append(load_npz(file))
    except (FileNotFoundError, UnreadableCache):
      results.append(compute(rows[start:start + chunk_size]))
      save_npz(file, results[-1])
    if line:
      line.update(min(start + chunk_size, len(rows)), what)
  return results


def start_job(directory: str, key: dict) -> None:
  """Readies `directory` for the finished chunks of a resumable job identified by `key`: the
  chunks of another job kept there are discarded, and `key` is recorded (`job.json`)."""
  manifest = os.path.join(directory, 'job.json')
  if os.path.isdir(directory) and _read_manifest(manifest) != key:
    shutil.rmtree(directory)
  os.makedirs(directory, exist_ok=True)
  atomic.write_json(manifest, key)


def _read_manifest(file: str) -> dict | None:
  try:
    with open(file, encoding='utf-8') as f:
      return json.load(f)
  except (OSError, ValueError):  # absent, or from an older tf_partfash that wrote it in place
    return None


class StoredRows:
  """The rows of an array stored in an .npy file (or an .npz member stored uncompressed, as
  `save_npz` writes them), read on demand through a read-only memory map: the process never
  loads the array, the kernel pages in the rows asked for (file pages, shared and reclaimable,
  counted apart from the process's own memory) and one gather copies them out (re-ranking a
  compact index's candidates in a gallery larger than memory: 3 times faster than a read per
  row). Slices and integer row arrays index it, giving ndarrays."""

  def __init__(self, file: str, offset: int, shape: tuple[int, ...], dtype: np.dtype):
    self.file, self.offset, self.shape, self.dtype = file, offset, tuple(shape), np.dtype(dtype)
    self.ndim = len(self.shape)
    # (An empty array cannot be mapped.)
    self._map = (np.memmap(file, self.dtype, 'r', offset, self.shape) if self.shape[0]
                 else np.empty(self.shape, self.dtype))

  @classmethod
  def of(cls, file: str, member: str | None = None) -> StoredRows:
    """The array of an .npy `file`, or of `member` (e.g. 'signatures') of an .npz `file`."""
    start = 0
    if member is not None:
      with zipfile.ZipFile(file) as z:
        info = z.getinfo(f'{member}.npy')
        if info.compress_type != zipfile.ZIP_STORED:
          raise UserError(f'{file}: {member} is compressed; rows can be read only from a stored '
                          'member')
      with open(file, 'rb') as f:  # past the member's local header: its name and extra field
        f.seek(info.header_offset + 26)
        name_length, extra_length = np.frombuffer(f.read(4), '<u2')
        start = info.header_offset + 30 + int(name_length) + int(extra_length)
    with open(file, 'rb') as f:
      f.seek(start)
      version = np.lib.format.read_magic(f)
      read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                     else np.lib.format.read_array_header_2_0)
      shape, fortran, dtype = read_header(f)
      if fortran or dtype.hasobject:
        raise UserError(f'{file}: rows can be read from a C-ordered numeric array only')
      return cls(file, f.tell(), shape, dtype)

  def __len__(self) -> int:
    return self.shape[0]

  def __array__(self, dtype=None, copy=None) -> np.ndarray:
    """All rows (what exact search over the whole gallery reads anyway)."""
    return np.array(self._map, dtype)

  def __getitem__(self, key) -> np.ndarray:
    if isinstance(key, tuple):  # rows first, then the rest of the key on what was read
      return self[key[0]][(slice(None),) + key[1:]]
    if not isinstance(key, slice):
      key = np.asarray(key, np.int64)
    return np.array(self._map[key])
