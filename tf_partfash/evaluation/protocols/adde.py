"""ADDE's public protocol on Shopping100k (Hou et al., ICCV 2021; `../shared/shopping100k`):
its test list, queries and exact 151-dim hits, beside its Table 1.

The gallery is all test images, the reference included; a hit needs the whole 151-dim label
vector of the target, missing blocks included. In label indices that is equality on all 12
columns, -1 (an all-zero block) equal to -1. By construction the reference differs from its
target in the manipulated attribute, so it never counts as a hit although it is in the gallery.
The files are ADDE's own (`--adde_dir`), or written by ADDE's rule (`data.adde`) with the split's
query images first, so they are the references, then its gallery images. NDCG is ADDE's own
definition (`metrics.adde_ndcg`).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import numpy as np
import pandas as pd

from tf_partfash.attributes import ATTRIBUTE_NAMES, SPECIAL_ATTRIBUTES, decode
from tf_partfash.data import adde
from tf_partfash.data.shopping100k import labels_of
from tf_partfash.errors import UserError
from tf_partfash.evaluation.metrics import NDCG_K
from tf_partfash.evaluation.queries import QuerySet, paths_digest
from tf_partfash.evaluation.reports import (Dataset, Outcome, columns, describe_dataset, empty_note,
                                            measured, plot_top_k, results_json, scoring_settings,
                                            table)
from tf_partfash.evaluation.scoring import RunResult, TABLE2_K, positions, result_of, score_queries
from tf_partfash.protocols import Options
from tf_partfash.search.trained_run import TrainedRun
from tf_partfash.storage.workdir import index_file

ADDE_MAX_K = 50    # ADDE's Table 1 reports up to top-50
ADDE_KS = (10, 20, 30, 50)
# ADDE's Table 1 on Shopping100k: top-k accuracy in % by k.
ADDE_TABLE1 = {'AMNet': {20: 36.13}, 'FashionSearchNet': {20: 47.44},
               'ADDE-M': {10: 41.17, 20: 52.93, 30: 59.81, 50: 67.29}}


def evaluate(runs: Sequence[TrainedRun], options: Options) -> Outcome:
  data = runs[0].data
  test = ensure_adde_test(data.table, data.split, data.split_file, options.adde_dir)
  results = [evaluate_adde(r, test, options.distance, options.backend) for r in runs]
  dataset = describe_dataset(data)
  blob = results_json('adde', results, dataset, test.directory,
                      {**scoring_settings(runs, options),
                       'hit_rule': 'the whole 151-dim label vector of the target (ADDE)'},
                      {'adde_table1_percent': ADDE_TABLE1})
  text = '\n'.join(test.notes + (format_adde_table(results, dataset, options.distance),
                                  f'Queries: {test.directory}'))
  curves = {f'{method} (ADDE Table 1)': points for method, points in ADDE_TABLE1.items()}
  return Outcome(text, blob, lambda file: plot_top_k(file, results, dataset,
                                                     published_curves=curves),
                 '_topk.png', runs[0].workdir)


def adde_query_set(queries: adde.AddeQueries) -> QuerySet:
  """ADDE's queries as a `QuerySet` over all 12 attributes (rows index the test images)."""
  attrs, values = queries.manipulations()
  changes = tuple({ATTRIBUTE_NAMES[a]: int(v)} for a, v in zip(attrs, values))
  return QuerySet('adde', queries.ref.astype(np.int64), changes, decode(queries.target),
                  ATTRIBUTE_NAMES)


@dataclasses.dataclass(frozen=True)
class AddeTest:
  """The test images of the ADDE protocol (gallery = all of them) and its queries."""
  directory: str        # where the ADDE files are
  rows: np.ndarray      # (N,) table rows of `imgs_test.txt`, in its order
  labels: np.ndarray    # (N, 12) the labels a hit is judged on (`labels_test.txt` when present)
  queries: QuerySet
  notes: tuple[str, ...] = ()  # disagreements with the user's files worth printing


