"""Fashion search over signature vectors (paper §4.1, §4.6, §5): Eq. 4-6, manipulation, top-k.

Every image is S + 1 L2-normalised signatures, (V, D) with V = S + 1 in `SIGNATURE_NAMES` order of
`tf_partfash.models.partnet` (general first, then the special attributes). Two distances d:
`euclidean` (the default: Eq. 4 as written, d the Euclidean distance of §4.5 summed over the
S + 1 signatures) and `squared` (sum of squared Euclidean distances: one matrix product over the
concatenated signatures, the form FAISS searches).
Pure numpy; FAISS is imported only when its backend is asked for. No TensorFlow.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from tf_partfash.attributes import (ATTRIBUTE_NAMES, MISSING, SPECIAL_ATTRIBUTES, attribute,
                                    signature_index, special_attribute)
from tf_partfash.config import BACKENDS, check_distance
from tf_partfash.errors import UserError

if TYPE_CHECKING:
  from tf_partfash.search.gallery import Prototypes

# Bound on the (queries x gallery chunk) distance block of exact search: 16M floats = 64 MB.
_BLOCK_ELEMENTS = 1 << 24
# Eq. 5 divides by the spread of the picked images; identical picks would make it infinite.
_MIN_SPREAD = 1e-6


def _check_signatures(what: str, x: np.ndarray) -> np.ndarray:
  x = np.asarray(x)
  if x.ndim != 3:
    raise ValueError(f'{what}: expected signatures of shape (N, V, D), got {x.shape}')
  return x


def query_weights(weights: np.ndarray | None, num_queries: int, num_signatures: int) -> np.ndarray:
  """(Q, V) float32 weights: ones for Eq. 4, a shared (V,) or per-query (Q, V) set for Eq. 6."""
  if weights is None:
    return np.ones((num_queries, num_signatures), np.float32)
  w = np.asarray(weights, np.float32)
  if w.shape == (num_signatures,):
    return np.broadcast_to(w, (num_queries, num_signatures))
  if w.shape != (num_queries, num_signatures):
    raise ValueError(f'weights of shape {w.shape}; expected ({num_signatures},) or '
                     f'({num_queries}, {num_signatures})')
  return w


def _norms(signatures: np.ndarray) -> np.ndarray:
  """(N, V) squared norm of every signature (1 for a normalised one, 0 for a zeroed one)."""
  return np.einsum('nvd,nvd->nv', signatures, signatures, dtype=np.float32)


def _columns(gallery: np.ndarray) -> np.ndarray:
  """(N, V, D) signatures laid out as (V, D, N), float32: each signature's products with the
  queries are then one matrix product over contiguous rows (3 times faster for one query than
  over the (N, V, D) rows, and bitwise the same for a batch of them)."""
  return np.ascontiguousarray(np.asarray(gallery, np.float32).transpose(1, 2, 0))


def _squared_terms(queries: np.ndarray, columns: np.ndarray, gallery_norms: np.ndarray,
                   w: np.ndarray) -> np.ndarray:
  """Σ_v w_v |q_v - r_v|² = Σ w|q|² + Σ w|r|² - 2 <w ⊙ q, r>: one product over V·D columns
  (`columns`: the gallery as `_columns` lays it out).

  The norms are kept rather than taken as 1, so a block the network zeroed (ReLU) stays exact.
  """
  scaled = (queries * w[:, :, None]).reshape(queries.shape[0], -1).astype(np.float32)
  query_norms = np.einsum('qv,qv->q', _norms(queries), w)
  out = query_norms[:, None] + w @ gallery_norms.T
  out -= 2.0 * (scaled @ columns.reshape(-1, columns.shape[-1]))
  return np.maximum(out, 0.0)  # rounding can dip just below 0 for identical signatures


def _distances(queries: np.ndarray, columns: np.ndarray, gallery_norms: np.ndarray,
               w: np.ndarray, distance: str) -> np.ndarray:
  if distance == 'squared':
    return _squared_terms(queries, columns, gallery_norms, w)
  # Per signature, the terms of `_squared_terms` with unit weight, in its order of operations
  # (so the same values), computed in place: a batch of queries makes few large temporaries.
  out = np.zeros((queries.shape[0], columns.shape[-1]), np.float32)
  query_norms = _norms(queries)
  for v in range(queries.shape[1]):
    d2 = query_norms[:, v:v + 1] + gallery_norms[None, :, v]
    products = queries[:, v].astype(np.float32) @ columns[v]
    products *= 2.0
    d2 -= products
    np.maximum(d2, 0.0, out=d2)
    np.sqrt(d2, out=d2)
    d2 *= w[:, v:v + 1]
    out += d2
  return out


def signature_distances(queries: np.ndarray, gallery: np.ndarray,
                        weights: np.ndarray | None = None, distance: str = 'euclidean') -> np.ndarray:
  """(Q, N) D(i, r) = Σ_v w_v d(fc7_v(i), fc7_v(r)): Eq. 4 with `weights` None, else Eq. 6.

  `weights` is (V,) for all queries or (Q, V) per query. `squared`: d is the squared Euclidean
  distance; `euclidean`: the plain distance (one product per signature, then a square root).
  """
  check_distance(distance)
  queries = _check_signatures('queries', queries)
  gallery = _check_signatures('gallery', gallery)
  if queries.shape[1:] != gallery.shape[1:]:
    raise ValueError(f'queries have signatures {queries.shape[1:]}, the gallery '
                     f'{gallery.shape[1:]}')
  w = query_weights(weights, queries.shape[0], queries.shape[1])
  return _distances(queries, _columns(gallery), _norms(gallery), w, distance)


def rows_distances(query: np.ndarray, rows: np.ndarray, w: np.ndarray,
                   distance: str = 'euclidean') -> np.ndarray:
  """(n,) D(q, r) of one query's (V, D) signatures to each of `rows` (n, V, D): Eq. 4 with unit
  `w` (V,), else Eq. 6; the terms of `_squared_terms`, taken on the rows as they are. A compact
  search's few thousand candidates are then read once, not laid out by signature first
  (`_columns`), which cost as much as gathering them (2.8 against 4.9 ms a query at 2,000)."""
  check_distance(distance)
  d2 = _norms(rows) + _norms(query[None])[0]
  d2 -= 2.0 * np.einsum('nvd,vd->nv', rows, query, dtype=np.float32)
  np.maximum(d2, 0.0, out=d2)  # rounding can dip just below 0 for identical signatures
  if distance == 'euclidean':
    np.sqrt(d2, out=d2)
  return d2 @ np.asarray(w, np.float32)


def parse_changes(settings: Sequence[str],
                  manipulable: Sequence[str] = SPECIAL_ATTRIBUTES) -> dict[str, int]:
  """`['sleevelen=sleeveless', 'Color=Navy']` -> {attribute: value index}, names case-insensitive.

  An attribute outside `manipulable` (§4.1: only special attributes have a signature of their own
  to replace; a feature method's are its own, `RunConfig.manipulable`), an unknown name or value,
  or an attribute set twice is an error listing the valid choices.
  """
  changes: dict[str, int] = {}
  for setting in settings:
    name, sep, value = setting.partition('=')
    if not sep or not name.strip() or not value.strip():
      kind = 'special attributes' if tuple(manipulable) == SPECIAL_ATTRIBUTES else 'attributes'
      raise UserError(f'attribute change {setting!r} is not of the form name=value, e.g. '
                      f'color=navy; {kind}: ' + ', '.join(manipulable))
    attr = (special_attribute(name) if tuple(manipulable) == SPECIAL_ATTRIBUTES
            else attribute(name))
    if attr.name not in manipulable:
      raise UserError(f'{attr.name!r} cannot be changed by this method; attributes: '
                      + ', '.join(manipulable))
    if attr.name in changes:
      raise UserError(f'attribute {attr.name!r} is set twice ({setting!r})')
    changes[attr.name] = attr.index(value)
  return changes


def manipulate(queries: np.ndarray, changes: Sequence[Mapping[str, int]],
               prototypes: Prototypes) -> np.ndarray:
  """Query signatures with each changed special attribute's block replaced (§4.1, §4.6).

  `changes[i]` maps attribute names to wanted value indices for query i; that attribute's
  signature becomes the value's generic representation (`Prototypes`), every other block stays
  the query's own. Returns a new (Q, V, D) array.
  """
  queries = _check_signatures('queries', queries)
  if len(changes) != queries.shape[0]:
    raise ValueError(f'{len(changes)} sets of changes for {queries.shape[0]} queries')
  out = np.array(queries, np.float32)
  for i, wanted in enumerate(changes):
    for name, value in wanted.items():
      attr = special_attribute(name)
      out[i, signature_index(attr.name)] = prototypes.vector(attr.name, int(value))
  return out


def confirms(labels: np.ndarray, demanded: Mapping[str, int]) -> np.ndarray:
  """(N,) True where an image's labels carry every demanded value (§7.3's green frames).

  A missing label (-1) on a demanded attribute is no match: the demand cannot be confirmed.
  """
  labels = np.asarray(labels)
  hit = np.ones(labels.shape[0], bool)
  for name, value in demanded.items():
    column = labels[:, ATTRIBUTE_NAMES.index(name)]
    hit &= (column == value) & (column != MISSING)
  return hit


def top_k(distances: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
  """The k smallest distances of each row, ascending, ties broken by the smaller gallery index.

  Partial sort (argpartition) then a sort of the k candidates; rows whose k-th value is tied
  with items left out by the partition are redone exactly. k above N returns all N.
  """
  distances = np.asarray(distances)
  if distances.ndim != 2:
    raise ValueError(f'expected distances of shape (Q, N), got {distances.shape}')
  if k < 1:
    raise ValueError(f'k={k}; k must be at least 1')
  if np.isnan(distances).any():
    raise ValueError('distances contain NaN (are the signatures finite?)')
  k = min(k, distances.shape[1])
  part = np.sort(np.argpartition(distances, k - 1, axis=1)[:, :k], axis=1)
  picked = np.take_along_axis(distances, part, axis=1)
  order = np.argsort(picked, axis=1, kind='stable')  # stable: equal distances keep index order
  indices = np.take_along_axis(part, order, axis=1)
  kth = np.take_along_axis(picked, order[:, -1:], axis=1)
  for i in np.nonzero((distances <= kth).sum(axis=1) > k)[0]:
    candidates = np.flatnonzero(distances[i] <= kth[i])
    indices[i] = candidates[np.argsort(distances[i, candidates], kind='stable')[:k]]
  return indices, np.take_along_axis(distances, indices, axis=1)


def personalization_weights(selected: np.ndarray, distance: str = 'euclidean') -> np.ndarray:
  """Eq. 5: w_v = 1 / Σ_{k<j} d(fc7_v(k), fc7_v(j)) over the picked images, scaled to sum to V.

  Signatures on which the picks agree (small spread) weigh more in the next search (Eq. 6).
  With one pick there are no pairs: weights stay ones (§5 replaces the query instead).
  """
  check_distance(distance)
  selected = _check_signatures('selected', selected)
  m, v = selected.shape[:2]
  if m == 0:
    raise ValueError('personalization needs at least one picked image')
  if m == 1:
    return np.ones(v, np.float32)
  spread = np.zeros(v, np.float64)
  for s in range(v):
    block = selected[:, s:s + 1]
    d = signature_distances(block, block, distance=distance)
    spread[s] = np.triu(d, k=1).sum()
  inverse = 1.0 / np.maximum(spread, _MIN_SPREAD)
  return (v * inverse / inverse.sum()).astype(np.float32)


def import_faiss():
  # faiss's loader logs (at INFO) each CPU-specific build it tries before the one that loads.
  logging.getLogger('faiss.loader').setLevel(logging.WARNING)
  try:
    import faiss
  except ImportError:
    raise ImportError('backend=faiss needs the faiss package: pip install tf-partfash[faiss] '
                      '(or pip install faiss-cpu), or use backend=exact') from None
  return faiss


class Searcher:
  """Top-k search of query signatures against a fixed gallery (Eq. 4, or Eq. 6 with weights).

  `exact`: matrix products over gallery chunks (bounded memory), top-k merged across chunks.
  `faiss` (`squared` only): an exact inner-product index over `[r, -|r_v|²/2]` rows, searched
  with `[w ⊙ q, w]`, whose product is -(D - Σ w|q|²)/2: so any weights reuse one index and the
  ranking is the exact one. The gallery is float32 (numpy has no fast float16 product).
  """

  def __init__(self, gallery: np.ndarray, backend: str = 'exact', distance: str = 'euclidean'):
    check_distance(distance)
    if backend not in BACKENDS:
      raise UserError(f'unknown backend {backend!r}; valid backends: {", ".join(BACKENDS)}')
    if backend == 'compact':
      raise UserError('backend=compact searches a stored compact index: '
                      'trained_run.TrainedRun.searcher builds it')
    if backend == 'faiss' and distance != 'squared':
      raise UserError(f'backend=faiss searches distance=squared only (got {distance!r}); give '
                      'distance=squared, or use backend=exact for Eq. 4\'s sum of Euclidean '
                      'distances')
    gallery = _check_signatures('gallery', gallery)
    self.backend, self.distance = backend, distance
    self.shape = gallery.shape
    if backend == 'exact':
      self._columns = _columns(gallery)
      self._norms = _norms(np.asarray(gallery, np.float32))
      return
    faiss = import_faiss()
    n, v, d = gallery.shape
    self._index = faiss.IndexFlatIP(v * d + v)
    step = max(1, _BLOCK_ELEMENTS // (v * d + v))
    for start in range(0, n, step):  # add in chunks: the only full copy is the index's own
      block = np.asarray(gallery[start:start + step], np.float32)
      self._index.add(np.concatenate([block.reshape(len(block), -1), -0.5 * _norms(block)],
                                     axis=1))

  def __len__(self) -> int:
    return self.shape[0]

  def search(self, queries: np.ndarray, k: int,
             weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`(indices (Q, k), distances (Q, k))`, nearest first; k above the gallery size returns all."""
    queries = _check_signatures('queries', queries).astype(np.float32)
    if queries.shape[1:] != self.shape[1:]:
      raise ValueError(f'queries have signatures {queries.shape[1:]}, the gallery '
                       f'{self.shape[1:]}')
    if k < 1:
      raise ValueError(f'k={k}; k must be at least 1')
    w = query_weights(weights, queries.shape[0], queries.shape[1])
    if self.backend == 'faiss':
      return self._search_faiss(queries, min(k, len(self)), w)
    step = max(1, _BLOCK_ELEMENTS // max(1, queries.shape[0]))
    found, dists = [], []
    for start in range(0, len(self), step):
      chunk = slice(start, start + step)
      block = _distances(queries, self._columns[:, :, chunk], self._norms[chunk], w,
                         self.distance)
      idx, dist = top_k(block, k)
      found.append(idx + start)
      dists.append(dist)
    if len(found) == 1:
      return found[0], dists[0]
    # Every global top-k item is in its chunk's top-k; chunks are in index order, so a stable
    # sort of the concatenation keeps ties by gallery index.
    candidates, cand_dist = np.concatenate(found, axis=1), np.concatenate(dists, axis=1)
    order, dist = top_k(cand_dist, k)
    return np.take_along_axis(candidates, order, axis=1), dist

  def _search_faiss(self, queries: np.ndarray, k: int,
                    w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q = queries.shape[0]
    probe = np.concatenate([(queries * w[:, :, None]).reshape(q, -1), w], axis=1)
    products, indices = self._index.search(np.ascontiguousarray(probe, np.float32), k)
    query_norms = np.einsum('qv,qv->q', _norms(queries), w)
    return indices.astype(np.int64), np.maximum(query_norms[:, None] - 2.0 * products, 0.0)
