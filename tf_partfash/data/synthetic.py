"""The built-in synthetic in-shop dataset, written in the real Shopping100k layout (paper §3).

Each image shows one frontal garment on white (see `garments`) whose special attributes (collar,
color, fastening, pattern, sleevelen; §4.1) are all drawn visibly where §4.3/§6 look for them, with
cheap visible cues for the general ones (category by silhouette and length, fit by width, pockets).
Label frequencies are skewed like a shop's (plain and black common) and labels go missing at
realistic rates (fabric, neckline and sport mostly missing, as in the real files); a missing label
still has a drawn value, it is just not written. The true parts go to `parts_truth.csv`.

Every image's randomness comes from `(seed, image index)` alone, so any number of workers writes
identical files.

  python -m tf_partfash.data.synthetic --out DIR --num_images N --seed S [--workers 2]
      [--width 381 --height 550] [--contact_sheet out.png]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
from typing import Iterable, Sequence

import cv2
import numpy as np

from tf_partfash.attributes import ATTRIBUTE_NAMES, MISSING, SLEEVELESS_VALUES, attribute
from tf_partfash.data import shopping100k
from tf_partfash.data.garments import LOWER_SILHOUETTES, Look, render
from tf_partfash.parts.boxes import read_parts_csv, write_parts_csv

PARTS_FILE = 'parts_truth.csv'
MARKER_FILE = 'synthetic.json'
# Bump when the look of the images changes, so `ensure_dataset` refuses a stale directory.
VERSION = 2
JPEG_QUALITY = 90
_CHUNK = 32

_W = dict[str, float]
_CATEGORIES: dict[str, _W] = {
    'Male': {'Coat': 5, 'Jacket': 9, 'Suit': 4, 'Shirt': 12, 'T-shirt': 14, 'Jumper': 10,
             'Shorts': 6, 'Trouser': 9, 'Jean': 8, 'Swimming': 4, 'Jumpsuit': 1, 'Pyjamas': 2,
             'Tracksuit Bottoms': 4, 'Tracksuit': 3},
    'Female': {'Coat': 5, 'Jacket': 7, 'Shirt': 9, 'T-shirt': 12, 'Jumper': 8, 'Shorts': 4,
               'Trouser': 6, 'Jean': 6, 'Swimming': 6, 'Jumpsuit': 5, 'Pyjamas': 2,
               'Tracksuit Bottoms': 2, 'Tracksuit': 2, 'Skirt': 8, 'Dress': 17},
}
_BARE = {'Spaghetti': 1.0, 'Strapless': 1.0}
_SLEEVES: dict[str, _W] = {
    'Coat': {'Long': 10, 'Extra Long': 2, '3/4': 1.5, 'Sleeveless': 1.5},
    'Jacket': {'Long': 10, 'Extra Long': 3, '3/4': 1.5, 'Sleeveless': 3, 'Short': 0.5},
    'Suit': {'Long': 10},
    'Shirt': {'Long': 10, 'Short': 4, '3/4': 3, 'Elbow': 2, 'Extra Short': 1.5, 'Sleeveless': 2,
              'Spaghetti': 1},
    'T-shirt': {'Short': 10, 'Extra Short': 4, 'Long': 4, 'Elbow': 2.5, '3/4': 2,
                'Sleeveless': 4, 'Spaghetti': 4, 'Strapless': 2.5},
    'Jumper': {'Long': 10, 'Extra Long': 3, '3/4': 2, 'Elbow': 1, 'Short': 1, 'Sleeveless': 1},
    'Dress': {'Sleeveless': 5, 'Spaghetti': 5, 'Strapless': 4, 'Short': 5, 'Extra Short': 3,
              'Elbow': 2.5, '3/4': 3, 'Long': 4, 'Extra Long': 0.5},
    'Jumpsuit': {'Sleeveless': 4, 'Spaghetti': 4, 'Strapless': 3, 'Short': 4, 'Extra Short': 2,
                 'Elbow': 1.5, '3/4': 2, 'Long': 4},
    'Swimming': {'Spaghetti': 4, 'Strapless': 3, 'Sleeveless': 3},
    'Tracksuit': {'Long': 10, 'Extra Long': 1.5, 'Short': 1},
    'Pyjamas': {'Long': 6, 'Short': 4, '3/4': 2, 'Sleeveless': 1, 'Spaghetti': 1},
}
_COLLARS: dict[str, _W] = {
    'Coat': {'Lapel': 6, 'Hood': 3, 'Shawl': 3, 'Turndown': 4, 'High': 2, 'Chin': 3, 'Lined': 4,
             'Mandarin': 1.5},
    'Jacket': {'Hood': 6, 'Mandarin': 3, 'High': 3, 'Chin': 4, 'Lapel': 2, 'Lined': 4,
               'Turndown': 3, 'Shawl': 1.5, 'Shirt': 1, 'Kent': 0.5},
    'Suit': {'Lapel': 10, 'Shawl': 3},
    'Shirt': {'Kent': 5, 'Buttondown': 5, 'Cutaway': 5, 'Shirt': 3, 'Mandarin': 1, 'Volant': 1,
              'Peter Pan': 2, 'V-neck': 0.5, 'Round': 0.5, 'Turndown': 1},
    'T-shirt': {'Round': 10, 'V-neck': 5, 'Polo': 4, 'High': 1, 'Volant': 1.5, 'Peter Pan': 2.5,
                'Hood': 0.5},
    'Jumper': {'Round': 6, 'V-neck': 4, 'High': 3, 'Hood': 3, 'Shawl': 3, 'Polo': 1, 'Chin': 1.5,
               'Turndown': 2, 'Mandarin': 0.5, 'Lined': 1.5},
    'Dress': {'Round': 5, 'V-neck': 5, 'Peter Pan': 5, 'Volant': 3, 'Shirt': 2, 'High': 1.5,
              'Mandarin': 1, 'Polo': 0.5, 'Kent': 0.5, 'Lapel': 0.5, 'Turndown': 1.5,
              'Buttondown': 0.5, 'Cutaway': 0.5, 'Shawl': 0.5},
    'Jumpsuit': {'Round': 3, 'V-neck': 4, 'Shirt': 2, 'Volant': 1.5, 'Lapel': 1, 'Mandarin': 1,
                 'Peter Pan': 1.5, 'High': 0.5, 'Cutaway': 0.5},
    'Swimming': {'Round': 3, 'V-neck': 3, 'High': 1, 'Volant': 1},
    'Tracksuit': {'High': 4, 'Hood': 4, 'Mandarin': 3, 'Chin': 3, 'Round': 1, 'Lined': 1},
    'Pyjamas': {'Kent': 3, 'Shirt': 4, 'Round': 4, 'V-neck': 3, 'Peter Pan': 2, 'Polo': 1,
                'Buttondown': 1},
}
# Tops without shoulders have a neckline along the top edge or none at all.
_BARE_COLLARS: _W = {'V-neck': 2, 'Round': 1, 'Volant': 1.5}
_FEMALE_ONLY = ('Spaghetti', 'Strapless', 'Peter Pan', 'Volant')
_FASTENINGS: dict[str, _W] = {
    'Coat': {'Button': 6, 'Zip': 3, 'Belt': 3, 'Others': 4, 'Covered': 2, 'Hook': 1.5,
             'Front': 2.5},
    'Jacket': {'Zip': 8, 'Button': 4, 'Front': 3, 'Covered': 1.5, 'Others': 2, 'Hook': 1,
               'Laces': 0.5, 'Belt': 0.5},
    'Suit': {'Button': 10},
    'Shirt': {'Button': 10, 'Covered': 3, 'Back closure': 1.5, 'Hook': 1, 'Laces': 1,
              'No closure': 1, 'Zip': 0.5, 'Others': 0.5},
    'T-shirt': {'No closure': 10, 'Button': 2, 'Laces': 1.5, 'Back closure': 2, 'Zip': 1},
    'Jumper': {'No closure': 8, 'Zip': 3, 'Button': 3, 'Front': 3.5, 'Laces': 0.5, 'Hook': 0.5,
               'Others': 1.5},
    'Dress': {'Back closure': 6, 'No closure': 4, 'Zip': 2, 'Button': 2, 'Belt': 2, 'Laces': 1,
              'Hook': 0.5, 'Front': 1, 'Covered': 0.5, 'Others': 0.5},
    'Jumpsuit': {'Back closure': 3, 'Zip': 3, 'Button': 3, 'Belt': 2, 'No closure': 2,
                 'Front': 0.5, 'Hook': 0.5, 'Laces': 0.5},
    'Swimming': {'No closure': 5, 'Back closure': 3, 'Laces': 1.5, 'Hook': 1, 'Zip': 1},
    'Tracksuit': {'Zip': 10, 'No closure': 2},
    'Pyjamas': {'Button': 6, 'No closure': 4},
    # lower-body garments: waistband and fly
    'Trouser': {'Zip': 4, 'Button': 4, 'Hook': 2, 'Covered': 1, 'Belt': 2, 'Laces': 1,
                'No closure': 2, 'Others': 1},
    'Jean': {'Button': 8, 'Zip': 4, 'Belt': 1},
    'Shorts': {'Button': 3, 'Zip': 3, 'Laces': 3, 'No closure': 2, 'Belt': 1.5, 'Hook': 0.5},
    'Skirt': {'Zip': 3, 'Button': 2, 'Back closure': 3, 'No closure': 2, 'Belt': 1.5, 'Hook': 1,
              'Others': 1.5},
    'Tracksuit Bottoms': {'Laces': 6, 'No closure': 4},
    'trunks': {'Laces': 6, 'No closure': 2},
    'briefs': {'No closure': 1},
    'pyjama bottoms': {'No closure': 5, 'Laces': 3},
}
_COLORS: _W = {'Black': 18, 'White': 8, 'Navy': 9, 'Gray': 7, 'Blue': 6, 'Beige': 5, 'Charcoal': 4,
               'Red': 4, 'Pink': 4, 'Light blue': 4, 'Green': 3, 'Olive': 3, 'Brown': 3,
               'Maroon': 3, 'Indigo': 3, 'Orange': 2.5, 'Yellow': 2.5, 'Purple': 2.5, 'Multi': 6}
_JEAN_COLORS: _W = {'Indigo': 5, 'Blue': 4, 'Light blue': 3, 'Black': 3, 'Gray': 1.5, 'White': 1,
                    'Navy': 1}
_PATTERNS: _W = {'Plain': 45, 'Striped': 8, 'Checked': 6, 'Print': 6, 'Floral': 5, 'Marl': 4,
                 'Polka dot': 3, 'Colourful': 3, 'Animal': 2.5, 'Camouflage': 2.5,
                 'Pinstriped': 2.5, 'Herringbone': 2.5, 'Paisley': 2.5, 'Photo': 2.5,
                 'Colour gradient': 2.5, 'Burnout': 2.5}
_UPPER_FITS: _W = {'Regular': 10, 'Slim': 4, 'Loose': 2, 'Oversize': 1, 'Large': 0.5, 'Small': 0.3,
                   'Tailered': 0.5}
_LOWER_FITS: _W = {'Regular': 4, 'Slim': 4, 'Skinny': 4, 'Straight': 3, 'Loose': 2, 'Bootcut': 1.5,
                   'Flared': 1, 'Tapered': 1.5, 'High waist': 1, 'Low': 0.5, 'Jeggings': 0.7,
                   'Oversize': 0.3}
_SKIRT_FITS: _W = {'Regular': 3, 'Slim': 2, 'High waist': 1, 'Flared': 2}
_UPPER_POCKETS: _W = {'Side': 3, 'Flap': 2, 'Zip': 2, 'Cargo': 1, 'Napoleon': 1.5, 'Sleeve': 0.6,
                      'Belt': 0.4}
_LOWER_POCKETS: _W = {'Side': 5, 'Cargo': 2, 'Zip': 1, 'Flap': 1, 'Belt': 0.4}
# Probability that a garment of a category has (labelled) pockets.
_POCKET_RATE = {'Coat': 0.7, 'Jacket': 0.75, 'Suit': 0.6, 'Tracksuit': 0.5, 'Jumper': 0.15,
                'Shirt': 0.2, 'T-shirt': 0.1, 'Dress': 0.15, 'Jumpsuit': 0.4, 'Trouser': 0.55,
                'Jean': 0.45, 'Shorts': 0.5, 'Skirt': 0.2, 'Tracksuit Bottoms': 0.4,
                'Pyjamas': 0.2, 'Swimming': 0.0}
_FABRICS: dict[str, _W] = {
    'Jean': {'Denim': 1}, 'T-shirt': {'Jersey': 4, 'Mesh Jersey': 1, 'Jersey Lace': 0.5},
    'Jumper': {'Rib': 2, 'Crocheted': 1, 'Fleece': 1, 'Sweat': 1},
    'Jacket': {'Hardshell': 2, 'Softshell': 2, 'Leather': 2, 'Canvas': 1, 'Fleece': 1, 'Denim': 1},
    'Coat': {'Canvas': 1, 'Hardshell': 1, 'Leather': 0.5}, 'Tracksuit': {'Sweat': 2, 'Fleece': 1},
    'Tracksuit Bottoms': {'Sweat': 2, 'Fleece': 1}, 'Swimming': {'Mesh Jersey': 1, 'Jersey': 1},
    'Dress': {'Lace': 2, 'Jersey Lace': 1, 'Mesh': 1, 'Jersey': 2, 'Crocheted': 0.5},
}
_SPORTS: dict[str, _W] = {
    'Swimming': {'Swim': 1}, 'Tracksuit': {'Training': 2, 'Running': 2, 'Football': 1},
    'Tracksuit Bottoms': {'Training': 2, 'Running': 2, 'Yoga': 1, 'Dance': 0.5},
    'Jacket': {'Skii': 2, 'Snowboard': 2, 'Hiking': 2, 'Climbing': 1, 'Urban': 2, 'Golf': 0.5},
    'Coat': {'Urban': 2, 'Hiking': 1}, 'Shorts': {'Basketball': 1, 'Football': 1, 'Running': 1,
                                                 'Tennis': 0.5, 'Handball': 0.5},
    'T-shirt': {'Running': 1, 'Training': 1, 'Tennis': 1, 'Golf': 0.5, 'Basketball': 0.5,
                'Handball': 0.3, 'Yoga': 0.5},
    'Jumpsuit': {'Dance': 1, 'Yoga': 0.5}, 'Dress': {'Tennis': 0.5, 'Dance': 0.5},
}
# Rates at which a drawn value goes unlabelled (-1). The sample's four coats miss fabric and
# neckline, 3 of 4 miss sport and 2 of 4 pocket.
_MISSING = {'collar': 0.15, 'color': 0.03, 'fastening': 0.2, 'pattern': 0.08, 'sleevelen': 0.1,
            'fit': 0.35, 'fabric': 0.85, 'neckline': 0.9, 'sport': 0.75}


def _pick(rng: np.random.Generator, weights: _W, gender: str = 'Female') -> str:
  """A key drawn with probability proportional to its weight (female-only values for women)."""
  items = [(k, w) for k, w in weights.items() if gender == 'Female' or k not in _FEMALE_ONLY]
  cum = np.cumsum([w for _, w in items])
  return items[min(int(np.searchsorted(cum, rng.random() * cum[-1], side='right')),
                   len(items) - 1)][0]


def sample_look(rng: np.random.Generator) -> tuple[Look, dict[str, str | None]]:
  """A garment to draw and its labels (attribute -> value name, None = missing)."""
  gender = 'Female' if rng.random() < 0.55 else 'Male'
  category = _pick(rng, _CATEGORIES[gender])
  silhouette = {'Dress': 'dress', 'Jumpsuit': 'jumpsuit', 'Shorts': 'shorts', 'Skirt': 'skirt',
                'Trouser': 'trousers', 'Jean': 'trousers', 'Tracksuit Bottoms': 'trousers'
                }.get(category, 'top')
  if category == 'Swimming':
    silhouette = 'trunks' if gender == 'Male' else ('swimsuit' if rng.random() < 0.75 else 'briefs')
  elif category == 'Pyjamas' and rng.random() < 0.4:
    silhouette = 'trousers'
  lower = silhouette in LOWER_SILHOUETTES
  color = _pick(rng, _JEAN_COLORS if category == 'Jean' else _COLORS)
  pattern = 'Plain' if category == 'Jean' and rng.random() < 0.8 else _pick(rng, _PATTERNS)
  sleevelen = collar = None
  if lower:
    key = {'trunks': 'trunks', 'briefs': 'briefs'}.get(silhouette, category)
    fastening = _pick(rng, _FASTENINGS['pyjama bottoms' if category == 'Pyjamas' else key])
    fit = _pick(rng, _SKIRT_FITS if category == 'Skirt' else _LOWER_FITS, gender)
    pockets = _LOWER_POCKETS
  else:
    sleevelen = _pick(rng, _SLEEVES[category], gender)
    if sleevelen in ('Spaghetti', 'Strapless'):
      collar = _pick(rng, _BARE_COLLARS) if rng.random() < 0.5 else None
    else:
      collar = _pick(rng, _COLLARS[category], gender)
    fastening = _pick(rng, _FASTENINGS[category])
    fit = _pick(rng, _UPPER_FITS)
    pockets = {k: w for k, w in _UPPER_POCKETS.items()
               if k != 'Sleeve' or sleevelen not in SLEEVELESS_VALUES}
  pocket = _pick(rng, pockets) if rng.random() < _POCKET_RATE[category] else None
  if silhouette in ('swimsuit', 'briefs', 'trunks'):
    pocket = None
  look = Look(gender, category, silhouette, color, pattern, collar, fastening, sleevelen,
              fit if rng.random() >= _MISSING['fit'] else None, pocket)
  labels: dict[str, str | None] = {
      'category': category, 'gender': gender, 'collar': collar, 'color': color,
      'fastening': fastening, 'pattern': pattern, 'sleevelen': sleevelen, 'fit': look.fit,
      'pocket': pocket, 'fabric': _pick(rng, _FABRICS.get(category, {'Jersey': 1, 'Canvas': 1})),
      'neckline': _neckline(rng, collar, gender),
      'sport': _pick(rng, _SPORTS.get(category, {'Urban': 1})),
  }
  for name, rate in _MISSING.items():
    if name != 'fit' and rng.random() < rate:
      labels[name] = None
  if category == 'Jean' and labels['fabric'] is None and rng.random() < 0.5:
    labels['fabric'] = 'Denim'
  return look, labels


def _neckline(rng: np.random.Generator, collar: str | None, gender: str) -> str | None:
  """Neckline, mostly unlabelled; consistent with round and V collars when given."""
  if collar == 'Round':
    return _pick(rng, {'Round': 4, 'Low round': 1, 'Boat': 1, 'Square': 0.5})
  if collar == 'V-neck':
    return _pick(rng, {'V-neck': 4, 'Low v-neck': 1, 'Cache-coeur': 0.5, 'Envelope': 0.3})
  if gender == 'Female':
    return _pick(rng, {'Off-the-shoulder': 1, 'Backless': 1, 'Henley': 1, 'Boat': 0.5})
  return 'Henley' if collar in (None, 'Polo') else None


def label_indices(labels: dict[str, str | None]) -> np.ndarray:
  """(12,) int64 value indices in `ATTRIBUTE_NAMES` order, -1 where missing."""
  return np.array([MISSING if labels[n] is None else attribute(n).index(labels[n])
                   for n in ATTRIBUTE_NAMES], np.int64)


def image_path(index: int, labels: dict[str, str | None], rng: np.random.Generator) -> str:
  """`<Gender>/<k>_<Folder>/<7-digit product id>_<n>.jpg`; the product id is index + 1."""
  gender = labels['gender']
  folder = shopping100k.category_folder(gender, attribute('category').index(labels['category']))
  return f'{gender}/{folder}/{index + 1:07d}_{int(rng.integers(1, 16))}.jpg'


def _render_chunk(args: tuple[str, int, int, int, Sequence[int]]) -> list[tuple]:
  """Renders and writes the images of one chunk; returns (path, labels, Parts) per image."""
  out_dir, seed, width, height, indices = args
  rows = []
  for index in indices:
    rng = np.random.default_rng([seed, index])
    look, labels = sample_look(rng)
    path = image_path(index, labels, rng)
    img, parts = render(look, width, height, rng)
    file = shopping100k.image_file(out_dir, path)
    os.makedirs(os.path.dirname(file), exist_ok=True)
    ok, buf = cv2.imencode('.jpg', img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
      raise RuntimeError(f'JPEG encoding failed for {file}')
    buf.tofile(file)
    rows.append((path, label_indices(labels), parts))
  return rows


def _single_thread() -> None:
  cv2.setNumThreads(1)  # one process per core: OpenCV's own threads would oversubscribe


def generate(out_dir: str, num_images: int, seed: int = 0, width: int = 381, height: int = 550,
             workers: int = 1) -> None:
  """Writes `num_images` images, the 12 attribute files, `parts_truth.csv` and the marker."""
  if num_images < 1 or num_images >= 10 ** 7:
    raise ValueError(f'num_images must be in 1..9999999 (7-digit product ids), got {num_images}')
  if width < 64 or height < 64:
    raise ValueError(f'image size {width}x{height} is too small (at least 64x64)')
  if workers < 1:
    raise ValueError(f'workers must be >= 1, got {workers}')
  marker = os.path.join(out_dir, MARKER_FILE)
  if os.path.exists(marker):
    os.remove(marker)  # the directory is inconsistent until the new marker is written
  os.makedirs(out_dir, exist_ok=True)
  tasks = [(out_dir, seed, width, height, range(a, min(a + _CHUNK, num_images)))
           for a in range(0, num_images, _CHUNK)]
  if workers == 1:
    chunks: Iterable[list[tuple]] = map(_render_chunk, tasks)
    rows = [row for chunk in chunks for row in chunk]
  else:
    with multiprocessing.get_context('spawn').Pool(workers, initializer=_single_thread) as pool:
      rows = [row for chunk in pool.imap(_render_chunk, tasks) for row in chunk]
  paths = [r[0] for r in rows]
  shopping100k.write_attributes(out_dir, paths, np.stack([r[1] for r in rows]))
  write_parts_csv(os.path.join(out_dir, PARTS_FILE), [(r[0], r[2]) for r in rows])
  with open(marker, 'w', encoding='utf-8') as f:
    json.dump(_params(num_images, seed, width, height), f, indent=1)


def _params(num_images: int, seed: int, width: int, height: int) -> dict[str, int]:
  return {'version': VERSION, 'num_images': num_images, 'seed': seed, 'width': width,
          'height': height}


def ensure_dataset(out_dir: str, num_images: int, seed: int = 0, width: int = 381,
                   height: int = 550, workers: int = 1) -> str:
  """Generates the dataset into `out_dir` unless its marker shows it already exists; returns it.

  A marker with other parameters is an error naming both, rather than silently mixing datasets.
  """
  marker = os.path.join(out_dir, MARKER_FILE)
  wanted = _params(num_images, seed, width, height)
  if os.path.exists(marker):
    with open(marker, encoding='utf-8') as f:
      found = json.load(f)
    if found != wanted:
      raise ValueError(f'{marker} describes a synthetic dataset {found}, but {wanted} was asked '
                       'for; delete the directory or choose another one')
    return out_dir
  generate(out_dir, num_images, seed, width, height, workers)
  return out_dir


_SHEET_ATTRS = ('collar', 'color', 'fastening', 'pattern', 'sleevelen')
_PART_COLORS = {'collar': (220, 0, 0), 'torso': (0, 160, 0), 'chest': (0, 0, 230),
                'left_sleeve': (230, 130, 0), 'right_sleeve': (200, 0, 200),
                'fastening': (0, 170, 200)}


def render_contact_sheet(data_dir: str, out_png: str, num: int = 24, columns: int = 6,
                         scale: float = 0.5, parts: bool = False, start: int = 0) -> None:
  """A PNG grid of images `start..start+num` with category, gender and the five special labels
  written under each (`-` = missing), to check by eye that every attribute is visible; with
  `parts` the true part boxes are drawn too."""
  table = shopping100k.read_attributes(data_dir, check_images=False).iloc[start:start + num]
  if table.empty:
    raise ValueError(f'{data_dir}: no images in rows {start}..{start + num - 1}')
  truth = read_parts_csv(os.path.join(data_dir, PARTS_FILE)) if parts else {}
  tiles = []
  for _, row in table.iterrows():
    file = shopping100k.image_file(data_dir, row['path'])
    img = cv2.imread(file)
    if img is None:
      raise FileNotFoundError(f'cannot read image {file}')
    img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = img.shape[:2]
    if row['path'] in truth:
      for name, (y1, x1, y2, x2) in truth[row['path']].boxes.items():
        cv2.rectangle(img, (int(x1 * w), int(y1 * h)), (int(x2 * w), int(y2 * h)),
                      _PART_COLORS[name][::-1], 1)
    lines = [f"{_value('category', row)} / {_value('gender', row)}"]
    lines += [f'{a[:6]}: {_value(a, row)}' for a in _SHEET_ATTRS]
    text = np.full((16 * len(lines) + 6, w, 3), 255, np.uint8)
    for k, line in enumerate(lines):
      cv2.putText(text, line, (3, 14 + 16 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1,
                  cv2.LINE_AA)
    tiles.append(np.vstack([img, text]))
  blank = np.full_like(tiles[0], 255)
  tiles += [blank] * (-len(tiles) % columns)
  rows = [np.hstack(tiles[r:r + columns]) for r in range(0, len(tiles), columns)]
  os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
  if not cv2.imwrite(out_png, np.vstack(rows)):
    raise OSError(f'cannot write contact sheet {out_png}')


def _value(name: str, row) -> str:
  index = int(row[name])
  return '-' if index == MISSING else attribute(name).value(index)


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', required=True, help='dataset directory to write')
  parser.add_argument('--num_images', type=int, required=True)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--workers', type=int, default=1)
  parser.add_argument('--width', type=int, default=381)
  parser.add_argument('--height', type=int, default=550)
  parser.add_argument('--contact_sheet', help='also write a contact sheet PNG of the first images')
  parser.add_argument('--sheet_parts', action='store_true',
                      help='draw the true part boxes on the contact sheet')
  args = parser.parse_args(argv)
  generate(args.out, args.num_images, args.seed, args.width, args.height, args.workers)
  if args.contact_sheet:
    render_contact_sheet(args.out, args.contact_sheet, parts=args.sheet_parts)
  print(f'wrote {args.num_images} images to {args.out}')


if __name__ == '__main__':
  main()
