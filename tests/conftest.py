"""Shared fixtures: one tiny built-in synthetic dataset for the tests that train a model."""
import os

import pytest

# Fewer TF start-up lines in test logs; subprocesses inherit it.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


@pytest.fixture(scope='session')
def tiny_synthetic(tmp_path_factory):
  """72 small synthetic images in the Shopping100k layout (generated once per test session)."""
  from tf_partfash.data import synthetic
  out = str(tmp_path_factory.mktemp('tiny_synthetic'))
  synthetic.generate(out, 72, seed=0, width=127, height=184, workers=1)
  return out
