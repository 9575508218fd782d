"""The labels a shop writes for the garment an image shows (paper §3).

Shopping100k's labels come from the shops' meta-data keywords, not from the images: a keyword
sometimes names a neighbour of the shown value (navy for indigo, kent for cutaway), and many labels
are missing, most often fabric, neckline and sport, seldom the special attributes. The image still
shows its own value: a missing label still has a drawn value.
"""
from __future__ import annotations

import numpy as np

from tf_partfash.attributes import SPECIAL_ATTRIBUTES
from tf_partfash.synthetic.garments import Look

# Values only women's garments have: the catalogue draws them for women only, and no keyword names
# one for a man's garment.
FEMALE_ONLY = ('Spaghetti', 'Strapless', 'Peter Pan', 'Volant')

# Shop labels come from meta-data keywords (§3), which confuse neighbouring values: per image and
# special attribute, the label names one of these neighbours of the shown value at this rate
# (the image still shows its own value).
LABEL_NOISE = {'collar': 0.06, 'color': 0.08, 'fastening': 0.06, 'pattern': 0.05, 'sleevelen': 0.05}
CONFUSABLE: dict[str, dict[str, tuple[str, ...]]] = {
    'color': {'Navy': ('Indigo', 'Black'), 'Indigo': ('Navy', 'Blue'),
              'Black': ('Navy', 'Charcoal'), 'Charcoal': ('Gray', 'Black'), 'Gray': ('Charcoal',),
              'Maroon': ('Red', 'Brown'), 'Red': ('Maroon', 'Orange'),
              'Blue': ('Light blue', 'Indigo'), 'Light blue': ('Blue',),
              'Beige': ('White', 'Brown'), 'White': ('Beige',),
              'Olive': ('Green', 'Brown'), 'Green': ('Olive',), 'Brown': ('Maroon', 'Beige'),
              'Orange': ('Red', 'Yellow'), 'Yellow': ('Orange',), 'Pink': ('Red', 'Purple'),
              'Purple': ('Pink', 'Maroon'), 'Multi': ('Black', 'White')},
    'collar': {'Kent': ('Cutaway', 'Buttondown', 'Shirt'), 'Cutaway': ('Kent',),
               'Buttondown': ('Kent',), 'Shirt': ('Kent', 'Turndown'), 'Turndown': ('Shirt',),
               'High': ('Chin', 'Mandarin'), 'Chin': ('High',), 'Mandarin': ('High',),
               'Round': ('V-neck',), 'V-neck': ('Round',), 'Lapel': ('Shawl',),
               'Shawl': ('Lapel',), 'Hood': ('Lined',), 'Lined': ('Hood',), 'Polo': ('Round',),
               'Peter Pan': ('Round',), 'Volant': ('Round',)},
    'fastening': {'Covered': ('Button',), 'Button': ('Covered',), 'Front': ('Zip', 'Others'),
                  'Zip': ('Front',), 'Hook': ('Others',), 'Others': ('Hook',),
                  'Back closure': ('No closure',), 'No closure': ('Back closure',),
                  'Belt': ('Others',), 'Laces': ('Others',)},
    'pattern': {'Striped': ('Pinstriped',), 'Pinstriped': ('Striped',),
                'Print': ('Photo', 'Colourful'), 'Photo': ('Print',), 'Colourful': ('Print',),
                'Marl': ('Plain', 'Herringbone'), 'Herringbone': ('Marl',), 'Plain': ('Marl',),
                'Checked': ('Herringbone',), 'Floral': ('Print',), 'Paisley': ('Floral',),
                'Polka dot': ('Print',), 'Animal': ('Print',), 'Camouflage': ('Print',),
                'Colour gradient': ('Colourful',), 'Burnout': ('Plain',)},
    'sleevelen': {'Long': ('Extra Long',), 'Extra Long': ('Long',),
                  'Short': ('Extra Short', 'Elbow'), 'Extra Short': ('Short',),
                  'Elbow': ('3/4', 'Short'), '3/4': ('Elbow', 'Long'),
                  'Sleeveless': ('Spaghetti',), 'Spaghetti': ('Sleeveless', 'Strapless'),
                  'Strapless': ('Spaghetti',)},
}
# Per-image rates at which a drawn value goes unlabelled (-1). The sample's four coats miss fabric
# and neckline, 3 of 4 miss sport and 2 of 4 pocket. The special attributes stay mostly labelled,
# since §7 only scores queries labelled on all five.
_MISSING = {'collar': 0.015, 'color': 0.01, 'fastening': 0.02, 'pattern': 0.01, 'sleevelen': 0.01,
            'fabric': 0.85, 'neckline': 0.9, 'sport': 0.75}


def label(look: Look, fabric: str, sport: str, neckline: str | None,
          rng: np.random.Generator) -> dict[str, str | None]:
  """The labels of an image showing `look` (its style's `fabric`, `sport` and `neckline`) by
  attribute name, None where missing."""
  labels: dict[str, str | None] = {
      'category': look.category, 'gender': look.gender, **_keywords(look, rng), 'fit': look.fit,
      'pocket': look.pocket, 'fabric': fabric, 'neckline': neckline, 'sport': sport}
  _leave_out(labels, look.category, rng)
  return labels


def _keywords(look: Look, rng: np.random.Generator) -> dict[str, str | None]:
  """The special attributes' labels: the shown values, each at its `LABEL_NOISE` rate replaced by
  one of its `CONFUSABLE` neighbours that a garment of this gender can have."""
  labelled = {name: getattr(look, name) for name in SPECIAL_ATTRIBUTES}
  for name, rate in LABEL_NOISE.items():
    neighbours = [v for v in CONFUSABLE[name].get(getattr(look, name), ())
                  if look.gender == 'Female' or v not in FEMALE_ONLY]
    if neighbours and rng.random() < rate:
      labelled[name] = neighbours[int(rng.integers(len(neighbours)))]
  return labelled


def _leave_out(labels: dict[str, str | None], category: str, rng: np.random.Generator) -> None:
  """Sets labels to None at their `_MISSING` rates; half the jeans that lost their fabric get it
  back ('Denim')."""
  for name, rate in _MISSING.items():
    if rng.random() < rate:
      labels[name] = None
  if category == 'Jean' and labels['fabric'] is None and rng.random() < 0.5:
    labels['fabric'] = 'Denim'
