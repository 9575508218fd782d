"""What every protocol reports with: what the data is, the columns of runs (seeds of a method
grouped), cells with their intervals, results.json and Fig. 6 style top-k plots, and the outcome a
protocol hands evaluate.py (`Outcome`).

Published figures (the protocols': `protocols.paper`, `protocols.adde`, `protocols.flam`) are only
comparable on Shopping100k; on other data (the built-in synthetic set) only the ordering of
methods is.
"""
from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from tf_partfash.evaluation import intervals
from tf_partfash.evaluation.queries import LEFT_OUT_REASONS
from tf_partfash.evaluation.scoring import RunResult, Scores, TABLE2_K
from tf_partfash.methods import METHODS, PROPOSED
from tf_partfash.storage import atomic

if TYPE_CHECKING:
  from tf_partfash.inputs.prepared import PreparedData
  from tf_partfash.protocols import Options
  from tf_partfash.search.trained_run import TrainedRun

SETTING_NAMES = {'direct': 'direct', 'manipulate1': '1 manipulation',
                 'manipulate2': '2 manipulations', 'adde': 'ADDE manipulation',
                 # FLAM's protocol (`protocols.flam`): the attribute changed, or all queries.
                 'shape': 'shape (category)', 'color': 'color', 'pattern': 'pattern',
                 'all': 'all (shape, color, pattern)'}
DISTANCE_NOTES = {'euclidean': "Eq. 4 as written: the Euclidean distances of the S + 1 signatures "
                               'summed', 'squared': 'the squared distances summed (the form FAISS '
                                                    'searches), not the paper\'s'}
SHOPPING100K_IMAGES = 101021


@dataclasses.dataclass(frozen=True)
class Outcome:
  """What a protocol reports: the text evaluate.py prints, results.json, and its figure, drawn by
  `plot(file)` beside results.json (`<stem><plot_suffix>`). `workdir` is the first run scored,
  where results.json goes unless the user names a file."""
  text: str
  results: dict[str, Any]
  plot: Callable[[str], None]
  plot_suffix: str
  workdir: str


@dataclasses.dataclass(frozen=True)
class Dataset:
  """What data a result is on, and whether published Shopping100k figures compare with it."""
  data_dir: str
  images: int
  synthetic: bool

  def note(self) -> str | None:
    """The warning to print above the tables, or None on the full Shopping100k."""
    if self.synthetic:
      return (f'Data: synthetic images ({self.data_dir}, {self.images} images), not Shopping100k: '
              'the published numbers are not comparable, only the ordering of methods is.')
    if self.images != SHOPPING100K_IMAGES:
      return (f'Data: {self.images} images in the Shopping100k layout ({self.data_dir}); '
              f'Shopping100k has {SHOPPING100K_IMAGES}: the published numbers are indicative.')
    return None


def describe_dataset(data: PreparedData) -> Dataset:
  """What a run's prepared data is, for the notes beside published numbers."""
  return Dataset(data.data_dir, len(data.table), data.synthetic)


@dataclasses.dataclass(frozen=True)
class Column:
  """One column of the tables: the runs of one method that differ only in their seed."""
  name: str
  method: str
  runs: tuple[RunResult, ...]

  def per_run(self, setting: str, metric: str) -> np.ndarray:
    """(R, Q) per-query values of every run: 1/0 hits for `top<k>`, else the NDCG named."""
    return np.stack([_values(r.scores[setting], metric) for r in self.runs])

  def summary(self, setting: str, metric: str, rows: np.ndarray | None = None
              ) -> dict[str, Any]:
    """Mean over runs, sd across runs (None for one run), and the 95 % bootstrap interval over
    queries of the run-averaged per-query values; `rows` picks a subset of the queries."""
    values = self.per_run(setting, metric)
    if rows is not None:
      values = values[:, rows]
    if not values.shape[1]:
      return {'mean': None, 'sd': None, 'ci95': None, 'runs': len(self.runs), 'queries': 0}
    rates = values.mean(axis=1)
    low, high = intervals.interval(values.mean(axis=0))
    return {'mean': float(rates.mean()), 'sd': float(rates.std(ddof=1)) if len(rates) > 1
            else None, 'ci95': [low, high], 'runs': len(self.runs), 'queries': values.shape[1]}

  def minus(self, other: Column, setting: str, metric: str,
            rows: np.ndarray | None = None) -> dict[str, Any]:
    """This column's mean minus `other`'s, paired over the same queries (or the `rows` of them),
    with its interval."""
    mine, theirs = (c.per_run(setting, metric).mean(axis=0) for c in (self, other))
    if rows is not None:
      mine, theirs = mine[rows], theirs[rows]
    diff, low, high = intervals.paired_difference(mine, theirs)
    return {'mean': None if np.isnan(diff) else diff,
            'ci95': None if np.isnan(diff) else [low, high]}


