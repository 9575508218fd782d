"""The proposed two-path part network (paper §4.2, §4.3, Fig. 3).

```
image -> AlexNet conv1..conv5 ─┬─ pool5 -> fc6 -> fc7 = general signature ─┬─ G general classifiers
                               │                                           └─ "Extract Parts?" (3)
                               └─ per special attribute v: crop_and_resize(conv5, part box of v)
                                  -> pool5 -> fc6_v -> fc7_v = signature v -> classifier of v
```
The crop takes the conv5 map to its own size, so a crop with the whole-image box is exactly conv5
and the fallback of §4.3 ("the network does not use ROI pooling and passes the whole feature map
of the conv-5th layer after the pooling layer") is the same branch with the box (0, 0, 1, 1).
A part is used when part extraction offered it and the case allows it: during training the case
comes from part extraction (settled by the labels where they can); at inference from the
network's own "Extract Parts?" head, which picks among the upper-body parts extraction offers for
every image (`gate='head_picks'`, §4.3), or may only leave out parts of an extraction that read
the image alone (`gate='head'`); with `gate='extraction'` extraction alone decides. Sleeve length pools both sleeves (element-wise max, which
is unchanged by a horizontal flip); colour and pattern share the chest crop (§6).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tf_partfash.attributes import (ATTRIBUTE_NAMES, GENERAL_ATTRIBUTES, SIGNATURE_NAMES,
                                    SPECIAL_ATTRIBUTES, attribute)
from tf_partfash.config import ModelConfig
from tf_partfash.errors import UserError
from tf_partfash.models.alexnet import batch_norm, build_alexnet, conv5_size
from tf_partfash.parts.boxes import CASES, PART_NAMES

# Which parts each case may use (§4.3): none for lower-body garments, all but the sleeves for
# sleeveless ones. Rows follow CASES, columns PART_NAMES.
_CASE_ALLOWS = np.array([[c == 'sleeve' or (c == 'sleeveless' and not n.endswith('_sleeve'))
                          for n in PART_NAMES] for c in CASES], np.float32)
WHOLE_BOX = (0.0, 0.0, 1.0, 1.0)


def fc_block(units: int, dropout: float, name: str) -> keras.Sequential:
  """Dense -> BatchNorm -> ReLU (-> Dropout): BatchNorm in the new layers speeds from-scratch training."""
  layers = [keras.layers.Dense(units, use_bias=False, kernel_initializer='he_normal',
                               name=f'{name}_dense'),
            batch_norm(f'{name}_bn'),
            keras.layers.ReLU(name=f'{name}_relu')]
  if dropout:
    layers.append(keras.layers.Dropout(dropout, name=f'{name}_dropout'))
  return keras.Sequential(layers, name=name)


def roi_pool(conv5: tf.Tensor, boxes: tf.Tensor, pool: keras.layers.Layer) -> tf.Tensor:
  """`crop_and_resize` of each image's box (B, 4) back to the conv5 size, then pool5 (§6)."""
  size = conv5.shape[1]
  crops = tf.image.crop_and_resize(conv5, boxes, tf.range(tf.shape(conv5)[0]), (size, size))
  return pool(crops)


