"""The paper protocol's query sets (also the feedback and gallery-size protocols'): drawn once
per dataset and split, stored, read back.

Paper protocol (§7): queries are the split's query images with a label on every special attribute.
  direct       the query's own special labels are wanted (Fig. 6 a);
  manipulate1  one random special attribute gets another value (Fig. 6 b, Table 2);
  manipulate2  the same with two attributes ("maximum 2 attribute manipulations").
One rule for every setting (§7: "target images in the retrieval gallery are found (if there is
any)"): a query enters a setting only when some gallery image is a possible hit; the others are
counted, with the reason, in `QuerySet.left_out`. What a hit is, is `HIT_RULES[hit_attributes]`.
The draw depends on a seed and on each query's path only, and is stored beside the split
(`<split file stem>.queries_<hit attributes>_seed<seed>.json`), so every method is scored on the
same queries.

The ADDE protocol's queries are ADDE's files (`protocols.adde`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Sequence

import numpy as np
import pandas as pd

from tf_partfash.attributes import (ATTRIBUTE_NAMES, MISSING, SPECIAL_ATTRIBUTES, SPECIAL_COLUMNS,
                                    attribute)
from tf_partfash.data.shopping100k import labels_of
from tf_partfash.data.splits import evaluable_queries
from tf_partfash.errors import UserError
from tf_partfash.storage import atomic

PAPER_SETTINGS = ('direct', 'manipulate1', 'manipulate2')
FORMAT_VERSION = 2
# What a retrieved image must have to be a hit, by `hit_attributes`.
HIT_RULES = {
    'special': 'exactly the wanted labels on the five special attributes (§7: "exactly the same '
               'attributes as demanded")',
    'all': 'exactly the wanted special labels and the query\'s own labels on the seven general '
           'attributes, a missing label matching only a missing one (Fig. 1: "all original '
           'attributes of the query image remain unchanged")',
}
HIT_ATTRIBUTES = tuple(HIT_RULES)
# Why a query image is not in a setting (`QuerySet.left_out`).
LEFT_OUT_REASONS = {
    'unlabelled': 'no label on some special attribute (§7 scores only fully labelled queries)',
    'no_target': 'no gallery image can be a hit',
}


def hit_columns(hit_attributes: str) -> tuple[str, ...]:
  """The label columns a hit is judged on."""
  if hit_attributes not in HIT_RULES:
    raise UserError(f'hit_attributes={hit_attributes!r}; valid values: '
                    + ', '.join(HIT_ATTRIBUTES))
  return SPECIAL_ATTRIBUTES if hit_attributes == 'special' else ATTRIBUTE_NAMES


@dataclasses.dataclass(frozen=True)
class QuerySet:
  """The queries of one setting. `rows` index the images whose signatures are the queries (table
  rows under the paper protocol, test images under ADDE's); a hit needs `targets` on
  `attributes`."""
  setting: str
  rows: np.ndarray                     # (Q,) int64
  changes: tuple[dict[str, int], ...]  # per query: attribute -> wanted value index
  targets: np.ndarray                  # (Q, A) int64, -1 = missing
  attributes: tuple[str, ...]          # the A label columns of `targets`
  # Query images not in this setting: reason (`LEFT_OUT_REASONS`) -> count.
  left_out: dict[str, int] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    q = len(self.rows)
    if len(self.changes) != q or self.targets.shape != (q, len(self.attributes)):
      raise ValueError(f'{self.setting}: {q} rows, {len(self.changes)} changes, targets of shape '
                       f'{self.targets.shape}; expected ({q}, {len(self.attributes)})')

  def __len__(self) -> int:
    return len(self.rows)


def _path_seed(path: str) -> int:
  # hashlib, not hash(): Python salts str hashes per process.
  return int.from_bytes(hashlib.blake2b(path.encode('utf-8'), digest_size=8).digest(), 'big')


def feasible_changes(query: np.ndarray, gallery: np.ndarray, allowed: np.ndarray,
                     num_changes: int) -> np.ndarray:
  """(F, 2 n) unique rows `[attributes..., values...]`: every way to change `n` of the query's
  special labels into labels that some gallery image has exactly.

  `query` (5,) and `gallery` (N, 5) are complete special labels; `allowed[a, v]` says whether value
  v of special attribute a may be asked for. With `num_changes` 0: one empty row when some gallery
  image has the query's labels, else none.
  """
  differs = gallery != query
  if num_changes == 0:
    return np.zeros((int((differs.sum(axis=1) == 0).any()), 0), np.int64)
  candidates = gallery[differs.sum(axis=1) == num_changes]
  mask = candidates != query
  # Row-major nonzero: per candidate, its changed columns in increasing order, values alike.
  attrs = np.nonzero(mask)[1].reshape(-1, num_changes)
  values = candidates[mask].reshape(-1, num_changes)
  options = np.concatenate([attrs, values], axis=1)
  options = options[allowed[attrs, values].all(axis=1)]
  return np.unique(options, axis=0)


def _trained_values(train_labels: np.ndarray) -> np.ndarray:
  """(S, max values) bool: which value of each special attribute some training image has."""
  allowed = np.zeros((len(SPECIAL_ATTRIBUTES), max(attribute(n).num_values
                                                   for n in SPECIAL_ATTRIBUTES)), bool)
  train = train_labels[:, list(SPECIAL_COLUMNS)]
  for a in range(len(SPECIAL_ATTRIBUTES)):
    allowed[a, train[:, a][train[:, a] != MISSING]] = True
  return allowed


def make_paper_queries(table: pd.DataFrame, split: pd.DataFrame, seed: int = 0,
                       hit_attributes: str = 'special') -> dict[str, QuerySet]:
  """The three settings' queries (§7) for a label table and its aligned split.

  A query is kept in a setting only when some gallery image would be a hit (`HIT_RULES`): for
  `direct` an image with the query's own labels on the hit columns; for a manipulation, first the
  attribute(s) are drawn uniformly among those whose change leads to such an image, then the
  value(s) uniformly among those that do. Wanted values must occur in the training subset too: a
  method knows a value only from training (its prototype, §4.6); on Shopping100k every gallery
  value does.
  """
  columns = hit_columns(hit_attributes)
  special = [columns.index(a) for a in SPECIAL_ATTRIBUTES]
  general = [i for i in range(len(columns)) if i not in special]
  all_labels = labels_of(table)
  labels = all_labels[:, [ATTRIBUTE_NAMES.index(a) for a in columns]]
  subset = split['subset'].to_numpy()
  query_rows = evaluable_queries(split, table)
  unlabelled = int((subset == 'query').sum()) - len(query_rows)
  gallery = labels[subset == 'gallery']
  gallery = gallery[(gallery[:, special] != MISSING).all(axis=1)]
  # The gallery images a query can hit share its general labels (none under 'special').
  groups, inverse = np.unique(gallery[:, general], axis=0, return_inverse=True)
  order = np.argsort(inverse.reshape(-1), kind='stable')
  starts = np.searchsorted(inverse.reshape(-1)[order], np.arange(len(groups) + 1))
  by_general = {tuple(g.tolist()): gallery[order[starts[i]:starts[i + 1]]][:, special]
                for i, g in enumerate(groups)}
  allowed = _trained_values(all_labels[subset == 'train'])
  paths = table['path'].to_numpy()
  out = {}
  for n in (0, 1, 2):
    rows, changes, targets = [], [], []
    for row in query_rows:
      candidates = by_general.get(tuple(labels[row, general].tolist()))
      if candidates is None:
        continue
      options = feasible_changes(labels[row, special], candidates, allowed, n)
      if not len(options):
        continue
      target = labels[row].copy()
      change: dict[str, int] = {}
      if n:
        rng = np.random.default_rng([seed, n, _path_seed(paths[row])])
        choices = np.unique(options[:, :n], axis=0)
        picked = choices[rng.integers(len(choices))]
        values = options[(options[:, :n] == picked).all(axis=1), n:]
        wanted = values[rng.integers(len(values))]
        target[np.asarray(special)[picked]] = wanted
        change = {SPECIAL_ATTRIBUTES[a]: int(v) for a, v in zip(picked, wanted)}
      rows.append(row)
      changes.append(change)
      targets.append(target)
    name = 'direct' if n == 0 else f'manipulate{n}'
    out[name] = QuerySet(name, np.asarray(rows, np.int64), tuple(changes),
                         np.asarray(targets, np.int64).reshape(-1, len(columns)), columns,
                         {'unlabelled': unlabelled, 'no_target': len(query_rows) - len(rows)})
  return out


def paper_query_file(split_file: str, hit_attributes: str, seed: int) -> str:
  """`<split file stem>.queries_<hit attributes>_seed<seed>.json`, beside the split."""
  return f'{os.path.splitext(split_file)[0]}.queries_{hit_attributes}_seed{seed}.json'


def paths_digest(paths: Sequence[str]) -> str:
  return hashlib.blake2b('\n'.join(sorted(paths)).encode('utf-8'), digest_size=16).hexdigest()


def save_paper_queries(file: str, queries: dict[str, QuerySet], table: pd.DataFrame,
                       split: pd.DataFrame, seed: int, hit_attributes: str) -> None:
  """Writes the queries as JSON: per setting, each query's image path, changes and target labels,
  and how many query images were left out and why."""
  paths = table['path'].to_numpy()
  blob = {'format_version': FORMAT_VERSION, 'protocol': 'paper', 'seed': seed,
          'hit_attributes': hit_attributes, 'hit_rule': HIT_RULES[hit_attributes],
          'attributes': list(hit_columns(hit_attributes)),
          'gallery': {'images': int((split['subset'] == 'gallery').sum()),
                      'digest': paths_digest(paths[(split['subset'] == 'gallery').to_numpy()])},
          'left_out': {name: q.left_out for name, q in queries.items()},
          'settings': {name: [{'path': str(paths[r]), 'changes': c, 'target': t.tolist()}
                              for r, c, t in zip(q.rows, q.changes, q.targets)]
                       for name, q in queries.items()}}
  atomic.write_json(file, blob)  # replaced whole: several evaluations may start at once


def load_paper_queries(file: str, table: pd.DataFrame, split: pd.DataFrame,
                       hit_attributes: str = 'special') -> dict[str, QuerySet]:
  """Reads queries written by `save_paper_queries`, checked against the dataset and its split."""
  with open(file, encoding='utf-8') as f:
    blob = json.load(f)
  redo = f'; delete {file} to draw the queries again'
  if blob.get('format_version') != FORMAT_VERSION or blob.get('protocol') != 'paper':
    raise UserError(f'{file}: format {blob.get("format_version")!r} / protocol '
                    f'{blob.get("protocol")!r}, expected {FORMAT_VERSION} / paper{redo}')
  if blob.get('hit_attributes') != hit_attributes:
    raise UserError(f'{file}: drawn for hit_attributes={blob.get("hit_attributes")!r}, not '
                    f'{hit_attributes!r}{redo}')
  paths = table['path'].to_numpy()
  gallery = (split['subset'] == 'gallery').to_numpy()
  if blob['gallery']['digest'] != paths_digest(paths[gallery]):
    raise UserError(f'{file}: drawn for another gallery ({blob["gallery"]["images"]} images; '
                    f'the split has {int(gallery.sum())}){redo}')
  row_of = {p: i for i, p in enumerate(paths)}
  is_query = (split['subset'] == 'query').to_numpy()
  columns = hit_columns(hit_attributes)
  labels = labels_of(table)[:, [ATTRIBUTE_NAMES.index(a) for a in columns]]
  out = {}
  for name in PAPER_SETTINGS:
    rows, changes, targets = [], [], []
    for i, entry in enumerate(blob['settings'][name]):
      row = row_of.get(entry['path'])
      if row is None or not is_query[row]:
        raise UserError(f'{file}: {name} query {i}: {entry["path"]!r} is not a query image of '
                        f'the split{redo}')
      wanted = labels[row].copy()
      for attr, value in entry['changes'].items():
        wanted[columns.index(attribute(attr).name)] = value
      if wanted.tolist() != entry['target']:
        raise UserError(f'{file}: {name} query {i} ({entry["path"]}): target {entry["target"]} '
                        f'but the labels with its changes give {wanted.tolist()}{redo}')
      rows.append(row)
      changes.append({attribute(a).name: int(v) for a, v in entry['changes'].items()})
      targets.append(wanted)
    out[name] = QuerySet(name, np.asarray(rows, np.int64), tuple(changes),
                         np.asarray(targets, np.int64).reshape(-1, len(columns)), columns,
                         {k: int(v) for k, v in blob['left_out'][name].items()})
  return out


def ensure_paper_queries(split_file: str, table: pd.DataFrame, split: pd.DataFrame,
                         seed: int = 0, hit_attributes: str = 'special'
                         ) -> tuple[dict[str, QuerySet], str]:
  """The stored queries of this split, hit rule and seed, drawn and written on first use; and
  their file (beside `split_file`)."""
  file = paper_query_file(split_file, hit_attributes, seed)
  if not os.path.exists(file):
    save_paper_queries(file, make_paper_queries(table, split, seed, hit_attributes), table, split,
                       seed, hit_attributes)
  return load_paper_queries(file, table, split, hit_attributes), file
