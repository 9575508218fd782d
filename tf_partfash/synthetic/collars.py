"""The 17 collars of a synthetic garment, drawn on a `Sketch` (paper §3, §4.3).

Every `collar` value gets a distinct drawing in the neck region of the canonical garment frame
(x right, y down, neck base at y=0, torso width ~1), where §4.3 extracts the collar part.
"""
from __future__ import annotations

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


def draw_collar(sk: Sketch, collar: str | None, b: Body, rng: np.random.Generator,
                suit: bool = False) -> float:
  """Draws `collar` (None: only the bare neckline); returns the y where the front opening ends."""
  nh = b.nh
  if b.bare:
    return _bare_top(sk, collar, b)
  if collar in (None, 'Round'):
    depth = rng.uniform(0.09, 0.13)
    _neck_hole(sk, b, depth)
    if collar == 'Round':  # ribbed crew band
      inner, outer = arc(0, 0, nh, depth, -6, 186, 24), arc(0, 0, nh + 0.045, depth + 0.045, -6,
                                                            186, 24)
      band = np.concatenate([inner, outer[::-1]])
      sk.fabric(band, 0.85)
      for p, q in zip(inner[1:-1:2], outer[1:-1:2]):
        sk.stroke(np.stack([p, q]), 'seam', 0.004)
      sk.stroke(band, 'ink', 0.007, closed=True)
      return depth + 0.05
    return depth + 0.01
  if collar == 'V-neck':
    depth = rng.uniform(0.28, 0.38)
    _neck_hole(sk, b, depth, v=True)
    outlined(sk, pts((nh, 0.0), (nh + 0.04, -0.01), (0.0, depth + 0.06), (0.0, depth)), 0.85)
    return depth + 0.06
  if collar == 'Polo':
    _neck_hole(sk, b, 0.08)
    sk.fabric(pts((-0.035, 0.06), (0.035, 0.06), (0.035, 0.36), (-0.035, 0.36)), 0.92)
    sk.stroke(pts((-0.035, 0.06), (0.035, 0.06), (0.035, 0.36), (-0.035, 0.36)), 'ink', 0.006,
              closed=True)
    for y in (0.13, 0.22, 0.31):
      sk.disc((0, y), 0.018, 'button')
    outlined(sk, pts((0.02, 0.06), (nh - 0.01, -0.04), (nh + 0.1, 0.02), (nh + 0.05, 0.13),
                      (0.05, 0.15)), 0.95)
    return 0.36
  if collar in ('Kent', 'Buttondown', 'Cutaway'):
    if collar == 'Cutaway':  # wide spread: tips pointing outwards
      _shirt_collar(sk, b, (0.21, 0.13), (nh + 0.08, -0.01), meet=0.06)
    else:
      _shirt_collar(sk, b, (0.09, 0.25), (nh + 0.07, 0.02))
    if collar == 'Buttondown':
      both(sk, 'disc', pts((0.095, 0.205)), 0.02, 'button')
      both(sk, 'ring', pts((0.095, 0.205)), 0.02, 'ink', 0.005)
    return 0.08
  if collar == 'Shirt':  # open camp collar: short revers lying flat around a V
    depth = rng.uniform(0.24, 0.3)
    _neck_hole(sk, b, depth, v=True)
    outlined(sk, pts((nh - 0.02, -0.05), (nh + 0.11, -0.01), (nh + 0.13, 0.1), (0.1, 0.13),
                      (0.015, depth)), 0.93)
    return depth
  if collar == 'Mandarin':
    return _stand(sk, b, 0.075, 0.01, rib=False)
  if collar == 'High':  # turtle/funnel: tall ribbed band
    top = _stand(sk, b, 0.17, 0.02, rib=True)
    sk.stroke(arc(0, -0.11, nh + 0.015, 0.05, 0, 180), 'ink', 0.008)
    return top
  if collar == 'Chin':  # very tall flared funnel with a chin guard, zipped to the top
    top = _stand(sk, b, 0.3, 0.07, rib=False)
    sk.stroke(pts((0, -0.22), (0, 0.07)), 'metal', 0.02)
    sk.fabric(pts((-0.05, -0.27), (0.05, -0.27), (0.05, -0.19), (-0.05, -0.19)), 0.75)
    sk.stroke(pts((-0.05, -0.27), (0.05, -0.27), (0.05, -0.19), (-0.05, -0.19)), 'ink', 0.006,
              closed=True)
    return top
  if collar == 'Hood':
    _neck_hole(sk, b, 0.07)
    hood = np.concatenate([pts((nh + 0.02, 0.03)), arc(0, -0.3, nh + 0.15, 0.33, 40, -90, 12)])
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
  if collar in ('Lapel', 'Shawl'):
    depth = rng.uniform(0.5, 0.68)
    v = pts((nh - 0.02, -0.02), (0.0, depth), (-nh + 0.02, -0.02))
    sk.fill(np.concatenate([v, arc(0, 0, nh, 0.04, 180, 360)]), 'shirt' if suit else 'inner')
    if suit:  # shirt and tie in the V
      sk.fill(pts((-0.03, 0.05), (0.03, 0.05), (0.045, depth - 0.1), (0.0, depth),
                  (-0.045, depth - 0.1)), 'tie')
      sk.fill(pts((-0.035, 0.0), (0.035, 0.0), (0.02, 0.06), (-0.02, 0.06)), 'tie')
    if collar == 'Lapel':  # upper collar, then a notched lapel
      outlined(sk, pts((nh - 0.04, -0.06), (nh + 0.05, -0.06), (nh + 0.14, 0.1),
                        (nh + 0.03, 0.13)), 0.8)
      outlined(sk, pts((nh - 0.02, 0.0), (nh + 0.03, 0.14), (nh + 0.19, 0.17),
                        (0.03, depth)), 0.88)
    else:  # one smooth rolled piece, no notch
      t = np.linspace(0, 1, 14)[:, None]
      p0, p1, p2 = pts((nh - 0.03, -0.06)), pts((nh + 0.28, 0.1)), pts((0.03, depth))
      curve = (1 - t) ** 2 * p0 + 2 * t * (1 - t) * p1 + t * t * p2
      outlined(sk, np.concatenate([curve, pts((nh - 0.03, 0.0))]), 0.85)
    return depth
  if collar in ('Turndown', 'Lined'):
    _shirt_collar(sk, b, (0.15, 0.3) if collar == 'Turndown' else (0.12, 0.25),
                  (nh + 0.21, 0.03) if collar == 'Turndown' else (nh + 0.14, 0.02), meet=0.1)
    if collar == 'Lined':  # fur/fleece lining covering the collar
      piece = pts((0.01, 0.1), (nh + 0.005, -0.07), (nh + 0.14, 0.02), (0.12, 0.25))
      outlined(sk, piece, color='lining')
      for s in (-1.0, 1.0):
        c = rng.uniform([0.03, -0.04], [nh + 0.08, 0.16], (40, 2))
        d = rng.normal(0, 0.015, (40, 2))
        for p, q in zip(c, c + d):
          sk.stroke(pts(p, q) * np.float64([s, 1.0]), 'lining_dark', 0.006)
    return 0.1
  if collar == 'Peter Pan':  # two flat rounded lobes in a contrasting colour
    for s in (-1, 1):
      lobe = arc(s * (nh * 0.62), 0.07, nh * 0.85, 0.11, 0, 360, 28)
      sk.fill(lobe, 'collar_contrast')
      sk.stroke(lobe, 'ink', 0.007, closed=True)
    _neck_hole(sk, b, 0.08)
    return 0.18
  if collar == 'Volant':  # ruffle all round the neckline
    _ruffle(sk, arc(0, 0, nh, 0.09, -10, 190, 40), arc(0, 0, nh + 0.13, 0.24, -10, 190, 40))
    _neck_hole(sk, b, 0.09)
    return 0.24
  raise ValueError(f'unknown collar {collar!r}')


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
