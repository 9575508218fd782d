"""How each method of the comparison turns gallery images, and a query with its attribute changes,
into the vectors that `retrieval.Searcher` compares (paper §4.6, §7 "Baselines").

Each method names its encoder (`methods.METHODS`). All three work from a `GalleryIndex`
(L2-normalised signatures and attribute probabilities), so indexes, FAISS and the evaluation code
are shared:

- `SignatureEncoder`, the proposed network and its ablations: S + 1 signatures; a change replaces
  its attribute's block by the value's generic representation (Eq. 4, §4.6).
- `ClassicEncoder`, the paper's "Classic" baseline (AMNet's "attribute-based retrieval").
- `AmnetEncoder`, AMNet: the query's fc7 is changed by the memory and manipulator (AMNet §4).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Protocol, Sequence

import numpy as np

from tf_partfash.attributes import (NUM_SPECIAL_VALUES, SPECIAL_ATTRIBUTES, SPECIAL_OFFSETS,
                                    attribute)
from tf_partfash.gallery import GalleryIndex, Prototypes
from tf_partfash.retrieval import manipulate

if TYPE_CHECKING:
  import keras

Changes = Sequence[Mapping[str, int]]


class Resources(Protocol):
  """What an encoder may take from a trained run (`trained_run.TrainedRun`), on first use."""
  model: keras.Model

  def prototypes(self) -> Prototypes:
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
  """The "Classic" rule (paper §7; AMNet §5.1 baseline 1), exactly:

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
  def from_run(cls, run: Resources, with_prototypes: bool = True) -> ClassicEncoder:
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
          raise ValueError(f'no training image has {attribute(name).name}='
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
