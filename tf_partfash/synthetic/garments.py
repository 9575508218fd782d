"""Renders one synthetic in-shop garment and its true parts (paper §3, §4.3, Fig. 4).

Like Shopping100k's images: portrait, white background, one frontal garment filling most of the
frame. Upper-body garments have a torso and two sleeves hanging out at an angle, so the row-wise
silhouette width jumps where a sleeve leaves the torso (the discontinuity of §4.3's jump
detection); lower-body garments have waistband and legs or a skirt, and no collar or sleeves.
The true parts follow §4.3: collar, torso, chest (§6: where colour and pattern are judged), left and
right sleeve (left = image left) and a fastening strip down the centre of the torso.
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from tf_partfash.attributes import SLEEVELESS_VALUES
from tf_partfash.parts.boxes import Parts
from tf_partfash.synthetic import closures, collars, fabrics
from tf_partfash.synthetic.sketch import (Body, Placement, Sketch, both, mirror, pts, rasterise,
                                          shading)

# How a garment is drawn: tops (with or without sleeves), dresses and jumpsuits are upper-body;
# the rest is lower-body (the `lower` case of §4.3, no parts).
UPPER_SILHOUETTES = ('top', 'swimsuit', 'dress', 'jumpsuit')
LOWER_SILHOUETTES = ('trousers', 'shorts', 'skirt', 'trunks', 'briefs')

_FIT_WIDTH = {'Skinny': 0.86, 'Jeggings': 0.84, 'Slim': 0.9, 'Small': 0.9, 'Tapered': 0.95,
              'Tailered': 0.95, 'Large': 1.14, 'Loose': 1.15, 'Oversize': 1.24}
_LEG_HEM = {'Skinny': 0.11, 'Jeggings': 0.11, 'Slim': 0.13, 'Tapered': 0.12, 'Bootcut': 0.22,
            'Flared': 0.28, 'Loose': 0.24, 'Large': 0.24, 'Oversize': 0.26}
_TOP_LENGTH = {'Coat': (1.95, 2.4), 'Jacket': (1.45, 1.75), 'Suit': (1.4, 1.55),
               'Shirt': (1.45, 1.6), 'T-shirt': (1.25, 1.45), 'Jumper': (1.2, 1.4),
               'Tracksuit': (1.2, 1.35), 'Pyjamas': (1.3, 1.45)}
# Sleeve length along its axis (torso widths) and hanging angle from the vertical (degrees):
# short sleeves stand out more, long ones hang close to the torso as on a ghost mannequin.
_SLEEVES = {'Extra Short': (0.14, 44), 'Short': (0.33, 31), 'Elbow': (0.6, 20),
            '3/4': (0.84, 12.5), 'Long': (1.1, 8.5), 'Extra Long': (1.38, 7.5)}


@dataclasses.dataclass(frozen=True)
class Look:
  """The values a garment shows (missing labels already replaced by a drawn value or None)."""
  gender: str
  category: str
  silhouette: str
  color: str
  pattern: str
  collar: str | None = None
  fastening: str | None = None
  sleevelen: str | None = None
  fit: str | None = None
  pocket: str | None = None
  # Seeds the garment's shape (proportions, lengths, collar and closure details) apart from the
  # per-image placement, fabric and shading, so the versions of one style are visibly one garment;
  # None draws the shape from the image's RNG.
  shape_seed: int | None = None

  @property
  def case(self) -> str:
    """The "Extract Parts?" case of §4.3: lower, sleeveless or sleeve."""
    if self.silhouette in LOWER_SILHOUETTES:
      return 'lower'
    return 'sleeveless' if self.sleevelen in SLEEVELESS_VALUES else 'sleeve'


def _sleeve(s: np.ndarray, a: np.ndarray, length: float, angle: float, side: float,
            widen: float) -> np.ndarray:
  """Outline [shoulder, outer cuff, inner cuff, armpit] of a sleeve hanging at `angle` degrees."""
  t = np.deg2rad(angle)
  d = np.array([side * np.sin(t), np.cos(t)])
  n = np.array([side * np.cos(t), -np.sin(t)])
  half = 0.5 * np.linalg.norm(s - a) * widen
  cuff = half * (1.0 - 0.4 * min(length, 1.2) / 1.2)
  c = 0.5 * (s + a) + length * d
  return np.stack([s, c + cuff * n, c - cuff * n, a])


def _torso(look: Look, rng: np.random.Generator) -> tuple[np.ndarray, Body]:
  """The right half of the torso outline (neck or top edge down to the centre of the hem, dress
  skirt or jumpsuit legs) and its key measures."""
  u = rng.uniform
  hw = 0.5 * _FIT_WIDTH.get(look.fit, 1.0) * u(0.96, 1.04)
  nh, sd = u(0.15, 0.18), u(0.1, 0.14)
  ya = sd + u(0.4, 0.46)
  fitted = look.gender == 'Female' and look.category not in ('Coat', 'Jacket', 'Jumper')
  ww = hw * (u(0.84, 0.9) if fitted else 1.0)
  sleeveless = look.sleevelen in SLEEVELESS_VALUES
  top = 0.0
  if look.sleevelen == 'Spaghetti':
    top = ya - u(0.12, 0.2)
  elif look.sleevelen == 'Strapless':
    top = ya - u(0.03, 0.1)
  if look.silhouette == 'swimsuit':
    yw, yh = ya + 0.35, ya + u(0.85, 1.0)
    bottom = [(ww, yw), (hw * 0.92, yh - 0.3), (0.14, yh), (0.0, yh)]
  elif look.silhouette == 'dress':
    yw = ya + u(0.3, 0.4)
    yh = yw + u(0.9, 1.9)
    hem = ww * u(1.2, 1.9)
    bottom = [(ww, yw), (hem, yh), (hem * 0.5, yh + 0.03), (0.0, yh + 0.04)]
  elif look.silhouette == 'jumpsuit':
    yw = ya + u(0.35, 0.42)
    yh = yw + 0.5
    leg = _LEG_HEM.get(look.fit, 0.17)
    foot = yw + u(2.0, 2.3)
    xc = max(hw * 1.05 - leg + u(0.0, 0.06), leg + 0.03)
    bottom = [(ww, yw), (hw * 1.05, yw + 0.3), (xc + leg, foot), (xc - leg, foot), (0.0, yh)]
  else:
    yh = u(*_TOP_LENGTH[look.category])
    yw = min(ya + 0.4, yh - 0.25)
    hem = ww * (u(1.05, 1.12) if look.category == 'Coat' else 1.0)
    if look.category == 'Shirt':  # shirt tail
      bottom = [(ww, yw), (hem, yh - 0.08), (hem * 0.5, yh + 0.02), (0.0, yh + 0.04)]
    else:
      bottom = [(ww, yw), (hem, yh), (0.0, yh)]
  if look.sleevelen == 'Spaghetti' or look.sleevelen == 'Strapless':
    right = [(0.0, top + 0.05), (hw * 0.5, top - 0.02), (hw * 0.95, top), (hw, ya + 0.05)]
  elif sleeveless:  # shoulder straps with cut-in armholes
    strap = nh + u(0.1, 0.15)
    right = [(nh, 0.0), (strap, sd * 0.7), (strap + 0.02, sd + 0.15), (hw - 0.06, ya - 0.04),
             (hw, ya + 0.03)]
  else:
    sh = hw + u(0.0, 0.04)
    right = [(nh, 0.0), (sh, sd), (hw, ya)]
  body = Body(nh=nh, sd=sd, hw=hw, ya=ya, yw=yw, ww=ww, yh=yh, top=top,
              bare=look.sleevelen in ('Spaghetti', 'Strapless'))
  return np.array(right + bottom, np.float64), body


def _upper(sk: Sketch, look: Look, rng: np.random.Generator) -> dict[str, np.ndarray]:
  """Draws an upper-body garment; returns the canonical outline of each true part."""
  right, b = _torso(look, rng)
  torso = np.concatenate([right, mirror(right)])
  sk.add_body(torso)
  outlines = {'torso': torso}
  if look.sleevelen == 'Spaghetti':
    for s in (-1.0, 1.0):
      sk.add_body(pts((s * 0.4 * b.hw, b.top + 0.02), (s * 0.46 * b.hw, b.top + 0.02),
                      (s * (b.nh + 0.03), -0.02), (s * b.nh, -0.02)))
  if look.sleevelen not in SLEEVELESS_VALUES:
    length, angle = _SLEEVES[look.sleevelen]
    widen = 1.12 if _FIT_WIDTH.get(look.fit, 1.0) > 1 else 1.0
    for name, side in (('left_sleeve', -1.0), ('right_sleeve', 1.0)):
      # right[1] is the shoulder point, right[2] the armpit
      s_pt, a_pt = right[1] * (side, 1.0), right[2] * (side, 1.0)
      sleeve = _sleeve(s_pt, a_pt, length * rng.uniform(0.95, 1.05),
                       angle + rng.uniform(-2.5, 2.5), side, widen)
      sk.add_body(np.concatenate([sleeve, [a_pt + (-side * 0.06, -0.1), s_pt + (-side * 0.05,
                                                                                 0.05)]]))
      outlines[name] = sleeve
      sk.stroke(np.stack([s_pt, 0.5 * (s_pt + a_pt) + (side * 0.015, 0), a_pt]), 'seam', 0.005)
      sk.fold(np.stack([a_pt + (-side * 0.02, 0.02), a_pt + (-side * 0.1, 0.25)]))
      _cuff(sk, look, sleeve)
  _hem_details(sk, look, b)
  n_ops = len(sk.ops)
  opening = collars.draw_collar(sk, look.collar, b, rng, suit=look.category == 'Suit')
  # The collar part: everything the collar drew, and the neckline itself.
  outlines['collar'] = np.concatenate([op[1] for op in sk.ops[n_ops:]] + [
      pts((-b.nh, b.top), (b.nh, b.top + 0.06))])
  outlines['chest'] = pts((-0.7 * b.hw, max(b.top, 0.0) + 0.14), (0.7 * b.hw, b.ya + 0.3))
  # The centre strip from the back neck (where a back closure shows) down to the hem.
  outlines['fastening'] = pts((-0.07, b.top - 0.04), (0.07, b.yh))
  closures.draw_pockets(sk, look.pocket, b, outlines.get('left_sleeve'))
  if look.category == 'Suit':  # breast welt pocket
    sk.stroke(pts((-b.hw * 0.62, b.ya + 0.02), (-b.hw * 0.3, b.ya - 0.01)), 'ink', 0.012)
  closures.draw_fastening(sk, look.fastening, b, opening, rng)
  return outlines


def _cuff(sk: Sketch, look: Look, sleeve: np.ndarray) -> None:
  """Category cues at the sleeve end: ribbed cuffs, shirt cuffs, piping, tracksuit stripes."""
  s, o, i, a = sleeve
  band = 0.12 if look.category in ('Jumper', 'Tracksuit') else 0.0
  if look.category == 'Shirt' and look.sleevelen in ('Long', 'Extra Long', '3/4'):
    band = 0.1
  if band:
    along = (s + a) / 2 - (o + i) / 2
    k = band / np.linalg.norm(along)
    cuff = np.stack([o, i, i + k * along, o + k * along])
    sk.fabric(cuff, 0.86)
    sk.stroke(cuff, 'ink', 0.005, closed=True)
  if look.category == 'Tracksuit':
    for f in (0.08, 0.13):
      sk.stroke(np.stack([s + f * (a - s), o + f * (i - o)]), 'trim', 0.015)
  if look.category == 'Pyjamas':
    sk.stroke(np.stack([o, i]), 'trim', 0.014)
  if look.sleevelen == 'Extra Long':  # ruched length gathering above the cuff
    for f in (0.55, 0.65, 0.75, 0.85):
      sk.stroke(np.stack([s + f * (o - s), a + f * (i - a)]), 'seam', 0.006)


def _hem_details(sk: Sketch, look: Look, b: Body) -> None:
  """Hem band (jumpers, tracksuits), piping (pyjamas), waist seam (dresses, jumpsuits)."""
  if look.category in ('Jumper', 'Tracksuit'):
    band = pts((-b.ww, b.yh - 0.11), (b.ww, b.yh - 0.11), (b.ww, b.yh), (-b.ww, b.yh))
    sk.fabric(band, 0.86)
    for x in np.linspace(-b.ww + 0.03, b.ww - 0.03, 24):
      sk.stroke(pts((x, b.yh - 0.1), (x, b.yh - 0.01)), 'seam', 0.004)
  elif look.category == 'Pyjamas':
    sk.stroke(pts((-b.ww, b.yh - 0.01), (b.ww, b.yh - 0.01)), 'trim', 0.014)
  elif look.category == 'T-shirt' and look.silhouette == 'top':
    sk.stroke(pts((-b.ww, b.yh - 0.04), (b.ww, b.yh - 0.04)), 'seam', 0.004)
  if look.silhouette in ('dress', 'jumpsuit'):
    sk.stroke(pts((-b.ww, b.yw), (b.ww, b.yw)), 'seam', 0.006)
    for x in (-0.3, 0.25):
      sk.fold(pts((x * b.ww, b.yw + 0.1), (x * b.ww * 1.4, b.yh)))


def _lower(sk: Sketch, look: Look, rng: np.random.Generator) -> None:
  """Draws a lower-body garment: waistband at y=0..0.1, then legs or a skirt."""
  u = rng.uniform
  hw = 0.5 * _FIT_WIDTH.get(look.fit, 1.0) * u(0.95, 1.05)
  hip = hw * 1.08
  rise = {'Low': 0.45, 'High waist': 0.82}.get(look.fit, u(0.55, 0.65))
  sil = look.silhouette
  if sil == 'skirt':
    length = u(0.8, 2.2)
    hem = hw * u(1.05, 1.9)
    right = pts((hw, 0.0), (hip, 0.3), (hem, length), (hem * 0.5, length + 0.02),
                (0.0, length + 0.03))
    if hem > hw * 1.5:  # pleats of a full skirt
      for f in (-0.6, -0.2, 0.2, 0.6):
        sk.fold(pts((f * hw, 0.15), (f * hem, length)))
  elif sil == 'briefs':
    length = 0.5
    right = pts((hw, 0.0), (hw * 0.85, 0.12), (0.13, length), (0.0, length + 0.02))
  else:
    length = {'trousers': u(2.5, 2.9), 'shorts': u(0.85, 1.2), 'trunks': u(0.6, 0.8)}[sil]
    leg = _LEG_HEM.get(look.fit, 0.18) if sil == 'trousers' else u(0.21, 0.26)
    xc = max(hip - leg + u(0.0, 0.07), leg + 0.03)
    right = pts((hw, 0.0), (hip, 0.35), (xc + leg, length), (xc - leg, length), (0.0, rise))
    for s in (-1.0, 1.0):
      sk.fold(pts((s * xc * 0.7, rise + 0.1), (s * xc, length - 0.1)))
    if look.category == 'Tracksuit Bottoms':  # ribbed cuffs and side stripes
      for s in (-1.0, 1.0):
        cuff = pts((xc - leg, length - 0.12), (xc + leg, length - 0.12), (xc + leg, length),
                   (xc - leg, length)) * (s, 1.0)
        sk.fabric(cuff, 0.86)
        sk.stroke(pts((hip - 0.01, 0.35), (xc + leg - 0.015, length - 0.12)) * (s, 1.0), 'trim',
                  0.02)
    if look.category == 'Jean':  # five-pocket curves, coin pocket and rivets in gold stitching
      both(sk, 'stroke', pts((hw - 0.2, 0.1), (hw - 0.12, 0.25), (hip, 0.3)), 'stitch', 0.01)
      sk.stroke(pts((0.5 * hw, 0.13), (0.5 * hw + 0.12, 0.13), (0.5 * hw + 0.12, 0.24)), 'stitch',
                0.008)
      both(sk, 'disc', pts((hw - 0.2, 0.1)), 0.015, 'metal')
  outline = np.concatenate([right, mirror(right)])
  sk.add_body(outline)
  band = pts((-hw, 0.0), (hw, 0.0), (hw + 0.005, 0.1), (-hw - 0.005, 0.1))
  sk.fabric(band, 0.88)
  sk.stroke(band, 'ink', 0.006, closed=True)
  if sil in ('trousers', 'shorts') and look.category not in ('Tracksuit Bottoms', 'Swimming'):
    for x in (-hw * 0.7, -hw * 0.15, hw * 0.15, hw * 0.7):  # belt loops
      sk.stroke(pts((x, -0.005), (x, 0.11)), 'seam', 0.02)
  if sil != 'briefs':
    closures.draw_lower_pockets(sk, look.pocket, hw, 0.3, 0.7 if sil == 'trousers' else 0.35,
                                hip * 0.75)
    closures.draw_fly(sk, look.fastening, hw)


def _palette(mean: np.ndarray, rng: np.random.Generator) -> dict[str, tuple[float, float, float]]:
  """Colours of details, derived from the garment's mean colour so they read on it."""
  lum = float(mean @ np.float32([0.3, 0.59, 0.11]))
  dark = lum < 70

  def rgb(v) -> tuple[float, float, float]:
    return tuple(float(c) for c in np.clip(v, 0, 255))

  metals = ((205, 205, 210), (205, 168, 88), (120, 120, 126))
  buttons = ((70, 45, 25), (25, 25, 25), (235, 232, 225), tuple(mean * 0.6))
  linings = ((228, 214, 190), (120, 90, 62), (205, 205, 200))
  return {
      'ink': rgb(mean + 70 if dark else mean * 0.45),
      'seam': rgb(mean + 35 if dark else mean * 0.72),
      'edge': rgb(mean + 30 if dark else mean * 0.75),
      'inner': rgb(mean * 0.5 + 35 if dark else mean * 0.45),
      'metal': rgb(metals[int(rng.integers(3))]),
      'button': rgb(buttons[int(rng.integers(4))]),
      'trim': rgb((240, 240, 240) if lum < 150 else (25, 30, 60)),
      'collar_contrast': rgb((246, 246, 242) if lum < 160 else (30, 30, 40)),
      'shirt': rgb(((246, 246, 244), (200, 220, 240))[int(rng.integers(2))]),
      'tie': rgb(rng.uniform(20, 200, 3)),
      'lining': rgb(linings[int(rng.integers(3))]),
      'lining_dark': rgb((90, 70, 50)),
      'belt': rgb((88, 55, 30) if rng.random() < 0.5 else mean * 0.7),
      'toggle': rgb((214, 188, 140)),
      'stitch': rgb((205, 150, 60)),
  }


