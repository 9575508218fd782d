"""The paper's baselines (§7): Classic and AMNet, by hand-computed values, and trained end to end."""
from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from tf_partfash.attributes import (ATTRIBUTE_NAMES, NUM_SPECIAL_VALUES, SPECIAL_ATTRIBUTES,
                                    SPECIAL_OFFSETS)
from tf_partfash.config import ModelConfig, TrainConfig
from tf_partfash.inputs.sampling import ManipulationTripletSampler
from tf_partfash.methods import method_configs
from tf_partfash.models.amnet import retrieve_prototype
from tf_partfash.search.encoders import AmnetEncoder, AttributeRetrievalEncoder, ClassicEncoder
from tf_partfash.search.gallery import GalleryIndex
from tf_partfash.training.objectives import amnet_loss, manipulation_of

import tiny

COLOR = ATTRIBUTE_NAMES.index('color')


def _labels(**values: int) -> list[int]:
  return [values.get(name, -1) for name in ATTRIBUTE_NAMES]


def test_memory_addressing_is_amnet_eq1():
  memory = tf.constant([[1.0, 0.0], [5.0, 5.0], [0.0, 3.0]])
  # h = rows 0 and 2 -> h' = (1/2, 0, 1/2) -> t = (0.5, 1.5); no manipulation -> t = 0.
  t = retrieve_prototype(tf.constant([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]), memory)
  np.testing.assert_allclose(t.numpy(), [[0.5, 1.5], [0.0, 0.0]])


def test_indicator_and_manipulated_labels_follow_the_positive():
  reference = tf.constant([_labels(category=4, collar=2, color=0, sleevelen=6)])
  positive = tf.constant([_labels(category=3, collar=2, color=5, sleevelen=6)])
  indicator, wanted = manipulation_of(reference, positive)
  expected = np.zeros((1, NUM_SPECIAL_VALUES))
  expected[0, SPECIAL_OFFSETS[SPECIAL_ATTRIBUTES.index('color')] + 5] = 1.0
  np.testing.assert_array_equal(indicator.numpy(), expected)
  # Special labels from the positive, general ones (category 4) kept from the reference.
  assert wanted.numpy().tolist() == [_labels(category=4, collar=2, color=5, sleevelen=6)]


class _StubAmnet:
  """manipulate -> a fixed r' = (0, 3); manipulated classifiers -> zero logits."""

  def manipulate(self, normalised, indicator):
    return tf.tile(tf.constant([[0.0, 3.0]]), [tf.shape(normalised)[0], 1])

  def classify_manipulated(self, manipulated, training=False):
    from tf_partfash.attributes import attribute
    return {n: tf.zeros((tf.shape(manipulated)[0], attribute(n).num_values))
            for n in ATTRIBUTE_NAMES}


def test_amnet_loss_is_eq6_by_hand():
  # One triplet: ref color 0 -> pos color 1; neg color 2. r' normalises to (0, 1) = pos, and
  # neg (0.28, 0.96) is 0.282843 from it: L_t = 0.5 + 0 - 0.282843 = 0.217157. Zero logits:
  # L_a = log 19 (only color is labelled). L = 0.2 L_a + 0.8 L_t with triplet_weight 0.8.
  batch = {'labels': tf.constant([_labels(color=0), _labels(color=1), _labels(color=2)])}
  outputs = {'signatures': tf.constant([[[1.0, 0.0]], [[0.0, 1.0]], [[0.28, 0.96]]])}
  config = TrainConfig(margin=0.5, triplet_weight=0.8, distance='euclidean')
  total, logs = amnet_loss(_StubAmnet(), outputs, batch, 2, config, tf.constant([0, 0]))
  assert float(logs['loss/classification']) == pytest.approx(math.log(19), abs=1e-5)
  assert float(logs['loss/triplet']) == pytest.approx(0.217157, abs=1e-5)
  assert float(total) == pytest.approx(0.2 * math.log(19) + 0.8 * 0.217157, abs=1e-5)


