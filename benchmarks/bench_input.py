r"""Images per second of the training input pipeline per CPU core, and what a cache would save.

  python benchmarks/bench_input.py --data_dir=DIR [--image_size=227] [--images=512]
      [--threads=1,2] [--output_json=input.json]

Per thread count (tf.data's private thread pool and TensorFlow's op pools all set to it), the
images per second of three ways to feed the same batches of 64 (random flips with their boxes
included, as `inputs.pipeline.make_dataset` makes them):
  - `jpeg`: the pipeline as it trains today: read each JPEG, decode it (DCT-scaled to no less
    than the input size), resize to the square input, BGR mean, flip, batch;
  - `resized_jpeg`: the same from a copy of each image already resized to the input size and
    saved as a JPEG (quality 95): a cache on disk (8.9 KB an image for the synthetic ones);
  - `uint8`: the same from decoded, resized uint8 pixels held in an array (a memory-mapped file
    would serve them alike): 155 KB an image at 227 px.
The ratios to `jpeg` are measured side by side in one run, the three alternating pass by pass.
DIR is a dataset in the Shopping100k layout (the real size is 762 x 1100: e.g. the output of
`python -m tf_partfash.synthetic.dataset --width=762 --height=1100`).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

import numpy as np


def _configure(threads: int) -> None:
  import tensorflow as tf
  tf.config.threading.set_inter_op_parallelism_threads(threads)
  tf.config.threading.set_intra_op_parallelism_threads(threads)


def _resized_copies(files: list[str], size: int, folder: str) -> list[str]:
  from PIL import Image
  os.makedirs(folder, exist_ok=True)
  out = []
  for k, file in enumerate(files):
    target = os.path.join(folder, f'{k:06d}.jpg')
    if not os.path.exists(target):
      with Image.open(file) as im:
        im.convert('RGB').resize((size, size), Image.BILINEAR).save(target, quality=95)
    out.append(target)
  return out


def _pipelines(files: list[str], copies: list[str], pixels: np.ndarray, size: int, threads: int):
  import tensorflow as tf

  from tf_partfash.inputs.pipeline import BGR_MEAN, flip_example, load_image
  n = len(files)
  boxes = tf.constant(np.tile([[0.1, 0.1, 0.9, 0.9]], (n, 6, 1)).astype(np.float32))
  present = tf.constant(np.ones((n, 6), bool))
  options = tf.data.Options()
  options.threading.private_threadpool_size = threads
  options.threading.max_intra_op_parallelism = 1

  def finish(image, index):
    coin = tf.random.stateless_uniform([], seed=tf.stack([tf.constant(0, tf.int64), index]))
    image, b, p = tf.cond(coin < 0.5, lambda: flip_example(image, boxes[index], present[index]),
                          lambda: (image, boxes[index], present[index]))
    return {'image': image, 'boxes': b, 'present': p}

  def from_files(names):
    names = tf.constant(names)
    return lambda index: finish(load_image(names[index], size), index)

  table = tf.constant(pixels)

  def from_pixels(index):
    image = tf.cast(table[index], tf.float32)[..., ::-1] - tf.constant(BGR_MEAN)
    return finish(image, index)

  def dataset(load):
    ds = tf.data.Dataset.range(n).map(load, num_parallel_calls=threads, deterministic=True)
    return ds.batch(64).prefetch(2).with_options(options)

  return {'jpeg': dataset(from_files(files)), 'resized_jpeg': dataset(from_files(copies)),
          'uint8': dataset(from_pixels)}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--data_dir', required=True)
  parser.add_argument('--image_size', type=int, default=227)
  parser.add_argument('--images', type=int, default=512)
  parser.add_argument('--threads', default='1,2')
  parser.add_argument('--rounds', type=int, default=3)
  parser.add_argument('--scratch', default=os.path.join('/tmp', 'bench_input'))
  parser.add_argument('--output_json')
  parser.add_argument('--_threads', type=int, help=argparse.SUPPRESS)
  args = parser.parse_args()
  files = sorted(glob.glob(os.path.join(args.data_dir, 'Images', '**', '*.jpg'),
                           recursive=True))[:args.images]
  if not files:
    sys.exit(f'no images under {args.data_dir}/Images')
  if args._threads is None:  # one process per thread count: TF's pools are set once
    import subprocess
    records = []
    for threads in (int(t) for t in args.threads.split(',')):
      out = subprocess.run([sys.executable, os.path.abspath(__file__), *sys.argv[1:],
                            f'--_threads={threads}'], capture_output=True, text=True)
      if out.returncode:
        sys.exit(out.stderr[-3000:])
      records.append(json.loads(out.stdout.strip().splitlines()[-1]))
    from PIL import Image
    with Image.open(files[0]) as im:
      size = f'{im.width}x{im.height}'
    print(f'{len(files)} images of {size} -> {args.image_size} px, batches of 64, images/s '
          f'(median of {args.rounds} passes)')
    print(f'{"threads":>7} {"jpeg":>8} {"resized_jpeg":>13} {"uint8":>8} {"resized/jpeg":>13} '
          f'{"uint8/jpeg":>11}')
    for r in records:
      rate = r['images_per_s']
      print(f'{r["threads"]:>7} {rate["jpeg"]:>8.0f} {rate["resized_jpeg"]:>13.0f} '
            f'{rate["uint8"]:>8.0f} {rate["resized_jpeg"] / rate["jpeg"]:>12.2f}x '
            f'{rate["uint8"] / rate["jpeg"]:>10.2f}x')
    if args.output_json:
      with open(args.output_json, 'w', encoding='utf-8') as f:
        json.dump({'images': len(files), 'image_size': args.image_size, 'source_size': size,
                   'records': records}, f, indent=1)
    return
  _configure(args._threads)
  from PIL import Image
  copies = _resized_copies(files, args.image_size,
                           os.path.join(args.scratch, f'resized_{args.image_size}'))
  pixels = np.stack([np.asarray(Image.open(c).convert('RGB')) for c in copies])
  pipelines = _pipelines(files, copies, pixels, args.image_size, args._threads)
  times = {name: [] for name in pipelines}
  for name, ds in pipelines.items():  # warm-up: tracing and the page cache
    for _ in ds:
      pass
  for _ in range(args.rounds):
    for name, ds in pipelines.items():
      start = time.perf_counter()
      for _ in ds:
        pass
      times[name].append(time.perf_counter() - start)
  print(json.dumps({'threads': args._threads,
                    'images_per_s': {k: len(files) / float(np.median(v))
                                     for k, v in times.items()},
                    'cache_kb_per_image': {
                        'resized_jpeg': float(np.mean([os.path.getsize(c) for c in copies])) / 1e3,
                        'uint8': args.image_size ** 2 * 3 / 1e3}}))


if __name__ == '__main__':
  main()
