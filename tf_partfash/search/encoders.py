"""How each method of the comparison turns gallery images, and a query with its attribute changes,
into the vectors that `retrieval.Searcher` compares (paper §4.6, §7 "Baselines").

Each method names its encoder (`methods.METHODS`). All work from a `GalleryIndex`
(L2-normalised signatures and attribute probabilities), so indexes, FAISS and the evaluation code
are shared:

- `SignatureEncoder`, the proposed network and its ablations: S + 1 signatures; a change replaces
  its attribute's block by the value's generic representation (Eq. 4, §4.6).
- `ClassicEncoder`, the paper's "Classic" baseline: the query's fc7 replaced by training images
  with the wanted attributes (§7 "Baselines").
- `AttributeRetrievalEncoder`, AMNet's "attribute-based retrieval" baseline on the same network.
- `AmnetEncoder`, AMNet: the query's fc7 is changed by the memory and manipulator (AMNet §4).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Protocol, Sequence

import numpy as np

from tf_partfash.attributes import (ATTRIBUTE_NAMES, NUM_SPECIAL_VALUES, SPECIAL_ATTRIBUTES,
                                    SPECIAL_OFFSETS, attribute)
from tf_partfash.errors import UserError
from tf_partfash.search.gallery import GalleryIndex, Prototypes
from tf_partfash.search.retrieval import manipulate

if TYPE_CHECKING:
  import keras

  from tf_partfash.inputs.prepared import PreparedData

Changes = Sequence[Mapping[str, int]]


class Resources(Protocol):
  """What an encoder may take from a trained run (`trained_run.TrainedRun`), on first use."""
  model: keras.Model
  data: PreparedData

  def prototypes(self) -> Prototypes:
    ...

  def index(self, name: str = 'test', rows: np.ndarray | None = None) -> GalleryIndex:
    ...


class Encoder(Protocol):
  @classmethod
  def from_run(cls, run: Resources, with_prototypes: bool = True) -> Encoder:
    """The encoder of a trained run; without prototypes for searches without changes."""

  def gallery(self, index: GalleryIndex) -> np.ndarray:
    """(N, V, D) vectors of the gallery images."""

  def queries(self, index: GalleryIndex, changes: Changes) -> np.ndarray:
    """(Q, V, D) vectors of the query images of `index` with `changes[q]` applied."""

  def expressible(self, changes: Changes) -> tuple[list[dict[str, int]], np.ndarray]:
    """The part of each query's changes the method can make, and (Q,) whether any was dropped."""


def _special_only(changes: Changes, usable) -> tuple[list[dict[str, int]], np.ndarray]:
  kept, dropped = [], np.zeros(len(changes), bool)
  for q, change in enumerate(changes):
    kept.append({attribute(n).name: int(v) for n, v in change.items()
                 if attribute(n).special and usable(attribute(n).name, int(v))})
    dropped[q] = len(kept[-1]) < len(change)
  return kept, dropped


class SignatureEncoder:
  """Eq. 4 (§4.1, §4.6): the query's own signatures, a changed attribute's block replaced by its
  value's prototype. Only special attributes have blocks, and a value never seen in training has
  no prototype: such a change is left out (the search keeps the query's block)."""

  def __init__(self, prototypes: Prototypes | None):
    self.prototypes = prototypes  # None: for searches without changes

  @classmethod
  def from_run(cls, run: Resources, with_prototypes: bool = True) -> SignatureEncoder:
    return cls(run.prototypes() if with_prototypes else None)

  def gallery(self, index: GalleryIndex) -> np.ndarray:
    return index.signatures

  def queries(self, index: GalleryIndex, changes: Changes) -> np.ndarray:
    if not any(changes):
      return index.signatures
    if self.prototypes is None:
      raise ValueError('queries change attributes but no prototypes were loaded')
    return manipulate(index.signatures, changes, self.prototypes)

  def expressible(self, changes: Changes) -> tuple[list[dict[str, int]], np.ndarray]:
    return _special_only(changes, lambda n, v: self.prototypes.counts[n][v] > 0)


