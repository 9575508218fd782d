"""Fault injection: SIGKILL mid-build, a full disk, concurrent builders, concurrent trainings,
damaged caches. After each, the next run succeeds and no file is left half-written."""
import errno
import glob
import logging
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tf_partfash.data.shopping100k import read_attributes
from tf_partfash.parts import dataset as parts_dataset
from tf_partfash.parts.boxes import read_parts_csv
from tf_partfash.search.gallery import GalleryIndex, Prototypes
from tf_partfash.search.trained_run import TrainedRun
from tf_partfash.storage import cache

import tiny

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Builds the index or the prototypes of a workdir in chunks of 8 images, sleeping after saving
# each chunk (the window the tests kill in, or in which two builders overlap). With a `go` file,
# waits for it first, so that two processes start building at the same moment.
_BUILD = '''
import os, sys, time
from tf_partfash.storage import cache
from tf_partfash.search.trained_run import TrainedRun
what, workdir, pause, go = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
save = cache.save_npz
def slow(file, arrays):
  save(file, arrays)
  if 'chunk_' in file:
    print('saved', file, flush=True)
    time.sleep(pause)
cache.save_npz = slow
if go:
  open(go[0] + '.ready' + str(os.getpid()), 'w').close()
  while not os.path.exists(go[0]):
    time.sleep(0.05)
run = TrainedRun.open(workdir, chunk_size=8, progress=False)
for name in what.split(','):
  run.index() if name == 'index' else run.prototypes()
'''


def _model_copy(untrained_run, folder) -> str:
  """A workdir holding the untrained run's model and nothing else (no index, no prototypes)."""
  os.makedirs(folder)
  for name in ('run.json', 'model.weights.h5'):
    shutil.copy(os.path.join(untrained_run.workdir, name), os.path.join(folder, name))
  return str(folder)


def _leftovers(folder) -> list[str]:
  """Temporary files of interrupted writes, anywhere under `folder`."""
  return glob.glob(os.path.join(glob.escape(str(folder)), '**', '*.tmp*'), recursive=True)


def _wait_for(predicate, process, seconds=120.0):
  deadline = time.time() + seconds
  while not predicate():
    assert process.poll() is None, 'the process ended before the awaited moment'
    assert time.time() < deadline, 'timed out'
    time.sleep(0.05)


def _same_index(a: GalleryIndex, b: GalleryIndex) -> None:
  assert a.paths.tolist() == b.paths.tolist()
  np.testing.assert_allclose(a.signatures, b.signatures, rtol=1e-4, atol=1e-4)


def _same_prototypes(a: Prototypes, b: Prototypes) -> None:
  for name, vectors in b.vectors.items():
    np.testing.assert_allclose(a.vectors[name], vectors, rtol=1e-4, atol=1e-4)
    assert a.counts[name].tolist() == b.counts[name].tolist()


