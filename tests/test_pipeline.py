"""tf.data pipeline: decoding, Caffe preprocessing, flips with their boxes, corrupt files."""
import logging

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tf_partfash.inputs import pipeline
from tf_partfash.parts.boxes import PART_NAMES

SLEEVE_L, SLEEVE_R = PART_NAMES.index('left_sleeve'), PART_NAMES.index('right_sleeve')


def _examples(files, boxes=None, present=None):
  n = len(files)
  if boxes is None:
    boxes = np.tile(np.array([0.0, 0.0, 1.0, 1.0], np.float32), (n, 6, 1))
  if present is None:
    present = np.zeros((n, 6), bool)
  return pipeline.Examples(files=np.array([str(f) for f in files]),
                           labels=np.zeros((n, 12), np.int32), boxes=boxes, present=present,
                           case=np.ones(n, np.int32))


@pytest.fixture
def half_black_jpeg(tmp_path):
  """A 400x600 portrait JPEG: left half black, right half white."""
  pixels = np.zeros((600, 400, 3), np.uint8)
  pixels[:, 200:] = 255
  file = tmp_path / 'half.jpg'
  Image.fromarray(pixels).save(file, quality=95)
  return file


def test_png_gets_caffe_bgr_mean_subtracted(tmp_path):
  file = tmp_path / 'red.png'
  Image.fromarray(np.full((30, 20, 3), (255, 0, 0), np.uint8)).save(file)
  image = pipeline.load_image(tf.constant(str(file)), 8).numpy()
  assert image.shape == (8, 8, 3)
  # Red in RGB is (0, 0, 255) in BGR; minus the BGR mean (104, 117, 124).
  np.testing.assert_allclose(image[4, 4], [-104.0, -117.0, 131.0], atol=1e-3)


def test_jpeg_downscaled_decode_keeps_content(half_black_jpeg):
  # 400 // 8 = 50 >= 50: decoded at 1/8 scale, then resized; halves must stay where they were.
  image = pipeline.load_image(tf.constant(str(half_black_jpeg)), 50).numpy()
  np.testing.assert_allclose(image[25, 5], [-104, -117, -124], atol=4)
  np.testing.assert_allclose(image[25, 45], [151, 138, 131], atol=4)


def test_flip_mirrors_boxes_and_swaps_sleeves():
  image = tf.reshape(tf.range(2 * 3 * 3, dtype=tf.float32), (2, 3, 3))
  boxes = np.tile(np.array([0.0, 0.0, 1.0, 1.0], np.float32), (6, 1))
  boxes[SLEEVE_L] = [0.2, 0.05, 0.7, 0.25]
  present = np.zeros(6, bool)
  present[SLEEVE_L] = True
  flipped, fboxes, fpresent = pipeline.flip_example(image, tf.constant(boxes), tf.constant(present))
  np.testing.assert_array_equal(flipped.numpy(), image.numpy()[:, ::-1])
  np.testing.assert_allclose(fboxes.numpy()[SLEEVE_R], [0.2, 0.75, 0.7, 0.95], atol=1e-6)
  np.testing.assert_allclose(fboxes.numpy()[SLEEVE_L], [0.0, 0.0, 1.0, 1.0])
  assert fpresent.numpy().tolist() == [False, False, False, False, True, False]


def test_dataset_matches_eager_and_flips_consistently(half_black_jpeg):
  boxes = np.tile(np.array([0.0, 0.0, 1.0, 1.0], np.float32), (4, 6, 1))
  boxes[:, SLEEVE_L] = [0.1, 0.0, 0.5, 0.3]
  present = np.zeros((4, 6), bool)
  present[:, SLEEVE_L] = True
  examples = _examples([half_black_jpeg] * 4, boxes, present)
  eager = pipeline.load_image(tf.constant(str(half_black_jpeg)), 32).numpy()
  config = pipeline.PipelineConfig(image_size=32, batch_size=4, flip=True, seed=3)
  batch = next(iter(pipeline.make_dataset(examples, np.arange(4), config, epoch=0)))
  assert batch['image'].shape == (4, 32, 32, 3)
  for k in range(4):
    image = batch['image'][k].numpy()
    was_flipped = bool(batch['present'][k, SLEEVE_R])
    np.testing.assert_allclose(image, eager[:, ::-1] if was_flipped else eager, atol=1e-4)
    expected = [0.1, 0.7, 0.5, 1.0] if was_flipped else [0.1, 0.0, 0.5, 0.3]
    np.testing.assert_allclose(batch['boxes'][k, SLEEVE_R if was_flipped else SLEEVE_L],
                               expected, atol=1e-6)
  # Same (seed, epoch) -> same flips; the flips over many epochs are not all the same.
  again = next(iter(pipeline.make_dataset(examples, np.arange(4), config, epoch=0)))
  np.testing.assert_array_equal(again['present'].numpy(), batch['present'].numpy())
  patterns = {tuple(next(iter(pipeline.make_dataset(examples, np.arange(4), config, epoch=e)))
                    ['present'][:, SLEEVE_R].numpy()) for e in range(8)}
  assert len(patterns) > 1


