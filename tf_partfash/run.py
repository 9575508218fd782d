"""A whole training run, as train.py starts it: data, both stages, export, test accuracy.

The test images' index (`TrainedRun.index`) is written by the same forward pass that scores the
test accuracy; the generic attribute representations (§4.6) are computed on first use by
evaluate.py or search.py (`TrainedRun.prototypes`). Both are cached in the workdir.
"""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Callable

import keras
import tensorflow as tf

from tf_partfash import atomic
from tf_partfash.attributes import ATTRIBUTE_NAMES, SPECIAL_ATTRIBUTES
from tf_partfash.config import INPUT_CACHES
from tf_partfash.distribution import make_strategy, strategy_role
from tf_partfash.inputs.pixel_cache import ensure_pixel_cache, pixel_cache_file
from tf_partfash.prepared import PreparedData, prepare_run_data
from tf_partfash.methods import method
from tf_partfash.models.alexnet import load_alexnet_weights
from tf_partfash.recognition import accuracy_table
from tf_partfash.trained_run import TrainedRun
from tf_partfash.training import Trainer
from tf_partfash.workdir import (LOCK_FILE, RunConfig, build_model, check_run_config,
                                 export_model, save_run_config)

def format_accuracy(table: dict[str, dict[str, float]]) -> str:
  lines = [f'{"attribute":<11} {"accuracy":>8} {"majority":>8} {"images":>7}']
  for name in ATTRIBUTE_NAMES + ('extract_parts',):
    if name in table:
      row = table[name]
      mark = '*' if name in SPECIAL_ATTRIBUTES else ' '
      lines.append(f'{name + mark:<11} {100 * row["accuracy"]:7.1f}% {100 * row["majority"]:7.1f}%'
                   f' {row["count"]:7d}')
  special = [table[n]['accuracy'] for n in SPECIAL_ATTRIBUTES if n in table]
  if special:
    lines.append(f'mean of the special attributes (*): {100 * sum(special) / len(special):.1f}%')
  return '\n'.join(lines)


def train_and_report(run: RunConfig, workdir: str, data: PreparedData | None = None,
                     workers: int = 1, skip_corrupt: bool = False, strategy_name: str = 'auto',
                     strategy: tf.distribute.Strategy | None = None, input_cache: str = 'none',
                     started: Callable[[], None] | None = None) -> dict | None:
  """Trains (or resumes) the run in `workdir`, exports the model, reports test accuracy.

  `run.data['alexnet_weights']`, when set, initialises conv1-conv5 from ImageNet weights (§6);
  a resumed run takes every weight from its checkpoint instead. One training at a time runs in a
  workdir (`train.lock`, held to the end): a second is refused and the first is left alone.
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
    if data is None:
      data = prepare_run_data(run.data, workdir, workers, skip_corrupt)
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
    index = TrainedRun(workdir, run, trainer.model, data).index('test')  # what evaluate.py reads
    train_rows, test_rows = data.rows('train'), index.rows
    table = accuracy_table(data.examples.labels[test_rows], index.probabilities,
                           data.examples.labels[train_rows], index.case_probabilities,
                           data.label_case[test_rows], data.label_case[train_rows])
    atomic.write_json(os.path.join(workdir, 'accuracy.json'), table)
  logging.info('test accuracy (%d images):\n%s', len(test_rows), format_accuracy(table))
  if data.skipped:
    logging.warning('%d unreadable image(s) were left out (--skip_corrupt_images), e.g. %s',
                    len(data.skipped), data.skipped[0])
  return table


def _trainer(run: RunConfig, workdir: str, data: PreparedData, strategy: tf.distribute.Strategy,
             input_cache: str = 'none') -> Trainer:
  """The run's trainer: the network built (ImageNet weights loaded when asked) and batches set;
  with `input_cache='pixels'`, the training images' pixels cached (built on first use)."""
  if input_cache not in INPUT_CACHES:
    raise ValueError(f'input_cache={input_cache!r}; valid values: {", ".join(INPUT_CACHES)}')
  train = data.examples.subset(data.rows('train'))
  pixels = None
  if input_cache == 'pixels':
    size = run.model.image_size
    pixels = ensure_pixel_cache(train.files, size,
                                pixel_cache_file(data.state_dir, train.files, size))
  keras.utils.set_random_seed(run.train.seed)

  def initial_model():
    model = build_model(run)
    if run.data.get('alexnet_weights'):
      load_alexnet_weights(model.backbone, run.data['alexnet_weights'])
    return model

  return Trainer(initial_model, run.model, run.train, train, workdir, strategy,
                 method(run.method), pixels)
