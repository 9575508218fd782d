"""Query latency of fashion search against gallery size: exact (numpy) vs FAISS (flat, exact).

  python benchmarks/bench_search.py                       # 10k and 100k galleries
  python benchmarks/bench_search.py --sizes=10000,100000,1000000 --queries=20

Galleries are random unit signatures of the paper's shape (6 signatures x 256 = 1536 dims),
float32. Prints, per size and backend: index build time, the median latency of single queries
(Q = 1, as a shopper searches), the per-query time of a batch (as evaluation searches), whether
FAISS returned exactly the exact top-k, and the peak memory of the process.
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from tf_partfash.retrieval import Searcher


def unit_signatures(n: int, v: int, d: int, seed: int) -> np.ndarray:
  """(n, v, d) random unit vectors, generated in slices so the peak stays near the result size."""
  rng = np.random.default_rng(seed)
  out = np.empty((n, v, d), np.float32)
  for start in range(0, n, 50_000):
    block = rng.standard_normal((min(50_000, n - start), v, d), dtype=np.float32)
    out[start:start + len(block)] = block / np.linalg.norm(block, axis=-1, keepdims=True)
  return out


def measure(searcher: Searcher, queries: np.ndarray, k: int, batch: int) -> dict:
  searcher.search(queries[:1], k)  # warm-up
  single, found = [], []
  for q in queries:
    start = time.perf_counter()
    idx, _ = searcher.search(q[None], k)
    single.append(time.perf_counter() - start)
    found.append(idx[0])
  batched = queries[:batch]
  start = time.perf_counter()
  searcher.search(batched, k)
  per_query = (time.perf_counter() - start) / len(batched)
  return {'single_ms': 1e3 * float(np.median(single)), 'batch_ms': 1e3 * per_query,
          'found': np.stack(found)}


def peak_gb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # Linux: KiB


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--sizes', default='10000,100000', help='Gallery sizes, comma-separated.')
  parser.add_argument('--signatures', type=int, default=6, help='V = S + 1 signatures.')
  parser.add_argument('--dims', type=int, default=256, help='D, size of each signature.')
  parser.add_argument('--queries', type=int, default=50, help='Single queries timed per size.')
  parser.add_argument('--batch', type=int, default=64, help='Queries in the batched search.')
  parser.add_argument('--k', type=int, default=10)
  parser.add_argument('--backends', default='exact,faiss')
  args = parser.parse_args()
  v, d = args.signatures, args.dims
  print(f'{v} x {d} = {v * d} dims, float32, top-{args.k}, median of {args.queries} single '
        f'queries, batch of {args.batch}')
  print(f'{"gallery":>9} {"backend":<7} {"GB":>6} {"build s":>8} {"1 query ms":>11} '
        f'{"batched ms/q":>13} {"same top-k":>10} {"peak GB":>8}')
  queries = unit_signatures(max(args.queries, args.batch), v, d, seed=1)
  for n in (int(s) for s in args.sizes.split(',')):
    gallery = unit_signatures(n, v, d, seed=0)
    reference = None
    for backend in args.backends.split(','):
      start = time.perf_counter()
      searcher = Searcher(gallery, backend, 'squared')  # the distance both backends serve
      build = time.perf_counter() - start
      got = measure(searcher, queries[:args.queries], args.k, args.batch)
      del searcher  # frees FAISS's copy of the gallery before the next backend
      same = '-' if reference is None else f'{np.mean(got["found"] == reference):.4f}'
      reference = got['found'] if reference is None else reference
      print(f'{n:>9} {backend:<7} {gallery.nbytes / 1e9:>6.2f} {build:>8.2f} '
            f'{got["single_ms"]:>11.1f} {got["batch_ms"]:>13.2f} {same:>10} {peak_gb():>8.2f}',
            flush=True)
    del gallery


if __name__ == '__main__':
  main()
