r"""serve.py under load: concurrent clients on loopback, per query kind, at two gallery sizes.

  python benchmarks/bench_serve.py --workdir=runs/demo --sizes=0,100000 --clients=8 \
      --seconds=20 --output_json=serve.json [--scratch=DIR] [--variants=serve,blas_all]

Size 0 is the run's own test gallery searched exactly (the demo's 19,000 gallery and 2,000 query
images); a size N > 0 is that index tiled to N items (each copy's signatures nudged by noise and
renormalised, so copies do not tie) behind a compact index with its signatures left on disk,
as serve.py --backend=compact holds them. The tiled index and its codes are written by a process
of their own first, so the server process (also its own) holds only what serving holds.

Per size and kind, `--clients` threads send requests back to back for `--seconds` (at most
`--requests` in all): `row` (a gallery row, one attribute changed), `feedback` (a row, one change,
two liked rows: Eq. 5-6) and `upload` (a gallery JPEG uploaded as a photo: part extraction and a
forward pass; `--upload_clients` of them, as the network answers one photo at a time). Each record (`--output_json`, a list): requests, errors, requests/s, p50/p95/p99
latency in ms, and the server's resident and peak memory after the load (its /api/health).

`--variants` names server settings to measure side by side, each on its own server, the first
the reference (each kind's requests/s and p50 against it are printed): `serve` is serve.py's
(one BLAS thread), `blas_all` lets BLAS use every core (the batching worker is the one thread
that searches), `h11` runs uvicorn on its pure-Python HTTP parser and asyncio's loop even where
httptools and uvloop are installed.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import numpy as np

from tf_partfash.serving.blas import VARIABLES as BLAS_THREADS, one_blas_thread

KINDS = ('row', 'feedback', 'upload')
# Server settings --variants compares: uvicorn's arguments and the server's environment.
VARIANTS = {'serve': ({}, {}),
            'blas_all': ({}, {v: str(os.cpu_count()) for v in BLAS_THREADS}),
            'h11': ({'http': 'h11', 'loop': 'asyncio'}, {})}


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def prepare_tiled(workdir: str, size: int, scratch: str) -> None:
  """The run's test index tiled to `size` items, and its compact index, in `scratch`."""
  from tf_partfash.search.compact import CompactIndex, gallery_identity
  from tf_partfash.search.gallery import GalleryIndex
  from tf_partfash.search.trained_run import TrainedRun
  index_file, compact_file = _tiled_files(scratch, size)
  if os.path.exists(compact_file):
    return
  base = TrainedRun.open(workdir).index()
  take = np.resize(np.arange(len(base)), size)
  rng = np.random.default_rng(size)
  signatures = np.empty((size, *base.signatures.shape[1:]), np.float32)
  for start in range(0, size, 50_000):
    block = base.signatures[take[start:start + 50_000]]
    block = block + 0.02 * rng.standard_normal(block.shape, dtype=np.float32)
    signatures[start:start + 50_000] = block / np.linalg.norm(block, axis=-1, keepdims=True)
  tiled = GalleryIndex(signatures, {a: p[take] for a, p in base.probabilities.items()},
                       base.labels[take], base.paths[take], take, base.model_id, base.image_root)
  tiled.save(index_file)
  identity = gallery_identity(base.model_id, tiled.paths, signatures)
  CompactIndex.build(signatures, base.model_id, identity).save(compact_file)


def _tiled_files(scratch: str, size: int) -> tuple[str, str]:
  return (os.path.join(scratch, f'index_tiled_{size}.npz'),
          os.path.join(scratch, f'compact_tiled_{size}.npz'))


