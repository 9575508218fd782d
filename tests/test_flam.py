"""FLAM (paper 003): its losses on hand-worked examples."""
import numpy as np
import pytest
import tensorflow as tf

from tf_partfash.training import flam_losses as fl


def test_the_embedding_triplet_loss_with_dictionary_anchors_eq_2():
  # Class vectors d0 = (1, 0), d1 = (0, 1); margin 0.2; cosine distances.
  dictionary = tf.constant([[1.0, 0.0], [0.0, 1.0]])
  embeddings = tf.constant([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [1.0, 0.2]])
  labels = tf.constant([0, 1, 0, -1, 1])  # row 3 unlabelled: no term (semi-supervised)
  loss = fl.embedding_loss(embeddings, labels, dictionary, negative_rows=tf.constant([1, 0, 1, 0, 0]),
                           negative_classes=tf.constant([1, 0, 1, 0, 0]), margin=0.2)
  # Rows 0 and 1 sit on their class vectors: both terms 0.
  # Row 2, e = (1, 1): term 1, anchor d0: dist(d0, e) = 1 - 1/sqrt2 = 0.292893, dist(d0, e1) = 1:
  #   max(0, 0.292893 - 1 + 0.2) = 0; term 2, anchor e: dist(e, d0) = dist(e, d1) = 0.292893: 0.2.
  # Row 4, e = (1, 0.2), class 1: cos(e, d1) = 0.2 / sqrt(1.04) = 0.196116, cos(e, d0) = 0.980581.
  #   term 1, anchor d1: 0.803884 - dist(d1, e0 = (1, 0)) 1 + 0.2 = 0.003884;
  #   term 2, anchor e: 0.803884 - 0.019419 + 0.2 = 0.984465.
  # Mean over the 4 labelled rows: (0 + 0 + 0.2 + 0.988349) / 4 = 0.297087.
  assert float(loss) == pytest.approx(0.297087, abs=1e-5)
  # A row without a negative (-1) has no term either.
  loss = fl.embedding_loss(embeddings, labels, dictionary, tf.constant([1, 0, -1, 0, -1]),
                           tf.constant([1, 0, 1, 0, 0]), margin=0.2)
  assert float(loss) == pytest.approx(0.0, abs=1e-6)


def test_the_cycle_loss_eq_5_and_its_convergence_measure():
  x = tf.constant([[3.0, 4.0], [0.0, 0.0]])
  recovered = tf.constant([[0.0, 0.0], [1.0, 0.0]])
  assert float(fl.cycle_loss(x, recovered)) == pytest.approx((5.0 + 1.0) / 2)
  # cos((1, 0), (1, 1)) = 0.707107; cos((0, 2), (0, 1)) = 1.
  similarity = fl.cycle_similarity(tf.constant([[1.0, 0.0], [0.0, 2.0]]),
                                   tf.constant([[1.0, 1.0], [0.0, 1.0]]))
  assert float(similarity) == pytest.approx((0.707107 + 1.0) / 2, abs=1e-6)


def test_the_matching_target_eq_4_with_and_without_the_remaining_attributes():
  embeddings = tf.constant([[[1.0, 2.0], [3.0, 4.0]]])  # one image, n = 2 attributes, k = 2
  wanted = tf.constant([[9.0, 8.0]])
  np.testing.assert_array_equal(fl.matching_target(embeddings, tf.constant([1]), wanted),
                                [[1, 2, 9, 8]])
  np.testing.assert_array_equal(fl.matching_target(embeddings, tf.constant([0]), wanted),
                                [[9, 8, 3, 4]])
  np.testing.assert_array_equal(fl.matching_target(embeddings, tf.constant([0]), wanted,
                                                   remaining=False), [[9, 8]])
  # ‖(1, 2, 9, 8) - (1, 2, 6, 4)‖ = 5.
  assert float(fl.matching_loss(tf.constant([[1.0, 2.0, 6.0, 4.0]]),
                                tf.constant([[1.0, 2.0, 9.0, 8.0]]))) == pytest.approx(5.0)


def test_online_sampling_picks_the_negative_sharing_the_remaining_attributes():
  # Target attribute 0 for every row; classes (attribute 0, attribute 1) per row.
  classes = tf.constant([[0, 0], [0, 1], [1, 0], [1, 1]])
  remaining = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [0.0, 1.0]], np.float32)
  embeddings = tf.constant(np.stack([np.ones((4, 2), np.float32), remaining], axis=1))
  target = tf.zeros(4, tf.int32)
  # Row 0 (class 0) may take rows 2 or 3; its attribute-1 embedding (1, 0) is nearest row 2's
  # (1, 0.1) (cosine distance 0.005 against 1). Row 1's (0, 1) is row 3's. And back.
  chosen = fl.online_negatives(classes, embeddings, target, online=True, seed=tf.constant([0, 0]))
  np.testing.assert_array_equal(chosen, [2, 3, 0, 1])
  # Without online sampling: any row of another target class, drawn from the seed.
  for seed in range(5):
    chosen = fl.online_negatives(classes, embeddings, target, online=False,
                                 seed=tf.constant([seed, 0])).numpy()
    assert chosen[0] in (2, 3) and chosen[1] in (2, 3) and chosen[2] in (0, 1)
    assert chosen[3] in (0, 1)
  # No row of another class: -1.
  same = tf.zeros((4, 2), tf.int32)
  np.testing.assert_array_equal(fl.online_negatives(same, embeddings, target, True,
                                                    tf.constant([0, 0])), [-1] * 4)