@keras.saving.register_keras_serializable(package='tf_partfash')
class PartNet(keras.Model):
  """The two-path network; `call` returns signatures, attribute logits and case logits.

  Inputs: a dict with `image` (B, S, S, 3) BGR mean-subtracted, `boxes` (B, 6, 4) part boxes in
  `PART_NAMES` order and `present` (B, 6) which of them part extraction found.
  Outputs: `signatures` (B, S + 1, D) in `SIGNATURE_NAMES` order (not normalised), `logits` a dict
  attribute -> (B, K_a) for all 12 attributes, `case_logits` (B, 3) and `gates` (B, 6) (which
  parts were used).
  """

  def __init__(self, config: ModelConfig | dict | None = None, **kwargs: Any):
    super().__init__(**kwargs)
    if isinstance(config, dict):
      config = ModelConfig(**config)
    self.config = config = config or ModelConfig()
    if conv5_size(config.image_size) < 1:
      raise UserError(f'image_size {config.image_size} too small')
    self.backbone = build_alexnet(config.image_size, config.backbone_norm)
    self.pool5 = keras.layers.MaxPooling2D(3, 2, padding='valid', name='roi_pool5')
    self.flatten = keras.layers.Flatten()
    self.branches = {}
    self.classifiers = {}
    for v in SIGNATURE_NAMES:
      self.branches[v] = (fc_block(config.hidden_size, config.dropout, f'{v}_fc6'),
                          fc_block(config.signature_size, 0.0, f'{v}_fc7'))
    self.head_dropout = keras.layers.Dropout(config.dropout)
    for name in ATTRIBUTE_NAMES:
      self.classifiers[name] = keras.layers.Dense(attribute(name).num_values,
                                                  name=f'{name}_classifier')
    self.extract_parts_head = keras.layers.Dense(len(CASES), name='extract_parts')
    self._case_allows = tf.constant(_CASE_ALLOWS)

  def _signature(self, v: str, pooled: tf.Tensor, training: bool) -> tf.Tensor:
    fc6, fc7 = self.branches[v]
    return fc7(fc6(self.flatten(pooled), training=training), training=training)

  def gates(self, present: tf.Tensor, case_logits: tf.Tensor, training: bool) -> tf.Tensor:
    """(B, 6) 1.0 where a part's box is used: offered by extraction and allowed by the case (the
    head's at inference; what extraction offers is `ModelConfig.test_case_from`'s)."""
    gates = tf.cast(present, tf.float32)
    if not self.config.use_parts:
      return tf.zeros_like(gates)
    if training or self.config.gate == 'extraction':
      return gates  # extraction's own case already left out what it did not find
    case = tf.argmax(case_logits, axis=-1)
    return gates * tf.gather(self._case_allows, case)

  def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> dict[str, Any]:
    features = self.backbone(inputs['image'], training=training)
    conv5, pool5 = features['conv5'], features['pool5']
    general = self._signature('general', pool5, training)
    case_logits = self.extract_parts_head(general)
    gates = self.gates(inputs['present'], case_logits, training)
    whole = tf.constant(WHOLE_BOX, tf.float32)
    # Gate off -> the whole-image box, which reproduces conv5 exactly.
    boxes = tf.where(gates[..., None] > 0, tf.cast(inputs['boxes'], tf.float32), whole)

    def pooled(part: str) -> tf.Tensor:
      return roi_pool(conv5, boxes[:, PART_NAMES.index(part)], self.pool5)

    crops: dict[str, tf.Tensor] = {}
    signatures = {'general': general}
    for v in SPECIAL_ATTRIBUTES:
      regions = [crops.setdefault(p, pooled(p)) for p in attribute(v).parts]
      region = regions[0] if len(regions) == 1 else tf.reduce_max(tf.stack(regions), axis=0)
      signatures[v] = self._signature(v, region, training)
    logits = {}
    for name in ATTRIBUTE_NAMES:
      source = signatures['general'] if name in GENERAL_ATTRIBUTES else signatures[name]
      logits[name] = self.classifiers[name](self.head_dropout(source, training=training))
    return {'signatures': tf.stack([signatures[v] for v in SIGNATURE_NAMES], axis=1),
            'logits': logits, 'case_logits': case_logits, 'gates': gates}

  def get_config(self) -> dict[str, Any]:
    return {**super().get_config(), 'config': dataclasses.asdict(self.config)}


def dummy_inputs(config: ModelConfig, batch_size: int = 1) -> dict[str, tf.Tensor]:
  """Zero inputs of the right shapes, to build the model's weights."""
  return {'image': tf.zeros((batch_size, config.image_size, config.image_size, 3)),
          'boxes': tf.tile(tf.constant([[WHOLE_BOX]]), (batch_size, len(PART_NAMES), 1)),
          'present': tf.zeros((batch_size, len(PART_NAMES)), tf.bool)}


def build_partnet(config: ModelConfig) -> PartNet:
  """A built `PartNet` (weights created by one call on dummy inputs)."""
  model = PartNet(config)
  model(dummy_inputs(config), training=False)
  return model
