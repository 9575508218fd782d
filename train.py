r"""Trains the part-based network in two stages (paper §6) and reports test accuracy.

  python train.py --flagfile=flags/demo.flags --workdir=runs/demo
  python train.py --flagfile=flags/shopping100k.flags --data_dir=/data/Shopping100k --workdir=runs/paper
  python train.py --flagfile=flags/demo_flam.flags --features_from=runs/demo --workdir=runs/flam

Rerunning the same command resumes from the last checkpoint. Without --data_dir the built-in
synthetic dataset is generated on first use (in $TF_PARTFASH_CACHE, default ~/.cache/tf_partfash).
"""
import dataclasses
import logging
import os
import sys

from absl import app, flags

from tf_partfash import cli
from tf_partfash.config import DataConfig, FlamConfig, INPUT_CACHES, ModelConfig, TrainConfig
from tf_partfash.errors import UserError
from tf_partfash.methods import METHODS, PROPOSED, method_configs
from tf_partfash.storage.workdir import VOLATILE_TRAIN_FIELDS, RunConfig, feature_run_config
from tf_partfash.training import cluster_wait
from tf_partfash.training.distribution import STRATEGIES, cluster_role

cli.define_config_flags(ModelConfig)
cli.define_config_flags(TrainConfig)
cli.define_config_flags(DataConfig)
cli.define_config_flags(FlamConfig)
cli.define_preparation_flags()
flags.adopt_module_key_flags(cli)  # flags.txt and --helpshort list them as train.py's own
flags.DEFINE_string('workdir', None, 'Directory of the run: checkpoints, logs, final model.')
flags.DEFINE_enum('model', PROPOSED, list(METHODS), 'Method of the paper\'s comparison (§7, '
                  'Table 2); it fixes the settings it implies: ' + '; '.join(
                      f'{m.name}: {m.description}'
                      + (' (' + ', '.join(f'{k}={v}' for k, v in m.implies.items()) + ')'
                         if m.implies else '') for m in METHODS.values()) + '.')
flags.DEFINE_string('features_from', None, 'For --model=' + ', '.join(
    m.name for m in METHODS.values() if m.on_features) + ' (paper 003): the finished run whose '
    'frozen features (its signatures, or fc7) the method trains on and searches.')
flags.DEFINE_enum('input_cache', 'none', INPUT_CACHES, "'pixels': decode and resize the "
                  'training images once, into a uint8 file beside the data (or in the workdir '
                  'when the data is read-only) that later epochs memory-map (S x S x 3 bytes an '
                  "image: 12.4 GB for Shopping100k at 227 px); the same batches as 'none', "
                  'without decoding JPEGs every epoch.')
flags.DEFINE_enum('strategy', 'auto', STRATEGIES, "tf.distribute strategy: 'auto' (every GPU "
                  "of this machine), 'default' (one device), 'mirrored' (this machine's devices) "
                  "or 'multi_worker' (several machines, from TF_CONFIG; README: training on "
                  'several machines).')
flags.DEFINE_float('cluster_wait_secs', 600.0, "With --strategy=multi_worker: how long to wait "
                   'for every worker of TF_CONFIG to join, with a progress line naming those not '
                   'reachable, before giving up with an error.', lower_bound=0.0)
flags.mark_flag_as_required('workdir')
FLAGS = flags.FLAGS


def _configs() -> tuple[ModelConfig, TrainConfig]:
  """The configurations of the flags, with the settings --model implies applied; a value out of
  range is a ValueError naming the flag (`config.py` checks every setting)."""
  model = cli.config_from_flags(ModelConfig)
  train = cli.config_from_flags(TrainConfig)
  try:
    return method_configs(FLAGS.model, model, train,
                          cli.given_settings(FLAGS, ModelConfig, TrainConfig))
  except ValueError as e:
    raise UserError(f'--model={FLAGS.model}: {e}') from None


def _run_config() -> RunConfig:
  """What this command trains: run.json's content."""
  feature_method = METHODS[FLAGS.model].on_features
  others = {'features_from'} if FLAGS['features_from'].present else set()
  others |= set(cli.given_settings(FLAGS, FlamConfig))
  if others and not feature_method:
    raise UserError(f'--{sorted(others)[0]} is for --model=' + ' or --model='.join(
        m.name for m in METHODS.values() if m.on_features))
  if not feature_method:
    return RunConfig(FLAGS.model, *_configs(), cli.config_from_flags(DataConfig))
  if not FLAGS.features_from:
    raise UserError(f'--model={FLAGS.model} trains on the features of a finished run: give '
                    '--features_from=<its workdir>')
  ignored = sorted(set(cli.given_settings(FLAGS, ModelConfig, TrainConfig))
                   - {'seed', *VOLATILE_TRAIN_FIELDS})
  if ignored:
    raise UserError(f'--{ignored[0]} does not apply to --model={FLAGS.model}, which trains on '
                    'the frozen features of --features_from (the --flam_* flags set it)')
  return feature_run_config(FLAGS.model, FLAGS.features_from, FLAGS.workdir,
                            cli.config_from_flags(FlamConfig), cli.config_from_flags(TrainConfig),
                            cli.given_settings(FLAGS, DataConfig))


