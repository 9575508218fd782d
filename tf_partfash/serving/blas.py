"""One BLAS thread per search in a serving process, set before numpy loads its BLAS.

Concurrency comes from the requests (and `batching` puts concurrent searches in one pass);
several BLAS threads per request spin against each other on a small machine: 8 times slower at
8 clients on 2 cores (`benchmarks/bench_serve.py`). Only `os` is imported here, so serve.py can
call this before anything loads numpy.
"""
from __future__ import annotations

import os
from typing import MutableMapping

VARIABLES = ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS')


def one_blas_thread(environ: MutableMapping[str, str] = os.environ) -> None:
  """Sets every BLAS thread count of `environ` to 1, unless the user set it."""
  for variable in VARIABLES:
    environ.setdefault(variable, '1')
