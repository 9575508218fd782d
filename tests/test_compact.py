"""The compact index: candidates from product-quantised codes, re-ranked exactly (compact.py)."""
import os

import numpy as np
import pytest

from tf_partfash.search.compact import CompactIndex, CompactSearcher, gallery_identity
from tf_partfash.search.retrieval import Searcher, personalization_weights


def _clustered(n: int, v: int = 3, d: int = 16, seed: int = 0) -> np.ndarray:
  """(n, v, d) unit signatures around 100 products' (every block near one product's), like a
  catalogue's look-alikes (random unit vectors have no near neighbours to find)."""
  rng = np.random.default_rng(0)  # the same products for every seed
  centres = rng.standard_normal((100, v, d))
  rng = np.random.default_rng(seed)
  x = centres[rng.integers(100, size=n)] + 0.3 * rng.standard_normal((n, v, d))
  return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope='module')
def gallery():
  vectors = _clustered(3000)
  compact = CompactIndex.build(vectors, 'model-a', 'gallery-a', progress=False)
  return vectors, compact


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
  return float(np.mean([len(set(a) & set(b)) / truth.shape[1] for a, b in zip(found, truth)]))


@pytest.mark.parametrize('distance', ['euclidean', 'squared'])
def test_candidates_reranked_exactly_find_what_exact_search_finds(gallery, distance):
  vectors, compact = gallery
  queries = _clustered(40, seed=1)
  exact = Searcher(vectors, 'exact', distance)
  truth, truth_dist = exact.search(queries, 20)
  found, dist = CompactSearcher(compact, vectors, distance, candidates=200).search(queries, 20)
  assert _recall(found, truth) >= 0.97
  # Whatever is returned carries its exact distance, so a found neighbour's matches exact's.
  same = found == truth
  np.testing.assert_allclose(dist[same], truth_dist[same], rtol=1e-5, atol=1e-6)
  # Eq. 6 weights change the probe only: the same index serves them.
  weights = personalization_weights(vectors[:3], distance)
  truth_w, _ = exact.search(queries, 20, weights)
  found_w, _ = CompactSearcher(compact, vectors, distance, candidates=200).search(queries, 20,
                                                                                 weights)
  assert _recall(found_w, truth_w) >= 0.97


def test_a_manipulated_query_is_served_by_the_same_index(gallery):
  vectors, compact = gallery
  # As `retrieval.manipulate` does: one block replaced by a generic vector (here the mean of one
  # product's block), in a query built by no index.
  queries = _clustered(30, seed=2)
  patched = queries.copy()
  generic = vectors[:100, 1].mean(axis=0)
  patched[:, 1] = generic / np.linalg.norm(generic)
  truth, _ = Searcher(vectors).search(patched, 20)
  found, _ = CompactSearcher(compact, vectors, candidates=300).search(patched, 20)
  assert _recall(found, truth) >= 0.95


def test_with_every_row_a_candidate_it_is_exact_search(gallery):
  vectors, compact = gallery
  queries = _clustered(5, seed=3)
  searcher = CompactSearcher(compact, vectors, candidates=len(vectors))
  found, dist = searcher.search(queries, 10)
  truth, truth_dist = Searcher(vectors).search(queries, 10)
  np.testing.assert_array_equal(found, truth)
  np.testing.assert_allclose(dist, truth_dist, rtol=1e-6)
  # More results than the gallery holds: the whole gallery, as exact search gives.
  small = vectors[:30]
  tiny = CompactIndex.build(small, 'model-a', 'tiny', progress=False)
  everything, _ = CompactSearcher(tiny, small).search(queries[:1], 100)
  np.testing.assert_array_equal(everything, Searcher(small).search(queries[:1], 100)[0])
  assert everything.shape == (1, 30)


def test_a_saved_index_is_refused_for_another_model_or_gallery(gallery, tmp_path):
  vectors, compact = gallery
  file = str(tmp_path / 'compact_test.npz')
  compact.save(file)
  loaded = CompactIndex.load(file, 'model-a', 'gallery-a')
  queries = _clustered(4, seed=4)
  np.testing.assert_array_equal(CompactSearcher(loaded, vectors).search(queries, 5)[0],
                                CompactSearcher(compact, vectors).search(queries, 5)[0])
  with pytest.raises(ValueError, match='built by model model-a, not by the requested model '
                                       'model-b; rebuild it'):
    CompactIndex.load(file, 'model-b', 'gallery-a')
  with pytest.raises(ValueError, match=r'codes another gallery \(\(3000, 3, 16\) vectors, '
                                       r'identity gallery-a\), not this one \(gallery-b\)'):
    CompactIndex.load(file, 'model-a', 'gallery-b')
  with pytest.raises(ValueError, match=r'codes \(3000, 3, 16\) vectors, the gallery has'):
    CompactSearcher(compact, vectors[:10])


