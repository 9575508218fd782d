"""95 % bootstrap confidence intervals of rates over queries (top-k accuracy, NDCG), and of paired
differences between methods scored on the same queries.

A rate over Q queries is the mean of a per-query value (1/0 for a hit, an NDCG in [0, 1]). Its
percentile bootstrap interval resamples the Q queries with replacement `RESAMPLES` times and takes
the 2.5 and 97.5 percentiles of the resampled means. A resample is drawn as multinomial counts of
the queries, (B, Q) weights, so the means of any number of per-query statistics (a whole top-k
curve, a difference of two methods) are one matrix product with the same resamples; the paired
difference of two methods is the interval of the mean of their per-query differences, which
cancels the variation the two share (which queries are easy). The resamples depend on the seed and
Q only, so every figure of one evaluation is computed on the same resamples. Pure numpy.
"""
from __future__ import annotations

import functools

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95
# How the intervals were made, as results files record it.
DESCRIPTION = {'level': LEVEL, 'resamples': RESAMPLES,
               'method': 'percentile bootstrap over queries'}
SEED = 0


@functools.lru_cache(maxsize=8)
def resample_weights(num_queries: int, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
  """(resamples, num_queries) float64 counts: how often each query is in each resample."""
  if num_queries < 1:
    raise ValueError(f'no queries to resample (num_queries={num_queries})')
  rng = np.random.default_rng([seed, num_queries])
  counts = rng.multinomial(num_queries, np.full(num_queries, 1.0 / num_queries), size=resamples)
  counts = counts.astype(np.float64)
  counts.setflags(write=False)  # shared through the cache
  return counts


def resampled_means(values: np.ndarray, resamples: int = RESAMPLES,
                    seed: int = SEED) -> np.ndarray:
  """(resamples, ...) means of per-query `values` (Q, ...) over bootstrap resamples of the Q."""
  values = np.asarray(values, np.float64)
  weights = resample_weights(len(values), resamples, seed)
  flat = values.reshape(len(values), -1)
  return (weights @ flat / len(values)).reshape((resamples,) + values.shape[1:])


def interval(values: np.ndarray, level: float = LEVEL, resamples: int = RESAMPLES,
             seed: int = SEED) -> tuple[np.ndarray, np.ndarray] | tuple[float, float]:
  """The percentile bootstrap interval (low, high) of the mean of `values` over queries (axis 0);
  (nan, nan) for no queries. Floats for (Q,) values, arrays for (Q, K)."""
  values = np.asarray(values, np.float64)
  if not len(values):
    nan = np.full(values.shape[1:], np.nan)
    return (float('nan'), float('nan')) if values.ndim == 1 else (nan, nan)
  means = resampled_means(values, resamples, seed)
  tail = (1.0 - level) / 2
  low, high = np.quantile(means, [tail, 1.0 - tail], axis=0)
  return (float(low), float(high)) if values.ndim == 1 else (low, high)


def paired_difference(a: np.ndarray, b: np.ndarray, level: float = LEVEL,
                      resamples: int = RESAMPLES, seed: int = SEED
                      ) -> tuple[float, float, float]:
  """(mean of a - b, low, high): two methods' per-query values (Q,) on the same queries."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if a.shape != b.shape or a.ndim != 1:
    raise ValueError(f'paired values need the same queries: shapes {a.shape} and {b.shape}')
  if not len(a):
    return float('nan'), float('nan'), float('nan')
  low, high = interval(a - b, level, resamples, seed)
  return float(np.mean(a - b)), low, high
