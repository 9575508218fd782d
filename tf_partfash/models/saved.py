"""A run's network: built from its configuration, exported when trained, loaded to search."""
from __future__ import annotations

import os

import keras

from tf_partfash.errors import UserError
from tf_partfash.methods import method
from tf_partfash.storage import atomic
from tf_partfash.storage.workdir import RUN_FILE, RunConfig, WEIGHTS_FILE, check_trained


def build_model(run: RunConfig) -> keras.Model:
  """The network of a run's method, built (weights created, not loaded)."""
  return method(run.method).build(run)


def export_model(workdir: str, model: keras.Model) -> str:
  file = os.path.join(workdir, WEIGHTS_FILE)
  with atomic.replacing(file, suffix='.weights.h5') as tmp:  # Keras goes by the extension
    model.save_weights(tmp)
  return file


def load_model(workdir: str, run: RunConfig) -> keras.Model:
  """The trained model of a workdir; weights from another architecture are an error naming both."""
  check_trained(workdir)
  file = os.path.join(workdir, WEIGHTS_FILE)
  model = build_model(run)
  try:
    model.load_weights(file)
  except ValueError as e:
    raise UserError(f'{file} does not fit the model described by {RUN_FILE} '
                    f'(method {run.method}): {e}') from e
  return model
