"""Reading and writing the distributed Shopping100k layout on the four real sample images (§3)."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from tf_partfash.attributes import ATTRIBUTE_NAMES
from tf_partfash.data import shopping100k as S

# The labels of the sample files, read by eye, attributes in alphabetical order.
SAMPLE_PATHS = ['Male/1_Coats/0000095_13.jpg', 'Male/1_Coats/0000097_14.jpg',
                'Male/1_Coats/0000134_2.jpg', 'Male/1_Coats/0000230_2.jpg']
SAMPLE_LABELS = np.array([
    # cat col clr fab fas fit gen nec pat poc slv spo
    [0, 7, 1, -1, 0, 8, 0, -1, 12, 3, 2, 5],
    [0, 3, 14, -1, 0, 8, 0, -1, 2, 2, 4, -1],
    [0, 5, 15, -1, 3, 8, 0, -1, 12, -1, 6, -1],
    [0, 5, 9, -1, 3, 8, 0, -1, 12, -1, 6, -1],
])


def _copy_sample(sample: str, tmp_path) -> str:
  data_dir = str(tmp_path / 'data')
  shutil.copytree(sample, data_dir)
  for root, dirs, files in os.walk(data_dir):
    for name in dirs + files:
      os.chmod(os.path.join(root, name), 0o755)  # the shared copy is read-only
  return data_dir


def _corrupt(data_dir: str, attr: str, line: int, text: str) -> str:
  file = os.path.join(data_dir, 'Attributes', f'{attr}.txt')
  with open(file) as f:
    lines = f.read().split('\n')
  lines[line - 1] = text
  with open(file, 'w') as f:
    f.write('\n'.join(lines))
  return file


def test_sample_parses_to_its_labels(shopping100k_sample):
  table = S.read_attributes(shopping100k_sample)
  assert table.columns.tolist() == ['path', *ATTRIBUTE_NAMES]
  assert table['path'].tolist() == SAMPLE_PATHS
  np.testing.assert_array_equal(S.labels_of(table), SAMPLE_LABELS)
  # 0000095_13: a black sleeveless zip vest with a mandarin collar, fabric unknown.
  first = table.iloc[0]
  assert (first['category'], first['collar'], first['color'], first['fastening'],
          first['sleevelen'], first['fabric']) == (0, 7, 1, 0, 2, -1)
  assert S.labels_of(table).dtype == np.int64


def test_image_file_and_category_folders(shopping100k_sample):
  assert os.path.isfile(S.image_file(shopping100k_sample, SAMPLE_PATHS[0]))
  assert S.category_folder('Male', 0) == '1_Coats'
  assert S.category_folder('Male', 13) == '14_Tracksuit'
  assert S.category_folder('Female', 3) == '4_Shirts_blouses'
  assert S.category_folder('Female', 15) == '16_Dresses'
  for gender, category in (('Female', 2), ('Male', 14), ('Male', -1)):
    with pytest.raises(ValueError, match=f'category {category} does not exist'):
      S.category_folder(gender, category)
  with pytest.raises(ValueError, match="unknown gender 'male'"):
    S.category_folder('male', 0)


def test_rewrite_is_byte_exact(shopping100k_sample, tmp_path):
  table = S.read_attributes(shopping100k_sample)
  out = str(tmp_path / 'out')
  S.write_attributes(out, table['path'].tolist(), S.labels_of(table))
  for name in ATTRIBUTE_NAMES:
    with open(os.path.join(shopping100k_sample, 'Attributes', f'{name}.txt'), 'rb') as f:
      expected = f.read()
    with open(os.path.join(out, 'Attributes', f'{name}.txt'), 'rb') as f:
      written = f.read()
    assert written == expected, name
    assert not written.endswith(b'\n')
  back = S.read_attributes(out, check_images=False)
  assert back.equals(table)


def test_trailing_newline_is_accepted(shopping100k_sample, tmp_path):
  data_dir = _copy_sample(shopping100k_sample, tmp_path)
  with open(os.path.join(data_dir, 'Attributes', 'color.txt'), 'a') as f:
    f.write('\n')
  np.testing.assert_array_equal(S.labels_of(S.read_attributes(data_dir)), SAMPLE_LABELS)


@pytest.mark.parametrize('attr, line, text, message', [
    ('collar', 3, 'Male/1_Coats/0000134_2.jpg\t5',
     r'collar.txt:3: expected "<path> <value index>", got'),
    ('collar', 2, 'Male/1_Coats/0000097_14.jpg x',
     r"collar.txt:2: value index 'x' is not an integer"),
    ('sleevelen', 4, 'Male/1_Coats/0000230_2.jpg 9',
     r"sleevelen.txt:4: value index 9 outside the 'sleevelen' vocabulary \(-1 or 0..8\)"),
    ('gender', 1, 'Male/1_Coats/0000095_13.jpg -2',
     r"gender.txt:1: value index -2 outside the 'gender' vocabulary"),
    ('pattern', 2, '', r'pattern.txt:2: empty line'),
    ('sport', 3, 'Male/1_Coats/0000999_2.jpg -1',
     r"sport.txt:3: image 'Male/1_Coats/0000999_2.jpg' where .*category.txt:3 has "
     r"'Male/1_Coats/0000134_2.jpg'"),
    ('category', 2, 'Male/1_Coats/0000095_13.jpg 0',
     r"category.txt:2: image 'Male/1_Coats/0000095_13.jpg' is listed twice"),
])
def test_malformed_lines_name_file_line_and_value(shopping100k_sample, tmp_path, attr, line, text,
                                                  message):
  data_dir = _copy_sample(shopping100k_sample, tmp_path)
  _corrupt(data_dir, attr, line, text)
  with pytest.raises(ValueError, match=message):
    S.read_attributes(data_dir)


def test_files_listing_different_numbers_of_images(shopping100k_sample, tmp_path):
  data_dir = _copy_sample(shopping100k_sample, tmp_path)
  _corrupt(data_dir, 'fit', 4, 'Male/1_Coats/0000230_2.jpg 8\nMale/1_Coats/0000231_2.jpg 8')
  with pytest.raises(ValueError, match=r'fit.txt lists 5 images but .*category.txt lists 4'):
    S.read_attributes(data_dir)


def test_missing_image_or_file(shopping100k_sample, tmp_path):
  data_dir = _copy_sample(shopping100k_sample, tmp_path)
  os.remove(S.image_file(data_dir, SAMPLE_PATHS[2]))
  with pytest.raises(FileNotFoundError, match=r"category.txt:3: listed image "
                     r"'Male/1_Coats/0000134_2.jpg' does not exist"):
    S.read_attributes(data_dir)
  assert len(S.read_attributes(data_dir, check_images=False)) == 4
  os.remove(os.path.join(data_dir, 'Attributes', 'pocket.txt'))
  with pytest.raises(FileNotFoundError, match=r'attribute file not found: .*pocket.txt'):
    S.read_attributes(data_dir)


def test_write_rejects_out_of_range_labels(tmp_path):
  labels = SAMPLE_LABELS.copy()
  labels[1, 10] = 9
  with pytest.raises(ValueError, match=r"0000097_14.jpg: label 9 out of range for 'sleevelen'"):
    S.write_attributes(str(tmp_path), SAMPLE_PATHS, labels)
