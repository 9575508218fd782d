"""Training FLAM's baselines, Cls-Concat and Emb-Concat (paper 003 §4.2), on frozen features.

Cls-Concat learns Eq. 1's masked cross entropy per attribute (an image teaches the attributes it
is labelled on); Emb-Concat learns FLAM's Eq. 2 per attribute with dictionary anchors. Either
then keeps each class's mean feature over its labelled training images (`class_means`), the
generic feature a manipulated query takes (`search.feature_encoders.ConcatEncoder`). Steps,
batches and draws come from (seed, step), as in `flam_trainer`, so a resumed run continues
exactly.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf

from tf_partfash.config import FlamConfig
from tf_partfash.models.feature_baselines import ConcatBaseline
from tf_partfash.training.flam_trainer import (batch_rows, count_classes, embedding_step,
                                               step_seed)
from tf_partfash.training.losses import attribute_classification_loss


def classification_step(model: ConcatBaseline, optimizer):
  """One step of Cls-Concat: Eq. 1 summed over the attributes, as a `tf.function`."""
  variables = model.trainable_parts

  @tf.function
  def step_fn(xb, yb, seed):
    del seed
    with tf.GradientTape() as tape:
      loss = attribute_classification_loss(yb, model.logits(xb, training=True))
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return {'classification': loss}

  return step_fn


def store_class_means(model: ConcatBaseline, x: np.ndarray, labels: np.ndarray,
                      chunk: int = 4096) -> None:
  """Each class's mean (normalised) feature over the training images labelled with it."""
  features = np.concatenate([np.asarray(model.embed(tf.constant(x[i:i + chunk])))
                             for i in range(0, len(x), chunk)])
  for a, means in enumerate(model.class_means):
    sums = np.zeros(means.shape, np.float64)
    known = labels[:, a] >= 0
    np.add.at(sums, labels[known, a], features[known, a])
    counts = np.bincount(labels[known, a], minlength=means.shape[0])[:, None]
    means.assign((sums / np.maximum(counts, 1)).astype(np.float32))
  count_classes(model, labels)


class ConcatTrainer:
  """`config.flam_embedding_steps` steps on the labelled images, then the class means; its
  `checkpoint` (model, optimizer, step) resumes it."""

  def __init__(self, model: ConcatBaseline, config: FlamConfig, seed: int):
    self.model, self.config, self.seed = model, config, seed
    self.optimizer = tf.keras.optimizers.Adam(config.flam_embedding_learning_rate)
    self.optimizer.build(model.trainable_parts)
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
    self.checkpoint = tf.train.Checkpoint(model=model, step=self.step, optimizer=self.optimizer)
    self.total_steps = config.flam_embedding_steps

  def run(self, x: np.ndarray, labels: np.ndarray,
          after_step: Callable[[int, str, dict], None] = lambda step, stage, logs: None) -> None:
    """Trains from `self.step` on features `x` (N, F) with `labels` (N, n), -1 unlabelled."""
    labelled = np.flatnonzero((labels >= 0).any(axis=1))
    step_fn = (classification_step(self.model, self.optimizer) if self.model.kind == 'cls'
               else embedding_step(self.model, self.optimizer, self.config))
    for step in range(int(self.step.numpy()), self.total_steps):
      batch = batch_rows(labelled, self.config, self.seed, step, 1)
      logs = step_fn(tf.constant(x[batch]), tf.constant(labels[batch]),
                     step_seed(self.seed, step, 1))
      self.step.assign(step + 1)
      after_step(step + 1, 'embedding', {k: float(v) for k, v in logs.items()})
    store_class_means(self.model, x, labels)
