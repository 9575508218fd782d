"""Search indexes of a trained model: gallery features and generic attribute values (§4.6).

```
<workdir>/prototypes.npz       generic signature of every special attribute value (training split)
<workdir>/index_<name>.npz     signatures, probabilities, labels, paths of a gallery (`test`: the
                               run's gallery + query images)
<workdir>/index_folder_<hash>.npz   the same for a folder of the user's images, with each image's
                               size and modification time (a changed image is indexed again)
<workdir>/<file>.partial/      chunks of an unfinished extraction (a rerun resumes from them)
<workdir>/<file>.lock          held while one process builds <file>; others wait, then read it
```
Every file records the format version and the model's identity (`model_id`), so features of
another model are recomputed or refused, never mixed; how they are written, locked, resumed and
rebuilt is `cache.py`. TensorFlow is imported only when features must be computed.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from typing import TYPE_CHECKING, Sequence

import numpy as np

from tf_partfash import cache
from tf_partfash.attributes import ATTRIBUTE_NAMES, MISSING, SPECIAL_ATTRIBUTES, attribute
from tf_partfash.progress import ProgressLine
from tf_partfash.retrieval import signature_index

if TYPE_CHECKING:
  import keras

  from tf_partfash.data.prepared import PreparedData
  from tf_partfash.workdir import RunConfig

FORMAT_VERSION = cache.FORMAT_VERSION
PROTOTYPES_FILE = 'prototypes.npz'
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')
CHUNK_SIZE = 1024          # images per resumable chunk of feature extraction
PROGRESS_EVERY_SECS = 10.0


def _digest(data: bytes) -> str:
  return hashlib.blake2b(data, digest_size=8).hexdigest()


def model_id(workdir: str) -> str:
  """Identity of a trained model: a hash of its run.json and model.weights.h5 contents."""
  from tf_partfash.workdir import RUN_FILE, WEIGHTS_FILE  # imports TF: only when needed
  h = hashlib.blake2b(digest_size=8)
  for name in (RUN_FILE, WEIGHTS_FILE):
    file = os.path.join(workdir, name)
    if not os.path.exists(file):
      raise FileNotFoundError(f'{file} not found: {workdir} holds no trained model (train.py)')
    with open(file, 'rb') as f:
      h.update(hashlib.file_digest(f, 'blake2b').digest())
  return h.hexdigest()


def _check_header(file: str, stored: dict, expected_model_id: str | None) -> None:
  version = int(stored['format_version'])
  if version != FORMAT_VERSION:
    raise ValueError(f'{file}: index format version {version}, this tf_partfash reads version '
                     f'{FORMAT_VERSION}; rebuild it')
  found = str(stored['model_id'])
  if expected_model_id is not None and found != expected_model_id:
    raise ValueError(f'{file} was built by model {found}, not by the requested model '
                     f'{expected_model_id}; rebuild it with this model')


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
      raise ValueError(f'value index {value} out of range for {attr.name!r} '
                       f'(0..{attr.num_values - 1})')
    if self.counts[attr.name][value] == 0:
      known = [attr.values[k] for k in np.nonzero(self.counts[attr.name])[0]]
      raise ValueError(f'no training image has {attr.name}={attr.values[value]!r}, so it has no '
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
    _check_header(path, stored, expected_model_id)
    return cls({a: stored[f'vectors_{a}'] for a in SPECIAL_ATTRIBUTES},
               {a: stored[f'counts_{a}'] for a in SPECIAL_ATTRIBUTES}, str(stored['model_id']))


def _prototype_sums(signatures: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
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


def _prototypes_from_sums(sums: dict[str, np.ndarray], model_identity: str) -> Prototypes:
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
  return _prototypes_from_sums(_prototype_sums(signatures, labels), model_identity)


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

  def file(self, position: int) -> str:
    return os.path.join(self.image_root, str(self.paths[position]))

  def find(self, item: str) -> int:
    """Position of a gallery item given by its path (relative to `image_root`) or position."""
    hits = np.nonzero(self.paths == item)[0]
    if len(hits):
      return int(hits[0])
    if re.fullmatch(r'\d+', item.strip()):
      position = int(item)
      if position < len(self):
        return position
    raise ValueError(f'{item!r} is not in the gallery: give an image path relative to '
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
  def load(cls, path: str, expected_model_id: str | None = None) -> GalleryIndex:
    """Reads an index; another format version or model (when `expected_model_id`) is an error."""
    stored = cache.load_npz(path)
    _check_header(path, stored, expected_model_id)
    return cls(stored['signatures'], {a: stored[f'probabilities_{a}'] for a in ATTRIBUTE_NAMES},
               stored['labels'], stored['paths'], stored['rows'], str(stored['model_id']),
               str(stored['image_root']), int(stored['format_version']),
               stored.get('case_probabilities'), stored.get('stamps'))


def _load_model(workdir: str, model: keras.Model | None) -> tuple[keras.Model, RunConfig]:
  from tf_partfash.workdir import load_run_config, load_trained_model
  return (model, load_run_config(workdir)) if model is not None else load_trained_model(workdir)


def _prepare(workdir: str, run: RunConfig, data: PreparedData | None) -> PreparedData:
  """The run's dataset and split (the same `prepare` call as training)."""
  if data is not None:
    return data
  from tf_partfash.data.prepared import prepare_run_data
  return prepare_run_data(run.data, workdir)


