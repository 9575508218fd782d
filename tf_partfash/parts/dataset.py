"""Part extraction over a dataset (§4.3): labels settle the case, a resumable CSV cache, scores.

The parts of every image are computed once before training (the paper quotes 0.1 s per image) and
cached with `write_parts_csv`; `score_parts` compares them with known part boxes, e.g. the true
ones the synthetic generator writes as `parts_truth.csv`. Either extractor of
`config.PART_EXTRACTORS` does it: jump detection, or the regressor of §7.5
(`regression.PartRegressor`), which `ensure_part_regressor` teaches with jump detection's results
on a few hundred images.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import time
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from tf_partfash.attributes import LOWER_BODY_CATEGORIES, MISSING, attribute
from tf_partfash.data.shopping100k import image_file
from tf_partfash.errors import UserError
from tf_partfash.parts.boxes import (CASES, PART_NAMES, Parts, box_iou, read_parts_csv,
                                     write_parts_csv)
from tf_partfash.parts.extraction import WORK_HEIGHT, extract_parts
from tf_partfash.parts.regression import (FORMAT_VERSION, PartRegressor, TRAINING_IMAGES, fit,
                                          teach_mirrored)
from tf_partfash.storage import atomic, cache
from tf_partfash.storage.progress import ProgressLine

# Categories that may be a top, a bottom or both: the image decides (§4.3 "Extract Parts?").
UNDECIDED_CATEGORIES: tuple[str, ...] = ('Swimming', 'Pyjamas')
# A partly computed cache is rewritten at most this often, so an interruption loses little work.
SAVE_EVERY_SECS = 30.0
# Smaller images have too few pixels for a silhouette's parts (and are no shop photo).
MIN_IMAGE_SIDE = 32
PROGRESS_EVERY_SECS = 2.0


def read_image(file: str, min_height: int | None = None) -> np.ndarray:
  """The RGB uint8 array of an image file; an unreadable or truncated file is an error naming it.

  A cut-out (transparent pixels, `is_cut_out`) is composited on white, the background of a shop
  photo, as the input pipeline does (`inputs.pipeline`). With `min_height`, JPEG decoding is
  reduced by DCT scaling (1/2, 1/4, 1/8) to no fewer rows than that: extraction works at
  `WORK_HEIGHT` rows, so decoding more is wasted time.
  """
  try:
    with Image.open(file) as im:
      if min(im.size) < MIN_IMAGE_SIDE:
        raise UserError(f'{file}: {im.width}x{im.height} pixels; an image needs at least '
                        f'{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} to have its parts found and be '
                        'searched')
      if min_height is not None and im.height > min_height:
        im.draft('RGB', (max(1, im.width * min_height // im.height), min_height))
      return np.asarray(on_white(im))
  except UserError:
    raise
  except Exception as e:  # PIL raises many types for truncated/corrupt data.
    raise UserError(f'cannot read image {file}: {type(e).__name__}: {e}') from None


def on_white(image: Image.Image) -> Image.Image:
  """The RGB image, a cut-out's transparent pixels composited on white (a shop photo's
  background)."""
  if _has_alpha(image):
    white = Image.new('RGBA', image.size, (255, 255, 255, 255))
    image = Image.alpha_composite(white, image.convert('RGBA'))
  return image.convert('RGB')


def is_cut_out(file: str) -> bool:
  """Whether an image file has an alpha channel or a transparent colour (a garment cut out of its
  background), which `read_image` and the input pipeline composite on white."""
  try:
    with Image.open(file) as im:
      return _has_alpha(im)
  except Exception:  # unreadable: `read_image` says why
    return False


def _has_alpha(image: Image.Image) -> bool:
  return 'A' in image.getbands() or 'transparency' in image.info


def lower_body_of(category: int) -> bool | None:
  """The "Extract Parts?" decision the category label settles: True (lower body), False (upper
  body), or None (Swimming, Pyjamas, missing label: the image decides)."""
  if category == MISSING:
    return None
  name = attribute('category').value(int(category))
  if name in UNDECIDED_CATEGORIES:
    return None
  return name in LOWER_BODY_CATEGORIES


def _extract_file(job: tuple[str, bool | None], regressor: PartRegressor | None = None) -> Parts:
  file, lower_body = job
  if lower_body:  # No extraction and no decoding: the case is settled.
    return Parts('lower')
  image = read_image(file, WORK_HEIGHT)
  return regressor.extract(image, lower_body) if regressor else extract_parts(image, lower_body)


def _teach_file(job: tuple[str, bool | None]) -> list[tuple[np.ndarray, int, np.ndarray]]:
  return teach_mirrored(read_image(job[0], WORK_HEIGHT), job[1])


# A worker process's regressor, handed over once when the pool starts, not with every job.
_worker_regressor: PartRegressor | None = None


def _start_worker(regressor: PartRegressor | None) -> None:
  global _worker_regressor
  _worker_regressor = regressor


def _extract_in_worker(job: tuple[str, bool | None]) -> Parts:
  return _extract_file(job, _worker_regressor)


# What settles an image's case ("Extract Parts?", §4.3) when its parts are extracted: its category
# label where the label settles it (training images), the image alone (test images under
# `gate='head'`), or nothing: every image is read as an upper-body garment, so its torso and
# sleeve boxes are offered to the network's head (`gate='head_picks'`).
CASE_SOURCES = ('labels', 'image', 'upper_body')


def _jobs(data_dir: str, table: pd.DataFrame, case_from: str) -> list[tuple[str, bool | None]]:
  if case_from not in CASE_SOURCES:
    raise ValueError(f'case_from={case_from!r}; valid: {", ".join(CASE_SOURCES)}')
  lower_body = {'labels': lower_body_of, 'image': lambda c: None, 'upper_body': lambda c: False}
  return [(image_file(data_dir, p), lower_body[case_from](c))
          for p, c in zip(table['path'], table['category'])]


def _imap(function, jobs: list, workers: int, regressor: PartRegressor | None = None) -> Iterable:
  """`function` over `jobs`, in order, over `workers` processes (each given `regressor`)."""
  if workers <= 1:
    _start_worker(regressor)
    yield from map(function, jobs)
    return
  # Spawned, not forked: the caller may hold TensorFlow's threads, which do not survive a fork.
  with multiprocessing.get_context('spawn').Pool(workers, _start_worker, (regressor,)) as pool:
    yield from pool.imap(function, jobs, chunksize=16)


def _iter_parts(data_dir: str, table: pd.DataFrame, workers: int, case_from: str,
                regressor: PartRegressor | None) -> Iterable[tuple[str, Parts]]:
  """`(path, Parts)` for every row of `table`, in order, over `workers` processes."""
  jobs = _jobs(data_dir, table, case_from)
  yield from zip(table['path'].tolist(), _imap(_extract_in_worker, jobs, workers, regressor))


def regressor_sample(table: pd.DataFrame,
                     images: int = TRAINING_IMAGES) -> pd.DataFrame:
  """The rows of `table` a part regressor is taught on: a fixed random sample of `images`, in
  table order."""
  pick = np.random.default_rng(0).permutation(len(table))[:images]
  return table.iloc[np.sort(pick)]


def _names_digest(table: pd.DataFrame) -> str:
  return cache.digest('\n'.join(table['path']).encode())


def regressor_file(folder: str, sample: pd.DataFrame) -> str:
  """Where a regressor taught on `sample` is kept in `folder`: named by the images and format."""
  return os.path.join(folder, f'part_regressor_v{FORMAT_VERSION}_{_names_digest(sample)}.npz')


def teach_part_regressor(data_dir: str, table: pd.DataFrame, workers: int = 1,
                         progress: bool = True) -> PartRegressor:
  """A `PartRegressor` taught on the images of `table` and their mirror images (§7.5): their
  case and landmarks found by jump detection, with the case the category label settles where it
  does (§4.3), as for training images."""
  line = ProgressLine(len(table), PROGRESS_EVERY_SECS, unit='image') if progress else None
  taught = []
  for done, records in enumerate(_imap(_teach_file, _jobs(data_dir, table, 'labels'), workers),
                                 start=1):
    taught += records
    if line:
      line.update(done, 'teaching the part regressor (jump detection)')
  if line:
    line.close()
  x, case, landmarks = (np.stack(column) for column in zip(*taught))
  return fit(x, case, landmarks, _names_digest(table), images=len(table))


def ensure_part_regressor(data_dir: str, table: pd.DataFrame, file: str, workers: int = 1,
                          progress: bool = True) -> PartRegressor:
  """The regressor saved in `file`, or one taught on `table`'s images (`teach_part_regressor`)
  and saved there: one process teaches at a time (a lock beside the file), another waits and
  reads it. A file taught on other images is an error (its name should say which)."""
  wanted = _names_digest(table)
  if not os.path.exists(file):
    with atomic.exclusive(f'{file}.lock', f'teaching the part regressor {file}'):
      if not os.path.exists(file):
        atomic.remove_stale(file)
        logging.info('no part regressor at %s: teaching one on %d images', file, len(table))
        started = time.monotonic()
        teach_part_regressor(data_dir, table, workers, progress).save(file)
        logging.info('part regressor taught in %.0f s: %s', time.monotonic() - started, file)
  regressor = PartRegressor.load(file)
  if regressor.trained_on != wanted:
    raise UserError(f'{file} was taught on other images ({regressor.images}, digest '
                    f'{regressor.trained_on}, not {wanted}); delete it to teach a new one')
  return regressor


def compute_parts(data_dir: str, table: pd.DataFrame, workers: int = 1,
                  progress: bool = True, case_from: str = 'labels',
                  regressor: PartRegressor | None = None) -> dict[str, Parts]:
  """`{path: Parts}` for every image of a `read_attributes` table, in table order.

  `case_from` (`CASE_SOURCES`): 'labels' (training, §4.3), the category label settles the case
  where it can (`lower_body_of`), and images it settles as lower body are not even decoded;
  'image' (test images, §4.2), the image alone decides; 'upper_body', every image's upper-body
  parts. Jump detection extracts them, or `regressor` when given.
  An unreadable image is an error naming it. `progress` prints a progress line on stderr every
  few seconds.
  """
  return dict(_computed(data_dir, table, workers, progress, case_from, regressor))


def _computed(data_dir: str, table: pd.DataFrame, workers: int, progress: bool,
              case_from: str, regressor: PartRegressor | None) -> Iterable[tuple[str, Parts]]:
  line = ProgressLine(len(table), PROGRESS_EVERY_SECS, unit='image') if progress else None
  for done, record in enumerate(_iter_parts(data_dir, table, workers, case_from, regressor),
                                start=1):
    if line:
      line.update(done, 'parts')
    yield record
  if line:
    line.close()


def ensure_parts(data_dir: str, table: pd.DataFrame, cache_path: str, workers: int = 1,
                 progress: bool = True, case_from: str = 'labels',
                 regressor: PartRegressor | None = None) -> dict[str, Parts]:
  """`{path: Parts}` for every image of `table`, from the CSV cache at `cache_path` where it can
  (`compute_parts`: a cache holds one `case_from` and one extractor).

  Images missing from the cache are computed and the cache replaced whole every
  `SAVE_EVERY_SECS`, at the end and when interrupted, so a new run resumes where one stopped (a
  SIGKILL loses at most `SAVE_EVERY_SECS` of work). One process at a time computes into a cache
  (a lock beside it); another waits, then finds the images computed. Cached images that are not
  in `table` are kept in the file.
  """
  missing = lambda cached: ~table['path'].isin(list(cached))
  cached = read_parts_csv(cache_path) if os.path.exists(cache_path) else {}
  if missing(cached).any():
    with atomic.exclusive(f'{cache_path}.lock', f'computing parts into {cache_path}'):
      atomic.remove_stale(cache_path)
      cached = read_parts_csv(cache_path) if os.path.exists(cache_path) else {}
      todo = missing(cached)
      if todo.any():
        _compute_into(cached, data_dir, table[todo], cache_path, workers, progress, case_from,
                      regressor)
        # What the file holds (boxes rounded to 5 decimals), not the values just computed: the
        # run that computes the cache then trains on exactly the boxes every later run reads.
        cached = read_parts_csv(cache_path)
  return {path: cached[path] for path in table['path']}


def _compute_into(cached: dict[str, Parts], data_dir: str, table: pd.DataFrame, cache_path: str,
                  workers: int, progress: bool, case_from: str,
                  regressor: PartRegressor | None) -> None:
  last_save = time.monotonic()
  try:
    for path, parts in _computed(data_dir, table, workers, progress, case_from, regressor):
      cached[path] = parts
      if time.monotonic() - last_save >= SAVE_EVERY_SECS:
        write_parts_csv(cache_path, cached.items())
        last_save = time.monotonic()
  finally:  # Also on an error or Ctrl-C: what was computed is kept for the next run.
    write_parts_csv(cache_path, cached.items())


def score_parts(predicted: dict[str, Parts], truth: dict[str, Parts]) -> dict:
  """Scores extracted parts against true ones over the images both cover.

  Returns `images` (their number), `case_accuracy`, `confusion` (int (3, 3), rows true and columns
  predicted case in `CASES` order), and per part of `PART_NAMES` the mean IoU over the images where
  both have the part (`iou`, NaN where none) and that number of images (`iou_count`).
  """
  common = [p for p in truth if p in predicted]
  if not common:
    raise UserError('no image is in both the predicted and the true parts')
  confusion = np.zeros((len(CASES), len(CASES)), np.int64)
  ious: dict[str, list[float]] = {name: [] for name in PART_NAMES}
  for path in common:
    t, p = truth[path], predicted[path]
    confusion[CASES.index(t.case), CASES.index(p.case)] += 1
    for name in PART_NAMES:
      if name in t.boxes and name in p.boxes:
        ious[name].append(box_iou(t.boxes[name], p.boxes[name]))
  return {
      'images': len(common),
      'case_accuracy': float(np.trace(confusion) / len(common)),
      'confusion': confusion,
      'iou': {n: float(np.mean(v)) if v else float('nan') for n, v in ious.items()},
      'iou_count': {n: len(v) for n, v in ious.items()},
  }


def format_scores(scores: dict, cases: Sequence[str] = CASES) -> str:
  """A printable summary of `score_parts`."""
  lines = [f'images: {scores["images"]}', f'case accuracy: {100 * scores["case_accuracy"]:.1f}%',
           'confusion (rows true, columns predicted): ' + ' '.join(f'{c:>10}' for c in cases)]
  for case, row in zip(cases, scores['confusion']):
    lines.append(f'{case:>41} ' + ' '.join(f'{int(v):>10}' for v in row))
  lines.append('mean IoU per part:')
  for name in PART_NAMES:
    lines.append(f'  {name:<13} {scores["iou"][name]:.3f}  ({scores["iou_count"][name]} images)')
  return '\n'.join(lines)
