"""tf.data input pipeline: (path, labels, part boxes, case) -> preprocessed batches.

Images are decoded (JPEG or PNG), resized to a square model input (the boxes are normalised, so an
anisotropic resize leaves them valid), converted to Caffe AlexNet's convention (BGR, per-channel
mean [104, 117, 124] subtracted, 0..255 scale) and optionally mirrored, which mirrors the part
boxes and swaps the left and right sleeves. Everything is TF ops, so the same pipeline feeds CPU
and GPU training unchanged.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf
from PIL import Image

from tf_partfash.data.shopping100k import image_file, labels_of
from tf_partfash.errors import UserError
from tf_partfash.parts.boxes import CASES, PART_NAMES, Parts

BGR_MEAN = (104.0, 117.0, 124.0)
# Part order after a horizontal flip: the left and right sleeves trade places.
_FLIP_PART_ORDER = [PART_NAMES.index({'left_sleeve': 'right_sleeve',
                                      'right_sleeve': 'left_sleeve'}.get(n, n))
                    for n in PART_NAMES]


class CorruptImageError(UserError):
  """An image file that cannot be decoded; the message names the file."""


@dataclasses.dataclass(frozen=True)
class Examples:
  """Everything the pipeline needs per image, as aligned arrays (one row per image)."""
  files: np.ndarray     # (N,) str, absolute image files
  labels: np.ndarray    # (N, 12) int32, -1 = missing
  boxes: np.ndarray     # (N, 6, 4) float32, PART_NAMES order, whole image where absent
  present: np.ndarray   # (N, 6) bool
  case: np.ndarray      # (N,) int32 index into CASES

  def __len__(self) -> int:
    return len(self.files)

  def subset(self, rows: np.ndarray) -> Examples:
    return Examples(*(getattr(self, f.name)[rows] for f in dataclasses.fields(self)))


def make_examples(data_dir: str, table: pd.DataFrame, parts: Mapping[str, Parts]) -> Examples:
  """Aligns a label table with its part extraction; a path without parts is an error naming it."""
  missing = [p for p in table['path'] if p not in parts]
  if missing:
    raise ValueError(f'no part extraction for {len(missing)} image(s), e.g. {missing[0]!r}; '
                     'recompute the parts cache (python -m tf_partfash.parts)')
  arrays = [parts[p].as_arrays() for p in table['path']]
  return Examples(
      files=np.array([image_file(data_dir, p) for p in table['path']]),
      labels=labels_of(table).astype(np.int32),
      boxes=np.stack([a[0] for a in arrays]).reshape(-1, len(PART_NAMES), 4),
      present=np.stack([a[1] for a in arrays]).reshape(-1, len(PART_NAMES)),
      case=np.array([CASES.index(parts[p].case) for p in table['path']], np.int32))


def _decode(data: tf.Tensor, image_size: int) -> tf.Tensor:
  """Decodes JPEG (with DCT down-scaling, much cheaper than decoding full size) or another format
  -> RGB uint8; a PNG's transparent pixels are composited on white, a shop photo's background."""
  def jpeg():
    shape = tf.io.extract_jpeg_shape(data)
    short = tf.minimum(shape[0], shape[1])
    # Largest ratio in {1, 2, 4, 8} that keeps the short side at or above the model input.
    branch = tf.reduce_sum(tf.cast(short // tf.constant([2, 4, 8]) >= image_size, tf.int32))
    return tf.switch_case(branch, [lambda r=r: tf.io.decode_jpeg(data, channels=3, ratio=r)
                                   for r in (1, 2, 4, 8)])

  def png():
    rgba = tf.cast(tf.io.decode_png(data, channels=4), tf.float32)
    alpha = rgba[..., 3:] / 255.0  # 1 everywhere in an opaque PNG: its pixels exactly
    return tf.cast(tf.round(rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)), tf.uint8)

  def other():
    return tf.io.decode_image(data, channels=3, expand_animations=False, dtype=tf.uint8)

  is_png = tf.equal(tf.strings.substr(data, 0, 8), b'\x89PNG\r\n\x1a\n')
  image = tf.case([(tf.io.is_jpeg(data), jpeg), (is_png, png)], default=other, exclusive=True)
  image.set_shape([None, None, 3])
  return image


def load_pixels(file: tf.Tensor, image_size: int) -> tf.Tensor:
  """Reads one image file -> uint8 RGB (image_size, image_size, 3): decoded, resized (bilinear,
  antialiased) and rounded, as Caffe's AlexNet inputs are stored; what the pixel cache holds."""
  image = _decode(tf.io.read_file(file), image_size)
  image = tf.image.resize(tf.cast(image, tf.float32), (image_size, image_size), antialias=True)
  return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


