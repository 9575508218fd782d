"""Fastenings and pockets of a synthetic garment, drawn on a `Sketch` (paper §3, §4.3).

Upper-body fastenings run down the centre strip of the torso (the fastening part of §4.3) from the
end of the neck opening; lower-body ones sit at the waistband and fly. Pockets are a cheap visible
cue for the general `pocket` attribute.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from tf_partfash.synthetic.sketch import Body, Sketch, arc, both, outlined, pts


def draw_fastening(sk: Sketch, fastening: str | None, b: Body, y0: float,
                   rng: np.random.Generator) -> None:
  """Draws an upper-body `fastening` from the neck opening (y0) down to the front's end."""
  if fastening not in _FASTENINGS:
    raise ValueError(f'unknown fastening {fastening!r}')
  _FASTENINGS[fastening](sk, b, y0, b.yh - 0.02, rng)


# Every drawing below takes (sketch, body, top y0, bottom y1, rng) so `draw_fastening` can
# dispatch on the value; most ignore `rng`.


def _no_closure(sk: Sketch, b: Body, y0: float, y1: float, rng: np.random.Generator) -> None:
  """Nothing: a pull-on garment."""


def _zip(sk: Sketch, b: Body, y0: float, y1: float, rng: np.random.Generator) -> None:
  """A zip: dark tape, alternating metal teeth, slider and pull ring at the top."""
  ys = np.arange(y0, y1, 0.013)
  teeth = np.stack([np.where(np.arange(len(ys)) % 2 == 0, -0.009, 0.009), ys], axis=1)
  sk.stroke(pts((0, y0), (0, y1)), 'ink', 0.035)
  sk.stroke(teeth, 'metal', 0.008)
  sk.fill(pts((-0.018, y0 + 0.01), (0.018, y0 + 0.01), (0.014, y0 + 0.08), (-0.014, y0 + 0.08)),
          'metal')
  sk.ring((0, y0 + 0.1), 0.017, 'metal', 0.007)


def _back_closure(sk: Sketch, b: Body, y0: float, y1: float, rng: np.random.Generator) -> None:
  """Nothing in front; what shows of a back closure from the front."""
  if b.bare:  # the pull of a back zip above the top edge
    sk.fill(pts((-0.018, b.top - 0.07), (0.018, b.top - 0.07), (0.014, b.top + 0.01),
                (-0.014, b.top + 0.01)), 'metal')
    sk.ring((0, b.top - 0.085), 0.016, 'metal', 0.007)
    return
  # A keyhole at the back neck, seen through the neck opening, with its button.
  top = b.top - 0.03
  hole = np.concatenate([pts((-0.008, top), (0.008, top)), arc(0, top + 0.075, 0.03, 0.04, -60,
                                                                240, 16)])
  sk.fill(hole, (255, 255, 255))
  sk.stroke(hole, 'ink', 0.006, closed=True)
  both(sk, 'disc', pts((0.03, top + 0.012)), 0.014, 'button')


def _belted(sk: Sketch, b: Body, y0: float, y1: float, rng: np.random.Generator) -> None:
  """A belt with a buckle around the waist."""
  _belt(sk, b.yw, b.ww + 0.02)


def _buttons(sk: Sketch, b: Body, y0: float, y1: float, rng: np.random.Generator) -> None:
  """A button stand down to below the waist: one column, or two on some long garments."""
  sk.stroke(pts((0.035, y0), (0.035, y1)), 'ink', 0.005)
  columns = (-0.11, 0.11) if b.yh > 1.7 and rng.random() < 0.5 else (0.0,)
  count = max(2, int((min(y1, b.yw + 0.4) - y0) / 0.17))
  for y in np.linspace(y0 + 0.06, min(y1, b.yw + 0.4) - 0.04, count):
    for x in columns:
      _button(sk, x, y)


def _covered(sk: Sketch, b: Body, y0: float, y1: float, rng: np.random.Generator) -> None:
  """A placket band, buttons hidden."""
  band = pts((-0.045, y0), (0.045, y0), (0.045, y1), (-0.045, y1))
  sk.fabric(band, 0.88)
  sk.stroke(band, 'ink', 0.006, closed=True)
  sk.stroke(pts((0.025, y0), (0.025, y1)), 'ink', 0.004)


def _hooks(sk: Sketch, b: Body, y0: float, y1: float, rng: np.random.Generator) -> None:
  """Metal hook-and-eye clasps across a closed edge."""
  sk.stroke(pts((0, y0), (0, y1)), 'ink', 0.006)
  for y in np.linspace(y0 + 0.06, min(y1, y0 + 0.75), 5):
    sk.stroke(pts((-0.06, y), (0.015, y), (0.02, y - 0.015)), 'metal', 0.014)
    sk.ring((0.045, y), 0.02, 'metal', 0.009)