def _write_missing_adde_files(directory: str, paths: Sequence[str], labels: np.ndarray,
                              num_references: int) -> None:
  """Writes the test list, its labels and ADDE's queries by ADDE's rule, unless already there."""
  images = adde.images_file(directory, 'test')
  if os.path.exists(images):
    if adde.read_image_list(images) != list(paths):
      raise UserError(f'{images} lists other test images than this split has; delete '
                      f'{directory} to write the ADDE files again')
  else:
    adde.write_attr_num(os.path.join(directory, adde.ATTR_NUM_FILE))
    adde.write_labels(adde.labels_file(directory, 'test'), labels)
    adde.write_image_list(images, paths)  # last: its presence means the lists are complete
  names = (adde.REFERENCE_FILE, adde.INDICATOR_FILE, adde.TARGET_FILE)
  if not all(os.path.exists(os.path.join(directory, n)) for n in names):
    adde.write_adde_queries(directory, adde.make_adde_queries(labels, num_references))


def _has_queries(directory: str) -> bool:
  return all(os.path.exists(os.path.join(directory, n))
             for n in (adde.INDICATOR_FILE, adde.TARGET_FILE))


def ensure_adde_test(table: pd.DataFrame, split: pd.DataFrame, split_file: str,
                     adde_dir: str | None = None) -> AddeTest:
  """The ADDE protocol's test images, labels and queries.

  Without `adde_dir` the test images are the split's query images (first: ADDE draws references
  from the first test images) then its gallery images, and the files are written by ADDE's rule
  into `<split file stem>_adde/` beside the split. With `adde_dir` (ADDE's release) its
  `imgs_test.txt` names the test images, which must be in the dataset; its `labels_test.txt`,
  `indfull_test.txt` and `gt_test.txt` are used when present. Without the last two, the queries are
  built by ADDE's rule into `adde_<digest of the list>/` beside the split, and the references are
  compared with the release's `ref_test.txt` when there is one.
  """
  all_labels = labels_of(table)
  notes = []
  if adde_dir is None:
    subset = split['subset'].to_numpy()
    rows = np.concatenate([np.nonzero(subset == 'query')[0], np.nonzero(subset == 'gallery')[0]])
    directory = f'{os.path.splitext(split_file)[0]}_adde'
    _write_missing_adde_files(directory, table['path'].to_numpy()[rows].tolist(),
                              all_labels[rows], int((subset == 'query').sum()))
  else:
    attr_num = os.path.join(adde_dir, adde.ATTR_NUM_FILE)
    if os.path.exists(attr_num):  # the release's vocabulary sizes are this dataset's
      adde.read_attr_num(attr_num)
    images = adde.images_file(adde_dir, 'test')
    paths = adde.read_image_list(images)
    row_of = {p: i for i, p in enumerate(table['path'])}
    for line, path in enumerate(paths, start=1):
      if path not in row_of:
        raise UserError(f'{images}:{line}: image {path!r} is not in the dataset')
    rows = np.asarray([row_of[p] for p in paths], np.int64)
    directory = adde_dir
    if not _has_queries(adde_dir):
      directory = os.path.join(os.path.dirname(split_file), f'adde_{paths_digest(paths)[:12]}')
      _write_missing_adde_files(directory, paths, all_labels[rows], adde.NUM_REFERENCES)
      given = os.path.join(adde_dir, adde.REFERENCE_FILE)
      if os.path.exists(given):
        ours = adde.read_references(os.path.join(directory, adde.REFERENCE_FILE))
        theirs = adde.read_references(given, len(paths))
        if not np.array_equal(ours, theirs):
          notes.append(f"{given}: {len(theirs)} queries, ADDE's rule on this dataset's labels "
                       f"gives {len(ours)} (labels differ from ADDE's); scored on the latter")
  labels_file = adde.labels_file(directory, 'test')
  labels = adde.read_labels(labels_file) if os.path.exists(labels_file) else all_labels[rows]
  if len(labels) != len(rows):
    raise UserError(f'{labels_file} has {len(labels)} label lines for {len(rows)} test images')
  queries = adde_query_set(adde.read_adde_queries(directory, len(rows)))
  return AddeTest(directory, rows, labels, queries, tuple(notes))


