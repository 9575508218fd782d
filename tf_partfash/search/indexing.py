"""Computing what search reads with a trained model: a gallery's features and the generic
attribute values (§4.6), over a dataset in resumable chunks or over images of one's own.

The caller (`trained_run.TrainedRun`) decides when: it loads the model and the data only when a
cache must be built, and holds the lock of the file being built.
"""
from __future__ import annotations

import logging
import os
from typing import Sequence

import keras
import numpy as np

from tf_partfash.attributes import ATTRIBUTE_NAMES, MISSING
from tf_partfash.data.shopping100k import IMAGES_DIR
from tf_partfash.errors import UserError
from tf_partfash.inputs.pipeline import Examples
from tf_partfash.inputs.prepared import PreparedData
from tf_partfash.models.inference import predict
from tf_partfash.parts import CASES, extract_parts, is_cut_out, read_image
from tf_partfash.parts.extraction import PartExtractor, WORK_HEIGHT
from tf_partfash.search.gallery import (GalleryIndex, Prototypes, prototype_sums,
                                        prototypes_from_sums)
from tf_partfash.storage import cache
from tf_partfash.storage.progress import ProgressLine
from tf_partfash.storage.workdir import RunConfig

def _digest(rows: np.ndarray) -> str:
  return cache.digest(np.asarray(rows, np.int64).tobytes())


def index_rows(model: keras.Model, run: RunConfig, data: PreparedData, rows: np.ndarray,
               model_id: str, partial: str, what: str, chunk_size: int = cache.CHUNK_SIZE,
               progress: bool = True) -> GalleryIndex:
  """The index of dataset `rows`, computed in chunks kept in the directory `partial`."""
  rows = np.asarray(rows, np.int64)

  def compute(chunk: np.ndarray) -> dict[str, np.ndarray]:
    out = predict(model, data.examples, chunk, run.model.image_size, run.train.batch_size)
    case = {} if out.case_probabilities is None else {'case': out.case_probabilities}
    return {'signatures': out.signatures, **case,
            **{f'p_{a}': p for a, p in out.probabilities.items()}}

  key = {'model_id': model_id, 'rows': _digest(rows), 'chunk': chunk_size}
  chunks = cache.chunked(partial, key, rows, chunk_size, what, compute, progress)
  joined = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
  return GalleryIndex(joined['signatures'], {a: joined[f'p_{a}'] for a in ATTRIBUTE_NAMES},
                      data.examples.labels[rows].astype(np.int64),
                      data.table['path'].to_numpy(str)[rows], rows, model_id,
                      os.path.join(data.data_dir, IMAGES_DIR),
                      case_probabilities=joined.get('case'))


def training_prototypes(model: keras.Model, run: RunConfig, data: PreparedData, model_id: str,
                        partial: str, chunk_size: int = cache.CHUNK_SIZE,
                        progress: bool = True) -> Prototypes:
  """The prototypes (§4.6) over the run's training split, in chunks kept in `partial`."""
  rows = data.rows('train')
  if not len(rows):
    raise UserError(f'{data.data_dir}: the split has no training images to average')

  def compute(chunk: np.ndarray) -> dict[str, np.ndarray]:
    out = predict(model, data.examples, chunk, run.model.image_size, run.train.batch_size)
    return prototype_sums(out.signatures, data.examples.labels[chunk])

  key = {'model_id': model_id, 'rows': _digest(rows), 'chunk': chunk_size}
  chunks = cache.chunked(partial, key, rows, chunk_size, 'prototypes', compute, progress)
  return prototypes_from_sums({k: sum(c[k] for c in chunks) for k in chunks[0]}, model_id)


def embed_images(model: keras.Model, run: RunConfig, image_root: str, paths: Sequence[str],
                 model_id: str, extract: PartExtractor = extract_parts,
                 progress: bool = True) -> GalleryIndex:
  """Features of images outside the dataset (§4.6 queries, user galleries): part extraction by
  `extract` (as the run extracts its test images, `ModelConfig.test_case_from`: no label settles
  the case), then a forward pass. Labels are unknown."""
  files = [os.path.join(image_root, p) for p in paths]
  cut_outs = sum(map(is_cut_out, files))
  if cut_outs:
    logging.info('%d of %d images have transparent backgrounds: composited on white, as a shop '
                 "photo's background", cut_outs, len(files))
  line = ProgressLine(len(files), cache.PROGRESS_EVERY_SECS, unit='image') if progress else None
  lower_body = False if run.model.test_case_from == 'upper_body' else None
  parts = []
  for done, file in enumerate(files, start=1):
    parts.append(extract(read_image(file, WORK_HEIGHT), lower_body))
    if line:
      line.update(done, 'parts')
  arrays = [p.as_arrays() for p in parts]
  unknown = np.full((len(files), len(ATTRIBUTE_NAMES)), MISSING, np.int32)
  examples = Examples(np.array(files), unknown, np.stack([a[0] for a in arrays]),
                      np.stack([a[1] for a in arrays]),
                      np.array([CASES.index(p.case) for p in parts], np.int32))
  rows = np.arange(len(files))
  out = predict(model, examples, rows, run.model.image_size, run.train.batch_size,
                cache.PROGRESS_EVERY_SECS if progress else None)
  return GalleryIndex(out.signatures, out.probabilities, examples.labels.astype(np.int64),
                      np.asarray(paths, str), rows, model_id, image_root,
                      case_probabilities=out.case_probabilities)
