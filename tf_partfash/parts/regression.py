"""The regression-based part estimator of §7.5: the jump points predicted from the silhouette.

§7.5: "We changed the part extraction method to a regression method which is trained from a small
number of images and estimate 'jump detection points'". Here the silhouette is segmented as for
jump detection (`extraction.foreground_mask`) and measured where no landmark is needed (its rows,
width and body axis: `extraction.Silhouette`); a small network then predicts, from the silhouette
downscaled to `GRID` and its side profiles, the case ("Extract Parts?") and the landmarks jump
detection finds (`extraction.Garment`: collar, neck, armpit, chest, torso sides, neckline and per
sleeve its shoulder, cuff, outer edge, torso line and torso side), and the boxes follow from them
by the same rule (`extraction.part_boxes`). A sleeve's rows and outer edge are then read off the
silhouette at its predicted torso line (`read_sleeve`), by the rule jump detection applies once it
has the line: the network's cuff row alone missed by 2 % of the image height on average where the
rule misses by 0.7 %, on styles it was not taught on (docs/results.md, §7.5).

It is trained (`fit`) on a few hundred images and their mirror images, whose case and landmarks
come from the unsupervised method, the teacher: `MEMBERS` networks of one hidden layer, each
by full-batch Adam on the case's cross entropy plus the squared error of the landmarks (those of
the sleeves only where the teacher found sleeves), averaged. One such network's boxes on styles
it was not taught on were 0.003 to 0.21 IoU below its teacher's depending on its seed (or on the
BLAS thread count, which changes the last bits of its steps); the average of five, taught on
mirrored images too, stayed within 0.05 on each part (docs/results.md, §7.5). Rows are in garment
heights from its first row, columns in garment widths from the axis, so one image size's
regressor serves another. Numpy only: it runs in part extraction's worker processes.
"""
from __future__ import annotations

import dataclasses
import os

import cv2
import numpy as np

from tf_partfash.errors import UserError
from tf_partfash.parts.boxes import CASES, Parts
from tf_partfash.parts.extraction import (ALGORITHM_VERSION, Garment, Silhouette, Sleeve,
                                          find_garment, foreground_mask, outside_runs,
                                          part_boxes, silhouette)
from tf_partfash.storage import cache

# Bump when the features, the network, the landmark encoding or how boxes follow from the
# landmarks change: a regressor file of another version is refused, and the parts caches named
# after it (`inputs.prepared`) are computed anew. 2: sleeves read off the silhouette; 3: five
# networks averaged, taught on mirror images too.
FORMAT_VERSION = 3
GRID = (32, 24)       # rows, columns of the downscaled silhouette
PROFILE_ROWS = 48     # rows at which the side profiles are sampled
HIDDEN = 128          # hidden units of one member network
MEMBERS = 5           # networks averaged (seeds seed .. seed + MEMBERS - 1)
STEPS = 3000
LEARNING_RATE = 3e-3
L2 = 3e-3
# Images a regressor is taught on by default ("a small number of images", §7.5).
TRAINING_IMAGES = 400
# The landmarks in `Garment` order; `_ROWS` in garment heights, the rest in garment widths.
GARMENT_FIELDS = ('collar', 'neck', 'armpit', 'chest', 'torso_left', 'torso_right', 'neckline')
SLEEVE_FIELDS = ('top', 'bottom', 'outer', 'line', 'torso')
LANDMARKS = GARMENT_FIELDS + tuple(f'{side}_{f}' for side in ('left', 'right')
                                   for f in SLEEVE_FIELDS)
_ROWS = np.array([n in ('collar', 'neck', 'armpit') or n.endswith(('_top', '_bottom'))
                  for n in LANDMARKS])
_SLEEVE = np.array([n.startswith(('left_', 'right_')) for n in LANDMARKS])


