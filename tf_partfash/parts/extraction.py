"""Unsupervised part extraction by jump detection on the garment silhouette (paper §4.3, Fig. 4).

The steps of §4.3: a colour-based background/foreground segmentation of the in-shop image, erosion
and dilation to remove noise, then step ("jump") detection on the silhouette's outer edge: going
down the left edge, the point where it jumps inwards is where the sleeve leaves the torso (the cuff
of a hanging sleeve, the hem of a short one) and where it lands is the torso's side; the gap under
a hanging sleeve shows that side too. Where the outer edge leaves that torso line going down is
the shoulder (the "upper jump location"). The silhouette is thus split into sleeves, torso and
collar; the middle of the torso gives the fastening strip, its top the chest (where §6 pools
colour and pattern from). Without sleeves the parts are estimated from the silhouette alone, "as
the pose is static", and so are the sizes no edge shows (proportions of the chest width).

Everything runs on a copy downscaled to `WORK_HEIGHT` rows (1/4 of a 762x1100 image), which keeps
one image at a millisecond or two on one core (the paper quotes 0.1 s).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import cv2
import numpy as np

from tf_partfash.parts.boxes import Box, Parts

# One image's part extraction, `(image, lower_body) -> Parts`: `extract_parts`, or the §7.5
# regressor's `PartRegressor.extract`.
PartExtractor = Callable[[np.ndarray, 'bool | None'], Parts]
# Bump when the algorithm's output changes: the dataset caches are named by it.
ALGORITHM_VERSION = 1

WORK_HEIGHT = 275
# Max channel difference to the background colour above which a pixel is garment: the white
# background of in-shop images is clean (the real samples: no pixel off by more than 2 away from
# the garment), and pale garments (cream, mint) differ from it by little more than 10.
FOREGROUND_THRESHOLD = 6
# Pieces of the silhouette smaller than this fraction of the largest are specks, not garment.
MIN_PIECE = 0.03


def _downscale(image: np.ndarray) -> np.ndarray:
  """`image` at `WORK_HEIGHT` rows; smaller images are kept as they are.

  Bilinear, not area, interpolation: at a non-integer factor (762 / 4) an area resize costs more
  than all the rest of the extraction, and the silhouette only needs the average of 2x2 pixels
  that bilinear takes from every 4x4 block.
  """
  h, w = image.shape[:2]
  if h <= WORK_HEIGHT:
    return image
  return cv2.resize(image, (max(1, round(w * WORK_HEIGHT / h)), WORK_HEIGHT),
                    interpolation=cv2.INTER_LINEAR)


def foreground_mask(image: np.ndarray) -> np.ndarray:
  """The garment silhouette B of §4.3 as a bool (h, w) mask at `WORK_HEIGHT` rows.

  The background colour is the median of the border pixels (in-shop images: white or near white);
  an opening removes specks (text, JPEG noise), and the large outer contours are the garment and
  are filled, which fills holes in it (white print, buttons). No closing: it would seal the
  narrow gap between a hanging sleeve and the torso.
  """
  image = np.asarray(image)
  if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
    raise ValueError(f'expected an RGB uint8 image of shape (H, W, 3), got {image.dtype} '
                     f'{image.shape}')
  small = _downscale(image)
  border = np.concatenate([small[0], small[-1], small[:, 0], small[:, -1]])
  background = np.median(border, axis=0)
  diff = cv2.absdiff(small, (*background.tolist(), 0.0))
  diff = cv2.max(cv2.max(diff[:, :, 0], diff[:, :, 1]), diff[:, :, 2])
  mask = (diff > FOREGROUND_THRESHOLD).astype(np.uint8)
  mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
  contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
  filled = np.zeros_like(mask)
  if contours:
    # The large outlines, filled: the garment without specks around it or holes in it. Not only
    # the largest: a crease or seam as light as the background may cut a piece (a short sleeve)
    # off the rest.
    areas = [cv2.contourArea(c) for c in contours]
    keep = [c for c, a in zip(contours, areas) if a >= MIN_PIECE * max(areas)]
    cv2.drawContours(filled, keep, -1, 1, cv2.FILLED)
  return filled.view(bool)


@dataclasses.dataclass(frozen=True)
class Sleeve:
  """One sleeve; columns are distances from the body axis, so either side can stand in for the
  other (the right side is found on the mirrored mask)."""
  top: int        # shoulder row: the outer edge leaves the torso line (the upper jump location)
  bottom: int     # last row: the cuff of a hanging sleeve, the hem of a short one
  outer: float    # outermost sleeve edge
  line: float     # the torso line: the torso's side where the sleeve meets it
  torso: float    # the torso's widest extent on this side (a flared hem reaches past the line)


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
  """`(start, stop)` of each run of True in a 1-d bool array."""
  padded = np.concatenate([[False], flags, [False]])
  changes = np.flatnonzero(padded[1:] != padded[:-1])
  return list(zip(changes[::2].tolist(), changes[1::2].tolist()))


def _median(values: np.ndarray) -> float:
  """The median (np.median costs ten times more on these short arrays)."""
  ordered = np.sort(values, axis=None)
  n = ordered.size
  return float(ordered[n // 2]) if n % 2 else 0.5 * float(ordered[n // 2 - 1] + ordered[n // 2])


def _gap(band: np.ndarray, edge: np.ndarray, centre: int, first: int,
         far_out: float) -> tuple[float | None, int, float]:
  """The gap between a hanging sleeve and the torso: rows where garment lies left of the torso's
  run with background in between. Returns the torso line (the torso's side where the gap opens,
  below the armpit; None without a gap), the gap's first row and the torso's outermost side
  along the gap."""
  leftwards = ~band[:, centre::-1]
  torso_edge = np.where(leftwards.any(axis=1), centre + 1 - leftwards.argmax(axis=1), 0)
  gap = band[:, centre] & (edge < torso_edge - 1) & (torso_edge < far_out)
  gap[:first] = False
  runs = [r for r in _runs(gap) if r[1] - r[0] >= max(2, round(0.03 * len(edge)))]
  if not runs:
    return None, first, np.inf
  start, stop = runs[0]
  line = _median(torso_edge[start:start + max(3, (stop - start) // 4)])
  return line, start, float(torso_edge[gap].min())


def _jump(edge: np.ndarray, first: int, width: float, far_out: float) -> int | None:
  """The first row after the first jump of the outer edge below row `first`, or None.

  A jump: going down, the edge moves inwards by a sizeable step, faster than about one column
  per two rows (a torso's side, even a fitted waist, is steeper), and then runs on nearly
  vertically as the torso's side, far from the axis (a rounded hem or the neck under a hood
  does not).
  """
  steep = edge[2:] - edge[:-2] >= 1
  settle = max(2, round(0.03 * len(edge)))
  min_jump = max(3.0, 0.07 * width)
  for start, stop in _runs(steep):
    land = stop + 1
    if start < first or edge[land] - edge[start] < min_jump or land + settle > len(edge):
      continue
    after = edge[land:land + settle]
    if np.ptp(after) <= max(2.0, min_jump / 3) and after.mean() < far_out:
      return land
  return None


def _cuff_line(band: np.ndarray, edge: np.ndarray, centre: int, width: float,
               far_out: float) -> float | None:
  """The torso line from a sleeve hanging close to the torso down past its hem: the cuff sticks
  out a little below the hem, apart from the other cuff and far from the axis (a jumpsuit's
  legs start higher up, near the axis). Its inner end stands in for the torso's side."""
  on_axis = np.flatnonzero(band[:, centre])
  hem = int(on_axis[-1]) if on_axis.size else 0
  if hem < 0.7 * len(edge):
    return None
  below, outer = band[hem + 1:], edge[hem + 1:]
  inner = np.argmax(~below & (np.arange(below.shape[1]) > outer[:, None]), axis=1)
  inner = inner[(inner < far_out) & (inner - outer >= 0.05 * width)]
  return _median(inner) if inner.size >= max(2, 0.015 * len(edge)) else None


