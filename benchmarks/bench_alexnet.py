"""Training-step throughput of AlexNet with `GroupedConv2D` vs `keras.layers.Conv2D(groups=2)`.

Builds `build_alexnet` twice, the second with conv2/conv4/conv5 swapped for `Conv2D(groups=2)`,
and times one forward+backward+SGD step of each, interleaved so that load from other processes
hits both alike. Prints the median img/s of each and their ratio.

  python -m benchmarks.bench_alexnet [--batch 64] [--size 163] [--warmup 3] [--steps 10]
"""
from __future__ import annotations

import argparse
import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from tf_partfash.models.alexnet import GroupedConv2D, build_alexnet


def with_keras_groups(model: keras.Model) -> keras.Model:
  """`model` with every `GroupedConv2D` replaced by the equivalent `Conv2D(groups=...)`."""
  def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
    if isinstance(layer, GroupedConv2D):
      return keras.layers.Conv2D(layer.filters, layer.kernel_size, padding='same',
                                 groups=layer.groups, activation=layer.activation,
                                 kernel_initializer='he_normal', name=layer.name)
    return layer.__class__.from_config(layer.get_config())
  return keras.models.clone_model(model, clone_function=clone)


def make_step(model: keras.Model):
  optimizer = keras.optimizers.SGD(0.001, momentum=0.9)

  @tf.function
  def step(images: tf.Tensor) -> tf.Tensor:
    with tf.GradientTape() as tape:
      out = model(images, training=True)
      loss = tf.reduce_mean(tf.square(out['pool5'])) + tf.reduce_mean(out['conv5'])
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss
  return step


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--batch', type=int, default=64)
  parser.add_argument('--size', type=int, default=163)
  parser.add_argument('--warmup', type=int, default=3)
  parser.add_argument('--steps', type=int, default=10)
  args = parser.parse_args()

  ours = build_alexnet(args.size)
  candidates = {'GroupedConv2D (two halves)': ours,
                'Conv2D(groups=2)': with_keras_groups(ours)}
  steps = {name: make_step(m) for name, m in candidates.items()}
  images = tf.constant(np.random.default_rng(0).normal(
      0, 50, (args.batch, args.size, args.size, 3)).astype(np.float32))
  for step in steps.values():
    for _ in range(args.warmup):
      step(images).numpy()
  times: dict[str, list[float]] = {name: [] for name in steps}
  for _ in range(args.steps):
    for name, step in steps.items():
      start = time.perf_counter()
      step(images).numpy()
      times[name].append(time.perf_counter() - start)

  print(f'batch {args.batch}, {args.size}x{args.size}, {args.steps} timed steps after '
        f'{args.warmup} warm-up, median of forward+backward+SGD step')
  rates = {}
  for name, ts in times.items():
    rates[name] = args.batch / statistics.median(ts)
    print(f'  {name:28s} {rates[name]:7.1f} img/s  (median {statistics.median(ts) * 1e3:.0f} ms)')
  fast, slow = rates['GroupedConv2D (two halves)'], rates['Conv2D(groups=2)']
  print(f'  ratio GroupedConv2D / Conv2D(groups=2): {fast / slow:.2f}x')


if __name__ == '__main__':
  main()
