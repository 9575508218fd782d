r"""Feature-extraction speed of the proposed network against Classic (paper §7.6).

The paper: 7,500 images/min for the proposed network against 10,000 for Classic, 1.33x the cost,
with part extraction done beforehand. Here both networks run the same feature pass
(`models.inference.feature_pass`: the forward pass with its part crops and six branches, the L2
normalisation and softmaxes, and the copy of the results to the host) on the same batches of
preprocessed images and part boxes, timed in interleaved rounds so that load from other
processes hits both alike. Decoding JPEGs is left out: both pay it alike. Two configurations:

  paper: 227 px, Caffe LRN, fc6 1024 / signatures 256 (flags/shopping100k.flags)
  demo:  147 px, BatchNorm, fc6 512 / signatures 128 (flags/demo.flags)

  python benchmarks/bench_features.py [--batch 64] [--rounds 20] [--output_json features.json]

Prints images/min of each network and the ratio (proposed / Classic time per image); the JSON
has one record per configuration and the ratio under `ratio_<image size>`.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import tensorflow as tf

from tf_partfash.config import ModelConfig
from tf_partfash.models.classic import build_classic
from tf_partfash.models.inference import feature_pass
from tf_partfash.models.partnet import build_partnet
from tf_partfash.parts.boxes import PART_NAMES

CONFIGS = {
    'paper': ModelConfig(image_size=227, backbone_norm='lrn', hidden_size=1024,
                         signature_size=256, dropout=0.5),
    'demo': ModelConfig(image_size=147, backbone_norm='batch', hidden_size=512,
                        signature_size=128, dropout=0.1),
}


def batch_of(config: ModelConfig, size: int, seed: int = 0) -> dict[str, tf.Tensor]:
  """Random images and plausible part boxes (every part found: every crop is computed)."""
  rng = np.random.default_rng(seed)
  top = rng.uniform(0.0, 0.5, (size, len(PART_NAMES), 2))
  boxes = np.concatenate([top, top + rng.uniform(0.2, 0.5, top.shape)], axis=-1).clip(0, 1)
  return {'image': tf.constant(rng.normal(0, 50, (size, config.image_size, config.image_size, 3)),
                               tf.float32),
          'boxes': tf.constant(boxes, tf.float32),
          'present': tf.ones((size, len(PART_NAMES)), tf.bool)}


def time_pass(forward, batch) -> float:
  start = time.perf_counter()
  for value in forward(batch).values():
    value.numpy()  # the host transfer is part of the cost
  return time.perf_counter() - start


def measure(name: str, config: ModelConfig, batch_size: int, rounds: int,
            warmup: int) -> dict:
  batch = batch_of(config, batch_size)
  passes = {'proposed': feature_pass(build_partnet(config)),
            'classic': feature_pass(build_classic(config))}
  for forward in passes.values():
    for _ in range(warmup):
      time_pass(forward, batch)
  times: dict[str, list[float]] = {k: [] for k in passes}
  for r in range(rounds):  # the order alternates, so neither always runs first
    for key in (list(passes) if r % 2 == 0 else list(passes)[::-1]):
      times[key].append(time_pass(passes[key], batch))
  per_min = {k: 60.0 * batch_size / statistics.median(v) for k, v in times.items()}
  ratios = sorted(p / c for p, c in zip(times['proposed'], times['classic']))
  ratio = statistics.median(times['proposed']) / statistics.median(times['classic'])
  quartiles = statistics.quantiles(ratios, n=4)
  print(f'{name}: {config.image_size} px, batch {batch_size}, median of {rounds} interleaved '
        f'rounds after {warmup} warm-up')
  for key in passes:
    print(f'  {key:9s} {per_min[key]:8.0f} images/min  '
          f'(median {1e3 * statistics.median(times[key]):.0f} ms per batch)')
  print(f'  ratio proposed / classic: {ratio:.3f}x (per-round ratios, quartiles '
        f'{quartiles[0]:.3f}-{quartiles[2]:.3f}; paper: 10,000 / 7,500 = 1.333x)')
  return {'config': name, 'image_size': config.image_size, 'hidden_size': config.hidden_size,
          'signature_size': config.signature_size, 'backbone_norm': config.backbone_norm,
          'batch': batch_size, 'rounds': rounds, 'images_per_min': per_min,
          f'ratio_{config.image_size}': ratio,
          'round_ratio_quartiles': [quartiles[0], quartiles[2]],
          'device': 'GPU' if tf.config.list_logical_devices('GPU') else 'CPU'}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--batch', type=int, default=64)
  parser.add_argument('--rounds', type=int, default=20)
  parser.add_argument('--warmup', type=int, default=2)
  parser.add_argument('--configs', default='paper,demo', help='comma-separated: paper, demo')
  parser.add_argument('--output_json')
  args = parser.parse_args()
  records = [measure(name, CONFIGS[name], args.batch, args.rounds, args.warmup)
             for name in args.configs.split(',')]
  if args.output_json:
    blob = {'records': records, **{k: v for r in records for k, v in r.items()
                                   if k.startswith('ratio_')}}
    with open(args.output_json, 'w', encoding='utf-8') as f:
      json.dump(blob, f, indent=2)


if __name__ == '__main__':
  main()
