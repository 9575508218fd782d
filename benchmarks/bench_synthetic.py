"""Throughput of the synthetic dataset generator: images per minute with 1 and 2 workers.

  python benchmarks/bench_synthetic.py [--num_images 600] [--width 381 --height 550]

Wall-clock time of `synthetic.generate` (rendering, JPEG writing, attribute and parts files) into a
temporary directory; the machine's other load counts too, so run it on a quiet machine.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from tf_partfash.synthetic import dataset as synthetic


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--num_images', type=int, default=600)
  parser.add_argument('--width', type=int, default=381)
  parser.add_argument('--height', type=int, default=550)
  args = parser.parse_args()
  print(f'{args.num_images} images of {args.width}x{args.height}, cpu count {os.cpu_count()}')
  rates = {}
  for workers in (1, 2):
    with tempfile.TemporaryDirectory() as out:
      start = time.perf_counter()
      synthetic.generate(out, args.num_images, seed=0, width=args.width, height=args.height,
                         workers=workers)
      seconds = time.perf_counter() - start
    rates[workers] = args.num_images / seconds * 60
    print(f'workers={workers}: {seconds:.1f} s, {rates[workers]:.0f} images/minute')
  print(f'speed-up 2 vs 1 workers: {rates[2] / rates[1]:.2f}x')


if __name__ == '__main__':
  main()
