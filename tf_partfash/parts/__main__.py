"""Part extraction from the command line (§4.3).

  python -m tf_partfash.parts --data_dir DIR --output parts.csv [--workers N] [--truth TRUTH.csv]
      [--case_from labels|image|upper_body]
      parts of every image of a dataset in the Shopping100k layout, cached in (and resumed from)
      `--output`; with `--truth` the scores against true part boxes are printed. The case comes
      from the category label where it settles it (as for training images), from the image alone
      (as for test images), or every image is read as an upper-body garment.
  python -m tf_partfash.parts --image IMG --overlay out.png [--lower_body true|false]
      draws one image's part boxes and case.

With --part_extractor=regression (§7.5) the parts come from a regressor of the jump points. With
--data_dir it is read from --regressor (default: a part_regressor_v<N>_<digest>.npz beside
--output), or taught there first on 400 of the dataset's images; with --image, --regressor must
name one taught so.
"""
from __future__ import annotations

import argparse
import os

import cv2
import numpy as np

from tf_partfash.cli import exit_on_user_error
from tf_partfash.config import PART_EXTRACTORS
from tf_partfash.data.shopping100k import read_attributes
from tf_partfash.parts.boxes import PART_NAMES, Parts, read_parts_csv
from tf_partfash.parts.dataset import (CASE_SOURCES, ensure_part_regressor, ensure_parts,
                                       format_scores,
                                       read_image, regressor_file, regressor_sample, score_parts)
from tf_partfash.parts.extraction import extract_parts
from tf_partfash.parts.regression import PartRegressor

PROG = 'python -m tf_partfash.parts'
# One RGB colour per part, in `PART_NAMES` order.
PART_COLOURS = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
                (70, 240, 240))


def draw_parts(image: np.ndarray, parts: Parts) -> np.ndarray:
  """A copy of an RGB image with each part box drawn and labelled in its colour, and the case."""
  out = np.ascontiguousarray(image).copy()
  h, w = out.shape[:2]
  thick = max(1, round(h / 300))
  scale = h / 1100
  for name, colour in zip(PART_NAMES, PART_COLOURS):
    if name not in parts.boxes:
      continue
    y1, x1, y2, x2 = parts.boxes[name]
    p1 = (round(x1 * (w - 1)), round(y1 * (h - 1)))
    cv2.rectangle(out, p1, (round(x2 * (w - 1)), round(y2 * (h - 1))), colour, thick)
    cv2.putText(out, name, (p1[0] + 2 * thick, p1[1] + round(28 * scale)),
                cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale, colour, thick, cv2.LINE_AA)
  # The case in the top left corner, on white so that it reads over the garment too.
  (tw, th), base = cv2.getTextSize(parts.case, cv2.FONT_HERSHEY_SIMPLEX, 1.2 * scale, 2 * thick)
  cv2.rectangle(out, (0, 0), (tw + 2 * base, th + 2 * base), (255, 255, 255), cv2.FILLED)
  cv2.putText(out, parts.case, (base, th + base), cv2.FONT_HERSHEY_SIMPLEX, 1.2 * scale,
              (0, 0, 0), 2 * thick, cv2.LINE_AA)
  return out


def _bool(text: str) -> bool:
  if text.lower() not in ('true', 'false'):
    raise argparse.ArgumentTypeError(f'expected true or false, got {text!r}')
  return text.lower() == 'true'


def _check_writable_folder(parser: argparse.ArgumentParser, flag: str, file: str) -> None:
  """Fails at once, not after the whole extraction, when `file` cannot be written."""
  folder = os.path.dirname(os.path.abspath(file))
  if not os.path.isdir(folder):
    parser.error(f'{flag}={file}: folder {folder} does not exist')
  if not os.access(folder, os.W_OK):
    parser.error(f'{flag}={file}: folder {folder} is not writable')


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--data_dir', help='dataset in the Shopping100k layout')
  parser.add_argument('--output', help='parts CSV to write (and resume from)')
  parser.add_argument('--workers', type=int, default=1, help='processes extracting parts')
  parser.add_argument('--truth', help='CSV of true parts to score the output against')
  parser.add_argument('--image', help='one image to draw the parts of')
  parser.add_argument('--overlay', help='PNG/JPEG to write the drawing to')
  parser.add_argument('--lower_body', type=_bool, default=None,
                      help='true|false when known; default: the image decides')
  parser.add_argument('--part_extractor', choices=PART_EXTRACTORS, default='jumps',
                      help='jump detection (§4.3) or its points regressed (§7.5)')
  parser.add_argument('--case_from', choices=CASE_SOURCES, default='labels',
                      help='what settles each image\'s case (default: its category label)')
  parser.add_argument('--regressor', help='part regressor file (.npz) of --part_extractor='
                      'regression')
  args = parser.parse_args(argv)
  exit_on_user_error(PROG, lambda: _run(parser, args))


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
  if (args.data_dir is None) == (args.image is None):
    parser.error('give either --data_dir (with --output) or --image (with --overlay)')
  if args.regressor is not None and args.part_extractor != 'regression':
    parser.error('--regressor is read with --part_extractor=regression only')
  if args.image is not None:
    if args.overlay is None:
      parser.error('--image needs --overlay')
    _check_writable_folder(parser, '--overlay', args.overlay)
    extract = extract_parts
    if args.part_extractor == 'regression':
      if args.regressor is None or not os.path.exists(args.regressor):
        parser.error(f'--part_extractor=regression needs --regressor, a trained part regressor '
                     f'(got {args.regressor}); teach one with {PROG} --data_dir DIR --output '
                     'parts.csv --part_extractor=regression --regressor FILE.npz')
      extract = PartRegressor.load(args.regressor).extract
    image = read_image(args.image)
    parts = extract(image, args.lower_body)
    drawing = cv2.cvtColor(draw_parts(image, parts), cv2.COLOR_RGB2BGR)
    try:
      written = cv2.imwrite(args.overlay, drawing)
    except cv2.error as e:  # e.g. an extension no image writer knows
      raise OSError(f'cannot write {args.overlay}: {e}') from None
    if not written:
      raise OSError(f'cannot write {args.overlay}')
    print(f'{args.image}: {parts.case}; parts: {", ".join(parts.boxes) or "none"} '
          f'-> {args.overlay}')
    return
  if args.output is None:
    parser.error('--data_dir needs --output')
  if args.workers < 1:
    parser.error(f'--workers must be at least 1, got {args.workers}')
  _check_writable_folder(parser, '--output', args.output)
  table = read_attributes(args.data_dir)
  regressor = None
  if args.part_extractor == 'regression':
    if args.regressor and os.path.exists(args.regressor):  # taught before, on whichever images
      file, regressor = args.regressor, PartRegressor.load(args.regressor)
    else:
      sample = regressor_sample(table)
      file = args.regressor or regressor_file(os.path.dirname(os.path.abspath(args.output)),
                                              sample)
      regressor = ensure_part_regressor(args.data_dir, sample, file, args.workers)
    print(f'part regressor: {file} (taught on {regressor.images} images)')
  parts = ensure_parts(args.data_dir, table, args.output, args.workers,
                       case_from=args.case_from, regressor=regressor)
  print(f'{len(parts)} images -> {args.output}')
  if args.truth is not None:
    print(format_scores(score_parts(parts, read_parts_csv(args.truth))))


if __name__ == '__main__':
  main()
