"""A progress line for long jobs: step, rate and ETA at a steady pace on stderr, never a flood."""
from __future__ import annotations

import sys
import time
from typing import TextIO


def format_seconds(seconds: float) -> str:
  seconds = int(round(seconds))
  h, rest = divmod(seconds, 3600)
  return f'{h}:{rest // 60:02d}:{rest % 60:02d}' if h else f'{rest // 60}:{rest % 60:02d}'


class ProgressLine:
  """Prints `what step/total (pct) [loss] rate ETA` at most every `every_secs` seconds, and at the end."""

  def __init__(self, total: int, every_secs: float = 10.0, start: int = 0, unit: str = 'step',
               stream: TextIO | None = None):
    self.total, self.every_secs, self.unit = total, every_secs, unit
    self.stream = stream or sys.stderr
    self._start_count, self._start_time = start, time.monotonic()
    self._last_print = self._start_time
    self._count = start
    self._what, self._loss = '', None

  def update(self, count: int, what: str = '', loss: float | None = None) -> None:
    self._count, self._what, self._loss = count, what, loss
    now = time.monotonic()
    if now - self._last_print >= self.every_secs or count >= self.total:
      self._last_print = now
      self.stream.write(self.line(now) + '\n')
      self.stream.flush()

  def line(self, now: float | None = None) -> str:
    now = time.monotonic() if now is None else now
    done = self._count - self._start_count
    elapsed = max(now - self._start_time, 1e-9)
    rate = done / elapsed
    eta = (self.total - self._count) / rate if rate > 0 else float('nan')
    parts = [self._what] if self._what else []
    parts.append(f'{self.unit} {self._count}/{self.total} ({100.0 * self._count / max(self.total, 1):.0f}%)')
    if self._loss is not None:
      parts.append(f'loss {self._loss:.4f}')
    parts.append(f'{rate:.2f} {self.unit}/s')
    parts.append(f'ETA {format_seconds(eta)}' if eta == eta else 'ETA ?')
    return ' | '.join(parts)

  def close(self) -> None:
    """Prints the final line if the last update was not printed."""
    if self._last_print < time.monotonic() and self._count < self.total:
      self.stream.write(self.line() + '\n')
      self.stream.flush()