def test_sigkill_while_building_resumes_from_the_chunks(untrained_run, tmp_path, monkeypatch):
  workdir = _model_copy(untrained_run, tmp_path / 'run')
  file = os.path.join(workdir, 'index_test.npz')
  first_chunk = os.path.join(file + '.partial', 'chunk_00000.npz')
  process = subprocess.Popen([sys.executable, '-c', _BUILD, 'index', workdir, '60'], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  try:
    _wait_for(lambda: os.path.exists(first_chunk), process)
  finally:
    process.send_signal(signal.SIGKILL)
    process.wait()
  assert not os.path.exists(file)  # nothing half-written where readers look
  saved = _recording_saves(monkeypatch)
  _same_index(TrainedRun.open(workdir, chunk_size=8, progress=False).index(),
              untrained_run.gallery)
  assert 'chunk_00000.npz' not in saved  # resumed: the killed run's chunk was kept
  assert saved[-1] == os.path.basename(file)
  assert not os.path.exists(file + '.partial') and not _leftovers(workdir)


def test_an_interrupted_prototype_pass_resumes_from_its_chunks(untrained_run, tmp_path,
                                                               monkeypatch):
  """The prototypes sum over chunks: an interruption (here an exception after the first chunk;
  a SIGKILL is tested above) leaves the chunks, and the rerun adds only the missing ones."""
  from tf_partfash.search import indexing
  workdir = _model_copy(untrained_run, tmp_path / 'run')
  file = os.path.join(workdir, 'prototypes.npz')
  predict = indexing.predict
  calls = []

  def interrupted(*args, **kwargs):
    if calls:
      raise KeyboardInterrupt
    calls.append(1)
    return predict(*args, **kwargs)

  monkeypatch.setattr(indexing, 'predict', interrupted)
  with pytest.raises(KeyboardInterrupt):
    TrainedRun.open(workdir, chunk_size=8, progress=False).prototypes()
  assert not os.path.exists(file) and os.listdir(file + '.partial')
  monkeypatch.setattr(indexing, 'predict', predict)
  saved = _recording_saves(monkeypatch)
  _same_prototypes(TrainedRun.open(workdir, chunk_size=8, progress=False).prototypes(),
                   untrained_run.prototypes)
  assert 'chunk_00000.npz' not in saved and saved[-1] == 'prototypes.npz'
  assert not os.path.exists(file + '.partial') and not _leftovers(workdir)


def _recording_saves(monkeypatch) -> list[str]:
  """The names of the files `cache.save_npz` writes from now on."""
  saved = []
  save = cache.save_npz
  monkeypatch.setattr(cache, 'save_npz', lambda f, a: (saved.append(os.path.basename(f)),
                                                        save(f, a))[1])
  return saved


def test_concurrent_first_builds_all_succeed(untrained_run, tmp_path):
  """Two first searches (or evaluations) at once: both build the test index and prototypes."""
  workdir = _model_copy(untrained_run, tmp_path / 'run')
  go = str(tmp_path / 'go')
  processes = [subprocess.Popen([sys.executable, '-c', _BUILD, 'index,prototypes', workdir, '0.5',
                                 go], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
  for process in processes:
    _wait_for(lambda: len(glob.glob(go + '.ready*')) == 2 or process.poll() is not None, process)
  open(go, 'w').close()
  for process in processes:
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]
  _same_index(GalleryIndex.load(os.path.join(workdir, 'index_test.npz')), untrained_run.gallery)
  _same_prototypes(Prototypes.load(os.path.join(workdir, 'prototypes.npz')),
                   untrained_run.prototypes)
  assert not _leftovers(workdir)


def test_a_full_disk_leaves_no_half_written_index(untrained_run, tmp_path, monkeypatch):
  workdir = _model_copy(untrained_run, tmp_path / 'run')
  file = os.path.join(workdir, 'index_test.npz')
  savez = np.savez

  def full_disk(f, **arrays):
    if 'signatures' in arrays and 'image_root' in arrays:  # the index file, not a chunk
      f.write(b'PK\x03\x04' + bytes(1000))
      raise OSError(errno.ENOSPC, 'No space left on device')
    savez(f, **arrays)

  monkeypatch.setattr(np, 'savez', full_disk)
  with pytest.raises(OSError, match='No space left'):
    TrainedRun.open(workdir, progress=False).index()
  assert not os.path.exists(file) and not _leftovers(workdir)
  monkeypatch.setattr(np, 'savez', savez)  # room again: the next run succeeds
  _same_index(TrainedRun.open(workdir, progress=False).index(), untrained_run.gallery)
  assert not _leftovers(workdir)


@pytest.mark.parametrize('name', ['index_test.npz', 'prototypes.npz'])
def test_a_truncated_cache_is_named_and_rebuilt(name, untrained_run, tmp_path, caplog):
  workdir = _model_copy(untrained_run, tmp_path / 'run')
  file = os.path.join(workdir, name)
  with open(os.path.join(untrained_run.workdir, name), 'rb') as f:
    data = f.read()
  with open(file, 'wb') as f:
    f.write(data[:len(data) // 2])
  run = TrainedRun.open(workdir, progress=False)
  if name == 'index_test.npz':
    _same_index(run.index(), untrained_run.gallery)
  else:
    _same_prototypes(run.prototypes(), untrained_run.prototypes)
  assert f'{file} is unreadable' in caplog.text and 'rebuilding it' in caplog.text
  with open(file, 'wb') as f:  # a reader that cannot rebuild names the file
    f.write(data[:len(data) // 2])
  with pytest.raises(ValueError, match=f'{file} is unreadable'):
    GalleryIndex.load(file)


def test_a_changed_image_of_a_folder_gallery_is_indexed_again(untrained_run, tmp_path, caplog):
  caplog.set_level(logging.INFO)
  workdir = _model_copy(untrained_run, tmp_path / 'run')
  run = TrainedRun.open(workdir, progress=False)
  gallery = untrained_run.gallery
  folder = tmp_path / 'closet'
  folder.mkdir()
  for k in range(3):
    shutil.copy(gallery.file(k), folder / f'item{k}.jpg')
  before = run.folder_index(str(folder))
  # The same names, one image replaced by another: its features must follow.
  other = next(k for k in range(3, len(gallery))
               if os.path.getsize(gallery.file(k)) != os.path.getsize(gallery.file(0)))
  shutil.copy(gallery.file(other), folder / 'item0.jpg')
  after = run.folder_index(str(folder))
  assert after.paths.tolist() == before.paths.tolist()
  new = run.embed(os.path.dirname(gallery.file(other)), [os.path.basename(gallery.file(other))])
  np.testing.assert_allclose(after.signatures[0], new.signatures[0], rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(after.signatures[1:], before.signatures[1:], rtol=1e-4, atol=1e-4)
  assert '1 image(s) of' in caplog.text and 'changed since it was built (e.g. item0.jpg)' in \
      caplog.text


# Computes the parts cache of a dataset, saving it after every image and pausing 0.5 s per image.
_PARTS = '''
import sys, time
from tf_partfash.data.shopping100k import read_attributes
from tf_partfash.parts import dataset
extract = dataset._extract_file
dataset._extract_file = lambda job, regressor=None: (time.sleep(0.5), extract(job, regressor))[1]
dataset.SAVE_EVERY_SECS = 0.0
data_dir, cache = sys.argv[1:]
dataset.ensure_parts(data_dir, read_attributes(data_dir), cache, progress=False)
'''


def test_sigkill_while_extracting_parts_keeps_a_whole_cache(tiny_synthetic, tmp_path,
                                                            monkeypatch):
  cache = str(tmp_path / 'parts.csv')
  process = subprocess.Popen([sys.executable, '-c', _PARTS, tiny_synthetic, cache], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    _wait_for(lambda: os.path.exists(cache) and len(read_parts_csv(cache)) >= 3, process)
  finally:
    process.send_signal(signal.SIGKILL)
    process.wait()
  kept = read_parts_csv(cache)  # whole: every row parses
  table = read_attributes(tiny_synthetic)
  assert 3 <= len(kept) < len(table)
  extracted = []
  extract = parts_dataset._extract_file
  monkeypatch.setattr(parts_dataset, '_extract_file',
                      lambda job, regressor=None: (extracted.append(job[0]),
                                                   extract(job, regressor))[1])
  parts = parts_dataset.ensure_parts(tiny_synthetic, table, cache, progress=False)
  assert len(parts) == len(table) and len(read_parts_csv(cache)) == len(table)
  assert len(extracted) == len(table) - len(kept)  # resumed: only the missing images
  assert not _leftovers(tmp_path)


# One stage: what is checked is the lock, not training.
TINY = tiny.train_flags(stage2_epochs=0)
# train.py, whose training waits before its first progress line while the file argv[1] exists:
# the first training of the test below is running, holding the workdir, for as long as needed.
_HELD_TRAIN = '''
import os, runpy, sys, time
from tf_partfash.training import trainer
hold = sys.argv[1]
class Held(trainer.ProgressLine):
  def update(self, *args, **kwargs):
    while os.path.exists(hold):
      time.sleep(0.05)
    super().update(*args, **kwargs)
trainer.ProgressLine = Held
sys.argv = sys.argv[2:]
runpy.run_path('train.py', run_name='__main__')
'''


def test_a_second_training_on_a_workdir_is_refused_and_the_first_untouched(tiny_synthetic,
                                                                          tmp_path):
  data = tmp_path / 'data'
  shutil.copytree(tiny_synthetic, data)
  workdir = tmp_path / 'run'
  hold = tmp_path / 'hold'
  hold.touch()
  command = ['train.py', f'--data_dir={data}', f'--workdir={workdir}', *TINY]
  first = subprocess.Popen([sys.executable, '-c', _HELD_TRAIN, str(hold), *command,
                            '--log_every_secs=0'], cwd=ROOT, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
  try:
    _wait_for(lambda: (workdir / 'flags.txt').exists() and (workdir / 'run.json').exists(),
              first, seconds=240)
    flags_txt, run_json = (workdir / 'flags.txt').read_text(), (workdir / 'run.json').read_text()
    second = subprocess.run([sys.executable, *command, '--log_every_secs=7'], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert first.poll() is None  # the first was running all along
    assert second.returncode == 1
    assert second.stderr.strip().splitlines()[-1] == (
        f'train.py: error: {workdir} is in use by another training: process {first.pid} holds '
        f'{workdir / "train.lock"}')
    assert 'Traceback' not in second.stderr
    assert (workdir / 'flags.txt').read_text() == flags_txt  # the first's, not the refused one's
    assert '--log_every_secs=0' in flags_txt
    assert (workdir / 'run.json').read_text() == run_json
    hold.unlink()
    _, stderr = first.communicate(timeout=300)
  finally:
    if first.poll() is None:
      first.kill()
      first.wait()
  assert first.returncode == 0, stderr[-3000:]
  assert (workdir / 'model.weights.h5').exists() and (workdir / 'accuracy.json').exists()
  assert not _leftovers(workdir)


def test_replacing_keeps_the_old_file_on_an_error_and_stale_temporaries_go(tmp_path):
  from tf_partfash.storage import atomic
  file = str(tmp_path / 'result.json')
  atomic.write_json(file, {'version': 1})
  with pytest.raises(OSError, match='No space left'):
    with atomic.replacing(file) as tmp, open(tmp, 'w') as f:
      f.write('{"version": 2, "half')
      raise OSError(errno.ENOSPC, 'No space left on device')
  assert open(file).read() == '{\n  "version": 1\n}\n' and not _leftovers(tmp_path)
  dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                        capture_output=True, text=True).stdout.strip()
  for pid in (dead, os.getpid()):  # a killed writer's and a live writer's
    open(f'{file}.tmp{pid}', 'w').close()
  atomic.remove_stale(file)
  assert _leftovers(tmp_path) == [f'{file}.tmp{os.getpid()}']
