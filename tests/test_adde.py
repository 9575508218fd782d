"""ADDE split files: reading the real lists, round trips, errors, and ADDE's query rule."""
from __future__ import annotations

import os

import numpy as np
import pytest

from tf_partfash.attributes import ATTRIBUTES, ATTRIBUTE_NAMES, NUM_VALUES, OFFSETS
from tf_partfash.data import adde

# Column offsets of the 151-dim encoding, worked out from the vocabulary sizes
# 16 17 19 14 10 15 2 11 16 7 9 15.
COLLAR, COLOR, PATTERN = 16, 33, 104


def _labels(**values: int) -> list[int]:
  """One image's 12 label indices: the given ones, all others missing."""
  return [values.get(name, -1) for name in ATTRIBUTE_NAMES]


# Five test images, ADDE keeps exactly the queries listed in `_EXPECTED` (worked out by hand):
#   ref 0 collar->Lined(3) matches image 2, color->White(2) matches image 1;
#   ref 1 color->Black(1) matches image 0 (collar->3 would need image 4 without its pattern);
#   ref 2 collar->Mandarin(7) matches image 0; ref 3 has no color: color 1 and 2 match 0 and 1;
#   ref 4 (with a pattern) matches nothing.
FIVE = np.array([
    _labels(collar=7, color=1),
    _labels(collar=7, color=2),
    _labels(collar=3, color=1),
    _labels(collar=7),
    _labels(collar=3, color=2, pattern=12),
])
# (reference, attribute, old value or -1, new value)
_EXPECTED = [(0, 'collar', 7, 3), (0, 'color', 1, 2), (1, 'color', 2, 1), (2, 'collar', 3, 7),
             (3, 'color', -1, 1), (3, 'color', -1, 2)]


def _expected_arrays(expected):
  ref = np.array([e[0] for e in expected])
  indicator = np.zeros((len(expected), NUM_VALUES), np.int8)
  target = np.zeros((len(expected), NUM_VALUES), np.uint8)
  for q, (r, name, old, new) in enumerate(expected):
    offset = {'collar': COLLAR, 'color': COLOR}[name]
    indicator[q, offset + new] = 1
    if old >= 0:
      indicator[q, offset + old] = -1
    for j, value in enumerate(FIVE[r]):
      if value >= 0 and ATTRIBUTE_NAMES[j] != name:
        target[q, OFFSETS[ATTRIBUTE_NAMES[j]] + value] = 1
    target[q, offset + new] = 1
  return ref, indicator, target


def test_offsets_used_by_these_tests():
  assert (OFFSETS['collar'], OFFSETS['color'], OFFSETS['pattern']) == (COLLAR, COLOR, PATTERN)


def test_make_queries_on_five_images():
  q = adde.make_adde_queries(FIVE, num_references=5)
  ref, indicator, target = _expected_arrays(_EXPECTED)
  np.testing.assert_array_equal(q.ref, ref)
  np.testing.assert_array_equal(q.indicator, indicator)
  np.testing.assert_array_equal(q.target, target)
  # Query 0: +1 at Lined (16 + 3), -1 at Mandarin (16 + 7); target Lined + Black (33 + 1).
  assert np.nonzero(q.indicator[0])[0].tolist() == [19, 23]
  assert np.nonzero(q.target[0])[0].tolist() == [19, 34]
  attr, value = q.manipulations()
  assert [ATTRIBUTES[a].name for a in attr] == [e[1] for e in _EXPECTED]
  assert value.tolist() == [e[3] for e in _EXPECTED]


def test_make_queries_limits_references_and_attributes():
  q = adde.make_adde_queries(FIVE, num_references=2)
  np.testing.assert_array_equal(q.ref, [0, 0, 1])
  q = adde.make_adde_queries(FIVE, num_references=5, attributes=['Color'])
  ref, indicator, _ = _expected_arrays([e for e in _EXPECTED if e[1] == 'color'])
  np.testing.assert_array_equal(q.ref, ref)
  np.testing.assert_array_equal(q.indicator, indicator)
  with pytest.raises(ValueError, match='unknown attribute'):
    adde.make_adde_queries(FIVE, attributes=['colour'])


def test_make_queries_matches_brute_force():
  rng = np.random.default_rng(3)
  # Few distinct label rows, so that many targets exist.
  # A few label rows, each image one of them with at most one value changed: many targets exist.
  base = np.stack([rng.integers(-1, a.num_values, 6) for a in ATTRIBUTES], axis=1)
  labels = base[rng.integers(0, 6, 80)]
  for i, j in enumerate(rng.integers(0, 12, 80)):
    labels[i, j] = rng.integers(-1, ATTRIBUTES[j].num_values)
  rows = {tuple(r) for r in labels.tolist()}
  expected = []
  for r in range(30):
    for j, attr in enumerate(ATTRIBUTES):
      for v in range(attr.num_values):
        wanted = labels[r].tolist()
        if wanted[j] == v:
          continue
        wanted[j] = v
        if tuple(wanted) in rows:
          expected.append((r, OFFSETS[attr.name] + v))
  q = adde.make_adde_queries(labels, num_references=30)
  assert len(expected) > 30
  assert list(zip(q.ref.tolist(), np.argmax(q.indicator == 1, axis=1).tolist())) == expected


