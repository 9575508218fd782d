"""What search reads: a gallery's features (`GalleryIndex`) and the generic attribute values
(`Prototypes`, §4.6), as plain numpy arrays, and their versioned .npz files.

Computing them needs the model (`indexing`); caching them in a workdir, tied to its model, is
`trained_run.TrainedRun`. Nothing here imports TensorFlow.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import re
from typing import Sequence

import numpy as np

from tf_partfash.attributes import (ATTRIBUTE_NAMES, MISSING, SPECIAL_ATTRIBUTES, attribute,
                                    signature_index)
from tf_partfash.errors import UserError
from tf_partfash.storage import cache

FORMAT_VERSION = cache.FORMAT_VERSION
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')


@dataclasses.dataclass
class Prototypes:
  """Generic representation of each special attribute value (§4.6): the L2-normalised mean of
  that attribute's signature over the training images with that label. A value no training
  image has is a zero row with count 0, and an error when asked for."""
  vectors: dict[str, np.ndarray]   # special attribute -> (K_a, D) float32
  counts: dict[str, np.ndarray]    # special attribute -> (K_a,) training images per value
  model_id: str = ''

  def vector(self, name: str, value: int) -> np.ndarray:
    attr = attribute(name)
    if not 0 <= value < attr.num_values:
      raise UserError(f'value index {value} out of range for {attr.name!r} '
                      f'(0..{attr.num_values - 1})')
    if self.counts[attr.name][value] == 0:
      known = [attr.values[k] for k in np.nonzero(self.counts[attr.name])[0]]
      raise UserError(f'no training image has {attr.name}={attr.values[value]!r}, so it has no '
                      f'generic representation; values seen in training: {", ".join(known)}')
    return self.vectors[attr.name][value]

  def save(self, path: str) -> None:
    cache.save_npz(path, {
        'format_version': np.int64(FORMAT_VERSION), 'model_id': np.str_(self.model_id),
        **{f'vectors_{a}': self.vectors[a] for a in SPECIAL_ATTRIBUTES},
        **{f'counts_{a}': self.counts[a] for a in SPECIAL_ATTRIBUTES}})

  @classmethod
  def load(cls, path: str, expected_model_id: str | None = None) -> Prototypes:
    stored = cache.load_npz(path)
    cache.check_header(path, stored, expected_model_id)
    return cls({a: stored[f'vectors_{a}'] for a in SPECIAL_ATTRIBUTES},
               {a: stored[f'counts_{a}'] for a in SPECIAL_ATTRIBUTES}, str(stored['model_id']))


def prototype_sums(signatures: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
  """Per special attribute and value: the sum of that attribute's signature, and the count."""
  out = {}
  for name in SPECIAL_ATTRIBUTES:
    column = np.asarray(labels)[:, ATTRIBUTE_NAMES.index(name)]
    known = column != MISSING
    k = attribute(name).num_values
    sums = np.zeros((k, signatures.shape[-1]), np.float64)
    np.add.at(sums, column[known], signatures[known, signature_index(name)])
    out[f'sum_{name}'] = sums
    out[f'count_{name}'] = np.bincount(column[known], minlength=k).astype(np.int64)
  return out


def prototypes_from_sums(sums: dict[str, np.ndarray], model_identity: str) -> Prototypes:
  vectors, counts = {}, {}
  for name in SPECIAL_ATTRIBUTES:
    mean = sums[f'sum_{name}'] / np.maximum(sums[f'count_{name}'], 1)[:, None]
    norm = np.linalg.norm(mean, axis=1, keepdims=True)
    vectors[name] = (mean / np.where(norm > 0, norm, 1.0)).astype(np.float32)
    counts[name] = sums[f'count_{name}']
  return Prototypes(vectors, counts, model_identity)


def compute_prototypes(signatures: np.ndarray, labels: np.ndarray,
                       model_identity: str = '') -> Prototypes:
  """Prototypes from training signatures (N, V, D) and their labels (N, 12), -1 = missing."""
  if signatures.ndim != 3 or len(signatures) != len(labels):
    raise ValueError(f'signatures {signatures.shape} and labels {np.shape(labels)} do not align')
  return prototypes_from_sums(prototype_sums(signatures, labels), model_identity)


