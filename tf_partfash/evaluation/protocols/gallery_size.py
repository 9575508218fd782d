"""Top-20 after one manipulation as the gallery grows (AMNet §5.4, Fig. 6): the gallery-size study.

The galleries are nested: the first `size` images of one fixed random order of the paper
gallery (seed 0), so each holds the smaller ones and every method searches the same images. The
queries are the paper protocol's one-manipulation queries; at each size a query counts where
its target (the query's labels with the change) is in that gallery, so a hit is possible, and the
report gives that number. A smaller gallery has fewer look-alikes to outrank the right image, so
top-20 rises as it shrinks; AMNet reads a smaller rise as more robust features.

`evaluate.py --protocol=gallery_size` runs it: a table, results.json and a plot, with 95 %
bootstrap intervals over the queries.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from tf_partfash.errors import UserError
from tf_partfash.evaluation import intervals
from tf_partfash.evaluation.queries import QuerySet, ensure_paper_queries
from tf_partfash.evaluation.reports import (Dataset, Outcome, describe_dataset, run_names,
                                            save_figure, scoring_settings)
from tf_partfash.evaluation.scoring import (PAPER_MAX_K, RunResult, TABLE2_K, paper_gallery,
                                            result_of, score_queries)
from tf_partfash.protocols import Options
from tf_partfash.search.trained_run import TrainedRun

SETTING = 'manipulate1'


def evaluate(runs: Sequence[TrainedRun], options: Options) -> Outcome:
  data = runs[0].data
  sizes = sorted(set(options.gallery_sizes))  # a curve over growing galleries
  nested_galleries(len(data.rows('gallery')), sizes)  # sizes checked before any search
  query_sets, query_file = ensure_paper_queries(data.split_file, data.table, data.split,
                                                options.query_seed, 'special')
  results = [evaluate_gallery_sizes(r, query_sets[SETTING], sizes, options.distance,
                                    options.backend) for r in runs]
  dataset = describe_dataset(data)
  text = f'{format_table(results, dataset)}\nQueries: {query_file}'
  if sizes != list(options.gallery_sizes):
    text = (f'Gallery sizes in increasing order, each once: {", ".join(map(str, sizes))} '
            f'(given: {", ".join(map(str, options.gallery_sizes))})\n{text}')
  blob = results_json(results, dataset, query_file, scoring_settings(runs, options))
  return Outcome(text, blob, lambda file: plot(file, results, dataset), '.png', runs[0].workdir)


def nested_galleries(num_images: int, sizes: Sequence[int]) -> list[np.ndarray]:
  """Per size, the gallery positions of that many images: the first of one fixed random order
  (so each gallery holds the smaller ones), in gallery order."""
  too_big = [s for s in sizes if not 0 < s <= num_images]
  if too_big:
    raise UserError(f'gallery sizes {too_big}: the gallery has {num_images} images (sizes from 1 '
                    f'to {num_images})')
  order = np.random.default_rng(0).permutation(num_images)
  return [np.sort(order[:s]) for s in sizes]


def evaluate_gallery_sizes(run: TrainedRun, queries: QuerySet, sizes: Sequence[int],
                           distance: str = 'euclidean', backend: str = 'exact') -> RunResult:
  """The run's scores on `queries` in each nested gallery, as settings `gallery_<size>`."""
  gallery = paper_gallery(run)
  encoder = run.encoder()
  features = gallery.of(queries.rows)
  scores = {}
  for size, positions in zip(sizes, nested_galleries(len(gallery.labels), sizes)):
    sub = gallery.features.take(positions)
    searcher = run.searcher(f'gallery_{size}', sub, encoder.gallery(sub), backend, distance)
    scores[f'gallery_{size}'] = score_queries(
        searcher, features, queries, gallery.labels[positions][:, gallery.columns(queries)],
        encoder, PAPER_MAX_K)
  return result_of(run, scores)


def top20(scores) -> dict[str, Any]:
  """Top-20 over the queries a hit is possible for, its 95 % interval and their number."""
  hits = scores.hits(TABLE2_K)[scores.reachable]
  if not len(hits):
    return {'queries': 0, 'top20': None, 'ci95': None}
  low, high = intervals.interval(hits)
  return {'queries': int(len(hits)), 'top20': float(hits.mean()), 'ci95': [low, high]}


def format_table(results: Sequence[RunResult], dataset: Dataset) -> str:
  names = run_names(results)
  sizes = list(results[0].scores)
  lines = [dataset.note()] if dataset.note() else []
  lines.append(f'Top-{TABLE2_K} after one manipulation by gallery size (nested galleries; '
               'queries whose target is in the gallery) [95 % interval]')
  lines.append(f'{"gallery":>8} {"queries":>8}' + ''.join(f'{names[id(r)][:22]:>24}'
                                                         for r in results))
  for size in sizes:
    cells = [top20(r.scores[size]) for r in results]
    row = f'{size.removeprefix("gallery_"):>8} {cells[0]["queries"]:>8}'
    for c in cells:
      row += (f'{"no queries":>24}' if c['top20'] is None else
              f'{100 * c["top20"]:8.1f} [{100 * c["ci95"][0]:4.1f}, {100 * c["ci95"][1]:4.1f}]'
              .rjust(24))
    lines.append(row)
  return '\n'.join(lines)


def results_json(results: Sequence[RunResult], dataset: Dataset, query_file: str,
                 settings: dict[str, Any]) -> dict[str, Any]:
  names = run_names(results)
  return {'protocol': 'gallery_size', 'dataset': dataclasses.asdict(dataset),
          'query_file': query_file, 'setting': SETTING, **settings,
          'rule': 'nested galleries (the first N of one random order, seed 0); top-20 over the '
                  'one-manipulation queries whose target is in the gallery',
          'runs': [{'workdir': r.workdir, 'method': r.method, 'name': names[id(r)],
                    'seed': r.seed, 'sizes': {s.removeprefix('gallery_'): top20(scores)
                                              for s, scores in r.scores.items()}}
                   for r in results]}


def plot(file: str, results: Sequence[RunResult], dataset: Dataset) -> None:
  """Top-20 against gallery size, one line per run with its 95 % band (AMNet Fig. 6)."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  names = run_names(results)
  fig, ax = plt.subplots(figsize=(6, 4))
  for r in results:
    sizes = [int(s.removeprefix('gallery_')) for s in r.scores]
    cells = [top20(s) for s in r.scores.values()]
    keep = [k for k, c in enumerate(cells) if c['top20'] is not None]
    xs = [sizes[k] for k in keep]
    line, = ax.plot(xs, [100 * cells[k]['top20'] for k in keep], 'o-', label=names[id(r)])
    ax.fill_between(xs, [100 * cells[k]['ci95'][0] for k in keep],
                    [100 * cells[k]['ci95'][1] for k in keep], color=line.get_color(), alpha=0.15,
                    lw=0)
  ax.set(xscale='log', xlabel='gallery images', ylabel=f'top-{TABLE2_K} accuracy (%)',
         title='one manipulation, by gallery size', ylim=(0, 100))
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  save_figure(fig, file, dataset)
