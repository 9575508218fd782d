"""The split files of the ADDE release, the public attribute-manipulation protocol on Shopping100k.

ADDE (Hou et al., ICCV 2021) is the only public code that evaluates attribute manipulation on
Shopping100k; its files are a second evaluation protocol next to the paper's own split (§6, §7).
The format, as `shared/shopping100k/README.md` specifies it:

```
attr_num.txt            12 lines: the vocabulary size of each attribute, alphabetical order
imgs_{train,test}.txt   one image path (relative to Images/) per line
labels_{train,test}.txt per image 151 space-separated 0/1 values, missing attribute = zero block
ref_test.txt            per query the 0-based index of its reference image in imgs_test.txt
indfull_test.txt        per query 151 values in {-1, 0, 1}: -1 at the reference's current value of
                        the manipulated attribute (absent if it had none), +1 at the wanted value
gt_test.txt             per query the 151-dim 0/1 target label vector
```
Readers accept any whitespace between values, surrounding whitespace and trailing blank lines, but
reject wrong content with an error naming file, line and value.
"""
from __future__ import annotations

import dataclasses
import io
import os
from typing import Sequence

import numpy as np

from tf_partfash.attributes import ATTRIBUTES, NUM_VALUES, OFFSETS, attribute, decode, encode
from tf_partfash.errors import UserError

ATTR_NUM_FILE = 'attr_num.txt'
REFERENCE_FILE = 'ref_test.txt'
INDICATOR_FILE = 'indfull_test.txt'
TARGET_FILE = 'gt_test.txt'
# ADDE draws every reference from the first 2,000 test images.
NUM_REFERENCES = 2000

SUBSETS = ('train', 'test')

# The attribute (index into ATTRIBUTES) that each of the 151 columns belongs to, and block starts.
_COLUMN_ATTRIBUTE = np.repeat(np.arange(len(ATTRIBUTES)), [a.num_values for a in ATTRIBUTES])
_OFFSET_ARRAY = np.array([OFFSETS[a.name] for a in ATTRIBUTES])


def images_file(directory: str, subset: str) -> str:
  """`<directory>/imgs_<subset>.txt`, subset `train` or `test`."""
  return os.path.join(directory, f'imgs_{_check_subset(subset)}.txt')


def labels_file(directory: str, subset: str) -> str:
  """`<directory>/labels_<subset>.txt`, subset `train` or `test`."""
  return os.path.join(directory, f'labels_{_check_subset(subset)}.txt')


def _check_subset(subset: str) -> str:
  if subset not in SUBSETS:
    raise ValueError(f'unknown ADDE subset {subset!r}; valid subsets: {", ".join(SUBSETS)}')
  return subset


def _read_lines(file: str) -> list[str]:
  """Stripped lines of `file`; trailing blank lines are dropped, inner blank lines are errors."""
  if not os.path.isfile(file):
    raise FileNotFoundError(f'ADDE file not found: {file}')
  with open(file, encoding='utf-8') as f:
    lines = [line.strip() for line in f.read().splitlines()]
  while lines and not lines[-1]:
    lines.pop()
  for line_no, line in enumerate(lines, start=1):
    if not line:
      raise UserError(f'{file}:{line_no}: empty line')
  return lines


def _write_lines(file: str, lines: Sequence[str]) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(file)), exist_ok=True)
  with open(file, 'w', encoding='utf-8') as f:
    f.write(''.join(line + '\n' for line in lines))


def _write_matrix(file: str, matrix: np.ndarray) -> None:
  """One line of space-separated integers per row."""
  matrix = np.asarray(matrix)
  if matrix.size and matrix.min() >= 0 and matrix.max() <= 9:
    # Single digits: build the bytes at once (str.join takes seconds on 80k x 151 labels).
    chars = np.full((len(matrix), 2 * matrix.shape[1]), ord(' '), np.uint8)
    chars[:, 0::2] = matrix + ord('0')
    chars[:, -1] = ord('\n')
    os.makedirs(os.path.dirname(os.path.abspath(file)), exist_ok=True)
    with open(file, 'wb') as f:
      f.write(chars.tobytes())
  else:
    _write_lines(file, [' '.join(map(str, row)) for row in matrix.tolist()])


