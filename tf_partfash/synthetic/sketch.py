"""A tiny vector display list for drawing one synthetic garment (used by `garments`).

Garments are built in a canonical frame (x right, y down, torso width ~1, neck base at y=0) so that
their geometry is independent of image size; one similarity transform (scale, small rotation,
shift) then places the whole list in the image, which keeps the true part boxes exact (paper §4.3
scores parts against them). Colours may be symbolic names resolved per garment (`ink`, `inner`,
...), because the dye is chosen after the shape.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence, Union

import cv2
import numpy as np

Color = Union[str, tuple[float, float, float]]
_SHIFT = 4  # sub-pixel bits for cv2 polygon and line coordinates
_AA = cv2.LINE_AA


def pts(*xy: float | Sequence[float]) -> np.ndarray:
  """`pts((x, y), (x, y), ...)` -> float64 (N, 2)."""
  return np.asarray(xy, np.float64).reshape(-1, 2)


def mirror(points: np.ndarray) -> np.ndarray:
  """The left-right mirror image (x -> -x) in reverse order, to close symmetric outlines."""
  return points[::-1] * np.float64([-1.0, 1.0])


@dataclasses.dataclass
class Sketch:
  """Body polygons (the textured silhouette) and the detail operations drawn over it, in order."""
  body: list[np.ndarray] = dataclasses.field(default_factory=list)
  ops: list[tuple] = dataclasses.field(default_factory=list)
  folds: list[np.ndarray] = dataclasses.field(default_factory=list)

  def add_body(self, points: np.ndarray) -> None:
    self.body.append(np.asarray(points, np.float64))

  def fabric(self, points: np.ndarray, shade: float = 1.0) -> None:
    """A polygon of the garment's own textured cloth, darkened by `shade` (collars, plackets)."""
    self.ops.append(('fabric', np.asarray(points, np.float64), shade))

  def fill(self, points: np.ndarray, color: Color) -> None:
    self.ops.append(('fill', np.asarray(points, np.float64), color))

  def stroke(self, points: np.ndarray, color: Color, width: float, closed: bool = False) -> None:
    self.ops.append(('stroke', np.asarray(points, np.float64), color, width, closed))

  def disc(self, centre: Sequence[float], radius: float, color: Color) -> None:
    self.ops.append(('disc', pts(centre), color, radius, -1.0))

  def ring(self, centre: Sequence[float], radius: float, color: Color, width: float) -> None:
    self.ops.append(('disc', pts(centre), color, radius, width))

  def fold(self, points: np.ndarray) -> None:
    """A soft shading crease (drawn into the shading map, not as a line)."""
    self.folds.append(np.asarray(points, np.float64))

  def bounds(self) -> tuple[float, float, float, float]:
    """(x1, y1, x2, y2) of the body and of every drawn detail."""
    every = self.body + [op[1] for op in self.ops]
    allp = np.concatenate(every)
    return (float(allp[:, 0].min()), float(allp[:, 1].min()), float(allp[:, 0].max()),
            float(allp[:, 1].max()))


@dataclasses.dataclass(frozen=True)
class Placement:
  """Canonical -> pixel similarity transform: p' = scale * R(angle) p + (tx, ty)."""
  scale: float
  angle: float  # radians
  tx: float
  ty: float

  def apply(self, points: np.ndarray) -> np.ndarray:
    c, s = np.cos(self.angle), np.sin(self.angle)
    rot = self.scale * np.array([[c, -s], [s, c]])
    return points @ rot.T + np.array([self.tx, self.ty])

  def box(self, points: np.ndarray, height: int, width: int) -> tuple[float, float, float, float]:
    """Normalised (y1, x1, y2, x2) bounding box of the transformed points, clipped to the image."""
    p = self.apply(points)
    lo, hi = p.min(axis=0), p.max(axis=0)
    return (min(max(lo[1] / height, 0.0), 1.0), min(max(lo[0] / width, 0.0), 1.0),
            min(max(hi[1] / height, 0.0), 1.0), min(max(hi[0] / width, 0.0), 1.0))


@dataclasses.dataclass(frozen=True)
class Body:
  """Key measures of an upper-body garment in the canonical frame (see `garments`)."""
  nh: float    # half width of the neck opening
  sd: float    # y of the shoulder points
  hw: float    # half width of the torso at the chest
  ya: float    # y of the armpits
  yw: float    # y of the waist
  ww: float    # half width at the waist
  yh: float    # y where the front ends (hem, or crotch of a jumpsuit)
  top: float   # y of the front top edge: 0, or lower for spaghetti-strap and strapless tops
  bare: bool   # no shoulders (spaghetti straps, strapless): collars follow the top edge


def arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float,
        n: int = 16) -> np.ndarray:
  """Points of an ellipse arc from angle a0 to a1 (degrees; y down, so 90 is the bottom)."""
  t = np.deg2rad(np.linspace(a0, a1, n))
  return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def both(sk: Sketch, method: str, right: np.ndarray, *args) -> None:
  """Calls `sk.<method>` on `right` and on its mirror image (x -> -x)."""
  getattr(sk, method)(right, *args)
  getattr(sk, method)(right * np.float64([-1.0, 1.0]), *args)


