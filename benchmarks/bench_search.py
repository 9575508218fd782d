r"""Search at catalogue scale: exact search against the compact index, side by side in one run.

  python benchmarks/bench_search.py --sizes=100000,1000000 --output_json=search.json \
      [--workdir=runs/demo] [--scratch=DIR]

Per gallery and index, one record (`--output_json`: a list) with `gallery` (its size), `index`
(`exact`: numpy over float32 signatures in memory; `compact`: 4-bit PQ codes and 2,000
candidates re-ranked exactly, the signatures read from disk (`StoredRows`) at a million images and
held in memory below), `vectors` (`random` or `real`), `build_s`, `single_query_ms` (median over
`--queries` single queries, Q = 1, as a shopper searches, for each query kind: `direct`, 1, 2
and 3 manipulations, and Eq. 6 feedback weights), `recall_at_20` (per kind, against exact
search with the paper's Euclidean Eq. 4; `recall_at_20_interval` its 95 % bootstrap interval over
the queries) and `peak_gb` (the measuring process's peak resident
memory: each record is measured in its own process).

Random galleries are unit signatures of the paper's shape (6 x 256, float32) written to
`--scratch` in slices, and queries are other random unit signatures; a manipulation replaces a
special block by a random unit vector (a prototype's stand-in). Random unit vectors are the worst
case for approximate search (every neighbour is about as far as any other); `--workdir` adds the
run's real test-index signatures (gallery and query images), queried by `--queries` of its
images, with manipulations by the run's prototypes (`retrieval.manipulate`) and feedback weights
of Eq. 5 from three of its images.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

from tf_partfash.search.compact import CANDIDATES

KINDS = ('direct', 'manipulate1', 'manipulate2', 'manipulate3', 'feedback')
K = 20


def _unit(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
  x = rng.standard_normal(shape, dtype=np.float32)
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def write_random_gallery(file: str, n: int, v: int, d: int) -> None:
  """(n, v, d) random unit signatures in an .npy file, written in slices (bounded memory)."""
  if os.path.exists(file):
    return
  out = np.lib.format.open_memmap(file + '.tmp.npy', 'w+', np.float32, (n, v, d))
  rng = np.random.default_rng(0)
  for start in range(0, n, 50_000):
    out[start:start + 50_000] = _unit(rng, (min(50_000, n - start), v, d))
  out.flush()
  del out
  os.replace(file + '.tmp.npy', file)


def random_queries(count: int, v: int, d: int) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
  """Per kind, (queries (count, v, d), weights or None)."""
  rng = np.random.default_rng(1)
  direct = _unit(rng, (count, v, d))
  out = {'direct': (direct, None)}
  for changes in (1, 2, 3):
    q = direct.copy()
    for row in q:
      blocks = 1 + rng.permutation(v - 1)[:changes]
      row[blocks] = _unit(rng, (changes, d))
    out[f'manipulate{changes}'] = (q, None)
  picked = _unit(rng, (3, v, d))
  from tf_partfash.search.retrieval import personalization_weights
  out['feedback'] = (direct, personalization_weights(picked))
  return out


def real_queries(workdir: str, count: int) -> tuple[np.ndarray, dict]:
  """The run's test signatures, and per kind its queries (with the run's prototypes)."""
  from tf_partfash.attributes import SPECIAL_ATTRIBUTES
  from tf_partfash.search.gallery import GalleryIndex, Prototypes
  from tf_partfash.search.retrieval import manipulate, personalization_weights
  index = GalleryIndex.load(os.path.join(workdir, 'index_test.npz'))
  prototypes = Prototypes.load(os.path.join(workdir, 'prototypes.npz'))
  rng = np.random.default_rng(1)
  rows = rng.choice(len(index), count, replace=False)
  direct = index.signatures[rows]
  out = {'direct': (direct, None)}
  for changes in (1, 2, 3):
    wanted = []
    for _ in rows:
      names = rng.permutation(SPECIAL_ATTRIBUTES)[:changes]
      wanted.append({str(a): int(rng.choice(np.flatnonzero(prototypes.counts[a]))) for a in names})
    out[f'manipulate{changes}'] = (manipulate(direct, wanted, prototypes), None)
  picked = index.signatures[rng.choice(len(index), 3, replace=False)]
  out['feedback'] = (direct, personalization_weights(picked))
  return index.signatures, out


def _peak_gb() -> float:
  """This process's peak resident memory. Linux's `VmHWM` is of this process's own memory since
  it started its program; `ru_maxrss` also keeps what the parent held when it forked (exec
  carries it over), which put the parent's 6 GB into every record after the million's vectors
  were written."""
  try:
    with open('/proc/self/status') as f:
      for line in f:
        if line.startswith('VmHWM:'):
          return int(line.split()[1]) / 2 ** 20  # kB
  except OSError:
    pass
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # Linux: KiB


def measure(index: str, gallery, queries: dict, truth: dict | None, candidates: int) -> dict:
  """One record's figures: build, then each kind's single-query latency, top-20 and recall."""
  from tf_partfash.evaluation import intervals
  from tf_partfash.search.compact import CompactIndex, CompactSearcher
  from tf_partfash.search.retrieval import Searcher
  started = time.perf_counter()
  if index == 'exact':
    searcher = Searcher(np.asarray(gallery[:], np.float32), 'exact', 'euclidean')
  else:
    codes = CompactIndex.build(gallery, 'bench', 'bench', progress=False)
    searcher = CompactSearcher(codes, gallery, 'euclidean', candidates)
  record = {'build_s': time.perf_counter() - started, 'single_query_ms': {}, 'recall_at_20': {},
            'found': {}}
  for kind, (q, weights) in queries.items():
    searcher.search(q[:1], K, weights)  # warm-up
    times, found = [], []
    for row in q:
      start = time.perf_counter()
      idx, _ = searcher.search(row[None], K, weights)
      times.append(time.perf_counter() - start)
      found.append(idx[0])
    found = np.stack(found)
    record['single_query_ms'][kind] = 1e3 * float(np.median(times))
    record['found'][kind] = found.tolist()
    if truth is not None:
      per_query = np.array([len(set(a) & set(b)) / K
                            for a, b in zip(found, np.asarray(truth[kind]))])
      record['recall_at_20'][kind] = float(per_query.mean())
      record.setdefault('recall_at_20_interval', {})[kind] = list(intervals.interval(per_query))
  record['peak_gb'] = _peak_gb()
  return record


def _child(args: argparse.Namespace) -> None:
  from tf_partfash.storage.cache import StoredRows
  if args.vectors == 'real':
    gallery, queries = real_queries(args.workdir, args.queries)
  else:
    file = os.path.join(args.scratch, f'random_{args.gallery}x{args.signatures}x{args.dims}.npy')
    # On disk: from a million images on (6 GB of float32) they stay there.
    on_disk = args.index == 'compact' and args.gallery >= args.on_disk_from
    gallery = StoredRows.of(file) if on_disk else np.load(file, mmap_mode='r')
    queries = {k: (q[:args.queries], w)
               for k, (q, w) in random_queries(args.queries, args.signatures, args.dims).items()}
  truth = None
  if args.truth:
    with open(args.truth, encoding='utf-8') as f:
      truth = json.load(f)
  record = measure(args.index, gallery, queries, truth, args.candidates)
  json.dump(record, sys.stdout)


def _run_child(args: argparse.Namespace, index: str, vectors: str, size: int,
               truth: str | None) -> dict:
  command = [sys.executable, os.path.abspath(__file__), '--_child', f'--index={index}',
             f'--vectors={vectors}', f'--gallery={size}', f'--queries={args.queries}',
             f'--signatures={args.signatures}', f'--dims={args.dims}',
             f'--scratch={args.scratch}', f'--candidates={args.candidates}',
             f'--on_disk_from={args.on_disk_from}']
  if args.workdir:
    command.append(f'--workdir={args.workdir}')
  if truth:
    command.append(f'--truth={truth}')
  out = subprocess.run(command, capture_output=True, text=True)
  if out.returncode:
    raise RuntimeError(f'{" ".join(command)} failed:\n{out.stderr[-3000:]}')
  return json.loads(out.stdout)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--sizes', default='100000,1000000', help='random gallery sizes')
  parser.add_argument('--signatures', type=int, default=6, help='V = S + 1 signatures')
  parser.add_argument('--dims', type=int, default=256, help='D, size of each signature')
  parser.add_argument('--queries', type=int, default=100, help='single queries timed per kind')
  parser.add_argument('--candidates', type=int, default=CANDIDATES)
  parser.add_argument('--on_disk_from', type=int, default=1_000_000,
                      help='compact re-ranks from disk from this gallery size on')
  parser.add_argument('--workdir', help='a trained run whose test index gives real signatures')
  parser.add_argument('--scratch', default=os.path.join(tempfile.gettempdir(), 'bench_search'))
  parser.add_argument('--output_json')
  parser.add_argument('--_child', action='store_true', help=argparse.SUPPRESS)
  parser.add_argument('--index', help=argparse.SUPPRESS)
  parser.add_argument('--vectors', help=argparse.SUPPRESS)
  parser.add_argument('--gallery', type=int, help=argparse.SUPPRESS)
  parser.add_argument('--truth', help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args._child:
    _child(args)
    return
  os.makedirs(args.scratch, exist_ok=True)
  jobs = [('random', int(s)) for s in args.sizes.split(',') if s]
  if args.workdir:
    jobs.append(('real', None))
  records = []
  print(f'top-{K}, Euclidean Eq. 4, median of {args.queries} single queries per kind; compact: '
        f'{args.candidates} candidates re-ranked')
  print(f'{"vectors":<7} {"gallery":>8} {"index":<8} {"build s":>8} '
        + ' '.join(f'{k[:11]:>11}' for k in KINDS) + f' {"recall@20":>10} {"peak GB":>8}')
  for vectors, size in jobs:
    if vectors == 'random':
      write_random_gallery(os.path.join(args.scratch, f'random_{size}x{args.signatures}x'
                                        f'{args.dims}.npy'), size, args.signatures, args.dims)
    truth_file = os.path.join(args.scratch, f'truth_{vectors}_{size}.json')
    for index in ('exact', 'compact'):
      record = _run_child(args, index, vectors, size or 0, None if index == 'exact' else truth_file)
      if index == 'exact':
        with open(truth_file, 'w', encoding='utf-8') as f:
          json.dump(record['found'], f)
        record['recall_at_20'] = {k: 1.0 for k in record['found']}
        record['recall_at_20_interval'] = {k: [1.0, 1.0] for k in record['found']}
      del record['found']
      gallery = size if size else len(np.load(os.path.join(args.workdir, 'index_test.npz'))[
          'signatures'])
      record = {'gallery': gallery, 'index': index, 'vectors': vectors, **record}
      records.append(record)
      print(f'{vectors:<7} {gallery:>8} {index:<8} {record["build_s"]:>8.1f} '
            + ' '.join(f'{record["single_query_ms"][k]:>8.1f} ms' for k in KINDS)
            + f' {min(record["recall_at_20"].values()):>10.4f} {record["peak_gb"]:>8.2f}',
            flush=True)
  print('recall@20: the lowest over the kinds; ms: single-query latency')
  if args.output_json:
    with open(args.output_json, 'w', encoding='utf-8') as f:
      json.dump(records, f, indent=1)


if __name__ == '__main__':
  main()
