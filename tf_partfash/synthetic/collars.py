"""The 17 collars of a synthetic garment, drawn on a `Sketch` (paper §3, §4.3).

Every `collar` value gets a distinct drawing in the neck region of the canonical garment frame
(x right, y down, neck base at y=0, torso width ~1), where §4.3 extracts the collar part.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from tf_partfash.synthetic.sketch import Body, Sketch, arc, both, mirror, outlined, pts


def _neck_hole(sk: Sketch, b: Body, depth: float, v: bool = False, back: float = 0.035) -> None:
  """The inside of the back seen through the front neck opening (round or V)."""
  front = pts((b.nh, 0), (0, depth), (-b.nh, 0)) if v else arc(0, 0, b.nh, depth, 0, 180)
  hole = np.concatenate([front, arc(0, 0, b.nh, back, 180, 360)])
  sk.fill(hole, 'inner')
  sk.stroke(front, 'ink', 0.008)


def _stand(sk: Sketch, b: Body, height: float, flare: float, rib: bool) -> float:
  """A band standing around the neck (mandarin, high, chin); returns the front opening y."""
  lower = arc(0, 0, b.nh, 0.06, 0, 180)
  up = arc(0, -height, b.nh + flare, 0.05, 0, 180)
  sk.fill(np.concatenate([up, arc(0, -height, b.nh + flare, 0.025, 180, 360)]), 'inner')
  band = np.concatenate([lower, up[::-1]])
  sk.fabric(band, 0.9)
  if rib:
    for x in np.linspace(-b.nh * 0.9, b.nh * 0.9, 11):
      y0 = 0.06 * np.sqrt(max(0.0, 1 - (x / b.nh) ** 2))
      sk.stroke(pts((x * (1 + flare), y0 - height + 0.05), (x, y0 - 0.01)), 'ink', 0.004)
  sk.stroke(band, 'ink', 0.008, closed=True)
  sk.fill(pts((-0.012, 0.05 - height), (0.012, 0.05 - height), (0.004, 0.065), (-0.004, 0.065)),
          'inner')
  return 0.07


def _shirt_collar(sk: Sketch, b: Body, tip: tuple[float, float], outer: tuple[float, float],
                  meet: float = 0.075) -> None:
  """A stand at the back neck and two pointed leaves meeting at the front (kent, cutaway, ...)."""
  sk.fabric(np.concatenate([pts((b.nh + 0.01, -0.07)), arc(0, -0.07, b.nh + 0.01, 0.03, 0, 180),
                            pts((-b.nh, 0.0), (b.nh, 0.0))]), 0.7)
  outlined(sk, pts((0.01, meet), (b.nh + 0.005, -0.07), outer, tip), 0.95)


def _tailored_v(sk: Sketch, b: Body, rng: np.random.Generator, suit: bool) -> float:
  """The deep V under a lapel or shawl collar, showing the inside or (suit) a shirt and tie;
  returns its depth."""
  nh = b.nh
  depth = rng.uniform(0.5, 0.68)
  v = pts((nh - 0.02, -0.02), (0.0, depth), (-nh + 0.02, -0.02))
  sk.fill(np.concatenate([v, arc(0, 0, nh, 0.04, 180, 360)]), 'shirt' if suit else 'inner')
  if suit:
    sk.fill(pts((-0.03, 0.05), (0.03, 0.05), (0.045, depth - 0.1), (0.0, depth),
                (-0.045, depth - 0.1)), 'tie')
    sk.fill(pts((-0.035, 0.0), (0.035, 0.0), (0.02, 0.06), (-0.02, 0.06)), 'tie')
  return depth


def draw_collar(sk: Sketch, collar: str | None, b: Body, rng: np.random.Generator,
                suit: bool = False) -> float:
  """Draws `collar` (None: only the bare neckline); returns the y where the front opening ends."""
  if b.bare:
    return _bare_top(sk, collar, b)
  if collar not in _COLLARS:
    raise ValueError(f'unknown collar {collar!r}')
  return _COLLARS[collar](sk, b, rng, suit)


# Every drawing below takes (sketch, body, rng, suit) so `draw_collar` can dispatch on the value;
# most ignore `rng` and `suit`.


def _no_collar(sk: Sketch, b: Body, rng: np.random.Generator, suit: bool) -> float:
  """No collar: the bare round neck opening."""
  depth = rng.uniform(0.09, 0.13)
  _neck_hole(sk, b, depth)
  return depth + 0.01


def _round(sk: Sketch, b: Body, rng: np.random.Generator, suit: bool) -> float:
  """A ribbed crew band around a round neck opening."""
  depth = rng.uniform(0.09, 0.13)
  _neck_hole(sk, b, depth)
  inner = arc(0, 0, b.nh, depth, -6, 186, 24)
  outer = arc(0, 0, b.nh + 0.045, depth + 0.045, -6, 186, 24)
  band = np.concatenate([inner, outer[::-1]])
  sk.fabric(band, 0.85)
  for p, q in zip(inner[1:-1:2], outer[1:-1:2]):
    sk.stroke(np.stack([p, q]), 'seam', 0.004)
  sk.stroke(band, 'ink', 0.007, closed=True)
  return depth + 0.05


def _v_neck(sk: Sketch, b: Body, rng: np.random.Generator, suit: bool) -> float:
  """A deep V opening edged with a band."""
  depth = rng.uniform(0.28, 0.38)
  _neck_hole(sk, b, depth, v=True)
  outlined(sk, pts((b.nh, 0.0), (b.nh + 0.04, -0.01), (0.0, depth + 0.06), (0.0, depth)), 0.85)
  return depth + 0.06


def _polo(sk: Sketch, b: Body, rng: np.random.Generator, suit: bool) -> float:
  """A buttoned placket under a small flat knit collar."""
  nh = b.nh
  _neck_hole(sk, b, 0.08)
  placket = pts((-0.035, 0.06), (0.035, 0.06), (0.035, 0.36), (-0.035, 0.36))
  sk.fabric(placket, 0.92)
  sk.stroke(placket, 'ink', 0.006, closed=True)
  for y in (0.13, 0.22, 0.31):
    sk.disc((0, y), 0.018, 'button')
  outlined(sk, pts((0.02, 0.06), (nh - 0.01, -0.04), (nh + 0.1, 0.02), (nh + 0.05, 0.13),
                    (0.05, 0.15)), 0.95)
  return 0.36


def _kent(sk: Sketch, b: Body, rng: np.random.Generator, suit: bool) -> float:
  """The classic shirt collar: moderately spread pointed leaves."""
  _shirt_collar(sk, b, (0.09, 0.25), (b.nh + 0.07, 0.02))
  return 0.08


def _buttondown(sk: Sketch, b: Body, rng: np.random.Generator, suit: bool) -> float:
  """A kent collar whose tips are buttoned to the front."""
  _kent(sk, b, rng, suit)
  both(sk, 'disc', pts((0.095, 0.205)), 0.02, 'button')
  both(sk, 'ring', pts((0.095, 0.205)), 0.02, 'ink', 0.005)
  return 0.08


def _cutaway(sk: Sketch, b: Body, rng: np.random.Generator, suit: bool) -> float:
  """A wide-spread shirt collar: tips pointing outwards."""
  _shirt_collar(sk, b, (0.21, 0.13), (b.nh + 0.08, -0.01), meet=0.06)
  return 0.08


def _camp(sk: Sketch, b: Body, rng: np.random.Generator, suit: bool) -> float:
  """The open camp (`Shirt`) collar: short revers lying flat around a V."""
  nh = b.nh
  depth = rng.uniform(0.24, 0.3)
  _neck_hole(sk, b, depth, v=True)
  outlined(sk, pts((nh - 0.02, -0.05), (nh + 0.11, -0.01), (nh + 0.13, 0.1), (0.1, 0.13),
                    (0.015, depth)), 0.93)
  return depth


def _mandarin(sk: Sketch, b: Body, rng: np.random.Generator, suit: bool) -> float:
  """A short plain stand."""
  return _stand(sk, b, 0.075, 0.01, rib=False)


def _high(sk: Sketch, b: Body, rng: np.random.Generator, suit: bool) -> float:
  """A turtle or funnel neck: a tall ribbed band, folded over."""
  top = _stand(sk, b, 0.17, 0.02, rib=True)
  sk.stroke(arc(0, -0.11, b.nh + 0.015, 0.05, 0, 180), 'ink', 0.008)
  return top


def _chin(sk: Sketch, b: Body, rng: np.random.Generator, suit: bool) -> float:
  """A very tall flared funnel with a chin guard, zipped to the top."""
  top = _stand(sk, b, 0.3, 0.07, rib=False)
  sk.stroke(pts((0, -0.22), (0, 0.07)), 'metal', 0.02)
  guard = pts((-0.05, -0.27), (0.05, -0.27), (0.05, -0.19), (-0.05, -0.19))
  sk.fabric(guard, 0.75)
  sk.stroke(guard, 'ink', 0.006, closed=True)
  return top


def _hood(sk: Sketch, b: Body, rng: np.random.Generator, suit: bool) -> float:
  """A hood seen from the front, its face opening dark, with drawcords."""
  _neck_hole(sk, b, 0.07)
  hood = np.concatenate([pts((b.nh + 0.02, 0.03)), arc(0, -0.3, b.nh + 0.15, 0.33, 40, -90, 12)])
  hood = np.concatenate([hood, mirror(hood)])
  sk.fabric(hood, 0.9)
  sk.stroke(hood, 'ink', 0.008, closed=True)
  face = arc(0, -0.27, 0.13, 0.26, 0, 360, 24)
  sk.fill(face, 'inner')
  sk.stroke(face, 'ink', 0.02, closed=True)
  for s in (-1, 1):
    sk.stroke(pts((s * 0.07, 0.0), (s * 0.08, 0.16), (s * 0.075, 0.32)), 'trim', 0.012)
    sk.disc((s * 0.075, 0.33), 0.015, 'metal')
  return 0.07


def _lapel(sk: Sketch, b: Body, rng: np.random.Generator, suit: bool) -> float:
  """A tailored collar: an upper collar over a notched lapel, around a deep V."""
  nh = b.nh
  depth = _tailored_v(sk, b, rng, suit)
  outlined(sk, pts((nh - 0.04, -0.06), (nh + 0.05, -0.06), (nh + 0.14, 0.1), (nh + 0.03, 0.13)),
           0.8)
  outlined(sk, pts((nh - 0.02, 0.0), (nh + 0.03, 0.14), (nh + 0.19, 0.17), (0.03, depth)), 0.88)
  return depth


def _shawl(sk: Sketch, b: Body, rng: np.random.Generator, suit: bool) -> float:
  """A shawl collar: one smooth rolled piece around a deep V, no notch."""
  nh = b.nh
  depth = _tailored_v(sk, b, rng, suit)
  t = np.linspace(0, 1, 14)[:, None]
  p0, p1, p2 = pts((nh - 0.03, -0.06)), pts((nh + 0.28, 0.1)), pts((0.03, depth))
  curve = (1 - t) ** 2 * p0 + 2 * t * (1 - t) * p1 + t * t * p2  # a quadratic Bezier roll
  outlined(sk, np.concatenate([curve, pts((nh - 0.03, 0.0))]), 0.85)
  return depth


def _turndown(sk: Sketch, b: Body, rng: np.random.Generator, suit: bool) -> float:
  """A large turned-down coat collar with long points."""
  _shirt_collar(sk, b, (0.15, 0.3), (b.nh + 0.21, 0.03), meet=0.1)
  return 0.1


def _lined(sk: Sketch, b: Body, rng: np.random.Generator, suit: bool) -> float:
  """A turned-down collar covered in fur or fleece lining, drawn as random tufts."""
  nh = b.nh
  _shirt_collar(sk, b, (0.12, 0.25), (nh + 0.14, 0.02), meet=0.1)
  piece = pts((0.01, 0.1), (nh + 0.005, -0.07), (nh + 0.14, 0.02), (0.12, 0.25))
  outlined(sk, piece, color='lining')
  for s in (-1.0, 1.0):
    c = rng.uniform([0.03, -0.04], [nh + 0.08, 0.16], (40, 2))
    d = rng.normal(0, 0.015, (40, 2))
    for p, q in zip(c, c + d):
      sk.stroke(pts(p, q) * np.float64([s, 1.0]), 'lining_dark', 0.006)
  return 0.1


def _peter_pan(sk: Sketch, b: Body, rng: np.random.Generator, suit: bool) -> float:
  """Two flat rounded lobes in a contrasting colour."""
  nh = b.nh
  for s in (-1, 1):
    lobe = arc(s * (nh * 0.62), 0.07, nh * 0.85, 0.11, 0, 360, 28)
    sk.fill(lobe, 'collar_contrast')
    sk.stroke(lobe, 'ink', 0.007, closed=True)
  _neck_hole(sk, b, 0.08)
  return 0.18


def _volant(sk: Sketch, b: Body, rng: np.random.Generator, suit: bool) -> float:
  """A ruffle all round the neckline."""
  nh = b.nh
  _ruffle(sk, arc(0, 0, nh, 0.09, -10, 190, 40), arc(0, 0, nh + 0.13, 0.24, -10, 190, 40))
  _neck_hole(sk, b, 0.09)
  return 0.24


_COLLARS: dict[str | None, Callable[[Sketch, Body, np.random.Generator, bool], float]] = {
    None: _no_collar, 'Round': _round, 'V-neck': _v_neck, 'Polo': _polo, 'Kent': _kent,
    'Buttondown': _buttondown, 'Cutaway': _cutaway, 'Shirt': _camp, 'Mandarin': _mandarin,
    'High': _high, 'Chin': _chin, 'Hood': _hood, 'Lapel': _lapel, 'Shawl': _shawl,
    'Turndown': _turndown, 'Lined': _lined, 'Peter Pan': _peter_pan, 'Volant': _volant,
}


def _ruffle(sk: Sketch, inner: np.ndarray, outer: np.ndarray) -> None:
  """A frill between two matching edges: the outer one scalloped, with radial gathers."""
  n = len(outer)
  wave = (0.5 + 0.5 * np.cos(np.linspace(0, 2 * np.pi * n / 3.5, n)))[:, None]
  edge = inner + (outer - inner) * (0.75 + 0.25 * wave)
  band = np.concatenate([inner, edge[::-1]])
  sk.fabric(band, 0.95)
  sk.stroke(band, 'ink', 0.007, closed=True)
  for k in range(0, n, 3):
    sk.stroke(np.stack([inner[k], edge[k]]), 'ink', 0.004)


def _bare_top(sk: Sketch, collar: str | None, b: Body) -> float:
  """Necklines of spaghetti-strap and strapless tops: along the top edge, not around a neck."""
  edge = pts((-b.hw * 0.95, b.top), (-b.hw * 0.5, b.top - 0.02), (0, b.top + 0.05),
             (b.hw * 0.5, b.top - 0.02), (b.hw * 0.95, b.top))  # the torso's top edge
  if collar == 'V-neck':
    sk.fill(pts((-0.16, b.top + 0.02), (0.16, b.top + 0.02), (0, b.top + 0.24)), 'inner')
    outlined(sk, pts((0.16, b.top + 0.02), (0.2, b.top), (0, b.top + 0.3), (0, b.top + 0.24)),
              0.85)
    return b.top + 0.3
  if collar == 'Round':
    band = np.concatenate([arc(0, b.top - 0.02, b.hw * 0.7, 0.1, 10, 170),
                           arc(0, b.top - 0.02, b.hw * 0.7, 0.15, 170, 10)])
    sk.fabric(band, 0.85)
    sk.stroke(band, 'ink', 0.007, closed=True)
    return b.top + 0.14
  if collar == 'Volant':
    xs = np.linspace(-b.hw, b.hw, 40)
    inner = np.stack([xs, b.top + 0.05 - 0.03 * (xs / b.hw) ** 2], axis=1)
    _ruffle(sk, inner, inner + np.float64([0.0, 0.17]))
    return b.top + 0.2
  if collar is not None:
    raise ValueError(f'collar {collar!r} cannot be drawn on a top without shoulders')
  sk.stroke(edge, 'ink', 0.006)
  return b.top + 0.06