def _read_matrix(file: str, width: int, allowed: tuple[int, ...]) -> np.ndarray:
  """An (N, width) int64 matrix, one row per line, every value in `allowed`."""
  lines = _read_lines(file)
  if not lines:
    return np.zeros((0, width), np.int64)
  try:
    # numpy's C parser reads a well-formed file fast; on any doubt the scan below names the error.
    matrix = np.loadtxt(io.StringIO('\n'.join(lines)), dtype=np.int64, comments=None, ndmin=2)
    if matrix.shape == (len(lines), width) and np.isin(matrix, allowed).all():
      return matrix
  except ValueError:
    pass
  tokens = {str(v) for v in allowed}
  for line_no, line in enumerate(lines, start=1):
    row = line.split()
    if len(row) != width:
      raise UserError(f'{file}:{line_no}: expected {width} values, got {len(row)}')
    if not tokens.issuperset(row):
      column, token = next((c, t) for c, t in enumerate(row, start=1) if t not in tokens)
      raise UserError(f'{file}:{line_no}: value {token!r} in column {column} is not one of '
                      + ', '.join(map(str, allowed)))
  raise UserError(f'{file}: cannot parse as {width} integers per line')  # the scan found nothing


def _check_one_hot(file: str, encoded: np.ndarray) -> None:
  """Each attribute's block of a 151-dim 0/1 row holds at most one 1."""
  for attr in ATTRIBUTES:
    start = OFFSETS[attr.name]
    counts = encoded[:, start:start + attr.num_values].sum(axis=1)
    if (counts > 1).any():
      row = int(np.argmax(counts > 1))
      raise UserError(f'{file}:{row + 1}: attribute {attr.name!r} (columns {start + 1}..'
                      f'{start + attr.num_values}) has {int(counts[row])} values set, at most 1 '
                      'allowed')


def read_attr_num(file: str) -> tuple[int, ...]:
  """`attr_num.txt`, checked against the vocabulary sizes of `tf_partfash.attributes`."""
  lines = _read_lines(file)
  if len(lines) != len(ATTRIBUTES):
    raise UserError(f'{file}: expected {len(ATTRIBUTES)} lines (one per attribute), '
                    f'got {len(lines)}')
  for line_no, (line, attr) in enumerate(zip(lines, ATTRIBUTES), start=1):
    if line != str(attr.num_values):
      raise UserError(f'{file}:{line_no}: attribute {attr.name!r} has {attr.num_values} values, '
                      f'file says {line!r}')
  return tuple(a.num_values for a in ATTRIBUTES)


def write_attr_num(file: str) -> None:
  _write_lines(file, [str(a.num_values) for a in ATTRIBUTES])


def read_image_list(file: str) -> list[str]:
  """`imgs_{train,test}.txt`: the image paths, each listed once."""
  paths = _read_lines(file)
  if not paths:
    raise UserError(f'{file}: no images listed')
  seen: dict[str, int] = {}
  for line_no, path in enumerate(paths, start=1):
    if len(path.split()) != 1:
      raise UserError(f'{file}:{line_no}: expected one image path, got {path!r}')
    if path in seen:
      raise UserError(f'{file}:{line_no}: image {path!r} already listed on line {seen[path]}')
    seen[path] = line_no
  return paths


def write_image_list(file: str, paths: Sequence[str]) -> None:
  _write_lines(file, list(paths))


def read_labels(file: str) -> np.ndarray:
  """`labels_{train,test}.txt` -> (N, 12) int64 label indices, an all-zero block -> -1 (missing)."""
  encoded = _read_matrix(file, NUM_VALUES, (0, 1))
  if not len(encoded):
    raise UserError(f'{file}: no label lines')
  _check_one_hot(file, encoded)
  return decode(encoded)