def _jitter(width: float) -> float:
  """How far outside the torso line an outer edge must lie to be a sleeve's, not jitter."""
  return max(1.0, 0.02 * width)


def outside_runs(distance: np.ndarray, line: float, width: float) -> list[tuple[int, int]]:
  """`(start, stop)` of each stretch of rows whose outer edge (its `distance` from the axis)
  lies outside the torso line (`line` from the axis): where a sleeve may be, as `_left_sleeve`
  finds it (the regressor's `read_sleeve`)."""
  return _runs(distance > line + _jitter(width))


def _left_sleeve(band: np.ndarray, axis: float, width: float) -> Sleeve | None:
  """The sleeve on the left of the garment rows `band` of the mask, by jump detection (§4.3).

  Columns are pixel-edge coordinates (column j spans [j, j + 1)), `axis` included; rows count
  from the garment's top; `width` is the garment's. The torso line, the x where sleeve and torso
  meet, comes from the gap under a hanging sleeve, else from the landing of the outer edge's
  jump (`_jump`), else from a cuff below the hem. The sleeve is then the first stretch of rows,
  from the shoulder down, where the outer edge lies outside the torso line.
  """
  height = band.shape[0]
  edge = band.argmax(axis=1)
  centre = min(band.shape[1] - 1, int(axis))
  far_out = axis - 0.2 * width
  # Sleeves start below the collar: a hood's or collar's outline is never a sleeve.
  line, first, torso = _gap(band, edge, centre, int(0.08 * height), far_out)
  land = _jump(edge, first, width, far_out)
  if line is None and land is not None:
    line = _median(edge[land:land + max(2, round(0.03 * height))])
  if line is None:
    line = _cuff_line(band, edge, centre, width, far_out)
  if line is None:
    return None
  outside = edge < line - _jitter(width)
  if land is not None:
    # The sleeve ends at the jump: a torso widening below a cuff stays outside the line.
    outside[land:] = False
    torso = min(torso, float(edge[land:].min()))
  # A sleeve hangs from a shoulder below the neck, not from the garment's top (a waistband).
  stretches = [r for r in _runs(outside)
               if r[1] - r[0] >= max(2, 0.05 * height) and r[0] >= 0.03 * width]
  if not stretches:
    return None
  start, stop = stretches[0]
  outer = float(edge[start:stop].min())
  if line - outer < 0.06 * width:
    return None
  return Sleeve(top=start, bottom=stop - 1, outer=axis - outer, line=axis - line,
                torso=axis - min(torso, line))


