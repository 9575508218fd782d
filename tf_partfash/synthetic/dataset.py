"""The built-in synthetic in-shop dataset, written in the real Shopping100k layout (paper §3).

Each image shows one frontal garment on white (see `garments`) whose special attributes (collar,
color, fastening, pattern, sleevelen; §4.1) are all drawn visibly where §4.3/§6 look for them, with
cheap visible cues for the general ones (category by silhouette and length, fit by width, pockets).
The labels come from `catalogue`: a seeded catalogue of styles sold in several versions
(colourways, sleeve lengths, ...), so §7's exact-match queries find targets as in a real shop;
the versions of a style share the garment's shape. The true parts go to `parts_truth.csv`.

The catalogue depends on the seed alone and every image's randomness on `(seed, image index)`
alone, so any number of workers writes identical files. Generation is resumable: each finished
chunk of images is recorded, and a rerun after an interruption renders only the rest.

  python -m tf_partfash.synthetic.dataset --out DIR --num_images N --seed S [--workers 2]
      [--width 381 --height 550] [--images_per_style 8] [--contact_sheet out.png]
      (an existing dataset of these settings is kept; an unfinished one is completed)
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
from typing import Iterable, Sequence

import cv2
import numpy as np

from tf_partfash.attributes import MISSING, attribute
from tf_partfash.cli import exit_on_user_error
from tf_partfash.data import shopping100k
from tf_partfash.errors import UserError
from tf_partfash.parts.boxes import Parts, read_parts_csv, write_parts_csv
from tf_partfash.storage import atomic, cache
from tf_partfash.storage.progress import ProgressLine
from tf_partfash.synthetic import catalogue
from tf_partfash.synthetic.garments import render

PARTS_FILE = 'parts_truth.csv'
MARKER_FILE = 'synthetic.json'
# Bump when the images or labels change, so `ensure_dataset` refuses a stale directory.
# 3: a catalogue of styles with versions. 4: keyword label noise, closer colours, more tops.
VERSION = 4
JPEG_QUALITY = 90
_CHUNK = 32
PARTIAL_DIR = '.synthetic.partial'  # records of the finished chunks of an unfinished generation
PROGRESS_EVERY_SECS = 10.0

def is_synthetic(data_dir: str) -> bool:
  """Whether `data_dir` is a dataset this module generated (it holds the marker file)."""
  return os.path.exists(os.path.join(data_dir, MARKER_FILE))


def _render_chunk(args: tuple[str, int, int, int, int, Sequence[int], str]) -> list[tuple]:
  """Renders and writes the images of one chunk, then its record in `partial` (so an interrupted
  generation resumes after it); returns (path, labels, Parts) per image."""
  out_dir, seed, width, height, styles, indices, partial = args
  cat = catalogue.make_catalogue(seed, styles)  # cached: built once per process
  rows = []
  for index in indices:
    _, look, labels, path, rng = catalogue.draw_image(seed, index, cat)
    img, parts = render(look, width, height, rng)
    file = shopping100k.image_file(out_dir, path)
    os.makedirs(os.path.dirname(file), exist_ok=True)
    ok, buf = cv2.imencode('.jpg', img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
      raise RuntimeError(f'JPEG encoding failed for {file}')
    with atomic.replacing(file) as tmp:
      buf.tofile(tmp)
    rows.append((path, catalogue.label_indices(labels), parts))
  atomic.write_json(_chunk_record(partial, indices[0]), [
      {'path': p, 'labels': [int(v) for v in l], 'case': q.case,
       'boxes': {n: list(b) for n, b in q.boxes.items()}} for p, l, q in rows])
  return rows


def _chunk_record(partial: str, first: int) -> str:
  return os.path.join(partial, f'chunk_{first:07d}.json')


def _read_chunk(file: str) -> list[tuple] | None:
  """A finished chunk's rows, or None when its record is absent or unreadable (cut short)."""
  try:
    with open(file, encoding='utf-8') as f:
      records = json.load(f)
    return [(r['path'], np.array(r['labels'], np.int64), Parts(r['case'], r['boxes']))
            for r in records]
  except (OSError, ValueError, KeyError, TypeError):
    return None


