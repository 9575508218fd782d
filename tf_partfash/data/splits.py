"""The train / gallery / query split of the paper (§6, §7), its CSV file, and ADDE's split as one.

§6: "We use 80% of the dataset to train the network. Rest images are used to test the network which
leaves us with around 21k images. For the retrieval gallery, 19,000 images are reserved and rest
2,000 images are served as the queries." 80 % of 101,021 leaves 20,204 images, not "around 21k" nor
19,000 + 2,000 = 21,000; the concrete counts are taken as the spec: 19,000 gallery + 2,000 query
images and the other 80,021 (79.2 %) for training, scaled proportionally on smaller datasets unless
the gallery and query sizes are given (the demo keeps the paper's 19,000 / 2,000 on fewer images).

The split is written once per dataset and sizes and reused, so every method is evaluated on the
same images.
"""
from __future__ import annotations

import csv
import hashlib
import os
import re
from typing import Sequence

import numpy as np
import pandas as pd

from tf_partfash.attributes import MISSING, SPECIAL_ATTRIBUTES
from tf_partfash.data import adde
from tf_partfash.errors import UserError
from tf_partfash.storage import atomic

SUBSETS: tuple[str, ...] = ('train', 'gallery', 'query')
FULL_SIZE = 101021
FULL_GALLERY = 19000
FULL_QUERY = 2000
SPLIT_COLUMNS = ('path', 'subset')

# `<7-digit product id>_<n>.jpg`: the images of one product share the id.
_PRODUCT_FILE = re.compile(r'(\d{7})_\d+\.jpe?g', re.IGNORECASE)


def subset_sizes(num_images: int, gallery_images: int | None = None,
                 query_images: int | None = None) -> tuple[int, int, int]:
  """(train, gallery, query) image counts (§6).

  A size left None is the paper's proportion (19,000 and 2,000 of 101,021, scaled); given sizes
  are taken as they are and must leave at least one training image.
  """
  query = round(num_images * FULL_QUERY / FULL_SIZE) if query_images is None else query_images
  gallery = (round(num_images * FULL_GALLERY / FULL_SIZE) if gallery_images is None
             else gallery_images)
  if gallery < 0 or query < 0:
    raise UserError(f'gallery_images={gallery} and query_images={query} must not be negative')
  if gallery + query >= num_images:
    raise UserError(f'gallery_images={gallery} + query_images={query} = {gallery + query} test '
                    f'images, but the dataset has {num_images} images (at least one must be left '
                    'for training)')
  return num_images - gallery - query, gallery, query


def split_file_name(seed: int, gallery_images: int | None = None,
                    query_images: int | None = None) -> str:
  """`paper_split_seed<seed>.csv` for the paper's proportions, with the sizes when given."""
  if gallery_images is None and query_images is None:
    return f'paper_split_seed{seed}.csv'
  sizes = ''.join(f'_{name}{n}' for name, n in (('gallery', gallery_images),
                                                 ('query', query_images)) if n is not None)
  return f'paper_split_seed{seed}{sizes}.csv'


def product_key(path: str) -> str:
  """The product an image shows: its folder and product id, or the path if the name has no id.

  The folder is part of the key because Shopping100k reuses product ids across genders for
  unrelated garments (e.g. `Female/6_Jumpers/0031247_12.jpg`, `Male/2_Jackets/0031247_12.jpg`).
  """
  folder, name = os.path.split(path)
  match = _PRODUCT_FILE.fullmatch(name)
  return f'{folder}/{match.group(1)}' if match else path


def _hash(seed: int, key: str) -> int:
  # hashlib, not hash(): Python salts str hashes per process.
  digest = hashlib.blake2b(f'{seed}\0{key}'.encode('utf-8'), digest_size=8).digest()
  return int.from_bytes(digest, 'big')


def paper_split(paths: Sequence[str], seed: int = 0, gallery_images: int | None = None,
                query_images: int | None = None) -> pd.DataFrame:
  """Assigns each image to `train`, `gallery` or `query` (§6); columns `path`, `subset`.

  Sizes are those of `subset_sizes`: by default, on all 101,021 images 19,000 gallery and 2,000 query images,
  the rest (79.2 %) train, i.e. the paper's concrete counts rather than its rounded "80 %". They
  are exact whenever single-image products are left to fill the last places, as on Shopping100k,
  where almost every product has one image; otherwise query and gallery may fall short by less
  than the largest product.
  Products are ranked by a seeded hash of `product_key`; in that order each product goes whole to
  the first of query, gallery, train that still has room for all its images. So an image's subset
  depends only on its product's hash and the hashes near the two cut-offs: adding or removing
  other images moves at most the few images next to a cut-off, and every image of a product lands
  in the same subset. Rows keep the order of `paths`.
  """
  paths = list(paths)
  duplicated = pd.Index(paths).duplicated()
  if duplicated.any():
    raise UserError(f'image {paths[int(np.argmax(duplicated))]!r} is listed twice')
  keys = [product_key(p) for p in paths]
  groups: dict[str, list[int]] = {}
  for i, key in enumerate(keys):
    groups.setdefault(key, []).append(i)
  order = sorted(groups, key=lambda k: (_hash(seed, k), k))
  _, room_gallery, room_query = subset_sizes(len(paths), gallery_images, query_images)
  subset = np.full(len(paths), 'train', dtype=object)
  for key in order:
    if not room_query and not room_gallery:
      break
    members = groups[key]
    if len(members) <= room_query:
      subset[members], room_query = 'query', room_query - len(members)
    elif len(members) <= room_gallery:
      subset[members], room_gallery = 'gallery', room_gallery - len(members)
  return pd.DataFrame({'path': paths, 'subset': subset})