def load_image(file: tf.Tensor, image_size: int) -> tf.Tensor:
  """Reads one image file -> float32 (image_size, image_size, 3), BGR, Caffe mean subtracted."""
  return to_caffe(tf.cast(load_pixels(file, image_size), tf.float32))


def to_caffe(rgb: tf.Tensor) -> tf.Tensor:
  """float32 RGB on a 0..255 scale -> BGR with the Caffe mean subtracted (last axis channels).

  `tf.reverse` and `bias_add` give the same values as `rgb[..., ::-1] - mean` at 2.3x its speed
  on one core (a strided slice and a broadcast over a last axis of 3 are slow per element).
  """
  return tf.nn.bias_add(tf.reverse(rgb, [-1]), -tf.constant(BGR_MEAN))


def flip_example(image: tf.Tensor, boxes: tf.Tensor, present: tf.Tensor):
  """Mirrors an image left-right with its (6, 4) part boxes: x -> 1 - x, sleeves swapped."""
  y1, x1, y2, x2 = tf.unstack(boxes, axis=-1)
  boxes = tf.stack([y1, 1.0 - x2, y2, 1.0 - x1], axis=-1)
  return (tf.image.flip_left_right(image), tf.gather(boxes, _FLIP_PART_ORDER),
          tf.gather(present, _FLIP_PART_ORDER))


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  image_size: int = 227
  batch_size: int = 64
  flip: bool = False      # random horizontal mirroring (training only)
  seed: int = 0


