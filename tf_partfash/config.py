"""Frozen configurations of a run: its data (`DataConfig`), network (`ModelConfig`) and training
(`TrainConfig`).

Each setting is declared once, by `setting(default, help, valid)`: its default, its help text and
its valid values (an `Interval` or a tuple of choices). The dataclasses check them when built, and
the entry points derive their flags from them (`tf_partfash.cli.define_config_flags`). Kept free
of TensorFlow so that entry points can parse and check flags without importing it.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from tf_partfash.errors import UserError

# The smallest input that leaves AlexNet's conv5 8x8 (`models.alexnet.MIN_IMAGE_SIZE`, which
# imports TensorFlow; a test keeps the two equal).
MIN_IMAGE_SIZE = 147
# d of Eq. 3-6: the Euclidean distance (the paper's) or its square.
DISTANCES: tuple[str, ...] = ('euclidean', 'squared')
# Nearest-neighbour search (`search.retrieval.Searcher`): exact in numpy, exact in FAISS (squared
# distances only), or the compact index's candidates re-ranked exactly (`search.compact`).
BACKENDS: tuple[str, ...] = ('exact', 'faiss', 'compact')
# Part extraction (`tf_partfash.parts`): jump detection on the silhouette (§4.3), or its points
# predicted by a regressor taught on a few hundred of its results (§7.5).
PART_EXTRACTORS: tuple[str, ...] = ('jumps', 'regression')
# Where training reads its images: the files, or their decoded pixels cached once
# (`inputs.pixel_cache`; the same batches, faster).
INPUT_CACHES: tuple[str, ...] = ('none', 'pixels')
# Mini-batches (`inputs.sampling`): the paper's random ones, or seeded with positive pairs.
SAMPLERS: tuple[str, ...] = ('random', 'balanced')
# Which parts a test image uses (`models.partnet`, `ModelConfig.gate`).
GATES: tuple[str, ...] = ('head', 'head_picks', 'extraction')


def check_distance(distance: str) -> None:
  if distance not in DISTANCES:
    raise UserError(f'unknown distance {distance!r}; valid distances: {", ".join(DISTANCES)}')


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


def setting(default: Any, help: str, valid: Interval | tuple[str, ...] | None = None) -> Any:
  """A configuration field: its default, help text (the flag's) and valid values."""
  metadata: dict[str, Any] = {'help': help}
  if isinstance(valid, Interval):
    metadata['range'] = valid
  elif valid:
    metadata['choices'] = valid
  return dataclasses.field(default=default, metadata=metadata)


def check_value(field: dataclasses.Field, value: Any) -> str | None:
  """Why `value` is not valid for `field` (None: it is); None is valid where it is the default."""
  if value is None and field.default is None:
    return None
  choices, interval = field.metadata.get('choices'), field.metadata.get('range')
  if choices and value not in choices:
    return f'{value!r}; valid values: ' + ', '.join(choices)
  if interval and value not in interval:
    return f'{value!r}: must be a finite number {interval}'
  return None


def check_settings(config: Any) -> None:
  """Validates every field of a configuration; an error names the field and value."""
  for field in dataclasses.fields(config):
    problem = check_value(field, getattr(config, field.name))
    if problem:
      raise UserError(f'{field.name}={problem}')


_POSITIVE, _NON_NEGATIVE, _FRACTION = Interval(0, low_open=True), Interval(0), Interval(0, 1)
# `--alexnet_weights=none`: no ImageNet weights, on purpose.
FROM_SCRATCH = 'none'


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """The data of a run: its dataset, split and part extraction, and the ImageNet weights that
  initialise it. Fields are in run.json's order."""
  part_extractor: str = setting(
      'jumps', "Part extraction (§4.3): 'jumps' (jump detection on the silhouette) or "
      "'regression' (§7.5: its points predicted by a small regressor, taught on first use on 400 "
      'training images).', PART_EXTRACTORS)
  data_dir: str | None = setting(None, 'Dataset in the Shopping100k layout (default: the '
                                 'built-in synthetic dataset, generated on first use).')
  split_seed: int = setting(0, 'Seed of the stored paper split.', _NON_NEGATIVE)
  gallery_images: int | None = setting(
      None, 'Retrieval gallery size of the split (paper §6: 19,000 of 101,021; default: that '
      'proportion of the dataset).', _NON_NEGATIVE)
  query_images: int | None = setting(
      None, 'Query images of the split (paper §6: 2,000 of 101,021; default: that proportion). '
      'The rest of the dataset trains.', _NON_NEGATIVE)
  synthetic_images: int = setting(5500, 'Size of the built-in synthetic dataset.', _NON_NEGATIVE)
  synthetic_seed: int = setting(0, 'Seed of the built-in synthetic dataset.', _NON_NEGATIVE)
  alexnet_weights: str | None = setting(
      None, "bvlc_alexnet.npy with ImageNet conv1-conv5 weights (§6); 'none' trains the paper's "
      'LRN backbone from scratch on purpose (a new run of it is refused without one or the '
      'other).')

  def __post_init__(self):
    check_settings(self)

  @property
  def imagenet_weights(self) -> str | None:
    """The ImageNet weight file to start conv1-conv5 from; None from scratch."""
    return None if self.alexnet_weights in (None, FROM_SCRATCH) else self.alexnet_weights


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Architecture of the part network and its ablations (the paper gives no layer sizes)."""
  image_size: int = setting(227, 'Square model input (227 as in AlexNet; >= 147 keeps conv5 at '
                            'least 8x8).', Interval(MIN_IMAGE_SIZE))
  backbone_norm: str = setting('lrn', "'lrn' (Caffe AlexNet, for ImageNet weights) or 'batch' "
                               '(from scratch).', ('lrn', 'batch'))
  hidden_size: int = setting(1024, 'Width of fc6 in every path.', _POSITIVE)
  # Equal for all S + 1 signatures, so that Eq. 4 weighs them equally.
  signature_size: int = setting(256, 'Width of fc7 = each of the S + 1 signature vectors '
                                '(Eq. 3-4).', _POSITIVE)
  dropout: float = setting(0.5, 'Dropout after fc6 and before the classifiers.', _FRACTION)
  use_parts: bool = setting(True, 'Pool special branches from their parts (False: the w/o parts '
                            'ablation, every branch sees the whole map).')
  gate: str = setting(
      'head', "Which parts a test image uses (§4.3). 'head_picks' (the paper's reading): "
      'extraction offers the upper-body parts of every image and the "Extract Parts?" head\'s '
      "case picks them; 'head': extraction on the image alone, which may read it as lower body, "
      "and the head's case may only leave parts out; 'extraction': extraction alone.", GATES)

  def __post_init__(self):
    check_settings(self)

  @property
  def test_case_from(self) -> str:
    """What settles a test image's case when its parts are extracted
    (`parts.dataset.CASE_SOURCES`): under 'head_picks' nothing, every image offers its upper-body
    parts and the head picks; otherwise the image alone."""
    return 'upper_body' if self.gate == 'head_picks' else 'image'


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Optimisation settings of both stages (paper §6: SGD, learning rate 0.01, 30 epochs)."""
  stage1_epochs: int = setting(30, 'Epochs of stage 1, classification only (paper: 30).',
                               _NON_NEGATIVE)
  stage2_epochs: int = setting(10, 'Epochs of stage 2, classification + triplet ranking.',
                               _NON_NEGATIVE)
  stage1_learning_rate: float = setting(0.01, 'Learning rate of stage 1 (paper: 0.01).', _POSITIVE)
  stage2_learning_rate: float = setting(0.001, 'Learning rate of stage 2.', _POSITIVE)
  optimizer: str = setting('sgd', "'sgd' (paper) or 'adamw'.", ('sgd', 'adamw'))
  momentum: float = setting(0.9, 'SGD momentum.', _FRACTION)
  weight_decay: float = setting(5e-4, 'Decoupled weight decay.', _NON_NEGATIVE)
  schedule: str = setting('constant', "Per-stage learning-rate schedule: 'constant' or 'cosine' "
                          "(decay to 0 at the stage's end).", ('constant', 'cosine'))
  warmup_steps: int = setting(0, 'Linear warm-up steps at the start of each stage.',
                              _NON_NEGATIVE)
  batch_size: int = setting(64, 'Global batch size (split over replicas).', _POSITIVE)
  sampler: str = setting(
      'balanced', "Mini-batches of both stages (AMNet's stage 2 always takes its triplets). "
      "'random' (paper §6): a permutation of the training images, an epoch one pass, "
      "ceil(N / batch_size) batches; 'balanced': every batch seeded with positive pairs for each "
      'signature (max(1, batch_size // 32) pairs each) and filled at random, an epoch the '
      'ceil(N / (batch_size - 12 * pairs)) batches whose fill shows every image once (about 1.6 '
      'passes at 64).', SAMPLERS)
  margin: float = setting(0.2, 'Triplet margin m of Eq. 3.', _NON_NEGATIVE)
  triplet_weight: float = setting(1.0, 'Weight of L_triplet in stage 2.', _NON_NEGATIVE)
  distance: str = setting('euclidean', "d of Eq. 3: 'euclidean' or 'squared'.", DISTANCES)
  flip: bool = setting(True, 'Random horizontal flips (boxes mirrored, sleeves swapped).')
  seed: int = setting(0, 'Seed of initialisation, sampling and augmentation.', _NON_NEGATIVE)
  checkpoint_every_secs: float = setting(60.0, 'Seconds between checkpoints (work lost on a kill '
                                         'is at most this).', _NON_NEGATIVE)
  log_every_secs: float = setting(20.0, 'Seconds between progress lines.', _NON_NEGATIVE)
  steps_per_epoch: int = setting(
      0, "Batches per epoch (0: the whole training set; N: the first N batches of each epoch's "
      'order, for a short run through the whole chain).', _NON_NEGATIVE)

  def __post_init__(self):
    check_settings(self)
    if self.stage1_epochs + self.stage2_epochs < 1:
      raise UserError(f'stage1_epochs={self.stage1_epochs} and stage2_epochs='
                      f'{self.stage2_epochs}: nothing to train; give at least one epoch')


# The attributes a feature method (FLAM, paper 003) learns to manipulate: FLAM's own three (§4:
# shape = Shopping100k's category, color, pattern), or those and the paper's special attributes
# (what the paper protocol's queries change).
FEATURE_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    'flam': ('category', 'color', 'pattern'),
    'all': ('category', 'color', 'pattern', 'collar', 'fastening', 'sleevelen')}


