r"""Trains the part-based network in two stages (paper §6) and reports test accuracy.

  python train.py --flagfile=flags/demo.flags --workdir=runs/demo
  python train.py --flagfile=flags/shopping100k.flags --data_dir=/data/Shopping100k --workdir=runs/paper

Rerunning the same command resumes from the last checkpoint. Without --data_dir the built-in
synthetic dataset is generated on first use (in $TF_PARTFASH_CACHE, default ~/.cache/tf_partfash).
"""
import dataclasses
import logging
import os
import sys

from absl import app, flags

from tf_partfash.cli import exit_on_user_error
from tf_partfash.config import (INPUT_CACHES, MODEL_RANGES, PART_EXTRACTORS, TRAIN_RANGES,
                                ModelConfig, TrainConfig)
from tf_partfash.distribution import STRATEGIES, cluster_role
from tf_partfash.methods import METHODS, PROPOSED, method_configs

_HELP = {
    'image_size': 'Square model input (227 as in AlexNet; >= 147 keeps conv5 at least 8x8).',
    'backbone_norm': "'lrn' (Caffe AlexNet, for ImageNet weights) or 'batch' (from scratch).",
    'hidden_size': 'Width of fc6 in every path.',
    'signature_size': 'Width of fc7 = each of the S + 1 signature vectors (Eq. 3-4).',
    'dropout': 'Dropout after fc6 and before the classifiers.',
    'use_parts': 'Pool special branches from their parts (False: the w/o parts ablation).',
    'gate': "Inference gating of parts: 'head' (Extract Parts? output) or 'extraction'.",
    'stage1_epochs': 'Epochs of stage 1, classification only (paper: 30).',
    'stage2_epochs': 'Epochs of stage 2, classification + triplet ranking.',
    'stage1_learning_rate': 'Learning rate of stage 1 (paper: 0.01).',
    'stage2_learning_rate': 'Learning rate of stage 2.',
    'optimizer': "'sgd' (paper) or 'adamw'.",
    'momentum': 'SGD momentum.',
    'weight_decay': 'Decoupled weight decay.',
    'schedule': "Per-stage learning-rate schedule: 'constant' or 'cosine'.",
    'warmup_steps': 'Linear warm-up steps at the start of each stage.',
    'batch_size': 'Global batch size (split over replicas).',
    'margin': 'Triplet margin m of Eq. 3.',
    'triplet_weight': 'Weight of L_triplet in stage 2.',
    'distance': "d of Eq. 3: 'euclidean' or 'squared'.",
    'flip': 'Random horizontal flips (boxes mirrored, sleeves swapped).',
    'seed': 'Seed of initialisation, sampling and augmentation.',
    'checkpoint_every_secs': 'Seconds between checkpoints (work lost on a kill is at most this).',
    'log_every_secs': 'Seconds between progress lines.',
    'steps_per_epoch': 'Batches per epoch (0: the whole training set; N: the first N batches of '
                       "each epoch's order, for a short run through the whole chain).",
}


def _define(config_class) -> None:
  for field in dataclasses.fields(config_class):
    if 'choices' in field.metadata:
      flags.DEFINE_enum(field.name, field.default, field.metadata['choices'], _HELP[field.name])
      continue
    define = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer, float: flags.DEFINE_float,
              str: flags.DEFINE_string}[type(field.default)]
    define(field.name, field.default, _HELP[field.name])


_define(ModelConfig)
_define(TrainConfig)
flags.DEFINE_string('workdir', None, 'Directory of the run: checkpoints, logs, final model.')
flags.DEFINE_string('data_dir', None, 'Dataset in the Shopping100k layout (default: synthetic).')
flags.DEFINE_enum('model', PROPOSED, list(METHODS), 'Method of the paper\'s comparison (§7, '
                  'Table 2); it fixes the settings it implies: ' + '; '.join(
                      f'{m.name}: {m.description}'
                      + (' (' + ', '.join(f'{k}={v}' for k, v in m.implies.items()) + ')'
                         if m.implies else '') for m in METHODS.values()) + '.')
flags.DEFINE_string('alexnet_weights', None, 'bvlc_alexnet.npy with ImageNet conv1-conv5 weights.')
flags.DEFINE_integer('synthetic_images', 5500, 'Size of the built-in synthetic dataset.')
flags.DEFINE_integer('synthetic_seed', 0, 'Seed of the built-in synthetic dataset.')
flags.DEFINE_integer('split_seed', 0, 'Seed of the stored paper split.')
flags.DEFINE_integer('gallery_images', None, 'Retrieval gallery size of the split (paper §6: '
                     '19,000 of 101,021; default: that proportion of the dataset).', lower_bound=0)
flags.DEFINE_integer('query_images', None, 'Query images of the split (paper §6: 2,000 of '
                     '101,021; default: that proportion). The rest of the dataset trains.',
                     lower_bound=0)
flags.DEFINE_enum('part_extractor', 'jumps', PART_EXTRACTORS, "Part extraction (§4.3): 'jumps' "
                  "(jump detection on the silhouette) or 'regression' (§7.5: its points "
                  'predicted by a small regressor, taught on first use on 400 training images).')
