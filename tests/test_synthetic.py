"""Tests of the synthetic in-shop dataset (tf_partfash.synthetic.dataset, garments)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re

import cv2
import numpy as np
import pytest

from tf_partfash.attributes import (ATTRIBUTE_NAMES, LOWER_BODY_CATEGORIES, MISSING,
                                    SLEEVELESS_VALUES, SPECIAL_ATTRIBUTES, attribute)
from tf_partfash.data import shopping100k
from tf_partfash.parts.boxes import read_parts_csv
from tf_partfash.synthetic import catalogue, dataset as synthetic, shop_labels
from tf_partfash.synthetic.fabrics import COLOR_RGB
from tf_partfash.synthetic.garments import Look, render

N, SEED, W, H = 40, 0, 128, 184


@pytest.fixture(scope='module')
def dataset(tmp_path_factory) -> str:
  out = str(tmp_path_factory.mktemp('synth') / 'one_worker')
  # One style per image on average, so 40 images still show every case.
  synthetic.generate(out, N, seed=SEED, width=W, height=H, workers=1, images_per_style=1)
  return out


def _value(table, row: int, name: str) -> str | None:
  index = int(table[name].iloc[row])
  return None if index == MISSING else attribute(name).value(index)


def test_layout_reads_back_with_the_shopping100k_loader(dataset):
  table = shopping100k.read_attributes(dataset)  # also checks every listed image exists
  assert len(table) == N
  assert sorted(os.listdir(os.path.join(dataset, 'Attributes'))) == sorted(
      f'{n}.txt' for n in ATTRIBUTE_NAMES)
  with open(os.path.join(dataset, 'Attributes', 'color.txt'), encoding='utf-8') as f:
    text = f.read()
  assert not text.endswith('\n') and text.count('\n') == N - 1  # as distributed
  for row, path in enumerate(table['path']):
    gender, folder, name = path.split('/')
    assert gender == _value(table, row, 'gender')
    category = int(table['category'].iloc[row])
    assert folder == shopping100k.category_folder(gender, category)
    assert re.fullmatch(r'\d{7}_\d+\.jpg', name), name
    assert int(name[:7]) == row + 1  # product id = index + 1
  img = cv2.imread(shopping100k.image_file(dataset, table['path'].iloc[0]))
  assert img.shape == (H, W, 3)
  assert (img[0:3, :] > 235).all()  # white background at the top margin


def test_lower_body_images_have_no_collar_sleeves_or_parts(dataset):
  table = shopping100k.read_attributes(dataset)
  truth = read_parts_csv(os.path.join(dataset, synthetic.PARTS_FILE))
  lower = [r for r in range(N) if _value(table, r, 'category') in LOWER_BODY_CATEGORIES]
  assert len(lower) >= 3
  for r in lower:
    assert table['collar'].iloc[r] == MISSING and table['sleevelen'].iloc[r] == MISSING
    parts = truth[table['path'].iloc[r]]
    assert parts.case == 'lower' and not parts.boxes


def test_parts_truth_matches_labels(dataset):
  table = shopping100k.read_attributes(dataset)
  truth = read_parts_csv(os.path.join(dataset, synthetic.PARTS_FILE))
  assert set(truth) == set(table['path'])
  cases = set()
  for r, path in enumerate(table['path']):
    parts = truth[path]
    cases.add(parts.case)
    has_sleeves = 'left_sleeve' in parts.boxes and 'right_sleeve' in parts.boxes
    assert has_sleeves == (parts.case == 'sleeve'), path
    sleevelen = _value(table, r, 'sleevelen')
    if sleevelen is not None:
      assert (parts.case == 'sleeveless') == (sleevelen in SLEEVELESS_VALUES), path
    if parts.case != 'lower':
      assert {'collar', 'torso', 'chest', 'fastening'} <= set(parts.boxes)
      ty1, tx1, ty2, tx2 = parts.boxes['torso']
      cy1, cx1, cy2, cx2 = parts.boxes['chest']
      assert tx1 <= cx1 < cx2 <= tx2 and ty1 <= cy1 < cy2 <= ty2, path
      if has_sleeves:  # left = image left
        assert parts.boxes['left_sleeve'][1] < parts.boxes['right_sleeve'][1]
  assert cases == {'lower', 'sleeve', 'sleeveless'}


def _nearest_color(rgb: np.ndarray) -> str:
  return min(COLOR_RGB, key=lambda c: float(np.sum((np.float32(COLOR_RGB[c]) - rgb) ** 2)))


def test_chest_shows_the_drawn_colour_on_plain_garments(dataset):
  """The chest's median is the shown colour within its dye (+-10) and exposure (x0.85-1.15)
  range; the label may name a neighbour (keyword noise), the pixels never do."""
  table = shopping100k.read_attributes(dataset)
  truth = read_parts_csv(os.path.join(dataset, synthetic.PARTS_FILE))
  cat = catalogue.make_catalogue(SEED, catalogue.num_styles(N, 1))
  checked = 0
  for r, path in enumerate(table['path']):
    _, look, _, drawn_path, _ = catalogue.draw_image(SEED, r, cat)
    assert drawn_path == path
    if look.pattern != 'Plain' or look.color == 'Multi' or truth[path].case == 'lower':
      continue
    img = cv2.imread(shopping100k.image_file(dataset, path))[..., ::-1]
    y1, x1, y2, x2 = truth[path].boxes['chest']
    crop = img[int(y1 * H):int(y2 * H), int(x1 * W):int(x2 * W)].reshape(-1, 3)
    median = np.median(crop, axis=0)
    rgb = np.float32(COLOR_RGB[look.color])
    low, high = (rgb - 10) * 0.85 - 6, np.minimum((rgb + 10) * 1.15, 255) + 6  # 6: JPEG
    assert ((median >= low) & (median <= high)).all(), (path, median, look.color)
    checked += 1
  assert checked >= 3


def test_keyword_label_noise_names_a_neighbour():
  """Labels differ from the shown value at about `LABEL_NOISE`'s rate, always by naming one of
  the value's `CONFUSABLE` neighbours."""
  cat = catalogue.make_catalogue(0, catalogue.num_styles(3000, 8))
  flips = {n: 0 for n in SPECIAL_ATTRIBUTES}
  shown_count = dict(flips)
  for index in range(3000):
    _, look, labels, _, _ = catalogue.draw_image(0, index, cat)
    for name in SPECIAL_ATTRIBUTES:
      shown, label = getattr(look, name), labels[name]
      if shown is None or label is None:
        continue
      shown_count[name] += 1
      if label != shown:
        assert label in shop_labels.CONFUSABLE[name][shown], (name, shown, label)
        flips[name] += 1
  for name, rate in shop_labels.LABEL_NOISE.items():
    # Values without neighbours are never flipped, so the rate is an upper bound.
    assert 0.5 * rate < flips[name] / shown_count[name] < 1.3 * rate, (name, flips[name])


