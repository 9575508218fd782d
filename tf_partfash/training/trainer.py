"""Two-stage training (paper §6): attribute classification, then classification + part triplets.

For the proposed network stage 1 minimises L_attribute (Eq. 1-2) plus the "Extract Parts?" cross
entropy and stage 2 adds L_triplet (Eq. 3) over the S + 1 L2-normalised signatures, starting from
stage 1's weights; the baselines bring their own network, losses and batches (`methods.Method`).
One optimizer runs through both stages and its step counter is the whole training state: the
stage, epoch and batch of a resumed run follow from it, the sampler regenerates that epoch's
batches from (seed, epoch), and the run continues from the last checkpoint after any interruption.
A non-finite loss, or weights gone non-finite, stops training with an error naming the step, and
no checkpoint of those weights is written: the last one on disk is the last good one.

Under a multi-worker strategy every worker runs this loop on its share of each global batch;
all save at the same steps (one decides for all), the chief into the workdir and the others into
a temporary folder they delete, and all resume from the chief's checkpoints.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from tf_partfash.attributes import ATTRIBUTE_NAMES, SPECIAL_ATTRIBUTES
from tf_partfash.config import ModelConfig, TrainConfig
from tf_partfash.errors import UserError
from tf_partfash.inputs.pipeline import (Examples, PipelineConfig, batch_shard, iterate_batches,
                                         make_dataset)
from tf_partfash.methods import METHODS, Method, PROPOSED
from tf_partfash.storage.progress import ProgressLine
from tf_partfash.storage.workdir import CHECKPOINTS_DIR, TENSORBOARD_DIR, worker_temp_dir
from tf_partfash.training.distribution import strategy_role


class DivergedError(UserError):
  """Training produced a non-finite loss or weights; the message names the step."""


@keras.saving.register_keras_serializable(package='tf_partfash')
class StagedSchedule(keras.optimizers.schedules.LearningRateSchedule):
  """Learning rate over the global step: stage 1's rate, then stage 2's, each warmed up/decayed."""

  def __init__(self, stage1_steps: int, stage2_steps: int, rate1: float, rate2: float,
               schedule: str = 'constant', warmup_steps: int = 0):
    self.stage1_steps, self.stage2_steps = stage1_steps, stage2_steps
    self.rate1, self.rate2 = rate1, rate2
    self.schedule, self.warmup_steps = schedule, warmup_steps

  def _within(self, step, steps: int, rate: float):
    rate = tf.constant(rate, tf.float32)
    if self.schedule == 'cosine' and steps > 0:
      rate = rate * 0.5 * (1.0 + tf.cos(math.pi * tf.minimum(step / steps, 1.0)))
    if self.warmup_steps:
      rate = rate * tf.minimum(1.0, (step + 1.0) / self.warmup_steps)
    return rate

  def __call__(self, step):
    step = tf.cast(step, tf.float32)
    in_stage1 = step < self.stage1_steps
    return tf.where(in_stage1, self._within(step, self.stage1_steps, self.rate1),
                    self._within(step - self.stage1_steps, self.stage2_steps, self.rate2))

  def get_config(self):
    return dict(stage1_steps=self.stage1_steps, stage2_steps=self.stage2_steps, rate1=self.rate1,
                rate2=self.rate2, schedule=self.schedule, warmup_steps=self.warmup_steps)


def make_optimizer(config: TrainConfig, stage1_steps: int,
                   stage2_steps: int) -> keras.optimizers.Optimizer:
  schedule = StagedSchedule(stage1_steps, stage2_steps, config.stage1_learning_rate,
                            config.stage2_learning_rate, config.schedule, config.warmup_steps)
  if config.optimizer == 'sgd':
    return keras.optimizers.SGD(schedule, momentum=config.momentum,
                                weight_decay=config.weight_decay or None)
  return keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay)


def masked_accuracy(labels: tf.Tensor, logits: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """(number correct, number labelled) of one attribute, missing labels (-1) ignored."""
  valid = labels >= 0
  correct = tf.logical_and(valid, tf.argmax(logits, -1, output_type=tf.int32) == labels)
  return tf.reduce_sum(tf.cast(correct, tf.float32)), tf.reduce_sum(tf.cast(valid, tf.float32))


class Trainer:
  """Runs both stages under a `tf.distribute` strategy with checkpoints every few seconds."""

  def __init__(self, build_model: Callable[[], keras.Model], model_config: ModelConfig,
               config: TrainConfig, train: Examples, workdir: str,
               strategy: tf.distribute.Strategy, method: Method = METHODS[PROPOSED],
               pixels: np.ndarray | None = None):
    """`pixels`: the training images' decoded pixels (`inputs.pixel_cache`), read instead of
    their files."""
    self.pixels = pixels
    self.model_config, self.config, self.method = model_config, config, method
    self.loss = method.loss_fn()
    self.train, self.workdir, self.strategy = train, workdir, strategy
    self.chief, task = strategy_role(strategy)
    self.samplers = {s: method.sampler(s, train.labels, config) for s in (1, 2)}
    group = getattr(self.samplers[2], 'group_size', 1)
    if config.batch_size % (group * strategy.num_replicas_in_sync):
      raise UserError(f'batch_size {config.batch_size} does not split into whole groups of '
                      f'{group} images over {strategy.num_replicas_in_sync} replicas')
    self.steps_per_epoch = {s: self.samplers[s].batches_per_epoch for s in (1, 2)}
    if config.steps_per_epoch:  # a short run: the first batches of each epoch's order
      self.steps_per_epoch = {s: min(n, config.steps_per_epoch)
                              for s, n in self.steps_per_epoch.items()}
    self.stage1_steps = config.stage1_epochs * self.steps_per_epoch[1]
    self.total_steps = self.stage1_steps + config.stage2_epochs * self.steps_per_epoch[2]
    with strategy.scope():  # variables must be created under the strategy
      self.model = model = build_model()
      self.optimizer = make_optimizer(config, self.stage1_steps,
                                      self.total_steps - self.stage1_steps)
      # Variables whose unaddressed parts must stay put (AMNet's memory rows).
      self.optimizer.exclude_from_weight_decay(var_list=getattr(model, 'no_weight_decay', []))
      self.optimizer.build(model.trainable_variables)
    # Every weight by position, non-trainable ones (BatchNorm statistics, AMNet's memory counts)
    # included: Keras 3 layers kept in dicts are not checkpoint dependencies of their model.
    # The variables that are not weights are Dropout's random generators: checkpointed too, so a
    # resumed run draws the masks the uninterrupted run draws.
    weights = {id(w) for w in model.weights}
    self.random_states = [v for v in model.variables if id(v) not in weights]
    self.checkpoint = tf.train.Checkpoint(weights=list(model.weights), optimizer=self.optimizer,
                                          random_states=self.random_states)
    self.checkpoints = os.path.join(workdir, CHECKPOINTS_DIR)
    self._write_dir = (self.checkpoints if self.chief
                       else os.path.join(workdir, worker_temp_dir(task)))
    self.manager = tf.train.CheckpointManager(self.checkpoint, self._write_dir, max_to_keep=2)
    self._saved_step: int | None = None  # in memory: workers decide alike, whatever is on disk
    self._steps = {1: self._make_step(1), 2: self._make_step(2)}
    # TensorBoard writers, made on first use: a start that fails leaves nothing in the workdir.
    self._writers: dict[int, tf.summary.SummaryWriter] = {}

  def _make_step(self, stage: int):
    replicas = self.strategy.num_replicas_in_sync

    def replica_step(batch, seed, due):
      inputs = {k: batch[k] for k in ('image', 'boxes', 'present')}
      with tf.GradientTape() as tape:
        outputs = self.model(inputs, training=True)
        loss, logs = self.loss(self.model, outputs, batch, stage, self.config, seed)
        # Gradients of replicas are summed: each contributes its share of the mean.
        scaled = loss / replicas
      grads = tape.gradient(scaled, self.model.trainable_variables)
      # A stage may leave variables unused (AMNet's manipulator in stage 1, its fc7 classifiers
      # in stage 2): their gradient is None when the step is traced.
      self.optimizer.apply_gradients((g, v) for g, v in zip(grads, self.model.trainable_variables)
                                     if g is not None)
      for j, name in enumerate(ATTRIBUTE_NAMES):
        logs[f'correct/{name}'], logs[f'labelled/{name}'] = masked_accuracy(
            batch['labels'][:, j], outputs['logits'][name])
      logs['checkpoint_due'] = due  # reduced with the logs: any worker due makes all save
      return logs

    @tf.function
    def step(batch, seed, due):
      logs = self.strategy.run(replica_step, args=(batch, seed, due))
      reduce = tf.distribute.ReduceOp
      return {k: self.strategy.reduce(reduce.SUM if k.split('/')[0] in ('correct', 'labelled')
                                      else reduce.MEAN, v, axis=None) for k, v in logs.items()}
    return step

  def latest_checkpoint(self) -> str | None:
    """The chief's last checkpoint, which every worker resumes from."""
    return tf.train.latest_checkpoint(self.checkpoints)

  def run(self) -> None:
    latest = self.latest_checkpoint()
    if latest:
      try:
        self._restore(latest)
      except AssertionError as e:
        raise UserError(f'{latest} does not hold every weight of this model (written by '
                        f'another network or an older tf_partfash): {e}; use a new --workdir'
                        ) from None
      logging.info('resuming from %s at step %d', latest, int(self.optimizer.iterations.numpy()))
    step = int(self.optimizer.iterations.numpy())
    self._saved_step = step if latest else None
    progress = ProgressLine(self.total_steps, self.config.log_every_secs, start=step)
    last_save = time.monotonic()
    pipeline_config = PipelineConfig(self.model_config.image_size, self.config.batch_size,
                                     self.config.flip, self.config.seed)
    while step < self.total_steps:
      # Stages hold whole epochs, so an epoch never straddles the stage boundary. Epochs are
      # numbered through both stages (the sampler's seed).
      stage = 1 if step < self.stage1_steps else 2
      if stage == 1:
        epoch, first = divmod(step, self.steps_per_epoch[1])
      else:
        epoch, first = divmod(step - self.stage1_steps, self.steps_per_epoch[2])
        epoch += self.config.stage1_epochs
        begin = self.method.stage2_start()
        if step == self.stage1_steps and begin:
          # Not checkpointed until stage 2's first save, so an interruption redoes it.
          begin(self.model, self.train, self.model_config.image_size, self.config.batch_size)
      order = self.samplers[stage].epoch(epoch)[first:self.steps_per_epoch[stage]].reshape(-1)
      dataset = self._distributed_dataset(order, pipeline_config, epoch,
                                          first * self.config.batch_size)
      # Logs number epochs within their stage.
      stage_epoch = epoch + 1 - (self.config.stage1_epochs if stage == 2 else 0)
      sums: dict[str, float] = {}
      for batch in iterate_batches(dataset, self.train, order, self.config.batch_size):
        seed = tf.constant([self.config.seed, step], tf.int64)
        due = tf.constant(float(time.monotonic() - last_save > self.config.checkpoint_every_secs))
        logs = {k: float(v) for k, v in self._steps[stage](batch, seed, due).items()}
        due = logs.pop('checkpoint_due') > 0
        for k, v in logs.items():
          sums[k] = sums.get(k, 0.0) + v
        step += 1
        if not math.isfinite(logs['loss/total']):
          raise self._diverged(step, f'loss {logs["loss/total"]}', stage, stage_epoch)
        progress.update(step, f'stage {stage} epoch {stage_epoch}', logs['loss/total'])
        if due:
          self._save(step, stage, stage_epoch)
          last_save = time.monotonic()
      self._save(step, stage, stage_epoch)  # every epoch ends on a checkpoint
      last_save = time.monotonic()
      if self.chief:
        self._write_summaries(stage, step, sums, len(order) // self.config.batch_size)
      if sums:
        accuracy = {n: sums[f'correct/{n}'] / max(sums[f'labelled/{n}'], 1.0)
                    for n in SPECIAL_ATTRIBUTES}
        logging.info('stage %d epoch %d: loss %.3f, train accuracy %s', stage, stage_epoch,
                     sums['loss/total'] / max(len(order) // self.config.batch_size, 1),
                     ' '.join(f'{n} {a:.2f}' for n, a in accuracy.items()))
    progress.close()

  def _restore(self, checkpoint: str) -> None:
    saved = {name.split('/')[0] for name, _ in tf.train.list_variables(checkpoint)}
    if self.random_states and 'random_states' not in saved:
      # Written before the generators were checkpointed: the weights resume exactly, the
      # dropout masks from here on are new draws.
      logging.warning('%s holds no random generator state (an older tf_partfash): dropout '
                      'masks after the resumption differ from an uninterrupted run', checkpoint)
      tf.train.Checkpoint(weights=list(self.model.weights), optimizer=self.optimizer
                          ).restore(checkpoint).assert_existing_objects_matched()
      return
    self.checkpoint.restore(checkpoint).assert_existing_objects_matched()

  def _distributed_dataset(self, order: np.ndarray, config: PipelineConfig, epoch: int,
                           start: int) -> tf.distribute.DistributedDataset:
    """The batches of `order` (epoch positions from `start`), each input pipeline reading only
    its slice of every global batch, split into per-replica batches."""
    def pipeline(context: tf.distribute.InputContext) -> tf.data.Dataset:
      rows, positions = batch_shard(order, config.batch_size, context.input_pipeline_id,
                                    context.num_input_pipelines, start)
      per_replica = context.get_per_replica_batch_size(config.batch_size)
      return make_dataset(self.train, rows, dataclasses.replace(config, batch_size=per_replica),
                          epoch=epoch, positions=positions, pixels=self.pixels)
    return self.strategy.distribute_datasets_from_function(pipeline)

  def _save(self, step: int, stage: int, stage_epoch: int) -> None:
    """Checkpoints `step`, unless it already is or the weights are not finite (an error: a
    finite loss can still end in an overflowing update). Every worker saves; the chief's
    checkpoint is the one kept."""
    if step == self._saved_step:
      return
    bad = [w.path for w in self.model.weights if not np.isfinite(w.numpy()).all()]
    if bad:
      raise self._diverged(step, f'non-finite weights in {bad[0]}', stage, stage_epoch)
    self.manager.save(checkpoint_number=step)
    self._saved_step = step
    if not self.chief:
      tf.io.gfile.rmtree(self._write_dir)

  def _diverged(self, step: int, what: str, stage: int, stage_epoch: int) -> DivergedError:
    latest = self.latest_checkpoint()
    kept = (f'the last checkpoint, {latest}, holds the last good weights' if latest
            else 'no checkpoint was written')
    return DivergedError(f'training diverged at step {step} (stage {stage} epoch {stage_epoch}): '
                         f'{what}; stopped without checkpointing it, {kept}. Lower '
                         f'--stage{stage}_learning_rate (in a new --workdir)')

  def _write_summaries(self, stage: int, step: int, sums: dict[str, float], batches: int) -> None:
    if not batches:
      return
    if stage not in self._writers:
      self._writers[stage] = tf.summary.create_file_writer(
          os.path.join(self.workdir, TENSORBOARD_DIR, f'stage{stage}'))
    with self._writers[stage].as_default(step=step):
      for k, v in sums.items():
        if k.startswith('loss/') or k.startswith('triplets/'):
          tf.summary.scalar(k, v / batches)
      for name in ATTRIBUTE_NAMES:
        if sums[f'labelled/{name}']:
          tf.summary.scalar(f'train_accuracy/{name}',
                            sums[f'correct/{name}'] / sums[f'labelled/{name}'])
      tf.summary.scalar('learning_rate', float(self.optimizer.learning_rate))
    self._writers[stage].flush()
