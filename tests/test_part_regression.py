"""The §7.5 regression part estimator: landmark encoding by hand, teaching, its file, the CLIs."""
import dataclasses
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tf_partfash.data.shopping100k import read_attributes
from tf_partfash.parts import (CASES, Parts, compute_parts, ensure_part_regressor, read_parts_csv,
                               regressor_file, regressor_sample, teach_part_regressor)
from tf_partfash.parts.boxes import box_iou
from tf_partfash.parts.extraction import Garment, Sleeve, part_boxes, silhouette
from tf_partfash.parts.regression import (FORMAT_VERSION, HIDDEN, LANDMARKS, MEMBERS,
                                          PartRegressor, decode, encode, fit, fit_network,
                                          read_sleeve, teach_mirrored)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _silhouette():
  """A 100-row garment 50 columns wide (columns 10-60 of an 80-column mask, from row 5): a
  rectangle, so the axis is column 35."""
  mask = np.zeros((120, 80), bool)
  mask[5:105, 10:60] = True
  return silhouette(mask)


def _garment(s):
  sleeve = Sleeve(top=12, bottom=40, outer=25.0, line=15.0, torso=16.0)
  return Garment(top=s.top, collar=0.0, neck=10.0, armpit=30, hem=99, axis=s.axis, chest=15.0,
                 torso=(16.0, 17.0), neckline=6.0, sleeves=(sleeve, sleeve))


def test_landmarks_in_garment_heights_and_widths():
  s = _silhouette()
  assert (s.top, len(s.band), s.width, s.axis) == (5, 100, 50.0, 35.0)
  values = dict(zip(LANDMARKS, encode(_garment(s), s).tolist()))
  # Rows over the garment's 100 rows, columns over its 50 columns.
  expected = {'collar': 0.0, 'neck': 0.1, 'armpit': 0.3, 'chest': 0.3, 'torso_left': 0.32,
              'torso_right': 0.34, 'neckline': 0.12, 'left_top': 0.12, 'left_bottom': 0.4,
              'left_outer': 0.5, 'left_line': 0.3, 'left_torso': 0.32}
  for name, value in expected.items():
    assert values[name] == pytest.approx(value, abs=1e-6), name
  assert values['right_bottom'] == pytest.approx(0.4)
  # And back: the same garment, so the same boxes.
  decoded = decode(encode(_garment(s), s), s, sleeves=True)
  assert _flat(decoded) == pytest.approx(_flat(_garment(s)), abs=1e-4)  # float32 targets
  assert (decoded.armpit, decoded.sleeves[0].top, decoded.sleeves[1].bottom) == (30, 12, 40)
  for name, box in part_boxes(_garment(s), 120, 80).items():
    assert part_boxes(decoded, 120, 80)[name] == pytest.approx(box, abs=1e-5), name


def _flat(g):
  values = dataclasses.asdict(g)
  sleeves = values.pop('sleeves') or ()
  return ([float(v) for k, v in sorted(values.items()) if k != 'torso'] + list(values['torso'])
          + [float(v) for s in sleeves for _, v in sorted(s.items())])


def test_sleeveless_landmarks_have_no_sleeve_targets():
  s = _silhouette()
  garment = dataclasses.replace(_garment(s), sleeves=None)
  values = encode(garment, s)
  assert np.isnan(values[len(values) - 10:]).all() and not np.isnan(values[:7]).any()
  assert decode(np.nan_to_num(values), s, sleeves=False).sleeves is None


def test_decode_puts_inconsistent_predictions_in_order():
  s = _silhouette()
  values = dict(zip(LANDMARKS, encode(_garment(s), s).tolist()))
  values.update(collar=0.2, neck=0.1, armpit=0.05, left_top=0.5, left_bottom=0.3,
                left_outer=0.1, left_line=0.3, chest=-0.1)
  g = decode(np.array([values[n] for n in LANDMARKS]), s, sleeves=True)
  assert g.collar == pytest.approx(20.0) and g.neck == pytest.approx(20.0)  # neck >= collar
  assert g.armpit == 21                                                    # below the neck
  assert (g.sleeves[0].top, g.sleeves[0].bottom) == (50, 51)               # cuff below shoulder
  assert g.sleeves[0].outer == pytest.approx(16.0)                        # outside the line (15)
  assert g.chest == 1.0


