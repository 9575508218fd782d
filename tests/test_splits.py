"""The paper's split (§6), its CSV file, the queries §7 evaluates, and ADDE's split."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tf_partfash.attributes import ATTRIBUTE_NAMES
from tf_partfash.data import adde, splits


def _paths(n: int, start: int = 0, folder: str = 'Male/1_Coats') -> list[str]:
  return [f'{folder}/{i:07d}_1.jpg' for i in range(start, start + n)]


def _table(paths, **columns) -> pd.DataFrame:
  """A label table as `read_attributes` returns it: all labels 0 unless given."""
  data = {'path': list(paths)}
  for name in ATTRIBUTE_NAMES:
    data[name] = columns.get(name, [0] * len(paths))
  return pd.DataFrame(data)


def test_subset_sizes():
  assert splits.subset_sizes(101021) == (80021, 19000, 2000)
  # 1000 * 19000 / 101021 = 188.08, 1000 * 2000 / 101021 = 19.80.
  assert splits.subset_sizes(1000) == (792, 188, 20)
  assert splits.subset_sizes(4) == (3, 1, 0)


def test_full_size_counts_are_exact():
  split = splits.paper_split(_paths(101021))
  assert split['subset'].value_counts().to_dict() == {'train': 80021, 'gallery': 19000,
                                                      'query': 2000}


def test_product_key():
  assert splits.product_key('Female/6_Jumpers/0031247_12.jpg') == 'Female/6_Jumpers/0031247'
  assert splits.product_key('Female/6_Jumpers/0031247_3.jpg') == 'Female/6_Jumpers/0031247'
  # The same id in another folder is another product; other names fall back to the path.
  assert splits.product_key('Male/2_Jackets/0031247_12.jpg') == 'Male/2_Jackets/0031247'
  assert splits.product_key('extra/shirt.png') == 'extra/shirt.png'
  assert splits.product_key('Male/2_Jackets/31247_12.jpg') == 'Male/2_Jackets/31247_12.jpg'


def test_products_stay_together_and_counts_stay_exact():
  # 200 products of 3 images next to 690 single images; 1290 images: 26 query (25.54), 243 gallery
  # (242.62).
  paths = [f'Female/7_Shorts/{p:07d}_{n}.jpg' for p in range(200) for n in (1, 2, 3)]
  paths += _paths(690, start=1000)
  split = splits.paper_split(paths, seed=5)
  assert split['subset'].value_counts().to_dict() == {'train': 1021, 'gallery': 243, 'query': 26}
  by_product = split.groupby(split['path'].map(splits.product_key))['subset'].nunique()
  assert (by_product == 1).all()
  assert split['path'].tolist() == paths


def test_deterministic_seeded_and_order_free():
  paths = _paths(1000)
  a = splits.paper_split(paths, seed=1)
  assert a.equals(splits.paper_split(paths, seed=1))
  assert not a['subset'].equals(splits.paper_split(paths, seed=2)['subset'])
  shuffled = list(np.random.default_rng(0).permutation(paths))
  b = splits.paper_split(shuffled, seed=1).set_index('path').loc[paths].reset_index()
  assert a.equals(b)


def test_same_split_in_another_process():
  # Python salts str hashes per process; the split must not depend on that.
  code = ('from tf_partfash.data import splits\n'
          "paths = [f'Male/1_Coats/{i:07d}_1.jpg' for i in range(300)]\n"
          "print(''.join(s[0] for s in splits.paper_split(paths, seed=7)['subset']))")
  env = dict(os.environ, PYTHONHASHSEED='123')
  out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                       check=True, cwd=os.path.dirname(os.path.dirname(__file__))).stdout.strip()
  here = ''.join(s[0] for s in splits.paper_split(_paths(300), seed=7)['subset'])
  assert out == here and set(here) == {'t', 'g', 'q'}


def test_removing_train_images_moves_nothing():
  paths = _paths(1000)
  before = splits.paper_split(paths).set_index('path')['subset']
  removed = before[before == 'train'].index[:3]
  assert splits.subset_sizes(997)[1:] == splits.subset_sizes(1000)[1:]
  after = splits.paper_split([p for p in paths if p not in set(removed)]).set_index('path')
  assert after['subset'].equals(before.drop(removed))


def test_adding_images_moves_only_a_few():
  paths = _paths(1000)
  before = splits.paper_split(paths).set_index('path')['subset']
  after = splits.paper_split(paths + _paths(10, start=5000)).set_index('path')['subset']
  moved = int((after.loc[before.index] != before).sum())
  # Each added image can push at most one image over each of the two cut-offs; the gallery quota
  # grows by 2 (188 -> 190). A reshuffle would move hundreds.
  assert moved <= 2 * 10 + 2


def test_write_read_round_trip_aligns_with_table(tmp_path):
  paths = _paths(50)
  split = splits.paper_split(paths)
  file = str(tmp_path / 'split.csv')
  splits.write_split(file, split)
  assert (tmp_path / 'split.csv').read_text().splitlines()[:2] == [
      'path,subset', f'{paths[0]},{split["subset"][0]}']
  assert splits.read_split(file).equals(split)
  table = _table(paths[::-1])
  back = splits.read_split(file, table)
  assert back['path'].tolist() == paths[::-1]
  assert back['subset'].tolist() == split['subset'].tolist()[::-1]


@pytest.mark.parametrize('content, message', [
    ('path,subset\na.jpg,train\nb.jpg,test\n',
     r"split.csv:3: unknown subset 'test'; valid subsets: train, gallery, query"),
    ('path,subset\na.jpg,train\nb.jpg,query\na.jpg,gallery\n',
     r"split.csv:4: image 'a.jpg' already listed on line 2"),
    ('path,subset\na.jpg,train\nb.jpg\n', r'split.csv:3: expected "path,subset"'),
    ('image,subset\na.jpg,train\n', r"split.csv:1: expected header 'path,subset'"),
])
def test_read_split_errors(tmp_path, content, message):
  (tmp_path / 'split.csv').write_text(content)
  with pytest.raises(ValueError, match=message):
    splits.read_split(str(tmp_path / 'split.csv'))


def test_read_split_checks_against_table(tmp_path):
  (tmp_path / 'split.csv').write_text('path,subset\na.jpg,train\nb.jpg,query\nc.jpg,gallery\n')
  with pytest.raises(ValueError, match=r"split.csv:4: image 'c.jpg' is not in the dataset"):
    splits.read_split(str(tmp_path / 'split.csv'), _table(['a.jpg', 'b.jpg']))
  with pytest.raises(ValueError, match=r"split.csv: dataset image 'd.jpg' \(row 2 of the attribute "
                     r'files\) is not in the split'):
    splits.read_split(str(tmp_path / 'split.csv'), _table(['c.jpg', 'd.jpg', 'a.jpg', 'b.jpg']))


def test_ensure_split_reuses_the_file(tmp_path):
  table = _table(_paths(100))
  first, file = splits.ensure_split(str(tmp_path), table, seed=3)
  assert file == str(tmp_path / 'paper_split_seed3.csv')
  assert first.equals(splits.paper_split(table['path'], seed=3))
  # Hand-edit the stored split (swap a gallery and a train image, sizes kept): the stored file,
  # not a recomputation, is what is returned.
  subset = first['subset'].to_numpy().copy()
  g, t = int(np.argmax(subset == 'gallery')), int(np.argmax(subset == 'train'))
  subset[g], subset[t] = 'train', 'gallery'
  edited = first.assign(subset=subset)
  splits.write_split(file, edited)
  assert splits.ensure_split(str(tmp_path), table, seed=3)[0].equals(edited)
  # An edit that changes the sizes disagrees with what was asked for.
  splits.write_split(file, first.assign(subset='train'))
  with pytest.raises(ValueError, match=r'paper_split_seed3.csv has 0 gallery and 0 query images, '
                     r'but gallery_images=None and query_images=None give 19 and 2; delete'):
    splits.ensure_split(str(tmp_path), table, seed=3)
  explicit = str(tmp_path / 'work' / 'split.csv')
  assert splits.ensure_split(explicit, table, seed=3)[0].equals(first)
  with pytest.raises(ValueError, match=r'dataset image .* is not in the split\n.*delete'):
    splits.ensure_split(explicit, _table(_paths(101)), seed=3)


def test_split_of_given_sizes(tmp_path):
  table = _table(_paths(100))
  split, file = splits.ensure_split(str(tmp_path), table, seed=0, gallery_images=60,
                                    query_images=30)
  assert os.path.basename(file) == 'paper_split_seed0_gallery60_query30.csv'
  assert split['subset'].value_counts().to_dict() == {'gallery': 60, 'query': 30, 'train': 10}
  # Only the query size given: the gallery keeps the paper's proportion (19000/101021 of 100).
  assert splits.subset_sizes(100, query_images=5) == (76, 19, 5)
  assert splits.split_file_name(1, query_images=5) == 'paper_split_seed1_query5.csv'
  with pytest.raises(ValueError, match=r'gallery_images=19000 \+ query_images=2000 = 21000 test '
                     r'images, but the dataset has 100 images'):
    splits.subset_sizes(100, 19000, 2000)
  # A stored split read under other sizes (an explicit file) names both pairs of numbers.
  with pytest.raises(ValueError, match=r'has 60 gallery and 30 query images, but '
                     r'gallery_images=50 and query_images=30 give 50 and 30'):
    splits.ensure_split(file, table, seed=0, gallery_images=50, query_images=30)


def test_evaluable_queries():
  paths = ['a.jpg', 'b.jpg', 'c.jpg', 'd.jpg', 'e.jpg']
  split = pd.DataFrame({'path': paths, 'subset': ['query', 'query', 'gallery', 'query', 'query']})
  # b misses its collar (special); d misses its fabric (general, does not matter); c is gallery.
  table = _table(paths, collar=[3, -1, -1, 3, 3], fabric=[0, 0, 0, -1, 0],
                 sleevelen=[2, 2, 2, 2, -1])
  assert splits.evaluable_queries(split, table).tolist() == [0, 3]
  with pytest.raises(ValueError, match='do not align'):
    splits.evaluable_queries(split.iloc[::-1].reset_index(drop=True), table)


def test_adde_split(tmp_path):
  table = _table(['a.jpg', 'b.jpg', 'c.jpg', 'd.jpg', 'e.jpg'])
  adde.write_image_list(str(tmp_path / 'imgs_train.txt'), ['d.jpg', 'a.jpg'])
  adde.write_image_list(str(tmp_path / 'imgs_test.txt'), ['b.jpg', 'e.jpg'])
  split = splits.adde_split(str(tmp_path), table)
  assert split.to_dict('list') == {'path': ['a.jpg', 'b.jpg', 'd.jpg', 'e.jpg'],
                                   'subset': ['train', 'test', 'train', 'test']}
  adde.write_image_list(str(tmp_path / 'imgs_test.txt'), ['b.jpg', 'x.jpg'])
  with pytest.raises(ValueError, match=r"imgs_test.txt:2: image 'x.jpg' is not in the dataset"):
    splits.adde_split(str(tmp_path), table)
  adde.write_image_list(str(tmp_path / 'imgs_test.txt'), ['b.jpg', 'd.jpg'])
  with pytest.raises(ValueError, match=r"image 'd.jpg' is in both .*imgs_train.txt and"):
    splits.adde_split(str(tmp_path), table)


def test_sizes_larger_than_the_synthetic_dataset_fail_before_generating(tmp_path, monkeypatch):
  from tf_partfash.config import DataConfig
  from tf_partfash.inputs.prepared import prepare
  monkeypatch.setenv('TF_PARTFASH_CACHE', str(tmp_path / 'cache'))
  with pytest.raises(ValueError, match=r'gallery_images=19000 \+ query_images=2000 = 21000 test '
                     r'images, but the dataset has 5500 images'):
    prepare(DataConfig(gallery_images=19000, query_images=2000), str(tmp_path / 'work'))
  assert not (tmp_path / 'cache').exists()  # nothing generated
