"""Every flagfile in flags/ parses with its entry point (--only_check_args)."""
import glob
import os
import subprocess
import sys

import pytest

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


def test_there_are_flagfiles():
  names = {os.path.basename(f) for f in FLAGFILES}
  assert {'shopping100k.flags', 'demo.flags'} <= names


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


def test_a_bad_flag_value_is_rejected(tmp_path):
  result = subprocess.run([sys.executable, 'train.py', '--workdir', str(tmp_path),
                           '--optimizer=adam_typo', '--only_check_args'],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert result.returncode != 0


def test_a_flag_contradicting_the_model_is_rejected(tmp_path):
  # demo.flags nests shopping100k.flags, which asks for parts: no_parts must say otherwise.
  result = subprocess.run([sys.executable, 'train.py', '--flagfile=flags/demo.flags',
                           '--model=no_parts', f'--workdir={tmp_path}', '--only_check_args'],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  assert 'method no_parts implies use_parts=False, but use_parts=True was given' in result.stderr
