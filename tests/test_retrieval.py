"""Search maths (paper Eq. 4-6, §4.1 manipulation) against values worked out by hand."""
import sys

import numpy as np
import pytest

from tf_partfash.attributes import ATTRIBUTE_NAMES, signature_index
from tf_partfash.config import DISTANCES
from tf_partfash.search import retrieval
from tf_partfash.search.gallery import compute_prototypes

# Query and a 3-item gallery, V = 2 signatures of D = 2 (unit vectors).
QUERY = np.array([[[1, 0], [0, 1]]], np.float32)
GALLERY = np.array([[[1, 0], [0, 1]],      # identical: 0
                    [[0, 1], [0, 1]],      # block 0 at squared distance 2
                    [[-1, 0], [1, 0]]],    # block 0 at 4, block 1 at 2
                   np.float32)
SQRT2 = 2 ** 0.5


def test_eq4_squared_and_euclidean_by_hand():
  np.testing.assert_allclose(retrieval.signature_distances(QUERY, GALLERY, distance='squared'),
                             [[0, 2, 6]], atol=1e-6)
  np.testing.assert_allclose(retrieval.signature_distances(QUERY, GALLERY, distance='euclidean'),
                             [[0, SQRT2, 2 + SQRT2]], atol=1e-6)


def test_eq6_shared_and_per_query_weights_by_hand():
  w = np.array([0.5, 1.5])
  # squared: r1 0.5 * 2 = 1; r2 0.5 * 4 + 1.5 * 2 = 5.
  # euclidean: r1 0.5 * √2; r2 0.5 * 2 + 1.5 * √2.
  np.testing.assert_allclose(retrieval.signature_distances(QUERY, GALLERY, w, 'squared'),
                             [[0, 1, 5]], atol=1e-6)
  np.testing.assert_allclose(retrieval.signature_distances(QUERY, GALLERY, w, 'euclidean'),
                             [[0, 0.5 * SQRT2, 1 + 1.5 * SQRT2]], atol=1e-6)
  # Second query = r2; per-query weights (Q, V): query 2 with w = (2, 0): 2 * 4, 2 * 2, 0.
  queries = np.concatenate([QUERY, GALLERY[2:]])
  got = retrieval.signature_distances(queries, GALLERY, np.array([[0.5, 1.5], [2.0, 0.0]]),
                                     'squared')
  np.testing.assert_allclose(got, [[0, 1, 5], [8, 4, 0]], atol=1e-6)


def test_rows_distances_by_hand_as_signature_distances_gives_them():
  """The compact index's re-ranking (one query against its candidates' rows as they are): the
  same values worked out above, and a zeroed block's true distance."""
  w = np.array([0.5, 1.5], np.float32)
  for weights, squared, euclidean in ((np.ones(2, np.float32), [0, 2, 6], [0, SQRT2, 2 + SQRT2]),
                                      (w, [0, 1, 5], [0, 0.5 * SQRT2, 1 + 1.5 * SQRT2])):
    np.testing.assert_allclose(retrieval.rows_distances(QUERY[0], GALLERY, weights, 'squared'),
                               squared, atol=1e-6)
    np.testing.assert_allclose(retrieval.rows_distances(QUERY[0], GALLERY, weights), euclidean,
                               atol=1e-6)
  zeroed = np.array([[[1, 0], [0, 0]]], np.float32)
  np.testing.assert_allclose(retrieval.rows_distances(QUERY[0], zeroed, np.ones(2), 'squared'),
                             [1], atol=1e-6)
  rng = np.random.default_rng(0)
  queries, rows = rng.standard_normal((2, 3, 8)).astype(np.float32), rng.standard_normal(
      (50, 3, 8)).astype(np.float32)
  weights = rng.random((2, 3)).astype(np.float32)
  for distance in DISTANCES:
    expected = retrieval.signature_distances(queries, rows, weights, distance)
    got = [retrieval.rows_distances(q, rows, v, distance) for q, v in zip(queries, weights)]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_a_zeroed_signature_keeps_its_true_squared_distance():
  # A ReLU block of all zeros stays 0 after L2 normalisation: |q - 0|² = 1, not 2 - 2<q, 0> = 2.
  gallery = np.array([[[1, 0], [0, 0]]], np.float32)
  np.testing.assert_allclose(retrieval.signature_distances(QUERY, gallery, distance='squared'),
                             [[0 + 1]], atol=1e-6)
  # Eq. 4 as written (the default) takes its square root per block: the same 1 here.
  np.testing.assert_allclose(retrieval.signature_distances(QUERY, gallery), [[1]], atol=1e-6)


def test_bad_shapes_and_names_are_errors():
  with pytest.raises(ValueError, match=r'valid distances: euclidean, squared'):
    retrieval.signature_distances(QUERY, GALLERY, distance='cosine')
  with pytest.raises(ValueError, match=r'expected \(2,\) or \(1, 2\)'):
    retrieval.signature_distances(QUERY, GALLERY, np.ones(3))
  with pytest.raises(ValueError, match=r'\(N, V, D\)'):
    retrieval.signature_distances(QUERY[0], GALLERY)


