"""How the command lines (train.py, evaluate.py, search.py, `python -m tf_partfash.parts`) end on
an expected error: one line, not a traceback. No TensorFlow, no absl: entry points call it first.
"""
from __future__ import annotations

import sys
from typing import Callable


def exit_on_user_error(program: str, body: Callable[[], None]) -> None:
  """Runs an entry point's `body`. A `ValueError` or `OSError` (the user's input or machine: a
  bad file, flag value or path) ends it with `<program>: error: <message>` and exit status 1;
  any other exception keeps its traceback, as a bug should."""
  try:
    body()
  except (ValueError, OSError) as e:
    sys.exit(f'{program}: error: {e}')
