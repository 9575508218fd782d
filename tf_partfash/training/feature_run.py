"""A whole run of a feature method (FLAM and its baselines, paper 003), as train.py starts it.

The features x are the base run's (`--features_from`), handed in by the caller
(`search.trained_run.TrainedRun.training_features`: the signatures its search compares,
concatenated). The method's `trainer` trains on them, with checkpoints every
`checkpoint_every_secs` and TensorBoard scalars (stage1: the embedding stage, stage2: the
manipulating stage), and the model is exported as any run's is.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from tf_partfash.methods import method, resolve
from tf_partfash.models.saved import build_model, export_model
from tf_partfash.storage import atomic
from tf_partfash.storage.workdir import (CHECKPOINTS_DIR, LOCK_FILE, TENSORBOARD_DIR, RunConfig,
                                         check_run_config, save_run_config)
from tf_partfash.training.concat_trainer import ConcatTrainer
from tf_partfash.training.flam_trainer import FlamTrainer

STAGES = {'embedding': 1, 'manipulating': 2}
SUMMARY_EVERY = 10  # steps between TensorBoard points


def train_feature_run(run: RunConfig, workdir: str, x: np.ndarray, labels: np.ndarray,
                      started: Callable[[], None] | None = None) -> keras.Model:
  """Trains (or resumes) the feature method's run in `workdir` on the base run's features `x`
  (N, F) of its training images and their `labels` (N, n) on `run.flam.attributes`, -1
  unlabelled, and exports the model. One training at a time per workdir; run.json is written,
  and `started` called, once the run has started."""
  if x.shape[1] != run.features_from.feature_size:
    raise ValueError(f'features are {x.shape[1]} wide, run.json says '
                     f'{run.features_from.feature_size}')
  os.makedirs(workdir, exist_ok=True)
  with atomic.exclusive(os.path.join(workdir, LOCK_FILE),
                        f'{workdir} is in use by another training', wait=False):
    check_run_config(workdir, run)
    keras.utils.set_random_seed(run.train.seed)  # the initial weights: a function of the seed
    model = build_model(run)
    save_run_config(workdir, run)
    if started:
      started()
    resolve(method(run.method).trainer)(model, run, workdir, x, labels)
    export_model(workdir, model)
  return model


def _train(trainer, run: RunConfig, workdir: str, x: np.ndarray, labels: np.ndarray) -> None:
  """Runs `trainer` from its last checkpoint, saving one every `checkpoint_every_secs` and at
  the end, with a progress line every `log_every_secs`."""
  manager = tf.train.CheckpointManager(trainer.checkpoint, os.path.join(workdir, CHECKPOINTS_DIR),
                                       max_to_keep=1)
  if manager.latest_checkpoint:
    trainer.checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    logging.info('resumed %s at step %d of %d', workdir, int(trainer.step.numpy()),
                 trainer.total_steps)
  writers: dict[str, tf.summary.SummaryWriter] = {}
  clock = {'saved': time.monotonic(), 'logged': time.monotonic()}

  def after_step(step: int, stage: str, logs: dict) -> None:
    if step % SUMMARY_EVERY == 0:
      if stage not in writers:
        writers[stage] = tf.summary.create_file_writer(
            os.path.join(workdir, TENSORBOARD_DIR, f'stage{STAGES[stage]}'))
      with writers[stage].as_default(step=step):
        for name, value in logs.items():
          tf.summary.scalar(name, value)
    now = time.monotonic()
    if now - clock['logged'] >= run.train.log_every_secs or step == trainer.total_steps:
      logging.info('%s stage, step %d/%d: %s', stage, step, trainer.total_steps,
                   ', '.join(f'{k} {v:.4f}' for k, v in logs.items()))
      clock['logged'] = now
    if now - clock['saved'] >= run.train.checkpoint_every_secs:
      manager.save(step)
      clock['saved'] = now

  trainer.run(x, labels, after_step)
  manager.save(int(trainer.step.numpy()))
  for writer in writers.values():
    writer.flush()


def train_flam(model, run: RunConfig, workdir: str, x: np.ndarray, labels: np.ndarray) -> None:
  """FLAM's two stages (`flam_trainer`)."""
  _train(FlamTrainer(model, run.flam, run.train.seed), run, workdir, x, labels)


def train_concat(model, run: RunConfig, workdir: str, x: np.ndarray, labels: np.ndarray) -> None:
  """Cls-Concat or Emb-Concat (`concat_trainer`)."""
  _train(ConcatTrainer(model, run.flam, run.train.seed), run, workdir, x, labels)