def test_triplet_sampler_pairs_one_change_and_a_dissimilar_negative():
  labels = np.array([_labels(color=0, collar=1), _labels(color=1, collar=1),   # differ in color
                     _labels(color=1, collar=2), _labels(color=7, collar=3),   # 2 ~ 1 by collar
                     _labels(color=5), _labels(color=-1, collar=1)])           # 4, 5: no partner
  sampler = ManipulationTripletSampler(labels, batch_size=6, seed=0, max_changes=1)
  special = labels[:, [ATTRIBUTE_NAMES.index(n) for n in SPECIAL_ATTRIBUTES]]
  batches = sampler.epoch(0)
  # An epoch is as many images as the data: one batch of two triplets.
  assert batches.shape == (sampler.batches_per_epoch, 6) and sampler.batches_per_epoch == 1
  triplets = np.concatenate([sampler.epoch(e) for e in range(8)]).reshape(-1, 3)
  assert len(set(batches.reshape(-1, 3)[:, 0])) == 2  # no reference twice in an epoch
  assert set(triplets[:, 0]) == {0, 1, 2}  # 3 differs from all in two attributes
  for ref, pos, neg in triplets:
    differs = special[ref] != special[pos]
    assert differs.sum() == 1 and (special[[ref, pos]][:, differs] >= 0).all()
    assert (special[neg] != special[pos]).any()
  np.testing.assert_array_equal(sampler.epoch(0), batches)
  with pytest.raises(ValueError, match='multiple of 3'):
    ManipulationTripletSampler(labels, batch_size=4, seed=0)


def test_triplet_sampler_changes_one_or_two_attributes():
  # 0 and 1 differ in color, 0 and 2 and 1 and 2 in color and collar, 1 and 3 in collar and
  # pattern; 3 differs from 0 and 2 in all three. 4's color is missing: only 4 ~ 5 by pattern.
  labels = np.array([_labels(color=0, collar=1, pattern=0), _labels(color=1, collar=1, pattern=0),
                     _labels(color=2, collar=2, pattern=0), _labels(color=1, collar=3, pattern=1),
                     _labels(color=-1, collar=4, pattern=0), _labels(color=-1, collar=4,
                                                                     pattern=1)])
  sampler = ManipulationTripletSampler(labels, batch_size=6, seed=0)
  special = labels[:, [ATTRIBUTE_NAMES.index(n) for n in SPECIAL_ATTRIBUTES]]
  triplets = np.concatenate([sampler.epoch(e) for e in range(40)]).reshape(-1, 3)
  pairs = {(int(r), int(p)) for r, p, _ in triplets}
  # Every allowed pair, one change or two, and no other.
  assert pairs == {(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1), (1, 3), (3, 1), (4, 5),
                   (5, 4)}
  for ref, pos, neg in triplets:
    differs = special[ref] != special[pos]
    assert differs.sum() in (1, 2) and (special[[ref, pos]][:, differs] >= 0).all()
    assert (special[neg] != special[pos]).any()
  # With both counts possible (reference 0: 1 by one change, 2 by two), each is drawn.
  from_zero = [int(p) for r, p, _ in triplets if r == 0]
  assert from_zero.count(1) > 0.3 * len(from_zero) and from_zero.count(2) > 0.3 * len(from_zero)


def _index(features, predicted: dict[str, list[int]] = {},
           labels: dict[str, list[int]] = {}) -> GalleryIndex:
  """An index whose recognised special attributes are `predicted` (one-hot probabilities) and
  whose labels are `labels` (the others missing)."""
  from tf_partfash.attributes import attribute
  n = len(features)
  probabilities = {}
  for name in ATTRIBUTE_NAMES:
    p = np.zeros((n, attribute(name).num_values), np.float32)
    p[np.arange(n), predicted.get(name, [0] * n)] = 1.0
    probabilities[name] = p
  table = np.full((n, 12), -1)
  for name, values in labels.items():
    table[:, ATTRIBUTE_NAMES.index(name)] = values
  return GalleryIndex(np.asarray(features, np.float32)[:, None], probabilities, table,
                      np.array([''] * n), np.arange(n), '')