def _values(scores: Scores, metric: str) -> np.ndarray:
  if metric.startswith('top'):
    return scores.hits(int(metric[3:]))
  return scores.ndcg[metric]


def columns(results: Sequence[RunResult]) -> list[Column]:
  """Runs grouped by `variant` (seeds of one method), in order of first appearance; titled by
  their method's paper name, with the first workdir's name when two columns share a method."""
  groups: dict[Any, list[RunResult]] = {}
  for r in results:
    groups.setdefault(r.variant or ('workdir', r.workdir), []).append(r)
  names = [METHODS[g[0].method].paper_name if g[0].method in METHODS else g[0].method
           for g in groups.values()]
  out = []
  for name, runs in zip(names, groups.values()):
    if names.count(name) > 1:
      name = f'{name} [{os.path.basename(os.path.normpath(runs[0].workdir))}]'
    if len(runs) > 1:
      seeds = {r.seed for r in runs}
      name = f'{name} ({len(runs)} {"seeds" if len(seeds) == len(runs) else "runs"})'
    out.append(Column(name, runs[0].method, tuple(runs)))
  return out


def run_names(results: Sequence[RunResult]) -> dict[int, str]:
  """Each run's column name (`columns`), by the run's id."""
  return {id(r): c.name for c in columns(results) for r in c.runs}


def proposed_column(cols: Sequence[Column]) -> Column | None:
  return next((c for c in cols if c.method == PROPOSED), None)


def measured(summary: dict[str, Any], scale: float, digits: int, sign: str = '') -> str:
  """`mean [low, high]`, or `mean ± sd [low, high]` for several seeds; `-` without queries."""
  if summary['mean'] is None:
    return '-'
  number = lambda x: f'{scale * x:{sign}.{digits}f}'
  text = number(summary['mean'])
  if summary.get('sd') is not None:
    text += f' ± {scale * summary["sd"]:.{digits}f}'
  low, high = summary['ci95']
  return f'{text} [{number(low)}, {number(high)}]'


def cell(summary: dict[str, Any], published: float | None, scale: float, digits: int) -> str:
  """The measured value and interval, then the published value in brackets (`(-)`: none)."""
  shown = '-' if published is None else f'{published:.{digits}f}'
  return f'{measured(summary, scale, digits)} ({shown})'


def difference_cell(diff: dict[str, Any], scale: float, digits: int) -> str:
  return measured(diff, scale, digits, sign='+')


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
  widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
  line = lambda cells: '  '.join(f'{c:<{w}}' if i == 0 else f'{c:>{w}}'
                                 for i, (c, w) in enumerate(zip(cells, widths)))
  return '\n'.join([line(header)] + [line(r) for r in rows])


def left_out_lines(first: dict[str, Scores]) -> list[str]:
  """Per setting: how many query images were left out and why (`queries.LEFT_OUT_REASONS`)."""
  out = []
  for setting, scores in first.items():
    reasons = ', '.join(f'{n} {LEFT_OUT_REASONS[r]}' for r, n in scores.left_out.items() if n)
    if reasons:
      out.append(f'  {SETTING_NAMES[setting]}: {len(scores)} queries; left out: {reasons}')
  return out


def empty_note(setting: str, scores: Scores) -> list[str]:
  if len(scores):
    return []
  return [f'{SETTING_NAMES[setting]}: no queries, no query image has a possible hit in the '
          'gallery; its rates are not defined.']