def test_adversarial_losses_eq_3():
  # Logit 0 is probability 1/2: each cross entropy is log 2.
  zero = tf.zeros((3, 1))
  assert float(fl.discriminator_adversarial_loss(zero, zero)) == pytest.approx(2 * np.log(2))
  assert float(fl.generator_adversarial_loss(zero)) == pytest.approx(np.log(2))
  # A confident right discriminator costs it little and the generator much.
  assert float(fl.discriminator_adversarial_loss(tf.fill((3, 1), 9.0), tf.fill((3, 1), -9.0))) < 1e-3
  assert float(fl.generator_adversarial_loss(tf.fill((3, 1), -9.0))) == pytest.approx(9.0, abs=1e-3)


def test_the_networks_shapes_and_an_untrained_generator_is_the_identity():
  from tf_partfash.models.flam import Flam, FlamShape
  flam = Flam(FlamShape(feature_size=12, classes=(3, 4, 2), embedding_size=5, hidden=8))
  x = tf.random.stateless_normal((7, 12), seed=[1, 2])
  assert flam.embed(x).shape == (7, 3, 5)
  real_fake, matching = flam.discriminate(x)
  assert real_fake.shape == (7, 1) and matching.shape == (7, 15)
  assert flam.dictionary(1).shape == (4, 5)
  # G is residual with its last layer at zero: untrained, it returns x itself.
  np.testing.assert_array_equal(flam.generate(x, flam.embed(x)[:, 0]), x)
  twice = flam.manipulate(x, [(0, tf.fill([7], 2)), (2, tf.zeros([7], tf.int32))])
  once = flam.generate(flam.generate(x, tf.gather(flam.dictionary(0), tf.fill([7], 2))),
                       tf.gather(flam.dictionary(2), tf.zeros([7], tf.int32)))
  np.testing.assert_allclose(twice, once, rtol=1e-6)
  narrow = Flam(FlamShape(feature_size=12, classes=(3, 4, 2), embedding_size=5, hidden=8,
                          remaining=False))
  assert narrow.discriminate(x)[1].shape == (7, 5)


def _toy_features(n=600, seed=0):
  """Features that carry two attributes (3 shapes, 4 colours) in separate directions, plus noise;
  a third of the images are unlabelled (semi-supervised), their features as informative."""
  rng = np.random.default_rng(seed)
  labels = np.stack([rng.integers(0, 3, n), rng.integers(0, 4, n)], axis=1)
  basis = rng.standard_normal((7, 16)).astype(np.float32)
  onehots = np.concatenate([np.eye(3)[labels[:, 0]], np.eye(4)[labels[:, 1]]], axis=1)
  x = (onehots @ basis + 0.1 * rng.standard_normal((n, 16))).astype(np.float32)
  shown = labels.copy()
  shown[: n // 3] = -1
  return x, labels, shown


def test_both_stages_learn_a_toy_problem_semi_supervised():
  from tf_partfash.config import FlamConfig
  from tf_partfash.models.flam import Flam, FlamShape
  from tf_partfash.training.flam_trainer import FlamTrainer
  x, truth, shown = _toy_features()
  tf.keras.utils.set_random_seed(0)
  flam = Flam(FlamShape(feature_size=16, classes=(3, 4), embedding_size=8, hidden=32))
  config = FlamConfig(flam_embedding_steps=150, flam_steps=600, flam_batch_size=64,
                      flam_learning_rate=1e-3)
  logs = []
  FlamTrainer(flam, config, seed=0).run(x, shown, lambda step, stage, l: logs.append(l))
  e = flam.embed(tf.constant(x))
  for a in range(2):  # the nearest dictionary vector recovers the class, unlabelled images too
    assert np.mean(fl.nearest_classes(e[:, a], flam.dictionary(a)).numpy() == truth[:, a]) > 0.95
  assert logs[-1]['cycle_similarity'] > 0.9 and np.isfinite(logs[-1]['g'])
  # The embedders read most manipulated features as the wanted class (measured 0.72-0.80 over
  # the last five batches; chance is 1/3-1/4).
  assert np.mean([l['manipulated_accuracy'] for l in logs[-5:]]) > 0.6
  # The labelled images of each class, counted (a class without any is not offered).
  np.testing.assert_array_equal(flam.class_counts[1].numpy(),
                                np.bincount(shown[shown[:, 1] >= 0, 1], minlength=4))
  # Colour changed to c: the nearest real feature has the query's shape and colour c.
  hits = []
  for c in range(4):
    moved = flam.manipulate(tf.constant(x[:100]), [(1, tf.fill([100], c))]).numpy()
    nearest = np.argmin(((moved[:, None] - x[None]) ** 2).sum(-1), axis=1)
    hits.append((truth[nearest, 1] == c) & (truth[nearest, 0] == truth[:100, 0]))
  # Chance is 1/12 (and an unmoved query scores 1/4 of its shape's images: 0.25). Measured 0.42.
  assert np.mean(hits) > 0.33, np.mean(hits)