def test_classic_takes_the_query_from_training_images_with_the_wanted_attributes():
  # Training: t0 [1, 0] navy (color 5) collar 0; t1 [0, 1] navy collar 0; t2 [0.6, 0.8] navy
  # collar 3; t3 [-1, 0] red (12) collar 0; their other special labels are missing.
  train = _index([[1, 0], [0, 1], [0.6, 0.8], [-1, 0]],
                 labels={'color': [5, 5, 5, 12], 'collar': [0, 0, 3, 0]})
  # The query: fc7 [1, 0], recognised red, collar 0 (pattern, fastening, sleevelen 0: no training
  # label has them).
  query = _index([[1, 0]], {'color': [12], 'collar': [0]})
  encoder = ClassicEncoder(train)
  # "but navy": t0, t1, t2 have the change; t0 and t1 also keep collar 0 (t2 does not): the mean
  # of [1, 0] and [0, 1], normalised.
  navy = encoder.queries(query, [{'color': 5}])
  np.testing.assert_allclose(navy, [[[np.sqrt(0.5), np.sqrt(0.5)]]], atol=1e-6)
  # The nearest one of them to the query's own fc7: t0.
  np.testing.assert_allclose(ClassicEncoder(train, neighbours=1).queries(query, [{'color': 5}]),
                             [[[1.0, 0.0]]], atol=1e-6)
  # "but navy with collar 3": t2 alone has both changes.
  np.testing.assert_allclose(encoder.queries(query, [{'color': 5, 'collar': 3}]),
                             [[[0.6, 0.8]]], atol=1e-6)
  # Without changes the query is its own fc7; a value no training image has is left out.
  np.testing.assert_allclose(encoder.queries(query, [{}]), [[[1.0, 0.0]]])
  kept, dropped = encoder.expressible([{'color': 7, 'collar': 3}])
  assert kept == [{'collar': 3}] and dropped.tolist() == [True]
  assert encoder.gallery(train).shape == (4, 1, 2)


def test_attribute_retrieval_ranks_by_recognised_attributes_then_fc7():
  from tf_partfash.search.retrieval import Searcher
  # Gallery: g0 is the query's twin but red (color 12); g1 far in fc7 but navy (5); g2 navy and
  # near; g3 navy with another collar. Query (color 12) asks for navy.
  gallery = _index([[1, 0], [0, 1], [0.8, 0.6], [1, 0]],
                   {'color': [12, 5, 5, 5], 'collar': [0, 0, 0, 3]})
  query = _index([[1, 0]], {'color': [12]})
  encoder = AttributeRetrievalEncoder()
  searcher = Searcher(encoder.gallery(gallery), distance='squared')
  found, distance = searcher.search(encoder.queries(query, [{'color': 5}]), 4)
  # All wanted attributes: g2 (|Δfc7|² = 0.4), g1 (2.0); one difference: g0 (0 + 5), g3 (0 + 5),
  # tied, lower index first.
  assert found.tolist() == [[2, 1, 0, 3]]
  np.testing.assert_allclose(distance, [[0.4, 2.0, 5.0, 5.0]], atol=1e-5)
  # One vector per image: Eq. 4's plain distance is the square root, the same ranking.
  euclidean = Searcher(encoder.gallery(gallery)).search(encoder.queries(query, [{'color': 5}]), 4)
  assert euclidean[0].tolist() == [[2, 1, 0, 3]]
  np.testing.assert_allclose(euclidean[1], np.sqrt([[0.4, 2.0, 5.0, 5.0]]), atol=1e-5)
  # Direct: the recognised attributes as they are; g0 first.
  assert searcher.search(encoder.queries(query, [{}]), 1)[0].tolist() == [[0]]
  assert encoder.expressible([{'category': 1, 'color': 5}])[0] == [{'color': 5}]


def test_amnet_encoder_manipulates_only_changed_queries():
  class Model:
    memory_counts = np.ones(NUM_SPECIAL_VALUES)

    def manipulate(self, normalised, indicator):
      self.indicator = np.asarray(indicator)
      return np.asarray(normalised) * 0 + [3.0, 4.0]

  model = Model()
  encoder = AmnetEncoder(model)
  out = encoder.queries(_index([[1, 0], [0, 1]], {}), [{}, {'pattern': 2}])
  np.testing.assert_allclose(out[:, 0], [[1, 0], [0.6, 0.8]])  # r' normalised; query 0 as is
  assert np.flatnonzero(model.indicator[0]).tolist() == [SPECIAL_OFFSETS[3] + 2]


def test_a_flag_contradicting_the_method_is_an_error():
  model, train = method_configs('no_parts_no_ranking', ModelConfig(), TrainConfig())
  assert not model.use_parts and train.triplet_weight == 0
  with pytest.raises(ValueError, match='implies triplet_weight=0.0'):
    method_configs('classic', ModelConfig(), TrainConfig(), {'triplet_weight': 1.0})


