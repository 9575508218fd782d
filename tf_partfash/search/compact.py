"""A compact index for catalogue-scale search: short codes find candidates, exact re-ranking orders
them (paper Eq. 4-6 unchanged).

Each gallery item's concatenated signatures (V·D floats) are product-quantised by FAISS into
V·D / 8 sub-vectors of 4 bits (`IndexPQFastScan`: half a byte per 8 dimensions, 96 bytes for the
paper's 6 x 256; SIMD distance tables). A query's `CANDIDATES` nearest by inner product with
`w ⊙ q` (Eq. 6's weights, or ones) are then re-ranked by the configured distance on the stored
float32 signatures, read only for those rows, so the paper's Euclidean Eq. 4 is served as well as
the squared form. For unit signatures (what the networks output) the inner product orders the
gallery as the squared distance does; a manipulated query (a block replaced by a prototype) or
weights change only the probe, so one index serves every query.

The codes are kept in `compact_<name>.npz` in the workdir (`trained_run.TrainedRun.searcher`),
versioned and tied to the model and to the gallery vectors they code (`gallery_identity`): one of
another model or gallery is refused with the reason until it is rebuilt on request.
"""
from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np

from tf_partfash.config import check_distance
from tf_partfash.errors import UserError
from tf_partfash.search.retrieval import import_faiss, query_weights, rows_distances, top_k
from tf_partfash.storage import cache
from tf_partfash.storage.progress import ProgressLine

FORMAT_VERSION = 1
DIMS_PER_CODE = 8        # dimensions per 4-bit sub-quantiser
# Re-ranked exactly per query: on the demo's real signatures every kind of query (up to three
# changes, feedback weights) kept recall@20 1.0 over 100 queries at 2,000; at 1,000 three changes
# fell to 0.987 (`benchmarks/bench_search.py`, docs/benchmarks.md).
CANDIDATES = 2000
TRAINING_ROWS = 65536    # rows the quantiser is trained on (a fixed sample of larger galleries)
ADD_CHUNK = 65536        # rows coded at a time (bounded memory for a memory-mapped gallery)


