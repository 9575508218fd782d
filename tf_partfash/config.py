"""Frozen configurations of a run: the network (`ModelConfig`) and its training (`TrainConfig`).

Kept free of TensorFlow so that entry points can parse and check flags without importing it.
Fields with `metadata={'choices': ...}` become enum flags in train.py and are validated here.
"""
from __future__ import annotations

import dataclasses
from typing import Any


def check_choices(config: Any) -> None:
  """Validates the dataclass fields that declare `metadata={'choices': ...}`."""
  for field in dataclasses.fields(config):
    choices = field.metadata.get('choices')
    if choices and getattr(config, field.name) not in choices:
      raise ValueError(f'{field.name}={getattr(config, field.name)!r}; valid values: '
                       + ', '.join(choices))


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
                                    metadata={'choices': ('euclidean', 'squared')})
  flip: bool = True
  seed: int = 0
  checkpoint_every_secs: float = 60.0
  log_every_secs: float = 20.0

  def __post_init__(self):
    check_choices(self)
