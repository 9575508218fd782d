"""Colours and the 16 procedural patterns of the synthetic dataset (paper §3, §6).

The paper judges `color` and `pattern` on the chest part (§6), so every texture keeps the labelled
base colour dominant there: secondary colours cover well under half of any chest-sized window, and
placed motifs (photo, print) sit on the chest. Textures are drawn over the whole canvas in image
pixels; the garment mask decides where they show.
"""
from __future__ import annotations

import functools
from typing import Callable

import cv2
import numpy as np

from tf_partfash.attributes import attribute

# RGB of each `color` value (vocabulary order). Neighbours are as close as in shop photos, where
# navy, indigo and black or charcoal and gray are told apart by a few tens of levels, and the
# exposure of each photo (`base_rgb`) moves them further into each other. Multi has no single RGB.
COLOR_RGB: dict[str, tuple[int, int, int]] = {
    'Maroon': (110, 24, 40), 'Black': (24, 24, 28), 'White': (238, 238, 234),
    'Charcoal': (66, 68, 74), 'Indigo': (44, 52, 104), 'Navy': (28, 34, 70),
    'Pink': (242, 154, 186), 'Light blue': (150, 196, 236), 'Blue': (30, 88, 206),
    'Beige': (222, 202, 166), 'Orange': (242, 122, 28), 'Yellow': (246, 212, 40),
    'Red': (214, 26, 32), 'Purple': (128, 48, 158), 'Brown': (112, 70, 38),
    'Olive': (112, 112, 36), 'Green': (28, 136, 62), 'Gray': (124, 124, 128),
}
_SOLID = [c for c in attribute('color').values if c != 'Multi']
_FLORAL = [(236, 70, 110), (250, 210, 60), (255, 255, 255), (160, 90, 210), (250, 140, 40)]


def base_rgb(color: str, rng: np.random.Generator) -> np.ndarray:
  """The shown colour: a dye variation (+-10 per channel) under the photo's exposure (x0.85-1.15),
  float32 RGB."""
  rgb = (np.float32(COLOR_RGB[color]) + rng.uniform(-10, 10, 3)) * rng.uniform(0.85, 1.15)
  return np.clip(rgb, 0, 255).astype(np.float32)


def contrast_rgb(rgb: np.ndarray) -> np.ndarray:
  """A secondary colour that reads against `rgb`: off-white on dark bases, a dark tone on light."""
  if float(rgb @ np.float32([0.3, 0.59, 0.11])) < 120:
    return np.float32([236, 234, 228])
  return rgb * np.float32(0.35)