def serve(workdir: str, size: int, scratch: str, port: int, variant: str) -> None:
  """serve.py's service, on the run's gallery (size 0) or on a tiled one prepared before."""
  import uvicorn
  from tf_partfash.search.compact import CompactIndex, CompactSearcher, gallery_identity
  from tf_partfash.search.gallery import GalleryIndex
  from tf_partfash.search.session import Catalogue, open_catalogue
  from tf_partfash.search.trained_run import TrainedRun
  from tf_partfash.serving.app import create_app
  from tf_partfash.serving.service import SearchService
  run = TrainedRun.open(workdir, progress=False)
  catalogue = open_catalogue(run)
  if size:
    index_file, compact_file = _tiled_files(scratch, size)
    tiled = GalleryIndex.load(index_file, run.model_id, lazy_signatures=True)
    compact = CompactIndex.load(compact_file, run.model_id,
                                gallery_identity(run.model_id, tiled.paths, tiled.signatures))
    catalogue = Catalogue(run, tiled, f'tiled_{size}', catalogue.encoder,
                          CompactSearcher(compact, tiled.signatures), 'compact', 'euclidean', None)
  service = SearchService(catalogue)
  service.warm_up()
  uvicorn.run(create_app(service), host='127.0.0.1', port=port, log_level='warning',
              **VARIANTS[variant][0])


def _request(kind: str, rows: int, values: dict, images: list[bytes], rng: random.Random
             ) -> tuple[str, bytes, dict]:
  """(path, body, headers) of one request of `kind`."""
  attr = rng.choice(list(values))
  spec = {'set': {attr: rng.choice(values[attr])}, 'top_k': 10}
  if kind != 'upload':
    spec['query'] = rng.randrange(rows)
    if kind == 'feedback':
      spec['feedback'] = rng.sample(range(rows), 2)
    return '/api/search', json.dumps(spec).encode(), {'Content-Type': 'application/json'}
  boundary = uuid.uuid4().hex
  body = b''.join([
      f'--{boundary}\r\nContent-Disposition: form-data; name="request"\r\n\r\n'.encode(),
      json.dumps(spec).encode(),
      f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="q.jpg"\r\n'
      'Content-Type: image/jpeg\r\n\r\n'.encode(), rng.choice(images),
      f'\r\n--{boundary}--\r\n'.encode()])
  return '/api/search', body, {'Content-Type': f'multipart/form-data; boundary={boundary}'}


