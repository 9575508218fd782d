"""The Shopping100k attribute schema: 12 attributes, 151 values, general vs special (paper §3, §4.1).

Vocabularies and their index order are those of the distributed attribute files
(`shared/shopping100k/README.md`); the paper's Table 1 predates the release and differs slightly.
Every 151-dimensional encoding concatenates the one-hot blocks in the alphabetical attribute order
of `ATTRIBUTES`; a missing label (-1) is an all-zero block.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from tf_partfash.errors import UserError

MISSING = -1


@dataclasses.dataclass(frozen=True)
class Attribute:
  """One attribute: its name, value vocabulary (index order of the files) and role in the network."""
  name: str
  values: tuple[str, ...]
  special: bool
  # Parts (see `tf_partfash.parts.PART_NAMES`) a special attribute's branch pools from (§4.3, §6).
  parts: tuple[str, ...] = ()

  @property
  def num_values(self) -> int:
    return len(self.values)

  def index(self, value: str) -> int:
    """The index of `value`, matched case-insensitively; an unknown value lists the valid ones."""
    key = _normalise(value)
    for i, v in enumerate(self.values):
      if _normalise(v) == key:
        return i
    raise UserError(f'unknown value {value!r} for attribute {self.name!r}; valid values: '
                    + ', '.join(self.values))

  def value(self, index: int) -> str:
    if not 0 <= index < len(self.values):
      raise UserError(f'index {index} out of range for attribute {self.name!r} '
                      f'(0..{len(self.values) - 1})')
    return self.values[index]


def _normalise(name: str) -> str:
  return ' '.join(name.strip().lower().replace('_', ' ').split())


ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute('category', ('Coat', 'Jacket', 'Suit', 'Shirt', 'T-shirt', 'Jumper', 'Shorts',
                           'Trouser', 'Jean', 'Swimming', 'Jumpsuit', 'Pyjamas',
                           'Tracksuit Bottoms', 'Tracksuit', 'Skirt', 'Dress'), special=False),
    Attribute('collar', ('Buttondown', 'Cutaway', 'High', 'Hood', 'Kent', 'Lapel', 'Lined',
                         'Mandarin', 'Polo', 'Round', 'Shawl', 'Turndown', 'V-neck', 'Peter Pan',
                         'Volant', 'Shirt', 'Chin'), special=True, parts=('collar',)),
    Attribute('color', ('Maroon', 'Black', 'White', 'Charcoal', 'Indigo', 'Navy', 'Pink',
                        'Light blue', 'Blue', 'Beige', 'Orange', 'Yellow', 'Red', 'Purple', 'Brown',
                        'Olive', 'Green', 'Gray', 'Multi'), special=True, parts=('chest',)),
    Attribute('fabric', ('Canvas', 'Crocheted', 'Denim', 'Fleece', 'Hardshell', 'Jersey',
                         'Jersey Lace', 'Lace', 'Mesh', 'Mesh Jersey', 'Rib', 'Softshell', 'Sweat',
                         'Leather'), special=False),
    Attribute('fastening', ('Zip', 'Back closure', 'Belt', 'Button', 'Covered', 'Hook', 'Laces',
                            'No closure', 'Front', 'Others'), special=True, parts=('fastening',)),
    Attribute('fit', ('Bootcut', 'Flared', 'High waist', 'Jeggings', 'Large', 'Loose', 'Low',
                      'Oversize', 'Regular', 'Skinny', 'Slim', 'Small', 'Straight', 'Tailered',
                      'Tapered'), special=False),
    Attribute('gender', ('Male', 'Female'), special=False),
    Attribute('neckline', ('Boat', 'Backless', 'Cache-coeur', 'Henley', 'Low v-neck', 'Low round',
                           'Off-the-shoulder', 'Round', 'Square', 'V-neck', 'Envelope'),
              special=False),
    Attribute('pattern', ('Animal', 'Burnout', 'Camouflage', 'Checked', 'Colour gradient',
                          'Colourful', 'Floral', 'Herringbone', 'Marl', 'Paisley', 'Photo',
                          'Pinstriped', 'Plain', 'Polka dot', 'Print', 'Striped'), special=True,
              parts=('chest',)),
    Attribute('pocket', ('Side', 'Cargo', 'Flap', 'Napoleon', 'Belt', 'Sleeve', 'Zip'),
              special=False),
    Attribute('sleevelen', ('3/4', 'Spaghetti', 'Sleeveless', 'Elbow', 'Extra Long', 'Extra Short',
                            'Long', 'Short', 'Strapless'), special=True,
              parts=('left_sleeve', 'right_sleeve')),
    Attribute('sport', ('Skii', 'Basketball', 'Football', 'Golf', 'Handball', 'Hiking', 'Climbing',
                        'Running', 'Snowboard', 'Swim', 'Tennis', 'Training', 'Yoga', 'Urban',
                        'Dance'), special=False),
)

ATTRIBUTE_NAMES: tuple[str, ...] = tuple(a.name for a in ATTRIBUTES)
SPECIAL_ATTRIBUTES: tuple[str, ...] = tuple(a.name for a in ATTRIBUTES if a.special)
GENERAL_ATTRIBUTES: tuple[str, ...] = tuple(a.name for a in ATTRIBUTES if not a.special)
# Columns of the special and general attributes in an (N, 12) label array.
SPECIAL_COLUMNS: tuple[int, ...] = tuple(ATTRIBUTE_NAMES.index(n) for n in SPECIAL_ATTRIBUTES)
GENERAL_COLUMNS: tuple[int, ...] = tuple(ATTRIBUTE_NAMES.index(n) for n in GENERAL_ATTRIBUTES)
# The S + 1 signature vectors of Eq. 3-6, in the network's output order: v = 0 is the general one.
SIGNATURE_NAMES: tuple[str, ...] = ('general',) + SPECIAL_ATTRIBUTES
NUM_VALUES: int = sum(a.num_values for a in ATTRIBUTES)
# Start of each attribute's one-hot block in a 151-dim encoding.
OFFSETS: dict[str, int] = dict(zip(
    ATTRIBUTE_NAMES, np.cumsum([0] + [a.num_values for a in ATTRIBUTES[:-1]]).tolist()))
# The same for the special attributes alone: the 71 values a search can ask for (Classic's
# attribute vector, AMNet's memory rows).
NUM_SPECIAL_VALUES: int = sum(a.num_values for a in ATTRIBUTES if a.special)
SPECIAL_OFFSETS: tuple[int, ...] = tuple(np.cumsum(
    [0] + [a.num_values for a in ATTRIBUTES if a.special][:-1]).tolist())

# Categories that settle the "Extract Parts?" case as `lower` (§4.3). Swimming and Pyjamas can be
# either a top, a bottom or both: for them the image decides.
LOWER_BODY_CATEGORIES: tuple[str, ...] = ('Shorts', 'Trouser', 'Jean', 'Tracksuit Bottoms', 'Skirt')
# Sleeve-length values with no sleeve to pool from: the `sleeveless` case.
SLEEVELESS_VALUES: tuple[str, ...] = ('Spaghetti', 'Sleeveless', 'Strapless')

_BY_NAME = {a.name: a for a in ATTRIBUTES}


def attribute(name: str) -> Attribute:
  """The attribute called `name` (case-insensitive); an unknown name lists the valid ones."""
  found = _BY_NAME.get(_normalise(name).replace(' ', ''))
  if found is None:
    raise UserError(f'unknown attribute {name!r}; valid attributes: ' + ', '.join(ATTRIBUTE_NAMES))
  return found


def special_attribute(name: str) -> Attribute:
  """Like `attribute`, but only the five special (manipulable) attributes are accepted."""
  found = attribute(name)
  if not found.special:
    raise UserError(f'{found.name!r} is a general attribute and cannot be manipulated; special '
                    'attributes: ' + ', '.join(SPECIAL_ATTRIBUTES))
  return found


def signature_index(name: str) -> int:
  """Index v of a special attribute's signature in `SIGNATURE_NAMES` (v = 0: the general one)."""
  return SIGNATURE_NAMES.index(special_attribute(name).name)


