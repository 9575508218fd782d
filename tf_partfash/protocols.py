"""The evaluation protocols, each declared once (as methods are in `methods.py`).

evaluate.py's `--protocol` choices, their help, the options each takes and the dispatch derive
from `PROTOCOLS`. A protocol is one entry here and one module in
`tf_partfash/evaluation/protocols/` whose `evaluate(runs, options)` scores opened runs
(`search.trained_run.TrainedRun`) and returns an `evaluation.reports.Outcome`: the tables to
print, results.json and its figure. Nothing here imports TensorFlow.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Sequence

from tf_partfash.errors import UserError

DEFAULT_GALLERY_SIZES = (1000, 2000, 5000, 10000, 19000)
# FLAM §4 "Datasets": "we randomly sampled 5K and 2K images from DARN and Shopping100k".
DEFAULT_FLAM_IMAGES = 2000


@dataclasses.dataclass(frozen=True)
class Options:
  """How runs are scored. The first three apply to every protocol; each of the others belongs to
  the protocols that name it in `Protocol.options`."""
  distance: str = 'euclidean'   # d of Eq. 4-6 (`config.DISTANCES`)
  backend: str = 'exact'        # `config.BACKENDS`
  query_seed: int = 0           # the queries' random manipulations (FLAM's: and image sample)
  hit_attributes: str = 'special'  # the paper protocol's hit rule (`evaluation.queries.HIT_RULES`)
  adde_dir: str | None = None   # ADDE's release files; None: written by ADDE's rule
  gallery_sizes: tuple[int, ...] = DEFAULT_GALLERY_SIZES
  flam_images: int = DEFAULT_FLAM_IMAGES  # FLAM's protocol: at most this many evaluation images

  def __post_init__(self):
    if not self.gallery_sizes:
      raise UserError('gallery_sizes is empty: give one or more gallery sizes')
    if self.flam_images < 1:
      raise UserError(f'flam_images={self.flam_images}: give at least 1')


@dataclasses.dataclass(frozen=True)
class Protocol:
  name: str
  description: str            # the --protocol help text
  module: str                 # its implementation: a module with `evaluate(runs, options)`
  options: tuple[str, ...] = ()  # its own `Options` fields: others keep their defaults

  def evaluate(self, runs: Sequence[Any], options: Options) -> Any:
    """Scores opened runs (`TrainedRun`s) by the protocol's module, imported on first use (it
    reads the models): an `evaluation.reports.Outcome`."""
    return importlib.import_module(self.module).evaluate(runs, options)


_MODULE = 'tf_partfash.evaluation.protocols.'
PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (
    Protocol('paper', '§7: direct search, 1 and 2 manipulations (Fig. 6, Table 2)',
             _MODULE + 'paper', ('hit_attributes',)),
    Protocol('adde', "ADDE's public protocol (its query files, or written by its rule from the "
             "run's test images; gallery = all test images, exact 151-dim hits)",
             _MODULE + 'adde', ('adde_dir',)),
    Protocol('feedback', "personalization: a simulated shopper's rounds of Eq. 5-6 feedback "
             "towards the paper queries' hidden targets (§5, Fig. 8)", _MODULE + 'feedback'),
    Protocol('gallery_size', 'AMNet Fig. 6: top-20 after one manipulation in nested galleries '
             'of --gallery_sizes images', _MODULE + 'gallery_size', ('gallery_sizes',)),
    Protocol('flam', "FLAM's (Shin et al., §4, Table 3): top-k after changing shape (category), "
             'color or pattern, on at most --flam_images test images labelled on all three '
             '(their 10 most frequent classes), which are gallery and queries at once',
             _MODULE + 'flam', ('flam_images',)),
)}
# Options every protocol reads.
COMMON_OPTIONS = ('distance', 'backend', 'query_seed')