def test_sleeve_rows_and_outer_edge_read_off_the_silhouette():
  # Per row, the outer edge's distance from the axis: torso (5), a sleeve (rows 3-9, out to
  # 12), torso, a flared hem (rows 15-19, 9). Width 20: an edge is outside the line 6 when it
  # is more than 1 (the jitter, max(1, 0.02 * 20)) beyond it, so rows 3-9 and 15-19.
  distance = np.array([5] * 3 + [12] * 7 + [5] * 5 + [9] * 5, float)
  predicted = Sleeve(top=4, bottom=8, outer=10.0, line=6.0, torso=6.0)
  # The stretch the predicted rows overlap: its rows and its farthest point.
  assert read_sleeve(predicted, distance, 20.0) == Sleeve(3, 9, 12.0, 6.0, 6.0)
  # Predicted rows 2-16 overlap rows 3-9 by 7 and the hem by 2.
  wide = dataclasses.replace(predicted, top=2, bottom=16)
  assert read_sleeve(wide, distance, 20.0) == Sleeve(3, 9, 12.0, 6.0, 6.0)
  # Predicted 16-17 overlap the hem, cut one row (5 % of 20) below the predicted cuff.
  low = dataclasses.replace(predicted, top=16, bottom=17)
  assert read_sleeve(low, distance, 20.0) == Sleeve(15, 18, 9.0, 6.0, 6.0)
  # No edge outside the predicted line: the prediction stands.
  inside = dataclasses.replace(predicted, line=12.0)
  assert read_sleeve(inside, distance, 20.0) == inside


@pytest.fixture(scope='module', autouse=True)
def quick_teaching():
  """Fewer Adam steps than the 3,000 of a real regressor: enough for the 72 tiny images."""
  from tf_partfash.parts import regression
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(regression, 'STEPS', 400)
    yield


@pytest.fixture(scope='module')
def tiny_copy(tiny_synthetic, tmp_path_factory):
  """The tiny synthetic dataset without the caches other tests write beside it."""
  out = str(tmp_path_factory.mktemp('regression') / 'data')
  shutil.copytree(tiny_synthetic, out, ignore=shutil.ignore_patterns('parts_*', '*.lock',
                                                                    'paper_split*',
                                                                    'part_regressor*'))
  return out


@pytest.fixture(scope='module')
def taught(tiny_copy):
  table = read_attributes(tiny_copy)
  return table, teach_part_regressor(tiny_copy, table, progress=False)


def test_the_regressor_learns_its_teacher(tiny_copy, taught):
  table, regressor = taught
  assert regressor.images == len(table)
  teacher = compute_parts(tiny_copy, table, progress=False)
  learnt = compute_parts(tiny_copy, table, progress=False, regressor=regressor)
  same_case = [p for p in teacher if teacher[p].case == learnt[p].case]
  assert len(same_case) >= 0.95 * len(table)
  ious = [box_iou(teacher[p].boxes[n], learnt[p].boxes[n]) for p in same_case
          for n in teacher[p].boxes]
  assert ious and np.mean(ious) > 0.8
  # The labels still settle the case: a label-lower image is lower without being looked at.
  lower = [p for p in teacher if teacher[p].case == 'lower']
  assert all(learnt[p] == Parts('lower') for p in lower)


def test_teaching_is_deterministic_and_the_file_round_trips(taught, tiny_copy, tmp_path):
  table, regressor = taught
  x = np.random.default_rng(0).random((6, regressor.mean.size), np.float32)
  again = fit(*_teacher_arrays(tiny_copy, table), regressor.trained_on)
  np.testing.assert_array_equal(again.w1, regressor.w1)
  assert regressor.w1.shape[1] == MEMBERS * HIDDEN
  file = str(tmp_path / 'r.npz')
  regressor.save(file)
  loaded = PartRegressor.load(file)
  assert (loaded.trained_on, loaded.images) == (regressor.trained_on, regressor.images)
  for a, b in zip(loaded.predict(x), regressor.predict(x)):
    np.testing.assert_array_equal(a, b)


def _teacher_arrays(data_dir, table):
  from tf_partfash.data.shopping100k import image_file
  from tf_partfash.parts import lower_body_of, read_image
  from tf_partfash.parts.extraction import WORK_HEIGHT
  from tf_partfash.parts.regression import teach_mirrored
  rows = [r for p, c in zip(table['path'], table['category'])
          for r in teach_mirrored(read_image(image_file(data_dir, p), WORK_HEIGHT),
                                  lower_body_of(c))]
  return tuple(np.stack(c) for c in zip(*rows))


def test_lower_body_false_never_gives_lower(taught, tiny_copy):
  table, regressor = taught
  from tf_partfash.data.shopping100k import image_file
  from tf_partfash.parts import read_image
  images = [read_image(image_file(tiny_copy, p)) for p in table['path'][:20]]
  assert all(regressor.extract(im, False).case != 'lower' for im in images)
  assert all(regressor.extract(im, True) == Parts('lower') for im in images)