def ensure_prototypes(workdir: str, model: keras.Model | None = None,
                      data: PreparedData | None = None, chunk_size: int = CHUNK_SIZE,
                      progress: bool = True) -> Prototypes:
  """The model's prototypes, computed once over its training split into `prototypes.npz`."""
  file = os.path.join(workdir, PROTOTYPES_FILE)
  mid = model_id(workdir)

  def build() -> Prototypes:
    from tf_partfash.recognition import predict
    net, run = _load_model(workdir, model)
    prepared = _prepare(workdir, run, data)
    rows = prepared.rows('train')
    if not len(rows):
      raise ValueError(f'{prepared.data_dir}: the split has no training images to average')

    def compute(chunk: np.ndarray) -> dict[str, np.ndarray]:
      out = predict(net, prepared.examples, chunk, run.model.image_size, run.train.batch_size)
      return _prototype_sums(out.signatures, prepared.examples.labels[chunk])

    key = {'model_id': mid, 'rows': _digest(rows.astype(np.int64).tobytes()), 'chunk': chunk_size}
    chunks = cache.chunked(file + '.partial', key, rows, chunk_size, 'prototypes', compute,
                           progress)
    return _prototypes_from_sums({k: sum(c[k] for c in chunks) for k in chunks[0]}, mid)

  return cache.cached_or_built(file, mid, Prototypes.load, lambda found: None, build)


def ensure_index(workdir: str, name: str = 'test', rows: np.ndarray | None = None,
                 model: keras.Model | None = None, data: PreparedData | None = None,
                 chunk_size: int = CHUNK_SIZE, progress: bool = True) -> GalleryIndex:
  """The index of `rows` of the run's dataset (default: its gallery and query images), cached as
  `index_<name>.npz` and rebuilt when the model (or the rows asked for) changed."""
  if not re.fullmatch(r'[A-Za-z0-9_-]+', name):
    raise ValueError(f'index name {name!r}: use letters, digits, _ and - only')
  file = os.path.join(workdir, f'index_{name}.npz')
  mid = model_id(workdir)
  stale = lambda found: (None if rows is None or np.array_equal(found.rows, rows)
                         else 'built for other images')

  def build() -> GalleryIndex:
    from tf_partfash.data.shopping100k import IMAGES_DIR
    from tf_partfash.recognition import predict
    net, run = _load_model(workdir, model)
    prepared = _prepare(workdir, run, data)
    wanted = np.asarray(prepared.rows('gallery', 'query') if rows is None else rows, np.int64)

    def compute(chunk: np.ndarray) -> dict[str, np.ndarray]:
      out = predict(net, prepared.examples, chunk, run.model.image_size, run.train.batch_size)
      case = {} if out.case_probabilities is None else {'case': out.case_probabilities}
      return {'signatures': out.signatures, **case,
              **{f'p_{a}': p for a, p in out.probabilities.items()}}

    key = {'model_id': mid, 'rows': _digest(wanted.tobytes()), 'chunk': chunk_size}
    chunks = cache.chunked(file + '.partial', key, wanted, chunk_size, f'index {name}', compute,
                           progress)
    joined = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    return GalleryIndex(joined['signatures'], {a: joined[f'p_{a}'] for a in ATTRIBUTE_NAMES},
                        prepared.examples.labels[wanted].astype(np.int64),
                        prepared.table['path'].to_numpy(str)[wanted], wanted, mid,
                        os.path.join(prepared.data_dir, IMAGES_DIR),
                        case_probabilities=joined.get('case'))

  return cache.cached_or_built(file, mid, GalleryIndex.load, stale, build)


