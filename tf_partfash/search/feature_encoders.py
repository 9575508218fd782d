"""The query encoders of the methods trained on another run's frozen features (paper 003):
FLAM and its two baselines. Both read the base run's index (`TrainedRun.base`), whose signatures
concatenated are each image's feature x (`trained_run.feature_matrix`).

- `FlamEncoder`, FLAM §3.3: the gallery keeps x, so a search without changes is the base run's
  own; a query's x̃ = G(x, d_{a_i}) for the wanted class i of each changed attribute a, applied
  one after the other.
- `ConcatEncoder`, Cls-Concat and Emb-Concat (§4.2): an image is its per-attribute features
  (`models.feature_baselines`); a change replaces its attribute's block by the wanted class's mean
  feature over the training images (the rule of the paper's Eq. 4, as FLAM states none).

A change of an attribute the model was not trained on, or of a class no labelled training image
had (its dictionary vector or mean was never taught), is left out, as `encoders` does.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from tf_partfash.attributes import attribute
from tf_partfash.search.encoders import Changes, Resources
from tf_partfash.search.gallery import GalleryIndex
from tf_partfash.search.trained_run import feature_matrix

if TYPE_CHECKING:
  import keras

CHUNK = 4096  # images per model call


def _taught(model: keras.Model) -> dict[str, np.ndarray]:
  """Attribute name -> (C,) whether each class had labelled training images."""
  return {name: np.asarray(counts) > 0 for name, counts in zip(model.names, model.class_counts)}


def _expressible(changes: Changes, taught: dict[str, np.ndarray]
                 ) -> tuple[list[dict[str, int]], np.ndarray]:
  kept, dropped = [], np.zeros(len(changes), bool)
  for q, change in enumerate(changes):
    named = {attribute(n).name: int(v) for n, v in change.items()}
    kept.append({n: v for n, v in named.items() if n in taught and taught[n][v]})
    dropped[q] = len(kept[-1]) < len(change)
  return kept, dropped


def _rows_changing(changes: Changes, name: str) -> tuple[np.ndarray, np.ndarray]:
  """(rows of the queries that change `name`, their wanted classes)."""
  picked = [(q, int(c[name])) for q, c in enumerate(changes) if name in c]
  rows, classes = zip(*picked) if picked else ((), ())
  return np.asarray(rows, np.int64), np.asarray(classes, np.int64)


class FlamEncoder:
  """FLAM's query manipulation (§3.3) on the base run's features."""

  def __init__(self, model: keras.Model):
    self.model = model
    self.taught = _taught(model)

  @classmethod
  def from_run(cls, run: Resources, with_prototypes: bool = True) -> FlamEncoder:
    del with_prototypes  # the dictionary vectors are the model's
    return cls(run.model)

  def gallery(self, index: GalleryIndex) -> np.ndarray:
    return index.signatures

  def queries(self, index: GalleryIndex, changes: Changes) -> np.ndarray:
    """x̃ of each query, its changes applied in the model's attribute order."""
    x = feature_matrix(index)
    changes = [{attribute(n).name: v for n, v in c.items()} for c in changes]
    for a, name in enumerate(self.model.names):
      rows, classes = _rows_changing(changes, name)
      if len(rows):
        x[rows] = np.concatenate([
            np.asarray(self.model.manipulate(x[rows[i:i + CHUNK]], [(a, classes[i:i + CHUNK])]))
            for i in range(0, len(rows), CHUNK)])
    return x.reshape(np.shape(index.signatures))

  def expressible(self, changes: Changes) -> tuple[list[dict[str, int]], np.ndarray]:
    return _expressible(changes, self.taught)


class ConcatEncoder:
  """Cls-Concat's or Emb-Concat's features, a change replacing its attribute's block."""

  def __init__(self, model: keras.Model):
    self.model = model
    self.taught = _taught(model)
    self.means = [_unit(np.asarray(m)) for m in model.class_means]

  @classmethod
  def from_run(cls, run: Resources, with_prototypes: bool = True) -> ConcatEncoder:
    del with_prototypes  # the class means are kept with the model
    return cls(run.model)

  def gallery(self, index: GalleryIndex) -> np.ndarray:
    """(N, n, width): each attribute's normalised feature of every image."""
    x = feature_matrix(index)
    return np.concatenate([np.asarray(self.model.embed(x[i:i + CHUNK]))
                           for i in range(0, len(x), CHUNK)])

  def queries(self, index: GalleryIndex, changes: Changes) -> np.ndarray:
    out = self.gallery(index)
    changes = [{attribute(n).name: v for n, v in c.items()} for c in changes]
    for a, name in enumerate(self.model.names):
      rows, classes = _rows_changing(changes, name)
      out[rows, a] = self.means[a][classes]
    return out

  def expressible(self, changes: Changes) -> tuple[list[dict[str, int]], np.ndarray]:
    return _expressible(changes, self.taught)


def _unit(rows: np.ndarray) -> np.ndarray:
  return rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12)