def gallery_identity(model_id: str, paths: np.ndarray, vectors: np.ndarray,
                     stamps: np.ndarray | None = None) -> str:
  """What a compact index codes: the model, the images (their paths, and their size and time for
  a folder) and the vectors' shape and a sample of their values (every row would cost seconds to
  hash at a million images; the sample tells one method's or encoder's vectors from another's)."""
  sample = np.ascontiguousarray(vectors[::max(1, len(vectors) // 1024)], np.float32)
  parts = [model_id.encode(), '\n'.join(map(str, paths)).encode(),
           repr(vectors.shape).encode(), sample.tobytes()]
  if stamps is not None:
    parts.append(np.ascontiguousarray(stamps).tobytes())
  return cache.digest(b'\0'.join(parts))


@dataclasses.dataclass
class CompactIndex:
  """The FAISS codes of a gallery and what they were built from."""
  index: object            # faiss.IndexPQFastScan
  model_id: str
  identity: str            # `gallery_identity` of the coded vectors
  shape: tuple[int, int, int]

  @classmethod
  def build(cls, vectors: np.ndarray, model_id: str, identity: str,
            progress: bool = True) -> CompactIndex:
    """Codes (N, V, D) `vectors` (an array or a memory map), trained on up to `TRAINING_ROWS`."""
    faiss = import_faiss()
    n, v, d = vectors.shape
    if (v * d) % DIMS_PER_CODE:
      raise UserError(f'a compact index codes {DIMS_PER_CODE} dimensions at a time; the gallery '
                      f'has {v} x {d} = {v * d}')
    started = time.monotonic()
    index = faiss.IndexPQFastScan(v * d, v * d // DIMS_PER_CODE, 4, faiss.METRIC_INNER_PRODUCT)
    sample = np.sort(np.random.default_rng(0).permutation(n)[:TRAINING_ROWS])
    train = np.ascontiguousarray(vectors[sample], np.float32).reshape(len(sample), -1)
    # A 4-bit quantiser has 16 centroids to place: a tiny gallery is repeated to have as many
    # points (its search re-ranks the whole gallery anyway).
    index.train(np.resize(train, (max(len(train), 16), train.shape[1])))
    line = ProgressLine(n, cache.PROGRESS_EVERY_SECS, unit='image') if progress else None
    for start in range(0, n, ADD_CHUNK):
      block = np.ascontiguousarray(vectors[start:start + ADD_CHUNK], np.float32)
      index.add(block.reshape(len(block), -1))
      if line:
        line.update(min(n, start + ADD_CHUNK), 'compact index')
    if progress:
      logging.info('compact index of %d images built in %.1f s', n, time.monotonic() - started)
    return cls(index, model_id, identity, (n, v, d))

  def save(self, file: str) -> None:
    faiss = import_faiss()
    cache.save_npz(file, {'format_version': np.int64(cache.FORMAT_VERSION),
                          'compact_version': np.int64(FORMAT_VERSION),
                          'model_id': np.str_(self.model_id), 'identity': np.str_(self.identity),
                          'shape': np.array(self.shape, np.int64),
                          'codes': faiss.serialize_index(self.index)})

  @classmethod
  def load(cls, file: str, expected_model_id: str, expected_identity: str) -> CompactIndex:
    """The index in `file`; one of another version, model or gallery is an error saying so."""
    faiss = import_faiss()
    stored = cache.load_npz(file)
    cache.check_header(file, stored, expected_model_id)
    if int(stored.get('compact_version', -1)) != FORMAT_VERSION:
      raise UserError(f'{file}: compact index version {int(stored.get("compact_version", -1))}, '
                      f'this tf_partfash reads version {FORMAT_VERSION}; rebuild it with '
                      '--rebuild_compact_index')
    if str(stored['identity']) != expected_identity:
      shape = tuple(stored['shape'].tolist())
      raise UserError(f'{file} codes another gallery ({shape} vectors, identity '
                      f'{stored["identity"]}), not this one ({expected_identity}); rebuild it '
                      'with --rebuild_compact_index')
    return cls(faiss.deserialize_index(stored['codes']), str(stored['model_id']),
               str(stored['identity']), tuple(int(x) for x in stored['shape']))


class CompactSearcher:
  """`retrieval.Searcher`'s interface over a `CompactIndex`: candidates from the codes, then the
  exact distance (Eq. 4, or Eq. 6 with weights) on `vectors[candidates]`."""
  backend = 'compact'

  def __init__(self, compact: CompactIndex, vectors: np.ndarray, distance: str = 'euclidean',
               candidates: int = CANDIDATES):
    check_distance(distance)
    if tuple(vectors.shape) != compact.shape:
      raise ValueError(f'the compact index codes {compact.shape} vectors, the gallery has '
                       f'{tuple(vectors.shape)}')
    self.compact, self.vectors, self.distance = compact, vectors, distance
    self.candidates, self.shape = candidates, compact.shape

  def __len__(self) -> int:
    return self.shape[0]

  def search(self, queries: np.ndarray, k: int,
             weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`(indices (Q, k), distances (Q, k))`, nearest first; k above the gallery size returns all,
    as exact search does (the candidates are then the whole gallery)."""
    queries = np.asarray(queries, np.float32)
    if queries.ndim != 3 or queries.shape[1:] != self.shape[1:]:
      raise ValueError(f'queries of shape {queries.shape}; the gallery has signatures '
                       f'{self.shape[1:]}')
    if k < 1:
      raise ValueError(f'k={k}; k must be at least 1')
    n = len(self)
    k = min(k, n)
    w = query_weights(weights, queries.shape[0], queries.shape[1])
    wanted = min(n, max(self.candidates, k))
    if wanted == n:  # the whole gallery: no need for the codes
      candidates = np.broadcast_to(np.arange(n), (len(queries), n))
    else:
      probe = (queries * w[:, :, None]).reshape(len(queries), -1)
      _, candidates = self.compact.index.search(np.ascontiguousarray(probe), wanted)
    found = np.empty((len(queries), k), np.int64)
    dists = np.empty((len(queries), k), np.float32)
    for q, rows in enumerate(candidates):
      rows = np.sort(rows[rows >= 0])  # index order: ties rank by gallery index, as exact search
      d = rows_distances(queries[q], np.asarray(self.vectors[rows], np.float32), w[q],
                         self.distance)
      order, dist = top_k(d[None], k)
      found[q], dists[q] = rows[order[0]], dist[0]
    return found, dists
