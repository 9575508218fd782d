"""Concurrent searches answered together: one pass over the gallery for every query waiting.

Exact search of one query reads the whole gallery (64 MB at the demo's 21,000 images): it is
bound by memory bandwidth, not arithmetic, so 8 queries searched at once cost about what one
does. `BatchingSearcher` has a searcher's interface; threads calling `search` queue their queries,
and one worker thread searches all the queries waiting (Eq. 4, or Eq. 6 with per-query weights)
and hands each thread its rows. A query's results are its own whatever it is batched with (the
top k of a larger k, nearest first).
"""
from __future__ import annotations

import dataclasses
import queue
import threading
from concurrent.futures import Future

import numpy as np

from tf_partfash.search.retrieval import query_weights


@dataclasses.dataclass
class _Pending:
  queries: np.ndarray          # (Q, V, D)
  k: int
  weights: np.ndarray          # (Q, V)
  done: Future


class BatchingSearcher:
  """`retrieval.Searcher`'s interface over `inner`, batching the queries of concurrent callers
  (at most `max_queries` at a time)."""

  def __init__(self, inner, max_queries: int = 64):
    self.inner, self.max_queries = inner, max_queries
    self.backend, self.shape = inner.backend, inner.shape
    self._waiting: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
    threading.Thread(target=self._serve, name='batching-searcher', daemon=True).start()

  def __len__(self) -> int:
    return len(self.inner)

  def search(self, queries: np.ndarray, k: int,
             weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    queries = np.asarray(queries, np.float32)
    pending = _Pending(queries, k, query_weights(weights, len(queries), queries.shape[1]),
                       Future())
    self._waiting.put(pending)
    return pending.done.result()

  def _serve(self) -> None:
    while True:
      batch = [self._waiting.get()]
      count = len(batch[0].queries)
      while count < self.max_queries:
        try:
          batch.append(self._waiting.get_nowait())
        except queue.Empty:
          break
        count += len(batch[-1].queries)
      self._answer(batch)

  def _answer(self, batch: list[_Pending]) -> None:
    try:
      k = max(p.k for p in batch)
      found, dist = self.inner.search(np.concatenate([p.queries for p in batch]), k,
                                      np.concatenate([p.weights for p in batch]))
    except Exception as e:  # every waiting caller gets the error, the worker goes on
      for p in batch:
        p.done.set_exception(e)
      return
    start = 0
    for p in batch:
      rows = slice(start, start + len(p.queries))
      p.done.set_result((found[rows, :p.k], dist[rows, :p.k]))
      start = rows.stop