def load(port: int, kind: str, clients: int, seconds: float, limit: int, rows: int,
         values: dict, images: list[bytes]) -> dict:
  """`clients` threads, each with its own keep-alive connection, requests back to back."""
  latencies, errors, lock = [], [], threading.Lock()
  deadline = time.monotonic() + seconds

  def client(seed: int) -> None:
    rng, connection = random.Random(seed), http.client.HTTPConnection('127.0.0.1', port, timeout=60)
    while time.monotonic() < deadline:
      with lock:
        if len(latencies) + len(errors) >= limit:
          return
      path, body, headers = _request(kind, rows, values, images, rng)
      start = time.perf_counter()
      try:
        connection.request('POST', path, body, headers)
        response = connection.getresponse()
        response.read()
        ok = response.status == 200
      except (OSError, http.client.HTTPException):
        connection.close()
        connection, ok = http.client.HTTPConnection('127.0.0.1', port, timeout=60), False
      with lock:
        (latencies if ok else errors).append(time.perf_counter() - start)

  started = time.monotonic()
  threads = [threading.Thread(target=client, args=(seed,)) for seed in range(clients)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  elapsed = time.monotonic() - started
  ms = np.array(latencies) * 1000 if latencies else np.array([np.nan])
  return {'kind': kind, 'clients': clients, 'requests': len(latencies) + len(errors),
          'errors': len(errors), 'seconds': round(elapsed, 2),
          'requests_per_s': round(len(latencies) / elapsed, 2),
          **{f'p{q}_ms': round(float(np.percentile(ms, q)), 1) for q in (50, 95, 99)}}


def _get(port: int, path: str) -> dict:
  connection = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
  connection.request('GET', path)
  return json.loads(connection.getresponse().read())


def measure(args, size: int, variant: str) -> list[dict]:
  port = _free_port()
  env = dict(os.environ)
  one_blas_thread(env)  # the server's environment as serve.py sets it
  env.update(VARIANTS[variant][1])
  server = subprocess.Popen([sys.executable, __file__, '--serve', f'--workdir={args.workdir}',
                             f'--sizes={size}', f'--scratch={args.scratch}', f'--port={port}',
                             f'--variants={variant}'],
                            env=env)
  try:
    deadline = time.monotonic() + 600
    while True:
      try:
        health = _get(port, '/api/health')
        break
      except OSError:
        if server.poll() is not None or time.monotonic() > deadline:
          raise SystemExit(f'the server of size {size} did not start')
        time.sleep(0.5)
    vocabulary = _get(port, '/api/attributes')['special']
    from tf_partfash.search.trained_run import TrainedRun
    run = TrainedRun.open(args.workdir, progress=False)  # its cached prototypes and index
    prototyped = _prototyped(run)
    values = {a: [v for v in vocabulary[a] if v in prototyped[a]] for a in vocabulary}
    images = _sample_images(run)
    records = []
    for kind in args.kinds.split(','):
      clients = args.upload_clients if kind == 'upload' else args.clients
      record = load(port, kind, clients, args.seconds, args.requests,
                    health['gallery_size'], values, images)
      memory = _get(port, '/api/health')['memory']
      records.append({'gallery': health['gallery_size'], 'backend': health['backend'],
                      'variant': variant, **record, **memory})
      print(json.dumps(records[-1]), flush=True)
    return records
  finally:
    server.terminate()
    server.wait()


def _prototyped(run) -> dict[str, set[str]]:
  """Per special attribute, the values the training split has (a change to them is searchable)."""
  from tf_partfash.attributes import SPECIAL_ATTRIBUTES, attribute
  counts = run.prototypes().counts
  return {a: {attribute(a).values[i] for i in np.flatnonzero(counts[a])}
          for a in SPECIAL_ATTRIBUTES}


def _sample_images(run, count: int = 16) -> list[bytes]:
  index = run.index()
  out = []
  for row in np.linspace(0, len(index) - 1, count).astype(int):
    with open(index.file(int(row)), 'rb') as f:
      out.append(f.read())
  return out


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--workdir', required=True)
  parser.add_argument('--sizes', default='0,100000')
  parser.add_argument('--clients', type=int, default=8)
  parser.add_argument('--upload_clients', type=int, default=1,
                      help='clients sending photos (the network answers one photo at a time)')
  parser.add_argument('--seconds', type=float, default=20.0)
  parser.add_argument('--requests', type=int, default=5000)
  parser.add_argument('--scratch', default=os.path.join(tempfile.gettempdir(), 'bench_serve'))
  parser.add_argument('--kinds', default=','.join(KINDS), help='query kinds to load, in order')
  parser.add_argument('--variants', default='serve',
                      help=f'server settings to compare, comma-separated: {", ".join(VARIANTS)}')
  parser.add_argument('--output_json')
  parser.add_argument('--prepare', action='store_true', help=argparse.SUPPRESS)
  parser.add_argument('--serve', action='store_true', help=argparse.SUPPRESS)
  parser.add_argument('--port', type=int, help=argparse.SUPPRESS)
  args = parser.parse_args()
  sizes = [int(s) for s in args.sizes.split(',')]
  variants = args.variants.split(',')
  if set(args.kinds.split(',')) - set(KINDS):
    parser.error(f'--kinds={args.kinds}: valid kinds are {", ".join(KINDS)}')
  unknown = sorted(set(variants) - set(VARIANTS))
  if unknown:
    parser.error(f'--variants: unknown {unknown[0]!r}; valid: {", ".join(VARIANTS)}')
  os.makedirs(args.scratch, exist_ok=True)
  if args.prepare:
    return prepare_tiled(args.workdir, sizes[0], args.scratch)
  if args.serve:
    return serve(args.workdir, sizes[0], args.scratch, args.port, variants[0])
  records = []
  for size in sizes:
    if size:
      subprocess.run([sys.executable, __file__, '--prepare', f'--workdir={args.workdir}',
                      f'--sizes={size}', f'--scratch={args.scratch}'], check=True)
    measured = {variant: measure(args, size, variant) for variant in variants}
    records += [r for variant in variants for r in measured[variant]]
    for variant in variants[1:]:  # side by side with the first
      for first, other in zip(measured[variants[0]], measured[variant]):
        print(f'size {size} {first["kind"]}: {variants[0]}/{variant} requests/s '
              f'{first["requests_per_s"] / other["requests_per_s"]:.2f}x, p50 '
              f'{first["p50_ms"] / other["p50_ms"]:.2f}x', flush=True)
  if args.output_json:
    with open(args.output_json, 'w', encoding='utf-8') as f:
      json.dump(records, f, indent=1)


if __name__ == '__main__':
  main()
