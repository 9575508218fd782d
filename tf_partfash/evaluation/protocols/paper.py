"""The paper's retrieval protocol (§7; Fig. 6, Table 2): direct search, one and two manipulations.

Queries (`evaluation.queries`) are the split's query images with a label on every special
attribute, drawn once per split, hit rule and seed, and stored beside the split, so every method
is scored on the same queries. A query hits at k when one of its top-k gallery images has
exactly the wanted labels (`--hit_attributes`: the five special attributes, or all twelve). The
published top-20 of each method (`methods.METHODS`) is shown beside the measured one.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from tf_partfash.evaluation.metrics import NDCG_K
from tf_partfash.evaluation.queries import HIT_RULES, QuerySet, ensure_paper_queries
from tf_partfash.evaluation.reports import (DISTANCE_NOTES, Dataset, Outcome, SETTING_NAMES, cell,
                                            columns, describe_dataset, difference_cell, empty_note,
                                            left_out_lines, plot_top_k, proposed_column,
                                            results_json, scoring_settings, table)
from tf_partfash.evaluation.scoring import (PAPER_MAX_K, RunResult, TABLE2_K, paper_gallery,
                                            result_of, score_queries)
from tf_partfash.methods import METHODS, PROPOSED
from tf_partfash.protocols import Options
from tf_partfash.search.trained_run import TrainedRun

# The published top-20 of each method: Fig. 6 in % per setting, and Table 2 as a fraction per
# manipulated attribute.
PAPER_TOP20 = {setting: {m.name: m.paper_top20[setting] for m in METHODS.values()
                         if setting in m.paper_top20}
               for setting in ('direct', 'manipulate1')}
PAPER_TABLE2 = {attr: {m.name: m.paper_table2[attr] for m in METHODS.values()
                       if attr in m.paper_table2}
                for attr in METHODS[PROPOSED].paper_table2}
# results.json's record of them.
PUBLISHED = {'fig6_top20_percent': PAPER_TOP20, 'table2_top20': PAPER_TABLE2}
TABLE2_NAMES = {'pattern': 'Pattern', 'collar': 'Collar', 'fastening': 'Fastening',
                'sleevelen': 'Sleeve Length', 'color': 'Color'}


def evaluate(runs: Sequence[TrainedRun], options: Options) -> Outcome:
  data = runs[0].data
  query_sets, query_file = ensure_paper_queries(data.split_file, data.table, data.split,
                                                options.query_seed, options.hit_attributes)
  results = [evaluate_paper(r, query_sets, options.distance, options.backend) for r in runs]
  dataset = describe_dataset(data)
  settings = {**scoring_settings(runs, options), 'hit_attributes': options.hit_attributes,
              'hit_rule': HIT_RULES[options.hit_attributes]}
  blob = results_json('paper', results, dataset, query_file, settings, PUBLISHED)
  text = format_paper_tables(results, dataset, options.hit_attributes, options.distance)
  return Outcome(f'{text}\nQueries: {query_file}', blob,
                 lambda file: plot_top_k(file, results, dataset, PAPER_TOP20), '_topk.png',
                 runs[0].workdir)


def evaluate_paper(run: TrainedRun, queries: Mapping[str, QuerySet], distance: str = 'euclidean',
                   backend: str = 'exact') -> RunResult:
  """Scores a trained run on the paper protocol's stored queries (§7, Fig. 6, Table 2); a hit is
  judged on the queries' `attributes` (their hit rule)."""
  gallery = paper_gallery(run)
  encoder = run.encoder()
  searcher = run.searcher('paper_gallery', gallery.features, encoder.gallery(gallery.features),
                          backend, distance)
  scores = {name: score_queries(searcher, gallery.of(q.rows), q,
                                gallery.labels[:, gallery.columns(q)], encoder, PAPER_MAX_K)
            for name, q in queries.items()}
  return result_of(run, scores)


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
  out += left_out_lines(first) + ['']
  metric = f'top{TABLE2_K}'
  header = ['setting', 'queries'] + [c.name for c in cols]
  rows = [[SETTING_NAMES[s], str(len(q))] + [
      cell(c.summary(s, metric), PAPER_TOP20.get(s, {}).get(c.method), 100, 1) for c in cols]
      for s, q in first.items()]
  out += [f'Top-{TABLE2_K} retrieval accuracy in % (paper Fig. 6 / §7):', table(header, rows), '']
  proposed = proposed_column(cols)
  others = [c for c in cols if c is not proposed]
  if proposed is not None and others:
    rows = [[SETTING_NAMES[s], str(len(q))] + [difference_cell(c.minus(proposed, s, metric), 100,
                                                                1) for c in others]
            for s, q in first.items()]
    out += [f'Top-{TABLE2_K} minus {proposed.name}\'s, in points, paired bootstrap over the same '
            'queries [95 % interval]:', table(['setting', 'queries'] + [c.name for c in others],
                                                rows), '']
  rows = [[SETTING_NAMES[s], str(len(q))] + [
      cell(c.summary(s, f'ndcg@{NDCG_K}'), None, 1, 3) for c in cols] for s, q in first.items()]
  out += [f'NDCG@{NDCG_K} (AMNet §5.1; the paper reports none):', table(header, rows), '']
  names = np.asarray(first['manipulate1'].manipulated)
  rows = []
  for attr, published in PAPER_TABLE2.items():
    chosen = np.nonzero(names == attr)[0]
    rows.append([TABLE2_NAMES[attr], str(len(chosen))] + [
        cell(c.summary('manipulate1', metric, chosen), published.get(c.method), 1, 2)
        for c in cols])
  out += [f'Top-{TABLE2_K} accuracy per manipulated attribute (paper Table 2):',
          table(['attribute', 'queries'] + [c.name for c in cols], rows)]
  if proposed is not None and others:
    rows = []
    for attr in PAPER_TABLE2:
      chosen = np.nonzero(names == attr)[0]
      rows.append([TABLE2_NAMES[attr], str(len(chosen))] + [
          difference_cell(c.minus(proposed, 'manipulate1', metric, chosen), 1, 2)
          for c in others])
    out += ['', f'Per attribute, minus {proposed.name}\'s, paired over the same queries [95 % '
            'interval]:', table(['attribute', 'queries'] + [c.name for c in others], rows)]
  for setting, scores in first.items():
    out += empty_note(setting, scores)
  return '\n'.join(out)
