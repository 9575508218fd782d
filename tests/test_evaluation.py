"""Retrieval protocols on hand-made galleries with every hit known (paper §7, ADDE, AMNet NDCG)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tf_partfash.attributes import ATTRIBUTE_NAMES, SPECIAL_ATTRIBUTES
from tf_partfash.data import adde
from tf_partfash.evaluation.metrics import adde_ndcg, first_hits, has_labels, ndcg, top_k_accuracy
from tf_partfash.evaluation.protocols.adde import adde_query_set, ensure_adde_test
from tf_partfash.evaluation.queries import (QuerySet, ensure_paper_queries, feasible_changes,
                                            make_paper_queries)
from tf_partfash.evaluation.scoring import score_queries
from tf_partfash.search.encoders import SignatureEncoder
from tf_partfash.search.gallery import GalleryIndex, Prototypes
from tf_partfash.search.retrieval import Searcher

# Signature blocks are one of two orthogonal unit vectors, so the squared Eq. 4 distance is
# 2 x (number of differing blocks) and every ranking below can be read off by counting.
E0, E1 = np.array([1.0, 0.0]), np.array([0.0, 1.0])
# Block v: 0 general, then SPECIAL_ATTRIBUTES order (collar, color, fastening, pattern, sleevelen).
GENERAL, COLLAR, COLOR, FASTENING, PATTERN, SLEEVE = range(6)


def _signature(*flipped: int) -> np.ndarray:
  """A (6, 2) signature: E0 everywhere except E1 at the `flipped` blocks."""
  out = np.tile(E0, (6, 1))
  out[list(flipped)] = E1
  return out


def _prototypes(**known: dict[int, np.ndarray]) -> Prototypes:
  """Prototypes of the special attributes: the given value -> vector, no images for the rest."""
  vectors, counts = {}, {}
  for name in SPECIAL_ATTRIBUTES:
    size = {'collar': 17, 'color': 19, 'fastening': 10, 'pattern': 16, 'sleevelen': 9}[name]
    vectors[name] = np.zeros((size, 2), np.float32)
    counts[name] = np.zeros(size, np.int64)
    for value, vector in known.get(name, {}).items():
      vectors[name][value], counts[name][value] = vector, 1
  return Prototypes(vectors=vectors, counts=counts)


def features(signatures: np.ndarray, **probabilities: np.ndarray) -> GalleryIndex:
  """Index rows of query images with the given signatures (labels unknown)."""
  n = len(signatures)
  return GalleryIndex(np.asarray(signatures, np.float32), probabilities,
                      np.full((n, len(ATTRIBUTE_NAMES)), -1), np.array([''] * n), np.arange(n), '')


# The paper protocol's gallery: signatures and special labels (collar, color, fastening, pattern,
# sleevelen). The query has E0 everywhere and labels 0,0,0,0,0.
GALLERY_SIGNATURES = np.stack([
    _signature(),                          # g0: looks identical, sleeve label 1
    _signature(COLOR),                     # g1: color 1
    _signature(GENERAL, PATTERN),          # g2: the query's exact labels
    _signature(GENERAL, COLOR, SLEEVE),    # g3: color 1 and sleeve 1
]).astype(np.float32)
GALLERY_LABELS = np.array([[0, 0, 0, 0, 1], [0, 1, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, 0, 0, 1]])
QUERY = _signature().astype(np.float32)
PROTOTYPES = _prototypes(color={1: E1}, sleevelen={1: E1})


def test_matches_first_hits_and_top_k_by_hand():
  gallery = np.array([[1, 2], [1, -1], [3, 2], [1, 2]])
  retrieved = np.array([[2, 1, 0, 3],    # first exact [1, 2] at rank 2
                        [0, 3, 1, 2],    # at rank 0
                        [2, 1, 2, 1]])   # never
  targets = np.array([[1, 2], [1, 2], [1, 2]])
  hit = has_labels(retrieved, gallery, targets)
  assert hit.tolist() == [[False, False, True, True], [True, True, False, False],
                          [False, False, False, False]]
  first = first_hits(hit)
  assert first.tolist() == [2, 0, 4]
  np.testing.assert_allclose(top_k_accuracy(first, 4), [1 / 3, 1 / 3, 2 / 3, 2 / 3])


def test_a_missing_label_matches_only_a_missing_label():
  # ADDE: an all-zero block (-1) in the target must be all-zero in the result too.
  gallery = np.array([[7, 2, 12], [7, 2, -1]])
  hit = has_labels(np.array([[0, 1]]), gallery, np.array([[7, 2, -1]]))
  assert hit.tolist() == [[False, True]]


def test_ndcg_on_a_four_item_ranking_by_hand():
  # Ranked labels match 4, 4, 5, 3 of the 5 wanted ones: rel = 0.8, 0.8, 1, 0.6.
  # DCG  = 0.741101/1 + 0.741101/log2(3) + 1/2 + 0.515717/log2(5) = 1.930791
  # IDCG = 1/1 + 0.741101/log2(3) + 0.741101/2 + 0.515717/log2(5) = 2.060240 (order 1, .8, .8, .6)
  gallery = np.array([[0, 0, 0, 0, 1], [0, 1, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, 0, 0, 1]])
  value = ndcg(np.array([[0, 1, 2, 3]]), gallery, np.zeros((1, 5), np.int64), k=4)
  assert value[0] == pytest.approx(1.930791 / 2.060240, abs=1e-6)
  # The ideal order scores 1; k larger than the gallery ranks the whole gallery.
  assert ndcg(np.array([[2, 0, 1, 3]]), gallery, np.zeros((1, 5), np.int64), k=20)[0] == \
      pytest.approx(1.0)


def test_ndcg_of_the_best_order_is_one_on_random_labels():
  # Z is the DCG of the gallery sorted by matched labels, with repeated label rows counted.
  rng = np.random.default_rng(0)
  gallery = rng.integers(-1, 3, (60, 3))
  targets = rng.integers(-1, 3, (10, 3))
  relevance = (gallery[None] == targets[:, None]).mean(axis=-1)
  best = np.argsort(-relevance, axis=1, kind='stable')
  np.testing.assert_allclose(ndcg(best, gallery, targets, k=20), 1.0)
  assert (ndcg(best[:, ::-1], gallery, targets, k=20) < 1).all()


def test_adde_ndcg_by_hand():
  """ADDE's NDCG over A = 3 attributes, top 2, the middle column manipulated.

  Result 1 matches columns 0, 1: rel 2/3, target 1, others 1/2; result 2 matches column 2: rel
  1/3, target 0, others 1/2. Discounts 1/log2(2) = 1 and 1/log2(3) = 0.63093; the all-relevant
  list scores 1 + 0.63093 = 1.63093. NDCG = ((2^(2/3) - 1) + (2^(1/3) - 1) 0.63093) / 1.63093
  = 0.460714; target = 1 / 1.63093 = 0.613147; others = (2^0.5 - 1) (1.63093) / 1.63093 = 0.414214.
  """
  gallery = np.array([[1, 2, 0], [0, 5, 3], [1, 2, 3]])
  out = adde_ndcg(np.array([[0, 1]]), gallery, np.array([[1, 2, 3]]), np.array([1]), k=2)
  assert out['ndcg'][0] == pytest.approx(0.460714, abs=1e-6)
  assert out['ndcg_target'][0] == pytest.approx(0.613147, abs=1e-6)
  assert out['ndcg_others'][0] == pytest.approx(0.414214, abs=1e-6)
  # Unlike AMNet's NDCG, the best ranking of this gallery (the exact image first) is not 1:
  # ADDE divides by an all-relevant list the gallery cannot fill.
  best = adde_ndcg(np.array([[2, 0]]), gallery, np.array([[1, 2, 3]]), np.array([1]), k=2)
  assert best['ndcg'][0] == pytest.approx((1 + (2 ** (2 / 3) - 1) / np.log2(3)) / 1.6309298,
                                          abs=1e-6)
  assert ndcg(np.array([[2, 0]]), gallery, np.array([[1, 2, 3]]), k=2)[0] == pytest.approx(1.0)


def test_direct_and_manipulated_search_on_a_hand_made_gallery():
  searcher = Searcher(GALLERY_SIGNATURES, distance='squared')
  direct = QuerySet('direct', np.array([0]), ({},), np.zeros((1, 5), np.int64),
                    SPECIAL_ATTRIBUTES)
  # Distances 0, 2, 4, 6: g0 (sleeve 1) first, the exact g2 third.
  scores = score_queries(searcher, features(QUERY[None]), direct, GALLERY_LABELS,
                         SignatureEncoder(PROTOTYPES), max_k=4)
  assert scores.first_hit.tolist() == [2]
  np.testing.assert_allclose(scores.top_k(), [0, 0, 1, 1])
  assert scores.ndcg['ndcg@20'][0] == pytest.approx(1.930791 / 2.060240, abs=1e-6)
  # color -> 1: the query's color block becomes E1; g1 (distance 0) has the wanted labels.
  # color -> 1 and sleevelen -> 1: g1 and g3 tie at 2, the lower index first, g3 is wanted.
  manipulated = QuerySet('manipulate', np.array([0, 0]), ({'color': 1},
                                                          {'color': 1, 'sleevelen': 1}),
                         np.array([[0, 1, 0, 0, 0], [0, 1, 0, 0, 1]]), SPECIAL_ATTRIBUTES)
  scores = score_queries(searcher, features(np.stack([QUERY, QUERY])), manipulated,
                         GALLERY_LABELS, SignatureEncoder(PROTOTYPES), max_k=4)
  assert scores.first_hit.tolist() == [0, 1]
  assert scores.manipulated == ('color', 'color+sleevelen')
  assert scores.per_attribute(k=1) == {'color': (1.0, 1, (1.0, 1.0)),
                                       'color+sleevelen': (0.0, 1, (0.0, 0.0))}
  # The same queries give the same numbers twice.
  again = score_queries(searcher, features(np.stack([QUERY, QUERY])), manipulated,
                        GALLERY_LABELS, SignatureEncoder(PROTOTYPES), max_k=4, chunk=1)
  assert again.first_hit.tolist() == scores.first_hit.tolist()
  np.testing.assert_array_equal(again.ndcg['ndcg@20'], scores.ndcg['ndcg@20'])
  # Eq. 4 as written (plain distances summed) ranks these galleries alike: blocks are 0 or
  # sqrt(2) apart, so both sums count the differing blocks.
  euclidean = score_queries(Searcher(GALLERY_SIGNATURES), features(np.stack([QUERY, QUERY])),
                            manipulated, GALLERY_LABELS, SignatureEncoder(PROTOTYPES), max_k=4)
  assert euclidean.first_hit.tolist() == [0, 1]


def _labels12(**values: int) -> list[int]:
  return [values.get(name, -1) for name in ATTRIBUTE_NAMES]


def test_adde_reference_never_counts_and_missing_blocks_must_match():
  # Test images = the gallery, the reference t0 included.
  labels = np.array([_labels12(collar=7, color=1),              # t0: reference
                     _labels12(collar=7, color=2, pattern=12),  # t1: pattern is extra
                     _labels12(collar=7, color=2),              # t2: the target exactly
                     _labels12(collar=3, color=1, category=4)])
  signatures = np.stack([_signature(), _signature(COLOR), _signature(GENERAL, COLOR, SLEEVE),
                         _signature(GENERAL, COLLAR, FASTENING, PATTERN)]).astype(np.float32)
  queries = adde.make_adde_queries(labels, num_references=1)
  # ADDE's rule: from t0 only color 1 -> 2 has a target image (t2).
  assert queries.ref.tolist() == [0]
  query_set = adde_query_set(queries)
  assert query_set.changes == ({'color': 2},)
  # Manipulated t0 (color block E1) ranks t1 (0), t0 (2), t2 (4): the first hit is t2, rank 2;
  # t1 differs only by a label the target lacks, t0 by construction.
  scores = score_queries(Searcher(signatures, distance='squared'),
                         features(signatures[query_set.rows]), query_set, labels,
                         SignatureEncoder(_prototypes(color={2: E1})), max_k=3,
                         ndcg_definition='adde')
  assert scores.first_hit.tolist() == [2]
  np.testing.assert_allclose(scores.top_k(), [0, 0, 1])
  # ADDE's NDCG over the whole 4-image gallery (t1, t0, t2, t3) against the target (collar 7,
  # color 2, the other 10 missing): t1 matches 11 of 12 (not pattern), color among them; t0 11
  # (not color); t2 all 12; t3 9 (not collar, color, category). Others: 10/11, 1, 1, 9/11.
  d = 1 / np.log2(np.arange(2, 6))
  gain = lambda rel: ((2.0 ** np.asarray(rel) - 1) * d).sum() / d.sum()
  assert scores.ndcg['adde_ndcg@20'][0] == pytest.approx(gain([11 / 12, 11 / 12, 1, 9 / 12]),
                                                         abs=1e-6)
  assert scores.ndcg['adde_ndcg_target@20'][0] == pytest.approx(gain([1, 0, 1, 0]), abs=1e-6)
  assert scores.ndcg['adde_ndcg_others@20'][0] == pytest.approx(gain([10 / 11, 1, 1, 9 / 11]),
                                                                abs=1e-6)
  # From t3, category 4 -> 5 (a general attribute: no prototype) searches t3 unchanged: the
  # reference itself ranks first, but it is no hit, and no image has the target labels.
  general = QuerySet('adde', np.array([3]), ({'category': 5},),
                     np.array([_labels12(collar=3, color=1, category=5)]), ATTRIBUTE_NAMES)
  scores = score_queries(Searcher(signatures, distance='squared'), features(signatures[[3]]),
                         general, labels, SignatureEncoder(_prototypes(color={2: E1})), max_k=3)
  assert scores.first_hit.tolist() == [3] and scores.unexpressed.tolist() == [True]


def test_expressible_changes_drop_general_attributes_and_unseen_values():
  kept, dropped = SignatureEncoder(PROTOTYPES).expressible(
      [{'color': 1}, {'color': 3}, {'category': 2, 'sleevelen': 1}, {}])
  assert kept == [{'color': 1}, {}, {'sleevelen': 1}, {}]
  assert dropped.tolist() == [False, True, True, False]


def test_feasible_changes_by_hand():
  query = np.zeros(5, np.int64)
  gallery = np.array([[0, 1, 0, 0, 0],    # color -> 1
                      [0, 2, 0, 0, 0],    # color -> 2, never in training
                      [1, 0, 0, 0, 0],    # collar -> 1
                      [0, 1, 0, 0, 1],    # color -> 1 and sleevelen -> 1
                      [0, 0, 0, 0, 0]])   # no change
  allowed = np.ones((5, 19), bool)
  allowed[1, 2] = False
  assert feasible_changes(query, gallery, allowed, 1).tolist() == [[0, 1], [1, 1]]
  assert feasible_changes(query, gallery, allowed, 2).tolist() == [[1, 4, 1, 1]]


def _dataset() -> tuple[pd.DataFrame, pd.DataFrame]:
  """Eight images: 3 train, 3 gallery, 2 query (q1 lacks a pattern label, so only q0 counts).

  q0's own labels are in no gallery image, so it has no direct query. Categories: q0 and g0, g2
  are coats (0), g1 a jacket (1).
  """
  special = {  # collar, color, fastening, pattern, sleevelen
      't0': (0, 0, 0, 0, 0), 't1': (0, 1, 0, 0, 1), 't2': (0, 2, 0, 0, 0),
      'g0': (0, 1, 0, 0, 0), 'g1': (0, 2, 0, 0, 0), 'g2': (0, 1, 0, 0, 1),
      'q0': (0, 0, 0, 0, 0), 'q1': (0, 0, 0, -1, 0)}
  category = {'g1': 1}
  rows = []
  for name, labels in special.items():
    row = dict(zip(ATTRIBUTE_NAMES, [-1] * 12), **dict(zip(SPECIAL_ATTRIBUTES, labels)))
    row['category'] = category.get(name, 0)
    rows.append({'path': f'Male/1_Coats/{name}.jpg', **row})
  table = pd.DataFrame(rows, columns=['path', *ATTRIBUTE_NAMES])
  subsets = ['train'] * 3 + ['gallery'] * 3 + ['query'] * 2
  return table, pd.DataFrame({'path': table['path'], 'subset': subsets})


def test_paper_queries_are_drawn_once_stored_and_checked(tmp_path):
  table, split = _dataset()
  split_file = str(tmp_path / 'paper_split_seed0.csv')
  queries, file = ensure_paper_queries(split_file, table, split, seed=3)
  assert file == str(tmp_path / 'paper_split_seed0.queries_special_seed3.json')
  # Only q0 (row 6) has all special labels; no gallery image has its own (direct: left out); it
  # can become color 1 or 2 (g0, g1) and, with two changes, color 1 + sleevelen 1 (g2).
  assert len(queries['direct']) == 0
  assert queries['direct'].left_out == {'unlabelled': 1, 'no_target': 1}
  assert queries['manipulate1'].rows.tolist() == [6]
  assert queries['manipulate1'].left_out == {'unlabelled': 1, 'no_target': 0}
  assert queries['manipulate1'].changes[0] in ({'color': 1}, {'color': 2})
  assert queries['manipulate2'].changes == ({'color': 1, 'sleevelen': 1},)
  assert queries['manipulate2'].targets.tolist() == [[0, 1, 0, 0, 1]]
  again, _ = ensure_paper_queries(split_file, table, split, seed=3)
  for name in queries:
    assert again[name].changes == queries[name].changes
    assert again[name].left_out == queries[name].left_out
    np.testing.assert_array_equal(again[name].targets, queries[name].targets)
  # Drawing depends on the seed and the path only: the same draw without the file.
  fresh = make_paper_queries(table, split, seed=3)
  assert fresh['manipulate1'].changes == queries['manipulate1'].changes
  # A tampered target is caught, naming the file.
  blob = json.loads(open(file).read())
  blob['settings']['manipulate2'][0]['target'] = [0, 1, 0, 0, 0]
  open(file, 'w').write(json.dumps(blob))
  with pytest.raises(ValueError, match='queries_special_seed3.json: manipulate2 query 0'):
    ensure_paper_queries(split_file, table, split, seed=3)


def test_hit_rule_all_keeps_the_general_labels():
  """With --hit_attributes=all a target keeps the query's general labels: g1 (a jacket) no
  longer serves q0 (a coat), so the only one-attribute change is color -> 1 (g0)."""
  table, split = _dataset()
  queries = make_paper_queries(table, split, seed=3, hit_attributes='all')
  assert queries['manipulate1'].attributes == ATTRIBUTE_NAMES
  assert queries['manipulate1'].changes == ({'color': 1},)
  target = queries['manipulate1'].targets[0]
  assert target[ATTRIBUTE_NAMES.index('category')] == 0
  assert target[ATTRIBUTE_NAMES.index('color')] == 1
  assert target[ATTRIBUTE_NAMES.index('fabric')] == -1  # missing is kept, to match missing
  assert queries['manipulate2'].changes == ({'color': 1, 'sleevelen': 1},)
  # Jackets only in the gallery: no coat target at all.
  jackets = table.assign(category=np.where(split['subset'] == 'gallery', 1, 0))
  none = make_paper_queries(jackets, split, seed=3, hit_attributes='all')
  assert [len(q) for q in none.values()] == [0, 0, 0]
  assert none['manipulate1'].left_out == {'unlabelled': 1, 'no_target': 1}


def test_stored_queries_of_another_gallery_or_hit_rule_are_refused(tmp_path):
  table, split = _dataset()
  split_file = str(tmp_path / 'split.csv')
  _, file = ensure_paper_queries(split_file, table, split, seed=0)
  other = split.copy()
  other.loc[0, 'subset'] = 'gallery'
  with pytest.raises(ValueError, match='another gallery'):
    ensure_paper_queries(split_file, table, other, seed=0)
  from tf_partfash.evaluation.queries import load_paper_queries
  with pytest.raises(ValueError, match="drawn for hit_attributes='special', not 'all'"):
    load_paper_queries(file, table, split, 'all')


def test_adde_files_written_by_adde_rule_with_queries_first(tmp_path):
  table, split = _dataset()
  test = ensure_adde_test(table, split, str(tmp_path / 'paper_split_seed0.csv'))
  assert test.directory == str(tmp_path / 'paper_split_seed0_adde')
  # Test images: the query images q0, q1, then the gallery g0, g1, g2.
  assert test.rows.tolist() == [6, 7, 3, 4, 5]
  assert adde.read_image_list(adde.images_file(test.directory, 'test'))[0] == \
      'Male/1_Coats/q0.jpg'
  # References are the 2 query images: q0 -> color 1 (g0; g1 is a jacket, two changes away);
  # q1 (no pattern label) -> pattern 0 is q0 itself, a test image too.
  assert test.queries.rows.tolist() == [0, 1]
  assert test.queries.changes == ({'color': 1}, {'pattern': 0})
  again = ensure_adde_test(table, split, str(tmp_path / 'paper_split_seed0.csv'))
  np.testing.assert_array_equal(again.queries.targets, test.queries.targets)


def test_user_adde_lists_without_query_files(tmp_path):
  # ADDE's public release has imgs_test.txt and ref_test.txt only: the queries are built by ADDE's
  # rule (references from the first 2,000 test images) and the references compared.
  table, split = _dataset()
  user = tmp_path / 'adde'
  user.mkdir()
  paths = [f'Male/1_Coats/{n}.jpg' for n in ('q0', 'q1', 'g0', 'g1', 'g2')]
  adde.write_image_list(adde.images_file(str(user), 'test'), paths)
  (user / adde.REFERENCE_FILE).write_text('0\n0\n1\n')
  test = ensure_adde_test(table, split, str(tmp_path / 'state' / 'split.csv'), adde_dir=str(user))
  assert test.directory.startswith(str(tmp_path / 'state' / 'adde_'))
  assert test.rows.tolist() == [6, 7, 3, 4, 5]
  # Every test image may be a reference here (5 < 2,000): g0 -> color 2 is g1, and so on.
  assert len(test.queries) > 3 and len(test.notes) == 1 and 'ref_test.txt: 3 queries' in \
      test.notes[0]
  # An image the dataset lacks is named with its file and line.
  adde.write_image_list(adde.images_file(str(user), 'test'), paths + ['Male/1_Coats/x.jpg'])
  with pytest.raises(ValueError, match=r'imgs_test.txt:6: image .*x.jpg.* not in the dataset'):
    ensure_adde_test(table, split, str(tmp_path / 'state' / 'split.csv'), adde_dir=str(user))


def test_user_adde_files_with_other_vocabulary_sizes_are_refused(tmp_path):
  table, split = _dataset()
  user = tmp_path / 'adde'
  user.mkdir()
  adde.write_image_list(adde.images_file(str(user), 'test'), ['Male/1_Coats/q0.jpg'])
  adde.write_attr_num(str(user / adde.ATTR_NUM_FILE))
  lines = (user / adde.ATTR_NUM_FILE).read_text().split('\n')
  (user / adde.ATTR_NUM_FILE).write_text('\n'.join(['999'] + lines[1:]))
  with pytest.raises(ValueError, match=r"attr_num.txt:1: attribute 'category' has 16 values, "
                                       r"file says '999'"):
    ensure_adde_test(table, split, str(tmp_path / 'state' / 'split.csv'), adde_dir=str(user))


def test_user_adde_query_files_are_used_as_they_are(tmp_path):
  table, split = _dataset()
  user = tmp_path / 'adde'
  paths = [f'Male/1_Coats/{n}.jpg' for n in ('q0', 'g0', 'g1')]
  adde.write_image_list(adde.images_file(str(user), 'test'), paths)
  labels = np.array([_labels12(color=0), _labels12(color=1), _labels12(color=2)])
  adde.write_labels(adde.labels_file(str(user), 'test'), labels)
  adde.write_adde_queries(str(user), adde.make_adde_queries(labels, num_references=1))
  test = ensure_adde_test(table, split, str(tmp_path / 'state' / 'split.csv'), adde_dir=str(user))
  # The user's labels (not the dataset's) judge the hits: color only, everything else missing.
  assert test.directory == str(user) and test.labels.tolist() == labels.tolist()
  assert test.queries.changes == ({'color': 1}, {'color': 2})
  assert not (tmp_path / 'state').exists()
