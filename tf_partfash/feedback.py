"""Personalization measured (beyond the paper: §7.4 says it cannot be given in numbers; §5, Fig. 8).

A simulated shopper, exactly:

- She wants a hidden target: the query image's special labels with the setting's one or two
  values changed (the paper protocol's `manipulate1` / `manipulate2` queries). The system is never
  told the changes.
- Round 0 is a search with the query image alone (Eq. 4, no manipulation).
- After each round she looks at the top `SHOWN` (10) results and picks every one of them that
  has the most of the target's special values (labels; a missing label has none). If the best of
  them has none, she picks nothing: the round is recorded as without a pick and the next search
  is the same as this one.
- The next round searches with: one pick, the picked image as the query (§5); several, the
  current query with the Eq. 5 weights of the picks (Eq. 6). Picked images stay in the gallery.
- A round hits when one of its top 20 has exactly the target's special labels (the paper
  protocol's hit rule).

Only methods whose images are the S + 1 signatures can weigh them (`Method.signatures`).
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from tf_partfash import intervals
from tf_partfash.attributes import MISSING
from tf_partfash.evaluation import RunResult, first_hits, has_labels, paper_gallery, result_of
from tf_partfash.queries import QuerySet
from tf_partfash.retrieval import Searcher, personalization_weights
from tf_partfash.trained_run import TrainedRun

SHOWN = 10     # Fig. 8: the shopper picks from the first results she sees
ROUNDS = 3
TOP_K = 20     # the paper's Table 2


def shopper_picks(shown_labels: np.ndarray, target: np.ndarray) -> np.ndarray:
  """Positions (into the shown results) that share the most of `target`'s labels; none when the
  best shares none. `shown_labels` (S, A) and `target` (A,) are label indices, -1 = missing."""
  shown_labels, target = np.asarray(shown_labels), np.asarray(target)
  shared = ((shown_labels == target[None, :]) & (shown_labels != MISSING)).sum(axis=1)
  if not len(shared) or shared.max() == 0:
    return np.zeros(0, np.int64)
  return np.flatnonzero(shared == shared.max())


@dataclasses.dataclass(frozen=True)
class FeedbackScores:
  """One setting's rounds, per query in the order of its `QuerySet`."""
  setting: str
  first_hit: np.ndarray   # (R + 1, Q) rank of the first hit per round, TOP_K when none
  picks: np.ndarray       # (R, Q) images picked after each round (0: no shown image matched)

  def __len__(self) -> int:
    return self.first_hit.shape[1]

  def top20_by_round(self) -> list[float | None]:
    """Top-20 hit rate for the hidden target after 0, 1, ... rounds (None: no queries)."""
    if not len(self):
      return [None] * len(self.first_hit)
    return [float(v) for v in (self.first_hit < TOP_K).mean(axis=1)]

  def intervals_by_round(self) -> list[tuple[float, float] | None]:
    if not len(self):
      return [None] * len(self.first_hit)
    return [intervals.interval((row < TOP_K).astype(np.float64)) for row in self.first_hit]


def feedback_rounds(searcher: Searcher, gallery: np.ndarray, gallery_labels: np.ndarray,
                    queries: np.ndarray, targets: np.ndarray, setting: str = '',
                    rounds: int = ROUNDS, shown: int = SHOWN,
                    distance: str = 'euclidean') -> FeedbackScores:
  """Runs the simulated shopper (module docstring) for every query.

  `gallery` (N, V, D) are the signatures `searcher` holds, `gallery_labels` (N, A) their labels
  on the target's columns, `queries` (Q, V, D) the query images' own signatures, `targets` (Q, A).
  """
  vectors = np.array(queries, np.float32)
  weights = np.ones(vectors.shape[:2], np.float32)
  depth = min(max(TOP_K, shown), len(gallery))
  first_hit = np.full((rounds + 1, len(vectors)), TOP_K, np.int64)
  picks = np.zeros((rounds, len(vectors)), np.int64)
  for r in range(rounds + 1):
    retrieved, _ = searcher.search(vectors, depth, weights) if len(vectors) else (
        np.zeros((0, depth), np.int64), None)
    top = retrieved[:, :TOP_K]
    hit = first_hits(has_labels(top, gallery_labels, targets))
    first_hit[r] = np.where(hit < top.shape[1], hit, TOP_K)
    if r == rounds:
      break
    for q in range(len(vectors)):
      chosen = retrieved[q, shopper_picks(gallery_labels[retrieved[q, :shown]], targets[q])]
      picks[r, q] = len(chosen)
      if len(chosen) == 1:  # §5: the picked image replaces the query
        vectors[q], weights[q] = gallery[chosen[0]], 1.0
      elif len(chosen) > 1:  # Eq. 5-6: the picks' agreement weighs the signatures
        weights[q] = personalization_weights(gallery[chosen], distance)
  return FeedbackScores(setting, first_hit, picks)


def evaluate_feedback(run: TrainedRun, queries: Mapping[str, QuerySet],
                      distance: str = 'euclidean', backend: str = 'exact',
                      rounds: int = ROUNDS) -> RunResult:
  """The simulated shopper on the paper protocol's manipulated queries, whose targets are her
  hidden ones; a method with one vector per image cannot weigh signatures."""
  if not run.method.signatures:
    raise ValueError(f'{run.workdir}: a {run.config.method} model has one feature vector per '
                     'image; the feedback protocol weighs the S + 1 signatures (Eq. 5-6)')
  gallery = paper_gallery(run)
  signatures = gallery.features.signatures
  searcher = run.searcher('paper_gallery', gallery.features, signatures, backend, distance)
  scores = {name: feedback_rounds(searcher, signatures, gallery.labels[:, gallery.columns(q)],
                                  gallery.of(q.rows).signatures, q.targets, name, rounds,
                                  distance=distance)
            for name, q in queries.items() if name != 'direct'}
  return result_of(run, scores)
