"""FLAM's networks (Shin et al., paper 003, §3, Fig. 1): they work on a frozen feature x of another
run (what that run's search compares), not on images.

```
x ─ φ_a (one embedder per manipulated attribute type) ─> e_a ∈ R^k      dictionary d_a: C_a × k
x ⊕ e ─ G ─> x̃ = x + Δ(x ⊕ e)                                          the manipulated feature
x ─ D ─┬─ real/fake logit (1)                                            Eq. 3
       └─ feature matching f(x) (n·k, or k without the remaining attributes)   Eq. 4
```
FLAM gives k = 32 and no layer sizes; the choices here (stated in `flags/flam.flags`): one hidden
layer of `hidden` units in each embedder, two in G and D (ReLU in G, leaky ReLU 0.2 in D, as the
GANs it builds on), and G residual, so an untrained G starts at the identity x̃ = x, which the
cycle loss (Eq. 5) also asks of G(G(x, e⁻), e).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import keras
import tensorflow as tf

from tf_partfash.attributes import attribute


@dataclasses.dataclass(frozen=True)
class FlamShape:
  """The sizes of a FLAM: its feature, attribute types and their class counts."""
  feature_size: int
  classes: tuple[int, ...]        # C_a of each manipulated attribute type, in order
  embedding_size: int = 32        # k (FLAM §4.1)
  hidden: int = 512
  remaining: bool = True          # D matches the remaining attributes too (Table 3's "M")
  names: tuple[str, ...] = ()     # the attribute of each type (`attributes.ATTRIBUTES`)


def feature_shape(run) -> tuple[int, tuple[str, ...], tuple[int, ...]]:
  """(feature size, attribute names, class counts) of a feature method's run
  (`workdir.RunConfig` with `features_from` and `flam`)."""
  names = run.flam.attributes
  return (run.features_from.feature_size, names,
          tuple(attribute(name).num_values for name in names))


def build_flam(run) -> Flam:
  """The FLAM of a run (`methods.METHODS['flam']`)."""
  size, names, classes = feature_shape(run)
  return Flam(FlamShape(size, classes, run.flam.flam_embedding_size, run.flam.flam_hidden,
                        run.flam.flam_remaining, names))


def mlp(units: Sequence[int], out: int, activation: Any, name: str,
         last: str = 'glorot_uniform') -> keras.Sequential:
  layers = []
  for i, u in enumerate(units):
    layers += [keras.layers.Dense(u, name=f'{name}_dense{i}'), activation()]
  return keras.Sequential(layers + [keras.layers.Dense(out, kernel_initializer=last,
                                                       name=f'{name}_out')], name=name)


class Flam(keras.Model):
  """Embedders with their dictionaries, the generator and the discriminator of one FLAM."""

  def __init__(self, shape: FlamShape, **kwargs: Any):
    super().__init__(**kwargs)
    self.sizes = shape
    k, h = shape.embedding_size, shape.hidden
    self.embedders = [mlp([h], k, keras.layers.ReLU, f'embedder{a}')
                      for a in range(len(shape.classes))]
    self.dictionaries = [self.add_weight(shape=(c, k), initializer='glorot_uniform',
                                         name=f'dictionary{a}')
                         for a, c in enumerate(shape.classes)]
    # Labelled training images per class: a class without any has an untaught d_a.
    self.class_counts = [self.add_weight(shape=(c,), initializer='zeros', trainable=False,
                                         name=f'class_counts{a}')
                         for a, c in enumerate(shape.classes)]
    leaky = lambda: keras.layers.LeakyReLU(negative_slope=0.2)
    # Its last layer starts at zero: G starts as the identity.
    self.generator_delta = mlp([2 * h, 2 * h], shape.feature_size, keras.layers.ReLU,
                                'generator', last='zeros')
    self.discriminator_body = mlp([2 * h], h, leaky, 'discriminator')
    self.real_fake = keras.layers.Dense(1, name='real_fake')
    matched = len(shape.classes) * k if shape.remaining else k
    self.matching = keras.layers.Dense(matched, name='matching')
    self.build_all()

  @property
  def names(self) -> tuple[str, ...]:
    return self.sizes.names

  def build_all(self) -> None:
    x = tf.zeros((1, self.sizes.feature_size))
    e = self.embed(x)
    self.generate(x, e[:, 0])
    self.discriminate(x)
    self.built = True  # every weight exists: Keras may save and load them

  def embed(self, x: tf.Tensor) -> tf.Tensor:
    """(B, n, k): φ_a(x) of every attribute type, on the unit sphere (Eq. 1 compares directions
    only, so G sees embeddings and dictionary vectors of one scale)."""
    return tf.math.l2_normalize(tf.stack([embedder(x) for embedder in self.embedders], axis=1),
                                -1)

  def dictionary(self, attribute: int) -> tf.Tensor:
    """(C_a, k): the class vectors d_a, on the unit sphere."""
    return tf.math.l2_normalize(self.dictionaries[attribute], -1)

  def generate(self, x: tf.Tensor, e: tf.Tensor) -> tf.Tensor:
    """G(x ⊕ e) = x + Δ: the feature of x with the attribute that e embeds."""
    return x + self.generator_delta(tf.concat([x, e], axis=-1))

  def discriminate(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(real/fake logits (B, 1), feature matching f(x) (B, n·k or k))."""
    body = tf.nn.leaky_relu(self.discriminator_body(x), 0.2)
    return self.real_fake(body), self.matching(body)

  def manipulate(self, x: tf.Tensor, changes: Sequence[tuple[int, tf.Tensor]]) -> tf.Tensor:
    """§3.3: x̃ = G(x, d_{a_i}) for each (attribute type, class indices (B,)) in turn: two
    changes are applied one after the other."""
    for kind, classes in changes:
      x = self.generate(x, tf.gather(self.dictionary(kind), classes))
    return x
