"""Every flagfile in flags/ parses with its entry point (--only_check_args)."""
import glob
import os
import subprocess
import sys

import pytest

from train_cli import recorded_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGFILES = sorted(glob.glob(os.path.join(ROOT, 'flags', '*.flags')))


def _entry_point(flagfile: str) -> str:
  """The script a flagfile is for, from its header's example command (train.py by default)."""
  with open(flagfile) as f:
    header = ''.join(line for line in f if line.startswith('#'))
  for script in ('evaluate.py', 'search.py'):
    if f'python {script} --flagfile' in header:
      return script
  return 'train.py'


def _model_of(flagfile: str) -> str | None:
  with open(flagfile) as f:
    return next((line.strip().split('=', 1)[1] for line in f if line.startswith('--model=')),
                None)


def test_every_method_has_a_paper_and_a_demo_flagfile():
  from tf_partfash.methods import METHODS, PROPOSED
  names = {os.path.basename(f) for f in FLAGFILES}
  for method in METHODS:
    paper, demo = (('shopping100k.flags', 'demo.flags') if method == PROPOSED
                   else (f'{method}.flags', f'demo_{method}.flags'))
    assert {paper, demo} <= names, method
    for name in (paper, demo):
      assert _model_of(os.path.join(ROOT, 'flags', name)) == (None if method == PROPOSED
                                                               else method), name


@pytest.mark.parametrize('flagfile', FLAGFILES, ids=os.path.basename)
def test_flagfile_parses(flagfile, tmp_path):
  with open(flagfile) as f:
    text = f.read()
  assert text.startswith('#'), 'a flagfile starts with a comment saying what it reproduces'
  assert 'python ' in text, 'the header gives the command to run it'
  result = subprocess.run(
      [sys.executable, _entry_point(flagfile), f'--flagfile={flagfile}',
       f'--workdir={tmp_path}', '--only_check_args'],
      cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]


def _check_args(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, 'train.py', *args, '--only_check_args'], cwd=ROOT,
                        capture_output=True, text=True, timeout=120)


def test_a_bad_flag_value_is_rejected(tmp_path):
  result = _check_args(f'--workdir={tmp_path}', '--optimizer=adam_typo')
  assert result.returncode == 1
  assert "flag --optimizer=adam_typo: value should be one of <sgd|adamw>" in result.stderr


@pytest.mark.parametrize('method, use_parts, triplet_weight', [
    ('partnet', True, 1.0), ('no_parts', False, 1.0), ('classic', False, 0.0),
    ('amnet', False, 1.0)])
def test_model_selects_a_method_on_top_of_the_demo(method, use_parts, triplet_weight, tmp_path):
  # The base flagfiles leave what a method implies (use_parts, triplet_weight) to --model; the
  # demo's own settings stay.
  run = recorded_run('--flagfile=flags/demo.flags', f'--model={method}', f'--workdir={tmp_path}')
  assert run['method'] == method
  assert (run['model']['use_parts'], run['train']['triplet_weight']) == (use_parts,
                                                                         triplet_weight)
  assert (run['model']['hidden_size'], run['train']['optimizer'],
          run['data']['synthetic_images']) == (512, 'adamw', 25000)


def test_a_flag_contradicting_the_model_is_rejected(tmp_path):
  result = _check_args('--flagfile=flags/demo.flags', '--model=no_parts', '--use_parts=true',
                       f'--workdir={tmp_path}')
  assert result.returncode == 1
  assert 'method no_parts implies use_parts=False, but use_parts=True was given' in result.stderr