def encode(labels: np.ndarray) -> np.ndarray:
  """(N, 12) label indices (-1 = missing) -> (N, 151) 0/1 encoding, missing = all-zero block."""
  labels = np.asarray(labels)
  if labels.ndim != 2 or labels.shape[1] != len(ATTRIBUTES):
    raise ValueError(f'expected labels of shape (N, {len(ATTRIBUTES)}), got {labels.shape}')
  out = np.zeros((labels.shape[0], NUM_VALUES), np.uint8)
  for j, attr in enumerate(ATTRIBUTES):
    col = labels[:, j]
    bad = (col < MISSING) | (col >= attr.num_values)
    if bad.any():
      i = int(np.argmax(bad))
      raise UserError(f'row {i}: label {int(col[i])} out of range for {attr.name!r} '
                      f'(-1..{attr.num_values - 1})')
    rows = np.nonzero(col >= 0)[0]
    out[rows, OFFSETS[attr.name] + col[rows]] = 1
  return out


def decode(encoded: np.ndarray) -> np.ndarray:
  """(N, 151) 0/1 encoding -> (N, 12) label indices; an all-zero block decodes to -1.

  A block with more than one 1 is an error: each attribute has at most one value per image.
  """
  encoded = np.asarray(encoded)
  if encoded.ndim != 2 or encoded.shape[1] != NUM_VALUES:
    raise ValueError(f'expected an encoding of shape (N, {NUM_VALUES}), got {encoded.shape}')
  out = np.full((encoded.shape[0], len(ATTRIBUTES)), MISSING, np.int64)
  for j, attr in enumerate(ATTRIBUTES):
    block = encoded[:, OFFSETS[attr.name]:OFFSETS[attr.name] + attr.num_values]
    counts = (block != 0).sum(axis=1)
    if (counts > 1).any():
      i = int(np.argmax(counts > 1))
      raise UserError(f'row {i}: block {attr.name!r} has {int(counts[i])} values set, at most 1 '
                      'allowed')
    has = counts == 1
    out[has, j] = np.argmax(block[has] != 0, axis=1)
  return out


def describe(labels: Sequence[int], names: Sequence[str] = ATTRIBUTE_NAMES) -> dict[str, str]:
  """Human-readable {attribute: value} for one image's label indices, missing ones omitted."""
  return {n: attribute(n).value(int(i)) for n, i in zip(names, labels) if int(i) != MISSING}