def test_top_k_breaks_ties_by_gallery_index():
  d = np.array([[3, 1, 1, 0, 1], [1, 1, 1, 1, 1]], np.float32)
  idx, dist = retrieval.top_k(d, 3)
  np.testing.assert_array_equal(idx, [[3, 1, 2], [0, 1, 2]])
  np.testing.assert_array_equal(dist, [[0, 1, 1], [1, 1, 1]])
  idx, _ = retrieval.top_k(d, 9)  # more than N: everything, ranked
  np.testing.assert_array_equal(idx[0], [3, 1, 2, 4, 0])
  with pytest.raises(ValueError, match='at least 1'):
    retrieval.top_k(d, 0)
  with pytest.raises(ValueError, match='NaN'):
    retrieval.top_k(np.array([[0.0, np.nan]]), 1)


def test_top_k_matches_a_full_sort_with_many_ties():
  rng = np.random.default_rng(0)
  d = rng.integers(0, 6, (50, 200)).astype(np.float32)
  idx, _ = retrieval.top_k(d, 7)
  reference = np.stack([np.lexsort((np.arange(200), row))[:7] for row in d])
  np.testing.assert_array_equal(idx, reference)


def _random_gallery(n, v=6, d=16, seed=0, duplicates=0):
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((n, v, d)).astype(np.float32)
  x /= np.linalg.norm(x, axis=-1, keepdims=True)
  if duplicates:  # exact ties: copies of earlier items later in the gallery
    x[-duplicates:] = x[:duplicates]
  return x


def test_exact_search_over_chunks_equals_one_full_top_k(monkeypatch):
  gallery = _random_gallery(300, duplicates=40)
  queries = np.concatenate([gallery[:5], _random_gallery(4, seed=1)])
  weights = np.linspace(0.5, 1.5, 6)
  for distance in DISTANCES:
    full = retrieval.signature_distances(queries, gallery, weights, distance)
    expected = retrieval.top_k(full, 8)
    monkeypatch.setattr(retrieval, '_BLOCK_ELEMENTS', 9 * 50)  # chunks of 50 gallery items
    got = retrieval.Searcher(gallery, distance=distance).search(queries, 8, weights)
    monkeypatch.undo()
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_allclose(got[1], expected[1], atol=1e-5)
  # A query equal to item 0 (and to its copy at 260) finds both, in index order.
  assert got[0][0, :2].tolist() == [0, 260]


def test_faiss_gives_the_exact_top_k():
  gallery = _random_gallery(500)
  queries = _random_gallery(20, seed=3)
  exact = retrieval.Searcher(gallery, 'exact', 'squared')
  faiss = retrieval.Searcher(gallery, 'faiss', 'squared')
  for weights in (None, np.array([2.0, 0.5, 1.0, 1.0, 0.25, 1.25])):
    e_idx, e_dist = exact.search(queries, 10, weights)
    f_idx, f_dist = faiss.search(queries, 10, weights)
    np.testing.assert_array_equal(f_idx, e_idx)
    np.testing.assert_allclose(f_dist, e_dist, rtol=1e-4, atol=1e-4)


def test_faiss_errors(monkeypatch):
  with pytest.raises(ValueError, match='distance=squared only'):
    retrieval.Searcher(GALLERY, 'faiss')  # the default distance is Eq. 4's, which FAISS lacks
  with pytest.raises(ValueError, match='valid backends: exact, faiss'):
    retrieval.Searcher(GALLERY, 'annoy')
  monkeypatch.setitem(sys.modules, 'faiss', None)  # as if not installed
  with pytest.raises(ImportError, match=r'pip install tf-partfash\[faiss\]'):
    retrieval.Searcher(GALLERY, 'faiss', 'squared')


def test_eq5_weights_by_hand():
  picked = np.array([[[1, 0], [1, 0]],
                     [[0, 1], [1, 0]],
                     [[1, 0], [0.6, 0.8]]], np.float32)
  # squared: block 0 pairs 2 + 0 + 2 = 4, block 1 pairs 0 + 0.8 + 0.8 = 1.6.
  # w ∝ (1/4, 1/1.6) = (0.25, 0.625), scaled to sum to V = 2: (0.571429, 1.428571).
  np.testing.assert_allclose(retrieval.personalization_weights(picked, 'squared'),
                             [4 / 7, 10 / 7], rtol=1e-5)
  # euclidean (the default, Eq. 5 as written): block 0: 2√2 = 2.828427; block 1: 2√0.8 =
  # 1.788854 -> w ∝ (0.353553, 0.559017), sum 0.912570: w = (0.707107, 1.118034) / 0.912570.
  np.testing.assert_allclose(retrieval.personalization_weights(picked),
                             [0.774852, 1.225148], rtol=1e-5)
  np.testing.assert_array_equal(retrieval.personalization_weights(picked[:1]), [1, 1])
  with pytest.raises(ValueError, match='at least one'):
    retrieval.personalization_weights(picked[:0])