def test_queries_round_trip(tmp_path):
  q = adde.make_adde_queries(FIVE, num_references=5)
  adde.write_adde_queries(str(tmp_path), q)
  assert (tmp_path / 'ref_test.txt').read_text() == '0\n0\n1\n2\n3\n3\n'
  assert (tmp_path / 'indfull_test.txt').read_text().splitlines()[0].split()[19] == '1'
  back = adde.read_adde_queries(str(tmp_path), num_images=5)
  np.testing.assert_array_equal(back.ref, q.ref)
  np.testing.assert_array_equal(back.indicator, q.indicator)
  np.testing.assert_array_equal(back.target, q.target)


def test_image_list_and_labels_round_trip(tmp_path):
  paths = ['Male/1_Coats/0000095_13.jpg', 'Female/16_Dresses/0035101_12.jpg']
  file = str(tmp_path / 'imgs_test.txt')
  adde.write_image_list(file, paths)
  assert adde.read_image_list(file) == paths
  labels = np.array([_labels(collar=7, color=1, sport=14), _labels()])
  adde.write_labels(str(tmp_path / 'labels_test.txt'), labels)
  expected = ['0'] * NUM_VALUES
  for column in (23, 34, 150):  # collar 16 + 7, color 33 + 1, sport 136 + 14
    expected[column] = '1'
  assert (tmp_path / 'labels_test.txt').read_text() == (' '.join(expected) + '\n'
                                                        + ' '.join(['0'] * NUM_VALUES) + '\n')
  np.testing.assert_array_equal(adde.read_labels(str(tmp_path / 'labels_test.txt')), labels)
  adde.write_attr_num(str(tmp_path / 'attr_num.txt'))
  assert (tmp_path / 'attr_num.txt').read_text() == '16\n17\n19\n14\n10\n15\n2\n11\n16\n7\n9\n15\n'


def test_readers_are_liberal_in_whitespace(tmp_path):
  row = ['0'] * NUM_VALUES
  row[COLLAR + 7] = '1'
  (tmp_path / 'labels.txt').write_text('  ' + '\t'.join(row) + '  \r\n' + ' '.join(row)
                                       + '\n\n  \n')
  labels = adde.read_labels(str(tmp_path / 'labels.txt'))
  assert labels.shape == (2, 12) and labels[:, 1].tolist() == [7, 7] and labels[0, 0] == -1
  (tmp_path / 'imgs.txt').write_text('a/0000001_1.jpg\r\nb/0000002_1.jpg')
  assert adde.read_image_list(str(tmp_path / 'imgs.txt')) == ['a/0000001_1.jpg', 'b/0000002_1.jpg']


def _write_rows(file, rows):
  file.write_text('\n'.join(' '.join(map(str, r)) for r in rows) + '\n')


@pytest.mark.parametrize('line, column, value, message', [
    (2, 152, 0, r'labels.txt:2: expected 151 values, got 152'),
    (3, 5, 2, r"labels.txt:3: value '2' in column 5 is not one of 0, 1"),
    (3, 5, 'x', r"labels.txt:3: value 'x' in column 5 is not one of 0, 1"),
    (1, COLLAR + 2, 1, r"labels.txt:1: attribute 'collar' \(columns 17..33\) has 2 values set"),
])
def test_label_errors_name_file_line_and_value(tmp_path, line, column, value, message):
  rows = [[0] * NUM_VALUES for _ in range(3)]
  for r in rows:
    r[COLLAR] = 1
  if column > NUM_VALUES:
    rows[line - 1].append(value)
  else:
    rows[line - 1][column - 1] = value
  _write_rows(tmp_path / 'labels.txt', rows)
  with pytest.raises(ValueError, match=message):
    adde.read_labels(str(tmp_path / 'labels.txt'))


def test_blank_inner_line_and_missing_file(tmp_path):
  (tmp_path / 'imgs.txt').write_text('a.jpg\n\nb.jpg\n')
  with pytest.raises(ValueError, match=r'imgs.txt:2: empty line'):
    adde.read_image_list(str(tmp_path / 'imgs.txt'))
  with pytest.raises(FileNotFoundError, match=r'ref_test.txt'):
    adde.read_adde_queries(str(tmp_path))


def test_image_list_errors(tmp_path):
  (tmp_path / 'imgs.txt').write_text('a.jpg\nb.jpg\na.jpg\n')
  with pytest.raises(ValueError, match=r"imgs.txt:3: image 'a.jpg' already listed on line 1"):
    adde.read_image_list(str(tmp_path / 'imgs.txt'))
  (tmp_path / 'imgs.txt').write_text('a.jpg\nb.jpg 3\n')
  with pytest.raises(ValueError, match=r"imgs.txt:2: expected one image path, got 'b.jpg 3'"):
    adde.read_image_list(str(tmp_path / 'imgs.txt'))