def test_the_regressor_is_the_average_of_its_networks():
  """Two networks of seeds 3 and 4 side by side: hidden units concatenated, output weights and
  biases halved and summed, so its outputs are the mean of theirs."""
  rng = np.random.default_rng(0)
  x = rng.random((12, 5))
  case = np.arange(12) % 3
  landmarks = rng.random((12, len(LANDMARKS)))
  both = fit(x, case, landmarks, 'x', seed=3, steps=20, members=2, images=6)
  assert both.w1.shape == (5, 2 * HIDDEN) and both.images == 6
  z = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-3)
  outputs = []
  for seed in (3, 4):
    w1, b1, w2, b2 = fit_network(z, case, landmarks, seed, steps=20)
    outputs.append(np.maximum(0, z @ w1 + b1) @ w2 + b2)
  logits, points = both.predict(x.astype(np.float32))
  np.testing.assert_allclose(np.concatenate([logits, points], 1), np.mean(outputs, axis=0),
                             rtol=1e-4, atol=1e-4)


def test_teaching_sees_each_image_and_its_mirror():
  """A garment whose left sleeve is longer than its right: mirrored, the teacher's left sleeve
  is the right one, and the features' left and right profiles swap."""
  image = np.full((200, 160, 3), 255, np.uint8)
  image[40:190, 55:105] = 40             # torso
  image[45:150, 30:55] = 40              # long left sleeve (image left)
  image[45:90, 105:130] = 40             # short right sleeve
  (x, case, marks), (mx, mcase, mmarks) = teach_mirrored(image, False)
  assert CASES[case] == CASES[mcase] == 'sleeve'
  name = {n: i for i, n in enumerate(LANDMARKS)}
  for field in ('top', 'bottom', 'outer'):
    assert mmarks[name[f'left_{field}']] == pytest.approx(marks[name[f'right_{field}']], abs=0.02)
    assert mmarks[name[f'right_{field}']] == pytest.approx(marks[name[f'left_{field}']], abs=0.02)
  assert marks[name['left_bottom']] > marks[name['right_bottom']] + 0.2


def test_fit_needs_two_cases():
  with pytest.raises(ValueError, match='at least two cases'):
    fit(np.zeros((3, 4)), np.zeros(3, int), np.zeros((3, len(LANDMARKS))), 'x', steps=1)


def test_a_file_that_is_no_regressor_or_of_another_version(tmp_path, taught):
  _, regressor = taught
  other = tmp_path / 'other.npz'
  np.savez(other, signatures=np.zeros(3))
  with pytest.raises(ValueError, match='is not a part regressor'):
    PartRegressor.load(str(other))
  old = str(tmp_path / 'old.npz')
  regressor.save(old)
  blob = dict(np.load(old))
  blob['format_version'] = np.int64(0)
  np.savez(old, **blob)
  with pytest.raises(ValueError, match='format 0.*delete it'):
    PartRegressor.load(old)
  with pytest.raises(FileNotFoundError, match='part regressor not found'):
    PartRegressor.load(str(tmp_path / 'absent.npz'))


def test_ensure_teaches_once_and_refuses_another_sample(tiny_copy, tmp_path):
  table = read_attributes(tiny_copy)
  sample = regressor_sample(table, 30)
  assert len(sample) == 30 and sample.index.is_monotonic_increasing
  file = regressor_file(str(tmp_path), sample)
  assert os.path.basename(file).startswith(f'part_regressor_v{FORMAT_VERSION}_')
  first = ensure_part_regressor(tiny_copy, sample, file, progress=False)
  stamp = os.stat(file).st_mtime_ns
  second = ensure_part_regressor(tiny_copy, sample, file, progress=False)
  assert os.stat(file).st_mtime_ns == stamp  # read, not taught again
  np.testing.assert_array_equal(first.w2, second.w2)
  with pytest.raises(ValueError, match='taught on other images.*delete it'):
    ensure_part_regressor(tiny_copy, regressor_sample(table, 40), file, progress=False)


def test_prepare_with_the_regressor_names_its_caches(tiny_copy):
  from tf_partfash.config import DataConfig
  from tf_partfash.inputs.prepared import prepare
  data = prepare(DataConfig(data_dir=tiny_copy, part_extractor='regression'), tiny_copy)
  regressor = data.part_regressor
  assert regressor is not None and regressor.images == len(data.rows('train'))
  names = sorted(os.listdir(tiny_copy))
  assert f'parts_v1_regression_v{FORMAT_VERSION}_{regressor.trained_on}.csv' in names
  assert f'parts_v1_regression_v{FORMAT_VERSION}_{regressor.trained_on}_from_image.csv' in names
  test = read_parts_csv(os.path.join(tiny_copy,
                                     f'parts_v1_regression_v{FORMAT_VERSION}_{regressor.trained_on}_from_image.csv'))
  assert set(test) == set(data.table['path'][data.rows('gallery', 'query')])
  # The examples hold the regressor's parts.
  row = int(data.rows('gallery')[0])
  assert CASES[data.examples.case[row]] == test[data.table['path'][row]].case
  with pytest.raises(ValueError, match="part_extractor='hough'; valid values: jumps, regression"):
    DataConfig(data_dir=tiny_copy, part_extractor='hough')


