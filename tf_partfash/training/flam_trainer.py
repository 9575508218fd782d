"""FLAM's two training stages on frozen features (paper 003 §3, Fig. 1), semi-supervised as FLAM is.

1. Embedding stage: each embedder φ_a and its dictionary learn Eq. 2 from the images labelled on
   attribute a only.
2. Manipulating stage: with the embedders frozen (they teach D), G and D train on every image,
   labelled or not: a row's class of an attribute is its label, else the embedder's nearest
   dictionary vector (FLAM's pseudo-labels). Each row gets a target attribute a and a partner x⁻
   of another class of a (online sampling: the one nearest in the remaining attributes); D learns
   Eq. 3 and Eq. 4 on real features, G learns Eq. 3 and Eq. 4 on x̃ = G(x, φ_a(x⁻)) and Eq. 5.

Every random draw comes from (seed, step) with stateless ops, so a run is a function of its seed.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import tensorflow as tf

from tf_partfash.models.flam import Flam
from tf_partfash.training import flam_losses as fl


@dataclasses.dataclass(frozen=True)
class FlamTraining:
  """FLAM's training settings (FLAM gives none of these but k; `flags/flam.flags` says why)."""
  embedding_steps: int = 2000
  manipulating_steps: int = 3000
  batch_size: int = 256
  embedding_learning_rate: float = 1e-3
  learning_rate: float = 2e-4          # G and D: Adam with beta_1 = 0.5, as GANs train
  margin: float = 0.2                  # μ of Eq. 1
  # Eq. 4 and Eq. 5 beside Eq. 3. With CycleGAN's 10 for the cycle, G stayed the identity on
  # tests/test_flam.py's toy features; matching 10 and cycle 1 moved it to the wanted class.
  cycle_weight: float = 1.0
  matching_weight: float = 10.0
  adversarial: bool = True             # Table 3's "Adv"
  online_sampling: bool = True         # Table 3's "OS"
  seed: int = 0


def _seed(config: FlamTraining, step: int, stream: int) -> tf.Tensor:
  return tf.constant([config.seed * 1000 + stream, step], tf.int64)


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


def _batches(rows: np.ndarray, config: FlamTraining, step: int, stream: int) -> np.ndarray:
  """The rows of batch `step`: a sample without repeats, from (seed, step)."""
  rng = np.random.default_rng([config.seed, stream, step])
  return rng.choice(rows, min(config.batch_size, len(rows)), replace=False)


def train_embedders(flam: Flam, x: np.ndarray, labels: np.ndarray, config: FlamTraining,
                    log: Callable[[int, dict], None] = lambda step, logs: None) -> None:
  """Stage 1: Eq. 2 for every attribute type, on the images labelled on it (`labels` (N, n),
  -1 unlabelled)."""
  optimizer = tf.keras.optimizers.Adam(config.embedding_learning_rate)
  variables = [v for e in flam.embedders for v in e.trainable_variables] + flam.dictionaries
  labelled = np.flatnonzero((labels >= 0).any(axis=1))
  classes = flam.sizes.classes

  @tf.function
  def step_fn(xb, yb, seed):
    with tf.GradientTape() as tape:
      e = flam.embed(xb)
      losses = []
      for a, c in enumerate(classes):
        rows, negative_classes = random_negatives(yb[:, a], c, seed + a)
        losses.append(fl.embedding_loss(e[:, a], yb[:, a], flam.dictionaries[a], rows,
                                        negative_classes, config.margin))
      loss = tf.add_n(losses) / len(classes)
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
    return loss

  for step in range(config.embedding_steps):
    batch = _batches(labelled, config, step, 1)
    loss = step_fn(tf.constant(x[batch]), tf.constant(labels[batch]), _seed(config, step, 1))
    log(step, {'embedding': float(loss)})


def _classes(flam: Flam, e: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
  """(B, n): each row's label per attribute type, else its pseudo-label."""
  pseudo = tf.stack([fl.nearest_classes(e[:, a], flam.dictionaries[a])
                     for a in range(len(flam.sizes.classes))], axis=1)
  return tf.where(labels >= 0, tf.cast(labels, tf.int32), pseudo)


def train_manipulator(flam: Flam, x: np.ndarray, labels: np.ndarray, config: FlamTraining,
                      log: Callable[[int, dict], None] = lambda step, logs: None) -> None:
  """Stage 2 on every image (see the module doc); logs the losses and the cycle similarity."""
  g_vars = flam.generator_delta.trainable_variables
  d_vars = (flam.discriminator_body.trainable_variables + flam.real_fake.trainable_variables
            + flam.matching.trainable_variables)
  g_opt = tf.keras.optimizers.Adam(config.learning_rate, beta_1=0.5)
  d_opt = tf.keras.optimizers.Adam(config.learning_rate, beta_1=0.5)
  n, remaining = len(flam.sizes.classes), flam.sizes.remaining

  @tf.function
  def step_fn(xb, yb, seed):
    e = tf.stop_gradient(flam.embed(xb))                   # the frozen teachers
    target = tf.random.stateless_uniform(tf.shape(xb)[:1], seed, 0, n, tf.int32)
    partner = fl.online_negatives(_classes(flam, e, yb), e, target, config.online_sampling,
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
      d_loss = config.matching_weight * d_match
      if config.adversarial:
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
      g_loss = config.matching_weight * g_match + config.cycle_weight * cycle
      if config.adversarial:
        g_loss += fl.generator_adversarial_loss(fake_logits)
    g_opt.apply_gradients(zip(g_tape.gradient(g_loss, g_vars), g_vars))
    return {'d': d_loss, 'g': g_loss, 'match': g_match, 'cycle': cycle,
            'cycle_similarity': fl.cycle_similarity(xb, recovered)}

  everything = np.arange(len(x))
  for step in range(config.manipulating_steps):
    batch = _batches(everything, config, step, 2)
    logs = step_fn(tf.constant(x[batch]), tf.constant(labels[batch]), _seed(config, step, 2))
    log(step, {k: float(v) for k, v in logs.items()})
