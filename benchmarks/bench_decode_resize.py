r"""Which step of reading a training image keeps the JPEG pipeline from using a second core.

  python benchmarks/bench_decode_resize.py --data_dir=DIR [--images=256] [--threads=1,2]
      [--output_json=decode_resize.json]

Per thread count (tf.data's private thread pool and TensorFlow's op pools set to it, one process
each), images per second of the first steps of `inputs.pipeline.load_pixels` alone, side by
side: `read` (the file's bytes), `decode` (the DCT-scaled JPEG decode the pipeline does),
`resize_antialias` (decode, then the pipeline's antialiased bilinear resize to 227 px) and
`resize_area` (decode, then an area resize, for comparison). A step whose rate does not grow
with the threads is the one that does not run in parallel.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import time

STEPS = ('read', 'decode', 'resize_antialias', 'resize_area')


def _measure(files: list[str], threads: int, size: int, rounds: int) -> dict[str, float]:
  import tensorflow as tf
  tf.config.threading.set_inter_op_parallelism_threads(threads)
  tf.config.threading.set_intra_op_parallelism_threads(threads)
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
  options = tf.data.Options()
  options.threading.private_threadpool_size = threads
  options.threading.max_intra_op_parallelism = 1
  rates = {}
  for name in STEPS:
    ds = tf.data.Dataset.range(len(files)).map(steps[name], num_parallel_calls=threads,
                                                deterministic=True)
    ds = ds.batch(64).prefetch(2).with_options(options)
    for _ in ds:  # warm-up: tracing and the page cache
      pass
    start = time.perf_counter()
    for _ in range(rounds):
      for _ in ds:
        pass
    rates[name] = rounds * len(files) / (time.perf_counter() - start)
  return rates


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--data_dir', required=True)
  parser.add_argument('--images', type=int, default=256)
  parser.add_argument('--image_size', type=int, default=227)
  parser.add_argument('--threads', default='1,2')
  parser.add_argument('--rounds', type=int, default=2)
  parser.add_argument('--output_json')
  parser.add_argument('--_threads', type=int, help=argparse.SUPPRESS)
  args = parser.parse_args()
  files = sorted(glob.glob(os.path.join(args.data_dir, 'Images', '**', '*.jpg'),
                           recursive=True))[:args.images]
  if not files:
    sys.exit(f'no images under {args.data_dir}/Images')
  if args._threads is not None:
    print(json.dumps(_measure(files, args._threads, args.image_size, args.rounds)))
    return
  records = []
  for threads in (int(t) for t in args.threads.split(',')):  # TF's pools are set once a process
    out = subprocess.run([sys.executable, os.path.abspath(__file__), *sys.argv[1:],
                          f'--_threads={threads}'], capture_output=True, text=True)
    if out.returncode:
      sys.exit(out.stderr[-3000:])
    records.append({'threads': threads,
                    'images_per_s': json.loads(out.stdout.strip().splitlines()[-1])})
  print(f'{len(files)} images -> {args.image_size} px, images/s of each step alone')
  print(f'{"threads":>7} ' + ' '.join(f'{name:>16}' for name in STEPS))
  for r in records:
    print(f'{r["threads"]:>7} ' + ' '.join(f'{r["images_per_s"][name]:>16.0f}' for name in STEPS))
  if args.output_json:
    with open(args.output_json, 'w', encoding='utf-8') as f:
      json.dump({'images': len(files), 'image_size': args.image_size, 'records': records}, f,
                indent=1)


if __name__ == '__main__':
  main()
