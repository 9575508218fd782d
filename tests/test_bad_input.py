"""Bad input as a new user or a hostile tester gives it: each is one clear line, or the right thing.

Corrupt images, failed and refused starts, out-of-range settings, a diverging loss, bad bytes in
attribute files, unfinished runs given to evaluate.py, output folders that do not exist.
"""
import dataclasses
import logging
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tf_partfash.attributes import ATTRIBUTE_NAMES
from tf_partfash.config import ModelConfig, TrainConfig
from tf_partfash.data.shopping100k import ATTRIBUTES_DIR, read_attributes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(*args, timeout=180):
  return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                        timeout=timeout)


def _one_line_error(result, prefix: str) -> str:
  """The error line of a CLI that failed as expected: non-zero, no traceback, the line last."""
  assert result.returncode != 0, result.stdout[-2000:]
  assert 'Traceback' not in result.stderr, result.stderr[-3000:]
  line = result.stderr.strip().splitlines()[-1]
  assert line.startswith(prefix), result.stderr[-3000:]
  return line


def _data_copy(tiny_synthetic, tmp_path):
  """The tiny synthetic set without any cache (parts, split), so everything is computed anew."""
  data = tmp_path / 'data'
  shutil.copytree(tiny_synthetic, data, ignore=shutil.ignore_patterns('parts_v*', 'paper_split*',
                                                                      'queries*'))
  return data


def _edit_line(data, name: str, line: int, text: bytes) -> None:
  """Replaces line `line` (1-based) of Attributes/<name>.txt."""
  file = data / ATTRIBUTES_DIR / f'{name}.txt'
  lines = file.read_bytes().split(b'\n')
  lines[line - 1] = text
  file.write_bytes(b'\n'.join(lines))


