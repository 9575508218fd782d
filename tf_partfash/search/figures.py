"""Pictures of a search session like the paper's Fig. 7 (manipulation) and Fig. 8 (feedback).

Fig. 7 (§7.3): the query, the manipulation text, then the top-k results left to right, framed
green when the result has every demanded attribute. Fig. 8 (§7.4): the same row before feedback
with the picked images framed blue, and below it the results of the personalised search.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

from tf_partfash.errors import UserError

TILE_WIDTH, IMAGE_HEIGHT = 150, 200
CAPTION_LINES, LINE_HEIGHT = 2, 15
TITLE_HEIGHT, MARGIN, FRAME = 22, 8, 5
FRAMES = {'green': (40, 170, 60), 'blue': (40, 90, 220)}
FORMATS = ('.png', '.jpg', '.jpeg')  # what `save_figure` writes, by the file's extension


@dataclasses.dataclass(frozen=True)
class Tile:
  """One cell: an image file (or, with `file` None, `text` on a plain panel), a caption below,
  and an optional frame colour (`green`: demanded attributes all present, `blue`: picked)."""
  file: str | None
  caption: str = ''
  frame: str | None = None
  text: str = ''


def _font(size: int) -> ImageFont.ImageFont:
  return ImageFont.load_default(size=size)


def _fit(text: str, font: ImageFont.ImageFont, width: int) -> str:
  """`text` cut (with '...') to fit `width` pixels."""
  if font.getlength(text) <= width:
    return text
  while text and font.getlength(text + '...') > width:
    text = text[:-1]
  return text + '...'


def _image(file: str) -> Image.Image:
  try:
    with Image.open(file) as im:
      im = im.convert('RGB')
  except (OSError, ValueError) as e:
    raise UserError(f'cannot read image {file} for the picture: {e}') from None
  im.thumbnail((TILE_WIDTH - 2 * FRAME, IMAGE_HEIGHT - 2 * FRAME))
  return im


def _draw_tile(canvas: Image.Image, tile: Tile, x: int, y: int) -> None:
  draw = ImageDraw.Draw(canvas)
  font = _font(12)
  if tile.file is None:
    draw.rectangle((x + FRAME, y + FRAME, x + TILE_WIDTH - FRAME, y + IMAGE_HEIGHT - FRAME),
                   fill=(240, 240, 240))
    lines = [_fit(t, font, TILE_WIDTH - 4 * FRAME) for t in tile.text.splitlines()]
    top = y + (IMAGE_HEIGHT - LINE_HEIGHT * len(lines)) // 2
    for k, line in enumerate(lines):
      draw.text((x + 2 * FRAME, top + k * LINE_HEIGHT), line, fill=(0, 0, 0), font=font)
  else:
    im = _image(tile.file)
    canvas.paste(im, (x + (TILE_WIDTH - im.width) // 2, y + (IMAGE_HEIGHT - im.height) // 2))
  if tile.frame is not None:
    if tile.frame not in FRAMES:
      raise ValueError(f'unknown frame colour {tile.frame!r}; valid: {", ".join(FRAMES)}')
    draw.rectangle((x, y, x + TILE_WIDTH - 1, y + IMAGE_HEIGHT - 1), outline=FRAMES[tile.frame],
                   width=FRAME)
  for k, line in enumerate(tile.caption.splitlines()[:CAPTION_LINES]):
    draw.text((x + 2, y + IMAGE_HEIGHT + 2 + k * LINE_HEIGHT), _fit(line, font, TILE_WIDTH - 4),
              fill=(0, 0, 0), font=font)


def render_rows(rows: Sequence[tuple[str, Sequence[Tile]]]) -> Image.Image:
  """A picture of titled rows of tiles, each row left to right."""
  columns = max(len(tiles) for _, tiles in rows)
  row_height = TITLE_HEIGHT + IMAGE_HEIGHT + CAPTION_LINES * LINE_HEIGHT + MARGIN
  canvas = Image.new('RGB', (2 * MARGIN + columns * (TILE_WIDTH + MARGIN),
                             MARGIN + len(rows) * row_height), 'white')
  draw = ImageDraw.Draw(canvas)
  for r, (title, tiles) in enumerate(rows):
    y = MARGIN + r * row_height
    draw.text((MARGIN, y + 2), _fit(title, _font(14), canvas.width - 2 * MARGIN),
              fill=(0, 0, 0), font=_font(14))
    for c, tile in enumerate(tiles):
      _draw_tile(canvas, tile, MARGIN + c * (TILE_WIDTH + MARGIN), y + TITLE_HEIGHT)
  return canvas


def manipulation_figure(query: Tile, manipulation: str, results: Sequence[Tile],
                        title: str = 'query, manipulation, top results') -> Image.Image:
  """Fig. 7: query, manipulation text (one change per line), results ranked left to right."""
  return render_rows([(title, [query, Tile(None, 'manipulation', text=manipulation), *results])])


def feedback_figure(query: Tile, manipulation: str, before: Sequence[Tile], new_query: Tile,
                    feedback: str, after: Sequence[Tile]) -> Image.Image:
  """Fig. 8: the results shown, picked ones framed blue; then the search after feedback, from
  `new_query` (the query, or the one picked image that replaces it) with `feedback` text."""
  return render_rows([
      ('retrieved images (picked: blue)', [query, Tile(None, 'manipulation', text=manipulation),
                                           *before]),
      ('after feedback (Eq. 5-6)', [new_query, Tile(None, 'feedback', text=feedback), *after])])


def save_figure(image: Image.Image, path: str) -> None:
  """Writes a picture (format from the extension, e.g. .png, .jpg)."""
  if os.path.dirname(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
  image.save(path)
