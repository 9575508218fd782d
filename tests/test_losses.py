"""Golden-value tests of the losses (Eq. 1-3) and of in-batch triplet mining (§4.5, §6)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from tf_partfash.training import losses

LN3 = math.log(3.0)
SQRT2 = math.sqrt(2.0)


# --- Eq. 1-2: masked cross entropy ---------------------------------------------------------------

def test_cross_entropy_golden():
  # logits (0, ln 3): softmax = (1/4, 3/4). Label 1: -ln 0.75 = 0.287682; label 0: ln 4 = 1.386294.
  logits = tf.constant([[0.0, LN3], [0.0, LN3]])
  assert losses.masked_cross_entropy(tf.constant([1, 1]), logits).numpy() == pytest.approx(
      0.2876821, abs=1e-6)
  # Mean over the two images: (0.287682 + 1.386294) / 2 = 0.836988.
  assert losses.masked_cross_entropy(tf.constant([1, 0]), logits).numpy() == pytest.approx(
      0.8369882, abs=1e-6)


def test_cross_entropy_masks_missing_labels():
  # Only image 0 has a label: the loss is that image's loss alone, -ln 0.75, whatever the others'
  # logits are (image 1 would cost ln(1 + e^10) ~ 10 with label 1).
  logits = tf.constant([[0.0, LN3], [10.0, 0.0], [0.0, -7.0]])
  loss = losses.masked_cross_entropy(tf.constant([1, -1, -1]), logits)
  assert loss.numpy() == pytest.approx(0.2876821, abs=1e-6)


def test_cross_entropy_without_labels_is_zero_with_zero_gradient():
  logits = tf.Variable([[1.0, 2.0], [3.0, -1.0]])
  with tf.GradientTape() as tape:
    loss = losses.masked_cross_entropy(tf.constant([-1, -1]), logits)
  grad = tape.gradient(loss, logits)
  assert loss.numpy() == 0.0
  np.testing.assert_array_equal(grad.numpy(), np.zeros((2, 2)))


def test_attribute_classification_loss_sums_attributes():
  # Attribute 0: labels (1, 0) on logits (0, ln 3) -> 0.836988 (above).
  # Attribute 1: three classes, logits all 0 -> p = 1/3 -> ln 3 = 1.098612; image 1 is missing.
  labels = tf.constant([[1, 2], [0, -1]])
  logits = [tf.constant([[0.0, LN3], [0.0, LN3]]), tf.zeros((2, 3))]
  loss = losses.attribute_classification_loss(labels, logits)
  assert loss.numpy() == pytest.approx(0.8369882 + 1.0986123, abs=1e-6)
  with pytest.raises(ValueError, match='do not match 1 logits'):
    losses.attribute_classification_loss(labels, logits[:1])


def test_keras_wrapper_calls_the_pure_function():
  loss_fn = losses.MaskedSparseCategoricalCrossentropy()
  logits = tf.constant([[0.0, LN3], [5.0, 0.0]])
  # (B, 1) labels as a dataset may yield them; image 1 missing -> -ln 0.75.
  assert loss_fn(tf.constant([[1], [-1]]), logits).numpy() == pytest.approx(0.2876821, abs=1e-6)
  with pytest.raises(ValueError, match='sample_weight is not supported'):
    loss_fn(tf.constant([1, 0]), logits, sample_weight=tf.constant([1.0, 2.0]))


# --- Eq. 3: triplet ranking loss ----------------------------------------------------------------

A, P, N = [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]


def test_triplet_loss_golden_euclidean():
  # d(a, p) = sqrt(2) = 1.414214, d(a, n) = 2: max(0, 0.2 + 1.414214 - 2) = 0.
  # Swapping p and n: 0.2 + 2 - 1.414214 = 0.785786.
  anchor, positive, negative = tf.constant([A, A]), tf.constant([P, N]), tf.constant([N, P])
  hinge = losses.triplet_hinge(anchor, positive, negative, 0.2)
  np.testing.assert_allclose(hinge.numpy(), [0.0, 0.7857864], atol=1e-6)
  # The mean over both triplets: 0.785786 / 2 = 0.392893; only the second valid: 0.785786.
  assert losses.triplet_ranking_loss(anchor, positive, negative, 0.2).numpy() == pytest.approx(
      0.3928932, abs=1e-6)
  loss = losses.triplet_ranking_loss(anchor, positive, negative, 0.2,
                                     valid=tf.constant([False, True]))
  assert loss.numpy() == pytest.approx(0.7857864, abs=1e-6)
  none_valid = losses.triplet_ranking_loss(anchor, positive, negative, 0.2,
                                           valid=tf.constant([False, False]))
  assert none_valid.numpy() == 0.0


def test_triplet_loss_golden_squared():
  # Squared distances: d(a, p) = 2, d(a, n) = 4: max(0, 0.2 + 2 - 4) = 0; swapped 0.2 + 4 - 2 = 2.2.
  hinge = losses.triplet_hinge(tf.constant([A, A]), tf.constant([P, N]), tf.constant([N, P]), 0.2,
                               distance='squared')
  np.testing.assert_allclose(hinge.numpy(), [0.0, 2.2], atol=1e-6)
  with pytest.raises(ValueError, match='unknown distance'):
    losses.triplet_hinge(tf.constant([A]), tf.constant([P]), tf.constant([N]), 0.2, 'cosine')


def test_triplet_gradient_is_finite_when_anchor_equals_positive():
  # a = p = (1, 0), n = (0, 1), m = 2: loss = 2 + 0 - sqrt(2) = 0.585786.
  # d/da of -|a - n| = -(a - n)/|a - n| = (-0.707107, 0.707107); d(a, p) adds 0 at a == p.
  # d/dn of -|a - n| = (a - n)/|a - n| = (0.707107, -0.707107); d/dp = 0.
  a, p, n = tf.Variable([A]), tf.Variable([A]), tf.Variable([P])
  with tf.GradientTape() as tape:
    loss = losses.triplet_ranking_loss(a, p, n, 2.0)
  grads = tape.gradient(loss, [a, p, n])
  assert loss.numpy() == pytest.approx(0.5857864, abs=1e-6)
  np.testing.assert_allclose(grads[0].numpy(), [[-0.7071068, 0.7071068]], atol=1e-6)
  np.testing.assert_array_equal(grads[1].numpy(), [[0.0, 0.0]])
  np.testing.assert_allclose(grads[2].numpy(), [[0.7071068, -0.7071068]], atol=1e-6)


def test_active_fraction():
  # Valid hinges 0, 0.78, 0.1 -> 2 of 3 positive; the invalid 0.5 does not count.
  hinge = tf.constant([0.0, 0.78, 0.1, 0.5])
  fraction = losses.active_fraction(hinge, tf.constant([True, True, True, False]))
  assert fraction.numpy() == pytest.approx(2 / 3)
  assert losses.active_fraction(hinge, tf.zeros(4, tf.bool)).numpy() == 0.0


# --- in-batch triplet mining ---------------------------------------------------------------------

BATCH = [0, 0, 1, 1, -1, 2]


def test_sample_triplets_on_hand_made_batch():
  sample = tf.function(losses.sample_triplets)
  labels = np.array(BATCH)
  negatives_seen = set()
  for s in range(30):
    triplets = sample(tf.constant(BATCH), tf.constant([s, 7]))
    anchor, positive, negative, valid = (t.numpy() for t in triplets)
    np.testing.assert_array_equal(anchor, np.arange(6))
    # Image 4 (missing) and the singleton 5 are never anchors.
    np.testing.assert_array_equal(valid, [True, True, True, True, False, False])
    # The only same-label partner of 0 is 1, of 2 is 3, and back.
    np.testing.assert_array_equal(positive[:4], [1, 0, 3, 2])
    for i in range(4):
      assert labels[negative[i]] not in (labels[i], -1)
      negatives_seen.add(int(negative[i]))
    # Invalid triplets point at the anchor itself.
    np.testing.assert_array_equal(positive[4:], [4, 5])
    np.testing.assert_array_equal(negative[4:], [4, 5])
  # Every allowed negative, including the singleton 5, is drawn; 4 never is.
  assert negatives_seen == {0, 1, 2, 3, 5}


def test_sample_triplets_is_deterministic_and_seed_dependent():
  labels = tf.constant([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
  first = [t.numpy() for t in losses.sample_triplets(labels, [3, 4])]
  again = [t.numpy() for t in losses.sample_triplets(labels, [3, 4])]
  for x, y in zip(first, again):
    np.testing.assert_array_equal(x, y)
  others = [losses.sample_triplets(labels, [s, 4])[2].numpy() for s in range(5)]
  assert any(not np.array_equal(first[2], o) for o in others)


def test_sample_triplets_negatives_are_uniform():
  # Anchor 0 (label 0) has negatives 2, 3, 5: over 90 seeds each is expected 30 times
  # (binomial sd 4.5); a biased choice (e.g. always the first allowed index) would give 90, 0, 0.
  sample = tf.function(losses.sample_triplets)
  counts = {2: 0, 3: 0, 5: 0}
  for s in range(90):
    counts[int(sample(tf.constant(BATCH), tf.constant([s, 0]))[2][0])] += 1
  assert all(15 <= c <= 45 for c in counts.values()), counts


def test_sample_triplets_needs_a_negative():
  _, _, _, valid = losses.sample_triplets(tf.constant([1, 1, -1, 1]), [0, 0])
  np.testing.assert_array_equal(valid.numpy(), [False] * 4)


def test_general_group_ids_equal_rows_including_missing():
  rows = tf.constant([[0, 1], [0, -1], [0, 1], [0, -1], [2, 2], [-1, -1], [-1, -1]])
  np.testing.assert_array_equal(losses.general_group_ids(rows).numpy(), [0, 1, 0, 1, 4, 5, 5])


# --- the S + 1 sum -------------------------------------------------------------------------------

S = 1.0 / SQRT2
# Images 0, 1 apart at (1, 0) and (0, 1); images 2, 3 both at (-s, -s), equidistant from 0 and 1:
# |(1, 0) - (-s, -s)| = sqrt(1 + 2s + 2s^2) = sqrt(2 + sqrt(2)) = 1.847759.
SPREAD = [[1.0, 0.0], [0.0, 1.0], [-S, -S], [-S, -S]]
TIGHT = [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]
# Images 0, 1, 2 at (1, 0), image 3 at (0, 1).
TRIPLE = [[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]


def _part_inputs():
  general = np.zeros((4, 7), np.int32)
  general[2:, 0] = 3  # general groups {0, 1}, {2, 3}
  special = np.array([
      # collar, color, fastening, pattern, sleevelen
      [-1, 0, 0, 0, 1],
      [-1, 0, 1, 0, 1],
      [-1, 1, 2, 0, 1],
      [-1, 1, -1, 1, 1],
  ], np.int32)
  # general: SPREAD; collar: all missing; color: SPREAD; fastening: no shared label;
  # pattern: TRIPLE with the singleton 3; sleevelen: one label, no negative.
  signatures = [SPREAD, TIGHT, SPREAD, TIGHT, TRIPLE, TIGHT]
  return [tf.constant(s) for s in signatures], tf.constant(special), tf.constant(general)


def test_part_triplet_loss_golden():
  # general and color, labels {0, 1}, {2, 3} on SPREAD, m = 0.5:
  #   anchors 0, 1: d(a, p) = sqrt(2), d(a, n) = 1.847759 (either negative) ->
  #     0.5 + 1.414214 - 1.847759 = 0.066454 each;
  #   anchors 2, 3: d(a, p) = 0, d(a, n) = 1.847759 -> 0.
  #   mean over 4 triplets: 0.033227, active fraction 2/4.
  # pattern on TRIPLE: anchors 0, 1, 2 (3 is a singleton): d(a, p) = 0, d(a, n) = sqrt(2) -> 0.
  # collar, fastening, sleevelen: no valid triplet -> 0.
  # Total: 2 * 0.033227 = 0.066454.
  signatures, special, general = _part_inputs()
  loss, stats = tf.function(losses.part_triplet_loss)(signatures, special, general, 0.5, [1, 2])
  assert loss.numpy() == pytest.approx(0.0664545, abs=1e-6)
  np.testing.assert_allclose(stats.losses.numpy(), [0.0332272, 0, 0.0332272, 0, 0, 0], atol=1e-6)
  np.testing.assert_array_equal(stats.num_triplets.numpy(), [4, 0, 4, 0, 3, 0])
  np.testing.assert_allclose(stats.active_fraction.numpy(), [0.5, 0, 0.5, 0, 0, 0])


def test_part_triplet_loss_gradients_are_finite():
  # The pairs (2, 3) sit at distance 0: the Euclidean distance must not give NaN gradients.
  signatures, special, general = _part_inputs()
  variables = [tf.Variable(s) for s in signatures]
  with tf.GradientTape() as tape:
    loss, _ = losses.part_triplet_loss(variables, special, general, 0.5, [1, 2])
  grads = tape.gradient(loss, variables)
  # tf.gather makes IndexedSlices gradients.
  grads = [tf.convert_to_tensor(g).numpy() for g in grads]
  assert all(np.isfinite(g).all() for g in grads)
  # Image 0 of the general signature (x0 = (1, 0), x1 = (0, 1), negative xn = (-s, -s)) is in the
  # two active triplets (0, 1, n) and (1, 0, n); the loss is their mean over 4 triplets:
  #   dL/dx0 = [2 (x0 - x1)/|x0 - x1| - (x0 - xn)/|x0 - xn|] / 4
  #          = [2 (0.707107, -0.707107) - (1.707107, 0.707107)/1.847759] / 4
  #          = [(1.414214, -1.414214) - (0.923880, 0.382683)] / 4 = (0.122583, -0.449224).
  np.testing.assert_allclose(grads[0][0], [0.122583, -0.449224], atol=1e-5)
  # Images 2, 3 of the pattern signature: anchor-positive at distance 0, hinge 0 -> gradient 0.
  np.testing.assert_array_equal(grads[4], np.zeros((4, 2)))


def test_part_triplet_loss_checks_shapes():
  signatures, special, general = _part_inputs()
  with pytest.raises(ValueError, match='expected 6 signatures'):
    losses.part_triplet_loss(signatures[:5], special, general, 0.5, [0, 0])
  with pytest.raises(ValueError, match=r'special labels of shape \(B, 5\)'):
    losses.part_triplet_loss(signatures, special[:, :4], general, 0.5, [0, 0])
  with pytest.raises(ValueError, match=r'general labels of shape \(B, 7\)'):
    losses.part_triplet_loss(signatures, special, general[:, :6], 0.5, [0, 0])
