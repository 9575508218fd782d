"""A whole training run, as train.py starts it: data, both stages, export.

train.py then reports the test accuracy (`evaluation.accuracy`), whose forward pass also writes
the test images' index that evaluate.py and search.py read; the generic attribute representations
(§4.6) are computed on first use (`TrainedRun.prototypes`). Both are cached in the workdir.
"""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Callable

import keras
import tensorflow as tf

from tf_partfash.config import INPUT_CACHES
from tf_partfash.errors import UserError
from tf_partfash.inputs.pixel_cache import ensure_pixel_cache, pixel_cache_file
from tf_partfash.inputs.prepared import PreparedData, prepare
from tf_partfash.methods import method
from tf_partfash.models.alexnet import load_alexnet_weights
from tf_partfash.models.saved import build_model, export_model
from tf_partfash.storage import atomic
from tf_partfash.storage.workdir import (LOCK_FILE, RunConfig, check_imagenet_weights,
                                         check_run_config, save_run_config)
from tf_partfash.training.distribution import make_strategy, strategy_role
from tf_partfash.training.trainer import Trainer


def train_run(run: RunConfig, workdir: str, data: PreparedData | None = None, workers: int = 1,
              skip_corrupt: bool = False, strategy_name: str = 'auto',
              strategy: tf.distribute.Strategy | None = None, input_cache: str = 'none',
              started: Callable[[], None] | None = None
              ) -> tuple[keras.Model, PreparedData] | None:
  """Trains (or resumes) the run in `workdir` and exports the model; returns it with its data.

  `run.data.alexnet_weights`, when set, initialises conv1-conv5 from ImageNet weights (§6); a
  resumed run takes every weight from its checkpoint instead. A new run of the paper's LRN
  backbone must say which weights it starts from (`check_imagenet_weights`). One training at a time runs in a
  workdir (`train.lock`, held to the export): a second is refused and the first is left alone.
  run.json is written, and `started` called (train.py writes flags.txt), only once the run has
  started: its configuration fits the workdir, the data is ready, the network is built with its
  initial weights and the batches fit, so a start that fails records nothing.

  Under a multi-worker strategy only the chief holds the lock and writes the workdir; another
  worker trains its share, checks the run's configuration against the chief's, and returns None.
  """
  strategy = strategy or make_strategy(strategy_name)  # first: a multi-worker one must be
  chief, _ = strategy_role(strategy)
  os.makedirs(workdir, exist_ok=True)
  lock = (atomic.exclusive(os.path.join(workdir, LOCK_FILE),
                           f'{workdir} is in use by another training', wait=False)
          if chief else contextlib.nullcontext())
  with lock:
    check_run_config(workdir, run)  # before the slow steps: a wrong workdir fails at once
    check_imagenet_weights(workdir, run)
    if data is None:
      data = prepare(run.data, workdir, workers, skip_corrupt, run.model.test_case_from)
    trainer = _trainer(run, workdir, data, strategy, input_cache)
    if not chief:
      trainer.run()
      logging.info('this worker is done; the chief exports the model and scores it')
      return None
    save_run_config(workdir, run)
    if started:
      started()
    trainer.run()
    export_model(workdir, trainer.model)
  if data.skipped:
    logging.warning('%d unreadable image(s) were left out (--skip_corrupt_images), e.g. %s',
                    len(data.skipped), data.skipped[0])
  return trainer.model, data


def _trainer(run: RunConfig, workdir: str, data: PreparedData, strategy: tf.distribute.Strategy,
             input_cache: str = 'none') -> Trainer:
  """The run's trainer: the network built (ImageNet weights loaded when asked) and batches set;
  with `input_cache='pixels'`, the training images' pixels cached (built on first use)."""
  if input_cache not in INPUT_CACHES:
    raise UserError(f'input_cache={input_cache!r}; valid values: {", ".join(INPUT_CACHES)}')
  train = data.examples.subset(data.rows('train'))
  pixels = None
  if input_cache == 'pixels':
    size = run.model.image_size
    pixels = ensure_pixel_cache(train.files, size,
                                pixel_cache_file(data.state_dir, train.files, size))
  keras.utils.set_random_seed(run.train.seed)

  def initial_model():
    model = build_model(run)
    if run.data.imagenet_weights:
      load_alexnet_weights(model.backbone, run.data.imagenet_weights)
    return model

  return Trainer(initial_model, run.model, run.train, train, workdir, strategy,
                 method(run.method), pixels)