def base_field(color: str, height: int, width: int, rng: np.random.Generator,
               chest_x: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
  """(H, W, 3) float32 base colour of the garment and its mean RGB.

  `Multi` is colour blocking with 2-3 distinct solid colours split along vertical or diagonal lines
  through the chest span `chest_x` (pixel columns), so the chest itself shows several colours.
  """
  if color != 'Multi':
    rgb = base_rgb(color, rng)
    return _solid(height, width, rgb), rgb
  names = rng.choice(len(_SOLID), size=3, replace=False)
  rgbs = [base_rgb(_SOLID[i], rng) for i in names]
  x = np.arange(width, dtype=np.float32)[None, :]
  y = np.arange(height, dtype=np.float32)[:, None]
  x0, x1 = chest_x
  tilt = rng.uniform(-0.4, 0.4)
  coord = x + tilt * (y - height / 2)
  cuts = np.sort(rng.uniform(x0 + 0.2 * (x1 - x0), x1 - 0.2 * (x1 - x0), 2))
  if rng.random() < 0.5:  # two blocks
    cuts[1] = width * 4
  block = (coord > cuts[0]).astype(np.int32) + (coord > cuts[1]).astype(np.int32)
  field = np.stack(rgbs)[block]
  return field, np.mean(np.stack(rgbs), axis=0)


def _solid(height: int, width: int, rgb: np.ndarray) -> np.ndarray:
  """(H, W, 3) float32 filled with `rgb`."""
  # Copying whole rows is ~8x faster than numpy's broadcast over a 3-long last axis.
  row = np.tile(np.asarray(rgb, np.float32), width)
  return np.ascontiguousarray(np.broadcast_to(row, (height, width * 3))).reshape(height, width, 3)


def _noise(height: int, width: int, cells: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
  """Smooth value noise in [0, 1): a coarse random grid upsampled bicubically."""
  small = rng.random((cells[0], cells[1])).astype(np.float32)
  return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def _standard(n: np.ndarray) -> np.ndarray:
  return (n - n.mean()) / (n.std() + 1e-6)


def _mix(field: np.ndarray, mask: np.ndarray, rgb: np.ndarray, amount: float = 1.0) -> np.ndarray:
  """`field` blended towards `rgb` by `mask * amount` (mask boolean or in [0, 1])."""
  h, w = field.shape[:2]
  a = np.ascontiguousarray(np.broadcast_to(mask, (h, w)), dtype=np.float32) * np.float32(amount)
  return cv2.blendLinear(_solid(h, w, rgb), np.ascontiguousarray(field), a, 1.0 - a)


def texture(pattern: str, field: np.ndarray, mean_rgb: np.ndarray, unit: float,
            chest: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
  """Applies `pattern` to the base colour `field`: (H, W, 3) float32 RGB in [0, 255].

  `unit` is the garment's torso width in pixels (motif sizes follow the garment, not the image);
  `chest` is the chest box `(y1, x1, y2, x2)` in pixels, where photo and graphic prints are placed.
  """
  if pattern not in _PATTERNS:
    raise ValueError(f'unknown pattern {pattern!r}')
  return _PATTERNS[pattern](field, mean_rgb, unit, chest, rng)


# Every pattern below takes (field, mean_rgb, unit, chest, rng) like `texture`, so it can dispatch
# on the value; most ignore `chest`.


def _grid(field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Pixel row (H, 1) and column (1, W) coordinates of `field`, float32."""
  h, w = field.shape[:2]
  return np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]


def _plain(field: np.ndarray, mean_rgb: np.ndarray, unit: float,
           chest: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
  """The base colour alone."""
  return field


def _striped(field: np.ndarray, mean_rgb: np.ndarray, unit: float,
             chest: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
  """Horizontal bands, the secondary colour covering ~35%."""
  ys, _ = _grid(field)
  period = unit * rng.uniform(0.09, 0.2)
  return _mix(field, (ys + rng.uniform(0, period)) % period < 0.35 * period,
              contrast_rgb(mean_rgb))


def _pinstriped(field: np.ndarray, mean_rgb: np.ndarray, unit: float,
                chest: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
  """Thin vertical lines, ~1.5 px."""
  h, w = field.shape[:2]
  _, xs = _grid(field)
  period = unit * rng.uniform(0.06, 0.09)
  width = max(1.2, unit * 0.007)
  return _mix(field, np.broadcast_to(xs % period < width, (h, w)), contrast_rgb(mean_rgb), 0.8)


def _checked(field: np.ndarray, mean_rgb: np.ndarray, unit: float,
             chest: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
  """Gingham or tartan: crossing bands, darker where they cross; the base keeps ~50%."""
  ys, xs = _grid(field)
  second = contrast_rgb(mean_rgb)
  period = unit * rng.uniform(0.12, 0.22)
  bx = (xs % period < 0.3 * period).astype(np.float32)
  by = (ys % period < 0.3 * period).astype(np.float32)
  out = _mix(field, np.minimum(bx + by, 1.0), second, 0.45)
  return _mix(out, bx * by > 0, second, 0.9)


def _polka_dot(field: np.ndarray, mean_rgb: np.ndarray, unit: float,
               chest: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
  """Round dots in staggered rows."""
  ys, xs = _grid(field)
  period = unit * rng.uniform(0.1, 0.16)
  radius = period * rng.uniform(0.17, 0.26)
  shift = ((ys // period) % 2) * period / 2
  dx = (xs + shift) % period - period / 2
  dy = ys % period - period / 2
  return _mix(field, dx * dx + dy * dy < radius * radius, contrast_rgb(mean_rgb))


def _marl(field: np.ndarray, mean_rgb: np.ndarray, unit: float,
          chest: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
  """Heathered yarn: short horizontal streaks of lighter and darker fibres, and speckle."""
  h, w = field.shape[:2]
  streaks = cv2.resize(rng.random((h // 2, max(w // 10, 2))).astype(np.float32), (w, h),
                       interpolation=cv2.INTER_LINEAR)
  speck = rng.random((h, w)).astype(np.float32)
  return field * (0.78 + 0.3 * streaks[..., None] + 0.1 * speck[..., None])


def _herringbone(field: np.ndarray, mean_rgb: np.ndarray, unit: float,
                 chest: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
  """Columns of diagonal twill lines alternating in direction."""
  ys, xs = _grid(field)
  col = unit * rng.uniform(0.06, 0.09)
  step = unit * 0.035
  sign = np.where((xs // col) % 2 == 0, 1.0, -1.0)
  lines = (ys + sign * (xs % col)) % step < 0.45 * step
  return field * np.where(lines, 1.0, 0.72)[..., None].astype(np.float32)


def _colour_gradient(field: np.ndarray, mean_rgb: np.ndarray, unit: float,
                     chest: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
  """The base at the chest's top fading into a second hue below (so the chest stays the base)."""
  h = field.shape[0]
  ys, _ = _grid(field)
  other = base_rgb(_SOLID[rng.integers(len(_SOLID))], rng)
  y0 = chest[0]
  t = np.clip((ys - y0) / max(h - y0, 1) * 1.3, 0, 1)[..., None]
  return field * (1 - t) + other * t


def _camouflage(field: np.ndarray, mean_rgb: np.ndarray, unit: float,
                chest: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
  """Three independent layers of hard-edged blobs in darker tones, ~4 per torso width."""
  h, w = field.shape[:2]
  cells = (int(4 * h / unit) + 2, int(4 * w / unit) + 2)
  tones = (mean_rgb * 0.6 + np.float32([10, 25, 0]), mean_rgb * 0.8 + 45, mean_rgb * 0.3)
  out = field
  for tone in tones:
    n = _standard(_noise(h, w, cells, rng) + 0.4 * _noise(h, w, (2 * cells[0], 2 * cells[1]),
                                                          rng))
    out = _mix(out, n > 0.8, np.clip(tone, 0, 255))
  return out


def _burnout(field: np.ndarray, mean_rgb: np.ndarray, unit: float,
             chest: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
  """Sheer devore patches: soft lighter translucent areas."""
  h, w = field.shape[:2]
  n = _standard(_noise(h, w, (int(8 * h / unit) + 2, int(8 * w / unit) + 2), rng))
  soft = np.clip((n - 0.4) * 1.5, 0, 1)
  return _mix(field, soft, np.float32([250, 250, 250]), 0.55)


def _motifs(pattern: str, field: np.ndarray, mean_rgb: np.ndarray, unit: float,
            chest: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
  """`pattern`'s motifs scattered over the field (see `_scatter_motifs`)."""
  out = np.ascontiguousarray(field)  # cv2 draws in place, on contiguous arrays only
  _scatter_motifs(out, pattern, mean_rgb, unit, rng)
  return out


def _photo(field: np.ndarray, mean_rgb: np.ndarray, unit: float,
           chest: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
  """A photographic scene printed on the chest (see `_photo_print`)."""
  out = np.ascontiguousarray(field)
  _photo_print(out, chest, rng)
  return out


def _print(field: np.ndarray, mean_rgb: np.ndarray, unit: float,
           chest: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
  """A graphic print on the chest in the secondary colour (see `_graphic_print`)."""
  out = np.ascontiguousarray(field)
  _graphic_print(out, chest, contrast_rgb(mean_rgb), rng)
  return out


_PATTERNS: dict[str, Callable[[np.ndarray, np.ndarray, float, tuple[int, int, int, int],
                               np.random.Generator], np.ndarray]] = {
    'Plain': _plain, 'Striped': _striped, 'Pinstriped': _pinstriped, 'Checked': _checked,
    'Polka dot': _polka_dot, 'Marl': _marl, 'Herringbone': _herringbone,
    'Colour gradient': _colour_gradient, 'Camouflage': _camouflage, 'Burnout': _burnout,
    'Photo': _photo, 'Print': _print,
    **{p: functools.partial(_motifs, p) for p in ('Animal', 'Floral', 'Paisley', 'Colourful')},
}


def _scatter_motifs(out: np.ndarray, pattern: str, mean_rgb: np.ndarray, unit: float,
                    rng: np.random.Generator) -> None:
  """Randomly placed motifs drawn in place: leopard rosettes, flowers, paisleys, colour blobs."""
  h, w = out.shape[:2]
  size = unit * {'Animal': 0.05, 'Floral': 0.06, 'Paisley': 0.08, 'Colourful': 0.1}[pattern]
  density = {'Animal': 0.22, 'Floral': 0.2, 'Paisley': 0.12, 'Colourful': 0.45}[pattern]
  count = int(h * w / (size * size) * density)
  centres = rng.uniform(0, 1, (count, 2)) * np.float32([w, h])
  scales = rng.uniform(0.7, 1.3, count) * size
  angles = rng.uniform(0, 360, count)
  dark = tuple(float(v) for v in np.clip(mean_rgb * 0.25, 0, 255))
  inner = tuple(float(v) for v in np.clip(mean_rgb * 0.7, 0, 255))
  for (cx, cy), s, a in zip(centres, scales, angles):
    c = (int(cx), int(cy))
    if pattern == 'Animal':  # broken dark ring around a darker centre
      axes = (int(s), int(s * 0.75))
      cv2.ellipse(out, c, axes, a, 0, 360, inner, -1, cv2.LINE_AA)
      cv2.ellipse(out, c, axes, a, 20, 150, dark, max(2, int(s * 0.35)), cv2.LINE_AA)
      cv2.ellipse(out, c, axes, a, 200, 320, dark, max(2, int(s * 0.35)), cv2.LINE_AA)
    elif pattern == 'Floral':  # five petals around a yellow heart
      petal = _FLORAL[int(a) % len(_FLORAL)]
      for k in range(5):
        t = np.deg2rad(a + 72 * k)
        cv2.circle(out, (int(cx + s * 0.6 * np.cos(t)), int(cy + s * 0.6 * np.sin(t))),
                   max(2, int(s * 0.45)), petal, -1, cv2.LINE_AA)
      cv2.circle(out, c, max(1, int(s * 0.25)), (250, 200, 30), -1, cv2.LINE_AA)
    elif pattern == 'Paisley':  # teardrop with an eye and an outline
      col = _FLORAL[int(a) % len(_FLORAL)] if int(a) % 2 else dark
      t = np.deg2rad(a)
      tail = (int(cx + s * 1.3 * np.cos(t)), int(cy + s * 1.3 * np.sin(t)))
      cv2.ellipse(out, c, (int(s), int(s * 0.7)), a, 0, 360, col, max(2, int(s * 0.18)),
                  cv2.LINE_AA)
      cv2.line(out, (int(cx + s * np.cos(t)), int(cy + s * np.sin(t))), tail, col,
               max(2, int(s * 0.18)), cv2.LINE_AA)
      cv2.circle(out, c, max(1, int(s * 0.3)), col, -1, cv2.LINE_AA)
    else:  # Colourful: saturated blobs of many hues
      hue = np.uint8([[[int(a) % 180, 220, 235]]])
      rgb = cv2.cvtColor(hue, cv2.COLOR_HSV2RGB)[0, 0].astype(float)
      cv2.ellipse(out, c, (int(s * 0.8), int(s * 0.45)), a, 0, 360, tuple(rgb), -1, cv2.LINE_AA)


def _photo_print(out: np.ndarray, chest: tuple[int, int, int, int],
                 rng: np.random.Generator) -> None:
  """A photographic scene (sky, sun, hills, sea) printed in a rectangle on the chest."""
  y1, x1, y2, x2 = chest
  ph, pw = max(y2 - y1, 8), max(x2 - x1, 8)
  t = np.linspace(0, 1, ph, dtype=np.float32)[:, None, None]
  sky = np.float32([250, 140, 60]) * (1 - t) + np.float32([80, 120, 200]) * t
  if rng.random() < 0.5:
    sky = np.float32([70, 150, 230]) * (1 - t) + np.float32([200, 225, 245]) * t
  img = np.broadcast_to(sky, (ph, pw, 3)).copy()
  cv2.circle(img, (int(pw * rng.uniform(0.2, 0.8)), int(ph * 0.35)), int(ph * 0.14),
             (255, 230, 120), -1, cv2.LINE_AA)
  xs = np.arange(pw, dtype=np.float32)
  ridge = ph * (0.55 + 0.12 * np.sin(xs / pw * rng.uniform(4, 9) + rng.uniform(0, 6)))
  rows = np.arange(ph, dtype=np.float32)[:, None]
  img[rows > ridge[None, :]] = (40, 90, 60)
  img[np.broadcast_to(rows > ph * 0.8, (ph, pw))] = (30, 70, 140)
  grain = rng.normal(0, 6, (ph, pw, 1)).astype(np.float32)
  region = out[y1:y1 + ph, x1:x1 + pw]
  region[:] = np.clip(img + grain, 0, 255)[:region.shape[0], :region.shape[1]]
  cv2.rectangle(out, (x1, y1), (x1 + pw, y1 + ph), (250, 250, 250), max(1, pw // 60))


_WORDS = ('BROOKLYN', 'TOKYO', 'SURF CLUB', 'ORIGINAL', 'ATHLETIC', 'WILD', 'NO 87', 'LOVE')


def _graphic_print(out: np.ndarray, chest: tuple[int, int, int, int], ink: np.ndarray,
                   rng: np.random.Generator) -> None:
  """A flat graphic print on the chest: a bold word over a geometric emblem."""
  y1, x1, y2, x2 = chest
  accent = tuple(float(v) for v in cv2.cvtColor(
      np.uint8([[[int(rng.integers(180)), 230, 230]]]), cv2.COLOR_HSV2RGB)[0, 0])
  cx, cy = (x1 + x2) // 2, int(y1 + 0.62 * (y2 - y1))
  r = int(0.22 * (y2 - y1))
  if rng.random() < 0.5:
    cv2.circle(out, (cx, cy), r, accent, -1, cv2.LINE_AA)
  else:
    tri = np.int32([[cx - r, cy + r], [cx + r, cy + r], [cx, cy - r]])
    cv2.fillConvexPoly(out, tri, accent, cv2.LINE_AA)
  word = _WORDS[int(rng.integers(len(_WORDS)))]
  scale = 0.9 * (x2 - x1) / max(cv2.getTextSize(word, cv2.FONT_HERSHEY_DUPLEX, 1.0, 2)[0][0], 1)
  size = cv2.getTextSize(word, cv2.FONT_HERSHEY_DUPLEX, scale, 2)[0]
  # putText draws only on 8-bit images: render the word as a mask, then paint it.
  mask = np.zeros(out.shape[:2], np.uint8)
  cv2.putText(mask, word, (cx - size[0] // 2, int(y1 + 0.3 * (y2 - y1))), cv2.FONT_HERSHEY_DUPLEX,
              scale, 255, max(1, int(2 * scale)), cv2.LINE_AA)
  out[:] = _mix(out, mask * np.float32(1 / 255), ink)
