"""Retrieval results beside the published numbers: text tables, results.json, Fig. 6 style plots.

Published figures: the paper's §7.1-7.2 text (Fig. 6 top-20) and Table 2; ADDE's Table 1 (Hou et
al., ICCV 2021) for the ADDE protocol on Shopping100k. They are only comparable on Shopping100k;
on other data (the built-in synthetic set) only the ordering of methods is.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Sequence

import numpy as np

from tf_partfash import atomic, intervals
from tf_partfash.synthetic.dataset import MARKER_FILE
from tf_partfash.evaluation import NDCG_K, TABLE2_K, RunResult, Scores
from tf_partfash.methods import METHODS, PROPOSED
from tf_partfash.queries import HIT_RULES, LEFT_OUT_REASONS

SETTING_NAMES = {'direct': 'direct', 'manipulate1': '1 manipulation',
                 'manipulate2': '2 manipulations', 'adde': 'ADDE manipulation'}
# The published top-20 of each method (`methods.METHODS`): Fig. 6 in % per setting, and Table 2
# as a fraction per manipulated attribute.
PAPER_TOP20 = {setting: {m.name: m.paper_top20[setting] for m in METHODS.values()
                         if setting in m.paper_top20}
               for setting in ('direct', 'manipulate1')}
PAPER_TABLE2 = {attr: {m.name: m.paper_table2[attr] for m in METHODS.values()
                       if attr in m.paper_table2}
                for attr in METHODS[PROPOSED].paper_table2}
TABLE2_NAMES = {'pattern': 'Pattern', 'collar': 'Collar', 'fastening': 'Fastening',
                'sleevelen': 'Sleeve Length', 'color': 'Color'}
# ADDE's Table 1 on Shopping100k: top-k accuracy in % by k.
ADDE_TABLE1 = {'AMNet': {20: 36.13}, 'FashionSearchNet': {20: 47.44},
               'ADDE-M': {10: 41.17, 20: 52.93, 30: 59.81, 50: 67.29}}
ADDE_KS = (10, 20, 30, 50)
DISTANCE_NOTES = {'euclidean': "Eq. 4 as written: the Euclidean distances of the S + 1 signatures "
                               'summed', 'squared': 'the squared distances summed (the form FAISS '
                                                    'searches), not the paper\'s'}
SHOPPING100K_IMAGES = 101021


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


def describe_dataset(run_data_dir: str | None, data_dir: str, images: int) -> Dataset:
  """A run's data: synthetic when the run had no data_dir or the directory has the marker."""
  synthetic = run_data_dir is None or os.path.exists(os.path.join(data_dir, MARKER_FILE))
  return Dataset(data_dir, images, synthetic)


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


def _proposed(cols: Sequence[Column]) -> Column | None:
  return next((c for c in cols if c.method == PROPOSED), None)


def _measured(summary: dict[str, Any], scale: float, digits: int, sign: str = '') -> str:
  """`mean [low, high]`, or `mean ± sd [low, high]` for several seeds; `-` without queries."""
  if summary['mean'] is None:
    return '-'
  number = lambda x: f'{scale * x:{sign}.{digits}f}'
  text = number(summary['mean'])
  if summary.get('sd') is not None:
    text += f' ± {scale * summary["sd"]:.{digits}f}'
  low, high = summary['ci95']
  return f'{text} [{number(low)}, {number(high)}]'


def _cell(summary: dict[str, Any], published: float | None, scale: float, digits: int) -> str:
  """The measured value and interval, then the published value in brackets (`(-)`: none)."""
  shown = '-' if published is None else f'{published:.{digits}f}'
  return f'{_measured(summary, scale, digits)} ({shown})'


def _difference_cell(diff: dict[str, Any], scale: float, digits: int) -> str:
  return _measured(diff, scale, digits, sign='+')


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
  widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
  line = lambda cells: '  '.join(f'{c:<{w}}' if i == 0 else f'{c:>{w}}'
                                 for i, (c, w) in enumerate(zip(cells, widths)))
  return '\n'.join([line(header)] + [line(r) for r in rows])


def _left_out_lines(first: dict[str, Scores]) -> list[str]:
  """Per setting: how many query images were left out and why (`queries.LEFT_OUT_REASONS`)."""
  out = []
  for setting, scores in first.items():
    reasons = ', '.join(f'{n} {LEFT_OUT_REASONS[r]}' for r, n in scores.left_out.items() if n)
    if reasons:
      out.append(f'  {SETTING_NAMES[setting]}: {len(scores)} queries; left out: {reasons}')
  return out