def _train_features(run: RunConfig, started) -> None:
  """A feature method (paper 003): the base run's features, then the method's training."""
  from tf_partfash.search.trained_run import TrainedRun
  from tf_partfash.training.feature_run import train_feature_run
  base = TrainedRun.base_of(FLAGS.workdir, run, workers=FLAGS.workers,
                            skip_corrupt=FLAGS.skip_corrupt_images)
  x, labels = base.training_features(run.flam.attributes)
  train_feature_run(run, FLAGS.workdir, x, labels, started)
  print(f'Trained {FLAGS.workdir} on the features of {base.workdir}. Score it beside its base: '
        f'python evaluate.py --workdirs={base.workdir},{FLAGS.workdir} [--protocol=flam]')


# Contradictions of --model are flag errors: nothing starts.
@flags.multi_flags_validator(
    ['model'] + [f.name for c in (ModelConfig, TrainConfig) for f in dataclasses.fields(c)],
    message='a flag is out of range or contradicts --model')
def _check_configs(values) -> bool:
  del values
  try:
    _configs()
  except ValueError as e:
    raise flags.ValidationError(str(e)) from None
  return True


def _flagfile_text() -> str:
  """flags.txt: this run's flags (every flag of train.py), itself a valid --flagfile; a feature
  method's without the image network's settings, which are its base run's."""
  skip = {'flagfile'}
  if METHODS[FLAGS.model].on_features:
    skip |= {f.name for c in (ModelConfig, TrainConfig, DataConfig) for f in dataclasses.fields(c)}
    skip -= {'seed', *VOLATILE_TRAIN_FIELDS}
  lines = [f.serialize() for f in FLAGS.get_key_flags_for_module(sys.argv[0])
           if f.name not in skip and f.serialize()]
  return ('# Written by train.py; rerun with: python train.py --flagfile=<this file>\n'
          + '\n'.join(sorted(lines)) + '\n')


def _train() -> None:
  if os.path.exists(FLAGS.workdir) and not os.path.isdir(FLAGS.workdir):
    raise UserError(f'--workdir={FLAGS.workdir} is a file, not a directory')
  os.makedirs(FLAGS.workdir, exist_ok=True)  # an unwritable workdir fails before the slow imports
  from tf_partfash.storage import atomic
  from tf_partfash.storage.workdir import (FLAGS_FILE, LOCK_FILE, check_imagenet_weights,
                                           check_run_config)

  run = _run_config()
  # Another run's workdir, or one in use, fails at once, before TensorFlow is imported (slow);
  # train_run checks both again and holds the lock for the whole training.
  check_run_config(FLAGS.workdir, run)
  check_imagenet_weights(FLAGS.workdir, run)
  if FLAGS.strategy != 'multi_worker' or cluster_role()[0]:  # the chief alone holds the lock
    with atomic.exclusive(os.path.join(FLAGS.workdir, LOCK_FILE),
                          f'{FLAGS.workdir} is in use by another training', wait=False):
      pass
  if FLAGS.strategy == 'multi_worker' and not cluster_wait.supervised():
    sys.exit(cluster_wait.supervise(sys.argv, FLAGS.cluster_wait_secs))  # trains in a child
  text = _flagfile_text()  # the flags as given, before anything can change them
  logging.getLogger().setLevel(logging.INFO)
  write_flags = lambda: atomic.write_text(os.path.join(FLAGS.workdir, FLAGS_FILE), text)
  if run.features_from is not None:
    _train_features(run, write_flags)
    return
  from tf_partfash.evaluation.accuracy import report_test_accuracy
  from tf_partfash.training.run import train_run
  # flags.txt only once the run is accepted: a refused resume keeps the one it has.
  trained = train_run(run, FLAGS.workdir, workers=FLAGS.workers,
                      skip_corrupt=FLAGS.skip_corrupt_images, strategy_name=FLAGS.strategy,
                      input_cache=FLAGS.input_cache, started=write_flags)
  if trained:  # the chief
    report_test_accuracy(FLAGS.workdir, run, *trained)


def main(argv):
  del argv
  cli.exit_on_user_error('train.py', _train)


if __name__ == '__main__':
  app.run(main)