def features(s: Silhouette) -> np.ndarray:
  """The regressor's input for one silhouette: float32, the garment's bounding box downscaled to
  `GRID` (area-averaged), then three profiles at `PROFILE_ROWS` rows (left and right outer edge's
  distance from the axis and garment pixels per row, in garment widths), then the height/width
  ratio and the axis's place in the box."""
  x1 = int(s.left.min())
  box = s.band[:, x1:int(s.right.max())].astype(np.float32)
  grid = cv2.resize(box, GRID[::-1], interpolation=cv2.INTER_AREA).ravel()
  rows = np.linspace(0, len(s.band) - 1, PROFILE_ROWS)
  at = lambda v: np.interp(rows, np.arange(len(v)), v) / s.width
  profiles = np.concatenate([at(s.axis - s.left), at(s.right - s.axis), at(s.counts)])
  shape = [len(s.band) / s.width, (s.axis - x1) / s.width]
  return np.concatenate([grid, profiles, shape]).astype(np.float32)


def encode(g: Garment, s: Silhouette) -> np.ndarray:
  """A garment's landmarks as the regressor's targets (`LANDMARKS`; sleeves NaN without)."""
  sleeves = ([getattr(v, f) for v in g.sleeves for f in SLEEVE_FIELDS] if g.sleeves
             else [np.nan] * 2 * len(SLEEVE_FIELDS))
  values = np.array([g.collar, g.neck, g.armpit, g.chest, *g.torso, g.neckline, *sleeves])
  return np.where(_ROWS, values / len(s.band), values / s.width).astype(np.float32)


def decode(values: np.ndarray, s: Silhouette, sleeves: bool) -> Garment:
  """The `Garment` of predicted `LANDMARKS` on a silhouette, made consistent where a prediction
  is not: an order kept (collar <= neck <= armpit, shoulder before cuff, outer edge outside the
  torso line), sizes at least a pixel."""
  height = len(s.band)
  v = np.where(_ROWS, values * height, values * s.width).astype(float)
  n = dict(zip(LANDMARKS, v))
  collar = max(0.0, n['collar'])
  neck = max(collar, n['neck'])
  armpit = int(round(max(neck + 1, n['armpit'])))
  chest = max(1.0, n['chest'])

  def sleeve(side: str) -> Sleeve:
    top = int(round(min(max(0.0, n[f'{side}_top']), height - 2)))
    bottom = int(round(min(max(top + 1.0, n[f'{side}_bottom']), height - 1)))
    line = max(1.0, n[f'{side}_line'])
    return Sleeve(top=top, bottom=bottom, outer=max(line + 1.0, n[f'{side}_outer']), line=line,
                  torso=max(1.0, n[f'{side}_torso']))

  return Garment(top=s.top, collar=collar, neck=neck, armpit=armpit, hem=height - 1, axis=s.axis,
                 chest=chest, torso=(max(1.0, n['torso_left']), max(1.0, n['torso_right'])),
                 neckline=max(0.5, n['neckline']),
                 sleeves=(sleeve('left'), sleeve('right')) if sleeves else None)


def read_sleeve(predicted: Sleeve, distance: np.ndarray, width: float) -> Sleeve:
  """A predicted sleeve with its rows and outer edge read off the silhouette: `distance` holds,
  per garment row, the outer edge's distance from the axis on the sleeve's side.

  As jump detection does once it has the torso line (`extraction.outside_runs`), the sleeve is a
  stretch of rows whose outer edge lies outside the line; here the stretch the predicted rows
  overlap most, ending at most 5 % of the garment's height below the predicted cuff (a torso
  widening below a cuff, which jump detection cuts at its jump, stays out). Its outer edge is the
  farthest point of the stretch. Without such a stretch the prediction is kept.
  """
  best, overlap = None, 0
  for start, stop in outside_runs(distance, predicted.line, width):
    shared = min(stop, predicted.bottom + 1) - max(start, predicted.top)
    if shared > overlap:
      best, overlap = (start, stop), shared
  if best is None:
    return predicted
  start, stop = best
  stop = min(stop, predicted.bottom + 1 + int(0.05 * len(distance)))
  return dataclasses.replace(predicted, top=start, bottom=stop - 1,
                             outer=float(distance[start:stop].max()))


