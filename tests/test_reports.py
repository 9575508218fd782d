"""Tables beside the published numbers, results.json and the Fig. 6 plot, from hand-made scores."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tf_partfash.data.synthetic import MARKER_FILE
from tf_partfash.evaluation import RunResult, Scores
from tf_partfash.reports import (Dataset, column_names, describe_dataset, format_adde_table,
                                 format_paper_tables, plot_top_k, results_json, write_json)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHOPPING100K = Dataset('/data/Shopping100k', 101021, synthetic=False)
SYNTHETIC = Dataset('/tmp/synthetic', 300, synthetic=True)


def _scores(setting: str, first_hit: list[int], manipulated: list[str], max_k: int = 30,
            ndcg: float = 0.5) -> Scores:
  n = len(first_hit)
  return Scores(setting, np.asarray(first_hit), np.full(n, ndcg), tuple(manipulated),
                np.zeros(n, bool), np.ones(n, bool), max_k, 100)


def _paper_run(method: str, workdir: str, hits_under_20: int) -> RunResult:
  """Ten queries per setting; the first `hits_under_20` hit at rank 5, the rest never."""
  first = [5] * hits_under_20 + [30] * (10 - hits_under_20)
  attrs = ['collar'] * 4 + ['color'] * 6
  return RunResult(workdir, method, {
      'direct': _scores('direct', first, [''] * 10),
      'manipulate1': _scores('manipulate1', first, attrs),
      'manipulate2': _scores('manipulate2', first, ['collar+color'] * 10)})


def test_paper_tables_show_measured_beside_published():
  runs = [_paper_run('no_parts', 'runs/a', 3), _paper_run('partnet', 'runs/b', 7)]
  text = format_paper_tables(runs, SHOPPING100K)
  lines = text.splitlines()
  assert 'w/o Parts' in lines[1] and 'Proposed' in lines[1]
  direct = next(l for l in lines if l.startswith('direct'))
  # 3 and 7 of 10 hits within the top 20; the paper states only the proposed direct figure.
  assert direct.split() == ['direct', '10', '10', '30.0', '(-)', '70.0', '(56.5)']
  manipulation = next(l for l in lines if l.startswith('1 manipulation'))
  assert manipulation.split()[-4:] == ['30.0', '(45.6)', '70.0', '(53.1)']
  # Table 2: collar queries are the first four, all hits for 7 > 4; color: 3 - 4 = none of six
  # for w/o Parts, 3 of 6 for Proposed.
  collar = next(l for l in lines if l.startswith('Collar'))
  assert collar.split() == ['Collar', '4', '0.75', '(0.51)', '1.00', '(0.60)']
  color = next(l for l in lines if l.startswith('Color'))
  assert color.split() == ['Color', '6', '0.00', '(0.67)', '0.50', '(0.72)']
  pattern = next(l for l in lines if l.startswith('Pattern'))
  assert pattern.split() == ['Pattern', '0', '-', '(0.48)', '-', '(0.54)']  # no such queries
  assert 'not comparable' not in text


def test_synthetic_data_is_announced_above_the_tables():
  text = format_paper_tables([_paper_run('partnet', 'runs/a', 5)], SYNTHETIC)
  assert text.splitlines()[0].startswith('Data: synthetic images (/tmp/synthetic, 300 images), '
                                         'not Shopping100k')
  assert 'only the ordering of methods is' in text.splitlines()[0]


def test_describe_dataset_finds_the_synthetic_marker(tmp_path):
  assert not describe_dataset(str(tmp_path), str(tmp_path), 10).synthetic
  assert describe_dataset(None, str(tmp_path), 10).synthetic
  (tmp_path / MARKER_FILE).write_text('{}')
  assert describe_dataset(str(tmp_path), str(tmp_path), 10).synthetic
  assert Dataset(str(tmp_path), 5000, False).note().startswith('Data: 5000 images')


def test_column_names_tell_repeated_methods_apart():
  runs = [_paper_run('partnet', 'runs/seed0/', 1), _paper_run('partnet', 'runs/seed1', 1),
          _paper_run('classic', 'runs/c', 1)]
  assert column_names(runs) == ['Proposed [seed0]', 'Proposed [seed1]', 'Classic']


def test_adde_table_and_empty_settings():
  # Four queries, hits at ranks 9, 19, 29, never: top-10/20/30/50 = 25, 50, 75, 75 %.
  scores = _scores('adde', [9, 19, 29, 50], ['color', 'color', 'category', 'category'], max_k=50)
  text = format_adde_table([RunResult('runs/a', 'partnet', {'adde': scores})], SHOPPING100K)
  rows = {l.split('  ')[0]: l.split()[-4:] for l in text.splitlines() if '  ' in l}
  assert rows['Proposed (measured)'] == ['25.00', '50.00', '75.00', '75.00']
  assert rows['Proposed, special-attribute queries'] == ['50.00', '100.00', '100.00', '100.00']
  assert rows['ADDE-M (ADDE Table 1)'] == ['41.17', '52.93', '59.81', '67.29']
  assert 'queries: 4 (2 on special attributes)' in text
  empty = _scores('adde', [], [], max_k=50)
  text = format_adde_table([RunResult('runs/a', 'partnet', {'adde': empty})], SYNTHETIC)
  assert 'ADDE manipulation: no queries' in text


def test_results_json_and_plot(tmp_path):
  runs = [_paper_run('no_parts', 'runs/a', 3), _paper_run('partnet', 'runs/b', 7)]
  blob = results_json('paper', runs, SYNTHETIC, '/data/paper_queries_split0_seed0.json',
                      {'distance': 'squared'})
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
  assert manipulation['top20_per_attribute']['color'] == {'accuracy': 0.5, 'queries': 6}
  assert manipulation['ndcg@20'] == pytest.approx(0.5)
  assert stored['published']['fig6_top20_percent']['manipulate1']['amnet'] == 45.8
  plot = str(tmp_path / 'results_topk.png')
  plot_top_k(plot, 'paper', runs, SHOPPING100K)
  with open(plot, 'rb') as f:
    assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  assert os.path.getsize(plot) > 10000


def test_evaluate_cli_scores_two_runs_side_by_side(untrained_run, tmp_path):
  """evaluate.py end to end on a randomly initialised tiny model of the tiny synthetic set."""
  from tf_partfash import evaluation, queries
  workdir, data_dir, data = untrained_run.workdir, untrained_run.data_dir, untrained_run.data
  output = tmp_path / 'out' / 'results.json'
  result = subprocess.run(
      [sys.executable, 'evaluate.py', f'--workdirs={workdir},{workdir}',
       f'--output_json={output}'], cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'Data: synthetic images' in result.stdout
  assert 'Proposed [run]' in result.stdout and '(paper Table 2)' in result.stdout
  stored = json.loads(output.read_text())
  # The queries are stored beside the split, in the (writable) data directory.
  assert stored['query_file'] == str(data_dir / 'paper_queries_split0_seed0.json')
  assert [r['method'] for r in stored['runs']] == ['partnet', 'partnet']
  assert set(stored['runs'][0]['settings']) == {'direct', 'manipulate1', 'manipulate2'}
  assert (tmp_path / 'out' / 'results_topk.png').exists()
  # The stored queries give the same numbers again, in-process.
  query_sets, _ = queries.load_or_make_paper_queries(str(data_dir), data.table, data.split, 0, 0)
  again = evaluation.evaluate_paper(workdir, data, query_sets)
  for setting, scores in again.scores.items():
    measured = stored['runs'][0]['settings'][setting]
    assert measured['queries'] == len(scores)
    assert measured['top_k'] == ([round(float(v), 6) for v in scores.top_k()]
                                 if len(scores) else [])
  # The ADDE protocol on the same run: gallery = the split's query + gallery images.
  test = queries.load_or_make_adde(data.table, data.split, str(data_dir), 0)
  adde_result = evaluation.evaluate_adde(workdir, data, test)
  assert adde_result.scores['adde'].gallery_size == len(data.rows('gallery', 'query'))
  assert 'ADDE-M (ADDE Table 1)' in format_adde_table([adde_result], SYNTHETIC)
