"""Retrieval protocols (paper §7 and ADDE): hits, top-k accuracy, NDCG, and scoring a trained run.

Paper protocol (§6, §7), queries from `tf_partfash.queries`: the gallery and query images of the
stored split. A query hits at k when one of its top-k gallery images has exactly the wanted labels
on the five special attributes. ADDE protocol (README "The ADDE split files"): the gallery is all
test images, the reference included; a hit needs the whole 151-dim label vector of the target,
missing blocks included. In label indices that is equality on all 12 columns, -1 (an all-zero
block) equal to -1. By construction the reference differs from its target in the manipulated
attribute, so it never counts as a hit although it is in the gallery.

NDCG@k as AMNet (Zhao et al., CVPR 2017, §5.1) defines it, on the paper protocol:
  NDCG@k = 1/Z sum_{j=1..k} (2^rel(j) - 1) / log(j + 1),
rel(j) = the fraction of the wanted labels that the j-th result has (the columns a hit is judged
on), Z = the same sum for the best order of the gallery, so a perfect ranking scores 1. The base
of the logarithm cancels in the ratio. On the ADDE protocol, ADDE's own definition
(`adde_ndcg`, its `src/eval.py`): the same sum over the 12 attributes, but Z is the sum of an
all-relevant list (rel = 1 at every rank), whether or not the gallery holds such images; with
NDCG_target (rel = the manipulated attribute matches) and NDCG_others (the fraction of the other
11 that match) beside it.

Every rate is reported with its 95 % bootstrap interval over queries (`tf_partfash.intervals`).
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from tf_partfash import intervals
from tf_partfash.attributes import ATTRIBUTE_NAMES
from tf_partfash.data.shopping100k import labels_of
from tf_partfash.encoders import Encoder
from tf_partfash.gallery import GalleryIndex
from tf_partfash.queries import AddeTest, QuerySet
from tf_partfash.retrieval import Searcher
from tf_partfash.trained_run import TrainedRun
from tf_partfash.workdir import variant_of

PAPER_MAX_K = 30   # Fig. 6: k = 1..30
ADDE_MAX_K = 50    # ADDE's Table 1 reports up to top-50
NDCG_K = 20        # AMNet's Table 2
TABLE2_K = 20      # the paper's Table 2


def has_labels(retrieved: np.ndarray, gallery_labels: np.ndarray,
            targets: np.ndarray) -> np.ndarray:
  """(Q, K) bool: whether the j-th result of query q has exactly the labels `targets[q]`.

  `retrieved` (Q, K) indexes `gallery_labels` (N, A); `targets` is (Q, A); -1 matches only -1.
  """
  retrieved, targets = np.asarray(retrieved), np.asarray(targets)
  return (np.asarray(gallery_labels)[retrieved] == targets[:, None, :]).all(axis=-1)


def first_hits(hit: np.ndarray) -> np.ndarray:
  """(Q,) 0-based rank of each query's first hit in a (Q, K) `has_labels` array, K when none."""
  hit = np.asarray(hit, bool)
  return np.where(hit.any(axis=1), hit.argmax(axis=1), hit.shape[1])


def top_k_accuracy(first_hit: np.ndarray, max_k: int) -> np.ndarray:
  """(max_k,) fraction of queries with a hit in the top k, for k = 1..max_k (Fig. 6)."""
  first_hit = np.asarray(first_hit)
  if not len(first_hit):
    return np.full(max_k, np.nan)
  return (first_hit[None, :] < np.arange(1, max_k + 1)[:, None]).mean(axis=1)


def _discounts(k: int) -> np.ndarray:
  return 1.0 / np.log2(np.arange(2, k + 2))


