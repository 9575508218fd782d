"""Bootstrap intervals over queries (tf_partfash.evaluation.intervals), with distributions worked out by hand."""
import numpy as np
import pytest

from tf_partfash.evaluation import intervals


def test_two_queries_have_the_exact_resampling_distribution():
  """Resampling [0, 1] twice with replacement gives means 0, 1/2, 1 with probabilities 1/4, 1/2,
  1/4: the 2.5 and 97.5 percentiles are 0 and 1, and about half the resamples have mean 1/2."""
  means = intervals.resampled_means(np.array([0.0, 1.0]))
  assert set(np.unique(means)) == {0.0, 0.5, 1.0}
  assert np.mean(means == 0.5) == pytest.approx(0.5, abs=0.04)
  assert intervals.interval(np.array([0.0, 1.0])) == (0.0, 1.0)


def test_interval_of_a_rate_is_near_the_normal_approximation():
  """400 hits of 1,000: standard error sqrt(0.4 0.6 / 1000) = 0.0155, so about 0.4 -+ 0.030."""
  values = np.r_[np.ones(400), np.zeros(600)]
  low, high = intervals.interval(values)
  assert low == pytest.approx(0.4 - 1.96 * 0.01549, abs=0.005)
  assert high == pytest.approx(0.4 + 1.96 * 0.01549, abs=0.005)
  assert intervals.interval(np.full(50, 0.25)) == (0.25, 0.25)
  assert all(np.isnan(intervals.interval(np.zeros(0))))


def test_curves_use_the_same_resamples_for_every_k():
  """(Q, K) values: column-wise intervals, each equal to the interval of that column alone."""
  rng = np.random.default_rng(0)
  curve = np.cumsum(rng.random((300, 5)) < 0.1, axis=1).clip(0, 1).astype(float)
  low, high = intervals.interval(curve)
  for k in range(5):
    assert (low[k], high[k]) == intervals.interval(curve[:, k])
  assert (np.diff(low) >= 0).all()  # a hit at k is a hit at k + 1 in every resample


def test_paired_difference_cancels_what_two_methods_share():
  """b hits on the easy queries a hits on, and on 30 more of 1,000: the paired interval of a - b
  only varies with those 30 queries, far narrower than either method's own interval."""
  a = np.r_[np.ones(500), np.zeros(500)]
  b = np.r_[np.ones(530), np.zeros(470)]
  diff, low, high = intervals.paired_difference(a, b)
  assert diff == pytest.approx(-0.03)
  # Mean of -1 on 30 of 1,000: sd sqrt(0.03 0.97 / 1000) = 0.0054.
  assert low == pytest.approx(-0.03 - 1.96 * 0.0054, abs=0.003)
  assert high == pytest.approx(-0.03 + 1.96 * 0.0054, abs=0.003)
  own_low, own_high = intervals.interval(a)
  assert high - low < 0.5 * (own_high - own_low)
  assert intervals.paired_difference(a, a) == (0.0, 0.0, 0.0)
  with pytest.raises(ValueError, match='same queries'):
    intervals.paired_difference(a, b[:10])