def _empty_note(setting: str, scores: Scores) -> list[str]:
  if len(scores):
    return []
  return [f'{SETTING_NAMES[setting]}: no queries, no query image has a possible hit in the '
          'gallery; its rates are not defined.']


def format_paper_tables(results: Sequence[RunResult], dataset: Dataset, hit_attributes: str,
                        distance: str) -> str:
  """Fig. 6 top-20 and NDCG@20 per setting, the paired differences from Proposed, then Table 2:
  measured [95 % interval over queries] (paper)."""
  cols = columns(results)
  first = results[0].scores
  out = [dataset.note()] if dataset.note() else []
  out += [f'Hit rule (--hit_attributes={hit_attributes}): a retrieved image is a hit when it has '
          f'{HIT_RULES[hit_attributes]}.', f'Distance: {distance} ({DISTANCE_NOTES[distance]}).',
          'Every rate: measured [95 % bootstrap interval over queries] (published); several seeds: '
          'mean ± sd across seeds [interval of the seed-averaged hits].']
  out += _left_out_lines(first) + ['']
  metric = f'top{TABLE2_K}'
  header = ['setting', 'queries'] + [c.name for c in cols]
  rows = [[SETTING_NAMES[s], str(len(q))] + [
      _cell(c.summary(s, metric), PAPER_TOP20.get(s, {}).get(c.method), 100, 1) for c in cols]
      for s, q in first.items()]
  out += [f'Top-{TABLE2_K} retrieval accuracy in % (paper Fig. 6 / §7):', _table(header, rows), '']
  proposed = _proposed(cols)
  others = [c for c in cols if c is not proposed]
  if proposed is not None and others:
    rows = [[SETTING_NAMES[s], str(len(q))] + [_difference_cell(c.minus(proposed, s, metric), 100,
                                                                1) for c in others]
            for s, q in first.items()]
    out += [f'Top-{TABLE2_K} minus {proposed.name}\'s, in points, paired bootstrap over the same '
            'queries [95 % interval]:', _table(['setting', 'queries'] + [c.name for c in others],
                                                rows), '']
  rows = [[SETTING_NAMES[s], str(len(q))] + [
      _cell(c.summary(s, f'ndcg@{NDCG_K}'), None, 1, 3) for c in cols] for s, q in first.items()]
  out += [f'NDCG@{NDCG_K} (AMNet §5.1; the paper reports none):', _table(header, rows), '']
  names = np.asarray(first['manipulate1'].manipulated)
  rows = []
  for attr, published in PAPER_TABLE2.items():
    chosen = np.nonzero(names == attr)[0]
    rows.append([TABLE2_NAMES[attr], str(len(chosen))] + [
        _cell(c.summary('manipulate1', metric, chosen), published.get(c.method), 1, 2)
        for c in cols])
  out += [f'Top-{TABLE2_K} accuracy per manipulated attribute (paper Table 2):',
          _table(['attribute', 'queries'] + [c.name for c in cols], rows)]
  if proposed is not None and others:
    rows = []
    for attr in PAPER_TABLE2:
      chosen = np.nonzero(names == attr)[0]
      rows.append([TABLE2_NAMES[attr], str(len(chosen))] + [
          _difference_cell(c.minus(proposed, 'manipulate1', metric, chosen), 1, 2)
          for c in others])
    out += ['', f'Per attribute, minus {proposed.name}\'s, paired over the same queries [95 % '
            'interval]:', _table(['attribute', 'queries'] + [c.name for c in others], rows)]
  for setting, scores in first.items():
    out += _empty_note(setting, scores)
  return '\n'.join(out)