def test_reference_errors(tmp_path):
  (tmp_path / 'ref_test.txt').write_text('0\n4\n5\n')
  assert adde.read_references(str(tmp_path / 'ref_test.txt'), 6).tolist() == [0, 4, 5]
  with pytest.raises(ValueError, match=r'ref_test.txt:3: reference index 5 out of range \(0..4\)'):
    adde.read_references(str(tmp_path / 'ref_test.txt'), 5)
  (tmp_path / 'ref_test.txt').write_text('0\n-1\n')
  with pytest.raises(ValueError, match=r'ref_test.txt:2: reference index -1 out of range'):
    adde.read_references(str(tmp_path / 'ref_test.txt'))
  (tmp_path / 'ref_test.txt').write_text('0\n1.5\n')
  with pytest.raises(ValueError, match=r"ref_test.txt:2: reference index '1.5' is not an integer"):
    adde.read_references(str(tmp_path / 'ref_test.txt'))


@pytest.mark.parametrize('file, line, column, value, message', [
    ('indfull_test.txt', 2, 0, 2,
     r"indfull_test.txt:2: value '2' in column 1 is not one of -1, 0, 1"),
    ('indfull_test.txt', 3, COLLAR + 5, 1, r'indfull_test.txt:3: 2 values \+1, expected exactly 1'),
    ('indfull_test.txt', 1, COLLAR + 3, 0, r'indfull_test.txt:1: 0 values \+1, expected exactly 1'),
    ('indfull_test.txt', 1, 0, -1, r"indfull_test.txt:1: 2 values -1, expected at most 1"),
    ('indfull_test.txt', 5, PATTERN, -1, r"indfull_test.txt:5: \+1 in attribute 'color' but -1 in "
     r"attribute 'pattern'"),
    ('gt_test.txt', 4, COLOR + 5, 1, r"gt_test.txt:4: attribute 'color' \(columns 34..52\) has 2"),
    ('gt_test.txt', 1, COLLAR + 3, 0, r'gt_test.txt:1: column 20 is 0 but .*indfull_test.txt:1 '
     r'asks for that value'),
])
def test_query_file_errors(tmp_path, file, line, column, value, message):
  adde.write_adde_queries(str(tmp_path), adde.make_adde_queries(FIVE, num_references=5))
  rows = [r.split() for r in (tmp_path / file).read_text().splitlines()]
  rows[line - 1][column] = str(value)
  _write_rows(tmp_path / file, rows)
  with pytest.raises(ValueError, match=message):
    adde.read_adde_queries(str(tmp_path), num_images=5)


def test_query_files_must_agree_in_length(tmp_path):
  adde.write_adde_queries(str(tmp_path), adde.make_adde_queries(FIVE, num_references=5))
  (tmp_path / 'ref_test.txt').write_text('0\n0\n1\n2\n3\n')
  with pytest.raises(ValueError, match=r'indfull_test.txt has 6 queries but .*ref_test.txt has 5'):
    adde.read_adde_queries(str(tmp_path))
  (tmp_path / 'ref_test.txt').write_text('0\n0\n1\n2\n3\n5\n')
  with pytest.raises(ValueError, match=r'ref_test.txt:6: reference index 5 out of range \(0..4\)'):
    adde.read_adde_queries(str(tmp_path), num_images=5)


def test_attr_num_errors(tmp_path):
  (tmp_path / 'attr_num.txt').write_text('16\n17\n20\n14\n10\n15\n2\n11\n16\n7\n9\n15')
  with pytest.raises(ValueError, match=r"attr_num.txt:3: attribute 'color' has 19 values, file "
                     r"says '20'"):
    adde.read_attr_num(str(tmp_path / 'attr_num.txt'))
  (tmp_path / 'attr_num.txt').write_text('16\n17\n19\n')
  with pytest.raises(ValueError, match=r'attr_num.txt: expected 12 lines'):
    adde.read_attr_num(str(tmp_path / 'attr_num.txt'))


def test_real_split_lists(shopping100k_splits):
  splits = shopping100k_splits
  assert adde.read_attr_num(os.path.join(splits, adde.ATTR_NUM_FILE)) == (
      16, 17, 19, 14, 10, 15, 2, 11, 16, 7, 9, 15)
  train = adde.read_image_list(adde.images_file(splits, 'train'))
  test = adde.read_image_list(adde.images_file(splits, 'test'))
  assert (len(train), len(test)) == (80586, 20000)
  assert not set(train) & set(test)
  assert test[0] == 'Female/4_Shirts_blouses/0045884_16.jpg'
  ref = adde.read_references(os.path.join(splits, 'ref_test.txt'), len(test))
  assert len(ref) == 14361
  assert ref.min() == 0 and ref.max() == 1999
  # ADDE orders queries by reference, as `make_adde_queries` does.
  assert (np.diff(ref) >= 0).all()


def test_unknown_subset():
  with pytest.raises(ValueError, match="unknown ADDE subset 'val'"):
    adde.images_file('splits', 'val')  # only the name is checked: no real files needed
