"""Tables beside the published numbers, results.json and the Fig. 6 plot, from hand-made scores."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tf_partfash.evaluation import intervals
from tf_partfash.evaluation.protocols.adde import format_adde_table
from tf_partfash.evaluation.protocols.paper import PAPER_TOP20, PUBLISHED, format_paper_tables
from tf_partfash.evaluation.reports import Dataset, columns, plot_top_k, results_json, write_json
from tf_partfash.evaluation.scoring import RunResult, Scores
from tf_partfash.synthetic.dataset import MARKER_FILE, is_synthetic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHOPPING100K = Dataset('/data/Shopping100k', 101021, synthetic=False)
SYNTHETIC = Dataset('data/synthetic', 300, synthetic=True)


def _scores(setting: str, first_hit: list[int], manipulated: list[str], max_k: int = 30,
            ndcg: float = 0.5, left_out: dict | None = None) -> Scores:
  n = len(first_hit)
  name = 'adde_ndcg@20' if setting == 'adde' else 'ndcg@20'
  return Scores(setting, np.asarray(first_hit, np.int64), {name: np.full(n, ndcg)},
                tuple(manipulated), np.zeros(n, bool), np.ones(n, bool), max_k, 100,
                left_out or {})


def _paper_run(method: str, workdir: str, hits_under_20: int, seed: int = 0,
               variant: str | None = None) -> RunResult:
  """Ten queries per setting; the first `hits_under_20` hit at rank 5, the rest never."""
  first = [5] * hits_under_20 + [30] * (10 - hits_under_20)
  attrs = ['collar'] * 4 + ['color'] * 6
  left = {'unlabelled': 3, 'no_target': 2}
  return RunResult(workdir, method, {
      'direct': _scores('direct', first, [''] * 10, left_out=left),
      'manipulate1': _scores('manipulate1', first, attrs),
      'manipulate2': _scores('manipulate2', first, ['collar+color'] * 10)}, seed, variant)


def _cells(line: str) -> list[str]:
  return [c.strip() for c in line.split('  ') if c.strip()]


def _interval_text(hits: int, n: int = 10, scale: float = 100, digits: int = 1) -> str:
  low, high = intervals.interval(np.r_[np.ones(hits), np.zeros(n - hits)])
  return f'[{scale * low:.{digits}f}, {scale * high:.{digits}f}]'


def test_paper_tables_show_measured_interval_and_published():
  runs = [_paper_run('no_parts', 'runs/a', 3), _paper_run('partnet', 'runs/b', 7)]
  text = format_paper_tables(runs, SHOPPING100K, 'special', 'euclidean')
  lines = text.splitlines()
  assert lines[0].startswith('Hit rule (--hit_attributes=special): a retrieved image is a hit '
                             'when it has exactly the wanted labels on the five special')
  assert lines[1].startswith('Distance: euclidean (Eq. 4 as written')
  assert '  direct: 10 queries; left out: 3 no label on some special attribute' in text
  assert '2 no gallery image can be a hit' in text
  header = next(l for l in lines if l.startswith('setting'))
  assert _cells(header) == ['setting', 'queries', 'w/o Parts', 'Proposed']
  direct = next(l for l in lines if l.startswith('direct'))
  # 3 and 7 of 10 hits within the top 20; the paper states only the proposed direct figure.
  assert _cells(direct) == ['direct', '10', f'30.0 {_interval_text(3)} (-)',
                            f'70.0 {_interval_text(7)} (56.5)']
  low, high = intervals.interval(np.r_[np.ones(3), np.zeros(7)])
  assert 0 <= low < 0.3 < high <= 1
  manipulation = next(l for l in lines if l.startswith('1 manipulation'))
  assert _cells(manipulation)[2:] == [f'30.0 {_interval_text(3)} (45.6)',
                                      f'70.0 {_interval_text(7)} (53.1)']
  # Paired difference from Proposed: -1 on queries 4-7, 0 elsewhere: -40 points.
  low, high = intervals.interval(np.r_[np.zeros(3), -np.ones(4), np.zeros(3)])
  difference = [l for l in lines if l.startswith('1 manipulation')][1]
  assert _cells(difference) == ['1 manipulation', '10',
                                f'-40.0 [{100 * low:+.1f}, {100 * high:+.1f}]']
  # Table 2: collar queries are the first four, all hits for 7 > 4; color: 3 - 4 = none of six
  # for w/o Parts, 3 of 6 for Proposed.
  collar = next(l for l in lines if l.startswith('Collar'))
  assert _cells(collar) == ['Collar', '4', '0.75 ' + _interval_text(3, 4, 1, 2) + ' (0.51)',
                            '1.00 [1.00, 1.00] (0.60)']
  color = next(l for l in lines if l.startswith('Color'))
  assert _cells(color) == ['Color', '6', '0.00 [0.00, 0.00] (0.67)',
                           '0.50 ' + _interval_text(3, 6, 1, 2) + ' (0.72)']
  pattern = next(l for l in lines if l.startswith('Pattern'))
  assert _cells(pattern) == ['Pattern', '0', '- (0.48)', '- (0.54)']  # no such queries
  # Per attribute, paired: collar (queries 0-3) -1 on query 3; color (4-9) -1 on queries 4-6.
  low, high = intervals.interval(np.r_[np.zeros(3), -np.ones(1)])
  collar = [l for l in lines if l.startswith('Collar')][1]
  assert _cells(collar) == ['Collar', '4', f'-0.25 [{low:+.2f}, {high:+.2f}]']
  low, high = intervals.interval(np.r_[-np.ones(3), np.zeros(3)])
  color = [l for l in lines if l.startswith('Color')][1]
  assert _cells(color) == ['Color', '6', f'-0.50 [{low:+.2f}, {high:+.2f}]']
  assert 'not comparable' not in text


def test_seeds_of_one_method_are_one_column():
  runs = [_paper_run('partnet', 'runs/p0', 6, seed=0, variant='v1'),
          _paper_run('partnet', 'runs/p1', 8, seed=1, variant='v1'),
          _paper_run('classic', 'runs/c', 3, variant='v2')]
  cols = columns(runs)
  assert [c.name for c in cols] == ['Proposed (2 seeds)', 'Classic']
  summary = cols[0].summary('manipulate1', 'top20')
  # Rates 0.6 and 0.8: mean 0.7, sd 0.1414 (n - 1); the interval resamples the seed-averaged
  # per-query hits (1 x 6, 0.5 x 2, 0 x 2).
  assert summary['mean'] == pytest.approx(0.7) and summary['sd'] == pytest.approx(0.141421, abs=1e-6)
  assert summary['ci95'] == list(intervals.interval(np.r_[np.ones(6), [0.5, 0.5], np.zeros(2)]))
  text = format_paper_tables(runs, SYNTHETIC, 'special', 'euclidean')
  assert '70.0 ± 14.1 [' in text
  # Classic minus Proposed, per query: 0 x 3, -1 x 3, -0.5 x 2, 0 x 2: -40 points.
  assert cols[1].minus(cols[0], 'manipulate1', 'top20')['mean'] == pytest.approx(-0.4)


def test_synthetic_data_is_announced_above_the_tables():
  text = format_paper_tables([_paper_run('partnet', 'runs/a', 5)], SYNTHETIC, 'all', 'squared')
  assert text.splitlines()[0].startswith('Data: synthetic images (data/synthetic, 300 images), '
                                         'not Shopping100k')
  assert 'only the ordering of methods is' in text.splitlines()[0]


def test_a_synthetic_dataset_is_known_by_its_marker(tmp_path):
  assert not is_synthetic(str(tmp_path))
  (tmp_path / MARKER_FILE).write_text('{}')
  assert is_synthetic(str(tmp_path))
  assert Dataset(str(tmp_path), 5000, False).note().startswith('Data: 5000 images')


def test_column_names_tell_repeated_methods_apart():
  runs = [_paper_run('partnet', 'runs/seed0/', 1), _paper_run('partnet', 'runs/seed1', 1),
          _paper_run('classic', 'runs/c', 1)]
  assert [c.name for c in columns(runs)] == ['Proposed [seed0]', 'Proposed [seed1]', 'Classic']


def test_adde_table_and_empty_settings():
  # Four queries, hits at ranks 9, 19, 29, never: top-10/20/30/50 = 25, 50, 75, 75 %.
  scores = _scores('adde', [9, 19, 29, 50], ['color', 'color', 'category', 'category'], max_k=50,
                   ndcg=0.25)
  for name in ('adde_ndcg_target@20', 'adde_ndcg_others@20'):
    scores.ndcg[name] = np.full(4, 0.75)
  text = format_adde_table([RunResult('runs/a', 'partnet', {'adde': scores})], SHOPPING100K,
                           'euclidean')
  rows = {_cells(l)[0]: _cells(l)[1:] for l in text.splitlines() if '  ' in l}
  assert [c.split(' [')[0] for c in rows['Proposed (measured)']] == ['25.00', '50.00', '75.00',
                                                                      '75.00']
  assert rows['Proposed (measured)'][1] == '50.00 ' + _interval_text(2, 4, 100, 2)
  assert [c.split(' [')[0] for c in rows['Proposed, special-attribute queries']] == [
      '50.00', '100.00', '100.00', '100.00']
  assert rows['ADDE-M (ADDE Table 1)'] == ['41.17', '52.93', '59.81', '67.29']
  assert 'queries: 4 (2 on special attributes)' in text
  assert "NDCG by ADDE's definition" in text
  assert rows['Proposed'] == ['0.250 [0.250, 0.250]', '0.750 [0.750, 0.750]',
                              '0.750 [0.750, 0.750]']
  empty = _scores('adde', [], [], max_k=50)
  for name in ('adde_ndcg_target@20', 'adde_ndcg_others@20'):
    empty.ndcg[name] = np.zeros(0)
  text = format_adde_table([RunResult('runs/a', 'partnet', {'adde': empty})], SYNTHETIC,
                           'euclidean')
  assert 'ADDE manipulation: no queries' in text


def test_results_json_and_plot(tmp_path):
  runs = [_paper_run('no_parts', 'runs/a', 3), _paper_run('partnet', 'runs/b', 7)]
  blob = results_json('paper', runs, SYNTHETIC, '/data/paper_queries_split0_seed0.json',
                      {'distance': 'squared', 'hit_attributes': 'special'}, PUBLISHED)
  file = str(tmp_path / 'results.json')
  write_json(file, blob)
  with open(file) as f:
    stored = json.load(f)
  assert stored['protocol'] == 'paper' and stored['distance'] == 'squared'
  assert stored['query_file'] == '/data/paper_queries_split0_seed0.json'
  assert stored['comparable_to_published'] is False
  proposed = stored['runs'][1]
  assert proposed['method'] == 'partnet' and proposed['name'] == 'Proposed'
  manipulation = proposed['settings']['manipulate1']
  assert manipulation['queries'] == 10 and manipulation['top20'] == pytest.approx(0.7)
  # Ranks 5 (7 queries) and never: top-k is 0 up to k = 5, then 0.7.
  assert manipulation['top_k'][:7] == [0, 0, 0, 0, 0, 0.7, 0.7] and len(manipulation['top_k']) == 30
  assert manipulation['top20_ci95'] == list(intervals.interval(np.r_[np.ones(7), np.zeros(3)]))
  assert len(manipulation['top_k_ci95']) == 30 and manipulation['top_k_ci95'][0] == [0, 0]
  color = manipulation['top20_per_attribute']['color']
  assert color['accuracy'] == 0.5 and color['queries'] == 6 and color['ci95'][0] < 0.5
  assert manipulation['ndcg@20'] == pytest.approx(0.5)
  assert manipulation['ndcg@20_ci95'] == [0.5, 0.5]
  assert manipulation['first_hit'] == [5] * 7 + [30] * 3
  assert stored['runs'][0]['settings']['direct']['left_out'] == {'unlabelled': 3,
                                                                 'no_target': 2}
  assert stored['hit_attributes'] == 'special'
  assert stored['intervals']['level'] == 0.95
  # Per method: w/o Parts minus Proposed on the same queries, -40 points.
  no_parts = stored['methods'][0]['settings']['manipulate1']
  assert no_parts['top20_minus_proposed']['mean'] == pytest.approx(-0.4)
  assert no_parts['top20']['sd'] is None and no_parts['top20']['runs'] == 1
  assert stored['published']['fig6_top20_percent']['manipulate1']['amnet'] == 45.8
  plot = str(tmp_path / 'results_topk.png')
  plot_top_k(plot, runs, SHOPPING100K, PAPER_TOP20)
  import matplotlib.image
  image = matplotlib.image.imread(plot)
  assert image.shape[:2] == (400, 1500)  # three 5 x 4 inch panels at 100 dpi


def test_both_protocols_score_a_run_in_process(untrained_run):
  """A randomly initialised tiny model (test_end_to_end.py runs evaluate.py itself)."""
  from tf_partfash.evaluation import queries
  from tf_partfash.evaluation.protocols.adde import ensure_adde_test, evaluate_adde
  from tf_partfash.evaluation.protocols.paper import evaluate_paper
  from tf_partfash.search.trained_run import TrainedRun
  data = untrained_run.data
  run = TrainedRun.open(untrained_run.workdir, data=data)
  query_sets, _ = queries.ensure_paper_queries(data.split_file, data.table, data.split, 0, 'all')
  paper = evaluate_paper(run, query_sets)
  assert {name: len(s) for name, s in paper.scores.items()} == {
      name: len(q) for name, q in query_sets.items()}
  text = format_paper_tables([paper], SYNTHETIC, 'all', 'euclidean')
  assert 'Proposed' in text and '(paper Table 2)' in text
  # The ADDE protocol on the same run: gallery = the split's query + gallery images.
  test = ensure_adde_test(data.table, data.split, data.split_file)
  adde_result = evaluate_adde(run, test)
  assert adde_result.scores['adde'].gallery_size == len(data.rows('gallery', 'query'))
  assert len(adde_result.scores['adde']) == len(test.queries)
  assert 'ADDE-M (ADDE Table 1)' in format_adde_table([adde_result], SYNTHETIC, 'euclidean')


def test_evaluate_cli_refuses_a_workdir_listed_twice(tmp_path):
  result = subprocess.run(
      [sys.executable, 'evaluate.py', f'--workdirs={tmp_path},{tmp_path}/'], cwd=ROOT,
      capture_output=True, text=True, timeout=120)
  assert result.returncode == 1
  assert result.stderr.strip() == f'evaluate.py: error: --workdirs lists {tmp_path} twice'


def test_paired_difference_of_two_results_files():
  from tf_partfash.evaluation.paired import paired_results
  runs_a = [_paper_run('partnet', 'runs/p', 3)]
  runs_b = [_paper_run('partnet', 'runs/p', 7)]
  a = results_json('paper', runs_a, SYNTHETIC, 'q.json', {'distance': 'squared'}, PUBLISHED)
  b = results_json('paper', runs_b, SYNTHETIC, 'q.json', {'distance': 'euclidean'}, PUBLISHED)
  rows = paired_results(json.loads(json.dumps(a)), json.loads(json.dumps(b)), 20)
  assert [r['setting'] for r in rows] == ['direct', 'manipulate1', 'manipulate2']
  # B hits on queries 4-7 too: +40 points, the interval of +1 on 4 of 10 queries.
  assert rows[1]['b_minus_a'] == pytest.approx(0.4)
  assert rows[1]['ci95'] == list(intervals.interval(np.r_[np.zeros(3), np.ones(4), np.zeros(3)]))
  b['query_file'] = 'other.json'
  with pytest.raises(ValueError, match='scored on other queries'):
    paired_results(a, b, 20)


def test_a_setting_without_queries_is_a_line_not_a_number():
  run, other = _paper_run('partnet', 'runs/a', 5), _paper_run('classic', 'runs/c', 2)
  for r in (run, other):  # the same query file: no direct query for either
    r.scores['direct'] = _scores('direct', [], [], left_out={'unlabelled': 3, 'no_target': 7})
  text = format_paper_tables([run, other], SYNTHETIC, 'special', 'euclidean')
  direct = [l for l in text.splitlines() if l.startswith('direct ')]
  assert [_cells(l) for l in direct] == [['direct', '0', '- (56.5)', '- (-)'],  # top-20
                                         ['direct', '0', '-'],                  # difference
                                         ['direct', '0', '- (-)', '- (-)']]     # NDCG
  assert 'direct: no queries, no query image has a possible hit in the gallery' in text
  blob = results_json('paper', [run], SYNTHETIC, 'q.json', {}, PUBLISHED)
  assert blob['runs'][0]['settings']['direct']['top20'] is None
  assert blob['methods'][0]['settings']['direct']['top20']['mean'] is None


def test_runs_differing_only_in_their_seed_share_a_variant():
  import dataclasses

  from tf_partfash.config import DataConfig, ModelConfig, TrainConfig
  from tf_partfash.storage.workdir import RunConfig, variant_of
  data = DataConfig()
  run = RunConfig('partnet', ModelConfig(), TrainConfig(seed=0), data)
  seed1 = dataclasses.replace(run, train=TrainConfig(seed=1, log_every_secs=5.0))
  other = dataclasses.replace(run, train=TrainConfig(seed=0, stage2_epochs=3))
  assert variant_of(run) == variant_of(seed1) != variant_of(other)
  assert variant_of(run) != variant_of(dataclasses.replace(run, method='no_parts'))