def format_adde_table(results: Sequence[RunResult], dataset: Dataset, distance: str) -> str:
  """ADDE's Table 1 rows (top-10/20/30/50 in %) under the measured ones, ADDE's NDCG, then per
  attribute; measured values with their 95 % interval over queries."""
  out = [dataset.note()] if dataset.note() else []
  cols = columns(results)
  scores = results[0].scores['adde']
  special = np.nonzero([bool(m) and all(a in PAPER_TABLE2 for a in m.split('+'))
                        for m in scores.manipulated])[0]
  rows = []
  for c in cols:
    rows.append([f'{c.name} (measured)'] + [_measured(c.summary('adde', f'top{k}'), 100, 2)
                                            for k in ADDE_KS])
    rows.append([f'{c.name}, special-attribute queries'] + [
        _measured(c.summary('adde', f'top{k}', special), 100, 2) for k in ADDE_KS])
  for method, published in ADDE_TABLE1.items():
    rows.append([f'{method} (ADDE Table 1)'] + [f'{published[k]:.2f}' if k in published else '-'
                                               for k in ADDE_KS])
  out += [f'ADDE protocol, queries: {len(scores)} ({len(special)} on special attributes); '
          f'gallery: all {scores.gallery_size} test images, references included; distance: '
          f'{distance}. Top-k accuracy in % [95 % interval over queries]:',
          _table(['method'] + [f'top-{k}' for k in ADDE_KS], rows), '']
  metrics = [f'adde_{n}@{NDCG_K}' for n in ('ndcg', 'ndcg_target', 'ndcg_others')]
  rows = [[c.name] + [_measured(c.summary('adde', m), 1, 3) for m in metrics] for c in cols]
  out += [f"NDCG by ADDE's definition (its src/eval.py: DCG over the top {NDCG_K} normalised by "
          'an all-relevant list; target: the manipulated attribute, others: the other 11):',
          _table(['method'] + [f'NDCG@{NDCG_K}', f'NDCG_target@{NDCG_K}',
                               f'NDCG_others@{NDCG_K}'], rows), '']
  names = np.asarray(scores.manipulated)
  rows = []
  for attr in sorted(set(scores.manipulated) - {''}):
    chosen = np.nonzero(names == attr)[0]
    rows.append([attr, str(len(chosen))] + [
        _measured(c.summary('adde', f'top{TABLE2_K}', chosen), 1, 2) for c in cols])
  out += [f'Top-{TABLE2_K} accuracy per manipulated attribute:',
          _table(['attribute', 'queries'] + [c.name for c in cols], rows)]
  out += _empty_note('adde', scores)
  unexpressed = int(scores.unexpressed.sum())
  if unexpressed:
    out.append(f'{unexpressed} queries change a general attribute or a value unseen in training: '
               'the network has no prototype for it and searches with the reference signature.')
  return '\n'.join(out)


def _setting_json(scores: Scores) -> dict[str, Any]:
  """One run's figures on one setting, each rate with its 95 % interval over queries."""
  if not len(scores):
    return {'queries': 0, 'gallery_images': scores.gallery_size, 'left_out': scores.left_out,
            'top_k': [], f'top{TABLE2_K}': None, f'top{TABLE2_K}_ci95': None}
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
  for name, values in scores.ndcg.items():
    blob[name] = float(np.mean(values))
    blob[f'{name}_ci95'] = list(intervals.interval(values))
  return blob


def results_json(protocol: str, results: Sequence[RunResult], dataset: Dataset, query_file: str,
                 settings: dict[str, Any]) -> dict[str, Any]:
  """The content of results.json: every run's top-k curve, Table 2 row and NDCG per setting with
  intervals, and per method (seeds grouped) mean, sd, interval and the paired difference from
  Proposed."""
  cols = columns(results)
  name_of = {id(r): c.name for c in cols for r in c.runs}
  runs = [{'workdir': r.workdir, 'method': r.method, 'name': name_of[id(r)], 'seed': r.seed,
           'settings': {s: _setting_json(v) for s, v in r.scores.items()}} for r in results]
  proposed = _proposed(cols)
  metric_names = [f'top{TABLE2_K}'] + list(next(iter(results[0].scores.values())).ndcg)
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
  published = ({'fig6_top20_percent': PAPER_TOP20, 'table2_top20': PAPER_TABLE2}
               if protocol == 'paper' else {'adde_table1_percent': ADDE_TABLE1})
  return {'protocol': protocol, 'dataset': dataclasses.asdict(dataset),
          'comparable_to_published': dataset.note() is None, 'query_file': query_file,
          'intervals': intervals.DESCRIPTION,
          **settings, 'runs': runs, 'methods': methods, 'published': published}


def write_json(file: str, blob: dict[str, Any]) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(file)), exist_ok=True)
  atomic.write_json(file, blob)  # a per-process temporary name: evaluations may run at once


def plot_top_k(file: str, protocol: str, results: Sequence[RunResult], dataset: Dataset) -> None:
  """Top-k accuracy curves of every column (seeds averaged) with their 95 % bands over queries,
  one panel per setting (Fig. 6 a, b and 2 manipulations).

  The published points (top-20, or ADDE's top-10/20/30/50) are drawn on Shopping100k only.
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
      published = PAPER_TOP20.get(setting, {}).get(c.method)
      if published is not None and dataset.note() is None:
        ax.plot([TABLE2_K], [published], 'o', color=line.get_color(), mfc='none',
                label=f'{c.name} (paper)')
    if protocol == 'adde' and dataset.note() is None:
      for method, points in ADDE_TABLE1.items():
        ax.plot(list(points), list(points.values()), 'x--', label=f'{method} (ADDE Table 1)')
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