def _laces(sk: Sketch, b: Body, y0: float, y1: float, rng: np.random.Generator) -> None:
  """Eyelets and criss-cross lacing over a slit, a bow on top."""
  bottom = min(y1, y0 + 0.5)
  sk.fill(pts((-0.03, y0), (0.03, y0), (0.0, bottom)), 'inner')
  ys = np.linspace(y0 + 0.04, bottom - 0.02, 6)
  for y in ys:
    both(sk, 'ring', pts((0.055, y)), 0.013, 'metal', 0.007)
  cross = np.stack([np.tile([0.055, -0.055], 6)[:len(ys) * 2],
                    np.repeat(ys, 2)], axis=1)
  sk.stroke(cross, 'trim', 0.01)
  sk.stroke(cross * np.float64([-1.0, 1.0]), 'trim', 0.01)
  both(sk, 'ring', pts((0.035, y0 + 0.01)), 0.03, 'trim', 0.01)
  both(sk, 'stroke', pts((0.01, y0 + 0.02), (0.04, y0 + 0.14)), 'trim', 0.01)


def _open_front(sk: Sketch, b: Body, y0: float, y1: float, rng: np.random.Generator) -> None:
  """No fastening: the fronts part and show the inside."""
  wedge = pts((-0.03, y0), (0.03, y0), (0.11, y1), (-0.11, y1))
  sk.fill(wedge, 'inner')
  sk.stroke(wedge, 'ink', 0.007, closed=True)


def _toggles(sk: Sketch, b: Body, y0: float, y1: float, rng: np.random.Generator) -> None:
  """`Others`: duffle toggles on rope loops."""
  for y in np.linspace(y0 + 0.1, min(y1, y0 + 0.8), 4):
    both(sk, 'stroke', pts((0.0, y - 0.015), (0.13, y), (0.0, y + 0.015)), 'ink', 0.008)
    toggle = arc(0, y, 0.07, 0.02, 0, 360, 16) @ np.array([[1, 0.15], [-0.15, 1]])
    sk.fill(toggle, 'toggle')
    sk.stroke(toggle, 'ink', 0.005, closed=True)


_FASTENINGS: dict[str | None, Callable[[Sketch, Body, float, float, np.random.Generator], None]] = {
    None: _no_closure, 'No closure': _no_closure, 'Zip': _zip, 'Back closure': _back_closure,
    'Belt': _belted, 'Button': _buttons, 'Covered': _covered, 'Hook': _hooks, 'Laces': _laces,
    'Front': _open_front, 'Others': _toggles,
}


def _button(sk: Sketch, x: float, y: float, r: float = 0.026) -> None:
  sk.disc((x, y), r, 'button')
  sk.ring((x, y), r, 'ink', 0.005)
  sk.disc((x - r * 0.3, y), r * 0.18, 'ink')
  sk.disc((x + r * 0.3, y), r * 0.18, 'ink')


def _belt(sk: Sketch, y: float, half: float) -> None:
  band = pts((-half, y - 0.045), (half, y - 0.045), (half, y + 0.045), (-half, y + 0.045))
  sk.fill(band, 'belt')
  sk.stroke(band, 'ink', 0.006, closed=True)
  sk.fill(pts((-0.07, y - 0.01), (0.0, y - 0.01), (0.0, y + 0.2), (-0.06, y + 0.22)), 'belt')
  buckle = pts((-0.035, y - 0.065), (0.06, y - 0.065), (0.06, y + 0.065), (-0.035, y + 0.065))
  sk.stroke(buckle, 'metal', 0.017, closed=True)
  sk.stroke(pts((0.0, y), (0.06, y)), 'metal', 0.01)


def draw_fly(sk: Sketch, fastening: str | None, hw: float) -> None:
  """Lower-body fastening at the waistband (0..0.12) and fly (to ~0.45), centred at x=0."""
  fly = pts((0.0, 0.12), (0.07, 0.13), (0.07, 0.36), (0.0, 0.45))
  if fastening in ('Zip', 'Button', 'Covered', 'Hook'):
    sk.stroke(fly, 'ink', 0.008)
    sk.stroke(pts((0.0, 0.12), (0.0, 0.45)), 'ink', 0.006)
  if fastening == 'Zip':
    sk.fill(pts((-0.012, 0.12), (0.012, 0.12), (0.01, 0.2), (-0.01, 0.2)), 'metal')
  elif fastening == 'Button':
    _button(sk, 0.0, 0.06, 0.03)
  elif fastening == 'Hook':
    sk.stroke(pts((-0.07, 0.06), (0.03, 0.06), (0.04, 0.04)), 'metal', 0.018)
  elif fastening == 'Belt':
    _belt(sk, 0.06, hw + 0.02)
  elif fastening == 'Laces':  # drawstring
    both(sk, 'ring', pts((0.04, 0.06)), 0.012, 'metal', 0.006)
    both(sk, 'stroke', pts((0.04, 0.06), (0.05, 0.2), (0.07, 0.36)), 'trim', 0.012)
    both(sk, 'disc', pts((0.07, 0.37)), 0.014, 'metal')
  elif fastening == 'No closure':  # elastic waist: gathers across the band
    for x in np.linspace(-hw + 0.04, hw - 0.04, 16):
      sk.stroke(pts((x, 0.015), (x + 0.01, 0.1)), 'ink', 0.005)
  elif fastening == 'Others':
    sk.fill(arc(0, 0.06, 0.06, 0.02, 0, 360, 16), 'toggle')
    sk.stroke(pts((-0.07, 0.05), (0.07, 0.07)), 'ink', 0.006)
  elif fastening not in (None, 'Covered', 'Back closure', 'Front'):
    raise ValueError(f'unknown fastening {fastening!r}')