def _ideal_dcg(gallery_labels: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
  """(Q,) DCG of the best possible top-k of the gallery for each target (Z of AMNet's NDCG).

  The best order puts gallery images by decreasing number of matched labels, so only how many
  images match m labels matters. Repeated label vectors (many, on real data) are counted once.
  """
  num_columns = targets.shape[1]
  rows, counts = np.unique(gallery_labels, axis=0, return_counts=True)
  unique_targets, inverse = np.unique(targets, axis=0, return_inverse=True)
  levels = np.arange(num_columns, -1, -1)  # matched labels, best first
  gains = np.append(2.0 ** (levels / num_columns) - 1, 0.0)  # last: no image left
  positions = np.arange(1, k + 1)
  ideal = np.empty(len(unique_targets))
  chunk = max(1, 2 ** 22 // max(1, len(rows) * num_columns))
  for start in range(0, len(unique_targets), chunk):
    block = unique_targets[start:start + chunk]
    matched = (block[:, None, :] == rows[None, :, :]).sum(axis=-1)  # (c, R)
    # Images per (target, number of matched labels): one weighted bincount over the block.
    flat = (matched + (num_columns + 1) * np.arange(len(block))[:, None]).ravel()
    per_level = np.bincount(flat, np.broadcast_to(counts, matched.shape).ravel(),
                            len(block) * (num_columns + 1)).reshape(len(block), -1)[:, ::-1]
    cumulative = np.cumsum(per_level, axis=1)  # images with at least levels[i] matches
    level_of = (cumulative[:, None, :] < positions[None, :, None]).sum(axis=-1)  # (c, k)
    ideal[start:start + chunk] = (gains[level_of] * _discounts(k)).sum(axis=1)
  return ideal[np.asarray(inverse).reshape(-1)]


def ndcg(retrieved: np.ndarray, gallery_labels: np.ndarray, targets: np.ndarray,
         k: int = NDCG_K) -> np.ndarray:
  """(Q,) NDCG@k of AMNet §5.1 for the ranked `retrieved` (Q, >= k) indices into the gallery.

  rel(j) is the fraction of the A target labels the j-th result has. A gallery with fewer than k
  images ranks all of them. A query whose ideal DCG is 0 (no gallery image shares any wanted
  label) scores 0.
  """
  gallery_labels, targets = np.asarray(gallery_labels), np.asarray(targets)
  k = min(k, len(gallery_labels))
  retrieved = np.asarray(retrieved)[:, :k]
  if retrieved.shape[1] != k:
    raise ValueError(f'NDCG@{k} needs {k} results per query, got {retrieved.shape[1]}')
  relevance = (gallery_labels[retrieved] == targets[:, None, :]).mean(axis=-1)
  # Row sums, not a matrix product: the same numbers whatever the batch size.
  dcg = ((2.0 ** relevance - 1) * _discounts(k)).sum(axis=1)
  ideal = _ideal_dcg(gallery_labels, targets, k)
  return np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)


def adde_ndcg(retrieved: np.ndarray, gallery_labels: np.ndarray, targets: np.ndarray,
              manipulated: np.ndarray, k: int = NDCG_K) -> dict[str, np.ndarray]:
  """ADDE's NDCG@k, NDCG_target@k and NDCG_others@k per query (its `src/eval.py`, `utils.py`).

  `gallery_labels` (N, A) and `targets` (Q, A) are label indices (-1 = missing, which equals only
  -1, as ADDE compares one-hot blocks); `manipulated` (Q,) is the column of each query's changed
  attribute. Per result j: rel = matched columns / A, target = 1 if the manipulated column
  matches, others = matched other columns / (A - 1). Each is sum_j (2^rel(j) - 1) / log(j + 1)
  over the top k, divided by the same sum for rel = 1 everywhere (ADDE's idcg).
  """
  gallery_labels, targets = np.asarray(gallery_labels), np.asarray(targets)
  k = min(k, len(gallery_labels))
  retrieved = np.asarray(retrieved)[:, :k]
  if retrieved.shape[1] != k:
    raise ValueError(f'NDCG@{k} needs {k} results per query, got {retrieved.shape[1]}')
  equal = gallery_labels[retrieved] == targets[:, None, :]            # (Q, k, A)
  columns = equal.shape[-1]
  on_target = np.take_along_axis(equal, np.asarray(manipulated)[:, None, None], axis=-1)[..., 0]
  relevance = {'ndcg': equal.mean(axis=-1), 'ndcg_target': on_target.astype(np.float64),
               'ndcg_others': (equal.sum(axis=-1) - on_target) / (columns - 1)}
  discounts = _discounts(k)
  ideal = discounts.sum()  # (2^1 - 1) at every rank
  return {name: ((2.0 ** rel - 1) * discounts).sum(axis=1) / ideal
          for name, rel in relevance.items()}


@dataclasses.dataclass(frozen=True)
class Scores:
  """One setting's outcome per query, in the order of its `QuerySet`."""
  setting: str
  first_hit: np.ndarray    # (Q,) rank of the first hit, max_k when none in the top max_k
  ndcg: dict[str, np.ndarray]   # name (e.g. 'ndcg@20', ADDE's 'adde_ndcg@20') -> (Q,) per query
  manipulated: tuple[str, ...]  # (Q,) the changed attributes, '+'-joined ('' for direct)
  unexpressed: np.ndarray  # (Q,) a change the network cannot make was left out
  reachable: np.ndarray    # (Q,) some gallery image has the wanted labels (a hit is possible)
  max_k: int
  gallery_size: int
  left_out: dict[str, int] = dataclasses.field(default_factory=dict)  # `QuerySet.left_out`

  def __len__(self) -> int:
    return len(self.first_hit)

  def hits(self, k: int = TABLE2_K) -> np.ndarray:
    """(Q,) 1.0 where the query hits within the top k, else 0.0."""
    return (self.first_hit < k).astype(np.float64)

  def top_k(self) -> np.ndarray:
    """(max_k,) top-k accuracy for k = 1..max_k."""
    return top_k_accuracy(self.first_hit, self.max_k)

  def top_k_interval(self) -> tuple[np.ndarray, np.ndarray]:
    """(max_k,) low and high 95 % bootstrap bounds of the top-k curve."""
    curve = self.first_hit[:, None] < np.arange(1, self.max_k + 1)[None, :]
    return intervals.interval(curve.astype(np.float64).reshape(len(self), self.max_k))

  def per_attribute(self, k: int = TABLE2_K) -> dict[str, tuple[float, int, tuple[float, float]]]:
    """Top-k accuracy, query count and its 95 % interval per manipulated attribute (Table 2)."""
    out = {}
    names = np.asarray(self.manipulated)
    for name in sorted(set(self.manipulated) - {''}):
      chosen = self.hits(k)[names == name]
      out[name] = (float(chosen.mean()), len(chosen), intervals.interval(chosen))
    return out


def score_queries(searcher: Searcher, features: GalleryIndex, queries: QuerySet,
                  gallery_labels: np.ndarray, encoder: Encoder, max_k: int,
                  ndcg_definition: str = 'amnet', chunk: int = 256) -> Scores:
  """Searches the gallery for every query of `queries` and judges the results.

  `features` are the query images' own (their index rows, in the order of `queries`); `encoder`
  is the method's (`encoders`), whose gallery vectors `searcher` holds: it applies each query's
  changes, leaving out those the method cannot make. `gallery_labels` (N, A) are the gallery's
  labels on `queries.attributes`, in the searcher's gallery order. `ndcg_definition`: 'amnet'
  (`ndcg`) or 'adde' (`adde_ndcg`, queries of one changed attribute each).
  """
  if len(features) != len(queries):
    raise ValueError(f'{len(features)} query feature rows for {len(queries)} queries')
  if ndcg_definition not in ('amnet', 'adde'):
    raise ValueError(f'ndcg_definition={ndcg_definition!r}; valid: amnet, adde')
  gallery_labels = np.asarray(gallery_labels)
  depth = min(max(max_k, NDCG_K), len(gallery_labels))
  in_gallery = set(map(tuple, gallery_labels.tolist()))
  reachable = np.array([tuple(t) in in_gallery for t in queries.targets.tolist()], bool)
  first, gains, unexpressed = [], [], np.zeros(len(queries), bool)
  for start in range(0, len(queries), chunk):
    stop = min(start + chunk, len(queries))
    changes, unexpressed[start:stop] = encoder.expressible(queries.changes[start:stop])
    block = encoder.queries(features.take(np.arange(start, stop)), changes)
    retrieved, _ = searcher.search(block, depth)
    targets = queries.targets[start:stop]
    hit = first_hits(has_labels(retrieved[:, :max_k], gallery_labels, targets))
    first.append(np.where(hit < retrieved[:, :max_k].shape[1], hit, max_k))
    if ndcg_definition == 'amnet':
      gains.append({f'ndcg@{NDCG_K}': ndcg(retrieved, gallery_labels, targets, NDCG_K)})
    else:
      column = [queries.attributes.index(next(iter(c))) for c in queries.changes[start:stop]]
      gains.append({f'adde_{name}@{NDCG_K}': value for name, value in adde_ndcg(
          retrieved, gallery_labels, targets, np.asarray(column), NDCG_K).items()})
  names = ([f'ndcg@{NDCG_K}'] if ndcg_definition == 'amnet' else
           [f'adde_{n}@{NDCG_K}' for n in ('ndcg', 'ndcg_target', 'ndcg_others')])
  manipulated = tuple('+'.join(sorted(c)) for c in queries.changes)
  return Scores(queries.setting,
                np.concatenate(first) if first else np.zeros(0, np.int64),
                {n: np.concatenate([g[n] for g in gains]) if gains else np.zeros(0)
                 for n in names}, manipulated, unexpressed, reachable, max_k,
                len(gallery_labels), dict(queries.left_out))


@dataclasses.dataclass(frozen=True)
class RunResult:
  """One trained run's scores on every setting of a protocol.

  `variant` identifies the run's configuration apart from its seed (`workdir.variant_of`): runs of
  one variant are seeds of one method and are reported together; None, a run of its own.
  """
  workdir: str
  method: str
  scores: dict[str, Scores]  # `feedback.FeedbackScores` under the feedback protocol
  seed: int = 0
  variant: str | None = None


def _positions(index_rows: np.ndarray, rows: np.ndarray, file: str) -> np.ndarray:
  """Where each dataset row's features are in an index; a row it lacks is an error."""
  lookup = np.full(max(int(np.max(index_rows, initial=-1)), int(np.max(rows, initial=-1))) + 1,
                   -1, np.int64)
  lookup[index_rows] = np.arange(len(index_rows))
  found = lookup[rows]
  if (found < 0).any():
    raise ValueError(f'{file} has no features for dataset row {int(rows[np.argmax(found < 0)])}; '
                     'delete it to compute the index again')
  return found


@dataclasses.dataclass(frozen=True)
class PaperGallery:
  """A run's test index laid out for the paper protocol: the gallery images' features and labels,
  in gallery order, and the features of any of the run's test images."""
  features: GalleryIndex  # the gallery images
  labels: np.ndarray      # (N, 12) their labels
  test: GalleryIndex      # the run's gallery and query images (index_test.npz)
  file: str

  def of(self, rows: np.ndarray) -> GalleryIndex:
    """The features of dataset `rows` (query images), in that order."""
    return self.test.take(_positions(self.test.rows, rows, self.file))

  @staticmethod
  def columns(queries: QuerySet) -> list[int]:
    """The label columns a hit is judged on (the queries' hit rule)."""
    return [ATTRIBUTE_NAMES.index(a) for a in queries.attributes]


def paper_gallery(run: TrainedRun) -> PaperGallery:
  test = run.index('test')
  file = f'{run.workdir}/index_test.npz'
  rows = run.data.rows('gallery')
  return PaperGallery(test.take(_positions(test.rows, rows, file)),
                      labels_of(run.data.table)[rows], test, file)


def evaluate_paper(run: TrainedRun, queries: Mapping[str, QuerySet], distance: str = 'euclidean',
                   backend: str = 'exact') -> RunResult:
  """Scores a trained run on the paper protocol's stored queries (§7, Fig. 6, Table 2); a hit is
  judged on the queries' `attributes` (their hit rule)."""
  gallery = paper_gallery(run)
  encoder = run.encoder()
  searcher = run.searcher('paper_gallery', gallery.features, encoder.gallery(gallery.features),
                          backend, distance)
  scores = {name: score_queries(searcher, gallery.of(q.rows), q,
                                gallery.labels[:, gallery.columns(q)], encoder, PAPER_MAX_K)
            for name, q in queries.items()}
  return result_of(run, scores)


def evaluate_adde(run: TrainedRun, test: AddeTest, distance: str = 'euclidean',
                  backend: str = 'exact') -> RunResult:
  """Scores a trained run on ADDE's queries: gallery = all test images, exact 151-dim hits."""
  own_split = np.array_equal(np.sort(test.rows), run.data.rows('gallery', 'query'))
  name = 'test' if own_split else 'adde'
  index = run.index(name, rows=None if own_split else test.rows)
  encoder = run.encoder()
  test_index = index.take(_positions(index.rows, test.rows, f'{run.workdir}/index_{name}.npz'))
  searcher = run.searcher(f'adde_{name}', test_index, encoder.gallery(test_index), backend,
                          distance)
  scores = score_queries(searcher, test_index.take(test.queries.rows), test.queries, test.labels,
                         encoder, ADDE_MAX_K, ndcg_definition='adde')
  return result_of(run, {'adde': scores})


def result_of(run: TrainedRun, scores: dict) -> RunResult:
  """A run's scores per setting, with its method, seed and variant."""
  return RunResult(run.workdir, run.config.method, scores, run.config.train.seed,
                   variant_of(run.config))
