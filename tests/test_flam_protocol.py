"""FLAM's evaluation protocol (paper 003 §4, Tables 1 and 3): the classes and images kept, the
queries drawn, the hit rule, bad data, and evaluate.py --protocol=flam on the tiny run."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tf_partfash.attributes import ATTRIBUTE_NAMES
from tf_partfash.errors import UserError
from tf_partfash.evaluation.protocols.flam import pooled
from tf_partfash.evaluation.protocols.flam_queries import (check_classes, make_flam_test,
                                                           restrict_classes, top_classes)
from tf_partfash.evaluation.scoring import score_queries
from tf_partfash.protocols import Options
from tf_partfash.search.gallery import GalleryIndex

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_top_classes_are_the_most_frequent_then_the_lower_index():
  # Counts: class 1: 2, class 2: 1, class 3: 2. Classes 1 and 3 tie: the lower index first.
  assert top_classes(np.array([3, 3, 1, 1, 2]), 2).tolist() == [1, 3]
  assert top_classes(np.array([3, 3, 1, 1, 2]), 10).tolist() == [1, 3, 2]


def test_classes_are_counted_over_images_labelled_on_all_three_and_restrict_them():
  labels = np.array([  # (category, color, pattern)
      [0, 5, 1],    # 0
      [0, 5, 2],    # 1
      [1, 6, 1],    # 2
      [2, 5, 1],    # 3
      [1, -1, 1],   # 4 no color: neither counted nor kept
      [3, 7, 2],    # 5
      [1, 6, 3],    # 6
  ])
  kept, classes, labelled = restrict_classes(labels, top=2)
  # Counted over rows 0-3, 5, 6: category 0: 2, 1: 2 (row 4 would make it 3 and first), 2: 1,
  # 3: 1 -> [0, 1] (a tie: lower index first); color 5: 3, 6: 2, 7: 1 -> [5, 6]; pattern 1: 3,
  # 2: 2, 3: 1 -> [1, 2].
  assert [c.tolist() for c in classes] == [[0, 1], [5, 6], [1, 2]]
  assert labelled == 6
  # Row 3 (category 2), 5 (category 3, color 7) and 6 (pattern 3) fall outside the top two.
  assert kept.tolist() == [0, 1, 2]


def _table(labels, subsets):
  """A label table (category, color, pattern given, the rest missing) and its split."""
  rows = []
  for i, (category, color, pattern) in enumerate(labels):
    row = dict.fromkeys(ATTRIBUTE_NAMES, -1)
    row.update(category=category, color=color, pattern=pattern)
    rows.append({'path': f'Female/16_Dresses/{i}.jpg', **row})
  table = pd.DataFrame(rows, columns=['path', *ATTRIBUTE_NAMES])
  return table, pd.DataFrame({'path': table['path'], 'subset': subsets})


# Category 3 Shirt, 4 T-shirt; color 1 Black, 5 Navy; pattern 12 Plain, 15 Striped.
HAND_MADE = _table(
    [(0, 1, 12), (3, 1, 12), (3, 5, 12), (4, 1, 12), (4, 1, 15), (3, 1, 15), (3, -1, 12),
     (4, 5, 12)],
    ['train', 'gallery', 'gallery', 'gallery', 'query', 'gallery', 'query', 'gallery'])


def test_hand_made_queries_and_the_images_left_out(tmp_path):
  table, split = HAND_MADE
  test = make_flam_test(table, split, str(tmp_path / 'split.csv'), limit=100, seed=0)
  # Row 0 is a training image, row 6 has no color: the evaluation images are rows 1-5, 7,
  # positions p0..p5 = (3,1,12) (3,5,12) (4,1,12) (4,1,15) (3,1,15) (4,5,12).
  assert test.rows.tolist() == [1, 2, 3, 4, 5, 7]
  assert (test.test_images, test.labelled, test.within_top) == (7, 6, 6)
  # Two classes each: the other one is wanted, when some image has the combination.
  shape = test.queries['shape']
  assert shape.rows.tolist() == [1, 2, 3, 4, 5, 7]  # every swap of Shirt/T-shirt exists
  assert shape.changes == ({'category': 4}, {'category': 4}, {'category': 3}, {'category': 3},
                           {'category': 4}, {'category': 3})
  color = test.queries['color']
  # p3 (4,1,15) -> (4,5,15) and p4 (3,1,15) -> (3,5,15): nobody is a striped navy: left out.
  assert color.rows.tolist() == [1, 2, 3, 7]
  assert color.targets.tolist() == [[3, 5, 12], [3, 1, 12], [4, 5, 12], [4, 1, 12]]
  assert color.left_out == {'no_target': 2}
  # p1 (3,5,12) and p5 (4,5,12) would need a striped navy too.
  assert test.queries['pattern'].rows.tolist() == [1, 3, 4, 5]
  record = test.record()
  assert record['top_classes'] == {'shape': ['Shirt', 'T-shirt'], 'color': ['Black', 'Navy'],
                                   'pattern': ['Plain', 'Striped']}
  assert record['queries'] == {'shape': 6, 'color': 4, 'pattern': 4}
  stored = json.loads(open(test.file).read())
  assert test.file == str(tmp_path / 'split.queries_flam_seed0_images100.json')
  assert stored['settings']['color'][0] == {'path': 'Female/16_Dresses/1.jpg',
                                            'changes': {'color': 5}, 'target': [3, 5, 12]}


class _Encoder:
  """Keeps every change; the vectors do not matter to a searcher that ignores them."""

  def expressible(self, changes):
    return list(changes), np.zeros(len(changes), bool)

  def queries(self, index, changes):
    return np.zeros((len(changes), 1, 1), np.float32)


class _Searcher:
  """Returns one hand-made ranking of the gallery for every query."""

  def __init__(self, ranking):
    self.ranking = np.asarray(ranking)

  def search(self, vectors, depth):
    ranked = np.tile(self.ranking[:depth], (len(vectors), 1))
    return ranked, np.zeros(ranked.shape, np.float32)


def _index(n):
  return GalleryIndex(np.zeros((n, 1, 1), np.float32), {}, np.full((n, 12), -1),
                      np.array([''] * n), np.arange(n), '')


def test_a_hit_has_the_wanted_combination_and_the_query_itself_never_hits(tmp_path):
  table, split = HAND_MADE
  test = make_flam_test(table, split, str(tmp_path / 'split.csv'), limit=100, seed=0)
  # Every query gets the ranking p2 (4,1,12), p0 (3,1,12), p1 (3,5,12), p5 (4,5,12),
  # p3 (4,1,15), p4 (3,1,15).
  searcher = _Searcher([2, 0, 1, 5, 3, 4])
  color = test.queries['color']
  # Queries p0, p1, p2, p5 want (3,5,12) = p1 at rank 2, (3,1,12) = p0 at rank 1,
  # (4,5,12) = p5 at rank 3 (p2 itself, ranked first, is black: not a hit), (4,1,12) = p2 at 0.
  scores = score_queries(searcher, _index(len(color)), color, test.labels, _Encoder(), 100)
  assert scores.first_hit.tolist() == [2, 1, 3, 0]
  assert scores.hits(1).tolist() == [0, 0, 0, 1] and scores.hits(5).tolist() == [1, 1, 1, 1]
  # As the protocol scores them, each query's own image (gallery positions 0, 1, 2, 5) left out:
  # p0 sees p2 p1 p5 p3 p4 (p1 at 1); p1 sees p2 p0 ... (p0 at 1); p2 sees p0 p1 p5 (p5 at 2);
  # p5 sees p2 first.
  own = score_queries(searcher, _index(len(color)), color, test.labels, _Encoder(), 100,
                      exclude=np.array([0, 1, 2, 5]))
  assert own.first_hit.tolist() == [1, 1, 2, 0]
  shape = test.queries['shape']
  # p0 wants (4,1,12) = p2: rank 0; p1 (4,5,12) = p5: 3; p2 (3,1,12) = p0: 1;
  # p3 (3,1,15) = p4: 5; p4 (4,1,15) = p3: 4; p5 (3,5,12) = p1: 2.
  shape_scores = score_queries(searcher, _index(len(shape)), shape, test.labels, _Encoder(), 100)
  assert shape_scores.first_hit.tolist() == [0, 3, 1, 5, 4, 2]
  assert shape_scores.hits(5).tolist() == [1, 1, 1, 0, 1, 1]
  # 'all' pools the attributes' queries: T@5 = 9 / 10.
  both = pooled([scores, shape_scores])
  assert len(both) == 10 and both.hits(5).mean() == pytest.approx(0.9)
  assert both.left_out == {'no_target': 2}
  assert both.manipulated == ('color',) * 4 + ('category',) * 6


def test_the_tables_and_results_json_of_hand_made_scores(tmp_path):
  from tf_partfash.evaluation.protocols.flam import PUBLISHED, format_flam_tables
  from tf_partfash.evaluation.reports import Dataset, results_json
  from tf_partfash.evaluation.scoring import RunResult
  table, split = HAND_MADE
  test = make_flam_test(table, split, str(tmp_path / 'split.csv'), limit=100, seed=0)
  searcher = _Searcher([2, 0, 1, 5, 3, 4])
  scores = {n: score_queries(searcher, _index(len(q)), q, test.labels, _Encoder(), 100)
            for n, q in test.queries.items()}
  scores['all'] = pooled(list(scores.values()))
  run = RunResult('runs/amnet', 'amnet', scores)
  shopping100k = Dataset('/data/shopping100k', 101021, False)
  text = format_flam_tables([run], shopping100k, test, Options())
  # AMNet has FLAM's 'all' figure only, marked reference only; T@50 here is 1 (6 images).
  assert 'AMNet' in text and '1.000 [1.000, 1.000] (0.711*)' in text
  assert 'FLAM marks this figure "reference only"' in text and 'NOT comparable' not in text
  blob = results_json('flam', [run], shopping100k, test.file, {}, PUBLISHED, (1, 5, 20, 50, 100))
  color = blob['runs'][0]['settings']['color']
  assert (color['top1'], color['top5'], color['top50']) == (0.25, 1.0, 1.0)  # first hits 2,1,3,0
  assert color['top1_ci95'][0] <= 0.25 <= color['top1_ci95'][1]
  assert blob['methods'][0]['settings']['all']['top50']['mean'] == 1.0


def test_the_draw_is_seeded_and_asks_for_another_top_class_that_exists(tmp_path):
  # Skewed classes, as a shop's are: most images in a few classes, a long tail beyond ten.
  rng = np.random.default_rng(7)
  labels = np.minimum(rng.geometric(0.3, (600, 3)) - 1, [15, 18, 15])
  labels[::9, 1] = -1
  table, split = _table(labels.tolist(), ['gallery', 'query', 'train', 'gallery'] * 150)
  first = make_flam_test(table, split, str(tmp_path / 'a.csv'), limit=250, seed=3)
  again = make_flam_test(table, split, str(tmp_path / 'b.csv'), limit=250, seed=3)
  other = make_flam_test(table, split, str(tmp_path / 'c.csv'), limit=250, seed=4)
  assert len(first.rows) == 250 and not np.array_equal(first.rows, other.rows)
  existing = {tuple(t) for t in first.labels.tolist()}
  for a, name in enumerate(('shape', 'color', 'pattern')):
    q, same = first.queries[name], again.queries[name]
    assert q.changes == same.changes and np.array_equal(q.rows, same.rows)
    assert len(q) > 0 and len(q) + q.left_out['no_target'] == 250
    own = first.labels[np.searchsorted(first.rows, q.rows)]
    wanted = q.targets[:, a]
    assert (wanted != own[:, a]).all() and np.isin(wanted, first.classes[a]).all()
    assert all(tuple(t) in existing for t in q.targets.tolist())
    assert (np.delete(q.targets, a, axis=1) == np.delete(own, a, axis=1)).all()
  # Every evaluation image is labelled on all three, within the ten most frequent classes.
  assert all(np.isin(first.labels[:, a], first.classes[a]).all() for a in range(3))
  assert [len(c) for c in first.classes] == [10, 10, 10]


def test_too_few_classes_or_no_labelled_image_is_one_line():
  with pytest.raises(UserError, match=r'^FLAM protocol: pattern has 1 class among the 3 '
                     r'evaluation images \(Plain\); changing it needs at least 2$'):
    check_classes(np.array([[3, 1, 12], [4, 5, 12], [4, 1, 12]]))
  with pytest.raises(UserError, match=r'^none of the 2 test images is labelled on all of shape '
                     r'\(category\), color, pattern'):
    restrict_classes(np.array([[3, -1, 12], [-1, 5, 12]]))
  table, split = HAND_MADE
  with pytest.raises(UserError, match=r'shape \(category\) has 1 class among the 1 evaluation'):
    make_flam_test(table, split, 'split.csv', limit=1, seed=0)
  with pytest.raises(UserError, match='flam_images=0: give at least 1'):
    Options(flam_images=0)


def test_evaluate_cli_on_the_tiny_run(untrained_run, tmp_path):
  output = tmp_path / 'results_flam.json'
  result = subprocess.run([sys.executable, 'evaluate.py', f'--workdir={untrained_run.workdir}',
                           '--protocol=flam', f'--output_json={output}'], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  print(result.stdout)
  blob = json.loads(output.read_text())
  assert blob['protocol'] == 'flam' and blob['comparable_to_published'] is False
  run = blob['runs'][0]['settings']
  assert set(run) == {'shape', 'color', 'pattern', 'all'}
  assert 0 <= run['all']['top50'] <= 1
  assert run['all']['top50_ci95'][0] <= run['all']['top50'] <= run['all']['top50_ci95'][1]
  assert run['all']['queries'] == sum(blob['queries'].values())
  assert blob['evaluation_images'] == 14 and set(blob['top_classes']) == set(run) - {'all'}
  assert blob['published']['flam_table3_shopping100k_top50']['flam']['all'] == 0.691
  assert 'NOT comparable: synthetic data' in result.stdout
  assert (tmp_path / 'results_flam_topk.png').exists()
  refused = subprocess.run([sys.executable, 'evaluate.py', f'--workdir={untrained_run.workdir}',
                            '--flam_images=10'], cwd=ROOT, capture_output=True, text=True,
                           timeout=120)
  assert refused.stderr.strip().splitlines()[-1] == (
      'evaluate.py: error: --flam_images is for --protocol=flam')
  # One evaluation image has one class of everything: a one-line error, no traceback.
  single = subprocess.run([sys.executable, 'evaluate.py', f'--workdir={untrained_run.workdir}',
                           '--protocol=flam', '--flam_images=1', f'--output_json={output}.1'],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert single.returncode == 1 and 'Traceback' not in single.stderr
  assert single.stderr.strip().splitlines()[-1].startswith(
      'evaluate.py: error: FLAM protocol: shape (category) has 1 class among the 1 evaluation '
      'images (')


def test_a_change_of_category_is_unexpressed_for_the_paper_method(untrained_run, tmp_path):
  """On the tiny set no category swap exists among the evaluation images (no shape query
  above): here every image asks for the other category, to see how the method takes it."""
  import dataclasses

  from tf_partfash.evaluation.protocols.flam import evaluate_flam
  from tf_partfash.evaluation.queries import QuerySet
  from tf_partfash.search.trained_run import TrainedRun
  data = untrained_run.data
  test = make_flam_test(data.table, data.split, str(tmp_path / 'split.csv'), 2000, 0)
  swapped = test.labels.copy()
  categories = test.classes[0][:2]
  swapped[:, 0] = np.where(swapped[:, 0] == categories[0], categories[1], categories[0])
  shape = QuerySet('shape', test.rows, tuple({'category': int(v)} for v in swapped[:, 0]),
                   swapped, test.queries['shape'].attributes)
  test = dataclasses.replace(test, queries={**test.queries, 'shape': shape})
  result = evaluate_flam(TrainedRun.open(untrained_run.workdir, data=data, progress=False), test)
  # The paper's method has no category signature: every shape change is searched unmanipulated.
  assert result.scores['shape'].unexpressed.all() and len(result.scores['shape']) == 14
  assert len(result.scores['all']) == 14 + len(test.queries['color']) + len(
      test.queries['pattern'])
