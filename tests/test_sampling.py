"""Tests of the batch samplers: the paper's random batches (an epoch one pass), and balanced ones
(every batch carries positive pairs for every signature)."""
from __future__ import annotations

import collections

import numpy as np
import pytest

from tf_partfash.attributes import ATTRIBUTE_NAMES, GENERAL_ATTRIBUTES, SPECIAL_ATTRIBUTES
from tf_partfash.inputs.sampling import (BalancedBatchSampler, RandomBatchSampler,
                                         SIGNATURE_NAMES as SIGNATURES, general_groups)
from tf_partfash.training import losses

COLUMN = {n: j for j, n in enumerate(ATTRIBUTE_NAMES)}
GENERAL = [COLUMN[n] for n in GENERAL_ATTRIBUTES]
N = 48


def skewed_labels() -> np.ndarray:
  """48 images whose pairs are rare: a uniform batch of 16 would usually miss them.

  general: every row unique except images 46 and 47 (the only general pair);
  collar: label 0 on images 0-39, label 5 on images 40 and 41 only, the rest missing;
  color: i % 19 (2 or 3 images per label); fastening: 3 everywhere but a singleton 7 on image 0;
  pattern: label 2 on images 10, 20, 30 only, the rest missing; sleevelen: i % 2.
  """
  labels = np.full((N, len(ATTRIBUTE_NAMES)), -1, np.int64)
  i = np.arange(N)
  # (category, gender, fit) = (i % 16, (i // 16) % 2, i // 32) is unique for i < 48.
  labels[:, COLUMN['category']] = i % 16
  labels[:, COLUMN['gender']] = (i // 16) % 2
  labels[:, COLUMN['fit']] = i // 32
  labels[47, GENERAL] = labels[46, GENERAL]
  labels[:40, COLUMN['collar']] = 0
  labels[40:42, COLUMN['collar']] = 5
  labels[:, COLUMN['color']] = i % 19
  labels[:, COLUMN['fastening']] = 3
  labels[0, COLUMN['fastening']] = 7
  labels[[10, 20, 30], COLUMN['pattern']] = 2
  labels[:, COLUMN['sleevelen']] = i % 2
  return labels


def disjoint_pairs(keys: list) -> int:
  """Most disjoint pairs of equal keys among `keys` (None = cannot pair): sum of count // 2."""
  counts = collections.Counter(k for k in keys if k is not None)
  return sum(c // 2 for c in counts.values())


def batch_pairs(labels: np.ndarray, batch: np.ndarray) -> dict[str, int]:
  """Per signature, the disjoint positive pairs in `batch`, counted from the labels directly."""
  out = {'general': disjoint_pairs([tuple(labels[i, GENERAL]) for i in batch])}
  for name in SPECIAL_ATTRIBUTES:
    values = labels[batch, COLUMN[name]]
    out[name] = disjoint_pairs([int(v) if v != -1 else None for v in values])
  return out


def test_every_batch_has_the_pairs_of_every_signature():
  labels = skewed_labels()
  sampler = BalancedBatchSampler(labels, batch_size=16, seed=5)
  assert sampler.pairs_per_signature == 1  # max(1, 16 // 32)
  assert sampler.batches_per_epoch == 12  # ceil(48 / (16 - 2 * 6 * 1)): 4 random places a batch
  rare_collar = 0
  for e in range(10):
    batches = sampler.epoch(e)
    assert batches.shape == (12, 16) and batches.dtype == np.int64
    assert len(np.unique(batches)) == N  # the epoch shows every image
    for batch in batches:
      assert len(set(batch.tolist())) == 16  # no image twice in a batch
      assert batch.min() >= 0 and batch.max() < N
      pairs = batch_pairs(labels, batch)
      assert all(pairs[s] >= 1 for s in SIGNATURES), pairs
      # The only general pair and the only pattern images must be there every time.
      assert {46, 47} <= set(batch.tolist())
      rare_collar += {40, 41} <= set(batch.tolist())
  # Collar labels are drawn uniformly over {0, 5}: the rare pair is in about half of the 120
  # batches (a uniform batch of 16 holds both with probability 16/48 * 15/47 = 0.106).
  assert 40 <= rare_collar <= 85, rare_collar


def test_several_pairs_per_signature():
  labels = skewed_labels()
  # A second general pair (images 44, 45) and a second pattern pair make 2 pairs possible.
  labels[45, GENERAL] = labels[44, GENERAL]
  labels[[11, 21], COLUMN['pattern']] = 4
  sampler = BalancedBatchSampler(labels, batch_size=28, seed=0, pairs_per_signature=2)
  for e in range(5):
    for batch in sampler.epoch(e):
      pairs = batch_pairs(labels, batch)
      assert all(pairs[s] >= 2 for s in SIGNATURES), pairs


def test_epochs_are_deterministic_and_differ():
  labels = skewed_labels()
  a = BalancedBatchSampler(labels, batch_size=16, seed=3)
  b = BalancedBatchSampler(labels, batch_size=16, seed=3)
  np.testing.assert_array_equal(a.epoch(4), b.epoch(4))
  # Resuming mid-epoch: the remaining batches are the tail of the same array.
  np.testing.assert_array_equal(a.epoch(4)[1:], b.epoch(4)[1:])
  assert not np.array_equal(a.epoch(0), a.epoch(1))
  assert not np.array_equal(a.epoch(0), BalancedBatchSampler(labels, 16, seed=4).epoch(0))


def test_no_general_pair_is_an_error():
  labels = skewed_labels()
  labels[47, COLUMN['fit']] = 2  # now every general row is unique
  with pytest.raises(ValueError, match="signature 'general': no two images share all general"):
    BalancedBatchSampler(labels, batch_size=16, seed=0)


def test_missing_labels_never_pair():
  labels = skewed_labels()
  # Pattern: only -1 left once images 10, 20, 30 lose their label; -1 is not a label to pair on.
  labels[[10, 20, 30], COLUMN['pattern']] = -1
  with pytest.raises(ValueError, match="signature 'pattern': too few images share a label"):
    BalancedBatchSampler(labels, batch_size=16, seed=0)


def test_bad_arguments():
  labels = skewed_labels()
  with pytest.raises(ValueError, match='must be > 12'):
    BalancedBatchSampler(labels, batch_size=12, seed=0)
  with pytest.raises(ValueError, match="'general'.*1 disjoint positive pair"):
    BalancedBatchSampler(labels, batch_size=28, seed=0, pairs_per_signature=2)
  with pytest.raises(ValueError, match='48 images, fewer than batch_size 64'):
    BalancedBatchSampler(labels, batch_size=64, seed=0)
  bad = labels.copy()
  bad[7, COLUMN['collar']] = 17  # collar has 17 values: 0..16
  with pytest.raises(ValueError, match="row 7: label 17 out of range for 'collar'"):
    BalancedBatchSampler(bad, batch_size=16, seed=0)


def test_general_groups_match_the_loss_grouping():
  # Rows equal including missing entries share a group, exactly as `losses.general_group_ids`.
  labels = np.full((6, len(ATTRIBUTE_NAMES)), -1, np.int64)
  labels[[0, 2], COLUMN['category']] = 1
  labels[4, COLUMN['category']] = 1
  labels[4, COLUMN['sport']] = 0
  labels[1, COLUMN['gender']] = 0
  labels[:, COLUMN['collar']] = np.arange(6)  # special labels do not matter
  groups = general_groups(labels)
  # Groups: {0, 2} (category 1), {3, 5} (all missing), {1}, {4}.
  assert groups[0] == groups[2] and groups[3] == groups[5]
  assert len(set(groups.tolist())) == 4
  ids = losses.general_group_ids(labels[:, GENERAL]).numpy()
  np.testing.assert_array_equal(ids, [0, 1, 0, 3, 4, 3])


def test_an_epoch_of_either_sampler_has_the_batch_count_its_definition_gives():
  labels = skewed_labels()  # N = 48
  # Random: one pass, ceil(48 / 20) = 3 batches; 60 places, so the first 12 of the permutation
  # come again to complete the last batch.
  random = RandomBatchSampler(labels, batch_size=20, seed=1)
  batches = random.epoch(0)
  assert random.batches_per_epoch == 3 and batches.shape == (3, 20)
  assert sorted(batches.reshape(-1)[:48]) == list(range(48))  # every image once ...
  np.testing.assert_array_equal(batches.reshape(-1)[48:], batches.reshape(-1)[:12])  # ... then wraps
  assert all(len(set(b)) == 20 for b in batches)  # no image twice in a batch
  np.testing.assert_array_equal(batches, RandomBatchSampler(labels, 20, seed=1).epoch(0))
  assert not np.array_equal(batches, random.epoch(1))
  # Balanced at 28 with 2 pairs per signature on 100 images (the 48 repeated, so every signature
  # has pairs): 28 - 2 * 6 * 2 = 4 places of random fill per batch, so ceil(100 / 4) = 25
  # batches show every image in the fill (7 passes' worth of places).
  many = np.resize(labels, (100, labels.shape[1]))
  balanced = BalancedBatchSampler(many, batch_size=28, seed=0, pairs_per_signature=2)
  assert balanced.batches_per_epoch == 25 and balanced.epoch(0).shape == (25, 28)
  # The default at 64 (2 pairs, 40 of fill): ceil(100 / 40) = 3 batches, about 1.9 passes,
  # against ceil(100 / 64) = 2 random ones.
  assert BalancedBatchSampler(many, batch_size=64, seed=0).batches_per_epoch == 3
  assert RandomBatchSampler(many, batch_size=64, seed=0).batches_per_epoch == 2


def test_the_sampler_setting_picks_the_batches_of_each_stage():
  from tf_partfash.config import TrainConfig
  from tf_partfash.inputs.sampling import ManipulationTripletSampler
  from tf_partfash.methods import method
  labels = skewed_labels()
  for name, kind in (('random', RandomBatchSampler), ('balanced', BalancedBatchSampler)):
    config = TrainConfig(sampler=name, batch_size=30)
    assert type(method('partnet').sampler(2, labels, config)) is kind
    assert type(method('amnet').sampler(1, labels, config)) is kind
    # AMNet's stage 2 trains on its own triplets whatever the setting.
    assert type(method('amnet').sampler(2, labels, config)) is ManipulationTripletSampler