def _parts_cli(*args):
  return subprocess.run([sys.executable, '-m', 'tf_partfash.parts', *args], cwd=REPO,
                        capture_output=True, text=True)


def test_cli_without_a_regressor_says_how_to_teach_one(tiny_copy, tmp_path):
  image = os.path.join(tiny_copy, 'Images', read_attributes(tiny_copy)['path'][0])
  out = _parts_cli('--image', image, '--overlay', str(tmp_path / 'o.png'),
                   '--part_extractor=regression')
  assert out.returncode == 2
  assert '--part_extractor=regression needs --regressor' in out.stderr
  assert '--data_dir DIR --output parts.csv --part_extractor=regression --regressor' in out.stderr
  out = _parts_cli('--image', image, '--overlay', str(tmp_path / 'o.png'), '--regressor', 'x.npz')
  assert out.returncode == 2 and 'with --part_extractor=regression only' in out.stderr


def test_runs_recorded_before_new_settings_resume_with_their_old_values(tmp_path):
  import json

  import dataclasses

  from tf_partfash.config import DataConfig, ModelConfig, TrainConfig
  from tf_partfash.storage.workdir import (RUN_FILE, RunConfig, check_run_config, load_run_config,
                                           save_run_config)
  data = DataConfig(synthetic_images=100)
  old = RunConfig('partnet', ModelConfig(), TrainConfig(), data).to_json()
  # As a run of before these settings wrote it.
  del old['train']['steps_per_epoch'], old['data']['part_extractor']
  del old['data']['gallery_images'], old['data']['query_images']
  (tmp_path / RUN_FILE).write_text(json.dumps(old))
  loaded = load_run_config(str(tmp_path))
  assert loaded.data == data and loaded.data.part_extractor == 'jumps'
  assert loaded.train.steps_per_epoch == 0
  check_run_config(str(tmp_path), RunConfig('partnet', ModelConfig(), TrainConfig(), data))
  regression = dataclasses.replace(data, part_extractor='regression')
  with pytest.raises(ValueError, match="part_extractor: stored 'jumps', requested 'regression'"):
    save_run_config(str(tmp_path), RunConfig('partnet', ModelConfig(), TrainConfig(), regression))


def test_train_records_the_extractor(tmp_path):
  from train_cli import recorded_run
  for extractor in ('jumps', 'regression'):
    run = recorded_run('--flagfile=flags/demo.flags', f'--part_extractor={extractor}',
                       f'--workdir={tmp_path}')
    assert run['data']['part_extractor'] == extractor
  assert recorded_run('--flagfile=flags/demo.flags',
                      f'--workdir={tmp_path}')['data']['part_extractor'] == 'jumps'
  out = subprocess.run([sys.executable, 'train.py', '--flagfile=flags/demo.flags',
                        '--part_extractor=hough', f'--workdir={tmp_path}', '--only_check_args'],
                       cwd=REPO, capture_output=True, text=True)
  assert out.returncode == 1 and 'value should be one of <jumps|regression>' in out.stderr


def test_the_paired_comparison_of_two_extractions_by_hand():
  from tf_partfash.evaluation.paired import paired_extractions
  whole, left_half = (0.0, 0.0, 1.0, 1.0), (0.0, 0.0, 1.0, 0.5)
  truth = {'a.jpg': Parts('sleeve', {'torso': whole}), 'b.jpg': Parts('lower'),
           'c.jpg': Parts('lower')}
  a = {'a.jpg': Parts('sleeve', {'torso': left_half}), 'b.jpg': Parts('lower')}
  b = {'a.jpg': Parts('sleeveless', {'torso': whole}), 'b.jpg': Parts('lower')}
  result = paired_extractions(truth, a, b)
  assert result['images'] == 2  # c.jpg is in neither extraction
  assert (result['case']['a']['mean'], result['case']['b']['mean']) == (1.0, 0.5)
  assert result['case']['b_minus_a']['mean'] == -0.5 and result['case_agreement'] == 0.5
  torso = result['iou']['torso']
  assert (torso['images'], torso['a'], torso['b'], torso['b_minus_a']['mean']) == (1, 0.5, 1.0,
                                                                                   0.5)
  assert set(result['iou']) == {'torso'}
