"""A model's forward passes over a dataset: L2-normalised signatures and attribute probabilities."""
from __future__ import annotations

import dataclasses
import weakref

import keras
import numpy as np
import tensorflow as tf

from tf_partfash.attributes import ATTRIBUTE_NAMES
from tf_partfash.inputs.pipeline import (Examples, PipelineConfig, eager_batch, iterate_batches,
                                         make_dataset)
from tf_partfash.storage.progress import ProgressLine


@dataclasses.dataclass(frozen=True)
class Predictions:
  """Model outputs for `rows` of a dataset, in that order."""
  rows: np.ndarray                    # (N,) rows of the Examples
  signatures: np.ndarray              # (N, S + 1, D) float32, L2-normalised per signature
  probabilities: dict[str, np.ndarray]  # attribute -> (N, K) softmax
  case_probabilities: np.ndarray | None  # (N, 3); None for a network without the head


# Up to this many images are read eagerly, without a tf.data pipeline (`pipeline.eager_batch`).
EAGER_ROWS = 4
# One traced pass per model: tracing costs far more than a small batch (a served upload).
_PASSES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def feature_pass(model: keras.Model):
  """The traced inference pass of a batch (`image`, `boxes`, `present`): L2-normalised
  signatures, attribute probabilities and, for a network with the head, the case's. Made once
  per model."""
  if model in _PASSES:
    return _PASSES[model]

  @tf.function(reduce_retracing=True)
  def forward(batch):
    out = model({k: batch[k] for k in ('image', 'boxes', 'present')}, training=False)
    case = {'case': tf.nn.softmax(out['case_logits'])} if 'case_logits' in out else {}
    return {'signatures': tf.math.l2_normalize(out['signatures'], axis=-1), **case,
            **{f'p/{n}': tf.nn.softmax(out['logits'][n]) for n in ATTRIBUTE_NAMES}}

  _PASSES[model] = forward
  return forward


def predict(model: keras.Model, examples: Examples, rows: np.ndarray, image_size: int,
            batch_size: int = 64, progress_every_secs: float | None = None) -> Predictions:
  """Runs the model in inference mode over `rows` (any order), batch by batch."""
  rows = np.asarray(rows, np.int64)
  forward = feature_pass(model)
  if 0 < len(rows) <= EAGER_ROWS:  # a served photo: no pipeline to build
    return _predictions(rows, forward(eager_batch(examples, rows, image_size)))
  config = PipelineConfig(image_size=image_size, batch_size=batch_size)
  dataset = make_dataset(examples, rows, config, drop_remainder=False)
  chunks: dict[str, list[np.ndarray]] = {}
  progress = (ProgressLine(len(rows), progress_every_secs, unit='image')
              if progress_every_secs else None)
  done = 0
  for batch in iterate_batches(dataset, examples, rows, batch_size):
    for k, v in forward(batch).items():
      chunks.setdefault(k, []).append(v.numpy())
    done += int(batch['index'].shape[0])
    if progress:
      progress.update(done, 'features')
  return _predictions(rows, {k: np.concatenate(v) for k, v in chunks.items()})


def _predictions(rows: np.ndarray, out: dict) -> Predictions:
  out = {k: np.asarray(v) for k, v in out.items()}
  return Predictions(rows, out['signatures'], {n: out[f'p/{n}'] for n in ATTRIBUTE_NAMES},
                     out.get('case'))
