"""A run's directory: every file and folder in it named once, and its configuration (run.json).

```
<workdir>/flags.txt            the command line of the run, as a valid flagfile
<workdir>/run.json             method, model, train and data configurations (what evaluate/search read)
<workdir>/checkpoints/         tf.train checkpoints during training (resume); another worker of a
<workdir>/workertemp_<task>/   multi-worker run writes its own copy there and deletes it
<workdir>/tensorboard/stage{1,2}/
<workdir>/model.weights.h5     the final model
<workdir>/accuracy.json        per-attribute test accuracy beside the majority-class rate
<workdir>/train.lock           held by the train.py running in it (a second one is refused)
<workdir>/prototypes.npz       generic signature of every special attribute value (training split)
<workdir>/index_<name>.npz     signatures, probabilities, labels, paths of a gallery (`test`: the
                               run's gallery + query images; `folder_<hash>`: a folder of the
                               user's images, with each image's size and modification time)
<workdir>/compact_<name>.npz   the product-quantised codes of a gallery (`search.compact`)
<workdir>/results_<protocol>.json   evaluate.py's scores, with their plot beside them
<workdir>/<file>.partial/      chunks of an unfinished extraction (a rerun resumes from them)
<workdir>/<file>.lock          held while one process builds <file>; others wait, then read it
```
Nothing of a run is recorded (run.json, flags.txt) until its start has succeeded: the data is
ready, the network built with its initial weights and the batches fit. Every file is replaced
whole (`atomic.replacing`), so a crash leaves the old version or the new one.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any

from tf_partfash.attributes import ATTRIBUTES, SPECIAL_ATTRIBUTES
from tf_partfash.config import FROM_SCRATCH, DataConfig, FlamConfig, ModelConfig, TrainConfig
from tf_partfash.errors import UserError
from tf_partfash.methods import METHODS
from tf_partfash.storage import atomic

RUN_FILE = 'run.json'
FLAGS_FILE = 'flags.txt'
WEIGHTS_FILE = 'model.weights.h5'
ACCURACY_FILE = 'accuracy.json'
LOCK_FILE = 'train.lock'
PROTOTYPES_FILE = 'prototypes.npz'
CHECKPOINTS_DIR = 'checkpoints'
TENSORBOARD_DIR = 'tensorboard'


def worker_temp_dir(task: int) -> str:
  return f'workertemp_{task}'


def index_file(name: str) -> str:
  return f'index_{name}.npz'


def compact_file(name: str) -> str:
  return f'compact_{name}.npz'


def results_file(protocol: str) -> str:
  return f'results_{protocol}.json'


FORMAT_VERSION = 1
# Training settings that do not change what the checkpoints mean: a run may resume with others.
VOLATILE_TRAIN_FIELDS = ('checkpoint_every_secs', 'log_every_secs')


@dataclasses.dataclass(frozen=True)
class FeatureSource:
  """The run whose frozen features a feature method (FLAM, paper 003) trained on."""
  workdir: str      # relative to the feature method's own workdir
  model_id: str     # its `model_id` then: a retrained base is refused
  method: str
  feature_size: int  # the width of x, its S + 1 signatures (or fc7) concatenated


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """What a run is: its method, network, training and data (run.json). A feature method's run
  holds its base run's model, train (with its own seed) and data configurations, what it trained
  on (`features_from`) and its own settings (`flam`)."""
  method: str
  model: ModelConfig
  train: TrainConfig
  data: DataConfig
  flam: FlamConfig | None = None
  features_from: FeatureSource | None = None

  @property
  def manipulable(self) -> tuple[str, ...]:
    """The attributes a query may change: the special ones (§4.1), or a feature method's."""
    return self.flam.attributes if self.flam is not None else SPECIAL_ATTRIBUTES

  def to_json(self) -> dict[str, Any]:
    blob = {'format_version': FORMAT_VERSION, 'method': self.method,
            'model': dataclasses.asdict(self.model), 'train': dataclasses.asdict(self.train),
            'data': dataclasses.asdict(self.data)}
    if self.features_from is not None:
      blob.update(features_from=dataclasses.asdict(self.features_from),
                  flam=dataclasses.asdict(self.flam or FlamConfig()))
    return blob

  @classmethod
  def from_json(cls, blob: dict[str, Any], file: str) -> RunConfig:
    if blob.get('format_version') != FORMAT_VERSION:
      raise UserError(f'{file}: format version {blob.get("format_version")!r}, this tf_partfash '
                      f'reads version {FORMAT_VERSION}')
    if blob.get('method') not in METHODS:
      raise UserError(f'{file}: unknown method {blob.get("method")!r}; this tf_partfash knows '
                      + ', '.join(METHODS))
    try:
      # Settings added since format 1 (part_extractor) take their defaults: what older runs had.
      source = blob.get('features_from')
      return cls(blob['method'], ModelConfig(**blob['model']), TrainConfig(**blob['train']),
                 DataConfig(**blob['data']),
                 FlamConfig(**blob['flam']) if 'flam' in blob else None,
                 FeatureSource(**source) if source is not None else None)
    except (KeyError, TypeError) as e:
      raise UserError(f'{file}: not a tf_partfash run configuration ({e})') from None
    except ValueError as e:  # a setting out of range (edited by hand)
      raise UserError(f'{file}: {e}') from None


