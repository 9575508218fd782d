"""The input pipeline's uint8 stage and the training images' pixel cache (--input_cache=pixels):
golden values, cached batches bitwise equal to decoded ones, resumption, bad input."""
import logging
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tf_partfash.inputs import pipeline, pixel_cache


def test_to_caffe_is_bgr_minus_the_caffe_mean():
  rgb = tf.constant([[[10.0, 20.0, 30.0], [255.0, 0.0, 0.0]]])
  # (R, G, B) = (10, 20, 30) -> (B, G, R) = (30, 20, 10) minus (104, 117, 124).
  np.testing.assert_array_equal(pipeline.to_caffe(rgb).numpy(),
                                [[[-74.0, -97.0, -114.0], [-104.0, -117.0, 131.0]]])


def test_pixels_at_their_own_size_are_the_file_and_rounded_when_resized(tmp_path):
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
  Image.fromarray(image).save(tmp_path / 'a.png')
  pixels = pipeline.load_pixels(tf.constant(str(tmp_path / 'a.png')), 20).numpy()
  assert pixels.dtype == np.uint8
  np.testing.assert_array_equal(pixels, image)
  # 2 x 2 -> 1 x 1 averages the four: (0 + 1 + 1 + 1) / 4 = 0.75 rounds to 1, not truncated to 0.
  Image.fromarray(np.array([[[0] * 3, [1] * 3], [[1] * 3, [1] * 3]], np.uint8)).save(
      tmp_path / 'b.png')
  assert pipeline.load_pixels(tf.constant(str(tmp_path / 'b.png')), 1).numpy().tolist() == [
      [[1, 1, 1]]]


def _train_examples(tiny_synthetic, tmp_path):
  from tf_partfash.config import DataConfig
  from tf_partfash.inputs.prepared import prepare
  data = prepare(DataConfig(data_dir=tiny_synthetic), str(tmp_path))
  return data.examples.subset(data.rows('train'))


def test_cached_batches_are_the_decoded_batches(tiny_synthetic, tmp_path):
  train = _train_examples(tiny_synthetic, tmp_path)
  file = pixel_cache.pixel_cache_file(str(tmp_path), train.files, 64)
  pixels = pixel_cache.ensure_pixel_cache(train.files, 64, file)
  assert pixels.shape == (len(train), 64, 64, 3) and isinstance(pixels, np.memmap)
  order = np.random.default_rng(1).permutation(len(train))[:24]
  config = pipeline.PipelineConfig(image_size=64, batch_size=8, flip=True, seed=3)
  for decoded, cached in zip(pipeline.make_dataset(train, order, config, epoch=2),
                             pipeline.make_dataset(train, order, config, epoch=2, pixels=pixels),
                             strict=True):
    for key in decoded:
      np.testing.assert_array_equal(decoded[key].numpy(), cached[key].numpy(), err_msg=key)
  # Another size or another image is another file.
  assert pixel_cache.pixel_cache_file(str(tmp_path), train.files, 65) != file
  os.utime(train.files[0], ns=(0, 0))
  assert pixel_cache.pixel_cache_file(str(tmp_path), train.files, 64) != file


def test_an_interrupted_build_resumes_from_its_last_chunk(tiny_synthetic, tmp_path, monkeypatch,
                                                         caplog):
  train = _train_examples(tiny_synthetic, tmp_path)
  files = train.files[:40]
  monkeypatch.setattr(pixel_cache, 'CHUNK', 16)
  whole = pixel_cache.ensure_pixel_cache(files, 32, str(tmp_path / 'whole.npy'))
  real_write, calls = pixel_cache.atomic.write_json, []

  def killed_after_one_chunk(file, blob):
    calls.append(blob)
    if len(calls) == 2:
      raise KeyboardInterrupt  # as Ctrl-C during the second chunk's record
    real_write(file, blob)
  monkeypatch.setattr(pixel_cache.atomic, 'write_json', killed_after_one_chunk)
  file = str(tmp_path / 'resumed.npy')
  with pytest.raises(KeyboardInterrupt):
    pixel_cache.ensure_pixel_cache(files, 32, file)
  assert not os.path.exists(file) and os.path.exists(f'{file}.partial.npy')
  with caplog.at_level(logging.INFO):
    resumed = pixel_cache.ensure_pixel_cache(files, 32, file)
  assert 'resuming at image 16' in caplog.text
  np.testing.assert_array_equal(resumed, whole)
  assert not [n for n in os.listdir(tmp_path) if n.startswith('resumed.npy.partial')]


def test_a_damaged_cache_is_built_again_saying_so(tiny_synthetic, tmp_path, caplog):
  files = _train_examples(tiny_synthetic, tmp_path).files[:8]
  file = tmp_path / 'pixels.npy'
  whole = np.array(pixel_cache.ensure_pixel_cache(files, 32, str(file)))
  with open(file, 'r+b') as f:  # truncate -s: cut short
    f.truncate(file.stat().st_size // 2)
  with caplog.at_level(logging.WARNING):
    again = pixel_cache.ensure_pixel_cache(files, 32, str(file))
  assert f'the pixel cache {file} is damaged (ValueError: ' in caplog.text
  np.testing.assert_array_equal(again, whole)
  file.write_bytes(b'')  # emptied
  np.testing.assert_array_equal(pixel_cache.ensure_pixel_cache(files, 32, str(file)), whole)


def test_a_corrupt_image_or_a_foreign_file_is_an_error_naming_it(tmp_path):
  good, corrupt = tmp_path / 'good.png', tmp_path / 'corrupt.png'
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(good)
  corrupt.write_bytes(b'not an image')
  with pytest.raises(pipeline.CorruptImageError, match='corrupt.png'):
    pixel_cache.ensure_pixel_cache([str(good), str(corrupt)], 8, str(tmp_path / 'p.npy'))
  np.save(tmp_path / 'other.npy', np.zeros((2, 8, 8, 3), np.float32))
  with pytest.raises(ValueError, match=r'other.npy holds float32 pixels of shape \(2, 8, 8, 3\)'):
    pixel_cache.ensure_pixel_cache([str(good), str(good)], 8, str(tmp_path / 'other.npy'))


def test_a_training_with_the_cache_builds_it_beside_the_data_and_reads_it(tiny_method_run,
                                                                          tmp_path):
  import shutil

  import tensorflow as tf

  from tf_partfash.config import DataConfig
  from tf_partfash.inputs.prepared import prepare
  from tf_partfash.training import run as run_module
  run, workdir, _ = tiny_method_run('classic', steps_per_epoch=1, stage1_epochs=1,
                                    stage2_epochs=0)
  data_dir = tmp_path / 'data'  # a copy: the cache is written beside it
  shutil.copytree(run.data.data_dir, data_dir)
  data = prepare(DataConfig(data_dir=str(data_dir)), workdir)
  strategy = tf.distribute.get_strategy()
  with pytest.raises(ValueError, match="input_cache='jpeg'; valid values: none, pixels"):
    run_module._trainer(run, workdir, data, strategy, 'jpeg')
  trainer = run_module._trainer(run, workdir, data, strategy, 'pixels')
  train = data.examples.subset(data.rows('train'))
  size = run.model.image_size
  assert trainer.pixels.shape == (len(train), size, size, 3)
  assert trainer.pixels.filename == pixel_cache.pixel_cache_file(str(data_dir), train.files, size)
  trainer.run()
  assert int(trainer.optimizer.iterations.numpy()) == 1
