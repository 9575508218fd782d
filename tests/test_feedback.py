"""The simulated shopper of `feedback` (personalization measured), on hand-made results."""
import numpy as np

from tf_partfash.evaluation.protocols.feedback import feedback_rounds, shopper_picks
from tf_partfash.search.retrieval import Searcher


def test_the_shopper_picks_the_shown_images_sharing_most_of_the_target():
  target = np.array([1, 2, 3, 4, -1])
  shown = np.zeros((10, 5), np.int64)   # share nothing
  shown[0] = [1, 2, 0, 0, 0]            # 2
  shown[3] = [1, 2, 3, 0, -1]           # 3 (a missing label is no match, even with -1 wanted)
  shown[7] = [0, 2, 3, 4, 0]            # 3
  shown[9] = [-1, -1, -1, -1, -1]       # 0
  assert shopper_picks(shown, target).tolist() == [3, 7]
  assert shopper_picks(np.zeros((10, 5), np.int64), target).tolist() == []  # nothing matches


def _on_circle(angles) -> np.ndarray:
  """(N, 1, 2) one unit signature per image, at the given angles."""
  angles = np.asarray(angles, np.float64)
  return np.stack([np.cos(angles), np.sin(angles)], axis=-1)[:, None].astype(np.float32)


def test_a_picked_image_replaces_the_query_and_leads_to_the_target():
  # On a circle, the query at 0: three near distractors (0.1, 0.2, 0.3) and 20 on the other side
  # (-0.6 .. -1.55) share none of the target's labels (1, 1); the bridge (0.4, rank 3) shares
  # one; the target (1.72) has both but 24 images are nearer the query: no hit in round 0.
  # Round 1 searches from the bridge, the only pick: 11 images are nearer it than the target
  # (itself, the three, -0.6 .. -0.9), so the target is at rank 11. It is not shown (top 10), so
  # the bridge is picked again and nothing changes after.
  angles = [0.1, 0.2, 0.3] + [-0.6 - 0.05 * k for k in range(20)] + [0.4, 1.72]
  labels = np.array([[0, 0]] * 23 + [[1, 0], [1, 1]])
  gallery = _on_circle(angles)
  scores = feedback_rounds(Searcher(gallery), gallery, labels, _on_circle([0.0]),
                           np.array([[1, 1]]), 'manipulate1')
  assert scores.first_hit[:, 0].tolist() == [20, 11, 11, 11]
  assert scores.picks[:, 0].tolist() == [1, 1, 1]
  assert scores.top20_by_round() == [0.0, 1.0, 1.0, 1.0]


def test_a_round_without_a_match_is_counted_and_changes_nothing():
  gallery = _on_circle(np.linspace(-1.0, 1.0, 30))
  labels = np.zeros((30, 2), np.int64)
  scores = feedback_rounds(Searcher(gallery), gallery, labels, _on_circle([0.0]),
                           np.array([[1, 1]]), rounds=2)
  assert scores.picks[:, 0].tolist() == [0, 0]
  assert scores.first_hit[:, 0].tolist() == [20, 20, 20]


def test_the_protocol_scores_a_run_and_reports_every_round(untrained_run, tmp_path):
  import json

  from tf_partfash.evaluation import queries
  from tf_partfash.evaluation.protocols import feedback
  from tf_partfash.evaluation.protocols.feedback import (feedback_json, format_feedback_table,
                                                         plot_feedback)
  from tf_partfash.evaluation.reports import Dataset
  from tf_partfash.search.trained_run import TrainedRun
  data = untrained_run.data
  run = TrainedRun.open(untrained_run.workdir, data=data)
  query_sets, file = queries.ensure_paper_queries(data.split_file, data.table, data.split)
  result = feedback.evaluate_feedback(run, query_sets)
  assert set(result.scores) == {'manipulate1', 'manipulate2'}
  for name, scores in result.scores.items():
    assert scores.first_hit.shape == (4, len(query_sets[name]))
    assert scores.picks.shape == (3, len(query_sets[name]))
  dataset = Dataset('data', len(data.table), synthetic=True)
  assert 'round 3' in format_feedback_table([result], dataset)
  blob = json.loads(json.dumps(feedback_json([result], dataset, file, {}, {})))
  for name, scores in result.scores.items():
    stored = blob['runs'][0]['settings'][name]
    assert stored['top20_by_round'] == scores.top20_by_round()
    assert len(stored['top20_by_round']) == 4 and len(stored['top20_by_round_ci95']) == 4
    assert stored['queries'] == len(query_sets[name])
  plot_feedback(str(tmp_path / 'rounds.png'), [result], dataset)
  assert (tmp_path / 'rounds.png').exists()