def variant_of(run: RunConfig) -> str:
  """A digest of the run's configuration without its seed and logging cadence: runs that differ
  only in their seed share it (the seeds of one method, reported as mean +- sd)."""
  blob = run.to_json()
  blob['train'] = {k: v for k, v in blob['train'].items()
                   if k not in ('seed',) + VOLATILE_TRAIN_FIELDS}
  text = json.dumps(blob, sort_keys=True).encode('utf-8')
  return hashlib.blake2b(text, digest_size=8).hexdigest()


def _differences(a: dict, b: dict, prefix: str = '') -> list[str]:
  out = []
  for key in sorted(set(a) | set(b)):
    if isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
      out += _differences(a[key], b[key], f'{prefix}{key}.')
    elif a.get(key) != b.get(key):
      out.append(f'{prefix}{key}: stored {a.get(key)!r}, requested {b.get(key)!r}')
  return out


def _read_json(file: str) -> dict:
  try:
    with open(file, encoding='utf-8') as f:
      blob = json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    blob = e
  if not isinstance(blob, dict):  # it is written whole: changed by hand
    reason = blob if isinstance(blob, Exception) else f'a JSON {type(blob).__name__}'
    raise UserError(f'{file}: not a readable run configuration ({reason}); restore it, or use a '
                    'new --workdir')
  return blob


def check_run_config(workdir: str, run: RunConfig) -> None:
  """A workdir holding another run's configuration is an error listing the changes.

  Only settings that change what the checkpoints mean are compared (method, model, data and the
  training schedule); logging and checkpoint cadence may change between a run and its resumption.
  """
  file = os.path.join(workdir, RUN_FILE)
  if not os.path.exists(file):
    return
  strip = lambda blob: {**blob, 'train': {k: v for k, v in blob['train'].items()
                                          if k not in VOLATILE_TRAIN_FIELDS}}
  # Read back as a configuration first: settings added since it was written take the values
  # it was trained with (the dataclass defaults).
  stored_run = RunConfig.from_json(_read_json(file), file)
  if (stored_run.features_from and run.features_from
      and stored_run.features_from.model_id != run.features_from.model_id):
    raise UserError(f'{workdir} was trained on the features of model '
                    f'{stored_run.features_from.model_id}; its base run is now model '
                    f'{run.features_from.model_id} (retrained since). Use a new --workdir.')
  stored = stored_run.to_json()
  diff = _differences(strip(stored), strip(run.to_json()))
  if diff:
    raise UserError(f'{workdir} holds a run with another configuration ({file}): '
                    + '; '.join(diff) + '. Use a new --workdir, or the stored settings.')