def _digests(root: str) -> dict[str, str]:
  out = {}
  for d, _, files in os.walk(root):
    for f in files:
      with open(os.path.join(d, f), 'rb') as fh:
        out[os.path.relpath(os.path.join(d, f), root)] = hashlib.sha256(fh.read()).hexdigest()
  return out


def test_one_and_two_workers_write_identical_files(dataset, tmp_path):
  other = str(tmp_path / 'two_workers')
  synthetic.generate(other, N, seed=SEED, width=W, height=H, workers=2, images_per_style=1)
  a, b = _digests(dataset), _digests(other)
  assert len(a) == N + 12 + 2  # images, attribute files, parts_truth.csv, synthetic.json
  assert a == b


def test_an_interrupted_generation_resumes_with_identical_files(dataset, tmp_path, monkeypatch):
  other = str(tmp_path / 'interrupted')
  rendered = []
  render_chunk = synthetic._render_chunk

  def failing(args):
    if args[5][0] >= 2 * synthetic._CHUNK:  # the third chunk: as if killed there
      raise KeyboardInterrupt
    rendered.append(args[5][0])
    return render_chunk(args)
  monkeypatch.setattr(synthetic, '_CHUNK', 4)  # N images in several chunks
  monkeypatch.setattr(synthetic, '_render_chunk', failing)
  with pytest.raises(KeyboardInterrupt):
    synthetic.generate(other, N, seed=SEED, width=W, height=H, workers=1, images_per_style=1)
  assert rendered == [0, 4] and not os.path.exists(os.path.join(other, synthetic.MARKER_FILE))
  monkeypatch.setattr(synthetic, '_render_chunk',
                      lambda args: (rendered.append(args[5][0]), render_chunk(args))[1])
  synthetic.generate(other, N, seed=SEED, width=W, height=H, workers=1, images_per_style=1)
  assert rendered[2:] == list(range(8, N, 4))  # only the chunks not yet finished
  assert _digests(other) == _digests(dataset)  # the files of an uninterrupted generation
  assert not os.path.exists(os.path.join(other, synthetic.PARTIAL_DIR))


