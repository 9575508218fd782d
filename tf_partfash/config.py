"""Frozen configurations of a run: the network (`ModelConfig`) and its training (`TrainConfig`).

Kept free of TensorFlow so that entry points can parse and check flags without importing it.
Fields with `metadata={'choices': ...}` become enum flags in train.py and are validated here.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

# The smallest input that leaves AlexNet's conv5 8x8 (`models.alexnet.MIN_IMAGE_SIZE`, which
# imports TensorFlow; a test keeps the two equal).
MIN_IMAGE_SIZE = 147
# d of Eq. 3-6: the Euclidean distance (the paper's) or its square.
DISTANCES: tuple[str, ...] = ('euclidean', 'squared')
# Part extraction (`tf_partfash.parts`): jump detection on the silhouette (§4.3), or its points
# predicted by a regressor taught on a few hundred of its results (§7.5).
PART_EXTRACTORS: tuple[str, ...] = ('jumps', 'regression')
# Where training reads its images: the files, or their decoded pixels cached once
# (`inputs.pixel_cache`; the same batches, faster).
INPUT_CACHES: tuple[str, ...] = ('none', 'pixels')


def check_distance(distance: str) -> None:
  if distance not in DISTANCES:
    raise ValueError(f'unknown distance {distance!r}; valid distances: {", ".join(DISTANCES)}')


@dataclasses.dataclass(frozen=True)
class Interval:
  """The valid values of a numeric setting: from `low` (excluded when `low_open`) to below `high`.
  NaN and infinities are in none, so `--stage1_learning_rate=nan` stops before anything starts."""
  low: float = 0.0
  high: float = math.inf
  low_open: bool = False

  def __contains__(self, value: float) -> bool:
    return (math.isfinite(value) and value < self.high
            and (value > self.low if self.low_open else value >= self.low))

  def __str__(self) -> str:
    text = f'{"above" if self.low_open else "at least"} {self.low:g}'
    return text + (f' and below {self.high:g}' if self.high < math.inf else '')


def check_choices(config: Any) -> None:
  """Validates the dataclass fields that declare `metadata={'choices': ...}`."""
  for field in dataclasses.fields(config):
    choices = field.metadata.get('choices')
    if choices and getattr(config, field.name) not in choices:
      raise ValueError(f'{field.name}={getattr(config, field.name)!r}; valid values: '
                       + ', '.join(choices))


def check_ranges(config: Any, ranges: Mapping[str, Interval]) -> None:
  """Validates numeric fields against their `Interval`; an error names the field and value."""
  for name, interval in ranges.items():
    value = getattr(config, name)
    if value not in interval:
      raise ValueError(f'{name}={value!r}: must be a finite number {interval}')


_POSITIVE, _NON_NEGATIVE, _FRACTION = Interval(0, low_open=True), Interval(0), Interval(0, 1)
# The valid values of each numeric setting (train.py also checks each flag against them).
MODEL_RANGES: dict[str, Interval] = {
    'image_size': Interval(MIN_IMAGE_SIZE), 'hidden_size': _POSITIVE, 'signature_size': _POSITIVE,
    'dropout': _FRACTION}
TRAIN_RANGES: dict[str, Interval] = {
    'stage1_epochs': _NON_NEGATIVE, 'stage2_epochs': _NON_NEGATIVE,
    'stage1_learning_rate': _POSITIVE, 'stage2_learning_rate': _POSITIVE, 'momentum': _FRACTION,
    'weight_decay': _NON_NEGATIVE, 'warmup_steps': _NON_NEGATIVE, 'batch_size': _POSITIVE,
    'margin': _NON_NEGATIVE, 'triplet_weight': _NON_NEGATIVE, 'seed': _NON_NEGATIVE,
    'checkpoint_every_secs': _NON_NEGATIVE, 'log_every_secs': _NON_NEGATIVE,
    'steps_per_epoch': _NON_NEGATIVE}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Architecture of the part network and its ablations (the paper gives no layer sizes)."""
  image_size: int = 227
  # 'lrn' (Caffe AlexNet, for ImageNet weights) or 'batch' (from-scratch training).
  backbone_norm: str = dataclasses.field(default='lrn', metadata={'choices': ('lrn', 'batch')})
  hidden_size: int = 1024           # fc6 of each path
  signature_size: int = 256         # fc7 of each path: equal for all S + 1 so Eq. 4 weighs them equally
  dropout: float = 0.5
  use_parts: bool = True            # False: the "w/o parts" ablation, every branch sees the whole map
  # Inference-time gating: the "Extract Parts?" head's case, or part extraction's.
  gate: str = dataclasses.field(default='head', metadata={'choices': ('head', 'extraction')})

  def __post_init__(self):
    check_choices(self)
    check_ranges(self, MODEL_RANGES)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Optimisation settings of both stages (paper §6: SGD, learning rate 0.01, 30 epochs)."""
  stage1_epochs: int = 30
  stage2_epochs: int = 10
  stage1_learning_rate: float = 0.01
  stage2_learning_rate: float = 0.001
  optimizer: str = dataclasses.field(default='sgd', metadata={'choices': ('sgd', 'adamw')})
  momentum: float = 0.9
  weight_decay: float = 5e-4
  # Per stage: constant, or cosine decay to 0 at the stage's end.
  schedule: str = dataclasses.field(default='constant',
                                    metadata={'choices': ('constant', 'cosine')})
  warmup_steps: int = 0             # linear warm-up at the start of each stage
  batch_size: int = 64
  margin: float = 0.2               # m of Eq. 3
  triplet_weight: float = 1.0
  # d of Eq. 3.
  distance: str = dataclasses.field(default='euclidean',
                                    metadata={'choices': DISTANCES})
  flip: bool = True
  seed: int = 0
  checkpoint_every_secs: float = 60.0
  log_every_secs: float = 20.0
  # Batches per epoch: 0 = the whole training set; N = the first N of each epoch's order (a short
  # run through the whole chain, such as benchmarks/rehearse_shopping100k.sh).
  steps_per_epoch: int = 0

  def __post_init__(self):
    check_choices(self)
    check_ranges(self, TRAIN_RANGES)
    if self.stage1_epochs + self.stage2_epochs < 1:
      raise ValueError(f'stage1_epochs={self.stage1_epochs} and stage2_epochs='
                       f'{self.stage2_epochs}: nothing to train; give at least one epoch')