def embed_images(model: keras.Model, run: RunConfig, image_root: str, paths: Sequence[str],
                 model_identity: str, progress: bool = True) -> GalleryIndex:
  """Features of images outside the dataset (§4.6 queries, user galleries): part extraction
  (the image decides the case, as no label does), then a forward pass. Labels are unknown."""
  from tf_partfash.data.pipeline import Examples
  from tf_partfash.parts import CASES, extract_parts, read_image
  from tf_partfash.parts.extraction import WORK_HEIGHT
  from tf_partfash.recognition import predict
  files = [os.path.join(image_root, p) for p in paths]
  line = ProgressLine(len(files), PROGRESS_EVERY_SECS, unit='image') if progress else None
  parts = []
  for done, file in enumerate(files, start=1):
    parts.append(extract_parts(read_image(file, WORK_HEIGHT), lower_body=None))
    if line:
      line.update(done, 'parts')
  arrays = [p.as_arrays() for p in parts]
  unknown = np.full((len(files), len(ATTRIBUTE_NAMES)), MISSING, np.int32)
  examples = Examples(np.array(files), unknown, np.stack([a[0] for a in arrays]),
                      np.stack([a[1] for a in arrays]),
                      np.array([CASES.index(p.case) for p in parts], np.int32))
  rows = np.arange(len(files))
  out = predict(model, examples, rows, run.model.image_size, run.train.batch_size,
                PROGRESS_EVERY_SECS if progress else None)
  return GalleryIndex(out.signatures, out.probabilities, examples.labels.astype(np.int64),
                      np.asarray(paths, str), rows, model_identity, image_root,
                      case_probabilities=out.case_probabilities)


def folder_images(folder: str) -> list[str]:
  """Image files (jpg, jpeg, png) under `folder`, as sorted paths relative to it."""
  if not os.path.isdir(folder):
    raise FileNotFoundError(f'gallery folder not found: {folder}')
  paths = sorted(os.path.relpath(os.path.join(d, f), folder)
                 for d, _, names in os.walk(folder) for f in names
                 if f.lower().endswith(IMAGE_EXTENSIONS))
  if not paths:
    raise ValueError(f'{folder}: no image files ({", ".join(IMAGE_EXTENSIONS)})')
  return paths


def _stamps(folder: str, paths: Sequence[str]) -> np.ndarray:
  """(N, 2) int64 size and modification time (ns) of each image: what tells a changed file."""
  stats = [os.stat(os.path.join(folder, p)) for p in paths]
  return np.array([(st.st_size, st.st_mtime_ns) for st in stats], np.int64).reshape(-1, 2)


def index_folder(workdir: str, folder: str, model: keras.Model | None = None,
                 progress: bool = True) -> GalleryIndex:
  """The index of a folder of the user's images, cached in the workdir while the model, the
  folder's list of images and each image's size and modification time stay the same."""
  folder = os.path.realpath(folder)
  paths = folder_images(folder)
  stamps = _stamps(folder, paths)
  file = os.path.join(workdir, f'index_folder_{_digest(folder.encode())}.npz')
  mid = model_id(workdir)

  def stale(found: GalleryIndex) -> str | None:
    if found.paths.tolist() != paths:
      return f'images were added to or removed from {folder} since it was built'
    if found.stamps is None or not np.array_equal(found.stamps, stamps):
      changed = [p for k, p in enumerate(paths)
                 if found.stamps is None or not np.array_equal(found.stamps[k], stamps[k])]
      return f'{len(changed)} image(s) of {folder} changed since it was built (e.g. {changed[0]})'
    return None

  def build() -> GalleryIndex:
    net, run = _load_model(workdir, model)
    built = embed_images(net, run, folder, paths, mid, progress)
    return dataclasses.replace(built, stamps=stamps)

  return cache.cached_or_built(file, mid, GalleryIndex.load, stale, build)