def _placement(sk: Sketch, width: int, height: int, rng: np.random.Generator) -> Placement:
  """Scale to fill most of the frame (3-8% margins), centre with jitter, rotate a few degrees."""
  x1, y1, x2, y2 = sk.bounds()
  margin = rng.uniform(0.03, 0.08)
  scale = min(width * (1 - 2 * margin) / (x2 - x1), height * (1 - 2 * margin) / (y2 - y1))
  angle = np.deg2rad(rng.uniform(-3.0, 3.0))
  spare_x = max(width - scale * (x2 - x1), 0.0) / 2 - 0.02 * width
  spare_y = max(height - scale * (y2 - y1), 0.0) / 2 - 0.02 * height
  cx = width / 2 + rng.uniform(-1, 1) * min(0.02 * width, max(spare_x, 0.0))
  cy = height / 2 + rng.uniform(-1, 1) * min(0.015 * height, max(spare_y, 0.0))
  c, s = np.cos(angle), np.sin(angle)
  mx, my = 0.5 * (x1 + x2), 0.5 * (y1 + y2)
  return Placement(scale, angle, cx - scale * (c * mx - s * my), cy - scale * (s * mx + c * my))


def render(look: Look, width: int, height: int,
           rng: np.random.Generator) -> tuple[np.ndarray, Parts]:
  """The garment `look` on a white `width` x `height` canvas: (H, W, 3) uint8 RGB and its parts."""
  sk = Sketch()
  shape_rng = rng if look.shape_seed is None else np.random.default_rng(look.shape_seed)
  lower = look.silhouette in LOWER_SILHOUETTES
  if lower:
    _lower(sk, look, shape_rng)
    chest = pts((-0.3, 0.15), (0.3, 0.6))
    outlines: dict[str, np.ndarray] = {}
  elif look.silhouette in UPPER_SILHOUETTES:
    outlines = _upper(sk, look, shape_rng)
    chest = outlines['chest']
  else:
    raise ValueError(f'unknown silhouette {look.silhouette!r}')
  place = _placement(sk, width, height, rng)
  cy1, cx1, cy2, cx2 = place.box(chest, height, width)
  chest_px = (int(cy1 * height), int(cx1 * width), int(cy2 * height), int(cx2 * width))
  field, mean = fabrics.base_field(look.color, height, width, rng, (chest_px[1], chest_px[3]))
  tex = fabrics.texture(look.pattern, field, mean, place.scale, chest_px, rng)
  light = shading(sk, place, height, width, rng)
  cloth = cv2.multiply(tex, cv2.merge([light, light, light]), dtype=cv2.CV_8U)  # saturates
  img = rasterise(sk, place, cloth, _palette(mean, rng))
  boxes = {name: place.box(p, height, width) for name, p in outlines.items()}
  return img, Parts(look.case, boxes)
