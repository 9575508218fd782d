"""FLAM and its baselines as methods (paper 003): trained by train.py on the frozen features of
another run, resumed exactly, searched by their encoders, scored beside their base, and every bad
input a one-line error."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_FLAM = ['--flam_embedding_steps=30', '--flam_steps=30', '--flam_batch_size=16',
             '--flam_hidden=16', '--flam_embedding_size=4', '--flam_concat_width=8', '--workers=1',
             '--checkpoint_every_secs=0', '--log_every_secs=0']


def _run(script, *args, ok=True):
  result = subprocess.run([sys.executable, script, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
  if ok:
    assert result.returncode == 0, f'{script} failed:\n{result.stderr[-3000:]}'
  return result


def _error(result) -> str:
  assert result.returncode == 1, result.stderr[-3000:]
  return result.stderr.strip().splitlines()[-1]


@pytest.fixture(scope='module')
def runs(untrained_run, tmp_path_factory):
  """A copy of the tiny partnet run, and FLAM and Emb-Concat trained on its features by
  train.py."""
  root = tmp_path_factory.mktemp('flam')
  base = root / 'base'
  shutil.copytree(untrained_run.workdir, base, ignore=shutil.ignore_patterns('*.lock'))
  flam, emb = root / 'flam', root / 'emb_concat'
  trained = _run('train.py', '--model=flam', f'--features_from={base}', f'--workdir={flam}',
                 *TINY_FLAM)
  _run('train.py', '--model=emb_concat', f'--features_from={base}', f'--workdir={emb}',
       *TINY_FLAM)
  return root, base, flam, emb, trained


def test_train_records_its_base_and_the_flagfile_it_writes_resumes(runs):
  root, base, flam, _, trained = runs
  with open(flam / 'run.json') as f:
    run = json.load(f)
  assert run['method'] == 'flam'
  # Relative to the FLAM run: the two directories move together.
  assert run['features_from']['workdir'] == '../base'
  assert run['features_from']['feature_size'] == 6 * 8  # S + 1 signatures of 8
  assert run['flam']['flam_steps'] == 30 and run['train']['seed'] == 0
  assert 'evaluate.py --workdirs=' in trained.stdout
  assert os.path.exists(base / 'index_train.npz')  # the base's features, cached in the base run
  # flags.txt holds only what applies: rerun, it is the same run, already finished.
  again = _run('train.py', f'--flagfile={flam / "flags.txt"}')
  assert again.returncode == 0


def test_evaluate_scores_flam_beside_its_base_and_direct_search_is_the_base_feature(runs):
  root, base, flam, emb, _ = runs
  out = root / 'results.json'
  result = _run('evaluate.py', f'--workdirs={base},{flam},{emb}', f'--output_json={out}')
  assert 'FLAM' in result.stdout and 'Emb-Concat' in result.stdout
  with open(out) as f:
    blob = json.load(f)
  direct = [r['settings']['direct'] for r in blob['runs']]
  # FLAM keeps x for the gallery and for an unchanged query: its direct search is its base's.
  assert direct[1]['top20'] == direct[0]['top20']
  assert direct[1]['top20_ci95'] == direct[0]['top20_ci95']
  assert [r['method'] for r in blob['runs']] == ['partnet', 'flam', 'emb_concat']
  assert {'direct', 'manipulate1', 'manipulate2'} <= set(blob['runs'][1]['settings'])
  # Each feature run says what its x was: the base run's, and how wide.
  assert 'features' not in blob['runs'][0]
  features = blob['runs'][1]['features']
  assert os.path.samefile(features['workdir'], base)
  assert features['method'] == 'partnet' and features['size'] == 6 * 8  # S + 1 signatures of 8


def test_a_flam_run_resumed_from_its_checkpoint_ends_where_an_uninterrupted_one_does(tmp_path):
  import tensorflow as tf

  from tf_partfash.config import FlamConfig
  from tf_partfash.models.flam import Flam, FlamShape
  from tf_partfash.training.flam_trainer import FlamTrainer
  rng = np.random.default_rng(0)
  x = rng.standard_normal((64, 12)).astype(np.float32)
  labels = np.stack([rng.integers(-1, 3, 64), rng.integers(-1, 4, 64)], axis=1)
  config = FlamConfig(flam_embedding_steps=4, flam_steps=4, flam_batch_size=16)

  def fresh():
    tf.keras.utils.set_random_seed(0)
    flam = Flam(FlamShape(12, (3, 4), embedding_size=4, hidden=8, names=('color', 'pattern')))
    return FlamTrainer(flam, config, seed=3)

  whole = fresh()
  whole.run(x, labels)
  first = fresh()
  stop = {'at': 6}  # in the manipulating stage, with every optimizer's state in play

  class Stop(Exception):
    pass

  def after_step(step, stage, logs):
    if step == stop['at']:
      first.checkpoint.write(str(tmp_path / 'ckpt'))
      raise Stop

  with pytest.raises(Stop):
    first.run(x, labels, after_step)
  resumed = fresh()
  resumed.checkpoint.read(str(tmp_path / 'ckpt')).assert_existing_objects_matched()
  assert int(resumed.step.numpy()) == 6
  resumed.run(x, labels)
  for a, b in zip(whole.flam.weights, resumed.flam.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_the_encoders_apply_changes_in_order_and_leave_out_untaught_classes():
  from tf_partfash.models.flam import Flam, FlamShape
  from tf_partfash.search.feature_encoders import FlamEncoder
  from tf_partfash.search.gallery import GalleryIndex
  flam = Flam(FlamShape(6, (16, 17), embedding_size=3, hidden=4, names=('category', 'collar')))
  flam.class_counts[0].assign(np.eye(16)[2] + np.eye(16)[5])
  flam.class_counts[1].assign(np.eye(17)[1])
  encoder = FlamEncoder(flam)
  kept, dropped = encoder.expressible([{'category': 2}, {'category': 3, 'collar': 1},
                                       {'color': 0}, {}])
  assert kept == [{'category': 2}, {'collar': 1}, {}, {}]
  assert dropped.tolist() == [False, True, True, False]
  # A generator that adds its condition's first coordinate to every feature.
  flam.generate = lambda x, e: x + e[:, :1]
  signatures = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
  index = GalleryIndex(signatures, {}, np.zeros((2, 12), np.int64), np.array(['a', 'b']),
                       np.arange(2), 'id', '/nowhere')
  out = encoder.queries(index, [{'category': 2, 'collar': 1}, {}])
  shift = flam.dictionary(0).numpy()[2, 0] + flam.dictionary(1).numpy()[1, 0]
  np.testing.assert_allclose(out[0], signatures[0] + shift, rtol=1e-6)
  np.testing.assert_array_equal(out[1], signatures[1])  # no change: x itself
  np.testing.assert_array_equal(encoder.gallery(index), signatures)


def test_bad_input_is_one_line_naming_it(runs, tmp_path):
  root, base, flam, _, _ = runs
  assert _error(_run('train.py', '--model=flam', f'--workdir={tmp_path / "a"}', ok=False)) == (
      'train.py: error: --model=flam trains on the features of a finished run: give '
      '--features_from=<its workdir>')
  line = _error(_run('train.py', '--model=flam', f'--features_from={tmp_path}',
                     f'--workdir={tmp_path / "b"}', ok=False))
  assert line.startswith(f'train.py: error: --features_from={tmp_path}: ') and 'run.json' in line
  line = _error(_run('train.py', '--model=flam', f'--features_from={base}', '--synthetic_images=9',
                     f'--workdir={tmp_path / "c"}', ok=False))
  assert line == (f"train.py: error: --synthetic_images=9, but --features_from={base} was trained "
                  "with synthetic_images=5500: a feature method trains on its base run's data")
  line = _error(_run('train.py', '--model=flam', f'--features_from={base}', '--stage1_epochs=3',
                     f'--workdir={tmp_path / "d"}', ok=False))
  assert line.startswith('train.py: error: --stage1_epochs does not apply to --model=flam')
  line = _error(_run('train.py', '--features_from=x', f'--workdir={tmp_path / "e"}', ok=False))
  assert line.startswith('train.py: error: --features_from is for --model=flam or')


def test_a_feature_run_whose_base_was_retrained_is_refused(runs, tmp_path):
  root, base, flam, _, _ = runs
  moved = tmp_path / 'moved'
  shutil.copytree(root, moved, ignore=shutil.ignore_patterns('*.lock'))
  with open(moved / 'base' / 'model.weights.h5', 'ab') as f:
    f.write(b'retrained')
  line = _error(_run('evaluate.py', f'--workdir={moved / "flam"}', ok=False))
  assert line.startswith(f'evaluate.py: error: {moved / "flam"} was trained on the features of '
                         f'{moved / "base"} as model ')
  assert line.endswith(f'has been retrained since (model {_model_id(moved / "base")}): train '
                       f'{moved / "flam"} again, in a new --workdir')
  line = _error(_run('train.py', f'--flagfile={moved / "flam" / "flags.txt"}',
                     f'--workdir={moved / "flam"}', f'--features_from={moved / "base"}', ok=False))
  assert 'retrained since' in line and 'Use a new --workdir' in line


def _model_id(workdir) -> str:
  from tf_partfash.storage.workdir import model_id
  return model_id(str(workdir))


def test_a_feature_method_may_change_the_attributes_it_was_trained_on():
  from tf_partfash.errors import UserError
  from tf_partfash.search.retrieval import parse_changes
  flam = ('category', 'color', 'pattern')
  # Category is value 15 of the schema (Dress), and a general attribute the paper cannot change.
  assert parse_changes(['Category=dress', 'color=navy'], flam) == {'category': 15, 'color': 5}
  with pytest.raises(UserError, match="'collar' cannot be changed by this method; attributes: "
                     'category, color, pattern'):
    parse_changes(['collar=kent'], flam)
  with pytest.raises(UserError, match="'category' is a general attribute"):
    parse_changes(['category=dress'])


def test_search_changes_the_category_with_flam(runs):
  _, _, flam, _, _ = runs
  result = _run('search.py', f'--workdir={flam}', '--query=0', '--set=category=dress',
                '--top_k=3')
  assert 'manipulation: category' in result.stdout and '-> Dress' in result.stdout