@pytest.mark.parametrize('method', ['classic', 'attribute_retrieval', 'amnet'])
def test_baseline_trains_and_is_scored(method, tiny_method_run,
                                      assert_checkpoint_restores_every_weight):
  from tf_partfash.evaluation import queries
  from tf_partfash.evaluation.accuracy import report_test_accuracy
  from tf_partfash.evaluation.protocols.paper import evaluate_paper
  from tf_partfash.search.trained_run import TrainedRun
  from tf_partfash.training.run import train_run
  # Classic's stage 2 is its stage 1 again: one stage is enough here.
  run, workdir, data = (tiny_method_run(method, triplet_weight=0.8, margin=0.5)
                        if method == 'amnet' else
                        tiny_method_run(method, stage2_epochs=0))
  table = report_test_accuracy(workdir, run, *train_run(run, workdir, data=data))
  assert 'extract_parts' not in table and 'color' in table  # no Extract Parts? head
  assert_checkpoint_restores_every_weight(workdir, data)
  opened = TrainedRun.open(workdir, data=data)
  trained = opened.model
  if method == 'amnet':
    # Memory rows count the training images of each value (AMNet §3.4 initialisation).
    labels = data.examples.labels[data.rows('train')]
    column = labels[:, COLOR]
    expected = np.bincount(column[column >= 0], minlength=19)
    offset = SPECIAL_OFFSETS[SPECIAL_ATTRIBUTES.index('color')]
    np.testing.assert_array_equal(np.asarray(trained.memory_counts)[offset:offset + 19], expected)
  query_sets, _ = queries.ensure_paper_queries(data.split_file, data.table, data.split)
  result = evaluate_paper(opened, query_sets)
  assert result.method == method
  assert {len(s) for s in result.scores.values()} == {len(q) for q in query_sets.values()}
  assert not any(s.unexpressed.any() for s in result.scores.values())


def test_shapes_parameter_counts_and_weights_round_trip(tmp_path):
  from tf_partfash.models.amnet import build_amnet
  from tf_partfash.models.classic import build_classic
  from tf_partfash.models.partnet import dummy_inputs
  config = tiny.MODEL
  classic, amnet = build_classic(config), build_amnet(config)
  backbone = classic.backbone.count_params()
  # fc6: 3x3x256 pool5 -> 16 without bias + BatchNorm (4 x 16); fc7: 16 -> 8 + 4 x 8;
  # 12 classifiers: 9 x 151 values.
  assert classic.count_params() == backbone + 2304 * 16 + 64 + 16 * 8 + 32 + 9 * 151
  # AMNet adds the memory (71 x 8) and its counts (71), the manipulator (16 -> 8 + bias) and
  # the classifiers of r' (9 x 151).
  assert amnet.count_params() == classic.count_params() + 71 * 8 + 71 + 16 * 8 + 8 + 9 * 151
  outputs = amnet(dummy_inputs(config, 2))
  assert outputs['signatures'].shape == (2, 1, 8) and outputs['logits']['color'].shape == (2, 19)
  amnet.initialise_memory(np.ones((NUM_SPECIAL_VALUES, 8)) * 3, np.full(NUM_SPECIAL_VALUES, 3))
  amnet.save_weights(str(tmp_path / 'amnet.weights.h5'))
  again = build_amnet(config)
  again.load_weights(str(tmp_path / 'amnet.weights.h5'))
  np.testing.assert_allclose(np.asarray(again.memory), 1.0)
  assert again.memory_initialised


def test_only_addressed_memory_rows_move():
  # AMNet §3.4 (Eq. 2): the gradient reaches the rows the indicator addresses, and weight decay
  # is kept off the memory, so under AdamW with decay every other row stays exactly as it was.
  from tf_partfash.models.amnet import build_amnet
  from tf_partfash.training.trainer import make_optimizer
  model = build_amnet(tiny.MODEL)
  model.initialise_memory(np.ones((NUM_SPECIAL_VALUES, 8)), np.ones(NUM_SPECIAL_VALUES))
  optimizer = make_optimizer(TrainConfig(optimizer='adamw', weight_decay=0.1,
                                         stage1_learning_rate=0.1), 10, 0)
  optimizer.exclude_from_weight_decay(var_list=model.no_weight_decay)
  variables = [model.memory] + model.manipulator.trainable_variables
  optimizer.build(variables)
  indicator = np.zeros((1, NUM_SPECIAL_VALUES), np.float32)
  indicator[0, 3] = 1.0
  for _ in range(3):
    with tf.GradientTape() as tape:
      loss = tf.reduce_sum(model.manipulate(tf.ones((1, 8)), indicator) ** 2)
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
  memory = np.asarray(model.memory)
  np.testing.assert_array_equal(np.delete(memory, 3, axis=0), 1.0)
  assert not np.allclose(memory[3], 1.0)
