"""FLAM's two training stages on frozen features (paper 003 §3, Fig. 1), semi-supervised as FLAM is.

1. Embedding stage: each embedder φ_a and its dictionary learn Eq. 2 from the images labelled on
   attribute a only.
2. Manipulating stage: with the embedders frozen (they teach D), G and D train on every image,
   labelled or not: a row's class of an attribute is its label, else the embedder's nearest
   dictionary vector (FLAM's pseudo-labels). Each row gets a target attribute a and a partner x⁻
   of another class of a (online sampling: the one nearest in the remaining attributes); D learns
   Eq. 3 and Eq. 4 on real features, G learns Eq. 3 and Eq. 4 on x̃ = G(x, φ_a(x⁻)) and Eq. 5.

Every random draw comes from (seed, step) with stateless ops, so a run is a function of its seed
and a resumed run continues exactly (`FlamTrainer.checkpoint`).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf

from tf_partfash.config import FlamConfig
from tf_partfash.models.flam import Flam
from tf_partfash.training import flam_losses as fl


def step_seed(seed: int, step: int, stream: int) -> tf.Tensor:
  return tf.constant([seed * 1000 + stream, step], tf.int64)


def random_negatives(labels: tf.Tensor, num_classes: int, seed: tf.Tensor
                     ) -> tuple[tf.Tensor, tf.Tensor]:
  """For Eq. 2 on one attribute: per row, a batch row of another (known) class (-1: none) and a
  class other than its own, both drawn uniformly from `seed`."""
  labels = tf.cast(labels, tf.int32)
  other = (labels[None, :] != labels[:, None]) & (labels[None, :] >= 0)
  score = tf.random.stateless_uniform(tf.shape(other), seed)
  rows = tf.argmax(tf.where(other, score, -1.0), axis=-1, output_type=tf.int32)
  rows = tf.where(tf.reduce_any(other, -1), rows, -1)
  shift = tf.random.stateless_uniform(tf.shape(labels), seed + 1, 1, max(num_classes, 2),
                                      tf.int32)
  return rows, (tf.maximum(labels, 0) + shift) % num_classes


def batch_rows(rows: np.ndarray, config: FlamConfig, seed: int, step: int,
           stream: int) -> np.ndarray:
  """The rows of batch `step`: a sample without repeats, from (seed, stream, step)."""
  rng = np.random.default_rng([seed, stream, step])
  return rng.choice(rows, min(config.flam_batch_size, len(rows)), replace=False)


def _classes(model, e: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
  """(B, n): each row's label per attribute type, else its pseudo-label."""
  pseudo = tf.stack([fl.nearest_classes(e[:, a], model.dictionaries[a])
                     for a in range(len(model.dictionaries))], axis=1)
  return tf.where(labels >= 0, tf.cast(labels, tf.int32), pseudo)


def embedding_step(model, optimizer, config: FlamConfig):
  """One step of Eq. 2 for every attribute type of `model` (a `Flam`, or an Emb-Concat: anything
  with `embed`, `embedders` and `dictionaries`), as a `tf.function` of (x, labels, seed)."""
  variables = [v for e in model.embedders for v in e.trainable_variables] + model.dictionaries

  @tf.function
  def step_fn(xb, yb, seed):
    with tf.GradientTape() as tape:
      e = model.embed(xb)
      losses = []
      for a, d in enumerate(model.dictionaries):
        rows, negative_classes = random_negatives(yb[:, a], d.shape[0], seed + a)
        losses.append(fl.embedding_loss(e[:, a], yb[:, a], d, rows, negative_classes,
                                        config.flam_margin))
      loss = tf.add_n(losses) / len(losses)
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return {'embedding': loss}

  return step_fn


