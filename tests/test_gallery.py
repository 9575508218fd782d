"""Prototypes (§4.6 generic representations), index files and their model identity, resumption."""
import dataclasses

import numpy as np
import pytest

from tf_partfash.attributes import ATTRIBUTE_NAMES
from tf_partfash.search import gallery
from tf_partfash.storage import cache
from tf_partfash.storage.workdir import model_id

COLLAR = ATTRIBUTE_NAMES.index('collar')


def _signatures():
  """4 images, V = 6, D = 2; only the collar signature (v = 1) matters below."""
  sig = np.zeros((4, 6, 2), np.float32)
  sig[:, :, 0] = 1.0
  sig[:, 1] = [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [-1.0, 0.0]]
  labels = np.full((4, len(ATTRIBUTE_NAMES)), -1)
  labels[:, COLLAR] = [3, 3, 9, -1]   # Hood, Hood, Round, unknown
  return sig, labels


def test_prototypes_are_normalised_means_by_hand():
  sig, labels = _signatures()
  protos = gallery.compute_prototypes(sig, labels, 'm1')
  # Hood: mean of (1, 0) and (0, 1) = (0.5, 0.5), normalised (0.707107, 0.707107).
  np.testing.assert_allclose(protos.vector('collar', 3), [0.707107, 0.707107], rtol=1e-5)
  np.testing.assert_allclose(protos.vector('collar', 9), [0.6, 0.8], rtol=1e-6)
  # The unknown label (-1) is left out: Hood 2, Round 1, no other collar.
  assert protos.counts['collar'].tolist() == [0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
  assert np.isfinite(protos.vectors['collar']).all()
  with pytest.raises(ValueError,
                     match="no training image has collar='Lapel'.*training: Hood, Round"):
    protos.vector('collar', 5)
  with pytest.raises(ValueError, match='out of range'):
    protos.vector('collar', 17)


def test_prototypes_from_chunk_sums_equal_the_whole():
  sig, labels = _signatures()
  parts = [gallery.prototype_sums(sig[:3], labels[:3]), gallery.prototype_sums(sig[3:], labels[3:])]
  merged = gallery.prototypes_from_sums({k: parts[0][k] + parts[1][k] for k in parts[0]}, '')
  whole = gallery.compute_prototypes(sig, labels)
  for name, vectors in whole.vectors.items():
    np.testing.assert_allclose(merged.vectors[name], vectors, rtol=1e-6)


def test_prototypes_save_load_and_model_check(tmp_path):
  sig, labels = _signatures()
  protos = gallery.compute_prototypes(sig, labels, 'aaaa')
  file = str(tmp_path / 'prototypes.npz')
  protos.save(file)
  loaded = gallery.Prototypes.load(file, expected_model_id='aaaa')
  np.testing.assert_array_equal(loaded.vectors['collar'], protos.vectors['collar'])
  assert loaded.counts['collar'].tolist() == protos.counts['collar'].tolist()
  with pytest.raises(ValueError, match='built by model aaaa, not by the requested model bbbb'):
    gallery.Prototypes.load(file, expected_model_id='bbbb')


def _gallery(model='m1', n=3):
  rng = np.random.default_rng(0)
  probs = {a: rng.dirichlet(np.ones(3), n).astype(np.float32) for a in ATTRIBUTE_NAMES}
  return gallery.GalleryIndex(rng.standard_normal((n, 6, 4)).astype(np.float32), probs,
                            np.full((n, 12), -1), np.array(['A/x.jpg', 'B/y.jpg', 'C/z.jpg'][:n]),
                            np.array([10, 11, 12][:n]), model, '/data/Images')


def test_index_roundtrip_and_lookup(tmp_path):
  g = _gallery()
  file = str(tmp_path / 'index_test.npz')
  g.save(file)
  loaded = gallery.GalleryIndex.load(file, expected_model_id='m1')
  np.testing.assert_array_equal(loaded.signatures, g.signatures)
  np.testing.assert_array_equal(loaded.probabilities['color'], g.probabilities['color'])
  assert loaded.paths.tolist() == ['A/x.jpg', 'B/y.jpg', 'C/z.jpg']
  assert loaded.rows.tolist() == [10, 11, 12] and loaded.image_root == '/data/Images'
  assert loaded.find('B/y.jpg') == 1 and loaded.find('2') == 2
  assert loaded.file(0) == '/data/Images/A/x.jpg'
  assert loaded.take([2, 0]).paths.tolist() == ['C/z.jpg', 'A/x.jpg']
  with pytest.raises(ValueError, match=r"'D/w.jpg' is not in the gallery.*row number 0..2"):
    loaded.find('D/w.jpg')
  with pytest.raises(ValueError, match='not in the gallery'):
    loaded.find('3')


def test_find_is_a_binary_search_that_returns_the_first_of_equal_paths():
  g = _gallery(n=3)
  g = dataclasses.replace(g, paths=np.array(['C/z.jpg', 'A/x.jpg', 'C/z.jpg']))
  g = g.take([0, 1, 2, 1])  # paths C/z.jpg, A/x.jpg, C/z.jpg, A/x.jpg: unsorted, repeated
  g.paths[3] = 'A/x.jp'     # a prefix of another path
  assert [g.find(p) for p in ('C/z.jpg', 'A/x.jpg', 'A/x.jp', '3')] == [0, 1, 3, 3]
  for missing in ('A/x.jpgg', 'B/y.jpg', 'D'):
    with pytest.raises(ValueError, match='not in the gallery'):
      g.find(missing)


def test_an_index_of_another_model_or_version_is_refused(tmp_path):
  file = str(tmp_path / 'index_test.npz')
  _gallery('0123abcd').save(file)
  with pytest.raises(ValueError, match='built by model 0123abcd, not by the requested model '
                     'ffff0000'):
    gallery.GalleryIndex.load(file, expected_model_id='ffff0000')
  g = _gallery()
  g.format_version = 99
  g.save(file)
  with pytest.raises(ValueError, match='format version 99, this tf_partfash reads version 2'):
    gallery.GalleryIndex.load(file)


def test_misaligned_index_is_an_error():
  g = _gallery()
  with pytest.raises(ValueError, match='index of 3 signatures has labels of 2'):
    gallery.GalleryIndex(g.signatures, g.probabilities, g.labels[:2], g.paths, g.rows, 'm')


def test_model_id_follows_the_weights(tmp_path):
  (tmp_path / 'run.json').write_text('{"a": 1}')
  with pytest.raises(FileNotFoundError, match='model.weights.h5 not found'):
    model_id(str(tmp_path))
  (tmp_path / 'model.weights.h5').write_bytes(b'weights one')
  first = model_id(str(tmp_path))
  assert first == model_id(str(tmp_path)) and len(first) == 16
  (tmp_path / 'model.weights.h5').write_bytes(b'weights two')
  assert model_id(str(tmp_path)) != first


def test_chunked_extraction_resumes_after_an_interruption(tmp_path):
  calls, fail = [], [True]

  def compute(rows):
    calls.append(rows.tolist())
    if fail[0] and rows[0] == 4:
      fail[0] = False
      raise KeyboardInterrupt  # killed during the second chunk
    return {'x': rows * 10}

  rows = np.arange(10)
  directory = str(tmp_path / 'index_test.npz.partial')
  key = {'model_id': 'm', 'rows': 'r'}
  with pytest.raises(KeyboardInterrupt):
    cache.chunked(directory, key, rows, 4, 'test', compute, progress=False)
  out = cache.chunked(directory, key, rows, 4, 'test', compute, progress=False)
  assert calls == [[0, 1, 2, 3], [4, 5, 6, 7], [4, 5, 6, 7], [8, 9]]  # chunk 0 not redone
  assert np.concatenate([c['x'] for c in out]).tolist() == list(range(0, 100, 10))
  # Another job (another model) in the same directory starts afresh.
  calls.clear()
  cache.chunked(directory, {'model_id': 'other', 'rows': 'r'}, rows, 4, 'test', compute,
                 progress=False)
  assert calls == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_a_cache_of_another_version_is_rebuilt_not_read(tmp_path):
  file = str(tmp_path / 'index_test.npz')
  assert cache.cached_by(file) is None
  _gallery('0123abcd').save(file)
  assert cache.cached_by(file) == '0123abcd'  # ensure_* rebuilds unless this is the model's id
  g = _gallery('0123abcd')
  g.format_version = 99
  g.save(file)
  assert cache.cached_by(file) is None
