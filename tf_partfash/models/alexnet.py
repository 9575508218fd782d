"""The AlexNet conv1-conv5 backbone (§4.2) and its ImageNet (Caffe `bvlc_alexnet`) weight loader (§6).

The paper keeps AlexNet "from conv-1 to conv-5" unchanged and starts from pretrained weights
(§6). The general path reads `pool5`; the part path crops parts from `conv5` with
`tf.image.crop_and_resize` (§4.2, §6), so `build_alexnet` exposes both.

Layout follows Caffe `bvlc_alexnet` (input BGR, mean-subtracted, by default 227x227):

  conv1 11x11/4 96 VALID, ReLU, LRN, max pool 3x3/2
  conv2 5x5 256 groups 2 pad 2, ReLU, LRN, max pool 3x3/2
  conv3 3x3 384 pad 1, ReLU
  conv4 3x3 384 groups 2 pad 1, ReLU
  conv5 3x3 256 groups 2 pad 1, ReLU, max pool 3x3/2 (pool5)

Caffe rounds pooling output sizes up, Keras `VALID` pooling rounds down; the two agree whenever
`(size - 3)` is even at each pool, which holds at 227 (55 -> 27 -> 13 -> 6) and at 163
(39 -> 19 -> 9 -> 4), so pretrained features are reproduced exactly there.
"""
from __future__ import annotations

import itertools
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tf_partfash.errors import UserError

CONV_NAMES: tuple[str, ...] = ('conv1', 'conv2', 'conv3', 'conv4', 'conv5')
NORMS: tuple[str, ...] = ('lrn', 'batch')
# Part crops from conv5 need some spatial resolution to be meaningful (§4.3).
MIN_CONV5_SIZE = 8
# Keras' default 0.99 leaves the moving statistics far from the data after the few hundred steps
# of a CPU run, so inference-mode outputs lag the trained network; 0.9 settles in ~50 steps.
BN_MOMENTUM = 0.9


def batch_norm(name: str) -> keras.layers.BatchNormalization:
  """The networks' BatchNorm. Built under a strategy of several replicas, its batch statistics
  are those of the global batch (synchronised over the replicas), so a distributed step equals
  one device's step on the same global batch; on one device it is Keras' usual layer."""
  replicas = tf.distribute.get_strategy().num_replicas_in_sync
  return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, synchronized=replicas > 1,
                                         name=name)


@keras.saving.register_keras_serializable(package='tf_partfash')
class LocalResponseNorm(keras.layers.Layer):
  """Caffe across-channel LRN: `a_i / (k + alpha/n * sum_{|j-i|<=n//2} a_j^2)^beta`.

  `tf.nn.local_response_normalization` multiplies its `alpha` by the plain window sum, so Caffe's
  `alpha=1e-4, local_size=5` becomes `alpha=2e-5, depth_radius=2` here.
  """

  def __init__(self, depth_radius: int = 2, alpha: float = 2e-5, beta: float = 0.75,
               bias: float = 1.0, **kwargs: Any):
    super().__init__(**kwargs)
    self.depth_radius = depth_radius
    self.alpha = alpha
    self.beta = beta
    self.bias = bias

  def call(self, inputs: tf.Tensor) -> tf.Tensor:
    return tf.nn.local_response_normalization(inputs, depth_radius=self.depth_radius,
                                              bias=self.bias, alpha=self.alpha, beta=self.beta)

  def get_config(self) -> dict[str, Any]:
    return {**super().get_config(), 'depth_radius': self.depth_radius, 'alpha': self.alpha,
            'beta': self.beta, 'bias': self.bias}