def _looks_lower(band: np.ndarray, counts: np.ndarray, width: float) -> bool:
  """Whether the silhouette is a lower-body garment, for images whose labels do not settle it.

  `band` holds the garment's rows of the mask, `counts` their garment pixels. A lower garment
  starts with its waistband: one piece, under a straight top edge, about as wide as the garment's
  upper half gets (the hips). An upper garment starts with a neck, collar or hood much narrower
  than its shoulders, or with straps or a sweetheart neckline (a swimsuit, unlike trunks and
  briefs), or a ruffle: in two pieces, narrow or not straight. The depth of the row looked at is
  in garment widths, below what a tilt of a few degrees leaves of a waistband's top corner.
  """
  last = band.shape[0] - 1
  row = band[min(last, int(0.07 * width))]
  if np.count_nonzero(np.diff(row.view(np.int8)) == 1) + int(row[0]) != 1:
    return False
  cols = np.flatnonzero(row)
  x1, x2 = int(cols[0]), int(cols[-1]) + 1
  if x2 - x1 < 0.8 * counts[:last // 2 + 1].max():
    return False
  inset = (x2 - x1) // 10
  edge = band[:, x1 + inset:x2 - inset].argmax(axis=0).astype(float)
  if edge.size < 5:
    return False
  # Residual of the least-squares line through the top edge.
  xs = np.arange(edge.size) - (edge.size - 1) / 2
  fit = edge.mean() + xs * (xs @ edge) / (xs @ xs)
  return float(np.abs(edge - fit).max()) <= 0.02 * width


@dataclasses.dataclass(frozen=True)
class Garment:
  """Landmarks of an upper-body silhouette in working-scale pixel-edge coordinates, rows counted
  from the garment's first row `top`."""
  top: int                     # first garment row of the mask (a collar may stand above the neck)
  collar: float                # top of the collar: the garment's, or under the straps
  neck: float                  # where the torso starts (the neck, or a strapless top's edge)
  armpit: int                  # the armpits
  hem: int                     # last row of the torso
  axis: float                  # column of the body's vertical axis
  chest: float                 # half width of the torso at the chest
  torso: tuple[float, float]   # left, right widest torso extent, distances from the axis
  neckline: float              # half width of the neckline (a bare top's spans the torso)
  sleeves: tuple[Sleeve, Sleeve] | None


@dataclasses.dataclass(frozen=True)
class Silhouette:
  """The garment's rows of a mask and what is measured on them directly, before any landmark:
  where jump detection (`find_garment`) and the regressor (`parts.regression`) both start."""
  top: int            # first garment row of the mask
  band: np.ndarray    # bool (rows, w): the mask's garment rows
  left: np.ndarray    # per row, the first garment column (pixel-edge coordinates)
  right: np.ndarray   # per row, one past the last garment column
  counts: np.ndarray  # per row, garment pixels
  axis: float         # column of the body's vertical axis: the median of the rows' midpoints
  width: float        # the garment's width

  @property
  def mirrored(self) -> np.ndarray:
    return np.ascontiguousarray(self.band[:, ::-1])


def silhouette(mask: np.ndarray) -> Silhouette:
  """The `Silhouette` of a foreground mask; an empty mask is taken as a garment filling it."""
  h, w = mask.shape
  rows = np.flatnonzero(mask.any(axis=1))
  if rows.size == 0:
    mask = np.ones_like(mask)
    rows = np.arange(h)
  top = int(rows[0])
  band = mask[top:int(rows[-1]) + 1]
  left = band.argmax(axis=1)
  right = w - band[:, ::-1].argmax(axis=1)
  return Silhouette(top=top, band=band, left=left, right=right,
                    counts=np.count_nonzero(band, axis=1), axis=_median((left + right) / 2),
                    width=float(right.max() - left.min()))


def find_garment(mask: np.ndarray, lower_body: bool | None) -> Garment | None:
  """The landmarks of the garment in `mask` by jump detection, or None when it is a lower-body
  one.

  `lower_body` False: an upper-body garment whatever it looks like; None: decided by the
  silhouette (`_looks_lower`).
  """
  s = silhouette(mask)
  top, band, counts, axis, width = s.top, s.band, s.counts, s.axis, s.width
  if lower_body is None and _looks_lower(band, counts, width):
    return None
  found = (_left_sleeve(band, axis, width), _left_sleeve(s.mirrored, mask.shape[1] - axis, width))
  if not any(found):
    return _sleeveless(top, counts, axis, axis - s.left, s.right - axis)
  # The pose is static and symmetric: a sleeve hidden on one side mirrors the other's.
  sleeves = (found[0] or found[1], found[1] or found[0])
  chest = 0.5 * (sleeves[0].line + sleeves[1].line)
  shoulder = min(s.top for s in sleeves)
  # The neck lies a fixed slope above the shoulder points, the armpit a fixed drop below them
  # (§4.3: the pose is static), or higher where a short sleeve's hem ends. (The gap under a
  # hanging sleeve opens only some way below the armpit.)
  neck = max(0.0, shoulder - 0.33 * chest)
  armpit = min(min(s.bottom for s in sleeves), round(shoulder + 0.85 * chest))
  return Garment(top=top, collar=0.0, neck=neck, armpit=armpit, hem=len(band) - 1, axis=axis,
                 chest=chest, torso=(sleeves[0].torso, sleeves[1].torso),
                 neckline=0.5 * float(counts[min(int(neck + 0.1 * chest), len(band) - 1)]),
                 sleeves=sleeves)


def _sleeveless(top: int, counts: np.ndarray, axis: float, left: np.ndarray,
                right: np.ndarray) -> Garment:
  """Landmarks without sleeves: "as the pose is static" (§4.3), from the side profiles alone.

  Per garment row from `top`: `counts` of garment pixels, and the outer edges' distances from
  the axis `left` and `right`.
  """
  height = len(counts)
  upper = slice(0, height // 2)
  chest = 0.5 * (float(left[upper].max()) + float(right[upper].max()))
  # The torso starts where the garment is a third of the chest wide: straps and collars above.
  neck = int(np.argmax(counts >= 0.6 * chest))
  # The armpits: where the armholes have widened the silhouette to the chest, below the neck.
  armpit = neck + int(np.argmax(left[neck:] + right[neck:] >= 1.9 * chest))
  return Garment(top=top, collar=max(0.0, neck - 0.1 * chest), neck=float(neck), armpit=armpit,
                 hem=height - 1, axis=axis, chest=chest,
                 torso=(float(left[armpit:].max()), float(right[armpit:].max())),
                 neckline=0.5 * float(counts[min(neck + int(0.1 * chest), height - 1)]),
                 sleeves=None)


def _box(y1: float, x1: float, y2: float, x2: float, h: int, w: int) -> Box:
  """A normalised `(y1, x1, y2, x2)` box from pixel-edge coordinates, clipped to the image.

  The proportions taken from the chest width can overshoot on a silhouette that is no garment
  (far wider than tall, say): the box then stays a valid, if empty, one.
  """
  y1, y2 = min(max(y1 / h, 0.0), 1.0), min(max(y2 / h, 0.0), 1.0)
  x1, x2 = min(max(x1 / w, 0.0), 1.0), min(max(x2 / w, 0.0), 1.0)
  return y1, x1, max(y1, y2), max(x1, x2)


def part_boxes(g: Garment, h: int, w: int) -> dict[str, Box]:
  """The part boxes of a garment's landmarks (§4.3; §6 for the chest) in an h x w mask.

  The sizes not measured on the silhouette are proportions of the chest width: the pose is
  static (§4.3).
  """
  def box(y1: float, x1: float, y2: float, x2: float) -> Box:
    return _box(g.top + y1, x1, g.top + y2, x2, h, w)

  boxes: dict[str, Box] = {}
  if g.sleeves:
    left, right = g.sleeves
    boxes['left_sleeve'] = box(left.top, g.axis - left.outer, left.bottom + 1, g.axis - left.line)
    boxes['right_sleeve'] = box(right.top, g.axis + right.line, right.bottom + 1,
                                g.axis + right.outer)
  c = g.chest
  collar = min(max(g.neckline, 0.45 * c), 0.95 * c)
  boxes['collar'] = box(g.collar, g.axis - collar, g.neck + 0.5 * c, g.axis + collar)
  boxes['torso'] = box(g.neck, g.axis - g.torso[0], g.hem + 1, g.axis + g.torso[1])
  boxes['chest'] = box(g.neck + 0.3 * c, g.axis - 0.72 * c, g.armpit + 0.6 * c, g.axis + 0.72 * c)
  boxes['fastening'] = box(g.neck + 0.3 * c, g.axis - 0.15 * c, g.hem + 1 - 0.05 * c,
                           g.axis + 0.15 * c)
  return boxes


def extract_parts(image: np.ndarray, lower_body: bool | None = None) -> Parts:
  """Case and part boxes of one in-shop RGB uint8 image (H, W, 3) (§4.3, Fig. 4).

  `lower_body` comes from the labels when they settle it (the "Extract Parts?" decision of §4.3);
  None lets the silhouette decide. A lower-body garment gets no parts. Otherwise the sleeves are
  found by jump detection (`sleeve`), or, without sleeves, the other parts are estimated from the
  silhouette (`sleeveless`). An image with no garment in it is treated as a garment filling it.
  """
  if lower_body:
    return Parts('lower')
  mask = foreground_mask(image)
  garment = find_garment(mask, lower_body)
  if garment is None:
    return Parts('lower')
  return Parts('sleeve' if garment.sleeves else 'sleeveless', part_boxes(garment, *mask.shape))
