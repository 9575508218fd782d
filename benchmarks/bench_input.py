r"""Images per second of the training input pipeline per CPU core, and what a cache would save.

  python benchmarks/bench_input.py --data_dir=DIR [--image_size=227] [--images=512]
      [--threads=1,2] [--steps] [--output_json=input.json]

Per thread count (tf.data's private thread pool and TensorFlow's op pools all set to it), the
images per second of three ways to feed the same batches of 64 through the training pipeline
itself (`inputs.pipeline.make_dataset`, random flips with their boxes):
  - `jpeg`: from the files, as training reads them without a cache: read each JPEG, decode it
    (DCT-scaled to no less than the input size), resize to the square input, round to uint8,
    flip, BGR mean, batch;
  - `resized_jpeg`: the same from a copy of each image already resized to the input size and
    saved as a JPEG (quality 95): the smallest cache on disk, not chosen (see docs/benchmarks.md);
  - `pixels`: from the pixel cache of `train.py --input_cache=pixels` (`inputs.pixel_cache`:
    the decoded, resized uint8 pixels in one memory-mapped .npy, 155 KB an image at 227 px).
The ratios to `jpeg` are measured side by side in one run, the three alternating pass by pass.

With `--steps`, the first steps of reading an image are timed alone instead, the same way, to
find the one that keeps the JPEG pipeline from using a second core: `read` (the file's bytes),
`decode` (the DCT-scaled JPEG decode the pipeline does), `resize_antialias` (decode, then the
pipeline's antialiased bilinear resize) and `resize_area` (decode, then an area resize, for
comparison). A step whose rate does not grow with the threads does not run in parallel.
DIR is a dataset in the Shopping100k layout (the real size is 762 x 1100: e.g. the output of
`python -m tf_partfash.synthetic.dataset --width=762 --height=1100`).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile
import time

import numpy as np


def _configure(threads: int) -> None:
  import tensorflow as tf
  tf.config.threading.set_inter_op_parallelism_threads(threads)
  tf.config.threading.set_intra_op_parallelism_threads(threads)


def _options(threads: int):
  """tf.data options that run a pipeline on `threads` threads, each op on one."""
  import tensorflow as tf
  options = tf.data.Options()
  options.threading.private_threadpool_size = threads
  options.threading.max_intra_op_parallelism = 1
  return options


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
  from tf_partfash.inputs.pipeline import Examples, PipelineConfig, make_dataset
  n = len(files)

  def examples(names):
    return Examples(files=np.array(names), labels=np.zeros((n, 12), np.int32),
                    boxes=np.tile([[0.1, 0.1, 0.9, 0.9]], (n, 6, 1)).astype(np.float32),
                    present=np.ones((n, 6), bool), case=np.zeros(n, np.int32))
  options = _options(threads)
  config = PipelineConfig(image_size=size, batch_size=64, flip=True)
  order = np.arange(n)
  return {name: make_dataset(examples(names), order, config, pixels=cached).with_options(options)
          for name, names, cached in (('jpeg', files, None), ('resized_jpeg', copies, None),
                                      ('pixels', files, pixels))}


STEPS = ('read', 'decode', 'resize_antialias', 'resize_area')


def _steps(files: list[str], size: int, threads: int):
  import tensorflow as tf

  from tf_partfash.inputs.pipeline import _decode
  names = tf.constant(files)

  def decoded(k):
    return tf.cast(_decode(tf.io.read_file(names[k]), size), tf.float32)
  steps = {
      'read': lambda k: tf.strings.length(tf.io.read_file(names[k])),
      'decode': lambda k: _decode(tf.io.read_file(names[k]), size),
      'resize_antialias': lambda k: tf.image.resize(decoded(k), (size, size), antialias=True),
      'resize_area': lambda k: tf.image.resize(decoded(k), (size, size), method='area'),
  }
  options = _options(threads)
  return {name: tf.data.Dataset.range(len(files)).map(
      steps[name], num_parallel_calls=threads, deterministic=True).batch(64).prefetch(2)
          .with_options(options) for name in STEPS}


def _print_steps(records: list[dict], files: list[str], size: int) -> None:
  print(f'{len(files)} images -> {size} px, images/s of each step alone')
  print(f'{"threads":>7} ' + ' '.join(f'{name:>16}' for name in STEPS))
  for r in records:
    print(f'{r["threads"]:>7} ' + ' '.join(f'{r["images_per_s"][name]:>16.0f}' for name in STEPS))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--data_dir', required=True)
  parser.add_argument('--image_size', type=int, default=227)
  parser.add_argument('--images', type=int, default=512)
  parser.add_argument('--threads', default='1,2')
  parser.add_argument('--rounds', type=int, default=3)
  parser.add_argument('--scratch', default=os.path.join(tempfile.gettempdir(), 'bench_input'))
  parser.add_argument('--steps', action='store_true',
                      help="time the first steps of reading an image alone (see above)")
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
    if args.steps:
      _print_steps(records, files, args.image_size)
      if args.output_json:
        with open(args.output_json, 'w', encoding='utf-8') as f:
          json.dump({'images': len(files), 'image_size': args.image_size, 'records': records},
                    f, indent=1)
      return
    from PIL import Image
    with Image.open(files[0]) as im:
      size = f'{im.width}x{im.height}'
    print(f'{len(files)} images of {size} -> {args.image_size} px, batches of 64, images/s '
          f'(median of {args.rounds} passes)')
    print(f'{"threads":>7} {"jpeg":>8} {"resized_jpeg":>13} {"pixels":>8} {"resized/jpeg":>13} '
          f'{"pixels/jpeg":>12}')
    for r in records:
      rate = r['images_per_s']
      print(f'{r["threads"]:>7} {rate["jpeg"]:>8.0f} {rate["resized_jpeg"]:>13.0f} '
            f'{rate["pixels"]:>8.0f} {rate["resized_jpeg"] / rate["jpeg"]:>12.2f}x '
            f'{rate["pixels"] / rate["jpeg"]:>11.2f}x')
    if args.output_json:
      with open(args.output_json, 'w', encoding='utf-8') as f:
        json.dump({'images': len(files), 'image_size': args.image_size, 'source_size': size,
                   'records': records}, f, indent=1)
    return
  _configure(args._threads)
  if args.steps:
    pipelines, copies = _steps(files, args.image_size, args._threads), None
  else:
    from tf_partfash.inputs.pixel_cache import ensure_pixel_cache, pixel_cache_file
    copies = _resized_copies(files, args.image_size,
                             os.path.join(args.scratch, f'resized_{args.image_size}'))
    pixels = ensure_pixel_cache(files, args.image_size,
                                pixel_cache_file(args.scratch, files, args.image_size))
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
  record = {'threads': args._threads,
            'images_per_s': {k: len(files) / float(np.median(v)) for k, v in times.items()}}
  if copies:
    record['cache_kb_per_image'] = {
        'resized_jpeg': float(np.mean([os.path.getsize(c) for c in copies])) / 1e3,
        'pixels': args.image_size ** 2 * 3 / 1e3}
  print(json.dumps(record))


if __name__ == '__main__':
  main()