def test_order_and_index_follow_the_sampler(half_black_jpeg, tmp_path):
  other = tmp_path / 'white.png'
  Image.fromarray(np.full((60, 40, 3), 255, np.uint8)).save(other)
  examples = _examples([half_black_jpeg, other, half_black_jpeg])
  config = pipeline.PipelineConfig(image_size=16, batch_size=2)
  batches = list(pipeline.make_dataset(examples, np.array([1, 0, 1]), config,
                                       drop_remainder=False))
  assert [b['index'].numpy().tolist() for b in batches] == [[1, 0], [1]]
  np.testing.assert_allclose(batches[0]['image'][0, 8, 8], [151, 138, 131], atol=1e-3)


def test_an_eager_batch_is_bitwise_the_pipelines(half_black_jpeg, tmp_path):
  # A JPEG, and a PNG with a transparent half (composited on white): what a served photo reads.
  rgba = np.zeros((50, 40, 4), np.uint8)
  rgba[:, :20] = (200, 30, 30, 255)
  cut_out = tmp_path / 'cut_out.png'
  Image.fromarray(rgba, 'RGBA').save(cut_out)
  examples = _examples([half_black_jpeg, cut_out, half_black_jpeg])
  rows = np.array([2, 1])
  config = pipeline.PipelineConfig(image_size=24, batch_size=2)
  batch = next(iter(pipeline.make_dataset(examples, rows, config, drop_remainder=False)))
  eager = pipeline.eager_batch(examples, rows, 24)
  assert set(eager) == set(batch)
  for key in batch:
    np.testing.assert_array_equal(eager[key].numpy(), batch[key].numpy(), err_msg=key)
  corrupt = tmp_path / 'corrupt.jpg'
  corrupt.write_bytes(half_black_jpeg.read_bytes()[:300])
  with pytest.raises(pipeline.CorruptImageError, match='corrupt.jpg'):
    pipeline.eager_batch(_examples([corrupt]), np.array([0]), 24)


def test_corrupt_image_error_names_the_file(half_black_jpeg, tmp_path):
  corrupt = tmp_path / 'corrupt.jpg'
  corrupt.write_bytes(half_black_jpeg.read_bytes()[:300])
  examples = _examples([half_black_jpeg, half_black_jpeg, corrupt, half_black_jpeg])
  order = np.arange(4)
  config = pipeline.PipelineConfig(image_size=16, batch_size=2)
  dataset = pipeline.make_dataset(examples, order, config)
  with pytest.raises(pipeline.CorruptImageError, match='corrupt.jpg'):
    list(pipeline.iterate_batches(dataset, examples, order, 2))


def test_skip_unreadable_drops_and_logs(half_black_jpeg, tmp_path, caplog):
  corrupt = tmp_path / 'corrupt.png'
  corrupt.write_bytes(b'not an image')
  files = [str(half_black_jpeg), str(corrupt)]
  with caplog.at_level(logging.WARNING):
    keep = pipeline.readable(files)
  assert np.asarray(files)[keep].tolist() == [str(half_black_jpeg)]
  assert 'skipped 1 unreadable image(s) of 2' in caplog.text and 'corrupt.png' in caplog.text


def test_test_images_take_their_parts_from_the_image_alone(tiny_synthetic, tmp_path, monkeypatch):
  """Training images: the label settles "Extract Parts?" (§4.3); gallery and query images: the
  image alone decides (§4.2), as for a shopper's photo; `label_case` keeps the labels' case.
  Labels that call every garment upper body make the two rules differ on the trousers."""
  import shutil

  from tf_partfash.config import DataConfig
  from tf_partfash.inputs.prepared import prepare
  from tf_partfash.parts import CASES, compute_parts, dataset as parts_dataset
  monkeypatch.setattr(parts_dataset, 'lower_body_of', lambda category: False)
  data_dir = str(tmp_path / 'data')
  # Without the part caches other tests may have written beside the shared dataset: computed
  # here, under the patched rule.
  shutil.copytree(tiny_synthetic, data_dir, ignore=shutil.ignore_patterns('parts_v*'))
  data = prepare(DataConfig(data_dir=data_dir), str(tmp_path))
  labelled = compute_parts(data_dir, data.table, progress=False)
  from_image = compute_parts(data_dir, data.table, progress=False, case_from='image')
  test = set(data.rows('gallery', 'query').tolist())
  differ = 0
  for row, path in enumerate(data.table['path']):
    expected = from_image[path] if row in test else labelled[path]
    assert data.examples.case[row] == CASES.index(expected.case), path
    np.testing.assert_array_equal(data.examples.present[row], expected.as_arrays()[1])
    assert data.label_case[row] == CASES.index(labelled[path].case)
    differ += row in test and labelled[path].case != from_image[path].case
  assert differ  # the image, not the label, decided
