"""AMNet (Zhao et al., *Memory-Augmented Attribute Manipulation Networks*, CVPR 2017): the
strongest baseline of the paper's Table 2.

```
image -> ClassicNet's AlexNet + fc6 + fc7 = r  (the shared-weight representation learner, §3.3)
indicator h (C,) -> h' = h / Σh -> t = Σ_i h'(i) M(i, :)          memory block, AMNet Eq. 1
(r̂, t) -> r' = W·(r̂, t) + b                                     attribute manipulator, AMNet Eq. 3
r' -> 12 classifiers (the manipulated labels, AMNet Eq. 4)
```
Choices the AMNet paper leaves open, made here:
- The memory holds the C = 71 values of the five special attributes, the ones the paper's
  protocol manipulates (§7), so a general-attribute change is not expressible (as for the
  proposed network).
- r̂ = r / |r|: the manipulator and the memory work on the L2-normalised fc7 that search compares
  (every method here ranks unit vectors), and M is initialised with the mean r̂ of the training
  images of each value (AMNet §3.4 "Memory Initialization", §4) by `initialise_memory`.
- r' has its own classifiers: r' is a new representation, not fc7, and fc7's classifiers are
  those of the pretraining network (stage 1) that the memory is initialised from.
- W starts as [I; I] and b as 0, so r' = r̂ + t before training.
"""
from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tf_partfash.attributes import ATTRIBUTE_NAMES, NUM_SPECIAL_VALUES, attribute
from tf_partfash.config import ModelConfig
from tf_partfash.models.classic import ClassicNet
from tf_partfash.models.partnet import dummy_inputs


def retrieve_prototype(indicator: tf.Tensor, memory: tf.Tensor) -> tf.Tensor:
  """AMNet Eq. 1: t = Σ_i h'(i) M(i, :) with h' = h / Σ h, for (B, C) indicators -> (B, Q).

  An all-zero indicator (no manipulation) gives t = 0.
  """
  indicator = tf.cast(indicator, memory.dtype)
  normalised = tf.math.divide_no_nan(indicator, tf.reduce_sum(indicator, -1, keepdims=True))
  return normalised @ memory


@keras.saving.register_keras_serializable(package='tf_partfash')
class AMNet(ClassicNet):
  """`ClassicNet` plus AMNet's memory block and attribute manipulator (`manipulate`)."""

  def __init__(self, config: ModelConfig | dict | None = None, **kwargs: Any):
    super().__init__(config, **kwargs)
    size = self.config.signature_size
    self.memory = self.add_weight(shape=(NUM_SPECIAL_VALUES, size), initializer='zeros',
                                  name='memory')
    # Training images per memory row at initialisation; all zero until `initialise_memory`.
    self.memory_counts = self.add_weight(shape=(NUM_SPECIAL_VALUES,), initializer='zeros',
                                         trainable=False, name='memory_counts')
    # W starts as [I; I]: r' = r̂ + t, the query moved toward the prototype (AMNet leaves the
    # initialisation open; a random W starts from outputs unrelated to the query).
    self.manipulator = keras.layers.Dense(
        size, name='manipulator',
        kernel_initializer=lambda shape, dtype=None: np.vstack([np.eye(size)] * 2).astype(dtype))
    self.manipulator.build((None, 2 * size))
    self.manipulated_classifiers = {}
    for name in ATTRIBUTE_NAMES:
      layer = keras.layers.Dense(attribute(name).num_values, name=f'{name}_manipulated_classifier')
      layer.build((None, size))
      self.manipulated_classifiers[name] = layer

  def manipulate(self, normalised: tf.Tensor, indicator: tf.Tensor) -> tf.Tensor:
    """AMNet Eq. 3: r' = W·(r̂, t) + b with t from Eq. 1; (B, Q) r̂ and (B, C) h -> (B, Q)."""
    prototype = retrieve_prototype(indicator, self.memory)
    return self.manipulator(tf.concat([normalised, prototype], axis=-1))

  def classify_manipulated(self, manipulated: tf.Tensor,
                           training: bool = False) -> dict[str, tf.Tensor]:
    dropped = self.head_dropout(manipulated, training=training)
    return {name: self.manipulated_classifiers[name](dropped) for name in ATTRIBUTE_NAMES}

  @property
  def no_weight_decay(self) -> list:
    """AMNet §3.4: only the memory rows an indicator addresses are updated, so weight decay,
    which would shrink every row at every step, leaves the memory alone."""
    return [self.memory]

  @property
  def memory_initialised(self) -> bool:
    return bool(np.asarray(self.memory_counts).sum() > 0)

  def initialise_memory(self, sums: np.ndarray, counts: np.ndarray) -> None:
    """M(i, :) = mean r̂ of the training images with value i (`sums` (C, Q), `counts` (C,))."""
    counts = np.asarray(counts, np.float32)
    self.memory.assign(np.asarray(sums, np.float32) / np.maximum(counts, 1.0)[:, None])
    self.memory_counts.assign(counts)


def build_amnet(config: ModelConfig) -> AMNet:
  """A built `AMNet` (weights created by one call on dummy inputs)."""
  model = AMNet(config)
  model(dummy_inputs(config), training=False)
  return model
