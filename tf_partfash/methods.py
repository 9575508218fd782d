"""The registry of methods: the paper's comparison (§7, Fig. 6, Table 2), each declared once.

A method is a network, a training objective and a batch sampler per stage, and a query encoder;
train.py's `--model`, the training loop, evaluation, search and the report columns all read its
declaration here. Pieces that need TensorFlow are named by `module:attribute` and imported only
when used, so this module (and `--only_check_args`) stays free of TensorFlow.

| method | network | stage 1 | stage 2 | query encoder |
|---|---|---|---|---|
| `classic` | `ClassicNet` | L_attribute | the same | fc7 from training images with the wanted attributes |
| `attribute_retrieval` | as classic | as classic | as classic | recognised attributes, then fc7 (AMNet's baseline) |
| `no_parts_no_ranking` | `PartNet`, whole conv5 per branch | L_attribute + Extract Parts? | the same | signatures (Eq. 4) |
| `no_parts` | as no_parts_no_ranking | as partnet | as partnet | signatures |
| `amnet` | `AMNet` | L_attribute (pretraining, AMNet §3.4) | AMNet Eq. 6 on triplets | memory + manipulator |
| `partnet` | `PartNet`, parts | L_attribute + Extract Parts? | + part triplets (Eq. 3) | signatures |

Three more methods train on the frozen features of another run (`--features_from`; FLAM, paper
003): `flam` (attribute embedders, then a generator that translates a query's feature),
`cls_concat` and `emb_concat` (FLAM's baselines: per-attribute 341-wide classifier or embedder
features, concatenated). Their `trainer` replaces the two stages above.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, Mapping

from tf_partfash.config import ModelConfig, TrainConfig
from tf_partfash.errors import UserError

# A stage's sampler: the one `TrainConfig.sampler` names, or a method's own.
BATCHES = 'batches'
_SAMPLERS = {'random': 'tf_partfash.inputs.sampling:RandomBatchSampler',
             'balanced': 'tf_partfash.inputs.sampling:BalancedBatchSampler'}
_TRIPLETS = 'tf_partfash.inputs.sampling:ManipulationTripletSampler'


def resolve(name: str) -> Any:
  """The object a `module:attribute` name points to (imported now, not when declared)."""
  module, _, attr = name.partition(':')
  return getattr(importlib.import_module(module), attr)


@dataclasses.dataclass(frozen=True)
class Method:
  """One method of the comparison. The `module:attribute` fields are resolved on use:

  network(ModelConfig) -> keras.Model, built; objective(model, outputs, batch, stage, config,
  seed) -> (loss, logs) (`objectives`); samplers[stage - 1] makes the batches of each stage
  (`BATCHES`: the sampler `TrainConfig.sampler` names); begin_stage2(model, train examples, image size, batch size) runs once
  when stage 2 starts; encoder (`encoders`) turns images and attribute changes into the vectors
  search compares.
  """
  name: str
  paper_name: str                 # its column in the paper's Fig. 6 and Table 2
  description: str                # for --help
  network: str
  objective: str | None           # None: a method of `trainer`
  encoder: str
  implies: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # settings it fixes
  samplers: tuple[str, str] = (BATCHES, BATCHES)
  begin_stage2: str | None = None
  signatures: bool = True         # images are the S + 1 signatures, so Eq. 5-6 weigh them
  # Published top-20 accuracy: Fig. 6 in % per setting (§7.1-7.2), Table 2 as a fraction per
  # manipulated attribute.
  paper_top20: Mapping[str, float] = dataclasses.field(default_factory=dict)
  paper_table2: Mapping[str, float] = dataclasses.field(default_factory=dict)
  # Trained on the frozen features of another run (train.py's --features_from) by `trainer`
  # (trainer(run, workdir, base) -> model), not in the two stages of `objective`.
  trainer: str | None = None
  # FLAM's Table 3, Shopping100k top-50 accuracy per manipulated attribute and 'all'.
  flam_table3: Mapping[str, float] = dataclasses.field(default_factory=dict)

  @property
  def on_features(self) -> bool:
    return self.trainer is not None

  def build(self, run):
    """The network of `run` (a `workdir.RunConfig`), built: image networks from its
    `ModelConfig`, feature methods from the whole run (their feature size and settings)."""
    return resolve(self.network)(run if self.on_features else run.model)

  def loss_fn(self) -> Callable:
    """The objective, resolved (once per training: not inside a traced step)."""
    return resolve(self.objective)

  def sampler(self, stage: int, labels, config: TrainConfig):
    """The batches of `stage`: `config.sampler`'s, unless the method brings its own."""
    name = self.samplers[stage - 1]
    name = _SAMPLERS[config.sampler] if name == BATCHES else name
    return resolve(name)(labels, config.batch_size, config.seed)

  def stage2_start(self) -> Callable | None:
    return resolve(self.begin_stage2) if self.begin_stage2 else None

  def encoder_class(self):
    return resolve(self.encoder)


def _table3(shape: float | None, color: float | None, pattern: float | None,
            all_: float) -> dict[str, float]:
  named = {'shape': shape, 'color': color, 'pattern': pattern, 'all': all_}
  return {k: v for k, v in named.items() if v is not None}


def _table2(pattern: float, collar: float, fastening: float, sleevelen: float,
            color: float) -> dict[str, float]:
  return {'pattern': pattern, 'collar': collar, 'fastening': fastening, 'sleevelen': sleevelen,
          'color': color}