def _patch(sk: Sketch, x: float, y: float, w: float, h: float, flap: bool) -> None:
  """A patch pocket with its top-left corner at (x, y), optionally with a buttoned flap."""
  box = pts((x, y), (x + w, y), (x + w, y + h), (x, y + h))
  sk.fabric(box, 0.93)
  sk.stroke(box, 'ink', 0.006, closed=True)
  if flap:
    lid = pts((x - 0.01, y - 0.01), (x + w + 0.01, y - 0.01), (x + w + 0.01, y + 0.07),
              (x + w / 2, y + 0.09), (x - 0.01, y + 0.07))
    sk.fabric(lid, 0.82)
    sk.stroke(lid, 'ink', 0.006, closed=True)
    sk.disc((x + w / 2, y + 0.06), 0.014, 'button')


def draw_pockets(sk: Sketch, pocket: str | None, b: Body, sleeve: np.ndarray | None) -> None:
  """Upper-body pockets; `sleeve` is the (left) sleeve polygon for a sleeve pocket."""
  hip = min(b.yh - 0.35, b.yw + 0.15)
  x = b.ww - 0.3
  if pocket is None:
    return
  if pocket == 'Side':  # slanted welts
    both(sk, 'stroke', pts((x + 0.02, hip), (x + 0.12, hip + 0.22)), 'ink', 0.02)
  elif pocket == 'Zip':
    both(sk, 'stroke', pts((x, hip + 0.05), (x + 0.2, hip)), 'metal', 0.014)
  elif pocket in ('Cargo', 'Flap'):
    for s in (-1, 1):
      if pocket == 'Cargo':
        _patch(sk, s * (x + 0.11) - 0.11, hip, 0.22, 0.24, flap=True)
      else:
        outlined(sk, pts((x, hip), (x + 0.2, hip), (x + 0.2, hip + 0.07), (x, hip + 0.07)), 0.82)
  elif pocket == 'Napoleon':  # vertical zip on the left chest
    sk.stroke(pts((-b.hw * 0.5, b.ya - 0.2), (-b.hw * 0.42, b.ya + 0.1)), 'metal', 0.016)
    sk.disc((-b.hw * 0.5, b.ya - 0.19), 0.016, 'metal')
  elif pocket == 'Belt':  # a zipped pouch at the waist
    _patch(sk, b.ww - 0.3, b.yw - 0.06, 0.2, 0.14, flap=False)
    sk.stroke(pts((b.ww - 0.29, b.yw - 0.04), (b.ww - 0.11, b.yw - 0.04)), 'metal', 0.012)
  elif pocket == 'Sleeve':
    if sleeve is None:
      raise ValueError('a sleeve pocket needs a sleeve')
    top, mid = sleeve[0], sleeve.mean(axis=0)
    c = top + 0.6 * (mid - top)
    box = c + pts((-0.05, -0.06), (0.05, -0.06), (0.05, 0.06), (-0.05, 0.06))
    sk.fabric(box, 0.85)
    sk.stroke(box, 'ink', 0.006, closed=True)
    sk.stroke(pts(c + (-0.04, -0.045), c + (0.04, -0.045)), 'metal', 0.01)
  else:
    raise ValueError(f'unknown pocket {pocket!r}')


def draw_lower_pockets(sk: Sketch, pocket: str | None, hw: float, hip_y: float, thigh_y: float,
                       thigh_x: float) -> None:
  """Lower-body pockets: hip slits, thigh cargo pockets, flaps, zips or a waist pouch."""
  if pocket is None:
    return
  if pocket == 'Side':
    both(sk, 'stroke', pts((hw - 0.15, 0.12), (hw + 0.02, hip_y)), 'ink', 0.016)
  elif pocket == 'Cargo':
    for s in (-1, 1):
      _patch(sk, s * thigh_x - 0.1, thigh_y, 0.2, 0.26, flap=True)
  elif pocket == 'Flap':
    outlined(sk, pts((hw - 0.28, 0.2), (hw - 0.06, 0.2), (hw - 0.06, 0.27), (hw - 0.28, 0.27)), 0.8)
  elif pocket == 'Zip':
    both(sk, 'stroke', pts((hw - 0.12, 0.13), (hw - 0.01, hip_y)), 'metal', 0.014)
  elif pocket == 'Belt':
    _patch(sk, hw - 0.3, 0.02, 0.18, 0.14, flap=True)
  else:
    raise ValueError(f'pocket {pocket!r} cannot be drawn on a lower-body garment')
