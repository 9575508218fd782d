"""Writes the built-in synthetic dataset in the Shopping100k layout, for use as --data_dir.

  python -m tf_partfash.synthetic --out_dir DIR --images 101021 [--width 762 --height 1100]
      [--seed 0] [--workers 2]

Rerunning resumes an interrupted generation; a directory holding another dataset is an error.
train.py generates its default dataset itself; this is for a dataset of another size (such as
Shopping100k's, for benchmarks/rehearse_shopping100k.sh) read like the real one.
"""
from __future__ import annotations

import argparse

from tf_partfash.cli import exit_on_user_error
from tf_partfash.synthetic.dataset import ensure_dataset

PROG = 'python -m tf_partfash.synthetic'


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--out_dir', required=True)
  parser.add_argument('--images', type=int, required=True)
  parser.add_argument('--width', type=int, default=381)
  parser.add_argument('--height', type=int, default=550)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--workers', type=int, default=1)
  args = parser.parse_args(argv)
  exit_on_user_error(PROG, lambda: print(ensure_dataset(
      args.out_dir, args.images, args.seed, args.width, args.height, args.workers)))


if __name__ == '__main__':
  main()
