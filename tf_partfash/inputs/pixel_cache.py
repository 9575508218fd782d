"""The training images decoded and resized once, as uint8 pixels (`train.py --input_cache=pixels`).

Decoding a 762 x 1100 JPEG and resizing it costs more per image than everything else the input
pipeline does (`benchmarks/bench_input.py`), and every epoch repeats it. This cache holds each
training image as `load_pixels` makes it, (S, S, 3) uint8 RGB, in one .npy file that later epochs
memory-map: its rows are bitwise what the pipeline decodes, so a run with the cache trains on the
same batches as one without (S = 227: 155 KB an image, 12.4 GB for Shopping100k's 80,021 training
images; the page cache keeps what fits in memory).

`pixels_<S>_<digest>.npy` lives in the dataset's state directory, named after its images (their
paths, sizes and modification times) and the size, so a changed image or another input size is
another file. It is built under a lock (concurrent trainings wait, then read it), chunk by chunk
into `<file>.partial.npy` with the finished chunks recorded, so an interrupted build resumes;
it is renamed into place when whole.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from typing import Sequence

import numpy as np
import tensorflow as tf

from tf_partfash.errors import UserError
from tf_partfash.inputs.pipeline import corrupt_image_error, load_pixels
from tf_partfash.storage import atomic, cache
from tf_partfash.storage.progress import ProgressLine

CHUNK = 512  # images per recorded chunk of the build


def pixel_cache_file(state_dir: str, files: Sequence[str], image_size: int) -> str:
  """Where the pixels of `files` at `image_size` are cached."""
  stats = [(os.path.basename(f), os.path.getsize(f), os.stat(f).st_mtime_ns) for f in files]
  key = json.dumps([image_size, [str(f) for f in files], stats]).encode('utf-8')
  return os.path.join(state_dir, f'pixels_{image_size}_{cache.digest(key)}.npy')


def ensure_pixel_cache(files: Sequence[str], image_size: int, file: str) -> np.memmap:
  """The (len(files), S, S, 3) uint8 pixels of `files`, memory-mapped read-only from `file`;
  built there first when absent, or again when damaged (progress logged; resumes an interrupted
  build)."""
  shape = (len(files), image_size, image_size, 3)
  pixels, _ = _load(file)
  if pixels is None:
    with atomic.exclusive(f'{file}.lock', f'building {file}'):
      pixels, damage = _load(file)  # another process may have built it while this one waited
      if pixels is None:
        if damage:  # removed under the lock: never a file another process has just built
          logging.warning('the pixel cache %s is damaged (%s): building it again', file, damage)
          os.remove(file)
        _build(files, image_size, file, shape)
        pixels = np.load(file, mmap_mode='r')
  if pixels.shape != shape or pixels.dtype != np.uint8:
    raise UserError(f'{file} holds {pixels.dtype} pixels of shape {pixels.shape}, not uint8 '
                    f'{shape}: not this cache; delete it, and it is rebuilt')
  return pixels


def _load(file: str) -> tuple[np.memmap | None, str | None]:
  """The cache in `file`, memory-mapped; else None, and why when the file exists but cannot be
  read (cut short, or not a .npy file)."""
  if not os.path.exists(file):
    return None, None
  try:
    return np.load(file, mmap_mode='r'), None
  except (ValueError, OSError, EOFError) as e:
    return None, f'{type(e).__name__}: {e}'


def _build(files: Sequence[str], image_size: int, file: str, shape: tuple[int, ...]) -> None:
  partial, record = f'{file}.partial.npy', f'{file}.partial.json'
  done = _finished_chunks(record, partial, shape)
  if done == 0:
    needed = int(np.prod(shape, dtype=np.int64))
    free = shutil.disk_usage(os.path.dirname(file) or '.').free
    if free < needed:
      raise OSError(f'the pixel cache {file} needs {needed / 1e9:.1f} GB and '
                    f'{os.path.dirname(file)} has {free / 1e9:.1f} GB free; free some space '
                    'or train without --input_cache')
    np.lib.format.open_memmap(partial, 'w+', np.uint8, shape).flush()
  pixels = np.load(partial, mmap_mode='r+')
  logging.info('caching the decoded pixels of %d training images at %d px in %s (%.1f GB)%s',
               len(files), image_size, file, pixels.nbytes / 1e9,
               f', resuming at image {done * CHUNK}' if done else '')
  names = tf.constant([str(f) for f in files])
  line = ProgressLine(len(files), cache.PROGRESS_EVERY_SECS, start=done * CHUNK, unit='image')
  for start in range(done * CHUNK, len(files), CHUNK):
    stop = min(start + CHUNK, len(files))
    dataset = tf.data.Dataset.range(start, stop).map(
        lambda k: load_pixels(names[k], image_size), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True).batch(64)
    try:
      pixels[start:stop] = np.concatenate([batch.numpy() for batch in dataset])
    except tf.errors.InvalidArgumentError as e:
      raise corrupt_image_error(files[start:stop], e) from e
    pixels.flush()  # the chunk is on disk before it is recorded as done
    atomic.write_json(record, {'shape': list(shape), 'chunks_done': start // CHUNK + 1})
    line.update(stop, 'pixel cache')
  del pixels
  os.replace(partial, file)
  os.remove(record)


def _finished_chunks(record: str, partial: str, shape: tuple[int, ...]) -> int:
  """Chunks an interrupted build of this shape finished (0: start afresh)."""
  try:
    with open(record, encoding='utf-8') as f:
      blob = json.load(f)
    if tuple(blob['shape']) == shape and np.load(partial, mmap_mode='r').shape == shape:
      return int(blob['chunks_done'])
  except (OSError, ValueError, KeyError, TypeError):
    pass
  return 0
