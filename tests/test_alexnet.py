"""Tests for the AlexNet backbone and the Caffe weight loader (tf_partfash/models/alexnet.py)."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_partfash.models.alexnet import (GroupedConv2D, LocalResponseNorm, MIN_IMAGE_SIZE,
                                        build_alexnet, conv5_size, load_alexnet_weights)

# Caffe-converted bvlc_alexnet shapes (HWIO kernel, bias); grouped layers see half the depth.
CAFFE_SHAPES = {
    'conv1': ((11, 11, 3, 96), (96,)),
    'conv2': ((5, 5, 48, 256), (256,)),
    'conv3': ((3, 3, 256, 384), (384,)),
    'conv4': ((3, 3, 192, 384), (384,)),
    'conv5': ((3, 3, 192, 256), (256,)),
}


def fake_caffe_weights(seed: int = 0) -> dict[str, list[np.ndarray]]:
  """Random weights with the real bvlc_alexnet shapes, fc layers included (they are ignored)."""
  rng = np.random.default_rng(seed)
  data = {name: [rng.normal(0, 0.01, w).astype(np.float32), rng.normal(0, 0.1, b).astype(
      np.float32)] for name, (w, b) in CAFFE_SHAPES.items()}
  data['fc6'] = [np.zeros((9216, 4), np.float32), np.zeros((4,), np.float32)]
  return data


def save_npy(path, data) -> str:
  np.save(path, data, allow_pickle=True)
  return str(path)


@pytest.mark.parametrize('size, conv5, pool5', [(227, 13, 6), (163, 9, 4)])
def test_output_shapes(size, conv5, pool5):
  # 227: conv1 (227-11)/4+1 = 55, pool 27, pool 13 (conv5), pool5 6.
  # 163: conv1 (163-11)/4+1 = 39, pool 19, pool 9 (conv5), pool5 4.
  assert conv5_size(size) == conv5
  out = build_alexnet(size)(np.zeros((2, size, size, 3), np.float32))
  assert set(out) == {'conv5', 'pool5'}
  assert tuple(out['conv5'].shape) == (2, conv5, conv5, 256)
  assert tuple(out['pool5'].shape) == (2, pool5, pool5, 256)


def test_minimum_image_size():
  # conv5 >= 8 needs pool1 >= 17, conv1 >= 35, (s - 11) // 4 >= 34, s >= 147.
  assert MIN_IMAGE_SIZE == 147
  assert conv5_size(147) == 8 and conv5_size(146) == 7
  with pytest.raises(ValueError, match=r'image_size=146 gives a 7x7 conv5.*image_size >= 147'):
    build_alexnet(146)
  assert build_alexnet(147).output['conv5'].shape[1:3] == (8, 8)


def test_parameter_count():
  # W + b per layer (Caffe conv1-conv5, grouped layers with half input depth):
  #   conv1 11*11*3*96   + 96  =  34,848 +  96 =    34,944
  #   conv2  5*5*48*256  + 256 = 307,200 + 256 =   307,456
  #   conv3  3*3*256*384 + 384 = 884,736 + 384 =   885,120
  #   conv4  3*3*192*384 + 384 = 663,552 + 384 =   663,936
  #   conv5  3*3*192*256 + 256 = 442,368 + 256 =   442,624
  #   total                                      2,334,080
  model = build_alexnet()
  assert model.count_params() == 2_334_080
  for name, (w, b) in CAFFE_SHAPES.items():
    layer = model.get_layer(name)
    assert tuple(layer.kernel.shape) == w and tuple(layer.bias.shape) == b


def test_batch_norm_variant():
  model = build_alexnet(163, norm='batch')
  names = [layer.name for layer in model.layers]
  assert not any(isinstance(layer, LocalResponseNorm) for layer in model.layers)
  assert names.index('conv3') < names.index('bn3') < names.index('relu3') < names.index('conv4')
  # Same kernels plus gamma, beta, moving mean and variance for 96 + 256 + 384 + 384 + 256 channels.
  assert model.count_params() == 2_334_080 + 4 * 1376
  with pytest.raises(ValueError, match="norm='group'; valid values: lrn, batch"):
    build_alexnet(norm='group')


def test_he_normal_initialisation():
  model = build_alexnet(norm='batch')
  # He-normal std sqrt(2 / fan_in): conv3 fan_in 3*3*256, grouped conv4 fan_in 3*3*192 per group.
  assert np.std(model.get_layer('conv3').kernel.numpy()) == pytest.approx(0.029463, rel=0.01)
  assert np.std(model.get_layer('conv4').kernel.numpy()) == pytest.approx(0.034021, rel=0.01)
  assert not np.any(model.get_layer('conv4').bias.numpy())


@pytest.mark.parametrize('filters, kernel_size, depth', [(256, 5, 96), (384, 3, 384)])
def test_grouped_conv_matches_keras_groups(filters, kernel_size, depth):
  x = np.random.default_rng(1).normal(0, 1, (2, 9, 9, depth)).astype(np.float32)
  ref = keras.layers.Conv2D(filters, kernel_size, padding='same', groups=2, activation='relu')
  ours = GroupedConv2D(filters, kernel_size, activation='relu')
  expected = ref(x)
  ours(x)
  bias = np.random.default_rng(2).normal(0, 1, filters).astype(np.float32)
  ref.set_weights([ref.get_weights()[0], bias])
  ours.set_weights(ref.get_weights())
  diff = np.max(np.abs(ours(x).numpy() - ref(x).numpy()))
  assert diff < 1e-4
  assert np.max(np.abs(expected.numpy() - ours(x).numpy())) > 0.1  # The bias change mattered.


def test_grouped_conv_rejects_indivisible_depth():
  with pytest.raises(ValueError, match='input depth 5 not divisible by groups=2'):
    GroupedConv2D(8, 3, name='g')(np.zeros((1, 4, 4, 5), np.float32))


def caffe_lrn(a: np.ndarray, size: int = 5, alpha: float = 1e-4, beta: float = 0.75,
              k: float = 1.0) -> np.ndarray:
  """Caffe ACROSS_CHANNELS LRN: a_i / (k + alpha / size * sum_{window} a_j^2)^beta."""
  out = np.empty_like(a)
  depth, half = a.shape[-1], size // 2
  for i in range(depth):
    window = a[..., max(0, i - half):min(depth, i + half + 1)]
    out[..., i] = a[..., i] / (k + alpha / size * np.sum(window ** 2, axis=-1)) ** beta
  return out


def test_lrn_matches_caffe_formula():
  # Three channels of 100 all share one window: 100 / (1 + 1e-4/5 * 3e4)^0.75 = 100 / 1.6^0.75.
  flat = LocalResponseNorm()(np.full((1, 1, 1, 3), 100.0, np.float32)).numpy()
  np.testing.assert_allclose(flat.ravel(), [70.292666] * 3, rtol=1e-5)
  # Values ~100 make alpha * sum ~ 1, so the normalisation is far from the identity.
  a = np.random.default_rng(3).normal(0, 100, (2, 3, 4, 9)).astype(np.float32)
  got = LocalResponseNorm()(a).numpy()
  np.testing.assert_allclose(got, caffe_lrn(a), rtol=1e-5, atol=1e-4)
  assert np.max(np.abs(got - a)) > 10


def test_save_load_round_trip(tmp_path):
  x = np.random.default_rng(4).normal(0, 50, (2, 147, 147, 3)).astype(np.float32)
  for norm in ('lrn', 'batch'):
    model = build_alexnet(147, norm=norm)
    path = str(tmp_path / f'{norm}.keras')
    model.save(path)
    loaded = keras.models.load_model(path)
    want, got = model(x), loaded(x)
    for key in ('conv5', 'pool5'):
      np.testing.assert_array_equal(got[key].numpy(), want[key].numpy())


def conv1_by_hand(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
  return tf.nn.relu(tf.nn.conv2d(x, w, strides=4, padding='VALID') + b).numpy()


@pytest.mark.parametrize('variant', ['list', 'dict'])
def test_load_weights(tmp_path, variant):
  data = fake_caffe_weights()
  if variant == 'dict':
    data = {k: {'weights': w, 'biases': b} for k, (w, b) in data.items()}
  path = save_npy(tmp_path / 'bvlc_alexnet.npy', data)
  model = build_alexnet(163)
  load_alexnet_weights(model, path)
  for name in CAFFE_SHAPES:
    w, b = (data[name]['weights'], data[name]['biases']) if variant == 'dict' else data[name]
    np.testing.assert_array_equal(model.get_layer(name).kernel.numpy(), w)
    np.testing.assert_array_equal(model.get_layer(name).bias.numpy(), b)
  x = np.random.default_rng(5).normal(0, 50, (2, 163, 163, 3)).astype(np.float32)
  conv1 = keras.Model(model.input, model.get_layer('conv1').output)(x).numpy()
  w, b = (data['conv1']['weights'], data['conv1']['biases']) if variant == 'dict' else data['conv1']
  np.testing.assert_allclose(conv1, conv1_by_hand(x, w, b), rtol=1e-5, atol=1e-4)
  assert conv1.shape == (2, 39, 39, 96) and np.mean(conv1 > 0) > 0.2


def test_load_weights_into_batch_norm_variant(tmp_path):
  data = fake_caffe_weights()
  model = build_alexnet(163, norm='batch')
  load_alexnet_weights(model, save_npy(tmp_path / 'w.npy', data))
  np.testing.assert_array_equal(model.get_layer('conv5').kernel.numpy(), data['conv5'][0])


def test_load_weights_missing_layer(tmp_path):
  data = fake_caffe_weights()
  del data['conv4']
  path = save_npy(tmp_path / 'w.npy', data)
  with pytest.raises(ValueError, match=r'w\.npy: missing layer\(s\) conv4'):
    load_alexnet_weights(build_alexnet(163), path)


def test_load_weights_shape_mismatch_leaves_model_untouched(tmp_path):
  data = fake_caffe_weights()
  # A kernel with full input depth, as a converter that ignored groups would write it.
  data['conv5'][0] = np.zeros((3, 3, 384, 256), np.float32)
  path = save_npy(tmp_path / 'w.npy', data)
  model = build_alexnet(163)
  before = model.get_layer('conv1').kernel.numpy()
  with pytest.raises(ValueError, match=r"w\.npy: layer 'conv5' W has shape \(3, 3, 384, 256\), "
                                       r'the model expects \(3, 3, 192, 256\)'):
    load_alexnet_weights(model, path)
  np.testing.assert_array_equal(model.get_layer('conv1').kernel.numpy(), before)


def test_load_weights_bad_files(tmp_path):
  model = build_alexnet(163)
  array_file = save_npy(tmp_path / 'array.npy', np.zeros((3, 4), np.float32))
  with pytest.raises(ValueError, match=r'array\.npy: expected a pickled dict.*ndarray of shape'):
    load_alexnet_weights(model, array_file)
  text_file = tmp_path / 'text.npy'
  text_file.write_text('not numpy\n')
  with pytest.raises(ValueError, match=r'text\.npy: not a pickled AlexNet weight dict'):
    load_alexnet_weights(model, str(text_file))
  with pytest.raises(FileNotFoundError, match=r'absent\.npy: AlexNet weight file not found'):
    load_alexnet_weights(model, str(tmp_path / 'absent.npy'))
  bad_entry = save_npy(tmp_path / 'entry.npy', {**fake_caffe_weights(), 'conv2': 'oops'})
  with pytest.raises(ValueError, match=r"entry\.npy: layer 'conv2' must be \[W, b\]"):
    load_alexnet_weights(model, bad_entry)