def test_eq6_weights_change_the_ranking():
  # Item 0 matches the query on block 0 only, item 1 on block 1 only.
  gallery = np.array([[[1, 0], [-1, 0]], [[0, 1], [0, 1]]], np.float32)
  query = np.array([[[1, 0], [0, 1]]], np.float32)
  # Unweighted: 0 + 2 vs 2 + 0, a tie kept in index order. Picks that agree on block 1 only
  # give it (almost) all the weight, so item 1 comes first.
  searcher = retrieval.Searcher(gallery)
  assert searcher.search(query, 2)[0].tolist() == [[0, 1]]
  picked = np.array([[[1, 0], [0, 1]], [[0, 1], [0, 1]]], np.float32)  # spread: block 0 only
  weights = retrieval.personalization_weights(picked)
  assert weights[1] > 1e5 * weights[0]
  assert searcher.search(query, 2, weights)[0].tolist() == [[1, 0]]


def _prototypes():
  """Prototypes of 2 training images with D = 2: collar Hood (3) and color Navy (5) each seen."""
  sig = np.zeros((2, 6, 2), np.float32)
  sig[:, :, 0] = 1.0
  sig[1, signature_index('collar')] = [0.0, 1.0]
  sig[1, signature_index('color')] = [-1.0, 0.0]
  labels = np.full((2, len(ATTRIBUTE_NAMES)), -1)
  labels[1, ATTRIBUTE_NAMES.index('collar')] = 3
  labels[1, ATTRIBUTE_NAMES.index('color')] = 5
  labels[0, ATTRIBUTE_NAMES.index('color')] = 1
  return compute_prototypes(sig, labels)


def test_manipulation_replaces_only_the_changed_blocks():
  queries = _random_gallery(2, d=2, seed=4)
  changes = [retrieval.parse_changes(['Collar=hood']),
             retrieval.parse_changes(['collar=Hood', 'color=navy'])]
  out = retrieval.manipulate(queries, changes, _prototypes())
  collar, color = signature_index('collar'), signature_index('color')
  np.testing.assert_array_equal(out[0, collar], [0.0, 1.0])
  np.testing.assert_array_equal(out[1, collar], [0.0, 1.0])
  np.testing.assert_array_equal(out[1, color], [-1.0, 0.0])
  untouched = [v for v in range(6) if v != collar]
  np.testing.assert_array_equal(out[0, untouched], queries[0, untouched])
  untouched = [v for v in range(6) if v not in (collar, color)]
  np.testing.assert_array_equal(out[1, untouched], queries[1, untouched])
  assert not np.shares_memory(out, queries)


def test_manipulation_errors_list_the_choices():
  with pytest.raises(ValueError, match="'category' is a general attribute.*special attributes: "
                     'collar, color, fastening, pattern, sleevelen'):
    retrieval.parse_changes(['category=Coat'])
  with pytest.raises(ValueError, match="unknown attribute 'colour'; valid attributes: category, "
                     'collar, color'):
    retrieval.parse_changes(['colour=red'])
  with pytest.raises(ValueError, match="unknown value 'teal' for attribute 'color'; valid values: "
                     'Maroon, Black'):
    retrieval.parse_changes(['color=teal'])
  with pytest.raises(ValueError, match='not of the form name=value'):
    retrieval.parse_changes(['color'])
  with pytest.raises(ValueError, match="'color' is set twice"):
    retrieval.parse_changes(['color=red', 'COLOR=navy'])
  with pytest.raises(ValueError, match="no training image has collar='Mandarin'.*seen in "
                     'training: Hood'):
    retrieval.manipulate(np.zeros((1, 6, 2)), [{'collar': 7}], _prototypes())
  with pytest.raises(ValueError, match='general attribute'):
    retrieval.manipulate(np.zeros((1, 6, 2)), [{'fabric': 0}], _prototypes())


def test_parse_changes_by_vocabulary_name():
  assert retrieval.parse_changes(['sleevelen=sleeveless', 'Color=Light Blue']) == {
      'sleevelen': 2, 'color': 7}


def test_matches_needs_every_demanded_label():
  labels = np.full((3, len(ATTRIBUTE_NAMES)), -1)
  c, s = ATTRIBUTE_NAMES.index('collar'), ATTRIBUTE_NAMES.index('sleevelen')
  labels[0, [c, s]] = [3, 2]
  labels[1, [c, s]] = [3, 6]
  labels[2, c] = 3  # sleeve length unknown: cannot be confirmed
  assert retrieval.confirms(labels, {'collar': 3, 'sleevelen': 2}).tolist() == [True, False, False]
