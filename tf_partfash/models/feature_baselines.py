"""FLAM's two baselines (paper 003 §4.2), on the frozen feature x of another run, as FLAM is.

- Cls-Concat: per attribute, "two fully connected layers followed by a ReLU and a dropout",
  trained by cross entropy, the intermediate layer 341 wide: x -> Dense(341) -> ReLU (the
  attribute's feature) -> Dropout(0.5) -> Dense(C_a).
- Emb-Concat: per attribute an embedder as FLAM's (`models.flam`), 341 wide, trained by the
  triplet loss with dictionary anchors (Eq. 2).

An image is its n attribute features, each L2-normalised: (N, n, 341), 1,023 dims for FLAM's
three attributes. FLAM does not say how a baseline is manipulated; here as the paper's own Eq. 4:
the wanted attribute's block is replaced by its class's generic feature, the mean block of the
training images labelled with that class (`class_means`, kept with the weights).
"""
from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from tf_partfash.models.flam import feature_shape, mlp

DROPOUT = 0.5  # FLAM gives none; the usual rate of a classifier's dropout (AlexNet's)


class ConcatBaseline(keras.Model):
  """Cls-Concat (`kind='cls'`) or Emb-Concat (`kind='emb'`) over n attributes."""

  def __init__(self, kind: str, feature_size: int, names: tuple[str, ...],
               classes: tuple[int, ...], width: int = 341, hidden: int = 512, **kwargs: Any):
    super().__init__(**kwargs)
    if kind not in ('cls', 'emb'):
      raise ValueError(f'kind={kind!r}; valid: cls, emb')
    self.kind, self.names, self.width = kind, names, width
    if kind == 'cls':
      self.embedders = [keras.Sequential([keras.layers.Dense(width, name=f'fc{a}'),
                                          keras.layers.ReLU()], name=f'feature{a}')
                        for a in range(len(classes))]
      self.dropout = keras.layers.Dropout(DROPOUT)
      self.heads = [keras.layers.Dense(c, name=f'classifier{a}') for a, c in enumerate(classes)]
      self.dictionaries = []
    else:
      self.embedders = [mlp([hidden], width, keras.layers.ReLU, f'embedder{a}')
                        for a in range(len(classes))]
      self.heads = []
      self.dictionaries = [self.add_weight(shape=(c, width), initializer='glorot_uniform',
                                           name=f'dictionary{a}') for a, c in enumerate(classes)]
    self.class_means = [self.add_weight(shape=(c, width), initializer='zeros', trainable=False,
                                        name=f'class_means{a}') for a, c in enumerate(classes)]
    self.class_counts = [self.add_weight(shape=(c,), initializer='zeros', trainable=False,
                                         name=f'class_counts{a}') for a, c in enumerate(classes)]
    x = tf.zeros((1, feature_size))
    self.embed(x)
    if kind == 'cls':
      self.logits(x)
    self.built = True  # every weight exists: Keras may save and load them

  def embed(self, x: tf.Tensor) -> tf.Tensor:
    """(B, n, width): every attribute's feature, L2-normalised."""
    return tf.math.l2_normalize(tf.stack([e(x) for e in self.embedders], axis=1), -1)

  def logits(self, x: tf.Tensor, training: bool = False) -> list[tf.Tensor]:
    """Cls-Concat's (B, C_a) class scores per attribute."""
    return [head(self.dropout(e(x), training=training))
            for e, head in zip(self.embedders, self.heads)]

  @property
  def trainable_parts(self) -> list[tf.Variable]:
    return ([v for e in self.embedders for v in e.trainable_variables]
            + [v for h in self.heads for v in h.trainable_variables] + self.dictionaries)


def _build(kind: str, run) -> ConcatBaseline:
  size, names, classes = feature_shape(run)
  return ConcatBaseline(kind, size, names, classes, run.flam.flam_concat_width,
                        run.flam.flam_hidden)


def build_cls_concat(run) -> ConcatBaseline:
  return _build('cls', run)


def build_emb_concat(run) -> ConcatBaseline:
  return _build('emb', run)