def write_labels(file: str, labels: np.ndarray) -> None:
  """Writes (N, 12) label indices (-1 = missing) as 151-dim 0/1 lines."""
  _write_matrix(file, encode(labels))


def read_references(file: str, num_images: int | None = None) -> np.ndarray:
  """`ref_test.txt` -> (Q,) int64 indices into `imgs_test.txt`, each below `num_images` if given."""
  lines = _read_lines(file)
  out = np.empty(len(lines), np.int64)
  for line_no, line in enumerate(lines, start=1):
    try:
      out[line_no - 1] = int(line)
    except ValueError:
      raise UserError(f'{file}:{line_no}: reference index {line!r} is not an integer') from None
    if out[line_no - 1] < 0 or (num_images is not None and out[line_no - 1] >= num_images):
      upper = '' if num_images is None else f'..{num_images - 1}'
      raise UserError(f'{file}:{line_no}: reference index {line} out of range (0{upper})')
  return out


@dataclasses.dataclass(frozen=True)
class AddeQueries:
  """ADDE's attribute-manipulation queries: for query q, reference image `ref[q]` (index into the
  test images) with one attribute changed as `indicator[q]` says, searched for `target[q]`."""
  ref: np.ndarray  # (Q,) int64
  indicator: np.ndarray  # (Q, 151) int8 in {-1, 0, 1}
  target: np.ndarray  # (Q, 151) uint8 in {0, 1}

  def __post_init__(self):
    n = len(self.ref)
    if self.ref.shape != (n,) or self.indicator.shape != (n, NUM_VALUES) \
        or self.target.shape != (n, NUM_VALUES):
      raise ValueError(f'inconsistent query shapes: ref {self.ref.shape}, indicator '
                       f'{self.indicator.shape}, target {self.target.shape}; expected ({n},), '
                       f'({n}, {NUM_VALUES}), ({n}, {NUM_VALUES})')

  def __len__(self) -> int:
    return len(self.ref)

  def manipulations(self) -> tuple[np.ndarray, np.ndarray]:
    """(Q,) manipulated attribute (index into `ATTRIBUTES`) and (Q,) wanted value index."""
    column = np.argmax(self.indicator == 1, axis=1)
    attr = _COLUMN_ATTRIBUTE[column]
    return attr, column - _OFFSET_ARRAY[attr]


def make_adde_queries(test_labels: np.ndarray, num_references: int = NUM_REFERENCES,
                      attributes: Sequence[str] | None = None) -> AddeQueries:
  """ADDE's query rule on (N, 12) test labels (-1 = missing).

  For every reference among the first `num_references` test images, every attribute (or only
  `attributes`) and every value other than the reference's own, the target is the reference's
  label vector with that one value replaced (other missing labels stay missing). The query is kept
  only if some test image has exactly that label vector. Queries are ordered by reference, then
  attribute, then value, as in ADDE's `ref_test.txt`.
  """
  labels = np.asarray(test_labels, np.int64)
  encoded = encode(labels)  # also validates shape and ranges
  names = {a.name for a in ATTRIBUTES} if attributes is None else {
      attribute(n).name for n in attributes}
  chosen = [j for j, a in enumerate(ATTRIBUTES) if a.name in names]
  columns = np.nonzero(np.isin(_COLUMN_ATTRIBUTE, chosen))[0]
  cand_attr = _COLUMN_ATTRIBUTE[columns]
  cand_value = columns - _OFFSET_ARRAY[cand_attr]
  # A label row packed into one int64, base 20 (19 values + missing): exact, so equal codes mean
  # equal label vectors, and replacing one value shifts the code by a known amount.
  base = max(a.num_values for a in ATTRIBUTES) + 1
  weights = base ** np.arange(len(ATTRIBUTES), dtype=np.int64)
  codes = (labels + 1) @ weights
  refs = np.arange(min(num_references, len(labels)))
  current = labels[refs][:, cand_attr]
  wanted = codes[refs, None] + (cand_value[None, :] - current) * weights[cand_attr][None, :]
  keep = (current != cand_value[None, :]) & np.isin(wanted, codes)
  rows, cands = np.nonzero(keep)
  ref = refs[rows]
  target_labels = labels[ref]
  target_labels[np.arange(len(ref)), cand_attr[cands]] = cand_value[cands]
  target = encode(target_labels)
  # The reference and its target differ in one block only: +1 at the wanted value, -1 at the old.
  indicator = target.astype(np.int8) - encoded[ref].astype(np.int8)
  return AddeQueries(ref=ref, indicator=indicator, target=target)