def make_dataset(examples: Examples, order: np.ndarray, config: PipelineConfig,
                 epoch: int = 0, drop_remainder: bool = True,
                 positions: np.ndarray | None = None,
                 pixels: np.ndarray | None = None) -> tf.data.Dataset:
  """Batches of the images at `order` (indices into `examples`), in that order.

  Each element is a dict: `image` (B, S, S, 3) float32, `boxes` (B, 6, 4), `present` (B, 6),
  `case` (B,), `labels` (B, 12) and `index` (B,) (row in `examples`). Shuffling and balancing are
  the caller's choice of `order` (see `data.sampling`); the flip of the image at position k of
  epoch e depends only on (seed, e, k), so an epoch resumed part way, or one worker's share of
  it, sees the same augmentation as the whole epoch when `positions` gives each image's position
  in the whole epoch (default 0, 1, ...). `pixels` ((len(examples), S, S, 3) uint8, e.g. the
  memory-mapped `pixel_cache`) replaces reading and decoding the files by their stored rows,
  which are bitwise what `load_pixels` decodes: the batches are the same.
  """
  tensors = {f.name: tf.constant(getattr(examples, f.name))
             for f in dataclasses.fields(examples)}
  size = config.image_size

  def read(index):
    if pixels is None:
      return load_pixels(tensors['files'][index], size)
    row = tf.numpy_function(lambda i: np.array(pixels[i]), [index], tf.uint8, stateful=False)
    row.set_shape((size, size, 3))
    return row

  def load(position, index):
    image = read(index)  # uint8: a flip moves a quarter of the bytes of a float32 image
    boxes, present = tensors['boxes'][index], tensors['present'][index]
    if config.flip:
      coin = tf.random.stateless_uniform([], seed=tf.stack([
          tf.cast(config.seed * 100_003 + epoch, tf.int64), position]))
      image, boxes, present = tf.cond(coin < 0.5, lambda: flip_example(image, boxes, present),
                                      lambda: (image, boxes, present))
    return {'image': to_caffe(tf.cast(image, tf.float32)), 'boxes': boxes, 'present': present,
            'case': tensors['case'][index], 'labels': tensors['labels'][index],
            'index': tf.cast(index, tf.int32)}

  if positions is None:
    positions = np.arange(len(order))
  ds = tf.data.Dataset.from_tensor_slices((np.asarray(positions, np.int64),
                                           np.asarray(order, np.int64)))
  ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return ds.batch(config.batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def eager_batch(examples: Examples, rows: np.ndarray, image_size: int) -> dict[str, tf.Tensor]:
  """The one batch `make_dataset` gives for `rows` without flips, built eagerly by the same ops:
  building a tf.data pipeline costs about 0.2 s, more than a served photo's whole search."""
  rows = np.asarray(rows, np.int64)
  try:
    images = [load_image(tf.constant(examples.files[r]), image_size) for r in rows]
  except tf.errors.InvalidArgumentError as e:
    raise corrupt_image_error(examples.files[rows], e) from e
  return {'image': tf.stack(images), 'boxes': tf.constant(examples.boxes[rows]),
          'present': tf.constant(examples.present[rows]), 'case': tf.constant(examples.case[rows]),
          'labels': tf.constant(examples.labels[rows]),
          'index': tf.constant(rows.astype(np.int32))}


def batch_shard(order: np.ndarray, batch_size: int, shard: int, shards: int,
                start: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """(rows, positions) of input pipeline `shard` of `shards`: its equal slice of every batch of
  `order` (whole batches of `batch_size`, the first at epoch position `start`), in batch order.

  Each pipeline of a multi-worker run reads and decodes only its slice, and the slices of the
  pipelines together are each global batch, as one pipeline would read it.
  """
  if batch_size % shards:
    raise UserError(f'batch_size {batch_size} does not split over {shards} input pipelines')
  width = batch_size // shards
  columns = slice(shard * width, (shard + 1) * width)
  positions = start + np.arange(len(order))
  return (np.asarray(order).reshape(-1, batch_size)[:, columns].reshape(-1),
          positions.reshape(-1, batch_size)[:, columns].reshape(-1))


def find_unreadable(files: Sequence[str]) -> list[tuple[str, str]]:
  """(file, reason) for every file that cannot be fully decoded."""
  bad = []
  for file in files:
    try:
      with Image.open(file) as im:
        im.load()
    except Exception as e:  # PIL raises many types for truncated/corrupt data.
      bad.append((str(file), f'{type(e).__name__}: {e}'))
  return bad


def readable(files: Sequence[str]) -> np.ndarray:
  """(N,) bool: which files decode fully (`--skip_corrupt_images` keeps only those); each one
  that does not is logged with its reason, then their number."""
  bad = find_unreadable(files)
  for file, reason in bad:
    logging.warning('skipping unreadable image %s (%s)', file, reason)
  if bad:
    logging.warning('skipped %d unreadable image(s) of %d', len(bad), len(files))
  return ~np.isin(np.asarray(files, str), [file for file, _ in bad])


def corrupt_image_error(files: Sequence[str],
                        error: tf.errors.InvalidArgumentError) -> CorruptImageError:
  """The error for a decode failure among `files` (TF's own does not say which file): the
  first of them that does not decode fully is named, with its reason."""
  bad = find_unreadable(files)
  where = f'{bad[0][0]} ({bad[0][1]})' if bad else f'one of {list(files)}'
  return CorruptImageError(f'cannot decode image {where}: {error.message.splitlines()[0]}')


def iterate_batches(dataset: tf.data.Dataset, examples: Examples, order: np.ndarray,
                    batch_size: int) -> Iterator[dict]:
  """Iterates `dataset`; a decode failure becomes a `CorruptImageError` naming the bad file.

  TF's decode error does not say which file failed; the batch position does, so only that
  batch's files are re-checked, and the fast path costs nothing.
  """
  iterator = iter(dataset)
  k = 0
  while True:
    try:
      batch = next(iterator)
    except StopIteration:
      return
    except tf.errors.InvalidArgumentError as e:
      files = examples.files[np.asarray(order)[k * batch_size:(k + 1) * batch_size]]
      raise corrupt_image_error(files, e) from e
    k += 1
    yield batch