def write_split(file: str, split: pd.DataFrame) -> None:
  """Writes a split as CSV `path,subset` (atomically: parallel runs may create it at once)."""
  os.makedirs(os.path.dirname(os.path.abspath(file)), exist_ok=True)
  with atomic.replacing(file) as tmp:
    split[list(SPLIT_COLUMNS)].to_csv(tmp, index=False, lineterminator='\n')


def read_split(file: str, table: pd.DataFrame | None = None) -> pd.DataFrame:
  """Reads a `path,subset` CSV, checking subsets and, given the dataset `table`, coverage.

  With `table`, every split path must be in the table and every table image in the split; rows are
  then returned in the table's order so they align with it.
  """
  if not os.path.isfile(file):
    raise FileNotFoundError(f'split file not found: {file}')
  paths, subsets, lines = [], [], {}
  with open(file, newline='', encoding='utf-8') as f:
    reader = csv.reader(f)
    header = next(reader, None)
    if header != list(SPLIT_COLUMNS):
      raise UserError(f'{file}:1: expected header {",".join(SPLIT_COLUMNS)!r}, got {header!r}')
    for row in reader:
      line = reader.line_num
      if not row:
        continue
      if len(row) != 2:
        raise UserError(f'{file}:{line}: expected "path,subset", got {row!r}')
      path, subset = row
      if subset not in SUBSETS:
        raise UserError(f'{file}:{line}: unknown subset {subset!r}; valid subsets: '
                        + ', '.join(SUBSETS))
      if path in lines:
        raise UserError(f'{file}:{line}: image {path!r} already listed on line {lines[path]}')
      lines[path] = line
      paths.append(path)
      subsets.append(subset)
  split = pd.DataFrame({'path': paths, 'subset': subsets})
  if table is None:
    return split
  known = set(table['path'])
  for path in paths:
    if path not in known:
      raise UserError(f'{file}:{lines[path]}: image {path!r} is not in the dataset')
  for row, path in enumerate(table['path']):
    if path not in lines:
      raise UserError(f'{file}: dataset image {path!r} (row {row + 1} of the attribute files) is '
                      'not in the split')
  return split.set_index('path').loc[table['path']].reset_index()


def ensure_split(location: str, table: pd.DataFrame, seed: int = 0,
                 gallery_images: int | None = None,
                 query_images: int | None = None) -> tuple[pd.DataFrame, str]:
  """The paper split of `table` and its file, stored at `location` on first use, read back after.

  `location` is the CSV file, or a directory (a work or data directory) that holds
  `split_file_name(seed, gallery_images, query_images)`. A stored split that does not cover
  exactly the images of `table`, or whose gallery and query sizes are not those asked for, is an
  error: delete the file to re-create it. Rows align with `table`.
  """
  file = (os.path.join(location, split_file_name(seed, gallery_images, query_images))
          if os.path.isdir(location) else location)
  expected = paper_split(table['path'], seed, gallery_images, query_images)
  if not os.path.exists(file):
    write_split(file, expected)
  redo = f'; delete {file} to create a new split'
  try:
    split = read_split(file, table)
  except ValueError as e:
    raise UserError(f'{e}\nThe stored split {file} does not match the dataset{redo}.') from e
  count = lambda s, subset: int((s['subset'] == subset).sum())
  found = (count(split, 'gallery'), count(split, 'query'))
  wanted = (count(expected, 'gallery'), count(expected, 'query'))
  if found != wanted:
    raise UserError(f'{file} has {found[0]} gallery and {found[1]} query images, but '
                    f'gallery_images={gallery_images} and query_images={query_images} give '
                    f'{wanted[0]} and {wanted[1]}{redo}')
  return split, file


def evaluable_queries(split: pd.DataFrame, table: pd.DataFrame) -> np.ndarray:
  """Row indices of `table` in the query subset with a label on every special attribute (§7).

  §7: "we only include results which have a valid attribute label for all special attributes".
  `split` must align with `table` (as `read_split(file, table)` returns it).
  """
  if not split['path'].equals(table['path']):
    raise ValueError('split and table rows do not align; read the split with read_split(file, '
                     'table)')
  complete = (table[list(SPECIAL_ATTRIBUTES)].to_numpy() != MISSING).all(axis=1)
  return np.nonzero(complete & (split['subset'] == 'query').to_numpy())[0]


def adde_split(splits_dir: str, table: pd.DataFrame) -> pd.DataFrame:
  """ADDE's split as `path`, `subset` in {train, test}: `imgs_train.txt` and `imgs_test.txt`.

  Every listed image must be in `table`; table images in neither list are left out. Rows are in
  the table's order. Under ADDE's protocol the gallery is all test images and the queries are
  those of `ref_test.txt` (`tf_partfash.data.adde`).
  """
  row_of = {p: i for i, p in enumerate(table['path'])}
  rows, subsets = [], []
  for subset in adde.SUBSETS:
    file = adde.images_file(splits_dir, subset)
    for line, path in enumerate(adde.read_image_list(file), start=1):
      if path not in row_of:
        raise UserError(f'{file}:{line}: image {path!r} is not in the dataset')
      rows.append(row_of[path])
      subsets.append(subset)
  order = np.argsort(rows, kind='stable')
  rows = np.asarray(rows)[order]
  if (np.diff(rows) == 0).any():
    path = table['path'].iloc[rows[int(np.argmax(np.diff(rows) == 0))]]
    raise UserError(f'image {path!r} is in both {adde.images_file(splits_dir, "train")} and '
                    f'{adde.images_file(splits_dir, "test")}')
  return pd.DataFrame({'path': table['path'].to_numpy()[rows],
                       'subset': np.asarray(subsets, dtype=object)[order]})
