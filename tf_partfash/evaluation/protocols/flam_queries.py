"""FLAM's evaluation images and queries (Shin et al., paper 003: §4 "Datasets", "Evaluation
metrics", Table 1), drawn from labels only, so every run compared side by side gets the same.

- Attributes: FLAM's shape, color and pattern; shape is Shopping100k's `category` (Table 1).
- Candidates: the run's test images (its split's gallery and query images) labelled on all three
  (§4: "We only picked the images labeled with all three attributes densely").
- Classes: per attribute its 10 most frequent classes (§4: "The top-k classes in each attribute
  type, sorted by the number of images included"; Table 1: top-10), counted over the candidates
  (FLAM counts over its dataset; the candidates are what is evaluated here). Equally frequent
  classes are ranked by their index, lower first. A candidate stays when all three of its labels
  are among its attributes' top classes.
- Sample: at most `flam_images` of those (§4: "we randomly sampled ... 2K images from ...
  Shopping100k"), the first of one random order seeded by the query seed, so a smaller sample is
  part of a larger one; kept in table order. They are the gallery and the queries at once.
- Queries (FLAM does not say how the wanted class is chosen): every evaluation image once per
  attribute. The wanted class is drawn uniformly, seeded by the query seed, the attribute and the
  image's path, among the attribute's other top classes whose combination with the image's two
  other labels some evaluation image has. An image with no such class makes no query for that
  attribute and is counted as left out (`no_target`): it could never hit, whatever the method.
- Hit (§4 "Evaluation metrics"): a retrieved image with the wanted (shape, color, pattern). The
  query image is in the gallery but left out of its own results (`protocols.flam`): it differs
  on the changed attribute, so it could never hit, and would take the first place.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np
import pandas as pd

from tf_partfash.attributes import ATTRIBUTE_NAMES, MISSING, attribute
from tf_partfash.data.shopping100k import labels_of
from tf_partfash.errors import UserError
from tf_partfash.evaluation.queries import QuerySet, paths_digest
from tf_partfash.storage import atomic

# FLAM's attribute -> this dataset's label column (Table 1: Shopping100k's "category" is shape).
FLAM_ATTRIBUTES = {'shape': 'category', 'color': 'color', 'pattern': 'pattern'}
NAMES = tuple(FLAM_ATTRIBUTES)
COLUMNS = tuple(FLAM_ATTRIBUTES.values())
TOP_CLASSES = 10  # FLAM Table 1
HIT_RULE = ('the wanted (shape, color, pattern) combination, shape = category (FLAM §4 '
            '"Evaluation metrics")')
FORMAT_VERSION = 1
# Separate random streams of one seed: the image sample and the queries' wanted classes.
_SAMPLE_STREAM, _QUERY_STREAM = 0, 1


def display(name: str) -> str:
  """A FLAM attribute as reports name it: `shape (category)`, `color`."""
  column = FLAM_ATTRIBUTES[name]
  return name if column == name else f'{name} ({column})'


def top_classes(values: np.ndarray, top: int = TOP_CLASSES) -> np.ndarray:
  """The `top` most frequent classes of `values` (label indices, none missing), most frequent
  first; equally frequent classes by index, lower first (a stable sort), so the choice is one."""
  counts = np.bincount(np.asarray(values, np.int64))
  present = np.nonzero(counts)[0]
  return present[np.argsort(-counts[present], kind='stable')][:top]


def restrict_classes(labels: np.ndarray, top: int = TOP_CLASSES
                     ) -> tuple[np.ndarray, tuple[np.ndarray, ...], int]:
  """FLAM §4's candidates in the (N, 3) (category, color, pattern) labels of test images.

  Returns the positions of the images labelled on all three whose every label is among its
  attribute's `top` classes, those classes per attribute (`top_classes`, counted over the images
  labelled on all three) and how many images are labelled on all three.
  """
  labels = np.asarray(labels, np.int64)
  labelled = np.nonzero((labels != MISSING).all(axis=1))[0]
  if not len(labelled):
    raise UserError(f'none of the {len(labels)} test images is labelled on all of '
                    f'{", ".join(map(display, NAMES))}: FLAM\'s protocol (§4) evaluates on such '
                    'images only')
  classes = tuple(top_classes(labels[labelled, a], top) for a in range(labels.shape[1]))
  inside = np.all([np.isin(labels[labelled, a], classes[a]) for a in range(labels.shape[1])],
                  axis=0)
  return labelled[inside], classes, len(labelled)


def sample_images(count: int, limit: int, seed: int) -> np.ndarray:
  """Positions of at most `limit` of `count` images: the first of one seeded random order, in
  increasing order."""
  order = np.random.default_rng([seed, _SAMPLE_STREAM]).permutation(count)
  return np.sort(order[:limit])


def check_classes(labels: np.ndarray) -> None:
  """Every attribute needs two classes among the (M, 3) evaluation labels: a change asks for
  another class than the image's."""
  for a, name in enumerate(NAMES):
    found = np.unique(labels[:, a])
    if len(found) < 2:
      values = attribute(COLUMNS[a]).values
      raise UserError(f"FLAM protocol: {display(name)} has {len(found)} class"
                      f"{'' if len(found) == 1 else 'es'} among the {len(labels)} evaluation "
                      f"images ({', '.join(values[v] for v in found) or 'none'}); changing it "
                      'needs at least 2')