def _single_thread() -> None:
  cv2.setNumThreads(1)  # one process per core: OpenCV's own threads would oversubscribe


def generate(out_dir: str, num_images: int, seed: int = 0, width: int = 381, height: int = 550,
             workers: int = 1,
             images_per_style: float = catalogue.DEFAULT_IMAGES_PER_STYLE,
             progress: bool = True) -> None:
  """Writes `num_images` images, the 12 attribute files, `parts_truth.csv` and the marker; the
  catalogue has about `num_images / images_per_style` styles. `progress`: a line on stderr every
  `PROGRESS_EVERY_SECS`."""
  if num_images < 1 or num_images >= 10 ** 7:
    raise UserError(f'num_images must be in 1..9999999 (7-digit product ids), got {num_images}')
  if width < 64 or height < 64:
    raise UserError(f'image size {width}x{height} is too small (at least 64x64)')
  if workers < 1:
    raise UserError(f'workers must be >= 1, got {workers}')
  styles = catalogue.num_styles(num_images, images_per_style)
  marker = os.path.join(out_dir, MARKER_FILE)
  if os.path.exists(marker):
    os.remove(marker)  # the directory is inconsistent until the new marker is written
  os.makedirs(out_dir, exist_ok=True)
  # Finished chunks are recorded here: a rerun of an interrupted generation renders the rest.
  partial = os.path.join(out_dir, PARTIAL_DIR)
  cache.start_job(partial, {**_params(num_images, seed, width, height, images_per_style),
                            'styles': styles})
  starts = range(0, num_images, _CHUNK)
  done = {a: rows for a in starts if (rows := _read_chunk(_chunk_record(partial, a))) is not None}
  tasks = [(out_dir, seed, width, height, styles, range(a, min(a + _CHUNK, num_images)), partial)
           for a in starts if a not in done]
  finished = sum(len(r) for r in done.values())
  line = (ProgressLine(num_images, PROGRESS_EVERY_SECS, start=finished, unit='image')
          if progress else None)

  def collect(chunks: Iterable[list[tuple]]) -> None:
    count = finished
    for task, chunk in zip(tasks, chunks):
      done[task[5][0]] = chunk
      count += len(chunk)
      if line:
        line.update(count, f'synthetic {out_dir}')

  if workers == 1:
    collect(map(_render_chunk, tasks))
  else:
    with multiprocessing.get_context('spawn').Pool(workers, initializer=_single_thread) as pool:
      collect(pool.imap(_render_chunk, tasks))
  rows = [row for a in starts for row in done[a]]
  paths = [r[0] for r in rows]
  shopping100k.write_attributes(out_dir, paths, np.stack([r[1] for r in rows]))
  write_parts_csv(os.path.join(out_dir, PARTS_FILE), [(r[0], r[2]) for r in rows])
  with open(marker, 'w', encoding='utf-8') as f:
    json.dump(_params(num_images, seed, width, height, images_per_style), f, indent=1)
  shutil.rmtree(partial)


def _params(num_images: int, seed: int, width: int, height: int,
            images_per_style: float) -> dict[str, float]:
  return {'version': VERSION, 'num_images': num_images, 'seed': seed, 'width': width,
          'height': height, 'images_per_style': images_per_style}


def ensure_dataset(out_dir: str, num_images: int, seed: int = 0, width: int = 381,
                   height: int = 550, workers: int = 1,
                   images_per_style: float = catalogue.DEFAULT_IMAGES_PER_STYLE) -> str:
  """Generates the dataset into `out_dir` unless its marker shows it already exists; returns it.

  A marker with other parameters is an error naming both, rather than silently mixing datasets.
  """
  marker = os.path.join(out_dir, MARKER_FILE)
  wanted = _params(num_images, seed, width, height, images_per_style)
  if os.path.exists(marker):
    with open(marker, encoding='utf-8') as f:
      found = json.load(f)
    if found != wanted:
      raise UserError(f'{marker} describes a synthetic dataset {found}, but {wanted} was asked '
                      'for; delete the directory or choose another one')
    return out_dir
  generate(out_dir, num_images, seed, width, height, workers, images_per_style)
  return out_dir