def teach(image: np.ndarray, lower_body: bool | None) -> tuple[np.ndarray, int, np.ndarray]:
  """`(features, case index, landmarks)` of one RGB image, as the unsupervised method finds them
  (`lower_body` as for `extract_parts`; landmarks NaN for a lower-body garment)."""
  mask = foreground_mask(image)
  s = silhouette(mask)
  garment = None if lower_body else find_garment(mask, lower_body)
  if garment is None:
    return features(s), CASES.index('lower'), np.full(len(LANDMARKS), np.nan, np.float32)
  case = 'sleeve' if garment.sleeves else 'sleeveless'
  return features(s), CASES.index(case), encode(garment, s)


def teach_mirrored(image: np.ndarray, lower_body: bool | None
                   ) -> list[tuple[np.ndarray, int, np.ndarray]]:
  """`teach` of the image and of its mirror image: the teacher's left and right sleeves swap
  sides, so each side's landmarks are learnt from both."""
  return [teach(image, lower_body), teach(np.ascontiguousarray(image[:, ::-1]), lower_body)]


@dataclasses.dataclass(frozen=True)
class PartRegressor:
  """A trained regression part estimator: input standardisation and one hidden ReLU layer,
  whose outputs are the case logits (`CASES` order) and the `LANDMARKS` (an average of networks
  is one network: their hidden units side by side, their output weights averaged)."""
  mean: np.ndarray
  scale: np.ndarray
  w1: np.ndarray
  b1: np.ndarray
  w2: np.ndarray
  b2: np.ndarray
  trained_on: str   # a digest of the training images' names: which images taught it
  images: int       # how many

  def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`(case logits (n, 3), landmarks (n, len(LANDMARKS)))` of feature rows `x`."""
    hidden = np.maximum(0.0, ((x - self.mean) / self.scale) @ self.w1 + self.b1)
    out = hidden @ self.w2 + self.b2
    return out[:, :len(CASES)], out[:, len(CASES):]

  def extract(self, image: np.ndarray, lower_body: bool | None = None) -> Parts:
    """Case and part boxes of one RGB uint8 image, as `extraction.extract_parts` gives them but
    with the case (among those `lower_body` leaves: False rules out lower body) and landmarks
    predicted."""
    if lower_body:
      return Parts('lower')
    mask = foreground_mask(image)
    s = silhouette(mask)
    logits, landmarks = self.predict(features(s)[None])
    if lower_body is False:
      logits[0, CASES.index('lower')] = -np.inf
    case = CASES[int(np.argmax(logits[0]))]
    if case == 'lower':
      return Parts('lower')
    garment = decode(landmarks[0], s, sleeves=case == 'sleeve')
    if garment.sleeves:
      left, right = garment.sleeves
      garment = dataclasses.replace(garment, sleeves=(
          read_sleeve(left, s.axis - s.left, s.width),
          read_sleeve(right, s.right - s.axis, s.width)))
    return Parts(case, part_boxes(garment, *mask.shape))

  def save(self, file: str) -> None:
    cache.save_npz(file, {
        'format_version': np.int64(FORMAT_VERSION), 'teacher': np.int64(ALGORITHM_VERSION),
        'trained_on': np.str_(self.trained_on), 'images': np.int64(self.images),
        **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)
           if f.name not in ('trained_on', 'images')}})

  @classmethod
  def load(cls, file: str) -> PartRegressor:
    """The regressor saved in `file`; a file that is not one of this version is an error."""
    if not os.path.exists(file):
      raise FileNotFoundError(f'part regressor not found: {file}')
    stored = cache.load_npz(file)
    names = [f.name for f in dataclasses.fields(cls)]
    missing = [n for n in names + ['format_version', 'teacher'] if n not in stored]
    if missing:
      raise UserError(f'{file} is not a part regressor (no {", ".join(missing)})')
    version, teacher = int(stored['format_version']), int(stored['teacher'])
    if (version, teacher) != (FORMAT_VERSION, ALGORITHM_VERSION):
      raise UserError(f'{file}: part regressor format {version} taught by extraction version '
                      f'{teacher}; this tf_partfash needs format {FORMAT_VERSION} and version '
                      f'{ALGORITHM_VERSION}: delete it to train a new one')
    return cls(**{n: stored[n].item() if n in ('trained_on', 'images') else stored[n]
                  for n in names})


def fit(x: np.ndarray, case: np.ndarray, landmarks: np.ndarray, trained_on: str,
        seed: int = 0, steps: int | None = None, members: int = MEMBERS,
        images: int | None = None) -> PartRegressor:
  """Trains a `PartRegressor` on feature rows `x` (n, d), case indices (n,) and target landmarks
  (n, len(LANDMARKS); NaN where the teacher has none), deterministically for a `seed`: the
  average of `members` networks (`fit_network`, seeds `seed`, `seed` + 1, ...). `images`: how
  many images the rows come from (default n).
  """
  x = np.asarray(x, np.float64)
  n = len(x)
  if n < 2 or len(set(case.tolist())) < 2:
    raise UserError(f'a part regressor needs images of at least two cases; got {n} images of '
                    f'cases {sorted({CASES[c] for c in case})}')
  mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-3
  z = (x - mean) / scale
  w1, b1, w2, b2 = zip(*(fit_network(z, case, landmarks, seed + k, steps)
                         for k in range(members)))
  f32 = lambda a: np.asarray(a, np.float32)
  return PartRegressor(f32(mean), f32(scale), f32(np.concatenate(w1, axis=1)),
                       f32(np.concatenate(b1)), f32(np.concatenate(w2) / members),
                       f32(np.mean(b2, axis=0)), trained_on=trained_on,
                       images=n if images is None else images)


def fit_network(z: np.ndarray, case: np.ndarray, landmarks: np.ndarray, seed: int,
                steps: int | None = None) -> list[np.ndarray]:
  """`[w1, b1, w2, b2]` of one network on standardised rows `z`.

  Loss: mean cross entropy of the case + mean squared error over the known landmarks (in garment
  heights and widths, so both terms are of order one) + `L2` times the squared weights, for
  `steps` (default `STEPS`) full-batch Adam steps from He-initialised weights drawn from `seed`.
  """
  steps = STEPS if steps is None else steps
  n = len(z)
  known = ~np.isnan(landmarks)
  target = np.where(known, landmarks, 0.0)
  onehot = np.eye(len(CASES))[case]
  rng = np.random.default_rng(seed)
  d, out = z.shape[1], len(CASES) + len(LANDMARKS)
  params = [rng.normal(0, np.sqrt(2 / d), (d, HIDDEN)), np.zeros(HIDDEN),
            rng.normal(0, np.sqrt(1 / HIDDEN), (HIDDEN, out)), np.zeros(out)]
  moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
  count = max(1, known.sum())
  for step in range(1, steps + 1):
    w1, b1, w2, b2 = params
    pre = z @ w1 + b1
    hidden = np.maximum(0.0, pre)
    y = hidden @ w2 + b2
    logits = y[:, :len(CASES)]
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    grad_y = np.concatenate([(p - onehot) / n,
                             2 * np.where(known, y[:, len(CASES):] - target, 0.0) / count], 1)
    grad_hidden = (grad_y @ w2.T) * (pre > 0)
    grads = [z.T @ grad_hidden + 2 * L2 * w1, grad_hidden.sum(0),
             hidden.T @ grad_y + 2 * L2 * w2, grad_y.sum(0)]
    for k, (g, (m, v)) in enumerate(zip(grads, moments)):
      m[...] = 0.9 * m + 0.1 * g
      v[...] = 0.999 * v + 0.001 * g * g
      params[k] = params[k] - LEARNING_RATE * (m / (1 - 0.9 ** step)) / (
          np.sqrt(v / (1 - 0.999 ** step)) + 1e-8)
  return params