def manipulating_step(flam: Flam, g_opt, d_opt, config: FlamConfig):
  """One step of the manipulating stage (see the module doc), as a `tf.function` of (x, labels,
  seed); it returns the losses, the cycle similarity and the share of x̃ the frozen embedder
  reads as the wanted class (FLAM Table 5's classification accuracy after manipulation)."""
  g_vars = flam.generator_delta.trainable_variables
  d_vars = (flam.discriminator_body.trainable_variables + flam.real_fake.trainable_variables
            + flam.matching.trainable_variables)
  n, remaining = len(flam.sizes.classes), flam.sizes.remaining

  @tf.function
  def step_fn(xb, yb, seed):
    e = tf.stop_gradient(flam.embed(xb))                   # the frozen teachers
    target = tf.random.stateless_uniform(tf.shape(xb)[:1], seed, 0, n, tf.int32)
    partner = fl.online_negatives(_classes(flam, e, yb), e, target, config.flam_online_sampling,
                                  seed + 1)
    has = partner >= 0
    partner = tf.maximum(partner, 0)
    own_target = tf.gather(e, target, axis=1, batch_dims=1)                   # φ_a(x)
    wanted = tf.gather(tf.gather(e, partner), target, axis=1, batch_dims=1)   # φ_a(x⁻)
    with tf.GradientTape() as d_tape:
      fake = flam.generate(xb, wanted)
      real_logits, real_match = flam.discriminate(xb)
      fake_logits, _ = flam.discriminate(tf.stop_gradient(fake))
      d_match = fl.matching_loss(real_match, fl.matching_target(e, target, own_target, remaining))
      d_loss = config.flam_matching_weight * d_match
      if config.flam_adversarial:
        d_loss += fl.discriminator_adversarial_loss(real_logits, fake_logits)
    d_opt.apply_gradients(zip(d_tape.gradient(d_loss, d_vars), d_vars))
    with tf.GradientTape() as g_tape:
      fake = flam.generate(xb, wanted)
      recovered = flam.generate(fake, own_target)
      fake_logits, fake_match = flam.discriminate(fake)
      keep = tf.cast(has, tf.float32)[:, None]  # rows without a partner: the cycle only
      g_match = fl.matching_loss(fake_match * keep,
                                 fl.matching_target(e, target, wanted, remaining) * keep)
      cycle = fl.cycle_loss(xb, recovered)
      g_loss = config.flam_matching_weight * g_match + config.flam_cycle_weight * cycle
      if config.flam_adversarial:
        g_loss += fl.generator_adversarial_loss(fake_logits)
    g_opt.apply_gradients(zip(g_tape.gradient(g_loss, g_vars), g_vars))
    # FLAM Table 5's check: does the frozen embedder read x̃ as the wanted class?
    wanted_class = tf.gather(tf.gather(_classes(flam, e, yb), partner), target, axis=1,
                             batch_dims=1)
    read = tf.stack([fl.nearest_classes(flam.embed(fake)[:, a], flam.dictionaries[a])
                     for a in range(n)], axis=1)
    manipulated = tf.gather(read, target, axis=1, batch_dims=1) == wanted_class
    return {'d': d_loss, 'g': g_loss, 'match': g_match, 'cycle': cycle,
            'cycle_similarity': fl.cycle_similarity(xb, recovered),
            'manipulated_accuracy': tf.reduce_sum(tf.cast(manipulated & has, tf.float32))
            / tf.maximum(tf.reduce_sum(tf.cast(has, tf.float32)), 1.0)}

  return step_fn


def count_classes(model, labels: np.ndarray) -> None:
  """Stores the labelled training images per class in `model.class_counts`."""
  for a, counts in enumerate(model.class_counts):
    column = labels[:, a]
    counts.assign(np.bincount(column[column >= 0], minlength=counts.shape[0]).astype(np.float32))


class FlamTrainer:
  """Both stages as one sequence of steps: `config.flam_embedding_steps` of Eq. 2, then
  `config.flam_steps` of Eq. 3-5. Its `checkpoint` (the model, the three optimizers and the
  step) resumes a run where it stopped; batches and draws are functions of (seed, step), so a
  resumed run is the run it resumes."""

  def __init__(self, flam: Flam, config: FlamConfig, seed: int):
    self.flam, self.config, self.seed = flam, config, seed
    self.embedding_optimizer = tf.keras.optimizers.Adam(config.flam_embedding_learning_rate)
    self.g_optimizer = tf.keras.optimizers.Adam(config.flam_learning_rate, beta_1=0.5)
    self.d_optimizer = tf.keras.optimizers.Adam(config.flam_learning_rate, beta_1=0.5)
    embedders = [v for e in flam.embedders for v in e.trainable_variables] + flam.dictionaries
    self.embedding_optimizer.build(embedders)  # built now: a checkpoint restores into them
    self.g_optimizer.build(flam.generator_delta.trainable_variables)
    self.d_optimizer.build(flam.discriminator_body.trainable_variables
                           + flam.real_fake.trainable_variables
                           + flam.matching.trainable_variables)
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
    self.checkpoint = tf.train.Checkpoint(model=flam, step=self.step,
                                          embedding=self.embedding_optimizer,
                                          generator=self.g_optimizer,
                                          discriminator=self.d_optimizer)

  @property
  def total_steps(self) -> int:
    return self.config.flam_embedding_steps + self.config.flam_steps

  def run(self, x: np.ndarray, labels: np.ndarray,
          after_step: Callable[[int, str, dict], None] = lambda step, stage, logs: None) -> None:
    """Trains from `self.step` to the end on features `x` (N, F) with `labels` (N, n), -1
    unlabelled; `after_step(step, stage, logs)` follows every step (logging, checkpoints)."""
    count_classes(self.flam, labels)
    labelled = np.flatnonzero((labels >= 0).any(axis=1))
    everything = np.arange(len(x))
    embed = embedding_step(self.flam, self.embedding_optimizer, self.config)
    manipulate = manipulating_step(self.flam, self.g_optimizer, self.d_optimizer, self.config)
    for step in range(int(self.step.numpy()), self.total_steps):
      first = step < self.config.flam_embedding_steps
      batch = batch_rows(labelled if first else everything, self.config, self.seed, step,
                     1 if first else 2)
      logs = (embed if first else manipulate)(tf.constant(x[batch]), tf.constant(labels[batch]),
                                              step_seed(self.seed, step, 1 if first else 2))
      self.step.assign(step + 1)
      after_step(step + 1, 'embedding' if first else 'manipulating',
                 {k: float(v) for k, v in logs.items()})