def test_skip_corrupt_images_leaves_out_a_truncated_upper_body_image(tiny_synthetic, tmp_path,
                                                                     caplog):
  from tf_partfash.config import DataConfig
  from tf_partfash.data.shopping100k import image_file
  from tf_partfash.inputs.prepared import prepare
  from tf_partfash.parts import lower_body_of
  data = _data_copy(tiny_synthetic, tmp_path)
  table = read_attributes(str(data))
  # An image part extraction must decode (its label leaves the case to it, or says upper body).
  coat = next(p for p, c in zip(table['path'], table['category']) if lower_body_of(c) is not True)
  file = image_file(str(data), coat)
  with open(file, 'rb') as f:
    whole = f.read()
  with open(file, 'wb') as f:  # head -c 3000 (these images are small: at most half of it)
    f.write(whole[:min(3000, len(whole) // 2)])
  with pytest.raises(ValueError, match='cannot read image .*truncated'):
    # Without the flag: an error naming it.
    prepare(DataConfig(data_dir=str(data)), str(tmp_path / 'run'))
  with caplog.at_level(logging.WARNING):
    prepared = prepare(DataConfig(data_dir=str(data)), str(tmp_path / 'run'), skip_corrupt=True)
  assert prepared.skipped == (coat,)
  assert coat not in prepared.table['path'].tolist() and len(prepared.table) == len(table) - 1
  assert len(prepared.split) == len(prepared.examples) == len(table) - 1
  assert f'skipping unreadable image {file}' in caplog.text
  assert f'skipped 1 unreadable image(s) of {len(table)}' in caplog.text


def test_a_failed_first_start_records_nothing(tiny_method_run):
  from tf_partfash.training.run import train_run
  run, workdir, data = tiny_method_run('partnet')
  missing = dataclasses.replace(run, data=dataclasses.replace(run.data,
                                                              alexnet_weights='/missing.npy'))
  with pytest.raises(FileNotFoundError, match='/missing.npy'):
    train_run(missing, workdir, data=data)
  too_big = dataclasses.replace(run, train=dataclasses.replace(run.train, batch_size=480))
  with pytest.raises(ValueError, match='batch_size 480'):
    train_run(too_big, workdir, data=data)
  assert os.listdir(workdir) == ['train.lock']  # no run.json, checkpoint or TensorBoard log

  class Accepted(Exception):
    pass

  def started():
    assert os.path.exists(os.path.join(workdir, 'run.json'))
    raise Accepted  # the corrected start was accepted; no need to train it here

  with pytest.raises(Accepted):
    train_run(run, workdir, data=data, started=started)


def test_a_refused_resume_keeps_flags_txt(tmp_path):
  from tf_partfash.config import DataConfig
  from tf_partfash.storage.workdir import RunConfig, save_run_config
  workdir = tmp_path / 'run'
  data = DataConfig(data_dir=str(tmp_path / 'data'))
  save_run_config(str(workdir), RunConfig('partnet', ModelConfig(), TrainConfig(), data))
  (workdir / 'flags.txt').write_text('# the stored run\n')
  result = _cli('train.py', f'--workdir={workdir}', f'--data_dir={tmp_path / "data"}', '--seed=3')
  line = _one_line_error(result, f'train.py: error: {workdir} holds a run with another '
                         'configuration')
  assert 'train.seed: stored 0, requested 3' in line
  assert (workdir / 'flags.txt').read_text() == '# the stored run\n'


@pytest.mark.parametrize('flag, message', [
    ('--stage1_epochs=-1', '--stage1_epochs=-1: must be a finite number at least 0'),
    ('--stage1_learning_rate=nan', '--stage1_learning_rate=nan: must be a finite number above 0'),
])
def test_out_of_range_flags_stop_before_anything_starts(flag, message, tmp_path):
  # A data_dir that does not exist: were the flag let through, the start fails at once anyway.
  result = _cli('train.py', f'--workdir={tmp_path / "run"}', f'--data_dir={tmp_path / "none"}',
                flag)
  assert result.returncode == 1 and message in result.stderr
  assert 'Traceback' not in result.stderr
  assert not (tmp_path / 'run').exists()


@pytest.mark.parametrize('config, field, value', [
    (TrainConfig, 'stage2_epochs', -2), (TrainConfig, 'stage2_learning_rate', math.inf),
    (TrainConfig, 'stage1_learning_rate', 0.0), (TrainConfig, 'momentum', 1.0),
    (TrainConfig, 'batch_size', 0), (TrainConfig, 'margin', -0.1), (TrainConfig, 'seed', -1),
    (TrainConfig, 'weight_decay', math.nan), (TrainConfig, 'checkpoint_every_secs', -1.0),
    (ModelConfig, 'dropout', 1.0), (ModelConfig, 'image_size', 146),  # conv5 under 8x8
    (ModelConfig, 'signature_size', 0),
])
def test_configs_refuse_values_out_of_range(config, field, value):
  with pytest.raises(ValueError, match=f'^{field}={value!r}: must be a finite number'):
    config(**{field: value})


def test_configs_refuse_nothing_to_train_and_name_the_file_of_a_stored_one(tmp_path):
  import json

  from tf_partfash import config
  from tf_partfash.config import DataConfig
  from tf_partfash.models import alexnet
  from tf_partfash.storage.workdir import RunConfig, load_run_config, save_run_config
  assert config.MIN_IMAGE_SIZE == alexnet.MIN_IMAGE_SIZE
  with pytest.raises(ValueError, match='nothing to train'):
    TrainConfig(stage1_epochs=0, stage2_epochs=0)
  TrainConfig(stage1_epochs=0, stage2_epochs=1)  # one stage alone is a run
  save_run_config(str(tmp_path), RunConfig('partnet', ModelConfig(), TrainConfig(), DataConfig()))
  file = tmp_path / 'run.json'
  blob = json.loads(file.read_text())
  blob['train']['momentum'] = 2.0
  file.write_text(json.dumps(blob))
  with pytest.raises(ValueError, match=f'^{file}: momentum=2.0: must be'):
    load_run_config(str(tmp_path))
  file.write_text('{"format_version": 1, "meth')  # cut short
  with pytest.raises(ValueError, match=f'^{file}: not a readable run configuration'):
    load_run_config(str(tmp_path))


def test_a_non_finite_loss_stops_at_its_step_keeping_the_last_good_checkpoint(tiny_method_run,
                                                                              monkeypatch):
  import tensorflow as tf

  from tf_partfash.methods import method
  from tf_partfash.models.saved import build_model
  from tf_partfash.training import objectives
  from tf_partfash.training.distribution import make_strategy
  from tf_partfash.training.trainer import DivergedError, Trainer
  run, workdir, data = tiny_method_run('partnet', checkpoint_every_secs=0)

  partnet_loss = objectives.partnet_loss

  def diverging(model, outputs, batch, stage, config, seed):
    """partnet's loss, NaN from the third step on (seed[1] is the step)."""
    total, logs = partnet_loss(model, outputs, batch, stage, config, seed)
    total = total * tf.where(seed[1] >= 2, math.nan, 1.0)
    return total, {**logs, 'loss/total': total}

  monkeypatch.setattr(objectives, 'partnet_loss', diverging)  # the registry resolves it on use
  trainer = Trainer(lambda: build_model(run), run.model, run.train,
                    data.examples.subset(data.rows('train')), workdir, make_strategy(),
                    method('partnet'))
  with pytest.raises(DivergedError, match=r'at step 3 \(stage 1 epoch 1\): loss nan; stopped '
                     r'without checkpointing it, the last checkpoint, .*ckpt-2, holds the last '
                     'good weights'):
    trainer.run()
  assert trainer.manager.latest_checkpoint.endswith('ckpt-2')
  assert not all(np.isfinite(w.numpy()).all() for w in trainer.model.weights)  # NaN in memory
  with pytest.raises(DivergedError, match='non-finite weights'):
    trainer._save(3, 1, 1)  # the bad weights are never written
  assert trainer.manager.latest_checkpoint.endswith('ckpt-2')
  restored = tf.train.Checkpoint(weights=list(build_model(run).weights))
  restored.restore(trainer.manager.latest_checkpoint).expect_partial()
  assert all(np.isfinite(w.numpy()).all() for w in restored.weights)


def test_attribute_files_name_bad_bytes_and_paths_with_spaces(tiny_synthetic, tmp_path):
  data = tmp_path / 'data'
  shutil.copytree(os.path.join(tiny_synthetic, ATTRIBUTES_DIR), data / ATTRIBUTES_DIR)
  first = ATTRIBUTE_NAMES[0]
  original = (data / ATTRIBUTES_DIR / f'{first}.txt').read_bytes()
  _edit_line(data, first, 3, b'Female/1_Coats/caf\xe9.jpg 2')
  with pytest.raises(ValueError, match=rf'{first}\.txt:3: not UTF-8 text \(byte 0xe9, byte 19 '
                     r'of the line\)'):
    read_attributes(str(data), check_images=False)
  (data / ATTRIBUTES_DIR / f'{first}.txt').write_bytes(original)
  _edit_line(data, first, 2, b'Female/1_Coats/my coat.jpg 2')
  with pytest.raises(ValueError, match=rf"{first}\.txt:2: image path 'Female/1_Coats/my coat.jpg'"
                     ' contains a space; one space separates path and value index'):
    read_attributes(str(data), check_images=False)
  _edit_line(data, first, 2, b'Female/1_Coats/coat.jpg 2 5')  # an extra column, not a space
  with pytest.raises(ValueError, match=rf"{first}\.txt:2: 2 values after the image path "
                     "'Female/1_Coats/coat.jpg'; expected one value index"):
    read_attributes(str(data), check_images=False)
  (data / ATTRIBUTES_DIR / f'{first}.txt').write_bytes(b'\xef\xbb\xbf' + original)
  with pytest.raises(ValueError, match=rf'{first}\.txt:1: starts with a UTF-8 byte-order mark'):
    read_attributes(str(data), check_images=False)


def test_cli_errors_are_one_line(tiny_synthetic, tmp_path):
  data = _data_copy(tiny_synthetic, tmp_path)
  _edit_line(data, ATTRIBUTE_NAMES[0], 2, b'Female/1_Coats/x.jpg seven')
  bad_line = f"{ATTRIBUTE_NAMES[0]}.txt:2: value index 'seven' is not an integer"
  line = _one_line_error(_cli('train.py', f'--data_dir={data}', '--alexnet_weights=none',
                              f'--workdir={tmp_path / "r"}'), 'train.py: error: ')
  assert line.endswith(bad_line)
  line = _one_line_error(_cli('-m', 'tf_partfash.parts', f'--data_dir={data}',
                              f'--output={tmp_path / "parts.csv"}'),
                         'python -m tf_partfash.parts: error: ')
  assert line.endswith(bad_line)
  (tmp_path / 'a_file').write_text('')
  line = _one_line_error(_cli('train.py', f'--workdir={tmp_path / "a_file" / "run"}'),
                         'train.py: error: ')  # an unwritable workdir
  assert 'Not a directory' in line and str(tmp_path / 'a_file') in line
  line = _one_line_error(_cli('evaluate.py', f'--workdir={tmp_path / "missing"}'),
                         'evaluate.py: error: ')
  assert line.startswith(f'evaluate.py: error: {tmp_path / "missing" / "run.json"} not found')


def test_evaluate_checks_every_workdir_before_scoring(untrained_run, tmp_path):
  unfinished = tmp_path / 'unfinished'
  unfinished.mkdir()
  shutil.copy(os.path.join(untrained_run.workdir, 'run.json'), unfinished / 'run.json')
  results = tmp_path / 'results.json'
  result = _cli('evaluate.py', f'--workdirs={untrained_run.workdir},{unfinished}',
                f'--output_json={results}')
  line = _one_line_error(result, 'evaluate.py: error: ')
  assert line == (f'evaluate.py: error: {unfinished / "model.weights.h5"} not found: training in '
                  f'{unfinished} has not finished (rerun the same train.py command to resume it)')
  assert not results.exists() and 'direct' not in result.stdout  # nothing was scored


def test_search_messages_show_plain_values_and_missing_output_folders(untrained_run, tmp_path):
  workdir = untrained_run.workdir
  line = _one_line_error(_cli('search.py', f'--workdir={workdir}', '--query=no/such.jpg'),
                         'search.py: error: --query: neither a gallery ID nor an image file')
  assert 'np.str_' not in line and f"(e.g. '{untrained_run.gallery.paths[0]}')" in line
  missing = tmp_path / 'missing'
  line = _one_line_error(_cli('search.py', f'--workdir={workdir}', '--query=0',
                              f'--output_json={missing / "s.json"}'), 'search.py: error: ')
  assert line == f'search.py: error: --output_json={missing / "s.json"}: folder {missing} does ' \
      'not exist'


def test_parts_output_in_a_missing_folder_fails_before_extraction(tiny_synthetic, tmp_path):
  data = _data_copy(tiny_synthetic, tmp_path)
  output = tmp_path / 'missing' / 'parts.csv'
  result = _cli('-m', 'tf_partfash.parts', f'--data_dir={data}', f'--output={output}')
  line = _one_line_error(result, 'python -m tf_partfash.parts: error: ')
  assert line.endswith(f'--output={output}: folder {output.parent} does not exist')
  assert 'parts | image' not in result.stderr  # no extraction progress line


def test_only_user_errors_become_one_line_messages():
  # A bad input is the user's to fix and gets one line; any other exception is a bug and keeps
  # its traceback (a ValueError from deep inside numpy must not pass as the user's mistake).
  from tf_partfash.cli import exit_on_user_error
  from tf_partfash.errors import UserError

  def raises(error):
    def body():
      raise error
    return body

  with pytest.raises(SystemExit, match=r'^prog: error: bad.csv:3: no such value$'):
    exit_on_user_error('prog', raises(UserError('bad.csv:3: no such value')))
  with pytest.raises(SystemExit, match=r'^prog: error: .*missing.txt'):
    exit_on_user_error('prog', raises(FileNotFoundError('missing.txt')))
  with pytest.raises(ValueError, match='zero-size array'):
    exit_on_user_error('prog', raises(ValueError('zero-size array to reduction operation')))


def test_the_paper_configuration_without_imagenet_weights_is_refused_before_any_data(tmp_path):
  # flags/shopping100k.flags (the LRN backbone of §6) without --alexnet_weights: one line naming
  # the flag and how to train from scratch on purpose, before the (absent) data is read.
  missing_data = tmp_path / 'no_such_dataset'
  result = _cli('train.py', '--flagfile=flags/shopping100k.flags', f'--data_dir={missing_data}',
                f'--workdir={tmp_path / "run"}')
  line = _one_line_error(result, 'train.py: error: --alexnet_weights is not given: the LRN '
                                 "backbone of the paper's configuration")
  assert line.endswith('or --alexnet_weights=none to train it from scratch on purpose')
  assert not (tmp_path / 'run' / 'run.json').exists()
  # With =none it goes on, to the data (absent here), and records the choice.
  result = _cli('train.py', '--flagfile=flags/shopping100k.flags', f'--data_dir={missing_data}',
                '--alexnet_weights=none', f'--workdir={tmp_path / "run"}')
  assert 'no_such_dataset' in _one_line_error(result, 'train.py: error: ')
  from tf_partfash.config import DataConfig
  assert DataConfig(alexnet_weights='none').imagenet_weights is None
  assert DataConfig(alexnet_weights='w.npy').imagenet_weights == 'w.npy'
