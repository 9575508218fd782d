"""Scoring a trained run on a protocol's queries: each query searched, its hits and NDCG kept
per query (`Scores`), and a run's scores on every setting (`RunResult`).

A query hits at k when one of its top-k gallery images has exactly the wanted labels on the
columns of its hit rule: the special attributes on the paper protocol (§7), all 12 on ADDE's
(`protocols.adde`). Every rate is reported with its 95 % bootstrap interval over queries
(`evaluation.intervals`).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import numpy as np

from tf_partfash.attributes import ATTRIBUTE_NAMES
from tf_partfash.data.shopping100k import labels_of
from tf_partfash.errors import UserError
from tf_partfash.evaluation import intervals
from tf_partfash.evaluation.metrics import (NDCG_K, adde_ndcg, first_hits, has_labels, ndcg,
                                            top_k_accuracy)
from tf_partfash.evaluation.queries import QuerySet
from tf_partfash.search.encoders import Encoder
from tf_partfash.search.gallery import GalleryIndex
from tf_partfash.search.retrieval import Searcher
from tf_partfash.search.trained_run import TrainedRun
from tf_partfash.storage.workdir import base_workdir, index_file, variant_of

PAPER_MAX_K = 30   # Fig. 6: k = 1..30
TABLE2_K = 20      # the paper's Table 2


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
                  ndcg_definition: str = 'amnet', chunk: int = 256,
                  exclude: np.ndarray | None = None) -> Scores:
  """Searches the gallery for every query of `queries` and judges the results.

  `features` are the query images' own (their index rows, in the order of `queries`); `encoder`
  is the method's (`encoders`), whose gallery vectors `searcher` holds: it applies each query's
  changes, leaving out those the method cannot make. `gallery_labels` (N, A) are the gallery's
  labels on `queries.attributes`, in the searcher's gallery order. `ndcg_definition`: 'amnet'
  (`ndcg`) or 'adde' (`adde_ndcg`, queries of one changed attribute each). `exclude` (Q,):
  the gallery position of each query's own image, left out of its results (a gallery that holds
  the queries, as FLAM's protocol's does).
  """
  if len(features) != len(queries):
    raise ValueError(f'{len(features)} query feature rows for {len(queries)} queries')
  if ndcg_definition not in ('amnet', 'adde'):
    raise ValueError(f'ndcg_definition={ndcg_definition!r}; valid: amnet, adde')
  gallery_labels = np.asarray(gallery_labels)
  # With `exclude`, one more is searched and the query's own image dropped.
  depth = min(max(max_k, NDCG_K), len(gallery_labels) - (exclude is not None))
  in_gallery = set(map(tuple, gallery_labels.tolist()))
  reachable = np.array([tuple(t) in in_gallery for t in queries.targets.tolist()], bool)
  first, gains, unexpressed = [], [], np.zeros(len(queries), bool)
  for start in range(0, len(queries), chunk):
    stop = min(start + chunk, len(queries))
    changes, unexpressed[start:stop] = encoder.expressible(queries.changes[start:stop])
    block = encoder.queries(features.take(np.arange(start, stop)), changes)
    retrieved = _search(searcher, block, depth,
                        None if exclude is None else np.asarray(exclude)[start:stop])
    targets = queries.targets[start:stop]
    hit = first_hits(has_labels(retrieved[:, :max_k], gallery_labels, targets))
    first.append(np.where(hit < retrieved[:, :max_k].shape[1], hit, max_k))
    if ndcg_definition == 'amnet':
      gains.append({f'ndcg@{NDCG_K}': ndcg(retrieved, gallery_labels, targets, min(NDCG_K, depth))})
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


def _search(searcher: Searcher, block: np.ndarray, depth: int,
            exclude: np.ndarray | None) -> np.ndarray:
  """(Q, depth) gallery positions, nearest first, without each query's `exclude` position."""
  if exclude is None:
    return searcher.search(block, depth)[0]
  retrieved, _ = searcher.search(block, depth + 1)
  keep = retrieved != exclude[:, None]
  keep[keep.all(axis=1), -1] = False  # not among them: the deepest one goes
  return retrieved[keep].reshape(len(retrieved), -1)[:, :depth]


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
  # A feature method's (paper 003) x: the run it was taught on, that run's method, and x's width
  # (what the base run's search compares: its index's vectors concatenated). None for the others.
  features: dict | None = None


def positions(index_rows: np.ndarray, rows: np.ndarray, file: str) -> np.ndarray:
  """Where each dataset row's features are in an index; a row it lacks is an error."""
  lookup = np.full(max(int(np.max(index_rows, initial=-1)), int(np.max(rows, initial=-1))) + 1,
                   -1, np.int64)
  lookup[index_rows] = np.arange(len(index_rows))
  found = lookup[rows]
  if (found < 0).any():
    raise UserError(f'{file} has no features for dataset row {int(rows[np.argmax(found < 0)])}; '
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
    return self.test.take(positions(self.test.rows, rows, self.file))

  @staticmethod
  def columns(queries: QuerySet) -> list[int]:
    """The label columns a hit is judged on (the queries' hit rule)."""
    return [ATTRIBUTE_NAMES.index(a) for a in queries.attributes]


def paper_gallery(run: TrainedRun) -> PaperGallery:
  test = run.index('test')
  file = os.path.join(run.workdir, index_file('test'))
  rows = run.data.rows('gallery')
  return PaperGallery(test.take(positions(test.rows, rows, file)),
                      labels_of(run.data.table)[rows], test, file)


def open_runs(workdirs: Sequence[str], workers: int = 1, skip_corrupt: bool = False,
              rebuild_compact: bool = False) -> list[TrainedRun]:
  """Finished runs to score side by side, every one opened and checked before any is scored (a
  failure after the first would score nothing). They must share their data (dataset, split and
  sizes; the part extractor and ImageNet weights may differ), which is prepared once per part
  extractor."""
  real = [os.path.realpath(w) for w in workdirs]
  repeated = next((w for w, r in zip(workdirs, real) if real.count(r) > 1), None)
  if repeated:
    raise UserError(f'--workdirs lists {repeated} twice')
  options = dict(workers=workers, skip_corrupt=skip_corrupt, rebuild_compact=rebuild_compact)
  runs = [TrainedRun.open(w, **options) for w in workdirs]
  shared = lambda run: dataclasses.replace(run.config.data, part_extractor='jumps',
                                           alexnet_weights=None)
  for run in runs[1:]:
    if shared(run) != shared(runs[0]):
      raise UserError(f'{run.workdir} was trained on other data ({shared(run)}) than '
                      f'{runs[0].workdir} ({shared(runs[0])}); runs compared side by side share '
                      'their data')
  first: dict[str, TrainedRun] = {}
  opened = []
  for run in runs:
    owner = first.setdefault(run.config.data.part_extractor, run)
    opened.append(run if owner is run else
                  TrainedRun(run.workdir, run.config, data=owner.data, **options))
  return opened


def result_of(run: TrainedRun, scores: dict) -> RunResult:
  """A run's scores per setting, with its method, seed and variant."""
  source = run.config.features_from
  features = None if source is None else {
      'workdir': base_workdir(run.workdir, source), 'method': source.method,
      'size': source.feature_size,
      'x': "the base run's search vectors of an image concatenated (its S + 1 signatures; "
           'fc7 for Classic)'}
  return RunResult(run.workdir, run.config.method, scores, run.config.train.seed,
                   variant_of(run.config), features)