def _setting_json(scores: Scores, ks: Sequence[int] = ()) -> dict[str, Any]:
  """One run's figures on one setting, each rate with its 95 % interval over queries; top-k for
  k = 20 and each of `ks` (a protocol's own, e.g. FLAM's T@50) under `top<k>`, `top<k>_ci95`."""
  if not len(scores):
    return {'queries': 0, 'gallery_images': scores.gallery_size, 'left_out': scores.left_out,
            'top_k': [], f'top{TABLE2_K}': None, f'top{TABLE2_K}_ci95': None,
            **{f'top{k}{end}': None for k in ks for end in ('', '_ci95')}}
  low, high = scores.top_k_interval()
  blob = {'queries': len(scores), 'gallery_images': scores.gallery_size,
          'left_out': scores.left_out,
          'queries_with_a_target': int(scores.reachable.sum()),
          'top_k': [round(float(v), 6) for v in scores.top_k()],
          'top_k_ci95': [[round(float(a), 6), round(float(b), 6)] for a, b in zip(low, high)],
          f'top{TABLE2_K}': float(scores.top_k()[TABLE2_K - 1]),
          f'top{TABLE2_K}_ci95': list(intervals.interval(scores.hits(TABLE2_K))),
          f'top{TABLE2_K}_per_attribute': {
              a: {'accuracy': v, 'queries': n, 'ci95': list(ci)}
              for a, (v, n, ci) in scores.per_attribute(TABLE2_K).items()},
          'unexpressed_changes': int(scores.unexpressed.sum()),
          # Per query, in the query file's order: 0-based rank of the first hit (max_k: none in
          # the top max_k), for paired comparisons of any two results files.
          'first_hit': scores.first_hit.astype(int).tolist()}
  for k in ks:
    blob[f'top{k}'] = float(scores.hits(k).mean())
    blob[f'top{k}_ci95'] = list(intervals.interval(scores.hits(k)))
  for name, values in scores.ndcg.items():
    blob[name] = float(np.mean(values))
    blob[f'{name}_ci95'] = list(intervals.interval(values))
  return blob


def results_json(protocol: str, results: Sequence[RunResult], dataset: Dataset, query_file: str,
                 settings: dict[str, Any], published: dict[str, Any],
                 ks: Sequence[int] = ()) -> dict[str, Any]:
  """The content of results.json: every run's top-k curve, Table 2 row and NDCG per setting with
  intervals, and per method (seeds grouped) mean, sd, interval and the paired difference from
  Proposed. `ks`: the protocol's own k, each reported as `top<k>` beside top-20."""
  cols = columns(results)
  name_of = {id(r): c.name for c in cols for r in c.runs}
  runs = [{'workdir': r.workdir, 'method': r.method, 'name': name_of[id(r)], 'seed': r.seed,
           **({'features': r.features} if r.features else {}),
           'settings': {s: _setting_json(v, ks) for s, v in r.scores.items()}} for r in results]
  proposed = proposed_column(cols)
  metric_names = ([f'top{TABLE2_K}'] + [f'top{k}' for k in ks if k != TABLE2_K]
                  + list(next(iter(results[0].scores.values())).ndcg))
  methods = []
  for c in cols:
    entry = {'name': c.name, 'method': c.method, 'workdirs': [r.workdir for r in c.runs],
             'seeds': [r.seed for r in c.runs], 'settings': {}}
    for setting in results[0].scores:
      entry['settings'][setting] = {m: c.summary(setting, m) for m in metric_names}
      if proposed is not None and c is not proposed:
        entry['settings'][setting][f'top{TABLE2_K}_minus_proposed'] = c.minus(
            proposed, setting, f'top{TABLE2_K}')
    methods.append(entry)
  return {'protocol': protocol, 'dataset': dataclasses.asdict(dataset),
          'comparable_to_published': dataset.note() is None, 'query_file': query_file,
          'intervals': intervals.DESCRIPTION,
          **settings, 'runs': runs, 'methods': methods, 'published': published}


