"""Reads and writes a dataset in the Shopping100k layout as it is distributed (paper §3).

```
<data_dir>/Images/<Gender>/<k>_<CategoryFolder>/<product id>_<n>.jpg
<data_dir>/Attributes/<attr>.txt     one line per image: "<path under Images/> <value index>"
```
One space separates path and index, `-1` marks a missing label and the last line has no trailing
newline. The built-in synthetic dataset is written in this same layout, so this is the only loader.
"""
from __future__ import annotations

import io
import os

import numpy as np
import pandas as pd

from tf_partfash.attributes import ATTRIBUTES, ATTRIBUTE_NAMES, MISSING
from tf_partfash.errors import UserError

IMAGES_DIR = 'Images'
ATTRIBUTES_DIR = 'Attributes'

CATEGORY_FOLDERS: dict[str, tuple[str, ...]] = {
    'Male': ('Coats', 'Jackets', 'Suits', 'Shirts', 'T_shirts', 'Jumpers', 'Shorts', 'Trousers',
             'Jeans', 'Swimming', 'Jumpsuits', 'Pyjamas', 'Tracksuit_Bottoms', 'Tracksuit'),
    'Female': ('Coats', 'Jackets', None, 'Shirts_blouses', 'T_shirts_tops', 'Jumpers', 'Shorts',
               'Trousers', 'Jeans', 'Swimming', 'Jumpsuits', 'Pyjamas', 'Tracksuit_Bottoms',
               'Tracksuit', 'Skirts', 'Dresses'),
}


def category_folder(gender: str, category: int) -> str:
  """The `<k>_<CategoryFolder>` folder name of a category index (0-based) for a gender."""
  if gender not in CATEGORY_FOLDERS:
    raise UserError(f'unknown gender {gender!r}; valid genders: {", ".join(CATEGORY_FOLDERS)}')
  folders = CATEGORY_FOLDERS[gender]
  if not 0 <= category < len(folders) or folders[category] is None:
    raise UserError(f'category {category} does not exist for gender {gender!r}')
  return f'{category + 1}_{folders[category]}'


def image_file(data_dir: str, path: str) -> str:
  """Absolute file of an image given by its path relative to `Images/`."""
  return os.path.join(data_dir, IMAGES_DIR, path)


def _read_attribute_file(file: str, attr_index: int) -> tuple[list[str], np.ndarray]:
  attr = ATTRIBUTES[attr_index]
  if not os.path.exists(file):
    raise FileNotFoundError(f'attribute file not found: {file}')
  paths, labels = [], []
  with open(file, 'rb') as f:
    data = f.read()
  try:
    text = data.decode('utf-8')
  except UnicodeDecodeError as e:
    line_no = data.count(b'\n', 0, e.start) + 1
    offset = e.start - (data.rfind(b'\n', 0, e.start) + 1) + 1
    raise UserError(f'{file}:{line_no}: not UTF-8 text (byte 0x{data[e.start]:02x}, byte '
                    f'{offset} of the line)') from None
  if text.startswith('\ufeff'):
    raise UserError(f'{file}:1: starts with a UTF-8 byte-order mark (bytes EF BB BF); save the '
                    'file without it, as Shopping100k is distributed')
  for line_no, line in enumerate(io.StringIO(text, newline=None), start=1):
    line = line.rstrip('\r\n')
    if not line:
      raise UserError(f'{file}:{line_no}: empty line')
    fields = line.split(' ')
    if len(fields) > 2 and all(f.lstrip('-').isdigit() for f in fields[1:]):
      raise UserError(f'{file}:{line_no}: {len(fields) - 1} values after the image path '
                      f'{fields[0]!r}; expected one value index, got {line!r}')
    if len(fields) > 2 and fields[-1].lstrip('-').isdigit():
      raise UserError(f'{file}:{line_no}: image path {" ".join(fields[:-1])!r} contains a space; '
                      'one space separates path and value index, so paths cannot contain spaces')
    if len(fields) != 2 or not fields[0]:
      raise UserError(f'{file}:{line_no}: expected "<path> <value index>", got {line!r}')
    try:
      value = int(fields[1])
    except ValueError:
      raise UserError(f'{file}:{line_no}: value index {fields[1]!r} is not an integer') from None
    if not MISSING <= value < attr.num_values:
      raise UserError(f'{file}:{line_no}: value index {value} outside the {attr.name!r} '
                      f'vocabulary (-1 or 0..{attr.num_values - 1})')
    paths.append(fields[0])
    labels.append(value)
  if not paths:
    raise UserError(f'{file}: no lines')
  return paths, np.asarray(labels, np.int64)