def test_other_seed_gives_other_images(tmp_path):
  a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
  synthetic.generate(a, 3, seed=0, width=W, height=H)
  synthetic.generate(b, 3, seed=1, width=W, height=H)
  ta, tb = shopping100k.read_attributes(a), shopping100k.read_attributes(b)
  assert not (shopping100k.labels_of(ta) == shopping100k.labels_of(tb)).all()


def test_ensure_dataset_marker(tmp_path, monkeypatch):
  out = str(tmp_path / 'd')
  assert synthetic.ensure_dataset(out, 4, seed=2, width=W, height=H) == out
  with open(os.path.join(out, synthetic.MARKER_FILE), encoding='utf-8') as f:
    assert json.load(f) == {'version': synthetic.VERSION, 'num_images': 4, 'seed': 2,
                            'width': W, 'height': H, 'images_per_style': 8}

  def fail(*args, **kwargs):
    raise AssertionError('a second ensure_dataset call must not regenerate')

  monkeypatch.setattr(synthetic, 'generate', fail)
  assert synthetic.ensure_dataset(out, 4, seed=2, width=W, height=H) == out
  with pytest.raises(ValueError, match=r"'num_images': 4.*'num_images': 5"):
    synthetic.ensure_dataset(out, 5, seed=2, width=W, height=H)
  with pytest.raises(ValueError, match=r"'images_per_style': 8}.*'images_per_style': 2}"):
    synthetic.ensure_dataset(out, 4, seed=2, width=W, height=H, images_per_style=2)


def test_generate_rejects_bad_arguments(tmp_path):
  with pytest.raises(ValueError, match='num_images'):
    synthetic.generate(str(tmp_path), 0)
  with pytest.raises(ValueError, match='workers'):
    synthetic.generate(str(tmp_path), 2, workers=0)
  with pytest.raises(ValueError, match='images_per_style must be >= 1, got 0.5'):
    synthetic.generate(str(tmp_path), 2, images_per_style=0.5)


def test_label_only_sample_is_what_generate_writes(dataset):
  table, _ = catalogue.sample_table(N, SEED, images_per_style=1)
  written = shopping100k.read_attributes(dataset)
  assert table['path'].tolist() == written['path'].tolist()
  assert (shopping100k.labels_of(table) == shopping100k.labels_of(written)).all()


def test_num_styles():
  assert catalogue.num_styles(5000, 8) == 625
  assert catalogue.num_styles(100, 8) == 12  # 12.5 rounds to even
  assert catalogue.num_styles(3, 8) == 1  # never an empty catalogue
  with pytest.raises(ValueError, match='images_per_style'):
    catalogue.num_styles(10, 0)


def test_catalogue_depends_on_the_seed_alone():
  a = catalogue.make_catalogue(7, 30)
  catalogue.make_catalogue.cache_clear()
  b = catalogue.make_catalogue(7, 30)
  assert b is not a and b.styles == a.styles and np.array_equal(b.cumulative, a.cumulative)
  assert catalogue.make_catalogue(7, 10).styles == a.styles[:10]  # style k from (seed, k)
  assert catalogue.make_catalogue(8, 30).styles != a.styles
  # Popularity (r + 0.07) ** -2.5 at ranks r = 0.5/30, 29.5/30: 0.08667 ** -2.5 = 452.2 and
  # 1.0533 ** -2.5 = 0.878.
  weights = np.diff(a.cumulative, prepend=0.0)
  assert weights[0] == pytest.approx(452.2, rel=1e-3)
  assert weights[-1] == pytest.approx(0.878, rel=1e-3)
  assert (np.diff(weights) < 0).all()  # best-seller first


def test_versions_of_a_style_differ_only_in_its_alternatives():
  cat = catalogue.make_catalogue(3, 40)
  seen_variants = set()
  for index in range(600):
    k, look, labels, _, _ = catalogue.draw_image(3, index, cat)
    style = cat.styles[k]
    base = style.look
    # Apart from the five special attributes the image is its style's base garment, shape and all.
    assert dataclasses.replace(look, **{n: getattr(base, n) for n in SPECIAL_ATTRIBUTES}) == base
    for name in SPECIAL_ATTRIBUTES:
      shown = getattr(look, name)
      assert shown == getattr(base, name) or shown in style.alternatives[name], (k, name, shown)
      if shown != getattr(base, name):
        seen_variants.add(name)
      # Missing, the shown value, or (keyword noise) one of its neighbours.
      assert labels[name] in (None, shown) + shop_labels.CONFUSABLE[name].get(shown, ())
    assert labels['category'] == base.category and labels['gender'] == base.gender
    assert labels['fit'] == base.fit and labels['pocket'] == base.pocket
    assert labels['fabric'] in (None, style.fabric) or labels['fabric'] == 'Denim'
    if base.category in LOWER_BODY_CATEGORIES:
      assert look.collar is None and look.sleevelen is None
      assert style.alternatives['collar'] == style.alternatives['sleevelen'] == ()
    elif look.sleevelen is not None:  # sleeve versions keep the case of §4.3 apart from bareness
      assert (look.sleevelen in ('Spaghetti', 'Strapless')) == (
          base.sleevelen in ('Spaghetti', 'Strapless'))
  assert seen_variants == set(SPECIAL_ATTRIBUTES)


