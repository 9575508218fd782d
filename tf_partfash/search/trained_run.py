"""A trained run, opened once: its configuration, and the model, data, indexes, prototypes and
query encoder computed or loaded on first use, then handed down to evaluation and search.

Its files (`storage.workdir`: prototypes, indexes, compact indexes) are caches. Every file records the format version and the model's identity (`workdir.model_id`), so features
of another model are recomputed or refused, never mixed; how they are written, locked, resumed
and rebuilt is `cache.py`. TensorFlow is imported only when the model is needed.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import re
from typing import TYPE_CHECKING

import numpy as np

from tf_partfash.config import PART_EXTRACTORS
from tf_partfash.errors import UserError
from tf_partfash.methods import Method, method
from tf_partfash.parts.extraction import PartExtractor, extract_parts
from tf_partfash.search.gallery import GalleryIndex, Prototypes, file_stamps, folder_images
from tf_partfash.search.retrieval import Searcher
from tf_partfash.storage import atomic, cache
from tf_partfash.attributes import ATTRIBUTE_NAMES
from tf_partfash.storage.workdir import (PROTOTYPES_FILE, RunConfig, base_workdir, check_trained,
                                         compact_file, index_file, load_run_config, model_id)

if TYPE_CHECKING:
  import keras

  from tf_partfash.inputs.prepared import PreparedData
  from tf_partfash.search.compact import CompactSearcher
  from tf_partfash.search.encoders import Encoder

class TrainedRun:
  """One trained workdir. `model` and `data` may be handed in (training has both at hand);
  otherwise they are loaded (the model) or prepared (the data, as training prepared it) when a
  cache has to be built. Indexes and prototypes are read once per object.

  A feature method's run (FLAM, paper 003: `methods.Method.on_features`) searches the features
  of its base run: its data, indexes, prototypes and images are the base's (`base`), opened with
  it and refused when the base was retrained since; only its model and encoder are its own."""

  def __init__(self, workdir: str, config: RunConfig, model: keras.Model | None = None,
               data: PreparedData | None = None, workers: int = 1, skip_corrupt: bool = False,
               chunk_size: int = cache.CHUNK_SIZE, progress: bool = True,
               rebuild_compact: bool = False):
    self.workdir, self.config = workdir, config
    self._rebuild_compact = rebuild_compact
    self._model, self._data = model, data
    self._workers, self._skip_corrupt, self._progress = workers, skip_corrupt, progress
    self._chunk_size = chunk_size
    self._indexes: dict[str, GalleryIndex] = {}
    self._prototypes: Prototypes | None = None
    self.base: TrainedRun | None = None
    if config.features_from is not None:
      self.base = TrainedRun.base_of(workdir, config, data=data, workers=workers,
                                     skip_corrupt=skip_corrupt, chunk_size=chunk_size,
                                     progress=progress)

  @classmethod
  def base_of(cls, workdir: str, config: RunConfig, **kwargs) -> TrainedRun:
    """The base run of the feature method's run `config` in `workdir`, checked to be the model
    it was trained on."""
    source = config.features_from
    base = cls.open(base_workdir(workdir, source), **kwargs)
    if base.model_id != source.model_id:
      raise UserError(f'{workdir} was trained on the features of {base.workdir} as model '
                      f'{source.model_id}, but {base.workdir} has been retrained since (model '
                      f'{base.model_id}): train {workdir} again, in a new --workdir')
    return base

  def training_features(self, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """What a feature method trains on: (N, F) the x of every training image (its signatures
    concatenated, what this run's search compares) and (N, n) its labels on `names` (-1:
    unlabelled), from `index_train.npz`; the test images' index is made ready too (what the
    feature method's searches read)."""
    train = self.index('train', rows=self.data.rows('train'))
    self.index('test')
    return (feature_matrix(train),
            np.asarray(train.labels)[:, [ATTRIBUTE_NAMES.index(n) for n in names]])

  @classmethod
  def open(cls, workdir: str, **kwargs) -> TrainedRun:
    """The finished run of `workdir` (run.json read and checked, the weights present)."""
    config = load_run_config(workdir)
    check_trained(workdir)
    return cls(workdir, config, **kwargs)

  @property
  def method(self) -> Method:
    return method(self.config.method)

  @functools.cached_property
  def model_id(self) -> str:
    return model_id(self.workdir)

  @property
  def model(self) -> keras.Model:
    if self._model is None:
      from tf_partfash.models.saved import load_model  # builds a Keras model: imports TensorFlow
      self._model = load_model(self.workdir, self.config)
    return self._model

  @property
  def data(self) -> PreparedData:
    if self.base is not None:
      return self.base.data
    if self._data is None:
      from tf_partfash.inputs.prepared import prepare  # the input pipeline imports TensorFlow
      self._data = prepare(self.config.data, self.workdir, self._workers, self._skip_corrupt,
                           self.config.model.test_case_from)
    return self._data

  def index(self, name: str = 'test', rows: np.ndarray | None = None,
            lazy: bool = False) -> GalleryIndex:
    """The index of `rows` of the run's dataset (default: its gallery and query images), cached
    as `index_<name>.npz` and rebuilt when the model (or the rows asked for) changed. `lazy`:
    a stored index's signatures are read from the file by the rows asked for
    (`GalleryIndex.load`), for a compact search."""
    if self.base is not None:
      return self.base.index(name, rows, lazy)
    _check_name('index', name)
    found = self._indexes.get(name)
    if found is not None and (rows is None or np.array_equal(found.rows, rows)):
      return found
    file = os.path.join(self.workdir, index_file(name))
    stale = lambda index: (None if rows is None or np.array_equal(index.rows, rows)
                           else 'built for other images')

    def build() -> GalleryIndex:
      from tf_partfash.search import indexing
      wanted = self.data.rows('gallery', 'query') if rows is None else rows
      return indexing.index_rows(self.model, self.config, self.data, wanted, self.model_id,
                                 file + '.partial', f'index {name}', self._chunk_size,
                                 self._progress)

    self._indexes[name] = cache.ensure(file, self.model_id, _reader(lazy), stale, build)
    return self._indexes[name]

  def prototypes(self) -> Prototypes:
    """The model's prototypes, computed once over its training split into `prototypes.npz`."""
    if self.base is not None:
      return self.base.prototypes()
    if self._prototypes is not None:
      return self._prototypes
    file = os.path.join(self.workdir, PROTOTYPES_FILE)

    def build() -> Prototypes:
      from tf_partfash.search import indexing
      return indexing.training_prototypes(self.model, self.config, self.data, self.model_id,
                                          file + '.partial', self._chunk_size, self._progress)

    self._prototypes = cache.ensure(file, self.model_id, Prototypes.load, lambda found: None,
                                    build)
    return self._prototypes

  def part_extractor(self, name: str | None = None) -> PartExtractor:
    """One image's part extraction (`config.PART_EXTRACTORS`; None: the one the run was trained
    with). The regressor is the run's dataset's, taught on first use."""
    if self.base is not None:
      return self.base.part_extractor(name)
    name = name or self.config.data.part_extractor
    if name not in PART_EXTRACTORS:
      raise UserError(f'unknown part extractor {name!r}; valid: {", ".join(PART_EXTRACTORS)}')
    if name == 'jumps':
      return extract_parts
    regressor = self.data.part_regressor
    if regressor is None:  # a run of jump detection: its dataset's regressor
      from tf_partfash.inputs.prepared import ensure_regressor
      data = self.data
      regressor = ensure_regressor(data.data_dir, data.table, data.split, data.state_dir,
                                   self._workers)
    return regressor.extract

  def folder_index(self, folder: str, part_extractor: str | None = None,
                   lazy: bool = False) -> GalleryIndex:
    """The index of a folder of the user's images, cached in the workdir while the model, the
    part extractor, the folder's list of images and each image's size and modification time stay
    the same; `lazy` as for `index`."""
    if self.base is not None:
      return self.base.folder_index(folder, part_extractor, lazy)
    folder = os.path.realpath(folder)
    paths = folder_images(folder)
    stamps = file_stamps(folder, paths)
    extractor = part_extractor or self.config.data.part_extractor
    file = os.path.join(self.workdir, index_file(self.folder_name(folder, extractor)))

    def stale(found: GalleryIndex) -> str | None:
      if found.paths.tolist() != paths:
        return f'images were added to or removed from {folder} since it was built'
      if found.stamps is None or not np.array_equal(found.stamps, stamps):
        changed = [p for k, p in enumerate(paths)
                   if found.stamps is None or not np.array_equal(found.stamps[k], stamps[k])]
        return f'{len(changed)} image(s) of {folder} changed since it was built (e.g. {changed[0]})'
      return None

    def build() -> GalleryIndex:
      return dataclasses.replace(self.embed(folder, paths, part_extractor=extractor),
                                 stamps=stamps)

    return cache.ensure(file, self.model_id, _reader(lazy), stale, build)

  def folder_name(self, folder: str, part_extractor: str | None = None) -> str:
    """The name a folder's index (`index_<name>.npz`) and compact index go by: one per folder
    and part extractor."""
    folder = os.path.realpath(folder)
    extractor = part_extractor or self.config.data.part_extractor
    key = folder if extractor == 'jumps' else f'{folder}\n{extractor}'
    return f'folder_{cache.digest(key.encode())}'

  def embed(self, image_root: str, paths: list[str], progress: bool | None = None,
            part_extractor: str | None = None) -> GalleryIndex:
    """Features of images outside the dataset: part extraction from the image (`part_extractor`
    as for `part_extractor()`), then the model."""
    if self.base is not None:
      return self.base.embed(image_root, paths, progress, part_extractor)
    from tf_partfash.search import indexing
    return indexing.embed_images(self.model, self.config, image_root, paths, self.model_id,
                                 self.part_extractor(part_extractor),
                                 self._progress if progress is None else progress)

  def searcher(self, name: str, features: GalleryIndex, vectors: np.ndarray, backend: str,
               distance: str) -> Searcher | CompactSearcher:
    """Top-k search over `vectors`, the method's gallery vectors of `features`. For
    backend=compact the codes are read from `compact_<name>.npz`, or built there when absent
    (or when the run was opened with `rebuild_compact`); a file of another model or gallery is
    an error saying so, never used."""
    if backend != 'compact':
      return Searcher(vectors, backend, distance)
    from tf_partfash.search.compact import CompactIndex, CompactSearcher, gallery_identity
    _check_name('compact index', name)
    file = os.path.join(self.workdir, compact_file(name))
    identity = gallery_identity(self.model_id, features.paths, vectors, features.stamps)
    # Reading takes no lock (a read-only workdir with its index in place can be searched; the
    # file is replaced whole); building holds one, so concurrent first searches build it once.
    if os.path.exists(file) and not self._rebuild_compact:
      return CompactSearcher(CompactIndex.load(file, self.model_id, identity), vectors, distance)
    with atomic.exclusive(f'{file}.lock', f'building {file}'):
      if os.path.exists(file) and not self._rebuild_compact:  # built while this one waited
        compact = CompactIndex.load(file, self.model_id, identity)
      else:
        atomic.remove_stale(file)
        compact = CompactIndex.build(vectors, self.model_id, identity, self._progress)
        compact.save(file)
        self._rebuild_compact = False  # once per request, not for every later search
    return CompactSearcher(compact, vectors, distance)

  def encoder(self, with_prototypes: bool = True) -> Encoder:
    """The method's query encoder; `with_prototypes=False` for searches without changes (the
    prototypes, computed on first use, need the model and the training images)."""
    return self.method.encoder_class().from_run(self, with_prototypes)


def feature_matrix(index: GalleryIndex) -> np.ndarray:
  """(N, F) the x of a feature method (paper 003) for every image of an index: its signatures
  concatenated, a new array (a manipulation changes it, never the index)."""
  return np.array(index.signatures, np.float32).reshape(len(index), -1)


def _check_name(what: str, name: str) -> None:
  if not re.fullmatch(r'[A-Za-z0-9_-]+', name):
    raise UserError(f'{what} name {name!r}: use letters, digits, _ and - only')


def _reader(lazy: bool):
  """`GalleryIndex.load`, with the signatures left in the file when `lazy`."""
  return functools.partial(GalleryIndex.load, lazy_signatures=True) if lazy else GalleryIndex.load