@keras.saving.register_keras_serializable(package='tf_partfash')
class GroupedConv2D(keras.layers.Layer):
  """A stride-1 `same`-padded grouped convolution, run as one convolution per channel group.

  Equivalent to `keras.layers.Conv2D(groups=groups)` with the same weights and the same kernel
  layout `(kh, kw, in_depth // groups, filters)` (output channels grouped contiguously, as in
  Caffe), but several times faster on CPU in TF 2.21 (see `benchmarks/bench_alexnet.py`).
  One kernel variable is kept, in Caffe's layout, so converted weights load unchanged; it is
  sliced per group in `call`.
  """

  def __init__(self, filters: int, kernel_size: int, groups: int = 2,
               activation: str | None = None,
               kernel_initializer: str = 'he_normal', **kwargs: Any):
    super().__init__(**kwargs)
    if filters % groups:
      raise ValueError(f'{self.name}: filters={filters} not divisible by groups={groups}')
    self.filters = filters
    self.kernel_size = kernel_size
    self.groups = groups
    self.activation = keras.activations.get(activation)
    self.kernel_initializer = keras.initializers.get(kernel_initializer)

  def build(self, input_shape: tuple[int | None, ...]) -> None:
    depth = input_shape[-1]
    if depth % self.groups:
      raise ValueError(f'{self.name}: input depth {depth} not divisible by groups={self.groups}')
    self.kernel = self.add_weight(
        name='kernel', shape=(self.kernel_size, self.kernel_size, depth // self.groups,
                              self.filters), initializer=self.kernel_initializer)
    self.bias = self.add_weight(name='bias', shape=(self.filters,), initializer='zeros')

  def call(self, inputs: tf.Tensor) -> tf.Tensor:
    xs = tf.split(inputs, self.groups, axis=-1)
    ks = tf.split(self.kernel, self.groups, axis=-1)
    y = tf.concat([tf.nn.conv2d(x, k, strides=1, padding='SAME') for x, k in zip(xs, ks)],
                  axis=-1)
    return self.activation(tf.nn.bias_add(y, self.bias))

  def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
    return (*input_shape[:-1], self.filters)

  def get_config(self) -> dict[str, Any]:
    return {**super().get_config(), 'filters': self.filters, 'kernel_size': self.kernel_size,
            'groups': self.groups, 'activation': keras.activations.serialize(self.activation),
            'kernel_initializer': keras.initializers.serialize(self.kernel_initializer)}


def conv5_size(image_size: int) -> int:
  """Side of the conv5 map (= conv1 VALID 11/4, two VALID 3/2 pools; conv2-5 keep size)."""
  size = (image_size - 11) // 4 + 1
  for _ in range(2):
    size = (size - 3) // 2 + 1
  return size


def _min_image_size() -> int:
  return next(s for s in itertools.count(11) if conv5_size(s) >= MIN_CONV5_SIZE)


MIN_IMAGE_SIZE = _min_image_size()  # 147: conv1 35, pool1 17, conv5 8.


def build_alexnet(image_size: int = 227, norm: str = 'lrn', name: str = 'alexnet') -> keras.Model:
  """AlexNet conv1-pool5 (§4.2) taking `(batch, image_size, image_size, 3)` BGR mean-subtracted.

  Returns a model whose output is the dict `{'conv5': (b, s, s, 256), 'pool5': (b, p, p, 256)}`
  with `s = conv5_size(image_size)` (13 at 227) and `p = (s - 3) // 2 + 1` (6 at 227); both are
  post-ReLU. Convolutions are named `conv1`..`conv5` for `load_alexnet_weights`.

  `norm='lrn'` is the paper's network (Caffe LRN after ReLU of conv1 and conv2) and is the one
  to use with ImageNet weights. `norm='batch'` puts BatchNorm between each convolution and its
  ReLU and drops LRN: for training from scratch (no pretrained weights) it trains much faster
  and more stably, but it is not the paper's network, and ImageNet kernels, although they still
  load (same shapes; the conv biases are kept, redundant before BatchNorm), were not trained with
  BatchNorm, so their features shift until the BatchNorm statistics adapt. Fresh kernels use
  He-normal initialisation, biases zero.
  """
  if norm not in NORMS:
    raise UserError(f'norm={norm!r}; valid values: {", ".join(NORMS)}')
  if image_size < MIN_IMAGE_SIZE:
    raise UserError(f'image_size={image_size} gives a {conv5_size(image_size)}x'
                    f'{conv5_size(image_size)} conv5 map; at least {MIN_CONV5_SIZE}x'
                    f'{MIN_CONV5_SIZE} is needed, i.e. image_size >= {MIN_IMAGE_SIZE}')
  act = 'relu' if norm == 'lrn' else None

  def after_conv(x: keras.KerasTensor, index: int, lrn: bool) -> keras.KerasTensor:
    if norm == 'lrn':
      return LocalResponseNorm(name=f'norm{index}')(x) if lrn else x
    x = batch_norm(f'bn{index}')(x)
    return keras.layers.ReLU(name=f'relu{index}')(x)

  def pool(x: keras.KerasTensor, index: int) -> keras.KerasTensor:
    return keras.layers.MaxPooling2D(3, 2, padding='valid', name=f'pool{index}')(x)

  image = keras.Input((image_size, image_size, 3), name='image')
  x = keras.layers.Conv2D(96, 11, strides=4, padding='valid', activation=act,
                          kernel_initializer='he_normal', name='conv1')(image)
  x = pool(after_conv(x, 1, lrn=True), 1)
  x = GroupedConv2D(256, 5, activation=act, name='conv2')(x)
  x = pool(after_conv(x, 2, lrn=True), 2)
  x = keras.layers.Conv2D(384, 3, padding='same', activation=act,
                          kernel_initializer='he_normal', name='conv3')(x)
  x = after_conv(x, 3, lrn=False)
  x = GroupedConv2D(384, 3, activation=act, name='conv4')(x)
  x = after_conv(x, 4, lrn=False)
  x = GroupedConv2D(256, 3, activation=act, name='conv5')(x)
  conv5 = after_conv(x, 5, lrn=False)
  return keras.Model(image, {'conv5': conv5, 'pool5': pool(conv5, 5)}, name=name)