@dataclasses.dataclass(frozen=True)
class FlamConfig:
  """FLAM (paper 003) and its baselines, trained on the frozen features of another run. FLAM
  gives k = 32 and no other size or schedule; `flags/flam.flags` says where each choice comes
  from. The seed is `TrainConfig.seed`."""
  flam_attributes: str = setting(
      'all', "Attributes manipulated: 'flam' (FLAM's category, color, pattern) or 'all' (those "
      "and collar, fastening, sleevelen, which the paper protocol's queries change).",
      tuple(FEATURE_ATTRIBUTES))
  flam_embedding_size: int = setting(32, 'k, the width of each attribute embedding (FLAM §4.1).',
                                     _POSITIVE)
  flam_hidden: int = setting(512, 'Hidden width of the embedders; G and D have two layers of '
                             'twice it.', _POSITIVE)
  flam_concat_width: int = setting(341, "Per-attribute feature width of Cls-Concat and "
                                   'Emb-Concat (FLAM §4.2: 341, 1,023 for three).', _POSITIVE)
  flam_embedding_steps: int = setting(2000, 'Steps of the embedding stage (Eq. 2; the concat '
                                      "baselines' whole training).", _POSITIVE)
  flam_steps: int = setting(3000, 'Steps of the manipulating stage (Eq. 3-5).', _NON_NEGATIVE)
  flam_batch_size: int = setting(256, 'Batch size of both stages.', Interval(2))
  flam_embedding_learning_rate: float = setting(1e-3, 'Adam learning rate of the embedding stage.',
                                                _POSITIVE)
  flam_learning_rate: float = setting(2e-4, 'Adam learning rate of G and D (beta_1 = 0.5, as '
                                      'DCGAN).', _POSITIVE)
  flam_margin: float = setting(0.2, 'Triplet margin mu of Eq. 1 (cosine distances).',
                               _NON_NEGATIVE)
  flam_cycle_weight: float = setting(1.0, 'Weight of the cycle loss, Eq. 5.', _NON_NEGATIVE)
  flam_matching_weight: float = setting(10.0, 'Weight of the feature-matching loss, Eq. 4.',
                                        _NON_NEGATIVE)
  flam_remaining: bool = setting(True, "D matches the remaining attributes too (Table 3's M; "
                                 "False: only the target, Table 3's S).")
  flam_adversarial: bool = setting(True, "The adversarial loss, Eq. 3 (Table 3's Adv).")
  flam_online_sampling: bool = setting(True, "x- from the batch, nearest in the remaining "
                                       "attributes (FLAM §4.1, Table 3's OS; False: at random).")

  def __post_init__(self):
    check_settings(self)

  @property
  def attributes(self) -> tuple[str, ...]:
    return FEATURE_ATTRIBUTES[self.flam_attributes]