def outlined(sk: Sketch, right: np.ndarray, shade: float = 0.9, color: Color | None = None) -> None:
  """A symmetric pair of pieces (right and mirrored), cloth or `color`, with an ink outline."""
  for piece in (right, right * np.float64([-1.0, 1.0])):
    if color is None:
      sk.fabric(piece, shade)
    else:
      sk.fill(piece, color)
    sk.stroke(piece, 'ink', 0.008, closed=True)


def _fixed(points: np.ndarray) -> np.ndarray:
  return np.round(points * (1 << _SHIFT)).astype(np.int32)


def _rgb(color: Color, palette: dict[str, tuple[float, float, float]]) -> tuple[float, ...]:
  return palette[color] if isinstance(color, str) else tuple(float(v) for v in color)


def shading(sketch: Sketch, place: Placement, height: int, width: int,
            rng: np.random.Generator) -> np.ndarray:
  """(H, W) float32 light: a soft cylinder falloff across the garment, a global gain and creases.

  Computed at quarter resolution (it is smooth) and upsampled.
  """
  h4, w4 = (height + 3) // 4, (width + 3) // 4
  x1, _, x2, _ = sketch.bounds()
  centre = place.apply(np.array([[0.5 * (x1 + x2), 0.0]]))[0, 0] / 4
  half = max(place.scale * 0.5 * (x2 - x1) / 4, 1.0)
  xs = (np.arange(w4, dtype=np.float32) - centre) / half
  ys = np.linspace(-1, 1, h4, dtype=np.float32)
  light = (1.0 - 0.12 * np.minimum(xs * xs, 1.0))[None, :] + rng.uniform(-0.04, 0.04) * ys[:, None]
  light = (light * rng.uniform(0.95, 1.04)).astype(np.float32)
  for fold in sketch.folds:
    p = _fixed(place.apply(fold) / 4)
    cv2.polylines(light, [p], False, 0.9, max(1, int(place.scale * 0.012)), _AA, _SHIFT)
  light = cv2.GaussianBlur(light, (5, 5), 0)
  return cv2.resize(light, (width, height), interpolation=cv2.INTER_LINEAR)


def rasterise(sketch: Sketch, place: Placement, cloth: np.ndarray,
              palette: dict[str, tuple[float, float, float]]) -> np.ndarray:
  """Draws the sketch on a white canvas: (H, W, 3) uint8 RGB.

  `cloth` is the shaded texture (H, W, 3) uint8 shown through the body mask and `fabric` polygons.
  """
  height, width = cloth.shape[:2]
  mask = np.zeros((height, width), np.uint8)
  # One call per polygon: a single fillPoly treats the overlap of two polygons (a sleeve over the
  # torso) as a hole, which would leave a white sliver no real garment has.
  for p in sketch.body:
    cv2.fillPoly(mask, [_fixed(place.apply(p))], 255, _AA, _SHIFT)
  alpha = mask.astype(np.float32) * np.float32(1 / 255)
  img = cv2.blendLinear(cloth, np.full_like(cloth, 255), alpha, 1.0 - alpha)
  edge = palette['edge']
  for p in sketch.body:
    cv2.polylines(img, [_fixed(place.apply(p))], True, edge, 1, _AA, _SHIFT)
  for op in sketch.ops:
    kind = op[0]
    if kind == 'fabric':
      _fabric(img, cloth, _fixed(place.apply(op[1])), op[2])
    elif kind == 'fill':
      cv2.fillPoly(img, [_fixed(place.apply(op[1]))], _rgb(op[2], palette), _AA, _SHIFT)
    elif kind == 'stroke':
      thick = max(1, int(round(op[3] * place.scale)))
      cv2.polylines(img, [_fixed(place.apply(op[1]))], op[4], _rgb(op[2], palette), thick, _AA,
                    _SHIFT)
    else:  # disc or ring
      centre = _fixed(place.apply(op[1]))[0]
      radius = max(1, int(round(op[3] * place.scale * (1 << _SHIFT))))
      thick = -1 if op[4] < 0 else max(1, int(round(op[4] * place.scale)))
      cv2.circle(img, (int(centre[0]), int(centre[1])), radius, _rgb(op[2], palette), thick, _AA,
                 _SHIFT)
  return img


def _fabric(img: np.ndarray, cloth: np.ndarray, poly: np.ndarray, shade: float) -> None:
  """Composites `cloth * shade` inside one polygon, touching only its bounding box."""
  height, width = img.shape[:2]
  x1 = max(int(poly[:, 0].min()) >> _SHIFT, 0)
  y1 = max(int(poly[:, 1].min()) >> _SHIFT, 0)
  x2 = min((int(poly[:, 0].max()) >> _SHIFT) + 2, width)
  y2 = min((int(poly[:, 1].max()) >> _SHIFT) + 2, height)
  if x2 <= x1 or y2 <= y1:
    return
  mask = np.zeros((y2 - y1, x2 - x1), np.uint8)
  cv2.fillPoly(mask, [poly - np.int32([x1 << _SHIFT, y1 << _SHIFT])], 255, _AA, _SHIFT)
  a = mask.astype(np.float32)[..., None] * np.float32(1 / 255)
  roi = img[y1:y2, x1:x2].astype(np.float32)
  src = cloth[y1:y2, x1:x2].astype(np.float32) * np.float32(shade)
  img[y1:y2, x1:x2] = (roi + (src - roi) * a).astype(np.uint8)