def special_one_hot(values: np.ndarray) -> np.ndarray:
  """(N, 5) special value indices -> (N, 71) one 1 per attribute (`SPECIAL_OFFSETS` blocks)."""
  out = np.zeros((len(values), NUM_SPECIAL_VALUES), np.float32)
  for a, offset in enumerate(SPECIAL_OFFSETS):
    out[np.arange(len(values)), offset + np.asarray(values)[:, a]] = 1.0
  return out


class ClassicEncoder:
  """The paper's "Classic" baseline (§7 "Baselines": "attributes of the query image are recognized
  with classification network. Using the training set, the representation is changed to match
  query image and the search is performed"), exactly:

  1. the network recognises the query's five special attributes (argmax of its classifiers);
  2. the wanted attributes are the recognised ones with the changed ones substituted;
  3. the candidates are the training images whose labels have the most of the changed values,
     and among those the most of the other wanted special values (a missing label has none);
  4. the query's representation becomes the L2-normalised mean of the L2-normalised fc7 of the
     `neighbours` (10) candidates nearest to the query's own fc7 (all of them when fewer);
  5. the gallery, as its images' L2-normalised fc7, is searched with it (Euclidean distance).

  A query without changes is its own fc7, so direct search is plain fc7 search. A change to a
  value no training image has is left out (the search keeps the query's recognised value).
  """
  NEIGHBOURS = 10
  _QUERY_BLOCK = 64  # queries x training images x 5 comparisons at a time

  def __init__(self, train: GalleryIndex, neighbours: int = NEIGHBOURS):
    self.features = np.asarray(train.signatures[:, 0], np.float32)  # normalised fc7
    self.labels = np.asarray(train.labels)[:, [ATTRIBUTE_NAMES.index(a)
                                                for a in SPECIAL_ATTRIBUTES]]
    self.neighbours = neighbours
    # The values each special attribute takes in training: the changes a query can make.
    self.seen = {name: set(self.labels[:, a].tolist())
                 for a, name in enumerate(SPECIAL_ATTRIBUTES)}

  @classmethod
  def from_run(cls, run: Resources, with_prototypes: bool = True) -> ClassicEncoder:
    del with_prototypes  # the training images stand in for prototypes
    return cls(run.index('train', run.data.rows('train')))

  def gallery(self, index: GalleryIndex) -> np.ndarray:
    return index.signatures[:, :1]

  def queries(self, index: GalleryIndex, changes: Changes) -> np.ndarray:
    out = np.array(index.signatures[:, :1], np.float32)
    changed = [q for q, c in enumerate(changes) if c]
    wanted = np.stack([index.predicted(n) for n in SPECIAL_ATTRIBUTES], axis=1)
    is_changed = np.zeros(wanted.shape, bool)
    for q in changed:
      for name, value in changes[q].items():
        column = SPECIAL_ATTRIBUTES.index(attribute(name).name)
        wanted[q, column], is_changed[q, column] = value, True
    for start in range(0, len(changed), self._QUERY_BLOCK):
      block = np.asarray(changed[start:start + self._QUERY_BLOCK])
      out[block, 0] = self._from_training(out[block, 0], wanted[block], is_changed[block])
    return out

  def _from_training(self, query: np.ndarray, wanted: np.ndarray,
                     is_changed: np.ndarray) -> np.ndarray:
    """Steps 3-4 for a block of queries: (B, D) own fc7 -> (B, D) representation."""
    equal = self.labels[None, :, :] == wanted[:, None, :]             # (B, N, 5)
    changed_kept = (equal & is_changed[:, None, :]).sum(axis=-1)
    others_kept = (equal & ~is_changed[:, None, :]).sum(axis=-1)
    score = changed_kept * (len(SPECIAL_ATTRIBUTES) + 1) + others_kept  # changed ones first
    candidate = score == score.max(axis=1, keepdims=True)
    distance = np.where(candidate, -(query @ self.features.T), np.inf)  # rank as |q - t|²
    k = min(self.neighbours, distance.shape[1])
    nearest = np.argpartition(distance, k - 1, axis=1)[:, :k]
    chosen = np.take_along_axis(candidate, nearest, axis=1)           # fewer than k candidates
    mean = (self.features[nearest] * chosen[..., None]).sum(axis=1)
    return mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)

  def expressible(self, changes: Changes) -> tuple[list[dict[str, int]], np.ndarray]:
    return _special_only(changes, lambda n, v: v in self.seen[n])