_SHEET_ATTRS = ('collar', 'color', 'fastening', 'pattern', 'sleevelen')
_PART_COLORS = {'collar': (220, 0, 0), 'torso': (0, 160, 0), 'chest': (0, 0, 230),
                'left_sleeve': (230, 130, 0), 'right_sleeve': (200, 0, 200),
                'fastening': (0, 170, 200)}


def render_contact_sheet(data_dir: str, out_png: str, num: int = 24, columns: int = 6,
                         scale: float = 0.5, parts: bool = False, start: int = 0) -> None:
  """A PNG grid of images `start..start+num` with category, gender and the five special labels
  written under each (`-` = missing), to check by eye that every attribute is visible; with
  `parts` the true part boxes are drawn too."""
  table = shopping100k.read_attributes(data_dir, check_images=False).iloc[start:start + num]
  if table.empty:
    raise UserError(f'{data_dir}: no images in rows {start}..{start + num - 1}')
  truth = read_parts_csv(os.path.join(data_dir, PARTS_FILE)) if parts else {}
  tiles = []
  for _, row in table.iterrows():
    file = shopping100k.image_file(data_dir, row['path'])
    img = cv2.imread(file)
    if img is None:
      raise FileNotFoundError(f'cannot read image {file}')
    img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = img.shape[:2]
    if row['path'] in truth:
      for name, (y1, x1, y2, x2) in truth[row['path']].boxes.items():
        cv2.rectangle(img, (int(x1 * w), int(y1 * h)), (int(x2 * w), int(y2 * h)),
                      _PART_COLORS[name][::-1], 1)
    lines = [f"{_value('category', row)} / {_value('gender', row)}"]
    lines += [f'{a[:6]}: {_value(a, row)}' for a in _SHEET_ATTRS]
    text = np.full((16 * len(lines) + 6, w, 3), 255, np.uint8)
    for k, line in enumerate(lines):
      cv2.putText(text, line, (3, 14 + 16 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1,
                  cv2.LINE_AA)
    tiles.append(np.vstack([img, text]))
  blank = np.full_like(tiles[0], 255)
  tiles += [blank] * (-len(tiles) % columns)
  rows = [np.hstack(tiles[r:r + columns]) for r in range(0, len(tiles), columns)]
  os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
  if not cv2.imwrite(out_png, np.vstack(rows)):
    raise OSError(f'cannot write contact sheet {out_png}')


def _value(name: str, row) -> str:
  index = int(row[name])
  return '-' if index == MISSING else attribute(name).value(index)


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', required=True, help='dataset directory to write')
  parser.add_argument('--num_images', type=int, required=True)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--workers', type=int, default=1)
  parser.add_argument('--width', type=int, default=381)
  parser.add_argument('--height', type=int, default=550)
  parser.add_argument('--images_per_style', type=float,
                      default=catalogue.DEFAULT_IMAGES_PER_STYLE,
                      help='catalogue size: about num_images / images_per_style styles')
  parser.add_argument('--contact_sheet', help='also write a contact sheet PNG of the first images')
  parser.add_argument('--sheet_parts', action='store_true',
                      help='draw the true part boxes on the contact sheet')
  args = parser.parse_args(argv)

  def run() -> None:
    ensure_dataset(args.out, args.num_images, args.seed, args.width, args.height, args.workers,
                   args.images_per_style)
    if args.contact_sheet:
      render_contact_sheet(args.out, args.contact_sheet, parts=args.sheet_parts)
    print(f'{args.out}: {args.num_images} synthetic images')
  exit_on_user_error('python -m tf_partfash.synthetic.dataset', run)


if __name__ == '__main__':
  main()
