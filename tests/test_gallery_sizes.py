"""The gallery-size study (AMNet Fig. 6): nested galleries, reachable queries, the run through it."""
import numpy as np
import pytest

from tf_partfash.evaluation.protocols.gallery_size import (evaluate_gallery_sizes, nested_galleries,
                                                           top20)


def test_galleries_are_nested_prefixes_of_one_order():
  small, middle, whole = nested_galleries(50, [5, 20, 50])
  assert (len(small), len(middle), len(whole)) == (5, 20, 50)
  assert set(small) <= set(middle) <= set(whole) and (np.diff(middle) > 0).all()
  np.testing.assert_array_equal(whole, np.arange(50))
  np.testing.assert_array_equal(nested_galleries(50, [20])[0], middle)  # the same order each time
  with pytest.raises(ValueError, match=r'gallery sizes \[60, 0\]: the gallery has 50 images'):
    nested_galleries(50, [10, 60, 0])


def test_top20_counts_only_queries_whose_target_is_in_the_gallery():
  class _Scores:
    reachable = np.array([True, True, False, True])

    def hits(self, k):
      assert k == 20
      return np.array([1.0, 0.0, 0.0, 1.0])
  result = top20(_Scores())
  assert (result['queries'], result['top20']) == (3, pytest.approx(2 / 3))
  assert result['ci95'][0] <= 2 / 3 <= result['ci95'][1]


def test_the_study_on_a_tiny_run(untrained_run):
  from tf_partfash.attributes import SPECIAL_ATTRIBUTES
  from tf_partfash.evaluation.queries import QuerySet
  from tf_partfash.search.trained_run import TrainedRun
  run = TrainedRun.open(untrained_run.workdir, progress=False)
  data = run.data
  gallery_rows = data.rows('gallery')
  labels = data.table[list(SPECIAL_ATTRIBUTES)].to_numpy()
  # Queries wanting each gallery image's own special labels, reached by a change of colour from
  # another colour: the target is in the whole gallery by construction.
  rows = data.rows('query')[:1].repeat(len(gallery_rows))
  targets = labels[gallery_rows]
  keep = targets[:, SPECIAL_ATTRIBUTES.index('color')] >= 0
  queries = QuerySet('manipulate1', rows[keep],
                     tuple({'color': int(t[SPECIAL_ATTRIBUTES.index('color')])}
                           for t in targets[keep]), targets[keep], SPECIAL_ATTRIBUTES)
  half = len(gallery_rows) // 2
  result = evaluate_gallery_sizes(run, queries, [half, len(gallery_rows)])
  assert list(result.scores) == [f'gallery_{half}', f'gallery_{len(gallery_rows)}']
  whole = result.scores[f'gallery_{len(gallery_rows)}']
  assert whole.reachable.all() and whole.gallery_size == len(gallery_rows)
  # A gallery of fewer than 20 images: every reachable query hits within the top 20.
  assert len(gallery_rows) < 20
  for scores in result.scores.values():
    assert top20(scores)['top20'] == 1.0
  part = result.scores[f'gallery_{half}']
  in_half = {tuple(t) for t in labels[gallery_rows[nested_galleries(len(gallery_rows),
                                                                     [half])[0]]]}
  np.testing.assert_array_equal(part.reachable, [tuple(t) in in_half for t in targets[keep]])


def test_an_empty_list_of_sizes_is_one_line_before_anything_is_written(tmp_path):
  import os
  import subprocess
  import sys

  from tf_partfash.protocols import Options
  with pytest.raises(ValueError, match='gallery_sizes is empty'):
    Options(gallery_sizes=())
  kept = tmp_path / 'results_gallery_size.json'
  kept.write_text('{"a good result": true}')
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  result = subprocess.run([sys.executable, 'evaluate.py', f'--workdir={tmp_path}',
                           '--protocol=gallery_size', '--gallery_sizes=',
                           f'--output_json={kept}'], cwd=root, capture_output=True, text=True,
                          timeout=120)
  assert (result.returncode, result.stderr.strip()) == (
      1, 'evaluate.py: error: --gallery_sizes is empty: give one or more gallery sizes')
  assert kept.read_text() == '{"a good result": true}'


def test_sizes_are_sorted_and_the_report_says_so(untrained_run):
  from tf_partfash.evaluation.protocols import gallery_size
  from tf_partfash.protocols import Options
  from tf_partfash.search.trained_run import TrainedRun
  run = TrainedRun.open(untrained_run.workdir, data=untrained_run.data, progress=False)
  outcome = gallery_size.evaluate([run], Options(gallery_sizes=(6, 2, 4, 2)))
  assert list(outcome.results['runs'][0]['sizes']) == ['2', '4', '6']
  assert outcome.text.startswith('Gallery sizes in increasing order, each once: 2, 4, 6 '
                                 '(given: 6, 2, 4, 2)')
  in_order = gallery_size.evaluate([run], Options(gallery_sizes=(2, 4)))
  assert 'increasing order' not in in_order.text


def test_results_and_their_figure_are_written_together_or_not_at_all(tmp_path):
  from tf_partfash.evaluation.reports import Outcome, write_outcome
  output = tmp_path / 'results.json'
  output.write_text('old')
  (tmp_path / 'results.png').write_text('old figure')

  def broken_plot(file):
    raise RuntimeError('the plot failed')

  with pytest.raises(RuntimeError, match='the plot failed'):
    write_outcome(Outcome('', {'new': 1}, broken_plot, '.png', str(tmp_path)), str(output))
  assert output.read_text() == 'old' and (tmp_path / 'results.png').read_text() == 'old figure'
  assert sorted(p.name for p in tmp_path.iterdir()) == ['results.json', 'results.png']
  figure = write_outcome(Outcome('', {'new': 1}, lambda file: open(file, 'w').write('figure'),
                                 '.png', str(tmp_path)), str(output))
  assert figure == str(tmp_path / 'results.png') and open(figure).read() == 'figure'
  assert output.read_text() == '{\n  "new": 1\n}\n'
  assert sorted(p.name for p in tmp_path.iterdir()) == ['results.json', 'results.png']