class AttributeRetrievalEncoder:
  """AMNet's "attribute-based retrieval" baseline (AMNet §5.1, baseline 1) on the Classic network,
  exactly:

  1. the network recognises the five special attributes of every image (argmax of its
     classifiers), gallery and query alike;
  2. the query's wanted attributes are its recognised ones with the changed ones substituted;
  3. gallery images are ranked by the number of special attributes whose recognised value differs
     from the wanted one, then, among equals, by the squared Euclidean distance between their and
     the query's L2-normalised fc7. Images with all wanted attributes come first, nearest first.

  As vectors: `[fc7, sqrt(P/2) * one_hot(attributes)]` with P = 5 > 4, the largest squared
  distance of unit vectors, so the squared distance is |Δfc7|² + P * (number of differences) and
  the ranking is the lexicographic one above, searched like any other method's (one vector per
  image: Eq. 4's plain distance, its square root, ranks alike).
  """
  PENALTY = 5.0

  @classmethod
  def from_run(cls, run: Resources, with_prototypes: bool = True) -> AttributeRetrievalEncoder:
    del run, with_prototypes  # the recognised attributes are in the index
    return cls()

  def _vectors(self, features: np.ndarray, values: np.ndarray) -> np.ndarray:
    scale = np.sqrt(self.PENALTY / 2.0)
    return np.concatenate([features[:, 0], scale * special_one_hot(values)], axis=1)[:, None]

  @staticmethod
  def recognised(index: GalleryIndex) -> np.ndarray:
    return np.stack([index.predicted(n) for n in SPECIAL_ATTRIBUTES], axis=1)

  def gallery(self, index: GalleryIndex) -> np.ndarray:
    return self._vectors(index.signatures, self.recognised(index))

  def queries(self, index: GalleryIndex, changes: Changes) -> np.ndarray:
    wanted = self.recognised(index)
    for q, change in enumerate(changes):
      for name, value in change.items():
        wanted[q, SPECIAL_ATTRIBUTES.index(attribute(name).name)] = value
    return self._vectors(index.signatures, wanted)

  def expressible(self, changes: Changes) -> tuple[list[dict[str, int]], np.ndarray]:
    return _special_only(changes, lambda n, v: True)


class AmnetEncoder:
  """AMNet §4 "Clothing Search": gallery images are their representation r̂ (normalised fc7);
  a query with changes is r' = W·(r̂, t) + b (AMNet Eq. 1, 3), normalised, and without changes
  its own r̂. Changes of special values that initialised a memory row are expressible."""

  def __init__(self, model: keras.Model):
    self.model = model
    self.counts = np.asarray(model.memory_counts)

  @classmethod
  def from_run(cls, run: Resources, with_prototypes: bool = True) -> AmnetEncoder:
    del with_prototypes  # the memory holds AMNet's attribute representations
    return cls(run.model)

  def gallery(self, index: GalleryIndex) -> np.ndarray:
    return index.signatures

  def queries(self, index: GalleryIndex, changes: Changes) -> np.ndarray:
    out = np.array(index.signatures, np.float32)
    changed = [q for q, c in enumerate(changes) if c]
    if not changed:
      return out
    indicator = np.zeros((len(changed), NUM_SPECIAL_VALUES), np.float32)
    for i, q in enumerate(changed):
      for name, value in changes[q].items():
        row = SPECIAL_OFFSETS[SPECIAL_ATTRIBUTES.index(attribute(name).name)] + value
        if not self.counts[row]:
          raise UserError(f'no training image has {attribute(name).name}='
                          f'{attribute(name).value(value)!r}: its AMNet memory row was never '
                          'initialised')
        indicator[i, row] = 1.0
    manipulated = np.asarray(self.model.manipulate(out[changed, 0], indicator))
    norms = np.linalg.norm(manipulated, axis=1, keepdims=True)
    out[changed, 0] = manipulated / np.maximum(norms, 1e-12)
    return out

  def expressible(self, changes: Changes) -> tuple[list[dict[str, int]], np.ndarray]:
    usable = lambda n, v: self.counts[SPECIAL_OFFSETS[SPECIAL_ATTRIBUTES.index(n)] + v] > 0
    return _special_only(changes, usable)