def evaluate_adde(run: TrainedRun, test: AddeTest, distance: str = 'euclidean',
                  backend: str = 'exact') -> RunResult:
  """Scores a trained run on ADDE's queries: gallery = all test images, exact 151-dim hits."""
  own_split = np.array_equal(np.sort(test.rows), run.data.rows('gallery', 'query'))
  name = 'test' if own_split else 'adde'
  index = run.index(name, rows=None if own_split else test.rows)
  encoder = run.encoder()
  test_index = index.take(positions(index.rows, test.rows,
                                    os.path.join(run.workdir, index_file(name))))
  searcher = run.searcher(f'adde_{name}', test_index, encoder.gallery(test_index), backend,
                          distance)
  scores = score_queries(searcher, test_index.take(test.queries.rows), test.queries, test.labels,
                         encoder, ADDE_MAX_K, ndcg_definition='adde')
  return result_of(run, {'adde': scores})


def format_adde_table(results: Sequence[RunResult], dataset: Dataset, distance: str) -> str:
  """ADDE's Table 1 rows (top-10/20/30/50 in %) under the measured ones, ADDE's NDCG, then per
  attribute; measured values with their 95 % interval over queries."""
  out = [dataset.note()] if dataset.note() else []
  cols = columns(results)
  scores = results[0].scores['adde']
  special = np.nonzero([bool(m) and all(a in SPECIAL_ATTRIBUTES for a in m.split('+'))
                        for m in scores.manipulated])[0]
  rows = []
  for c in cols:
    rows.append([f'{c.name} (measured)'] + [measured(c.summary('adde', f'top{k}'), 100, 2)
                                            for k in ADDE_KS])
    rows.append([f'{c.name}, special-attribute queries'] + [
        measured(c.summary('adde', f'top{k}', special), 100, 2) for k in ADDE_KS])
  for method, published in ADDE_TABLE1.items():
    rows.append([f'{method} (ADDE Table 1)'] + [f'{published[k]:.2f}' if k in published else '-'
                                               for k in ADDE_KS])
  out += [f'ADDE protocol, queries: {len(scores)} ({len(special)} on special attributes); '
          f'gallery: all {scores.gallery_size} test images, references included; distance: '
          f'{distance}. Top-k accuracy in % [95 % interval over queries]:',
          table(['method'] + [f'top-{k}' for k in ADDE_KS], rows), '']
  metrics = [f'adde_{n}@{NDCG_K}' for n in ('ndcg', 'ndcg_target', 'ndcg_others')]
  rows = [[c.name] + [measured(c.summary('adde', m), 1, 3) for m in metrics] for c in cols]
  out += [f"NDCG by ADDE's definition (its src/eval.py: DCG over the top {NDCG_K} normalised by "
          'an all-relevant list; target: the manipulated attribute, others: the other 11):',
          table(['method'] + [f'NDCG@{NDCG_K}', f'NDCG_target@{NDCG_K}',
                               f'NDCG_others@{NDCG_K}'], rows), '']
  names = np.asarray(scores.manipulated)
  rows = []
  for attr in sorted(set(scores.manipulated) - {''}):
    chosen = np.nonzero(names == attr)[0]
    rows.append([attr, str(len(chosen))] + [
        measured(c.summary('adde', f'top{TABLE2_K}', chosen), 1, 2) for c in cols])
  out += [f'Top-{TABLE2_K} accuracy per manipulated attribute:',
          table(['attribute', 'queries'] + [c.name for c in cols], rows)]
  out += empty_note('adde', scores)
  unexpressed = int(scores.unexpressed.sum())
  if unexpressed:
    out.append(f'{unexpressed} queries change a general attribute or a value unseen in training: '
               'the network has no prototype for it and searches with the reference signature.')
  return '\n'.join(out)
