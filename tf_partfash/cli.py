"""What the command lines share (train.py, evaluate.py, search.py, `python -m tf_partfash.parts`):
flags derived from the configurations' declarations, the flags several of them take, defined
once, and how they end on an expected error. No TensorFlow: `--only_check_args` stays instant.

Library code never reads flags: entry points build a configuration from them (`config_from_flags`)
and call tf_partfash functions with it.
"""
from __future__ import annotations

import dataclasses
import sys
import typing
from typing import Any, Callable

from absl import flags

from tf_partfash.config import BACKENDS, DISTANCES, check_value
from tf_partfash.errors import UserError

_DEFINE = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer, float: flags.DEFINE_float,
           str: flags.DEFINE_string}


def exit_on_user_error(program: str, body: Callable[[], None]) -> None:
  """Runs an entry point's `body`. A `UserError` or `OSError` (the user's input or machine: a
  bad file, flag value or path) ends it with `<program>: error: <message>` and exit status 1;
  any other exception keeps its traceback, as a bug should."""
  try:
    body()
  except (UserError, OSError) as e:
    sys.exit(f'{program}: error: {e}')


def _flag_type(annotation: Any) -> type:
  """bool, int, float or str, from a field's type (`int | None` is int)."""
  options = [t for t in typing.get_args(annotation) if t is not type(None)] or [annotation]
  return options[0]


def define_config_flags(config_class: type) -> None:
  """One flag per field of a configuration dataclass (`config.setting`): its default and help,
  an enum of its choices, and a validator of its range, so a bad value stops before anything
  starts."""
  types = typing.get_type_hints(config_class)
  for field in dataclasses.fields(config_class):
    help_text = field.metadata['help']
    if 'choices' in field.metadata:
      flags.DEFINE_enum(field.name, field.default, field.metadata['choices'], help_text)
      continue
    _DEFINE[_flag_type(types[field.name])](field.name, field.default, help_text)
    if 'range' in field.metadata:
      flags.register_validator(field.name,
                               lambda value, field=field: check_value(field, value) is None,
                               message=f'must be a finite number {field.metadata["range"]}')


def config_from_flags(config_class: type, flag_values: flags.FlagValues = flags.FLAGS) -> Any:
  """The configuration of the flags `define_config_flags` defined; an invalid one is a
  ValueError naming the flag."""
  try:
    return config_class(**{f.name: flag_values[f.name].value
                           for f in dataclasses.fields(config_class)})
  except ValueError as e:
    raise UserError(f'--{e}') from None


def given_settings(flag_values: flags.FlagValues, *config_classes: type) -> dict[str, Any]:
  """The settings of these configurations given on the command line (or in a flagfile)."""
  return {f.name: flag_values[f.name].value for c in config_classes
          for f in dataclasses.fields(c) if flag_values[f.name].present}


def define_search_flags() -> None:
  """How a gallery is searched (evaluate.py, search.py)."""
  flags.DEFINE_enum('distance', 'euclidean', DISTANCES,
                    "d of Eq. 4-6: 'euclidean' (the paper: the Euclidean distances of the S + 1 "
                    "signatures summed) or 'squared' (squared distances summed; what "
                    '--backend=faiss serves).')
  flags.DEFINE_enum('backend', 'exact', BACKENDS,
                    "Nearest-neighbour search: 'exact' (numpy), 'faiss' (exact, squared only) or "
                    "'compact' (a catalogue-size index: product-quantised codes find 2,000 "
                    'candidates, re-ranked exactly by --distance; built on first use).')
  flags.DEFINE_bool('rebuild_compact_index', False,
                    'Rebuild the compact index of --backend=compact (one of another model or '
                    'gallery is refused until rebuilt).')


def define_preparation_flags() -> None:
  """How a run's data is made ready (train.py, evaluate.py): dataset generation, part
  extraction and unreadable images."""
  flags.DEFINE_integer('workers', 2, 'Processes for dataset generation and part extraction.',
                       lower_bound=1)
  flags.DEFINE_bool('skip_corrupt_images', False, 'Leave out (and log) undecodable images; '
                    'evaluate.py takes it as train.py was given it.')