def read_attributes(data_dir: str, check_images: bool = True) -> pd.DataFrame:
  """The dataset's label table: column `path` (relative to `Images/`) and one int column per attribute.

  Rows keep the order of the attribute files. All 12 files must list the same images in the same
  order; with `check_images` every listed image must exist. Any violation is an error naming the
  file, line and value.
  """
  columns: dict[str, np.ndarray] = {}
  reference_paths: list[str] | None = None
  reference_file = ''
  for j, name in enumerate(ATTRIBUTE_NAMES):
    file = os.path.join(data_dir, ATTRIBUTES_DIR, f'{name}.txt')
    paths, labels = _read_attribute_file(file, j)
    if reference_paths is None:
      reference_paths, reference_file = paths, file
      dup = pd.Index(paths).duplicated()
      if dup.any():
        line = int(np.argmax(dup)) + 1
        raise UserError(f'{file}:{line}: image {paths[line - 1]!r} is listed twice')
    elif paths != reference_paths:
      if len(paths) != len(reference_paths):
        raise UserError(f'{file} lists {len(paths)} images but {reference_file} lists '
                        f'{len(reference_paths)}; all attribute files must list the same images')
      line = next(i for i, (a, b) in enumerate(zip(paths, reference_paths), start=1) if a != b)
      raise UserError(f'{file}:{line}: image {paths[line - 1]!r} where {reference_file}:{line} '
                      f'has {reference_paths[line - 1]!r}; all attribute files must list the '
                      'same images in the same order')
    columns[name] = labels
  table = pd.DataFrame({'path': reference_paths, **columns})
  if check_images:
    for line, path in enumerate(table['path'], start=1):
      if not os.path.isfile(image_file(data_dir, path)):
        raise FileNotFoundError(f'{reference_file}:{line}: listed image {path!r} does not exist '
                                f'({image_file(data_dir, path)})')
  return table


def labels_of(table: pd.DataFrame) -> np.ndarray:
  """(N, 12) int64 label indices of a table, attributes in alphabetical order, -1 = missing."""
  return table[list(ATTRIBUTE_NAMES)].to_numpy(np.int64)


def write_attributes(data_dir: str, paths: list[str], labels: np.ndarray) -> None:
  """Writes the 12 `Attributes/<attr>.txt` files exactly as distributed (no trailing newline)."""
  labels = np.asarray(labels)
  if labels.shape != (len(paths), len(ATTRIBUTES)):
    raise ValueError(f'expected labels of shape ({len(paths)}, {len(ATTRIBUTES)}), '
                     f'got {labels.shape}')
  out_dir = os.path.join(data_dir, ATTRIBUTES_DIR)
  os.makedirs(out_dir, exist_ok=True)
  for j, attr in enumerate(ATTRIBUTES):
    col = labels[:, j]
    if ((col < MISSING) | (col >= attr.num_values)).any():
      i = int(np.argmax((col < MISSING) | (col >= attr.num_values)))
      raise UserError(f'{paths[i]}: label {int(col[i])} out of range for {attr.name!r}')
    with open(os.path.join(out_dir, f'{attr.name}.txt'), 'w', encoding='utf-8') as f:
      f.write('\n'.join(f'{p} {int(v)}' for p, v in zip(paths, col)))
