"""The attribute schema: vocabularies, roles, lookup and the 151-dim encoding (paper §3, §4.1)."""
from __future__ import annotations

import os

import numpy as np
import pytest

from tf_partfash import attributes as A


def test_vocabulary_sizes_match_attr_num(shopping100k_splits):
  sizes = [a.num_values for a in A.ATTRIBUTES]
  assert sizes == [16, 17, 19, 14, 10, 15, 2, 11, 16, 7, 9, 15]
  with open(os.path.join(shopping100k_splits, 'attr_num.txt')) as f:
    assert sizes == [int(line) for line in f.read().split()]
  assert A.NUM_VALUES == sum(sizes) == 151


def test_names_are_alphabetical_and_roles():
  assert A.ATTRIBUTE_NAMES == ('category', 'collar', 'color', 'fabric', 'fastening', 'fit',
                               'gender', 'neckline', 'pattern', 'pocket', 'sleevelen', 'sport')
  assert A.SPECIAL_ATTRIBUTES == ('collar', 'color', 'fastening', 'pattern', 'sleevelen')
  assert A.GENERAL_ATTRIBUTES == ('category', 'fabric', 'fit', 'gender', 'neckline', 'pocket',
                                  'sport')
  assert A.attribute('sleevelen').parts == ('left_sleeve', 'right_sleeve')
  assert A.attribute('color').parts == A.attribute('pattern').parts == ('chest',)


def test_offsets():
  # Running sums of 16 17 19 14 10 15 2 11 16 7 9.
  assert list(A.OFFSETS.values()) == [0, 16, 33, 52, 66, 76, 91, 93, 104, 120, 127, 136]


def test_case_insensitive_lookup():
  sleevelen = A.attribute('SleeveLen')
  assert sleevelen.name == 'sleevelen'
  assert sleevelen.index('sleeveless') == sleevelen.index('Sleeveless') == 2
  assert A.attribute('color').index('light blue') == A.attribute('Color').index('Light_Blue') == 7
  assert A.attribute('category').index('tracksuit bottoms') == 12
  assert A.attribute('collar').value(7) == 'Mandarin'


def test_unknown_names_list_the_valid_ones():
  with pytest.raises(ValueError, match=r"unknown attribute 'colour'; valid attributes: category, "
                     r'collar, color'):
    A.attribute('colour')
  with pytest.raises(ValueError, match=r"unknown value 'Sleevless' for attribute 'sleevelen'; "
                     r'valid values: 3/4, Spaghetti, Sleeveless, Elbow'):
    A.attribute('sleevelen').index('Sleevless')
  with pytest.raises(ValueError, match=r"index 9 out of range for attribute 'sleevelen' \(0..8\)"):
    A.attribute('sleevelen').value(9)
  with pytest.raises(ValueError, match=r"'category' is a general attribute"):
    A.special_attribute('category')


def test_lower_body_and_sleeveless_values_exist():
  for value in A.LOWER_BODY_CATEGORIES:
    A.attribute('category').index(value)
  assert [A.attribute('sleevelen').index(v) for v in A.SLEEVELESS_VALUES] == [1, 2, 8]


def test_encode_decode_round_trip_with_missing_blocks():
  labels = np.array([
      [0, 7, 1, -1, 0, 8, 0, -1, 12, 3, 2, 5],  # the sample image 0000095_13
      [-1] * 12,
      [15, 16, 18, 13, 9, 14, 1, 10, 15, 6, 8, 14],  # every last value
  ])
  encoded = A.encode(labels)
  assert encoded.shape == (3, 151) and encoded.dtype == np.uint8
  # Row 0: category 0 -> 0, collar 16+7, color 33+1, fastening 66, fit 76+8, gender 91,
  # pattern 104+12, pocket 120+3, sleevelen 127+2, sport 136+5.
  assert np.nonzero(encoded[0])[0].tolist() == [0, 23, 34, 66, 84, 91, 116, 123, 129, 141]
  assert encoded[1].sum() == 0
  assert np.nonzero(encoded[2])[0].tolist() == [15, 32, 51, 65, 75, 90, 92, 103, 119, 126, 135,
                                                150]
  np.testing.assert_array_equal(A.decode(encoded), labels)


def test_encode_decode_errors():
  with pytest.raises(ValueError, match=r"row 1: label 19 out of range for 'color' \(-1..18\)"):
    A.encode(np.array([[0] * 12, [0, 0, 19] + [0] * 9]))
  with pytest.raises(ValueError, match=r'expected labels of shape \(N, 12\)'):
    A.encode(np.zeros((2, 11), int))
  two = np.zeros((2, 151), np.uint8)
  two[1, [16, 17]] = 1
  with pytest.raises(ValueError, match=r"row 1: block 'collar' has 2 values set"):
    A.decode(two)


def test_describe():
  assert A.describe([0, 7, 1, -1, 0, 8, 0, -1, 12, 3, 2, 5]) == {
      'category': 'Coat', 'collar': 'Mandarin', 'color': 'Black', 'fastening': 'Zip',
      'fit': 'Regular', 'gender': 'Male', 'pattern': 'Plain', 'pocket': 'Napoleon',
      'sleevelen': 'Sleeveless', 'sport': 'Hiking'}