def _path_key(path: str) -> int:
  return int(paths_digest([path])[:16], 16)  # a stable hash: str hashes are salted per process


def draw_wanted(labels: np.ndarray, classes: tuple[np.ndarray, ...], paths: np.ndarray,
                seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """Per FLAM attribute: the positions (into the (M, 3) `labels`) of the images that make a
  query, and each one's wanted class (module docstring: among the attribute's other `classes`
  whose combination some image of `labels` has, uniformly, seeded by `seed` and the path)."""
  existing = {tuple(row) for row in labels.tolist()}
  keys = [_path_key(str(p)) for p in paths]
  out = {}
  for a, name in enumerate(NAMES):
    options = sorted(int(v) for v in classes[a])  # the draw ignores the frequency order
    positions, wanted = [], []
    for i, row in enumerate(labels.tolist()):
      possible = [v for v in options
                  if v != row[a] and tuple(row[:a] + [v] + row[a + 1:]) in existing]
      if possible:
        rng = np.random.default_rng([seed, _QUERY_STREAM, a, keys[i]])
        positions.append(i)
        wanted.append(possible[rng.integers(len(possible))])
    out[name] = (np.asarray(positions, np.int64), np.asarray(wanted, np.int64))
  return out


@dataclasses.dataclass(frozen=True)
class FlamTest:
  """FLAM's evaluation images (gallery and queries at once) and queries for one split."""
  rows: np.ndarray                 # (M,) table rows of the evaluation images, in table order
  labels: np.ndarray               # (M, 3) their (category, color, pattern)
  classes: tuple[np.ndarray, ...]  # per attribute its top classes, most frequent first
  test_images: int                 # the split's gallery and query images
  labelled: int                    # of them, labelled on all three (the classes' counts)
  within_top: int                  # of those, all three labels among the top classes
  queries: dict[str, QuerySet]     # per FLAM attribute (`NAMES`)
  file: str                        # the queries, written for the record

  def record(self) -> dict[str, Any]:
    """What was drawn, for results.json."""
    return {'test_images': self.test_images, 'labelled_on_all_three': self.labelled,
            'within_top_classes': self.within_top, 'evaluation_images': len(self.rows),
            'queries': {n: len(q) for n, q in self.queries.items()},
            'left_out': {n: q.left_out for n, q in self.queries.items()},
            'attributes': dict(FLAM_ATTRIBUTES), 'hit_rule': HIT_RULE,
            'top_classes': {n: [attribute(c).values[v] for v in k]
                            for n, c, k in zip(NAMES, COLUMNS, self.classes)}}


def query_file(split_file: str, seed: int, limit: int) -> str:
  """`<split file stem>.queries_flam_seed<seed>_images<limit>.json`, beside the split."""
  return f'{os.path.splitext(split_file)[0]}.queries_flam_seed{seed}_images{limit}.json'


def make_flam_test(table: pd.DataFrame, split: pd.DataFrame, split_file: str, limit: int,
                   seed: int, top: int = TOP_CLASSES) -> FlamTest:
  """FLAM's evaluation images and queries of a label table and its aligned split; the queries
  are written beside the split (`query_file`) for the record and for paired comparisons."""
  test_rows = np.nonzero(split['subset'].isin(['gallery', 'query']).to_numpy())[0]
  columns = [ATTRIBUTE_NAMES.index(c) for c in COLUMNS]
  labels = labels_of(table)[test_rows][:, columns]
  kept, classes, labelled = restrict_classes(labels, top)
  chosen = kept[sample_images(len(kept), limit, seed)]
  rows, labels = test_rows[chosen], labels[chosen]
  check_classes(labels)
  paths = table['path'].to_numpy()[rows]
  queries = {}
  for a, (name, (positions, wanted)) in enumerate(draw_wanted(labels, classes, paths,
                                                              seed).items()):
    targets = labels[positions].copy()
    targets[:, a] = wanted
    queries[name] = QuerySet(name, rows[positions], tuple({COLUMNS[a]: int(v)} for v in wanted),
                             targets, COLUMNS, {'no_target': len(rows) - len(positions)})
  test = FlamTest(rows, labels, classes, len(test_rows), labelled, len(kept), queries,
                  query_file(split_file, seed, limit))
  _save(test, paths, seed, limit)
  return test


def _save(test: FlamTest, paths: np.ndarray, seed: int, limit: int) -> None:
  """The evaluation images and every query (image, change, wanted labels) as JSON; the same
  content each time (the draw is a function of the labels and the seed)."""
  path_of = dict(zip(test.rows.tolist(), paths.tolist()))
  blob = {'format_version': FORMAT_VERSION, 'protocol': 'flam', 'seed': seed,
          'flam_images': limit, **test.record(), 'images': paths.tolist(),
          'settings': {n: [{'path': path_of[r], 'changes': c, 'target': t.tolist()}
                           for r, c, t in zip(q.rows.tolist(), q.changes, q.targets)]
                       for n, q in test.queries.items()}}
  atomic.write_json(test.file, blob)  # replaced whole: several evaluations may write it at once
