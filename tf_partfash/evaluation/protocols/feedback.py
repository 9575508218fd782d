"""Personalization measured (§5, Fig. 8; beyond the paper: §7.4 says it cannot be given in
numbers).

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

Only methods whose images are the S + 1 signatures can weigh them (`Method.signatures`); runs of
other methods are skipped, and say so. The report: the top-20 hit rate for the hidden target after
each round, with 95 % intervals over queries, as a table, results.json and a plot.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np

from tf_partfash.attributes import MISSING
from tf_partfash.errors import UserError
from tf_partfash.evaluation import intervals
from tf_partfash.evaluation.metrics import first_hits, has_labels
from tf_partfash.evaluation.queries import QuerySet, ensure_paper_queries
from tf_partfash.evaluation.reports import (Dataset, Outcome, SETTING_NAMES, describe_dataset,
                                            run_names, save_figure, scoring_settings)
from tf_partfash.evaluation.scoring import RunResult, paper_gallery, result_of
from tf_partfash.protocols import Options
from tf_partfash.search.retrieval import Searcher, personalization_weights
from tf_partfash.search.trained_run import TrainedRun

SHOWN = 10     # Fig. 8: the shopper picks from the first results she sees
ROUNDS = 3
TOP_K = 20     # the paper's Table 2


def evaluate(runs: Sequence[TrainedRun], options: Options) -> Outcome:
  skipped = {r.workdir: f'{r.config.method}: one feature vector per image, Eq. 5-6 weigh S + 1'
             for r in runs if not r.method.signatures}
  supported = [r for r in runs if r.method.signatures]
  if not supported:
    raise UserError('no run of a method with S + 1 signatures to personalise: '
                    + ', '.join(skipped))
  data = runs[0].data
  query_sets, query_file = ensure_paper_queries(data.split_file, data.table, data.split,
                                                options.query_seed, 'special')
  results = [evaluate_feedback(r, query_sets, options.distance, options.backend)
             for r in supported]
  dataset = describe_dataset(data)
  text = '\n'.join([f'skipped {w} ({reason})' for w, reason in skipped.items()]
                   + [format_feedback_table(results, dataset), f'Queries: {query_file}'])
  blob = feedback_json(results, dataset, query_file, scoring_settings(runs, options), skipped)
  return Outcome(text, blob, lambda file: plot_feedback(file, results, dataset), '_rounds.png',
                 supported[0].workdir)


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
    raise UserError(f'{run.workdir}: a {run.config.method} model has one feature vector per '
                    'image; the feedback protocol weighs the S + 1 signatures (Eq. 5-6)')
  gallery = paper_gallery(run)
  signatures = gallery.features.signatures
  searcher = run.searcher('paper_gallery', gallery.features, signatures, backend, distance)
  scores = {name: feedback_rounds(searcher, signatures, gallery.labels[:, gallery.columns(q)],
                                  gallery.of(q.rows).signatures, q.targets, name, rounds,
                                  distance=distance)
            for name, q in queries.items() if name != 'direct'}
  return result_of(run, scores)


RULE = (f'hidden target = the query\'s special labels with the setting\'s changes (never told); '
        f'round 0 searches with the query image; after each round the shopper picks, from the '
        f'top {SHOWN}, every image sharing the most target values (none if the best shares '
        f'none); one pick replaces the query, several weigh it by Eq. 5-6; hit = a top-{TOP_K} '
        'image with exactly the target\'s special labels')


def format_feedback_table(results: Sequence[RunResult], dataset: Dataset) -> str:
  names = run_names(results)
  lines = [dataset.note()] if dataset.note() else []
  lines.append(f'Personalization (simulated shopper): {RULE}.')
  for setting in results[0].scores:
    scores = [r.scores[setting] for r in results]
    rounds = scores[0].first_hit.shape[0]
    lines.append(f'\n{SETTING_NAMES[setting]}: top-{TOP_K} for the hidden target by round, '
                 f'{len(scores[0])} queries [95 % interval]')
    lines.append(f'{"method":<24}' + ''.join(f'{f"round {r}":>20}' for r in range(rounds))
                 + f'{"no pick (rounds 1+)":>22}')
    for result, s in zip(results, scores):
      cells = ['no queries' if v is None else
               f'{100 * v:5.1f} [{100 * ci[0]:4.1f}, {100 * ci[1]:4.1f}]'
               for v, ci in zip(s.top20_by_round(), s.intervals_by_round())]
      no_pick = f'{int((s.picks == 0).sum())} of {s.picks.size}'
      lines.append(f'{names[id(result)]:<24}' + ''.join(f'{c:>20}' for c in cells)
                   + f'{no_pick:>22}')
  return '\n'.join(lines)


def _setting_json(scores: FeedbackScores) -> dict[str, Any]:
  return {'queries': len(scores), 'top20_by_round': scores.top20_by_round(),
          'top20_by_round_ci95': [ci and list(ci) for ci in scores.intervals_by_round()],
          'picks_by_round': [int(v) for v in scores.picks.sum(axis=1)],
          'rounds_without_a_pick': [int(v) for v in (scores.picks == 0).sum(axis=1)],
          'first_hit_by_round': scores.first_hit.astype(int).tolist()}


def feedback_json(results: Sequence[RunResult], dataset: Dataset, query_file: str,
                  settings: dict[str, Any], skipped: dict[str, str]) -> dict[str, Any]:
  names = run_names(results)
  return {'protocol': 'feedback', 'rule': RULE, 'dataset': dataclasses.asdict(dataset),
          'query_file': query_file,
          'intervals': intervals.DESCRIPTION,
          **settings, 'skipped': skipped,
          'runs': [{'workdir': r.workdir, 'method': r.method, 'name': names[id(r)],
                    'seed': r.seed, 'settings': {s: _setting_json(v) for s, v in r.scores.items()}}
                   for r in results]}


def plot_feedback(file: str, results: Sequence[RunResult], dataset: Dataset) -> None:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  names = run_names(results)
  settings = list(results[0].scores)
  fig, axes = plt.subplots(1, len(settings), figsize=(5 * len(settings), 4), squeeze=False)
  for ax, setting in zip(axes[0], settings):
    rounds = np.arange(results[0].scores[setting].first_hit.shape[0])
    for r in results:
      s = r.scores[setting]
      if not len(s):
        continue
      bounds = np.array(s.intervals_by_round()).reshape(-1, 2)
      line, = ax.plot(rounds, 100 * np.array(s.top20_by_round()), 'o-', label=names[id(r)])
      ax.fill_between(rounds, 100 * bounds[:, 0], 100 * bounds[:, 1], color=line.get_color(),
                      alpha=0.15, lw=0)
    ax.set(title=f'{SETTING_NAMES[setting]}, n = {len(results[0].scores[setting])}',
           xlabel='feedback round', ylabel=f'top-{TOP_K} for the hidden target (%)',
           xticks=rounds, ylim=(0, 100))
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize=8, loc='upper left')
  save_figure(fig, file, dataset)