def check_imagenet_weights(workdir: str, run: RunConfig) -> None:
  """A new run of the paper's LRN backbone (§6: conv1-conv5 from ImageNet) that names no weight
  file is an error saying how to give one, or how to train from scratch on purpose: days of GPU
  time that cannot reproduce the paper are not spent by a forgotten flag. A run already started
  resumes as it began."""
  if (run.model.backbone_norm == 'lrn' and run.data.alexnet_weights is None
      and run.features_from is None and not os.path.exists(os.path.join(workdir, RUN_FILE))):
    raise UserError('--alexnet_weights is not given: the LRN backbone of the paper\'s '
                    'configuration starts conv1-conv5 from ImageNet weights (§6); give '
                    f'--alexnet_weights=bvlc_alexnet.npy, or --alexnet_weights={FROM_SCRATCH} to '
                    'train it from scratch on purpose')


def save_run_config(workdir: str, run: RunConfig) -> None:
  """Writes run.json after `check_run_config`."""
  os.makedirs(workdir, exist_ok=True)
  check_run_config(workdir, run)
  atomic.write_json(os.path.join(workdir, RUN_FILE), run.to_json())


def load_run_config(workdir: str) -> RunConfig:
  file = os.path.join(workdir, RUN_FILE)
  if not os.path.exists(file):
    raise FileNotFoundError(f'{file} not found: {workdir} is not a tf_partfash training directory '
                            '(run train.py with --workdir first)')
  return RunConfig.from_json(_read_json(file), file)


def model_id(workdir: str) -> str:
  """Identity of a trained model: a hash of its run.json and model.weights.h5 contents."""
  h = hashlib.blake2b(digest_size=8)
  for name in (RUN_FILE, WEIGHTS_FILE):
    file = os.path.join(workdir, name)
    if not os.path.exists(file):
      raise FileNotFoundError(f'{file} not found: {workdir} holds no trained model (train.py)')
    with open(file, 'rb') as f:
      h.update(hashlib.file_digest(f, 'blake2b').digest())
  return h.hexdigest()


def check_trained(workdir: str) -> None:
  """A workdir whose training has not finished is an error saying how to resume it."""
  file = os.path.join(workdir, WEIGHTS_FILE)
  if not os.path.exists(file):
    raise FileNotFoundError(f'{file} not found: training in {workdir} has not finished '
                            '(rerun the same train.py command to resume it)')


def base_workdir(workdir: str, source: FeatureSource) -> str:
  """The base run's directory of a feature method's run in `workdir`."""
  return os.path.normpath(os.path.join(workdir, source.workdir))


def feature_run_config(method_name: str, base: str, workdir: str, flam: FlamConfig,
                       train: TrainConfig, given_data: dict[str, Any]) -> RunConfig:
  """The configuration of a feature method's run in `workdir` on the features of the finished
  run in `base` (train.py's --features_from): the base's model and data, the base's training
  settings with this run's seed and logging cadence (`train`), and `flam`. A data setting given
  (`given_data`, flag name -> value) that differs from the base's is an error naming it."""
  what = f'--features_from={base}'
  try:
    stored = load_run_config(base)
    check_trained(base)
  except FileNotFoundError as e:
    raise UserError(f'{what}: {e}') from None
  if METHODS[stored.method].on_features:
    raise UserError(f'{what} is a {stored.method} run, itself trained on features; give the run '
                    'of an image network (partnet, classic, ...)')
  for name, value in given_data.items():
    if getattr(stored.data, name) != value:
      raise UserError(f'--{name}={value!r}, but {what} was trained with {name}='
                      f'{getattr(stored.data, name)!r}: a feature method trains on its base '
                      "run's data")
  blocks = 1 + sum(a.special for a in ATTRIBUTES) if METHODS[stored.method].signatures else 1
  source = FeatureSource(os.path.relpath(os.path.abspath(base), os.path.abspath(workdir)),
                         model_id(base), stored.method, blocks * stored.model.signature_size)
  kept = {name: getattr(train, name) for name in ('seed',) + VOLATILE_TRAIN_FIELDS}
  return RunConfig(method_name, stored.model, dataclasses.replace(stored.train, **kept),
                   stored.data, flam, source)
