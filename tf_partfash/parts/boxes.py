"""The result of part extraction (§4.3): a case and named part boxes, and their CSV cache.

Boxes are normalised `(y1, x1, y2, x2)` in [0, 1], the convention of `tf.image.crop_and_resize`.
`left_sleeve` is the sleeve on the image's left. Absent parts are omitted from `Parts.boxes` and
written as empty CSV cells.
"""
from __future__ import annotations

import csv
import dataclasses
import os
from typing import Iterable, Mapping

import numpy as np

from tf_partfash.errors import UserError
from tf_partfash.storage import atomic

PART_NAMES: tuple[str, ...] = ('collar', 'torso', 'chest', 'left_sleeve', 'right_sleeve',
                               'fastening')
# Outputs of the "Extract Parts?" head (§4.3), in this order.
CASES: tuple[str, ...] = ('lower', 'sleeve', 'sleeveless')
CSV_COLUMNS: tuple[str, ...] = ('path', 'case') + tuple(
    f'{p}_{c}' for p in PART_NAMES for c in ('y1', 'x1', 'y2', 'x2'))
WHOLE_IMAGE = (0.0, 0.0, 1.0, 1.0)

Box = tuple[float, float, float, float]


@dataclasses.dataclass(frozen=True)
class Parts:
  """Part extraction of one image: `case` in `CASES` and the boxes of the parts found."""
  case: str
  boxes: Mapping[str, Box] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    if self.case not in CASES:
      raise ValueError(f'unknown case {self.case!r}; valid cases: {", ".join(CASES)}')
    for name, box in self.boxes.items():
      if name not in PART_NAMES:
        raise ValueError(f'unknown part {name!r}; valid parts: {", ".join(PART_NAMES)}')
      y1, x1, y2, x2 = box
      if not (0.0 <= y1 <= y2 <= 1.0 and 0.0 <= x1 <= x2 <= 1.0):
        raise ValueError(f'part {name!r}: box {box} is not a normalised (y1, x1, y2, x2) box')
    object.__setattr__(self, 'boxes', {n: tuple(float(v) for v in self.boxes[n])
                                       for n in PART_NAMES if n in self.boxes})

  def flipped(self) -> Parts:
    """The parts of the horizontally mirrored image: x -> 1 - x, left and right sleeves swapped."""
    swap = {'left_sleeve': 'right_sleeve', 'right_sleeve': 'left_sleeve'}
    return Parts(self.case, {swap.get(n, n): (y1, 1.0 - x2, y2, 1.0 - x1)
                             for n, (y1, x1, y2, x2) in self.boxes.items()})

  def as_arrays(self) -> tuple[np.ndarray, np.ndarray]:
    """`(boxes, present)`: float32 (6, 4) in `PART_NAMES` order (absent = whole image), bool (6,)."""
    boxes = np.array([self.boxes.get(n, WHOLE_IMAGE) for n in PART_NAMES], np.float32)
    present = np.array([n in self.boxes for n in PART_NAMES], bool)
    return boxes, present


def box_iou(a: Box, b: Box) -> float:
  """Intersection over union of two `(y1, x1, y2, x2)` boxes."""
  ih = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
  iw = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
  inter = ih * iw
  union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
  return inter / union if union > 0 else 0.0


def write_parts_csv(path: str, records: Iterable[tuple[str, Parts]]) -> None:
  """Writes `(image path, Parts)` records, replacing `path` whole (`atomic.replacing`)."""
  with atomic.replacing(path) as tmp, open(tmp, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(CSV_COLUMNS)
    for image_path, parts in records:
      row = [image_path, parts.case]
      for name in PART_NAMES:
        box = parts.boxes.get(name)
        row += [f'{v:.5f}' for v in box] if box is not None else [''] * 4
      writer.writerow(row)


def read_parts_csv(path: str) -> dict[str, Parts]:
  """Reads a parts CSV into `{image path: Parts}`; a bad row is an error naming file and line."""
  if not os.path.exists(path):
    raise FileNotFoundError(f'parts file not found: {path}')
  out: dict[str, Parts] = {}
  with open(path, newline='') as f:
    reader = csv.reader(f)
    header = next(reader, None)
    if header is None or tuple(header) != CSV_COLUMNS:
      raise UserError(f'{path}:1: expected header {",".join(CSV_COLUMNS)}, got {header}')
    for line, row in enumerate(reader, start=2):
      try:
        if len(row) != len(CSV_COLUMNS):
          raise UserError(f'expected {len(CSV_COLUMNS)} columns, got {len(row)}')
        boxes = {}
        for k, name in enumerate(PART_NAMES):
          cells = row[2 + 4 * k:6 + 4 * k]
          if any(cells):
            boxes[name] = tuple(float(c) for c in cells)
        out[row[0]] = Parts(row[1], boxes)
      except ValueError as e:
        raise UserError(f'{path}:{line}: {e} (row: {",".join(row)})') from None
  return out