def write_adde_queries(directory: str, queries: AddeQueries) -> None:
  """Writes `ref_test.txt`, `indfull_test.txt` and `gt_test.txt` into `directory`."""
  _write_lines(os.path.join(directory, REFERENCE_FILE), [str(int(r)) for r in queries.ref])
  _write_matrix(os.path.join(directory, INDICATOR_FILE), queries.indicator)
  _write_matrix(os.path.join(directory, TARGET_FILE), queries.target)


def _check_indicators(file: str, indicator: np.ndarray) -> None:
  """One +1 per row, at most one -1, both in the same attribute block."""
  plus, minus = (indicator == 1).sum(axis=1), (indicator == -1).sum(axis=1)
  if (plus != 1).any():
    row = int(np.argmax(plus != 1))
    raise UserError(f'{file}:{row + 1}: {int(plus[row])} values +1, expected exactly 1')
  if (minus > 1).any():
    row = int(np.argmax(minus > 1))
    raise UserError(f'{file}:{row + 1}: {int(minus[row])} values -1, expected at most 1')
  plus_attr = _COLUMN_ATTRIBUTE[np.argmax(indicator == 1, axis=1)]
  minus_attr = _COLUMN_ATTRIBUTE[np.argmax(indicator == -1, axis=1)]
  bad = (minus == 1) & (plus_attr != minus_attr)
  if bad.any():
    row = int(np.argmax(bad))
    raise UserError(f'{file}:{row + 1}: +1 in attribute {ATTRIBUTES[plus_attr[row]].name!r} but '
                    f'-1 in attribute {ATTRIBUTES[minus_attr[row]].name!r}; a query changes one '
                    'attribute')


def read_adde_queries(directory: str, num_images: int | None = None) -> AddeQueries:
  """Reads `ref_test.txt`, `indfull_test.txt` and `gt_test.txt` from `directory`.

  References must be below `num_images` (the number of test images) when given; the three files
  must have one line per query, and each target must hold the value its indicator asks for.
  """
  ref_file, indicator_file, target_file = (os.path.join(directory, f) for f in (
      REFERENCE_FILE, INDICATOR_FILE, TARGET_FILE))
  ref = read_references(ref_file, num_images)
  indicator = _read_matrix(indicator_file, NUM_VALUES, (-1, 0, 1)).astype(np.int8)
  _check_indicators(indicator_file, indicator)
  target = _read_matrix(target_file, NUM_VALUES, (0, 1)).astype(np.uint8)
  _check_one_hot(target_file, target)
  for file, n in ((indicator_file, len(indicator)), (target_file, len(target))):
    if n != len(ref):
      raise UserError(f'{file} has {n} queries but {ref_file} has {len(ref)}')
  missing = target[np.arange(len(ref)), np.argmax(indicator == 1, axis=1)] != 1
  if missing.any():
    row = int(np.argmax(missing))
    column = int(np.argmax(indicator[row] == 1))
    raise UserError(f'{target_file}:{row + 1}: column {column + 1} is 0 but {indicator_file}:'
                    f'{row + 1} asks for that value (+1)')
  return AddeQueries(ref=ref, indicator=indicator, target=target)