def test_gallery_identity_follows_model_images_and_vectors():
  vectors = _clustered(50)
  paths = np.array([f'{k}.jpg' for k in range(50)])
  base = gallery_identity('m', paths, vectors)
  assert base == gallery_identity('m', paths.copy(), vectors.copy())
  assert base != gallery_identity('n', paths, vectors)
  assert base != gallery_identity('m', paths[::-1], vectors)
  assert base != gallery_identity('m', paths, vectors[:, :1])          # another encoder's vectors
  assert base != gallery_identity('m', paths, np.ascontiguousarray(vectors[::-1]))
  assert base != gallery_identity('m', paths, vectors, np.zeros((50, 2), np.int64))


def test_the_run_builds_reuses_and_refuses_its_compact_index(untrained_run, caplog):
  from tf_partfash.search.trained_run import TrainedRun
  run = TrainedRun.open(untrained_run.workdir, progress=False)
  index = run.index()
  searcher = run.searcher('test', index, index.signatures, 'compact', 'euclidean')
  file = os.path.join(untrained_run.workdir, 'compact_test.npz')
  stamp = os.stat(file).st_mtime_ns
  again = TrainedRun.open(untrained_run.workdir, progress=False)
  again.searcher('test', index, index.signatures, 'compact', 'euclidean')
  assert os.stat(file).st_mtime_ns == stamp  # read, not built again
  exact = Searcher(index.signatures).search(index.signatures[:3], 5)
  np.testing.assert_array_equal(searcher.search(index.signatures[:3], 5)[0], exact[0])
  other = index.take(np.arange(len(index) - 1))  # another gallery under the same name
  with pytest.raises(ValueError,
                     match='codes another gallery.*rebuild it with --rebuild_compact_index'):
    again.searcher('test', other, other.signatures, 'compact', 'euclidean')
  rebuilt = TrainedRun.open(untrained_run.workdir, progress=False, rebuild_compact=True)
  rebuilt.searcher('test', other, other.signatures, 'compact', 'euclidean')
  assert CompactIndex.load(file, run.model_id, gallery_identity(
      run.model_id, other.paths, other.signatures)).shape[0] == len(index) - 1
  os.remove(file)
  with pytest.raises(ValueError, match="compact index name 'a/b'"):
    run.searcher('a/b', index, index.signatures, 'compact', 'euclidean')


def test_stored_rows_read_from_npy_and_npz_members(tmp_path):
  from tf_partfash.storage.cache import StoredRows, save_npz
  array = np.arange(5 * 3 * 2, dtype=np.float32).reshape(5, 3, 2)
  np.save(tmp_path / 'a.npy', array)
  save_npz(str(tmp_path / 'b.npz'), {'other': np.arange(7), 'signatures': array})
  for rows in (StoredRows.of(str(tmp_path / 'a.npy')),
               StoredRows.of(str(tmp_path / 'b.npz'), 'signatures')):
    assert rows.shape == (5, 3, 2) and len(rows) == 5 and rows.dtype == np.float32
    np.testing.assert_array_equal(rows[1:4], array[1:4])
    np.testing.assert_array_equal(rows[::2], array[::2])
    np.testing.assert_array_equal(rows[np.array([4, 0, 2])], array[[4, 0, 2]])
    np.testing.assert_array_equal(rows[3:], array[3:])
  np.savez_compressed(tmp_path / 'c.npz', signatures=array)
  with pytest.raises(ValueError, match='signatures is compressed'):
    StoredRows.of(str(tmp_path / 'c.npz'), 'signatures')


def test_the_compact_searcher_reranks_rows_read_from_disk(gallery, tmp_path):
  from tf_partfash.storage.cache import StoredRows
  vectors, compact = gallery
  np.save(tmp_path / 'g.npy', vectors)
  queries = _clustered(5, seed=5)
  on_disk = CompactSearcher(compact, StoredRows.of(str(tmp_path / 'g.npy'))).search(queries, 10)
  in_memory = CompactSearcher(compact, vectors).search(queries, 10)
  np.testing.assert_array_equal(on_disk[0], in_memory[0])
  np.testing.assert_array_equal(on_disk[1], in_memory[1])


def test_a_lazily_loaded_index_reads_its_signatures_by_the_rows_asked_for(untrained_run):
  from tf_partfash.search.gallery import GalleryIndex
  from tf_partfash.search.trained_run import TrainedRun
  from tf_partfash.storage.cache import StoredRows
  file = os.path.join(untrained_run.workdir, 'index_test.npz')
  eager, lazy = GalleryIndex.load(file), GalleryIndex.load(file, lazy_signatures=True)
  assert isinstance(lazy.signatures, StoredRows) and len(lazy) == len(eager)
  np.testing.assert_array_equal(lazy.labels, eager.labels)
  np.testing.assert_array_equal(lazy.take([3, 1]).signatures, eager.signatures[[3, 1]])
  np.testing.assert_array_equal(lazy.signatures[:, :1], eager.signatures[:, :1])  # Classic's
  np.testing.assert_array_equal(np.asarray(lazy.signatures), eager.signatures)    # exact's
  run = TrainedRun.open(untrained_run.workdir, progress=False)
  assert isinstance(run.index(lazy=True).signatures, StoredRows)