def _read_npy_dict(path: str) -> dict[str, Any]:
  try:
    data = np.load(path, encoding='latin1', allow_pickle=True)
  except FileNotFoundError:
    raise FileNotFoundError(f'{path}: AlexNet weight file not found') from None
  except Exception as e:  # np.load raises several types for a non-.npy / corrupt file.
    raise UserError(f'{path}: not a pickled AlexNet weight dict (.npy): {e}') from e
  if isinstance(data, np.ndarray) and data.dtype == object and data.shape == ():
    data = data.item()
  if not isinstance(data, dict):
    raise UserError(f'{path}: expected a pickled dict layer -> [W, b] (bvlc_alexnet.npy), '
                    f'got {type(data).__name__}'
                    + (f' of shape {data.shape}' if isinstance(data, np.ndarray) else ''))
  return data


def _weights_and_bias(path: str, layer: str, entry: Any) -> tuple[np.ndarray, np.ndarray]:
  if isinstance(entry, dict) and {'weights', 'biases'} <= entry.keys():
    w, b = entry['weights'], entry['biases']
  elif isinstance(entry, (list, tuple)) and len(entry) == 2:
    w, b = entry
  else:
    raise UserError(f'{path}: layer {layer!r} must be [W, b] or '
                    f"{{'weights': W, 'biases': b}}, got {type(entry).__name__}")
  return np.asarray(w, np.float32), np.asarray(b, np.float32)


def load_alexnet_weights(model: keras.Model, path: str) -> None:
  """Loads Caffe `bvlc_alexnet.npy` conv1-conv5 weights into `model` (§6); fc6-fc8 are ignored.

  The file is a pickled dict `layer -> [W, b]` (or `layer -> {'weights': W, 'biases': b}`) with
  HWIO kernels; grouped layers' W has half the input depth, the layout `GroupedConv2D` keeps.
  `model` is `build_alexnet(...)` (either `norm`), or any model with layers `conv1`..`conv5`.
  """
  data = _read_npy_dict(path)
  missing = [n for n in CONV_NAMES if n not in data]
  if missing:
    raise UserError(f'{path}: missing layer(s) {", ".join(missing)}; '
                   f'found {", ".join(sorted(map(str, data)))}')
  updates = []
  for layer_name in CONV_NAMES:
    w, b = _weights_and_bias(path, layer_name, data[layer_name])
    layer = model.get_layer(layer_name)
    for what, value, var in (('W', w, layer.kernel), ('b', b, layer.bias)):
      if tuple(value.shape) != tuple(var.shape):
        raise UserError(f'{path}: layer {layer_name!r} {what} has shape {tuple(value.shape)}, '
                        f'the model expects {tuple(var.shape)}')
      updates.append((var, value))
  # Assign only after every layer checked out, so a bad file leaves the model untouched.
  for var, value in updates:
    var.assign(value)
