"""The whole flow from the command line on a tiny synthetic set: train -> evaluate -> search."""
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ['--image_size=147', '--hidden_size=16', '--signature_size=8', '--batch_size=24',
        '--stage1_epochs=1', '--stage2_epochs=1', '--backbone_norm=batch', '--workers=1']


def _run(script, *args):
  result = subprocess.run([sys.executable, script, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0, f'{script} failed:\n{result.stderr[-3000:]}'
  return result


def test_train_evaluate_search(tiny_synthetic, tmp_path):
  data = tmp_path / 'data'
  shutil.copytree(tiny_synthetic, data)
  workdir = tmp_path / 'run'
  trained = _run('train.py', f'--data_dir={data}', f'--workdir={workdir}', *TINY)
  assert 'mean of the special attributes' in trained.stderr
  for name in ('run.json', 'flags.txt', 'model.weights.h5', 'accuracy.json', 'prototypes.npz'):
    assert (workdir / name).exists(), name
  # flags.txt is itself a valid flagfile of the run.
  _run('train.py', f'--flagfile={workdir / "flags.txt"}', '--only_check_args')

  results = tmp_path / 'results.json'
  evaluated = _run('evaluate.py', f'--workdir={workdir}', f'--output_json={results}')
  assert 'not comparable' in evaluated.stdout  # synthetic data: only the ordering of methods
  blob = json.loads(results.read_text())
  assert blob['protocol'] == 'paper' and blob['comparable_to_published'] is False
  (run,) = blob['runs']
  assert run['method'] == 'partnet'
  assert set(run['settings']) == {'direct', 'manipulate1', 'manipulate2'}
  assert os.path.exists(str(results).replace('.json', '_topk.png'))

  picture = tmp_path / 'fig7.png'
  found = _run('search.py', f'--workdir={workdir}', '--query=0', '--set=sleevelen=long',
               '--top_k=3', f'--output_image={picture}', f'--output_json={tmp_path / "s.json"}')
  assert picture.exists() and 'rank' in found.stdout.lower()
  hits = json.loads((tmp_path / 's.json').read_text())
  assert len(hits['results']) == 3
