"""One dataset made ready for a run: labels, the stored paper split, cached parts, pipeline examples.

Train, evaluate and search all go through `prepare`, so they see the same split and the same parts.
Training images' parts follow the labels where they settle "Extract Parts?" (§4.3,
`parts_v<N>.csv`); gallery and query images' come from the image alone (§4.2,
`parts_v<N>_from_image.csv`), so nothing indexed or searched depends on a label. With the
regression extractor of §7.5 the parts caches are named after the regressor
(`parts_v<N>_regression_<digest>[_from_image].csv`), itself taught on first use on a fixed sample
of the training images and kept as `part_regressor_v<M>_<digest>.npz`. Cached files (split, parts,
regressor) live in the data directory when it is writable, else in `cache_dir`.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Mapping

import numpy as np
import pandas as pd

from tf_partfash.config import PART_EXTRACTORS
from tf_partfash.data import shopping100k, splits
from tf_partfash.inputs import pipeline
from tf_partfash.parts import (CASES, PartRegressor, ensure_part_regressor, ensure_parts,
                               regressor_file, regressor_sample)
from tf_partfash.parts.extraction import ALGORITHM_VERSION
from tf_partfash.synthetic import dataset as synthetic

DEFAULT_SYNTHETIC_IMAGES = 5500
DEFAULT_CACHE = os.path.join(os.path.expanduser('~'), '.cache', 'tf_partfash')


@dataclasses.dataclass(frozen=True)
class PreparedData:
  data_dir: str
  table: pd.DataFrame       # label table, rows in attribute-file order
  split: pd.DataFrame       # `path`, `subset` in {train, gallery, query}, aligned with `table`
  examples: pipeline.Examples  # aligned with `table`; test images' parts from the image alone
  label_case: np.ndarray    # (N,) the "Extract Parts?" case the labels settle (§4.3), per row
  state_dir: str            # where the split, parts and query caches of this dataset live
  split_file: str           # the stored split (queries are stored beside it, named after it)
  skipped: tuple[str, ...] = ()  # undecodable images left out (`skip_corrupt`), under Images/
  part_regressor: PartRegressor | None = None  # the §7.5 extractor, when it was used

  def rows(self, *subsets: str) -> np.ndarray:
    """Row indices (into `table`/`examples`) of the given subsets."""
    return np.nonzero(self.split['subset'].isin(subsets).to_numpy())[0]


def default_synthetic_dir(num_images: int = DEFAULT_SYNTHETIC_IMAGES, seed: int = 0) -> str:
  return os.path.join(os.environ.get('TF_PARTFASH_CACHE', DEFAULT_CACHE),
                      f'synthetic_v{synthetic.VERSION}_n{num_images}_seed{seed}')


def _state_dir(data_dir: str, fallback: str) -> str:
  """Where the split and parts caches go: beside the data when writable (shared by every run)."""
  if os.access(data_dir, os.W_OK):
    return data_dir
  os.makedirs(fallback, exist_ok=True)
  return fallback


def ensure_regressor(data_dir: str, table: pd.DataFrame, split: pd.DataFrame, state_dir: str,
                     workers: int = 1) -> PartRegressor:
  """The dataset's part regressor (§7.5), taught on first use on a fixed sample of its training
  images (`regressor_sample`), kept in `state_dir` under a name that says which."""
  sample = regressor_sample(table[(split['subset'] == 'train').to_numpy()])
  return ensure_part_regressor(data_dir, sample, regressor_file(state_dir, sample), workers)


def prepare(data_dir: str | None, cache_dir: str, split_seed: int = 0, workers: int = 1,
            skip_corrupt: bool = False, synthetic_images: int = DEFAULT_SYNTHETIC_IMAGES,
            synthetic_seed: int = 0, gallery_images: int | None = None,
            query_images: int | None = None, part_extractor: str = 'jumps') -> PreparedData:
  """Reads (or, when `data_dir` is None, generates the built-in synthetic) dataset for a run.

  `gallery_images` / `query_images`: sizes of the split's gallery and query subsets (None: the
  paper's proportions, `splits.subset_sizes`). With `skip_corrupt`, images that cannot be decoded
  are left out before part extraction, each logged, and listed in `PreparedData.skipped`.
  `part_extractor`: one of `PART_EXTRACTORS`.
  """
  if part_extractor not in PART_EXTRACTORS:
    raise ValueError(f'unknown part extractor {part_extractor!r}; valid: '
                     + ', '.join(PART_EXTRACTORS))
  if data_dir is None:
    splits.subset_sizes(synthetic_images, gallery_images, query_images)  # before generating
    data_dir = synthetic.ensure_dataset(default_synthetic_dir(synthetic_images, synthetic_seed),
                                        synthetic_images, synthetic_seed, workers=workers)
  table = shopping100k.read_attributes(data_dir)
  state = _state_dir(data_dir, cache_dir)
  split, split_file = splits.ensure_split(state, table, split_seed, gallery_images,
                                          query_images)
  skipped: list[str] = []
  if skip_corrupt:  # before part extraction, which decodes the images it needs and would fail
    keep = pipeline.readable([shopping100k.image_file(data_dir, p) for p in table['path']])
    skipped = table['path'][~keep].tolist()
    table, split = table[keep].reset_index(drop=True), split[keep].reset_index(drop=True)
  # Training images: the category label settles "Extract Parts?" where it can (§4.3). Test images
  # (gallery and query): the image alone decides, as for a shopper's photo (§4.2), so indexing
  # and search read no label. Caches are named by the algorithm's version, so a cache of an
  # older extraction (or another regressor's) is not reused.
  regressor, extractor = None, ''
  if part_extractor == 'regression':
    regressor = ensure_regressor(data_dir, table, split, state, workers)
    extractor = f'_regression_{regressor.trained_on}'
  parts_file = lambda suffix: os.path.join(
      state, f'parts_v{ALGORITHM_VERSION}{extractor}{suffix}.csv')
  labelled = ensure_parts(data_dir, table, parts_file(''), workers, regressor=regressor)
  test = (split['subset'] != 'train').to_numpy()
  from_image = ensure_parts(data_dir, table[test], parts_file('_from_image'), workers,
                            use_labels=False, regressor=regressor)
  examples = pipeline.make_examples(data_dir, table, {**labelled, **from_image})
  label_case = np.array([CASES.index(labelled[p].case) for p in table['path']], np.int32)
  counts = split['subset'].value_counts().to_dict()
  logging.info('dataset %s: %d images (%s)%s', data_dir, len(table),
               ', '.join(f'{k} {v}' for k, v in sorted(counts.items())),
               f', {len(skipped)} unreadable left out' if skipped else '')
  return PreparedData(data_dir, table, split, examples, label_case, state, split_file,
                      tuple(skipped), regressor)


def prepare_run_data(inputs: Mapping[str, Any], cache_dir: str, workers: int = 1,
                     skip_corrupt: bool = False) -> PreparedData:
  """`prepare` with a run's recorded inputs (`RunConfig.data`): train, evaluate and search all
  call this, so they see the same dataset, split and parts."""
  return prepare(inputs['data_dir'], cache_dir, inputs['split_seed'], workers, skip_corrupt,
                 inputs['synthetic_images'], inputs['synthetic_seed'],
                 inputs.get('gallery_images'), inputs.get('query_images'),
                 inputs['part_extractor'])
