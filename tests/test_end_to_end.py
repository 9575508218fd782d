"""The whole flow from the command line on a tiny synthetic set, one test per stage on one
training: train (killed with SIGKILL mid-run) -> the same command again (resumes, and ends
bitwise where an uninterrupted training ends) -> evaluate -> search. The training is shared (a
module fixture), so the stages run on one pytest worker (`--dist loadfile` in setup.cfg).
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import types

import pytest
from PIL import Image

from tf_partfash.search import figures

import tiny

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = tiny.train_flags(log_every_secs=0)


def _run(script, *args):
  result = subprocess.run([sys.executable, script, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0, f'{script} failed:\n{result.stderr[-3000:]}'
  return result


def _latest_checkpoint_step(workdir) -> int:
  index = os.path.join(workdir, 'checkpoints', 'checkpoint')
  if not os.path.exists(index):
    return 0
  with open(index) as f:
    match = re.search(r'model_checkpoint_path: "ckpt-(\d+)"', f.read())
  return int(match.group(1)) if match else 0


def _train_until_killed(command, workdir, step):
  process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  deadline = time.time() + 240
  while _latest_checkpoint_step(workdir) < step and time.time() < deadline:
    assert process.poll() is None, 'training ended before it could be interrupted'
    time.sleep(0.1)
  process.send_signal(signal.SIGKILL)
  process.wait()
  return _latest_checkpoint_step(workdir)


@pytest.fixture(scope='module')
def trained(tiny_synthetic, tmp_path_factory):
  """The tiny run trained by train.py, killed at its third checkpoint and resumed by the same
  command: its data and workdir, the resumed command's output and the step it was killed at."""
  root = tmp_path_factory.mktemp('end_to_end')
  data, workdir = root / 'data', root / 'run'
  shutil.copytree(tiny_synthetic, data)
  train = ['train.py', f'--data_dir={data}', f'--workdir={workdir}', *TINY]
  # Beside it, the same training uninterrupted (on its own copy of the data: no shared caches).
  shutil.copytree(tiny_synthetic, root / 'data_whole')
  whole = subprocess.Popen([sys.executable, 'train.py', f'--data_dir={root / "data_whole"}',
                            f'--workdir={root / "whole"}', *TINY], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  killed_at = _train_until_killed([sys.executable, *train], workdir, step=3)
  assert killed_at >= 3 and not (workdir / 'model.weights.h5').exists()
  resumed = _run(*train)
  _, stderr = whole.communicate(timeout=300)
  assert whole.returncode == 0, stderr[-3000:]
  return types.SimpleNamespace(root=root, data=data, workdir=workdir, killed_at=killed_at,
                               resumed=resumed, whole=root / 'whole')


def test_a_killed_training_resumes_at_its_last_checkpoint(trained,
                                                          assert_checkpoint_restores_every_weight):
  workdir, log = trained.workdir, trained.resumed.stderr
  resumed = re.search(r'resuming from .*ckpt-(\d+) at step (\d+)', log)
  assert resumed and int(resumed.group(2)) == trained.killed_at  # only the running step is lost
  steps = re.findall(r'stage (\d) epoch (\d+) \| step (\d+)/(\d+)', log)
  assert int(steps[0][2]) == trained.killed_at + 1
  # 1 + 1 epochs, all done, the last one stage 2's first (epochs count within their stage).
  assert steps[-1][2] == steps[-1][3] and steps[-1][:2] == ('2', '1')
  assert 'mean of the special attributes' in log
  from tf_partfash.config import DataConfig
  from tf_partfash.inputs.prepared import prepare
  assert_checkpoint_restores_every_weight(
      str(workdir), prepare(DataConfig(data_dir=str(trained.data)), str(workdir)))
  for name in ('run.json', 'flags.txt', 'model.weights.h5', 'accuracy.json'):
    assert (workdir / name).exists(), name
  # flags.txt is itself a valid flagfile of the run.
  _run('train.py', f'--flagfile={workdir / "flags.txt"}', '--only_check_args')


def test_a_killed_and_resumed_training_ends_bitwise_where_an_uninterrupted_one_does(trained):
  # Dropout (0.5 in the tiny network) and flips on: every random draw resumes where it stopped.
  import h5py
  import numpy as np

  def weights(workdir):
    found = {}
    with h5py.File(workdir / 'model.weights.h5', 'r') as f:
      f.visititems(lambda name, item: found.__setitem__(name, item[()])
                   if isinstance(item, h5py.Dataset) else None)
    return found
  resumed, whole = weights(trained.workdir), weights(trained.whole)
  assert resumed.keys() == whole.keys() and len(whole) > 50
  for name, array in whole.items():
    np.testing.assert_array_equal(resumed[name], array, err_msg=name)


def test_evaluate_scores_two_copies_as_one_method_as_the_library_does(trained):
  # Two runs of one configuration and seed side by side: one column, "2 runs".
  workdir, copy = trained.workdir, trained.root / 'copy'
  shutil.copytree(workdir, copy)
  results = trained.root / 'out' / 'results.json'
  evaluated = _run('evaluate.py', f'--workdirs={workdir},{copy}', '--hit_attributes=all',
                   f'--output_json={results}')
  assert 'Data: synthetic images' in evaluated.stdout and 'not comparable' in evaluated.stdout
  assert 'Hit rule (--hit_attributes=all)' in evaluated.stdout
  assert 'Proposed (2 runs)' in evaluated.stdout and '(paper Table 2)' in evaluated.stdout
  blob = json.loads(results.read_text())
  assert blob['protocol'] == 'paper' and blob['comparable_to_published'] is False
  assert blob['hit_attributes'] == 'all' and blob['distance'] == 'euclidean'
  # The queries are stored beside the split, in the (writable) data directory.
  assert blob['query_file'] == str(trained.data / 'paper_split_seed0.queries_all_seed0.json')
  assert [r['method'] for r in blob['runs']] == ['partnet', 'partnet']
  assert set(blob['runs'][0]['settings']) == {'direct', 'manipulate1', 'manipulate2'}
  assert (trained.root / 'out' / 'results_topk.png').exists()
  assert (workdir / 'prototypes.npz').exists() and (workdir / 'index_test.npz').exists()
  # The library, in-process on the stored queries, gives the numbers the command stored.
  from tf_partfash.evaluation import queries
  from tf_partfash.evaluation.protocols.paper import evaluate_paper
  from tf_partfash.search.trained_run import TrainedRun
  run = TrainedRun.open(str(workdir), progress=False)
  query_sets, _ = queries.ensure_paper_queries(run.data.split_file, run.data.table,
                                               run.data.split, 0, 'all')
  for setting, scores in evaluate_paper(run, query_sets).scores.items():
    stored = blob['runs'][0]['settings'][setting]
    assert stored['queries'] == len(scores)
    assert stored['top_k'] == ([round(float(v), 6) for v in scores.top_k()] if len(scores) else [])


def test_search_prints_writes_and_draws_the_same_results(trained):
  picture, report_file = trained.root / 'fig7.png', trained.root / 's.json'
  found = _run('search.py', f'--workdir={trained.workdir}', '--query=0', '--set=sleevelen=long',
               '--top_k=3', f'--output_image={picture}', f'--output_json={report_file}')
  report = json.loads(report_file.read_text())
  printed = [line.split()[:3] for line in found.stdout.splitlines() if line[:4].strip().isdigit()]
  assert printed == [[str(r['rank']), str(r['row']), f'{r["distance"]:.4f}']
                     for r in report['results']]
  assert len(printed) == 3 and report['query_row'] == 0
  assert 0 not in [r['row'] for r in report['results']]  # the query itself is left out
  assert report['changes'] == {'sleevelen': 'Long'}
  with Image.open(picture) as im:  # query + text panel + 3 results in one row (Fig. 7)
    assert im.size[0] == 2 * figures.MARGIN + 5 * (figures.TILE_WIDTH + figures.MARGIN)
