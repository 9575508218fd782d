"""Shared fixtures: one tiny built-in synthetic dataset for the tests that train a model, and the
real Shopping100k files (sample images, ADDE split lists) found through one setting."""
import os

import pytest

from tiny import MODEL as TINY_MODEL

# Fewer TF start-up lines in test logs; subprocesses inherit it.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# The suite runs one pytest worker per core (README: -n auto) and its models are tiny: one
# TensorFlow thread per op each keeps the workers and their subprocesses from contending.
os.environ.setdefault('TF_NUM_INTRAOP_THREADS', '1')
os.environ.setdefault('TF_NUM_INTEROP_THREADS', '1')

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SHOPPING100K_ENV = 'TF_PARTFASH_SHOPPING100K'
# Set to 1 where the real-data tests must run (CI): missing files then fail instead of skipping.
_REQUIRE_SHOPPING100K_ENV = 'TF_PARTFASH_REQUIRE_SHOPPING100K'


def pytest_addoption(parser: pytest.Parser) -> None:
  parser.addoption('--shopping100k', metavar='DIR',
                   help='the real Shopping100k test files (sample/ and splits/); default: '
                   f'${_SHOPPING100K_ENV}, else ../shared/shopping100k from the repository root')


# The longest tests, started first so that the two xdist workers finish together (the suite's
# wall time is otherwise the longest test started last).
_LONGEST_FIRST = ('test_multi_worker.py::test_two_workers', 'test_end_to_end.py',
                  'test_faults.py::test_a_second_training', 'test_serve_process.py',
                  'test_flam_run.py')


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
  rank = lambda item: next((k for k, name in enumerate(_LONGEST_FIRST) if name in item.nodeid),
                           len(_LONGEST_FIRST))
  items.sort(key=rank)  # stable: the rest keep their order


def _shopping100k_dir(config: pytest.Config, subfolder: str) -> str:
  """`subfolder` of the real Shopping100k test files; skips (or fails, if required) when absent."""
  root = os.path.abspath(config.getoption('shopping100k') or os.environ.get(_SHOPPING100K_ENV)
                         or os.path.join(_REPO_ROOT, '..', 'shared', 'shopping100k'))
  path = os.path.join(root, subfolder)
  if not os.path.isdir(path):
    message = (f'real Shopping100k fixtures not found at {path}: put the sample/ and splits/ '
               f'folders in {root}, or pass --shopping100k=DIR or set {_SHOPPING100K_ENV}')
    if os.environ.get(_REQUIRE_SHOPPING100K_ENV) == '1':
      pytest.fail(f'{message} ({_REQUIRE_SHOPPING100K_ENV}=1)', pytrace=False)
    pytest.skip(message)
  return path


@pytest.fixture(scope='session')
def shopping100k_sample(pytestconfig: pytest.Config) -> str:
  """The four real Shopping100k images and their attribute files, in the distributed layout."""
  return _shopping100k_dir(pytestconfig, 'sample')


@pytest.fixture(scope='session')
def shopping100k_splits(pytestconfig: pytest.Config) -> str:
  """ADDE's public split lists: attr_num.txt, imgs_train.txt, imgs_test.txt, ref_test.txt."""
  return _shopping100k_dir(pytestconfig, 'splits')


@pytest.fixture(scope='session')
def tiny_synthetic(tmp_path_factory):
  """72 small synthetic images in the Shopping100k layout (generated once per test session)."""
  from tf_partfash.synthetic import dataset as synthetic
  out = str(tmp_path_factory.mktemp('tiny_synthetic'))
  synthetic.generate(out, 72, seed=0, width=127, height=184, workers=1)
  return out


def _tiny_run_config(method: str, data_dir: str, train):
  """The tests' tiny network of `method` (its implied settings applied) on `data_dir`."""
  from tf_partfash.config import DataConfig
  from tf_partfash.methods import method_configs
  from tf_partfash.storage.workdir import RunConfig
  model, train = method_configs(method, TINY_MODEL, train)
  return RunConfig(method, model, train, DataConfig(data_dir=data_dir))


@pytest.fixture(scope='session')
def untrained_run(tiny_synthetic, tmp_path_factory):
  """A workdir holding a randomly initialised tiny model of a copy of the tiny synthetic set.

  Its test index and prototypes are built in-process, so the CLIs run as subprocesses find them
  cached and skip loading the model a second time. Fields: workdir, data_dir, data, gallery,
  prototypes.
  """
  import shutil
  import types

  import keras

  from tf_partfash.config import DataConfig, TrainConfig
  from tf_partfash.inputs.prepared import prepare
  from tf_partfash.models.saved import build_model, export_model
  from tf_partfash.search.trained_run import TrainedRun
  from tf_partfash.storage.workdir import save_run_config
  root = tmp_path_factory.mktemp('untrained_run')
  data_dir = root / 'data'
  shutil.copytree(tiny_synthetic, data_dir)
  workdir = str(root / 'run')
  run = _tiny_run_config('partnet', str(data_dir), TrainConfig(batch_size=24))
  save_run_config(workdir, run)
  keras.utils.set_random_seed(0)
  model = build_model(run)
  export_model(workdir, model)
  data = prepare(DataConfig(data_dir=str(data_dir)), workdir)
  opened = TrainedRun(workdir, run, model, data, progress=False)
  gallery, prototypes = opened.index(), opened.prototypes()
  return types.SimpleNamespace(workdir=workdir, data_dir=data_dir, data=data, gallery=gallery,
                               prototypes=prototypes)


@pytest.fixture
def tiny_method_run(tiny_synthetic, tmp_path):
  """Factory: (method, **TrainConfig overrides) -> (RunConfig, workdir, PreparedData).

  A tiny network of the method (its implied settings applied) on the tiny synthetic set, one
  epoch per stage, its workdir under this test's tmp_path, the data prepared.
  """
  from tf_partfash.config import DataConfig, TrainConfig
  from tf_partfash.inputs.prepared import prepare

  def make(method, **train_overrides):
    train_fields = dict(stage1_epochs=1, stage2_epochs=1, batch_size=24, log_every_secs=0)
    train_fields.update(train_overrides)
    run = _tiny_run_config(method, tiny_synthetic, TrainConfig(**train_fields))
    workdir = str(tmp_path / method)
    return run, workdir, prepare(DataConfig(data_dir=tiny_synthetic), workdir)
  return make


@pytest.fixture
def assert_checkpoint_restores_every_weight():
  """The check below, for tests that trained a workdir."""
  return _assert_checkpoint_restores_every_weight


def _assert_checkpoint_restores_every_weight(workdir: str, data) -> None:
  """A Trainer started on a finished workdir restores exactly the exported model's weights.

  BatchNorm statistics and AMNet's memory counts are not trainable: a resumed run must restore
  them too, not only what the optimiser updates.
  """
  import numpy as np

  from tf_partfash.methods import method
  from tf_partfash.models.saved import build_model, load_model
  from tf_partfash.storage.workdir import load_run_config
  from tf_partfash.training.distribution import make_strategy
  from tf_partfash.training.trainer import Trainer
  run = load_run_config(workdir)
  exported = load_model(workdir, run)
  resumed = Trainer(lambda: build_model(run), run.model, run.train,
                    data.examples.subset(data.rows('train')), workdir, make_strategy(),
                    method(run.method))
  resumed.run()  # restores the last checkpoint; nothing is left to train
  assert len(exported.weights) == len(resumed.model.weights)
  for saved, restored in zip(exported.weights, resumed.model.weights):
    np.testing.assert_array_equal(saved.numpy(), restored.numpy(), err_msg=saved.path)
