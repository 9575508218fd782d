"""The training losses: masked attribute classification (Eq. 1-2) and part triplet ranking (Eq. 3).

Pure functions of tensors, usable inside `tf.function`, plus a thin Keras wrapper for the
classification loss. Labels are int tensors with `attributes.MISSING` (-1) for a missing label.

There are S + 1 = 6 signatures (§4.5): the general signature first (v = 0), then one per special
attribute in `attributes.SPECIAL_ATTRIBUTES` order; `SIGNATURE_NAMES` names them in that order.
Triplets are mined inside the mini-batch (§6) with stateless randomness, so a fixed seed gives the
same triplets every time.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import keras
import tensorflow as tf

from tf_partfash.attributes import GENERAL_ATTRIBUTES, MISSING, SIGNATURE_NAMES, SPECIAL_ATTRIBUTES
from tf_partfash.config import check_distance


def masked_cross_entropy(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
  """Eq. 1-2 for one attribute: softmax cross entropy averaged over the images that have a label.

  `labels` (B,) int with -1 = missing, `logits` (B, K). Images with -1 contribute nothing; the mean
  is over the labelled ones, and is 0 (not NaN) when no image in the batch has a label. Under
  `tf.distribute` each replica divides by the replicas' mean count, so the mean of their terms
  is the mean over the global batch's labelled images.
  """
  labels = tf.cast(labels, tf.int32)
  logits = tf.convert_to_tensor(logits)
  labelled = labels != MISSING
  # The -1 rows get a dummy class 0 so the op accepts them; their loss is masked out below.
  per_image = tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=tf.where(labelled, labels, 0), logits=logits)
  mask = tf.cast(labelled, per_image.dtype)
  return tf.math.divide_no_nan(tf.reduce_sum(per_image * mask),
                               _replica_mean(tf.reduce_sum(mask)))


def _replica_mean(count: tf.Tensor) -> tf.Tensor:
  """The mean of `count` over the replicas in sync; `count` itself outside `strategy.run` or
  with one replica.

  A masked mean divided by it, scaled by 1/R on each of R replicas and summed (as the gradients
  are), is the masked mean over the whole global batch, however the labelled images (or valid
  triplets) fall between the replicas.
  """
  context = tf.distribute.get_replica_context()
  if context is None or context.num_replicas_in_sync == 1:
    return count
  return context.all_reduce(tf.distribute.ReduceOp.MEAN, tf.stop_gradient(count))


def attribute_classification_loss(labels: tf.Tensor, logits: Sequence[tf.Tensor]) -> tf.Tensor:
  """Eq. 1: the sum over attributes of `masked_cross_entropy`.

  `labels` (B, A) int, `logits` A tensors of shape (B, K_a), in the same attribute order.
  """
  labels = tf.convert_to_tensor(labels)
  if labels.shape.rank != 2 or labels.shape[1] != len(logits):
    raise ValueError(f'labels of shape {labels.shape} do not match {len(logits)} logits tensors; '
                     'expected labels of shape (B, number of attributes)')
  return tf.add_n([masked_cross_entropy(labels[:, a], logits[a]) for a in range(len(logits))])


class MaskedSparseCategoricalCrossentropy(keras.losses.Loss):
  """Keras wrapper of `masked_cross_entropy` (Eq. 1-2 for one attribute head).

  The loss is already a mean over the labelled images, so per-sample weights are refused: Keras
  would only rescale that mean.
  """

  def __init__(self, name: str = 'masked_sparse_categorical_crossentropy', **kwargs):
    super().__init__(name=name, **kwargs)

  def __call__(self, y_true, y_pred, sample_weight=None):
    if sample_weight is not None:
      raise ValueError(f'{self.name}: sample_weight is not supported; the loss is a mean over the '
                       'images whose label is not -1')
    return super().__call__(y_true, y_pred)

  def call(self, y_true, y_pred):
    # Keras hands labels over as floats, and as (B, 1) when the dataset yields column vectors.
    return masked_cross_entropy(tf.reshape(tf.cast(y_true, tf.int32), [-1]), y_pred)


def pairwise_distance(x: tf.Tensor, y: tf.Tensor, distance: str = 'euclidean') -> tf.Tensor:
  """Row-wise d(x_i, y_i) of two (T, D) tensors: Euclidean, or squared Euclidean.

  The Euclidean distance has gradient 0 (not NaN) where x_i == y_i: the square root is only
  evaluated on positive arguments, and the zero branch is a constant.
  """
  check_distance(distance)
  squared = tf.reduce_sum(tf.square(x - y), axis=-1)
  if distance == 'squared':
    return squared
  positive = squared > 0
  return tf.where(positive, tf.sqrt(tf.where(positive, squared, tf.ones_like(squared))),
                  tf.zeros_like(squared))


def triplet_hinge(anchor: tf.Tensor, positive: tf.Tensor, negative: tf.Tensor, margin: float,
                  distance: str = 'euclidean') -> tf.Tensor:
  """Per-triplet term of Eq. 3, max(0, m + d(a, p) - d(a, n)), for (T, D) inputs -> (T,)."""
  d_ap = pairwise_distance(anchor, positive, distance)
  d_an = pairwise_distance(anchor, negative, distance)
  return tf.nn.relu(margin + d_ap - d_an)


def _masked_mean(values: tf.Tensor, valid: tf.Tensor | None) -> tf.Tensor:
  if valid is None:
    valid = tf.ones_like(values, tf.bool)
  mask = tf.cast(valid, values.dtype)
  return tf.math.divide_no_nan(tf.reduce_sum(values * mask),
                               _replica_mean(tf.reduce_sum(mask)))


def triplet_ranking_loss(anchor: tf.Tensor, positive: tf.Tensor, negative: tf.Tensor,
                         margin: float, distance: str = 'euclidean',
                         valid: tf.Tensor | None = None) -> tf.Tensor:
  """Eq. 3 for one signature: the mean of `triplet_hinge` over the (valid) triplets.

  Inputs are (T, D) signatures that the caller has already L2-normalised (§4.6 normalises the
  signatures so that each counts equally; with unit vectors d is in [0, 2] and `margin` has a fixed
  scale). `valid` (T,) bool selects the triplets that count; 0 when none is valid.
  """
  return _masked_mean(triplet_hinge(anchor, positive, negative, margin, distance), valid)


def active_fraction(hinge: tf.Tensor, valid: tf.Tensor | None = None) -> tf.Tensor:
  """Fraction of the valid triplets whose `triplet_hinge` is positive (still violate the margin).

  For logging: it falls as training satisfies the margin. 0 when no triplet is valid.
  """
  return _masked_mean(tf.cast(hinge > 0, hinge.dtype), valid)


def _random_choice(allowed: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """Per row of the (B, B) bool `allowed`, a uniformly random column where it is True.

  The argmax of i.i.d. uniform noise over the allowed columns is uniform over them; disallowed
  columns get -1, below any noise. Rows with no allowed column give an arbitrary index.
  """
  noise = tf.random.stateless_uniform(tf.shape(allowed), seed)
  return tf.argmax(tf.where(allowed, noise, -tf.ones_like(noise)), axis=1, output_type=tf.int32)


def sample_triplets(labels: tf.Tensor, seed: tf.Tensor | Sequence[int]
                    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
  """In-batch triplets of one signature (§4.5, §6): `(anchor, positive, negative, valid)`, (B,).

  `labels` (B,) int, -1 = missing; `seed` a stateless seed, shape (2,) int. Image i is the anchor
  of triplet i (`anchor` is `range(B)`). The triplet is valid when i has a label, another image
  has the same label and a third has a different, non-missing label; its positive is then a
  uniformly random other image with the same label and its negative a uniformly random image with
  a different non-missing label. Images with -1 never take part; a singleton label is never an
  anchor but may be a negative. For invalid triplets positive and negative are set to the anchor.
  Pure TF ops (masks over the (B, B) label-equality matrix), so it runs in `tf.function`; there,
  pass the seed as a tensor (e.g. `tf.stack([run_seed, step])`) so that new seeds do not retrace.
  """
  labels = tf.convert_to_tensor(labels)
  if labels.shape.rank != 1:
    raise ValueError(f'expected labels of shape (B,), got {labels.shape}')
  seed = tf.convert_to_tensor(seed)
  labelled = labels != MISSING
  both_labelled = labelled[:, None] & labelled[None, :]
  same = labels[:, None] == labels[None, :]
  not_self = tf.logical_not(tf.eye(tf.shape(labels)[0], dtype=tf.bool))
  positive_ok = same & both_labelled & not_self
  negative_ok = tf.logical_not(same) & both_labelled
  valid = tf.reduce_any(positive_ok, axis=1) & tf.reduce_any(negative_ok, axis=1)
  positive_seed, negative_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  anchor = tf.range(tf.shape(labels)[0], dtype=tf.int32)
  positive = tf.where(valid, _random_choice(positive_ok, positive_seed), anchor)
  negative = tf.where(valid, _random_choice(negative_ok, negative_seed), anchor)
  return anchor, positive, negative, valid


def general_group_ids(labels_bg: tf.Tensor) -> tf.Tensor:
  """One group id per image for the strict general rule (§4.5): (B, G) general labels -> (B,).

  Two images share a group iff their G general labels are all equal, a missing label counting as
  its own value -1 (so the rows must be equal including their missing entries). The id is the
  index of the first row of the batch equal to the row; ids are never -1, so every image takes part
  in `sample_triplets`. `data.sampling.BalancedBatchSampler` groups with the same rule.
  """
  labels_bg = tf.convert_to_tensor(labels_bg)
  if labels_bg.shape.rank != 2:
    raise ValueError(f'expected general labels of shape (B, G), got {labels_bg.shape}')
  equal = tf.reduce_all(labels_bg[:, None, :] == labels_bg[None, :, :], axis=-1)
  batch = tf.shape(labels_bg)[0]
  columns = tf.broadcast_to(tf.range(batch, dtype=tf.int32)[None, :], tf.shape(equal))
  # The smallest equal column: the diagonal is always equal, so it is at most the row index.
  return tf.reduce_min(tf.where(equal, columns, batch), axis=1)


class TripletStats(NamedTuple):
  """Per-signature figures of `part_triplet_loss`, each (S + 1,) in `SIGNATURE_NAMES` order."""
  losses: tf.Tensor  # float: Eq. 3 term of the signature (mean over its valid triplets)
  num_triplets: tf.Tensor  # int32: number of valid triplets
  active_fraction: tf.Tensor  # float: fraction of valid triplets with positive hinge


def part_triplet_loss(signatures: Sequence[tf.Tensor], special_labels: tf.Tensor,
                      general_labels: tf.Tensor, margin: float, seed: tf.Tensor | Sequence[int],
                      distance: str = 'euclidean') -> tuple[tf.Tensor, TripletStats]:
  """L_triplet of Eq. 3: the sum over the S + 1 signatures of their in-batch triplet loss.

  `signatures`: S + 1 (B, D_v) tensors in `SIGNATURE_NAMES` order (general first), already
  L2-normalised by the caller. `special_labels` (B, S) in `SPECIAL_ATTRIBUTES` order,
  `general_labels` (B, G) in `GENERAL_ATTRIBUTES` order, -1 = missing. The general signature's
  triplets follow the strict rule via `general_group_ids`, each special one its own label. Each
  signature's term is the mean over its valid triplets (0 if it has none); `seed` (2,) int is
  split into one independent seed per signature.
  """
  num_signatures = len(SIGNATURE_NAMES)
  if len(signatures) != num_signatures:
    raise ValueError(f'expected {num_signatures} signatures ({", ".join(SIGNATURE_NAMES)}), got '
                     f'{len(signatures)}')
  special_labels = tf.convert_to_tensor(special_labels)
  general_labels = tf.convert_to_tensor(general_labels)
  if special_labels.shape.rank != 2 or special_labels.shape[1] != len(SPECIAL_ATTRIBUTES):
    raise ValueError(f'expected special labels of shape (B, {len(SPECIAL_ATTRIBUTES)}), got '
                     f'{special_labels.shape}')
  if general_labels.shape.rank != 2 or general_labels.shape[1] != len(GENERAL_ATTRIBUTES):
    raise ValueError(f'expected general labels of shape (B, {len(GENERAL_ATTRIBUTES)}), got '
                     f'{general_labels.shape}')
  group_labels = [general_group_ids(general_labels)] + tf.unstack(special_labels, axis=1)
  seeds = tf.random.experimental.stateless_split(tf.convert_to_tensor(seed), num_signatures)
  terms, counts, actives = [], [], []
  for v in range(num_signatures):
    _, positive, negative, valid = sample_triplets(group_labels[v], seeds[v])
    signature = tf.convert_to_tensor(signatures[v])
    # Triplet i has image i as its anchor, so the anchors are the signatures themselves.
    hinge = triplet_hinge(signature, tf.gather(signature, positive),
                          tf.gather(signature, negative), margin, distance)
    terms.append(_masked_mean(hinge, valid))
    counts.append(tf.reduce_sum(tf.cast(valid, tf.int32)))
    actives.append(active_fraction(hinge, valid))
  stats = TripletStats(losses=tf.stack(terms), num_triplets=tf.stack(counts),
                       active_fraction=tf.stack(actives))
  return tf.reduce_sum(stats.losses), stats
