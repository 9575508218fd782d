"""The single-path attribute classification network: the paper's "Classic" baseline (§7) and the
representation learner of AMNet (Zhao et al., CVPR 2017, §3.3, §4).

```
image -> AlexNet conv1..pool5 -> fc6 -> fc7 = r -> 12 attribute classifiers
```
No part pooling and one feature vector per image; `signatures` is fc7 as a single (B, 1, D)
block, so the index and search code treat it like the part network's S + 1 blocks.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import keras
import tensorflow as tf

from tf_partfash.attributes import ATTRIBUTE_NAMES, attribute
from tf_partfash.config import ModelConfig
from tf_partfash.models.alexnet import build_alexnet
from tf_partfash.models.partnet import dummy_inputs, fc_block


@keras.saving.register_keras_serializable(package='tf_partfash')
class ClassicNet(keras.Model):
  """AlexNet + fc6 + fc7 + one classifier per attribute; `call` returns signatures and logits.

  Inputs: the part network's input dict (only `image` is used). Outputs: `signatures` (B, 1, D),
  fc7 (not normalised), and `logits` a dict attribute -> (B, K_a) for all 12 attributes.
  """

  def __init__(self, config: ModelConfig | dict | None = None, **kwargs: Any):
    super().__init__(**kwargs)
    if isinstance(config, dict):
      config = ModelConfig(**config)
    self.config = config = config or ModelConfig()
    self.backbone = build_alexnet(config.image_size, config.backbone_norm)
    self.flatten = keras.layers.Flatten()
    self.fc6 = fc_block(config.hidden_size, config.dropout, 'fc6')
    self.fc7 = fc_block(config.signature_size, 0.0, 'fc7')
    self.head_dropout = keras.layers.Dropout(config.dropout)
    self.classifiers = {name: keras.layers.Dense(attribute(name).num_values,
                                                 name=f'{name}_classifier')
                        for name in ATTRIBUTE_NAMES}

  def represent(self, image: tf.Tensor, training: bool = False) -> tf.Tensor:
    """fc7 of each image, (B, D): the representation r (AMNet §3.3)."""
    pool5 = self.backbone(image, training=training)['pool5']
    return self.fc7(self.fc6(self.flatten(pool5), training=training), training=training)

  def classify(self, features: tf.Tensor, training: bool = False) -> dict[str, tf.Tensor]:
    dropped = self.head_dropout(features, training=training)
    return {name: self.classifiers[name](dropped) for name in ATTRIBUTE_NAMES}

  def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> dict[str, Any]:
    features = self.represent(inputs['image'], training)
    return {'signatures': features[:, None, :], 'logits': self.classify(features, training)}

  def get_config(self) -> dict[str, Any]:
    return {**super().get_config(), 'config': dataclasses.asdict(self.config)}


def build_classic(config: ModelConfig) -> ClassicNet:
  """A built `ClassicNet` (weights created by one call on dummy inputs)."""
  model = ClassicNet(config)
  model(dummy_inputs(config), training=False)
  return model