flags.DEFINE_integer('workers', 2, 'Processes for dataset generation and part extraction.')
flags.DEFINE_enum('input_cache', 'none', INPUT_CACHES, "'pixels': decode and resize the "
                  'training images once, into a uint8 file beside the data (or in the workdir '
                  'when the data is read-only) that later epochs memory-map (S x S x 3 bytes an '
                  "image: 12.4 GB for Shopping100k at 227 px); the same batches as 'none', "
                  'without decoding JPEGs every epoch.')
flags.DEFINE_bool('skip_corrupt_images', False, 'Leave out (and log) undecodable images.')
flags.DEFINE_enum('strategy', 'auto', STRATEGIES, "tf.distribute strategy: 'auto' (every GPU "
                  "of this machine), 'default' (one device), 'mirrored' (this machine's devices) "
                  "or 'multi_worker' (several machines, from TF_CONFIG; README: training on "
                  'several machines).')
flags.mark_flag_as_required('workdir')
FLAGS = flags.FLAGS
_CONFIG_FIELDS = {c: [f.name for f in dataclasses.fields(c)] for c in (ModelConfig, TrainConfig)}


def _configs() -> tuple[ModelConfig, TrainConfig]:
  """The configurations of the flags, with the settings --model implies applied; a value out of
  range is a ValueError naming the flag (`config.py` checks every setting)."""
  try:
    model = ModelConfig(**{n: FLAGS[n].value for n in _CONFIG_FIELDS[ModelConfig]})
    train = TrainConfig(**{n: FLAGS[n].value for n in _CONFIG_FIELDS[TrainConfig]})
  except ValueError as e:
    raise ValueError(f'--{e}') from None
  given = {n: FLAGS[n].value for names in _CONFIG_FIELDS.values() for n in names
           if FLAGS[n].present}
  try:
    return method_configs(FLAGS.model, model, train, given)
  except ValueError as e:
    raise ValueError(f'--model={FLAGS.model}: {e}') from None


# Out-of-range values and contradictions of --model are flag errors: nothing starts.
for _name, _interval in {**MODEL_RANGES, **TRAIN_RANGES}.items():
  flags.register_validator(_name, lambda value, interval=_interval: value in interval,
                           message=f'must be a finite number {_interval}')


@flags.multi_flags_validator(['model'] + sum(_CONFIG_FIELDS.values(), []),
                             message='a flag is out of range or contradicts --model')
def _check_configs(values) -> bool:
  del values
  try:
    _configs()
  except ValueError as e:
    raise flags.ValidationError(str(e)) from None
  return True


def _flagfile_text() -> str:
  """flags.txt: this run's flags (every flag of train.py), itself a valid --flagfile."""
  lines = [f.serialize() for f in FLAGS.get_key_flags_for_module(sys.argv[0])
           if f.name not in ('flagfile',) and f.serialize()]
  return ('# Written by train.py; rerun with: python train.py --flagfile=<this file>\n'
          + '\n'.join(sorted(lines)) + '\n')


def _train() -> None:
  if os.path.exists(FLAGS.workdir) and not os.path.isdir(FLAGS.workdir):
    raise ValueError(f'--workdir={FLAGS.workdir} is a file, not a directory')
  os.makedirs(FLAGS.workdir, exist_ok=True)  # an unwritable workdir fails before the slow imports
  from tf_partfash import atomic
  from tf_partfash.workdir import LOCK_FILE, RunConfig, check_run_config

  model, train = _configs()
  run = RunConfig(FLAGS.model, model, train, {
      'data_dir': FLAGS.data_dir, 'split_seed': FLAGS.split_seed,
      'gallery_images': FLAGS.gallery_images, 'query_images': FLAGS.query_images,
      'synthetic_images': FLAGS.synthetic_images, 'synthetic_seed': FLAGS.synthetic_seed,
      'alexnet_weights': FLAGS.alexnet_weights, 'part_extractor': FLAGS.part_extractor})
  # Another run's workdir, or one in use, fails at once, before TensorFlow is imported (slow);
  # train_and_report checks both again and holds the lock for the whole run.
  check_run_config(FLAGS.workdir, run)
  if FLAGS.strategy != 'multi_worker' or cluster_role()[0]:  # the chief alone holds the lock
    with atomic.exclusive(os.path.join(FLAGS.workdir, LOCK_FILE),
                          f'{FLAGS.workdir} is in use by another training', wait=False):
      pass
  from tf_partfash.run import train_and_report
  text = _flagfile_text()  # the flags as given, before anything can change them
  logging.getLogger().setLevel(logging.INFO)
  # flags.txt only once the run is accepted: a refused resume keeps the one it has.
  train_and_report(run, FLAGS.workdir, workers=FLAGS.workers,
                   skip_corrupt=FLAGS.skip_corrupt_images, strategy_name=FLAGS.strategy,
                   input_cache=FLAGS.input_cache,
                   started=lambda: atomic.write_text(os.path.join(FLAGS.workdir, 'flags.txt'),
                                                     text))


def main(argv):
  del argv
  exit_on_user_error('train.py', _train)


if __name__ == '__main__':
  app.run(main)
