"""Mini-batches: the paper's random ones (§6), and balanced ones for in-batch triplet mining
(§4.5), chosen by `TrainConfig.sampler`; AMNet's triplets for its stage 2.

The triplets of Eq. 3 are mined inside each mini-batch (§6, `losses.sample_triplets`), so a batch
only trains a signature if two of its images share that signature's label. Uniform random batches of
an unbalanced multi-attribute dataset often hold no such pair for a rare label, and rarely one for
the strict general rule (all general labels equal). `BalancedBatchSampler` seeds every batch with
positive pairs for each of the S + 1 = 6 signatures and fills the rest at random. Numpy only.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from tf_partfash.attributes import (ATTRIBUTES, ATTRIBUTE_NAMES, GENERAL_ATTRIBUTES,
                                    GENERAL_COLUMNS, MISSING, SIGNATURE_NAMES, SPECIAL_ATTRIBUTES)
from tf_partfash.errors import UserError

def general_groups(labels: np.ndarray) -> np.ndarray:
  """(N, 12) labels -> (N,) group ids of the strict general rule (§4.5).

  Two images share a group iff all their general labels are equal, a missing label counting as its
  own value -1: the numpy twin of `losses.general_group_ids`.
  """
  _, inverse = np.unique(np.asarray(labels)[:, list(GENERAL_COLUMNS)], axis=0, return_inverse=True)
  return inverse.reshape(-1)


def _check_labels(labels: np.ndarray) -> np.ndarray:
  labels = np.asarray(labels)
  if labels.ndim != 2 or labels.shape[1] != len(ATTRIBUTES):
    raise ValueError(f'expected labels of shape (N, {len(ATTRIBUTES)}), got {labels.shape}')
  if not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(f'expected integer labels, got dtype {labels.dtype}')
  for j, attr in enumerate(ATTRIBUTES):
    bad = (labels[:, j] < MISSING) | (labels[:, j] >= attr.num_values)
    if bad.any():
      i = int(np.argmax(bad))
      raise ValueError(f'row {i}: label {int(labels[i, j])} out of range for {attr.name!r} '
                       f'(-1..{attr.num_values - 1})')
  return labels


def _check_batching(num_images: int, batch_size: int, seed: int) -> None:
  if num_images < batch_size:
    raise UserError(f'the dataset has {num_images} images, fewer than batch_size {batch_size}')
  if seed < 0:
    raise ValueError(f'seed must be >= 0, got {seed}')


def _check_epoch(epoch: int) -> None:
  if epoch < 0:
    raise ValueError(f'epoch must be >= 0, got {epoch}')


def _pair_groups(column: np.ndarray, allow_missing: bool) -> list[np.ndarray]:
  """Image indices of each label of `column` that has >= 2 images (-1 dropped unless allowed)."""
  order = np.argsort(column, kind='stable')
  starts = np.flatnonzero(np.diff(column[order])) + 1
  groups = np.split(order, starts)
  return [g for g in groups if len(g) >= 2 and (allow_missing or column[g[0]] != MISSING)]


class BalancedBatchSampler:
  """Index batches where every signature has at least `pairs_per_signature` positive pairs.

  For each of the 6 signatures (`SIGNATURE_NAMES`: general, then the special attributes) a batch holds
  `pairs_per_signature` pairs of distinct images sharing that signature's label, disjoint within the
  signature. A pair's label is drawn uniformly over the labels with >= 2 images (so rare labels are
  seen as often as common ones); a special attribute only pairs images whose label is not -1; the
  general signature pairs images with identical general label rows, missing entries included
  (`general_groups`). The rest of the batch is filled from a random permutation of the dataset,
  without repeating an image within a batch. Pair images of different signatures may coincide.

  The default `pairs_per_signature`, max(1, batch_size // 32), takes at most 12 of every 32 images
  for the pairs, so most of a batch remains a uniform sample of the data (the label frequencies the
  classification loss of Eq. 1 sees).

  An epoch is `batches_per_epoch = ceil(N / (batch_size - 12 * pairs_per_signature))` batches,
  enough for the random fill to show every image once; it is a pure function of
  `(seed, epoch)`: training resumes mid-epoch at batch k with `epoch(e)[k:]`.

  A dataset where some signature cannot supply `pairs_per_signature` disjoint pairs (for example
  no two images with identical general labels) is an error at construction: training that
  signature would silently see no triplets, so there is no fallback.
  """

  def __init__(self, labels: np.ndarray, batch_size: int, seed: int,
               pairs_per_signature: int | None = None):
    labels = _check_labels(labels)
    if pairs_per_signature is None:
      pairs_per_signature = max(1, batch_size // 32)
    if pairs_per_signature < 1:
      raise ValueError(f'pairs_per_signature must be >= 1, got {pairs_per_signature}')
    needed = 2 * len(SIGNATURE_NAMES) * pairs_per_signature
    if batch_size <= needed:  # at least one place for the random fill that makes up an epoch
      raise UserError(f'batch_size {batch_size} cannot hold {pairs_per_signature} pair(s) for '
                      f'each of the {len(SIGNATURE_NAMES)} signatures and the random fill: it must '
                      f'be > {needed}')
    _check_batching(labels.shape[0], batch_size, seed)
    self.batch_size = batch_size
    self.pairs_per_signature = pairs_per_signature
    self.num_images = labels.shape[0]
    self._seed = seed
    columns = [general_groups(labels)] + [labels[:, ATTRIBUTE_NAMES.index(n)]
                                          for n in SPECIAL_ATTRIBUTES]
    self._groups: list[list[np.ndarray]] = []
    # Disjoint pairs each label can give, to cap how often one label is drawn in a batch.
    self._capacity: list[np.ndarray] = []
    for name, column in zip(SIGNATURE_NAMES, columns):
      groups = _pair_groups(column, allow_missing=name == 'general')
      capacity = np.array([len(g) // 2 for g in groups], np.int64)
      if capacity.sum() < pairs_per_signature:
        rule = ('no two images share all general labels (' + ', '.join(GENERAL_ATTRIBUTES)
                + '; -1 counts as a value)' if name == 'general'
                else 'too few images share a label (-1 excluded)')
        raise UserError(f'signature {name!r}: {rule}: the dataset has {int(capacity.sum())} '
                        f'disjoint positive pair(s), pairs_per_signature is '
                        f'{pairs_per_signature}; the triplet loss of this signature needs pairs')
      self._groups.append(groups)
      self._capacity.append(capacity)

  @property
  def batches_per_epoch(self) -> int:
    # Every batch fills at least `batch_size - 2 * 6 * pairs` places from the epoch's
    # permutation, so this many batches show every image at least once per epoch.
    fill = self.batch_size - 2 * len(SIGNATURE_NAMES) * self.pairs_per_signature
    return math.ceil(self.num_images / fill)

  def _pair_images(self, rng: np.random.Generator) -> list[int]:
    """The images of this batch's positive pairs, signature after signature."""
    images: list[int] = []
    for groups, capacity in zip(self._groups, self._capacity):
      counts = np.zeros_like(capacity)
      for _ in range(self.pairs_per_signature):
        g = rng.integers(len(groups))
        if counts[g] == capacity[g]:
          # Redraw among the labels with pairs left: overall still uniform over those labels,
          # and the common first draw skips scanning all labels.
          open_groups = np.flatnonzero(counts < capacity)
          g = open_groups[rng.integers(len(open_groups))]
        counts[g] += 1
      for g in np.flatnonzero(counts):
        # 2c distinct members of one label make c disjoint pairs.
        images.extend(rng.choice(groups[g], 2 * int(counts[g]), replace=False).tolist())
    return images

  def epoch(self, epoch: int) -> np.ndarray:
    """The (batches_per_epoch, batch_size) int64 image indices of epoch `epoch`, from (seed, e)."""
    _check_epoch(epoch)
    rng = np.random.default_rng([self._seed, epoch])
    order, position = rng.permutation(self.num_images), 0
    batches = np.empty((self.batches_per_epoch, self.batch_size), np.int64)
    for b in range(self.batches_per_epoch):
      chosen = dict.fromkeys(self._pair_images(rng))  # an ordered set
      while len(chosen) < self.batch_size:
        if position == self.num_images:
          order, position = rng.permutation(self.num_images), 0
        chosen.setdefault(int(order[position]))
        position += 1
      # Shuffled so that the pairs do not always sit at the front of the batch.
      batches[b] = rng.permutation(np.fromiter(chosen, np.int64, self.batch_size))
    return batches


class RandomBatchSampler:
  """The paper's mini-batches (§6): a random permutation of the training images cut into batches.

  An epoch is one pass: `ceil(N / batch_size)` batches, the last one completed with the first
  images of the permutation (distinct from its own, as N >= batch_size). Triplets are then chosen
  at random among a batch's images (`losses.sample_triplets`); a signature whose label no two
  images of a batch share trains no triplet in that batch. A pure function of `(seed, epoch)`.
  """

  def __init__(self, labels: np.ndarray, batch_size: int, seed: int):
    labels = _check_labels(labels)
    _check_batching(labels.shape[0], batch_size, seed)
    self.batch_size, self.num_images, self._seed = batch_size, labels.shape[0], seed

  @property
  def batches_per_epoch(self) -> int:
    return math.ceil(self.num_images / self.batch_size)

  def epoch(self, epoch: int) -> np.ndarray:
    """The (batches_per_epoch, batch_size) int64 image indices of epoch `epoch`, from (seed, e)."""
    _check_epoch(epoch)
    order = np.random.default_rng([self._seed, epoch]).permutation(self.num_images)
    padded = np.resize(order, self.batches_per_epoch * self.batch_size)  # wraps to the start
    return padded.reshape(self.batches_per_epoch, self.batch_size).astype(np.int64)


class ManipulationTripletSampler:
  """Batches of AMNet's training triplets ⟨ref, pos, neg⟩ (AMNet §4 "Training Phase").

  The manipulation indicator of a triplet changes "some" special attributes of the reference
  (AMNet §4), here one or two (`max_changes`), as the paper's queries do: `pos` has exactly the
  reference's special labels with those changed (each change labelled in both; -1 elsewhere must
  match -1), and `neg` is a random image whose special labels differ from that target. The
  number of changes is drawn first, uniformly among those the reference allows, then, as for the
  paper's queries (`queries.make_paper_queries`), the attributes uniformly among those the
  reference can change so, then the target uniformly among the label combinations present. A
  batch is `batch_size / 3` triplets laid out ref, pos, neg, ref, pos, neg, ... so any split of
  the batch into whole triplets (one per replica) keeps them together; the indicator follows
  from the labels (`objectives.manipulation_of`).

  An epoch is as many images as the dataset (`ceil(N / batch_size)` batches, so a third of them
  references), the same compute per epoch as the other methods; references are drawn without
  repetition among the images that have a one-change partner. It is a pure function of
  `(seed, epoch)`, as for `BalancedBatchSampler`.
  """
  group_size = 3

  def __init__(self, labels: np.ndarray, batch_size: int, seed: int, max_changes: int = 2):
    labels = _check_labels(labels)
    if batch_size % self.group_size or batch_size < self.group_size:
      raise UserError(f'batch_size {batch_size}: AMNet trains on triplets, so the batch size must '
                      'be a multiple of 3')
    self.batch_size, self._seed = batch_size, seed
    special = labels[:, [ATTRIBUTE_NAMES.index(n) for n in SPECIAL_ATTRIBUTES]]
    keys, self._key_of = np.unique(special, axis=0, return_inverse=True)
    self._key_of = self._key_of.reshape(-1)
    self._members = np.split(np.argsort(self._key_of, kind='stable'),
                             np.cumsum(np.bincount(self._key_of))[:-1])
    # partners[u][n][attrs]: keys equal to key u except in the n special attributes `attrs`
    # (each labelled in both and different).
    self._partners: list[dict[int, dict[tuple[int, ...], list[int]]]] = [
        {} for _ in range(len(keys))]
    for n in range(1, max_changes + 1):
      for attrs in itertools.combinations(range(special.shape[1]), n):
        changed = list(attrs)
        rest = np.delete(keys, changed, axis=1)
        _, bucket = np.unique(rest, axis=0, return_inverse=True)
        for members in np.split(np.argsort(bucket.reshape(-1), kind='stable'),
                                np.cumsum(np.bincount(bucket.reshape(-1)))[:-1]):
          members = members[(keys[members][:, changed] != MISSING).all(axis=1)]
          values = keys[members][:, changed]
          differ = (values[:, None, :] != values[None, :, :]).all(axis=2)
          for u, row in zip(members, differ):
            if row.any():
              self._partners[u].setdefault(n, {})[attrs] = members[row].tolist()
    self._references = np.flatnonzero([bool(self._partners[u]) for u in self._key_of])
    if not len(self._references):
      raise UserError(f'no two images differ in 1 to {max_changes} special attributes only: AMNet '
                      'has no training triplets on this data')
    if len(keys) < 2:
      raise UserError('every image has the same special labels: no negative for a triplet')
    self.num_images = len(self._key_of)

  @property
  def batches_per_epoch(self) -> int:
    return math.ceil(self.num_images / self.batch_size)

  def epoch(self, epoch: int) -> np.ndarray:
    """The (batches_per_epoch, batch_size) int64 image indices of epoch `epoch`, from (seed, e)."""
    _check_epoch(epoch)
    rng = np.random.default_rng([self._seed, epoch, self.group_size])
    count = self.batches_per_epoch * (self.batch_size // self.group_size)
    references = np.resize(rng.permutation(self._references), count)  # wraps if too few
    triplets = np.empty((count, self.group_size), np.int64)
    for i, ref in enumerate(references):
      by_count = self._partners[self._key_of[ref]]
      # (No draw where one count is possible: one change only samples as it always has.)
      count = list(by_count)[rng.integers(len(by_count)) if len(by_count) > 1 else 0]
      options = by_count[count]
      changed = list(options)[rng.integers(len(options))]
      target = options[changed][rng.integers(len(options[changed]))]
      positives = self._members[target]
      negative = int(rng.integers(self.num_images))
      while self._key_of[negative] == target:
        negative = int(rng.integers(self.num_images))
      triplets[i] = (ref, positives[rng.integers(len(positives))], negative)
    return triplets.reshape(self.batches_per_epoch, self.batch_size)
