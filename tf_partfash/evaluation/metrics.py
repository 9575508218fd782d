"""Retrieval metrics of a ranked list: exact-label hits, top-k accuracy (Fig. 6) and NDCG.

NDCG@k as AMNet (Zhao et al., CVPR 2017, §5.1) defines it, on the paper protocol:
  NDCG@k = 1/Z sum_{j=1..k} (2^rel(j) - 1) / log(j + 1),
rel(j) = the fraction of the wanted labels that the j-th result has (the columns a hit is judged
on), Z = the same sum for the best order of the gallery, so a perfect ranking scores 1. The base
of the logarithm cancels in the ratio. On the ADDE protocol, ADDE's own definition
(`adde_ndcg`, its `src/eval.py`): the same sum over the 12 attributes, but Z is the sum of an
all-relevant list (rel = 1 at every rank), whether or not the gallery holds such images; with
NDCG_target (rel = the manipulated attribute matches) and NDCG_others (the fraction of the other
11 that match) beside it.
"""
from __future__ import annotations

import numpy as np

NDCG_K = 20        # AMNet's Table 2


def has_labels(retrieved: np.ndarray, gallery_labels: np.ndarray,
            targets: np.ndarray) -> np.ndarray:
  """(Q, K) bool: whether the j-th result of query q has exactly the labels `targets[q]`.

  `retrieved` (Q, K) indexes `gallery_labels` (N, A); `targets` is (Q, A); -1 matches only -1.
  """
  retrieved, targets = np.asarray(retrieved), np.asarray(targets)
  return (np.asarray(gallery_labels)[retrieved] == targets[:, None, :]).all(axis=-1)


def first_hits(hit: np.ndarray) -> np.ndarray:
  """(Q,) 0-based rank of each query's first hit in a (Q, K) `has_labels` array, K when none."""
  hit = np.asarray(hit, bool)
  return np.where(hit.any(axis=1), hit.argmax(axis=1), hit.shape[1])


def top_k_accuracy(first_hit: np.ndarray, max_k: int) -> np.ndarray:
  """(max_k,) fraction of queries with a hit in the top k, for k = 1..max_k (Fig. 6)."""
  first_hit = np.asarray(first_hit)
  if not len(first_hit):
    return np.full(max_k, np.nan)
  return (first_hit[None, :] < np.arange(1, max_k + 1)[:, None]).mean(axis=1)


def _discounts(k: int) -> np.ndarray:
  return 1.0 / np.log2(np.arange(2, k + 2))


def _ideal_dcg(gallery_labels: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
  """(Q,) DCG of the best possible top-k of the gallery for each target (Z of AMNet's NDCG).

  The best order puts gallery images by decreasing number of matched labels, so only how many
  images match m labels matters. Repeated label vectors (many, on real data) are counted once.
  """
  num_columns = targets.shape[1]
  rows, counts = np.unique(gallery_labels, axis=0, return_counts=True)
  unique_targets, inverse = np.unique(targets, axis=0, return_inverse=True)
  levels = np.arange(num_columns, -1, -1)  # matched labels, best first
  gains = np.append(2.0 ** (levels / num_columns) - 1, 0.0)  # last: no image left
  positions = np.arange(1, k + 1)
  ideal = np.empty(len(unique_targets))
  chunk = max(1, 2 ** 22 // max(1, len(rows) * num_columns))
  for start in range(0, len(unique_targets), chunk):
    block = unique_targets[start:start + chunk]
    matched = (block[:, None, :] == rows[None, :, :]).sum(axis=-1)  # (c, R)
    # Images per (target, number of matched labels): one weighted bincount over the block.
    flat = (matched + (num_columns + 1) * np.arange(len(block))[:, None]).ravel()
    per_level = np.bincount(flat, np.broadcast_to(counts, matched.shape).ravel(),
                            len(block) * (num_columns + 1)).reshape(len(block), -1)[:, ::-1]
    cumulative = np.cumsum(per_level, axis=1)  # images with at least levels[i] matches
    level_of = (cumulative[:, None, :] < positions[None, :, None]).sum(axis=-1)  # (c, k)
    ideal[start:start + chunk] = (gains[level_of] * _discounts(k)).sum(axis=1)
  return ideal[np.asarray(inverse).reshape(-1)]


def ndcg(retrieved: np.ndarray, gallery_labels: np.ndarray, targets: np.ndarray,
         k: int = NDCG_K) -> np.ndarray:
  """(Q,) NDCG@k of AMNet §5.1 for the ranked `retrieved` (Q, >= k) indices into the gallery.

  rel(j) is the fraction of the A target labels the j-th result has. A gallery with fewer than k
  images ranks all of them. A query whose ideal DCG is 0 (no gallery image shares any wanted
  label) scores 0.
  """
  gallery_labels, targets = np.asarray(gallery_labels), np.asarray(targets)
  k = min(k, len(gallery_labels))
  retrieved = np.asarray(retrieved)[:, :k]
  if retrieved.shape[1] != k:
    raise ValueError(f'NDCG@{k} needs {k} results per query, got {retrieved.shape[1]}')
  relevance = (gallery_labels[retrieved] == targets[:, None, :]).mean(axis=-1)
  # Row sums, not a matrix product: the same numbers whatever the batch size.
  dcg = ((2.0 ** relevance - 1) * _discounts(k)).sum(axis=1)
  ideal = _ideal_dcg(gallery_labels, targets, k)
  return np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)


def adde_ndcg(retrieved: np.ndarray, gallery_labels: np.ndarray, targets: np.ndarray,
              manipulated: np.ndarray, k: int = NDCG_K) -> dict[str, np.ndarray]:
  """ADDE's NDCG@k, NDCG_target@k and NDCG_others@k per query (its `src/eval.py`, `utils.py`).

  `gallery_labels` (N, A) and `targets` (Q, A) are label indices (-1 = missing, which equals only
  -1, as ADDE compares one-hot blocks); `manipulated` (Q,) is the column of each query's changed
  attribute. Per result j: rel = matched columns / A, target = 1 if the manipulated column
  matches, others = matched other columns / (A - 1). Each is sum_j (2^rel(j) - 1) / log(j + 1)
  over the top k, divided by the same sum for rel = 1 everywhere (ADDE's idcg).
  """
  gallery_labels, targets = np.asarray(gallery_labels), np.asarray(targets)
  k = min(k, len(gallery_labels))
  retrieved = np.asarray(retrieved)[:, :k]
  if retrieved.shape[1] != k:
    raise ValueError(f'NDCG@{k} needs {k} results per query, got {retrieved.shape[1]}')
  equal = gallery_labels[retrieved] == targets[:, None, :]            # (Q, k, A)
  columns = equal.shape[-1]
  on_target = np.take_along_axis(equal, np.asarray(manipulated)[:, None, None], axis=-1)[..., 0]
  relevance = {'ndcg': equal.mean(axis=-1), 'ndcg_target': on_target.astype(np.float64),
               'ndcg_others': (equal.sum(axis=-1) - on_target) / (columns - 1)}
  discounts = _discounts(k)
  ideal = discounts.sum()  # (2^1 - 1) at every rank
  return {name: ((2.0 ** rel - 1) * discounts).sum(axis=1) / ideal
          for name, rel in relevance.items()}
