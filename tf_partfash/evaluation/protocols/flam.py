"""FLAM's evaluation protocol (Shin et al., paper 003: §4 "Datasets" and "Evaluation metrics",
Tables 1 and 3): top-k accuracy after changing one of shape (category), color or pattern.

The evaluation images and queries are `flam_queries`'s: test images labelled on all three
attributes within each one's 10 most frequent classes, at most `--flam_images` of them, both the
gallery and the queries; each image asks once per attribute for another class of it. Any run is
scored through its encoder (`search.encoders`): the query's vectors with the change
`{attribute: class}`. A change the method cannot make (today's image methods have no category
signature: every shape change) is dropped, the image searched unchanged, and counted as
unexpressed. A hit has the wanted (shape, color, pattern). T@k for k = 1, 5, 20, 50, 100 (FLAM
Table 3's T@50, Table 4's other k) per attribute and over all queries pooled, each with its 95 %
bootstrap interval over queries, beside FLAM's Table 3 (Shopping100k) where the method has it.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from tf_partfash.evaluation.protocols.flam_queries import (HIT_RULE, NAMES, TOP_CLASSES, FlamTest,
                                                           display, make_flam_test)
from tf_partfash.evaluation.queries import paths_digest
from tf_partfash.evaluation.reports import (DISTANCE_NOTES, Column, Dataset, Outcome, columns,
                                            describe_dataset, empty_note, measured, plot_top_k,
                                            results_json, scoring_settings, table)
from tf_partfash.evaluation.scoring import RunResult, Scores, positions, result_of, score_queries
from tf_partfash.methods import METHODS
from tf_partfash.protocols import Options
from tf_partfash.search.trained_run import TrainedRun
from tf_partfash.storage.workdir import index_file

FLAM_KS = (1, 5, 20, 50, 100)
TABLE3_K = 50
MAX_K = max(FLAM_KS)
SETTINGS = NAMES + ('all',)  # the changed attribute's queries, then all of them pooled
# FLAM Table 3 marks AMNet's figure "reference only": it was measured on other attribute
# combinations than FLAM's three.
REFERENCE_ONLY = ('amnet',)
TABLE3 = {m.name: dict(m.flam_table3) for m in METHODS.values() if m.flam_table3}
PUBLISHED = {'flam_table3_shopping100k_top50': TABLE3, 'reference_only': list(REFERENCE_ONLY),
             'note': 'FLAM Table 3, Shopping100k T@50 per changed attribute and all; its '
                     'reference-only figures used other attribute combinations'}


def evaluate(runs: Sequence[TrainedRun], options: Options) -> Outcome:
  data = runs[0].data
  # Drawn from labels before any model runs: every run is scored on the same queries.
  test = make_flam_test(data.table, data.split, data.split_file, options.flam_images,
                        options.query_seed)
  results = [evaluate_flam(r, test, options.distance, options.backend) for r in runs]
  dataset = describe_dataset(data)
  settings = {**scoring_settings(runs, options), 'flam_images': options.flam_images,
              **test.record()}
  blob = results_json('flam', results, dataset, test.file, settings, PUBLISHED, FLAM_KS)
  text = format_flam_tables(results, dataset, test, options)
  percent = {s: {m: 100 * t[s] for m, t in TABLE3.items() if s in t} for s in SETTINGS}
  return Outcome(f'{text}\nQueries: {test.file}', blob,
                 lambda file: plot_top_k(file, results, dataset, percent, published_k=TABLE3_K),
                 '_topk.png', runs[0].workdir)


def evaluate_flam(run: TrainedRun, test: FlamTest, distance: str = 'euclidean',
                  backend: str = 'exact') -> RunResult:
  """A run's scores on FLAM's queries, one setting per changed attribute and `all` pooled; the
  gallery is the evaluation images (their rows of the run's test index)."""
  index = run.index('test')
  gallery = index.take(positions(index.rows, test.rows,
                                 os.path.join(run.workdir, index_file('test'))))
  encoder = run.encoder()
  # Named by the sample: a compact index of another sample is never reused.
  searcher = run.searcher(f'flam_{paths_digest(gallery.paths.tolist())[:12]}', gallery,
                          encoder.gallery(gallery), backend, distance)
  # The query's own image is in the gallery: it is left out of its results (it cannot hit, as
  # it differs on the changed attribute, and would take the first place of nearly every query).
  own = {name: np.searchsorted(test.rows, q.rows) for name, q in test.queries.items()}
  scores = {name: score_queries(searcher, gallery.take(own[name]), q, test.labels, encoder,
                                MAX_K, exclude=own[name])
            for name, q in test.queries.items()}
  scores['all'] = pooled(list(scores.values()))
  return result_of(run, scores)


def pooled(parts: Sequence[Scores], setting: str = 'all') -> Scores:
  """The queries of several settings on one gallery as one setting, in their order."""
  left_out: dict[str, int] = {}
  for part in parts:
    for reason, count in part.left_out.items():
      left_out[reason] = left_out.get(reason, 0) + count
  join = lambda name: np.concatenate([getattr(p, name) for p in parts])
  return Scores(setting, join('first_hit'),
                {n: np.concatenate([p.ndcg[n] for p in parts]) for n in parts[0].ndcg},
                sum((p.manipulated for p in parts), ()), join('unexpressed'), join('reachable'),
                parts[0].max_k, parts[0].gallery_size, left_out)


def _draw_lines(test: FlamTest, options: Options) -> list[str]:
  """What the protocol drew: images, classes, queries."""
  seed = options.query_seed
  lines = [f"FLAM protocol (FLAM §4): {len(test.rows)} evaluation images, the gallery and the "
           f"queries at once. Of the split's {test.test_images} test images, {test.labelled} are "
           f"labelled on {', '.join(map(display, NAMES))}; {test.within_top} of those have all "
           f'three among the top-{TOP_CLASSES} classes (counted over the {test.labelled}); at '
           f'most --flam_images={options.flam_images} of them sampled (seed {seed}).',
           'Top classes, most frequent first:']
  for name, classes in test.record()['top_classes'].items():
    lines.append(f'  {display(name)}: {", ".join(classes)}')
  counts = []
  for name, q in test.queries.items():
    left = q.left_out.get('no_target', 0)
    counts.append(f'{display(name)} {len(q)}' + (f' ({left} images left out)' if left else ''))
  total = sum(len(q) for q in test.queries.values())
  lines += [f'Queries: each evaluation image once per attribute, the wanted class drawn (seed '
            f"{seed}) among the attribute's other top classes that some evaluation image has "
            "with the image's two other labels (left out: no such class): "
            f'{", ".join(counts)}; {total} in all.',
            f'Hit: {HIT_RULE}. Distance: {options.distance} ({DISTANCE_NOTES[options.distance]}).',
            'Every rate: measured [95 % bootstrap interval over queries]; several seeds: mean '
            '± sd across seeds [interval of the seed-averaged hits].']
  return lines


def _published(c: Column, setting: str) -> str:
  value = METHODS[c.method].flam_table3.get(setting) if c.method in METHODS else None
  if value is None:
    return '(-)'
  return f'({value:.3f}{"*" if c.method in REFERENCE_ONLY else ""})'


def _unexpressed(c: Column, setting: str) -> str:
  """Queries whose change the column's runs dropped (one number when its runs agree)."""
  return '/'.join(str(n) for n in sorted({int(r.scores[setting].unexpressed.sum())
                                          for r in c.runs}))


def format_flam_tables(results: Sequence[RunResult], dataset: Dataset, test: FlamTest,
                       options: Options) -> str:
  """FLAM Table 3 (T@50 per changed attribute and all, published beside), then T@1..T@100 with
  the unexpressed queries per method and attribute."""
  cols = columns(results)
  first = results[0].scores
  out = [dataset.note()] if dataset.note() else []
  out += _draw_lines(test, options) + ['']
  source = 'FLAM Table 3, Shopping100k'
  if dataset.synthetic:
    source += '; NOT comparable: synthetic data'
  elif dataset.note():
    source += '; indicative: not the full Shopping100k'
  header = ['method'] + [display(s) if s in NAMES else 'all' for s in SETTINGS]
  rows = [[c.name] + [f'{measured(c.summary(s, f"top{TABLE3_K}"), 1, 3)} {_published(c, s)}'
                      for s in SETTINGS] for c in cols]
  out += [f'T@{TABLE3_K} (FLAM Table 3): measured [95 % interval] ({source}):',
          table(header, rows)]
  if any(c.method in REFERENCE_ONLY and TABLE3.get(c.method) for c in cols):
    out.append('* FLAM marks this figure "reference only": measured on other attribute '
               'combinations.')
  rows = [[c.name, display(s) if s in NAMES else 'all', str(len(first[s])), _unexpressed(c, s)]
          + [measured(c.summary(s, f'top{k}'), 1, 3) for k in FLAM_KS]
          for c in cols for s in SETTINGS]
  out += ['', "T@k by changed attribute (FLAM Table 4's k, and 50) [95 % interval]; unexpressed: "
          'queries whose change the method cannot make, searched with the image unchanged:',
          table(['method', 'attribute', 'queries', 'unexpressed'] + [f'T@{k}' for k in FLAM_KS],
                rows)]
  if len(test.rows) < MAX_K:
    out.append(f'The gallery has {len(test.rows)} images: from k = {len(test.rows)} on, T@k is '
               'whether any evaluation image is a hit.')
  for setting in SETTINGS:
    out += empty_note(setting, first[setting])
  return '\n'.join(out)