_PARTNET = 'tf_partfash.models.partnet:build_partnet'
_PARTNET_LOSS = 'tf_partfash.training.objectives:partnet_loss'
_SIGNATURES = 'tf_partfash.search.encoders:SignatureEncoder'
_CLASSIC = 'tf_partfash.models.classic:build_classic'
_CLASSIFICATION = 'tf_partfash.training.objectives:classification_loss'
_ONE_PATH = {'use_parts': False, 'triplet_weight': 0.0}

# In the order of the paper's Table 2 columns (AMNet's attribute retrieval beside Classic). Fig. 6 gives only the proposed method's direct
# figure; "w/o parts" is 53.1 less "around 7.5"; no figure is given for two manipulations.
METHODS: dict[str, Method] = {m.name: m for m in (
    Method('classic', 'Classic', 'the paper\'s Classic baseline: one path, classification only; '
           'a query with changes takes its representation from training images with the wanted '
           'attributes', _CLASSIC, _CLASSIFICATION, 'tf_partfash.search.encoders:ClassicEncoder',
           _ONE_PATH, signatures=False, paper_top20={'manipulate1': 33.2},
           paper_table2=_table2(0.43, 0.35, 0.14, 0.23, 0.51)),
    Method('attribute_retrieval', 'Attribute retrieval', 'AMNet\'s attribute-based retrieval '
           'baseline on the Classic network: recognised attributes first, then fc7', _CLASSIC,
           _CLASSIFICATION, 'tf_partfash.search.encoders:AttributeRetrievalEncoder', _ONE_PATH,
           signatures=False),
    Method('no_parts_no_ranking', 'w/o Ranking & Parts',
           'the ablation without parts and without the triplet loss', _PARTNET, _PARTNET_LOSS,
           _SIGNATURES, {'use_parts': False, 'triplet_weight': 0.0},
           paper_top20={'manipulate1': 40.1}, paper_table2=_table2(0.44, 0.43, 0.16, 0.32, 0.63)),
    Method('no_parts', 'w/o Parts', 'the ablation in which every branch sees the whole conv5',
           _PARTNET, _PARTNET_LOSS, _SIGNATURES, {'use_parts': False},
           paper_top20={'manipulate1': 45.6}, paper_table2=_table2(0.48, 0.51, 0.30, 0.37, 0.67)),
    Method('amnet', 'AMNet', 'AMNet (Zhao et al., CVPR 2017), the main baseline',
           'tf_partfash.models.amnet:build_amnet', 'tf_partfash.training.objectives:amnet_loss',
           'tf_partfash.search.encoders:AmnetEncoder', {'use_parts': False},
           samplers=(BATCHES, _TRIPLETS),
           begin_stage2='tf_partfash.training.objectives:initialise_amnet_memory', signatures=False,
           paper_top20={'manipulate1': 45.8}, paper_table2=_table2(0.51, 0.39, 0.38, 0.37, 0.64),
           flam_table3=_table3(None, None, None, 0.711)),
    Method('partnet', 'Proposed', 'the proposed part-based network', _PARTNET, _PARTNET_LOSS,
           _SIGNATURES, paper_top20={'direct': 56.5, 'manipulate1': 53.1},
           paper_table2=_table2(0.54, 0.60, 0.35, 0.46, 0.72)),
    Method('flam', 'FLAM', 'FLAM (Shin et al., paper 003) on the frozen features of '
           '--features_from: attribute embedders, then a generator that translates a query\'s '
           'feature to the wanted attributes', 'tf_partfash.models.flam:build_flam', None,
           'tf_partfash.search.feature_encoders:FlamEncoder', signatures=False,
           trainer='tf_partfash.training.feature_run:train_flam',
           flam_table3=_table3(0.633, 0.768, 0.633, 0.691)),
    Method('cls_concat', 'Cls-Concat', "FLAM's Cls-Concat baseline on the frozen features of "
           '--features_from: one classifier per attribute, their 341-wide hidden features '
           'concatenated', 'tf_partfash.models.feature_baselines:build_cls_concat', None,
           'tf_partfash.search.feature_encoders:ConcatEncoder', signatures=False,
           trainer='tf_partfash.training.feature_run:train_concat',
           flam_table3=_table3(0.886, 0.895, 0.802, 0.874)),
    Method('emb_concat', 'Emb-Concat', "FLAM's Emb-Concat baseline on the frozen features of "
           '--features_from: one 341-wide embedder per attribute (Eq. 2), concatenated',
           'tf_partfash.models.feature_baselines:build_emb_concat', None,
           'tf_partfash.search.feature_encoders:ConcatEncoder', signatures=False,
           trainer='tf_partfash.training.feature_run:train_concat',
           flam_table3=_table3(0.916, 0.925, 0.893, 0.915)),
)}
PROPOSED = 'partnet'


def method(name: str) -> Method:
  if name not in METHODS:
    raise UserError(f'unknown method {name!r}; valid methods: {", ".join(METHODS)}')
  return METHODS[name]


def method_configs(name: str, model: ModelConfig, train: TrainConfig,
                   explicit: Mapping[str, Any] = {}) -> tuple[ModelConfig, TrainConfig]:
  """The configurations with the method's implied settings applied.

  `explicit` holds settings the user gave (flag name -> value); one contradicting the method is an
  error rather than silently overridden.
  """
  fixed = method(name).implies
  for setting, value in fixed.items():
    if setting in explicit and explicit[setting] != value:
      raise UserError(f'method {name} implies {setting}={value!r}, but {setting}='
                      f'{explicit[setting]!r} was given')
  model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
  return (dataclasses.replace(model, **{k: v for k, v in fixed.items() if k in model_fields}),
          dataclasses.replace(train, **{k: v for k, v in fixed.items() if k not in model_fields}))
