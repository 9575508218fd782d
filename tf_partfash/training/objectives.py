"""The training objective of each method, per stage (`methods.METHODS` names them).

Each is `loss(model, outputs, batch, stage, config, seed) -> (total, logs)`, built from the pure
loss functions of `losses`: the proposed network's L_attribute + "Extract Parts?" (+ Eq. 3's
part triplets in stage 2), classification alone (Classic; AMNet's pretraining), AMNet's Eq. 6.
"""
from __future__ import annotations

import logging

import keras
import numpy as np
import tensorflow as tf

from tf_partfash.attributes import (ATTRIBUTE_NAMES, GENERAL_COLUMNS, NUM_SPECIAL_VALUES,
                                    SPECIAL_COLUMNS, SPECIAL_OFFSETS)
from tf_partfash.config import TrainConfig
from tf_partfash.inputs.pipeline import Examples
from tf_partfash.models.inference import predict
from tf_partfash.training import losses

def partnet_loss(model: keras.Model, outputs: dict, batch: dict, stage: int, config: TrainConfig,
                 seed: tf.Tensor) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
  """L_attribute (Eq. 1-2) + "Extract Parts?" cross entropy (+ L_triplet, Eq. 3, in stage 2)."""
  del model
  labels = batch['labels']
  classification = losses.attribute_classification_loss(
      labels, [outputs['logits'][n] for n in ATTRIBUTE_NAMES])
  case = losses.masked_cross_entropy(batch['case'], outputs['case_logits'])
  total = classification + case
  logs = {'loss/classification': classification, 'loss/extract_parts': case}
  if stage == 2 and config.triplet_weight:
    signatures = tf.math.l2_normalize(outputs['signatures'], axis=-1)
    triplet, stats = losses.part_triplet_loss(
        tf.unstack(signatures, axis=1), tf.gather(labels, SPECIAL_COLUMNS, axis=1),
        tf.gather(labels, GENERAL_COLUMNS, axis=1), config.margin, seed, config.distance)
    total += config.triplet_weight * triplet
    logs['loss/triplet'] = triplet
    logs['triplets/active_fraction'] = tf.reduce_mean(stats.active_fraction)
  logs['loss/total'] = total
  return total, logs


def classification_loss(model: keras.Model, outputs: dict, batch: dict, stage: int,
                        config: TrainConfig, seed: tf.Tensor) -> tuple[tf.Tensor, dict]:
  """L_attribute (Eq. 1-2) alone: Classic in both stages, AMNet's pretraining (stage 1)."""
  del model, stage, config, seed
  loss = losses.attribute_classification_loss(
      batch['labels'], [outputs['logits'][n] for n in ATTRIBUTE_NAMES])
  return loss, {'loss/classification': loss, 'loss/total': loss}


def manipulation_of(reference: tf.Tensor, positive: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """(indicator h (T, C), manipulated labels (T, 12)) of triplets from their (T, 12) labels.

  h is 1 at the positive's value of every special attribute where the two differ (AMNet §3.4);
  the manipulated labels are the reference's with the positive's special labels (AMNet Eq. 4).
  """
  special_ref = tf.gather(reference, SPECIAL_COLUMNS, axis=1)
  special_pos = tf.gather(positive, SPECIAL_COLUMNS, axis=1)
  changed = tf.cast(special_ref != special_pos, tf.float32)
  rows = tf.one_hot(tf.constant(SPECIAL_OFFSETS) + tf.maximum(special_pos, 0), NUM_SPECIAL_VALUES)
  indicator = tf.reduce_sum(rows * changed[..., None], axis=1)
  is_special = tf.constant([c in SPECIAL_COLUMNS for c in range(len(ATTRIBUTE_NAMES))])
  return indicator, tf.where(is_special[None, :], positive, reference)


def amnet_loss(model: keras.Model, outputs: dict, batch: dict, stage: int, config: TrainConfig,
               seed: tf.Tensor) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
  """Stage 1: L_attribute (pretraining). Stage 2: AMNet Eq. 6, λ La + (1 - λ) Lt with
  λ = 1 - triplet_weight, on the triplets of `ManipulationTripletSampler` (ref, pos, neg, ...).

  La (AMNet Eq. 4) classifies the manipulated reference r' with the manipulated labels; Lt
  (AMNet Eq. 5) is the triplet hinge of (r', pos, neg) with margin m on L2-normalised vectors.
  """
  if stage == 1:
    return classification_loss(model, outputs, batch, stage, config, seed)
  del seed
  features = outputs['signatures'][:, 0]
  labels = batch['labels']
  indicator, wanted = manipulation_of(labels[0::3], labels[1::3])
  manipulated = model.manipulate(tf.math.l2_normalize(features[0::3], axis=-1), indicator)
  logits = model.classify_manipulated(manipulated, training=True)
  classification = losses.attribute_classification_loss(wanted, [logits[n] for n in ATTRIBUTE_NAMES])
  hinge = losses.triplet_hinge(*(tf.math.l2_normalize(x, axis=-1) for x in (
      manipulated, features[1::3], features[2::3])), config.margin, config.distance)
  triplet = tf.reduce_mean(hinge)
  total = (1.0 - config.triplet_weight) * classification + config.triplet_weight * triplet
  return total, {'loss/classification': classification, 'loss/triplet': triplet,
                 'triplets/active_fraction': losses.active_fraction(hinge), 'loss/total': total}


def initialise_amnet_memory(model: keras.Model, train: Examples, image_size: int,
                            batch_size: int) -> None:
  """AMNet §3.4, §4: memory row of each special value = mean r̂ of its training images, from the
  pretrained (stage 1) network. Called once, when stage 2 starts."""
  logging.info('initialising the AMNet memory from %d training images', len(train))
  features = predict(model, train, np.arange(len(train)), image_size, batch_size).signatures[:, 0]
  sums = np.zeros((NUM_SPECIAL_VALUES, features.shape[1]), np.float64)
  counts = np.zeros(NUM_SPECIAL_VALUES, np.int64)
  for offset, column in zip(SPECIAL_OFFSETS, SPECIAL_COLUMNS):
    known = train.labels[:, column] >= 0
    rows = offset + train.labels[known, column]
    np.add.at(sums, rows, features[known])
    counts += np.bincount(rows, minlength=NUM_SPECIAL_VALUES)
  model.initialise_memory(sums, counts)
