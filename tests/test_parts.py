"""Part extraction (§4.3): drawn silhouettes with known parts, real samples, dataset cache, CLI."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from tf_partfash.attributes import ATTRIBUTES, attribute
from tf_partfash.data.shopping100k import read_attributes, write_attributes
from tf_partfash.parts import (Parts, compute_parts, ensure_parts, extract_parts, lower_body_of,
                               read_image, read_parts_csv, score_parts, write_parts_csv)
from tf_partfash.parts.__main__ import main

H, W = 1100, 762
INK = (40, 50, 110)


def _canvas() -> np.ndarray:
  return np.full((H, W, 3), 255, np.uint8)


def _poly(img: np.ndarray, *points: tuple[int, int]) -> None:
  cv2.fillPoly(img, [np.array(points, np.int32)], INK)


def _tshirt(left_hem: int = 380, right_hem: int = 380) -> np.ndarray:
  """Torso x 230..532 from the shoulders (y 150) to y 1000 under a neck slope from y 100; short
  sleeves out to x 110 and 652 from the shoulder row 150 down to their hems."""
  img = _canvas()
  _poly(img, (331, 100), (431, 100), (532, 150), (532, 1000), (230, 1000), (230, 150))
  _poly(img, (110, 150), (230, 150), (230, left_hem), (110, left_hem))
  _poly(img, (532, 150), (652, 150), (652, right_hem), (532, right_hem))
  return img


def _coat() -> np.ndarray:
  """Long sleeves hanging from the shoulders, with a gap to the torso (x 230..532) from the
  armpits (y 330) down to the cuffs (y 750)."""
  img = _canvas()
  _poly(img, (331, 100), (431, 100), (532, 150), (532, 1000), (230, 1000), (230, 150))
  _poly(img, (230, 150), (140, 200), (130, 750), (212, 750), (212, 330), (230, 330))
  _poly(img, (532, 150), (622, 200), (632, 750), (550, 750), (550, 330), (532, 330))
  return img


def _vest() -> np.ndarray:
  img = _canvas()
  _poly(img, (331, 100), (431, 100), (512, 160), (512, 1000), (250, 1000), (250, 160))
  return img


def _trousers() -> np.ndarray:
  img = _canvas()
  _poly(img, (250, 100), (512, 100), (530, 1000), (396, 1000), (381, 420), (366, 1000),
        (232, 1000))
  return img


def _trunks() -> np.ndarray:
  """Swimming trunks: a waistband as wide as the hips, short legs with a small notch between."""
  img = _canvas()
  _poly(img, (150, 400), (612, 400), (630, 700), (395, 700), (381, 640), (367, 700), (132, 700))
  return img


def _swimsuit() -> np.ndarray:
  """A swimsuit: two straps over a body narrowing to the crotch (no sleeves, no waistband)."""
  img = _canvas()
  _poly(img, (250, 150), (280, 150), (300, 400), (270, 400))
  _poly(img, (482, 150), (512, 150), (492, 400), (462, 400))
  _poly(img, (250, 380), (512, 380), (530, 700), (420, 950), (342, 950), (232, 700))
  return img


def _near(box, expected, tol=0.02):
  assert np.abs(np.subtract(box, expected)).max() <= tol, (box, expected)


def test_short_sleeves_end_at_the_drawn_hem():
  parts = extract_parts(_tshirt(), lower_body=False)
  assert parts.case == 'sleeve'
  _near(parts.boxes['left_sleeve'], (150 / H, 110 / W, 380 / H, 230 / W))
  _near(parts.boxes['right_sleeve'], (150 / H, 532 / W, 380 / H, 652 / W))
  _near(parts.boxes['torso'][1::2], (230 / W, 532 / W))


def test_hanging_sleeves_meet_the_torso_at_the_drawn_gap():
  parts = extract_parts(_coat(), lower_body=None)
  assert parts.case == 'sleeve'
  _near(parts.boxes['left_sleeve'], (150 / H, 130 / W, 750 / H, 230 / W))
  _near(parts.boxes['right_sleeve'], (150 / H, 532 / W, 750 / H, 632 / W))


def test_sleeveless_has_no_sleeve_boxes():
  parts = extract_parts(_vest(), lower_body=False)
  assert parts.case == 'sleeveless'
  assert set(parts.boxes) == {'collar', 'torso', 'chest', 'fastening'}
  _near(parts.boxes['torso'][1::2], (250 / W, 512 / W))


def test_lower_body_from_the_image_or_the_caller():
  assert extract_parts(_trousers(), lower_body=None) == Parts('lower')
  assert extract_parts(_tshirt(), lower_body=True) == Parts('lower')
  assert extract_parts(_tshirt(), lower_body=None).case == 'sleeve'
  assert extract_parts(_trousers(), lower_body=False).case != 'lower'


def test_trunks_are_lower_and_a_swimsuit_is_not():
  # Both are Swimming: only the silhouette can tell (a straight waistband versus straps).
  assert extract_parts(_trunks(), lower_body=None).case == 'lower'
  swimsuit = extract_parts(_swimsuit(), lower_body=None)
  assert swimsuit.case == 'sleeveless'
  # The torso starts under the straps, where the body is wide.
  assert abs(swimsuit.boxes['torso'][0] - 380 / H) < 0.02


def test_tilted_image_keeps_its_sleeves():
  img = _tshirt()
  turn = cv2.getRotationMatrix2D((W / 2, H / 2), 3.0, 1.0)
  tilted = cv2.warpAffine(img, turn, (W, H), borderValue=(255, 255, 255))
  parts = extract_parts(tilted, lower_body=None)
  assert parts.case == 'sleeve'
  _near(parts.boxes['left_sleeve'], extract_parts(img).boxes['left_sleeve'], tol=0.04)


def test_any_image_gives_valid_parts():
  # Not garments at all (blank, noise, random shapes, tiny): valid Parts, never an exception.
  rng = np.random.default_rng(0)
  images = [_canvas(), np.zeros((H, W, 3), np.uint8), np.full((4, 3, 3), 200, np.uint8),
            rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)]
  for _ in range(30):
    img = np.full((220, 150, 3), 255, np.uint8)
    pts = (rng.random((int(rng.integers(3, 8)), 2)) * [150, 220]).astype(np.int32)
    cv2.fillPoly(img, [pts], (30, 60, 90))
    images.append(img)
  for img in images:
    for lower_body in (None, False):
      assert isinstance(extract_parts(img, lower_body), Parts)
  with pytest.raises(ValueError, match='RGB uint8'):
    extract_parts(np.zeros((10, 10), np.uint8))


def _assert_flip_equivariant(img: np.ndarray) -> None:
  parts, mirrored = extract_parts(img).flipped(), extract_parts(np.fliplr(img))
  assert parts.case == mirrored.case
  assert set(parts.boxes) == set(mirrored.boxes)
  for name in parts.boxes:
    _near(mirrored.boxes[name], parts.boxes[name], tol=0.01)


def test_flip_equivariance_drawn_and_real(shopping100k_sample):
  _assert_flip_equivariant(_tshirt(left_hem=300, right_hem=450))
  _assert_flip_equivariant(read_image(f'{shopping100k_sample}/Images/Male/1_Coats/0000134_2.jpg'))


def test_real_samples(shopping100k_sample):
  table = read_attributes(shopping100k_sample)
  expected = {'0000095_13': 'sleeveless', '0000097_14': 'sleeve', '0000134_2': 'sleeve',
              '0000230_2': 'sleeve'}
  for path, category in zip(table['path'], table['category']):
    image = read_image(f'{shopping100k_sample}/Images/{path}')
    parts = extract_parts(image, lower_body_of(category))
    assert parts.case == expected[os.path.basename(path)[:-4]], path
    if parts.case == 'sleeve':
      assert parts.boxes['left_sleeve'][3] < 1 / 3 and parts.boxes['right_sleeve'][1] > 2 / 3
      # Long sleeves: from the shoulders (top tenth) to the cuffs (below the middle).
      for side in ('left_sleeve', 'right_sleeve'):
        assert parts.boxes[side][0] < 0.2 and parts.boxes[side][2] > 0.6, (path, side)


def test_read_image_reduced(tmp_path):
  file = str(tmp_path / 'coat.jpg')
  cv2.imwrite(file, _coat()[:, :, ::-1])
  assert read_image(file).shape == (H, W, 3)
  # DCT-scaled decoding (1/2, 1/4, 1/8) to no fewer rows than asked for.
  assert read_image(file, 275).shape == (275, 191, 3)
  assert read_image(file, 300).shape == (550, 381, 3)


def test_lower_body_of_labels():
  category = attribute('category')
  assert lower_body_of(category.index('Trouser')) is True
  assert lower_body_of(category.index('Coat')) is False
  assert lower_body_of(category.index('Swimming')) is None
  assert lower_body_of(-1) is None


def _write_dataset(root) -> tuple[str, list[str]]:
  """A tiny Shopping100k-layout dataset: t-shirt, coat, vest (all Shirts), trousers (Swimming)."""
  data_dir = str(root / 'data')
  images = {'Male/4_Shirts/0000001_1.jpg': (_tshirt(), 'Shirt'),
            'Male/4_Shirts/0000002_1.jpg': (_coat(), 'Shirt'),
            'Male/4_Shirts/0000003_1.jpg': (_vest(), 'Shirt'),
            'Male/10_Swimming/0000004_1.jpg': (_trousers(), 'Swimming')}
  labels = np.full((len(images), len(ATTRIBUTES)), -1, np.int64)
  for i, (path, (img, category)) in enumerate(images.items()):
    os.makedirs(os.path.dirname(f'{data_dir}/Images/{path}'), exist_ok=True)
    cv2.imwrite(f'{data_dir}/Images/{path}', img[:, :, ::-1])
    labels[i, 0] = attribute('category').index(category)
  write_attributes(data_dir, list(images), labels)
  return data_dir, list(images)


def test_cli_round_trip_and_scores(tmp_path, capsys):
  data_dir, paths = _write_dataset(tmp_path)
  truth_file = str(tmp_path / 'truth.csv')
  truth = {paths[0]: Parts('sleeve', {'left_sleeve': (150 / H, 110 / W, 380 / H, 230 / W)}),
           paths[1]: Parts('sleeve'), paths[2]: Parts('sleeveless'), paths[3]: Parts('lower')}
  write_parts_csv(truth_file, truth.items())
  output = str(tmp_path / 'parts.csv')
  main(['--data_dir', data_dir, '--output', output, '--truth', truth_file])
  printed = capsys.readouterr().out
  assert 'case accuracy: 100.0%' in printed
  assert 'left_sleeve   0.9' in printed  # the drawn t-shirt sleeve, found within a few pixels
  written = read_parts_csv(output)
  assert list(written) == paths
  assert [p.case for p in written.values()] == ['sleeve', 'sleeve', 'sleeveless', 'lower']
  computed = compute_parts(data_dir, read_attributes(data_dir), progress=False)
  for path in paths:
    assert written[path].case == computed[path].case
    for name, box in computed[path].boxes.items():
      np.testing.assert_allclose(written[path].boxes[name], box, atol=1e-5)


def test_score_parts_golden():
  truth = {'a': Parts('sleeve', {'torso': (0, 0, 0.5, 1)}),
           'b': Parts('sleeve', {'torso': (0.5, 0.5, 1, 1), 'left_sleeve': (0, 0, 1, 0.2)}),
           'c': Parts('sleeveless')}
  predicted = {'a': Parts('sleeve', {'torso': (0, 0, 0.5, 0.5)}),
               'b': Parts('sleeveless', {'torso': (0, 0, 1, 1)}), 'c': Parts('lower'),
               'not in truth': Parts('lower')}
  scores = score_parts(predicted, truth)
  assert scores['images'] == 3
  assert scores['case_accuracy'] == pytest.approx(1 / 3)
  # Rows true, columns predicted, in CASES order (lower, sleeve, sleeveless).
  np.testing.assert_array_equal(scores['confusion'], [[0, 0, 0], [0, 1, 1], [1, 0, 0]])
  assert scores['iou']['torso'] == pytest.approx((0.5 + 0.25) / 2)
  assert scores['iou_count'] == {'collar': 0, 'torso': 2, 'chest': 0, 'left_sleeve': 0,
                                 'right_sleeve': 0, 'fastening': 0}
  assert np.isnan(scores['iou']['left_sleeve'])


def test_cache_resumes_and_workers_agree(tmp_path):
  data_dir, paths = _write_dataset(tmp_path)
  table = read_attributes(data_dir)
  cache = str(tmp_path / 'cache.csv')
  # A cached record (deliberately not what extraction gives) and one for another table.
  write_parts_csv(cache, [(paths[0], Parts('sleeveless')), ('other.jpg', Parts('lower'))])
  parts = ensure_parts(data_dir, table, cache, workers=2, progress=False)
  assert parts[paths[0]] == Parts('sleeveless')
  assert [p.case for p in parts.values()] == ['sleeveless', 'sleeve', 'sleeveless', 'lower']
  reread = read_parts_csv(cache)
  assert set(reread) == set(paths) | {'other.jpg'}
  # The run that computes the cache returns what the file holds (boxes to 5 decimals), so it
  # trains on exactly the boxes every later run reads back.
  assert parts == {p: reread[p] for p in paths}
  assert parts == ensure_parts(data_dir, table, cache, progress=False)
  single = compute_parts(data_dir, table.iloc[1:], workers=1, progress=False)
  write_parts_csv(str(tmp_path / 'single.csv'), single.items())
  assert {p: parts[p] for p in paths[1:]} == read_parts_csv(str(tmp_path / 'single.csv'))


def test_corrupt_jpeg_is_an_error_naming_the_file(tmp_path):
  data_dir, paths = _write_dataset(tmp_path)
  bad = f'{data_dir}/Images/{paths[1]}'
  with open(bad, 'rb') as f:
    content = f.read()
  with open(bad, 'wb') as f:
    f.write(content[:len(content) // 3])
  with pytest.raises(ValueError, match='0000002_1.jpg'):
    compute_parts(data_dir, read_attributes(data_dir), progress=False)
  # The work done before the error is kept in the cache.
  cache = str(tmp_path / 'cache.csv')
  with pytest.raises(ValueError, match='0000002_1.jpg'):
    ensure_parts(data_dir, read_attributes(data_dir), cache, progress=False)
  assert list(read_parts_csv(cache)) == paths[:1]
  with open(bad, 'wb') as f:
    f.write(b'\xff\xd8\xff\xe0 not a jpeg')
  with pytest.raises(ValueError, match='0000002_1.jpg'):
    read_image(bad)