@dataclasses.dataclass
class GalleryIndex:
  """Features of a gallery, one row per image (§4.6): what search needs without the model."""
  signatures: np.ndarray                # (N, S + 1, D) float32, L2-normalised per signature
  probabilities: dict[str, np.ndarray]  # attribute -> (N, K) softmax
  labels: np.ndarray                    # (N, 12) int, -1 = unknown
  paths: np.ndarray                     # (N,) str, relative to `image_root`
  rows: np.ndarray                      # (N,) rows of the dataset table (positions for a folder)
  model_id: str
  image_root: str = ''                  # directory of the images (Images/ or the folder)
  format_version: int = FORMAT_VERSION
  case_probabilities: np.ndarray | None = None  # (N, 3) "Extract Parts?" head; None without one
  stamps: np.ndarray | None = None      # (N, 2) int64 size, mtime_ns of a folder's image files

  def __post_init__(self):
    n = len(self.signatures)
    sizes = {'labels': len(self.labels), 'paths': len(self.paths), 'rows': len(self.rows),
             **{f'probabilities[{a}]': len(p) for a, p in self.probabilities.items()}}
    for name in ('case_probabilities', 'stamps'):
      if getattr(self, name) is not None:
        sizes[name] = len(getattr(self, name))
    bad = {k: v for k, v in sizes.items() if v != n}
    if bad:
      raise ValueError(f'index of {n} signatures has ' + ', '.join(f'{k} of {v}'
                                                                  for k, v in bad.items()))

  def __len__(self) -> int:
    return len(self.signatures)

  def predicted(self, name: str) -> np.ndarray:
    """(N,) most probable value index of an attribute."""
    return self.probabilities[attribute(name).name].argmax(axis=1)

  def take(self, positions: Sequence[int]) -> GalleryIndex:
    """The index of the items at `positions`, in that order."""
    positions = np.asarray(positions, np.int64)
    return dataclasses.replace(
        self, signatures=self.signatures[positions], labels=self.labels[positions],
        paths=self.paths[positions], rows=self.rows[positions],
        probabilities={a: p[positions] for a, p in self.probabilities.items()},
        case_probabilities=None if self.case_probabilities is None
        else self.case_probabilities[positions],
        stamps=None if self.stamps is None else self.stamps[positions])

  @functools.cached_property
  def _path_order(self) -> np.ndarray:
    """Positions that sort `paths`, the first of equal paths first: `find` is a binary search,
    not a comparison with every path (a million of them behind a compact index)."""
    return np.argsort(self.paths, kind='stable')

  @functools.cached_property
  def labelled(self) -> bool:
    """Whether any item has a label (a folder gallery has none): results can be confirmed."""
    return bool((self.labels != MISSING).any())

  def file(self, position: int) -> str:
    return os.path.join(self.image_root, str(self.paths[position]))

  def find(self, item: str) -> int:
    """Position of a gallery item given by its path (relative to `image_root`, or the image
    file's own path) or position."""
    if self.image_root and os.path.isabs(item):  # the file itself, where the gallery has it
      item = os.path.relpath(os.path.realpath(item), os.path.realpath(self.image_root))
    order = self._path_order
    at = int(np.searchsorted(self.paths, item, sorter=order))
    if at < len(self) and self.paths[order[at]] == item:
      return int(order[at])
    if re.fullmatch(r'\d+', item.strip()):
      position = int(item)
      if position < len(self):
        return position
    raise UserError(f'{item!r} is not in the gallery: give an image path relative to '
                    f'{self.image_root or "the gallery root"} (e.g. {str(self.paths[0])!r}) or a '
                    f'row number 0..{len(self) - 1}')

  def save(self, path: str) -> None:
    cache.save_npz(path, {
        'format_version': np.int64(self.format_version), 'model_id': np.str_(self.model_id),
        'image_root': np.str_(self.image_root), 'signatures': self.signatures,
        'labels': self.labels, 'paths': np.asarray(self.paths, str), 'rows': self.rows,
        **({} if self.case_probabilities is None
           else {'case_probabilities': self.case_probabilities}),
        **({} if self.stamps is None else {'stamps': self.stamps}),
        **{f'probabilities_{a}': p for a, p in self.probabilities.items()}})

  @classmethod
  def load(cls, path: str, expected_model_id: str | None = None,
           lazy_signatures: bool = False) -> GalleryIndex:
    """Reads an index; another format version or model (when `expected_model_id`) is an error.

    With `lazy_signatures` the signatures stay in the file (`cache.StoredRows`) and are read by
    the rows asked for, as a compact search re-ranks them: a million images' 6 GB are not held.
    """
    stored = cache.load_npz(path, skip=('signatures',) if lazy_signatures else ())
    if lazy_signatures:
      stored['signatures'] = cache.StoredRows.of(path, 'signatures')
    cache.check_header(path, stored, expected_model_id)
    return cls(stored['signatures'], {a: stored[f'probabilities_{a}'] for a in ATTRIBUTE_NAMES},
               stored['labels'], stored['paths'], stored['rows'], str(stored['model_id']),
               str(stored['image_root']), int(stored['format_version']),
               stored.get('case_probabilities'), stored.get('stamps'))


def folder_images(folder: str) -> list[str]:
  """Image files (jpg, jpeg, png) under `folder`, as sorted paths relative to it."""
  if not os.path.isdir(folder):
    raise FileNotFoundError(f'gallery folder not found: {folder}')
  paths = sorted(os.path.relpath(os.path.join(d, f), folder)
                 for d, _, names in os.walk(folder) for f in names
                 if f.lower().endswith(IMAGE_EXTENSIONS))
  if not paths:
    raise UserError(f'{folder}: no image files ({", ".join(IMAGE_EXTENSIONS)})')
  return paths


def file_stamps(folder: str, paths: Sequence[str]) -> np.ndarray:
  """(N, 2) int64 size and modification time (ns) of each image: what tells a changed file."""
  stats = [os.stat(os.path.join(folder, p)) for p in paths]
  return np.array([(st.st_size, st.st_mtime_ns) for st in stats], np.int64).reshape(-1, 2)
