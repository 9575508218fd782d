r"""Training curves of one or more runs from their TensorBoard logs, one panel per scalar.

  python scripts/plot_training_curves.py runs/table2/amnet runs/amnet_long \
      --stage 2 --output amnet_curves.png [--tags loss/total,loss/classification,loss/triplet]

Reads `<workdir>/tensorboard/stage<N>/events.*` (what `training.Trainer` writes: the mean of each
loss over the batches since the previous summary) and prints, per run and tag, the first and last
value and the mean of the last fifth of the points, against that of the fifth before it, which
says whether the curve still falls.
"""
from __future__ import annotations

import argparse
import glob
import os

import numpy as np


def read_scalars(workdir: str, stage: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """tag -> (steps, values) of a run's stage, in step order."""
  import tensorflow as tf
  found: dict[str, list[tuple[int, float]]] = {}
  files = sorted(glob.glob(os.path.join(workdir, 'tensorboard', f'stage{stage}', 'events.*')))
  if not files:
    raise FileNotFoundError(f'no TensorBoard events under {workdir}/tensorboard/stage{stage}')
  for file in files:
    for event in tf.compat.v1.train.summary_iterator(file):
      for value in event.summary.value:
        number = (float(tf.make_ndarray(value.tensor)) if value.HasField('tensor')
                  else value.simple_value)
        found.setdefault(value.tag, []).append((event.step, number))
  return {tag: tuple(np.array(v) for v in zip(*sorted(points))) for tag, points in found.items()}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('workdirs', nargs='+')
  parser.add_argument('--stage', type=int, default=2)
  parser.add_argument('--tags', default='loss/total,loss/classification,loss/triplet')
  parser.add_argument('--output', required=True)
  args = parser.parse_args()
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  tags = args.tags.split(',')
  runs = {w: read_scalars(w, args.stage) for w in args.workdirs}
  fig, axes = plt.subplots(1, len(tags), figsize=(5 * len(tags), 4), squeeze=False)
  for ax, tag in zip(axes[0], tags):
    for workdir, scalars in runs.items():
      if tag not in scalars:
        continue
      steps, values = scalars[tag]
      ax.plot(steps, values, label=os.path.basename(os.path.normpath(workdir)))
      fifth = max(1, len(values) // 5)
      last, before = values[-fifth:].mean(), values[-2 * fifth:-fifth].mean()
      print(f'{workdir} stage {args.stage} {tag}: {len(values)} points, first {values[0]:.4f}, '
            f'last {values[-1]:.4f}; mean of the last fifth {last:.4f}, of the fifth before '
            f'{before:.4f}')
    ax.set(title=f'stage {args.stage}: {tag}', xlabel='step')
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(args.output, dpi=100)
  print(f'wrote {args.output}')


if __name__ == '__main__':
  main()
