"""The personalization protocol's results (`feedback`): a table, results.json and a plot of the
top-20 hit rate for the hidden target after each round, with 95 % intervals over queries."""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from tf_partfash import intervals
from tf_partfash.evaluation import RunResult
from tf_partfash.feedback import SHOWN, TOP_K, FeedbackScores
from tf_partfash.reports import SETTING_NAMES, Dataset, run_names, save_figure

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