def scoring_settings(runs: Sequence[TrainedRun], options: Options) -> dict[str, Any]:
  """How the runs were scored, for results.json."""
  return {'distance': options.distance, 'backend': options.backend,
          'query_seed': options.query_seed, 'split_seed': runs[0].config.data.split_seed,
          'split_file': runs[0].data.split_file}


def write_outcome(outcome: Outcome, output: str) -> str:
  """Writes a protocol's results.json to `output` and its figure beside it; returns the figure's
  path. The two are written together or not at all: the figure is drawn first, under a temporary
  name that replaces the old one only once results.json has been replaced."""
  figure = os.path.splitext(output)[0] + outcome.plot_suffix
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  with atomic.replacing(figure, suffix=outcome.plot_suffix) as drawn:
    outcome.plot(drawn)
    write_json(output, outcome.results)
  return figure


def write_json(file: str, blob: dict[str, Any]) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(file)), exist_ok=True)
  atomic.write_json(file, blob)  # a per-process temporary name: evaluations may run at once


def plot_top_k(file: str, results: Sequence[RunResult], dataset: Dataset,
               published_top20: Mapping[str, Mapping[str, float]] | None = None,
               published_curves: Mapping[str, Mapping[int, float]] | None = None,
               published_k: int = TABLE2_K) -> None:
  """Top-k accuracy curves of every column (seeds averaged) with their 95 % bands over queries,
  one panel per setting (Fig. 6 a, b and 2 manipulations).

  On Shopping100k only, the published points are drawn: `published_top20` (setting -> method ->
  top-k in % at k = `published_k`, the paper's 20 or FLAM's 50) beside each method's curve,
  `published_curves` (name -> k -> top-k in %, ADDE's Table 1) in every panel.
  """
  import matplotlib
  matplotlib.use('Agg')  # files only: no display on servers
  import matplotlib.pyplot as plt

  settings = list(results[0].scores)
  fig, axes = plt.subplots(1, len(settings), figsize=(5 * len(settings), 4), squeeze=False)
  for ax, setting, letter in zip(axes[0], settings, 'abcdefg'):
    for c in columns(results):
      max_k = c.runs[0].scores[setting].max_k
      ks = np.arange(1, max_k + 1)
      curve = np.mean([r.scores[setting].first_hit[:, None] < ks[None, :] for r in c.runs],
                      axis=0).astype(np.float64)  # (Q, K): seed-averaged hits within top k
      if not len(curve):
        continue
      line, = ax.plot(ks, 100 * curve.mean(axis=0), label=c.name)
      low, high = intervals.interval(curve)
      ax.fill_between(ks, 100 * low, 100 * high, color=line.get_color(), alpha=0.15, lw=0)
      published = (published_top20 or {}).get(setting, {}).get(c.method)
      if published is not None and dataset.note() is None:
        ax.plot([published_k], [published], 'o', color=line.get_color(), mfc='none',
                label=f'{c.name} (paper)')
    if dataset.note() is None:
      for name, points in (published_curves or {}).items():
        ax.plot(list(points), list(points.values()), 'x--', label=name)
    count = len(results[0].scores[setting])
    if not count:
      ax.text(0.5, 0.5, 'no queries', transform=ax.transAxes, ha='center', va='center')
    max_k = results[0].scores[setting].max_k
    panel = f'({letter}) ' if len(settings) > 1 else ''
    ax.set(title=f'{panel}{SETTING_NAMES[setting]}, n = {count}', xlabel='k',
           ylabel='top-k accuracy (%)', xlim=(1, max_k), ylim=(0, 100))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc='upper left')
  save_figure(fig, file, dataset)


def save_figure(fig, file: str, dataset: Dataset) -> None:
  """Writes a results figure (its folder made), titled with what the data is unless it is the
  full Shopping100k, and closes it."""
  import matplotlib.pyplot as plt
  if dataset.note():
    fig.suptitle('synthetic data: compare the ordering of methods only' if dataset.synthetic
                 else f'{dataset.images} images (not the full Shopping100k)', fontsize=9)
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(file)), exist_ok=True)
  fig.savefig(file, dpi=100)
  plt.close(fig)