def test_the_demo_dataset_offers_a_thousand_queries_per_setting():
  """flags/demo.flags: 25,000 synthetic images split 4,000 / 19,000 / 2,000 (the paper's gallery
  and query sizes). §7's rule (a query counts only where some gallery image is a possible hit)
  leaves at least 1,000 queries in every setting and dozens per manipulated attribute; with
  independent labels instead of a catalogue of styles there would be almost no direct target."""
  from tf_partfash.data import splits
  from tf_partfash.evaluation import queries
  table, _ = catalogue.sample_table(25000, 0)
  split = splits.paper_split(table['path'], 0, 19000, 2000)
  drawn = queries.make_paper_queries(table, split, 0)
  for setting, query_set in drawn.items():
    assert len(query_set) >= 1000, (setting, len(query_set), query_set.left_out)
  for name in SPECIAL_ATTRIBUTES:
    assert sum(name in c for c in drawn['manipulate1'].changes) >= 50, name


def _look(**kw) -> Look:
  base = dict(gender='Male', category='Jacket', silhouette='top', color='Gray', pattern='Plain',
              collar='Round', fastening='No closure', sleevelen='Long', fit='Regular')
  base.update(kw)
  return Look(**base)


def test_sleeves_hang_apart_from_the_torso():
  """§4.3's jump: below the armpit a row crosses sleeve, torso, sleeve (3 runs), below the
  cuffs only the torso (1 run)."""
  img, parts = render(_look(), 381, 550, np.random.default_rng(0))
  fg = (img.min(axis=2) < 235).astype(np.int8)
  runs = (np.diff(fg, axis=1) == 1).sum(axis=1) + fg[:, 0]
  sy1 = max(parts.boxes['left_sleeve'][0], parts.boxes['right_sleeve'][0])
  sy2 = min(parts.boxes['left_sleeve'][2], parts.boxes['right_sleeve'][2])
  last_cuff = max(parts.boxes['left_sleeve'][2], parts.boxes['right_sleeve'][2])
  _, _, ty2, _ = parts.boxes['torso']
  lower_sleeve = runs[int((0.4 * sy1 + 0.6 * sy2) * 550):int((0.1 * sy1 + 0.9 * sy2) * 550)]
  assert (lower_sleeve == 3).mean() > 0.9
  below_cuffs = runs[int(last_cuff * 550) + 3:int(ty2 * 550) - 3]
  assert len(below_cuffs) > 5 and (below_cuffs == 1).all()


@pytest.mark.parametrize('name', ['collar', 'fastening', 'pattern'])
def test_every_value_is_drawn_distinctly(name):
  """Same garment, same randomness: each value changes the pixels of its own part."""
  part = {'collar': 'collar', 'fastening': 'fastening', 'pattern': 'chest'}[name]
  crops = []
  for value in attribute(name).values:
    img, parts = render(_look(**{name: value}), 190, 275, np.random.default_rng(3))
    y1, x1, y2, x2 = parts.boxes[part]
    crops.append(cv2.resize(img[int(y1 * 275):int(y2 * 275) + 1, int(x1 * 190):int(x2 * 190) + 1],
                            (32, 48), interpolation=cv2.INTER_AREA).astype(np.float32))
  for i in range(len(crops)):
    for j in range(i):
      diff = np.abs(crops[i] - crops[j]).mean()
      assert diff > 1.0, (attribute(name).values[i], attribute(name).values[j], diff)


def test_all_sleeve_lengths_and_silhouettes_render():
  cases = {}
  for value in attribute('sleevelen').values:
    _, parts = render(_look(gender='Female', category='Dress', silhouette='dress', sleevelen=value,
                            collar=None), 96, 138, np.random.default_rng(1))
    cases[value] = parts.case
  assert {v for v, c in cases.items() if c == 'sleeveless'} == set(SLEEVELESS_VALUES)
  for silhouette in ('trousers', 'shorts', 'skirt', 'trunks', 'briefs'):
    img, parts = render(_look(category='Trouser', silhouette=silhouette, collar=None,
                              sleevelen=None), 96, 138, np.random.default_rng(1))
    assert parts.case == 'lower' and (img < 235).any()
