"""The search a web service answers (§4.6, §5; SK Planet's daemon, paper 004 §4): one catalogue
opened once, requests checked field by field, uploads decoded safely. No web framework here:
`serving.app` maps HTTP onto `SearchService`.
"""
from __future__ import annotations

import dataclasses
import functools
import io
import os
import tempfile
import threading
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import ExifTags, Image, ImageOps

from tf_partfash.attributes import (ATTRIBUTE_NAMES, ATTRIBUTES, MISSING, SPECIAL_ATTRIBUTES,
                                    attribute)
from tf_partfash.errors import UserError
from tf_partfash.parts.dataset import MIN_IMAGE_SIDE, on_white
from tf_partfash.search import retrieval
from tf_partfash.search.session import Catalogue, Query, answer, image_query
from tf_partfash.serving.batching import BatchingSearcher

REQUEST_FIELDS = ('query', 'set', 'feedback', 'top_k', 'category')
MAX_THUMBNAIL = 1024


class RequestError(UserError):
  """A request the service refuses, with its HTTP status (400 unless said)."""

  def __init__(self, message: str, status: int = 400):
    super().__init__(message)
    self.status = status


@dataclasses.dataclass(frozen=True)
class Limits:
  upload_bytes: int = 10 * 2**20     # a request body (--max_upload_mb)
  image_pixels: int = 40_000_000     # decoded pixels of an upload: a decompression bomb is refused


@dataclasses.dataclass(frozen=True)
class SearchSpec:
  """One checked search request."""
  query: str | None                  # a gallery ID; None with an uploaded photo
  changes: dict[str, int]
  feedback: tuple[str, ...] = ()
  top_k: int = 10
  category: int | None = None


def parse_request(body: Any, uploaded: bool,
                  manipulable: Sequence[str] = SPECIAL_ATTRIBUTES) -> SearchSpec:
  """The request's JSON object, checked: every error names the field and the value; `set` may
  change the attributes of `manipulable` (the served method's, `RunConfig.manipulable`)."""
  if not isinstance(body, dict):
    raise RequestError(f'the request must be a JSON object, got {type(body).__name__}')
  unknown = sorted(set(body) - set(REQUEST_FIELDS))
  if unknown:
    raise RequestError(f'unknown field {unknown[0]!r}; valid fields: {", ".join(REQUEST_FIELDS)}')
  query = body.get('query')
  if uploaded and query is not None:
    raise RequestError('give either "query" (a gallery ID) or an uploaded image, not both')
  if not uploaded:
    if query is None:
      raise RequestError('"query" is missing: give a gallery ID (a path under Images/ or a row '
                         'number), or upload an image')
    if isinstance(query, bool) or not isinstance(query, (str, int)):
      raise RequestError(f'"query" must be a gallery ID (a string or a row number), got {query!r}')
  wanted = body.get('set') or {}
  if not isinstance(wanted, dict) or not all(isinstance(v, str) for v in wanted.values()):
    raise RequestError(f'"set" must map attribute names to value names, got {wanted!r}')
  try:
    changes = retrieval.parse_changes([f'{k}={v}' for k, v in wanted.items()], manipulable)
  except UserError as e:
    raise RequestError(f'"set": {e}') from None
  feedback = body.get('feedback') or []
  if not isinstance(feedback, list) or not all(
      isinstance(f, (str, int)) and not isinstance(f, bool) for f in feedback):
    raise RequestError(f'"feedback" must be a list of gallery IDs, got {feedback!r}')
  top_k = body.get('top_k', 10)
  if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
    raise RequestError(f'"top_k" must be a whole number of at least 1, got {top_k!r}')
  category = body.get('category')
  if category is not None:
    if not isinstance(category, str):
      raise RequestError(f'"category" must be a category name, got {category!r}')
    try:
      category = attribute('category').index(category)
    except UserError as e:
      raise RequestError(f'"category": {e}') from None
  return SearchSpec(None if query is None else str(query), changes,
                    tuple(str(f) for f in feedback), top_k, category)


def parse_box(text: str, size: tuple[int, int]) -> tuple[int, int, int, int]:
  """'x0,y0,x1,y1' in the photo's pixels -> a box inside the photo, not empty."""
  try:
    box = tuple(int(round(float(v))) for v in text.split(','))
  except ValueError:
    box = ()
  if len(box) != 4:
    raise RequestError(f'"box" must be x0,y0,x1,y1 in the photo\'s pixels, got {text!r}')
  x0, y0, x1, y1 = box
  width, height = size
  if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
    raise RequestError(f'"box" {text!r} is empty or outside the photo of {width}x{height} '
                       'pixels (0 <= x0 < x1 <= width, 0 <= y0 < y1 <= height)')
  return box


@dataclasses.dataclass(frozen=True)
class Upload:
  """A checked photo: its pixels as searched, and its own bytes when they are those pixels (no
  crop, no EXIF turn), so it is searched exactly as search.py searches that file."""
  image: Image.Image
  original: bytes | None = None
  suffix: str = '.png'


def decode_upload(data: bytes, name: str, limits: Limits, box: str | None) -> Upload:
  """The uploaded photo (turned as its EXIF says, as a browser shows it), cropped to `box`."""
  if len(data) > limits.upload_bytes:
    raise RequestError(f'"image" {name!r} is {len(data)} bytes, over the limit of '
                       f'{limits.upload_bytes} (--max_upload_mb)', 413)
  try:
    opened = Image.open(io.BytesIO(data))
    if opened.width * opened.height > limits.image_pixels:  # before decoding a single pixel
      raise RequestError(f'"image" {name!r} is {opened.width}x{opened.height} pixels, over the '
                         f'limit of {limits.image_pixels} decoded pixels', 413)
    turned = opened.getexif().get(ExifTags.Base.Orientation, 1) != 1
    image = ImageOps.exif_transpose(opened) if turned else opened
    image.load()
  except RequestError:
    raise
  except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as e:
    raise RequestError(f'"image" {name!r} is not a decodable image ({type(e).__name__}: {e})'
                       ) from None
  if box:
    image = image.crop(parse_box(box, image.size))
  if min(image.size) < MIN_IMAGE_SIDE:
    raise RequestError(f'"image" {name!r}' + (' cropped to "box"' if box else '')
                       + f' is {image.width}x{image.height} pixels; at least '
                       f'{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} is needed')
  unchanged = not turned and not box and opened.format in ('JPEG', 'PNG')
  return Upload(image, data if unchanged else None,
                {'JPEG': '.jpg', 'PNG': '.png'}.get(opened.format, '.png'))


def _values(row: np.ndarray) -> dict[str, str]:
  return {a: attribute(a).values[int(row[ATTRIBUTE_NAMES.index(a)])] for a in SPECIAL_ATTRIBUTES
          if row[ATTRIBUTE_NAMES.index(a)] != MISSING}


class SearchService:
  """A catalogue answering searches from many threads: the model (an uploaded photo's features)
  is called by one thread at a time; searches over the held index run concurrently."""

  def __init__(self, catalogue: Catalogue, limits: Limits = Limits()):
    # Concurrent searches share one pass over the gallery (`batching`).
    self.catalogue = dataclasses.replace(catalogue,
                                         searcher=BatchingSearcher(catalogue.searcher))
    self.limits = limits
    self._model_lock = threading.Lock()
    gallery = catalogue.gallery
    self._category = gallery.predicted('category')
    self._thumbnail = functools.lru_cache(maxsize=4096)(self._encode_image)
    self.summary = {'method': catalogue.run.method.name, 'gallery_size': len(gallery),
                    'gallery': catalogue.name, 'backend': catalogue.backend,
                    'distance': catalogue.distance, 'signatures': catalogue.run.method.signatures,
                    'manipulable': list(catalogue.run.config.manipulable)}
    self.manipulable = catalogue.run.config.manipulable

  def warm_up(self) -> None:
    """Loads the network and traces its pass on one gallery image, and sorts the gallery's paths
    (`GalleryIndex.find`), so the first request is answered as fast as the next."""
    gallery = self.catalogue.gallery
    gallery.find(str(gallery.paths[0]))
    with self._model_lock:
      image_query(self.catalogue, gallery.file(0))

  @staticmethod
  def attributes() -> dict[str, dict[str, list[str]]]:
    return {kind: {a.name: list(a.values) for a in ATTRIBUTES if a.special == special}
            for kind, special in (('special', True), ('general', False))}

  def search(self, spec: SearchSpec, upload: Upload | None = None) -> dict[str, Any]:
    gallery = self.catalogue.gallery
    if upload is not None:
      query = self._embed(upload)
    else:
      try:
        position = gallery.find(spec.query)
      except UserError as e:
        raise RequestError(f'"query": {e}', 404) from None
      query = Query(gallery.take([position]), position)
    try:
      picked = list(dict.fromkeys(gallery.find(item) for item in spec.feedback))
    except UserError as e:
      raise RequestError(f'"feedback": {e}', 404) from None
    allowed = None if spec.category is None else self._category == spec.category
    try:
      report = answer(self.catalogue, query, spec.changes, spec.feedback, spec.top_k,
                      allowed).report
    except UserError as e:
      raise RequestError(str(e)) from None
    return self._response(query, spec, report, picked)

  def _embed(self, upload: Upload) -> Query:
    """The features of an uploaded photo, through the file path search.py takes (its own bytes,
    or a PNG, which keeps a cut-out's transparency for the same composite on white)."""
    with tempfile.TemporaryDirectory(prefix='tf_partfash_upload_') as folder:
      if upload.original is not None:
        file = os.path.join(folder, 'upload' + upload.suffix)
        with open(file, 'wb') as f:
          f.write(upload.original)
      else:
        file = os.path.join(folder, 'upload.png')
        upload.image.save(file)
      with self._model_lock:
        return image_query(self.catalogue, file)

  def _response(self, query: Query, spec: SearchSpec, report: dict,
                picked: list[int]) -> dict[str, Any]:
    q = query.features
    described = {
        'row': query.position, 'path': report['query'] if query.position is not None else None,
        'image': None if query.position is None else f'/api/images/{query.position}',
        'predicted': {a: attribute(a).values[int(q.probabilities[a][0].argmax())]
                      for a in SPECIAL_ATTRIBUTES},
        'labels': _values(q.labels[0]), 'cut_out': query.cut_out}
    after = report.get('feedback')
    results = after['results'] if after else report['results']
    out = {'query': described, 'set': report['changes'], 'demanded': report['demanded'],
           'top_k': spec.top_k, **self.summary, 'results': [self._linked(r) for r in results]}
    if spec.category is not None:
      out['category'] = attribute('category').values[spec.category]
    if after:
      out['feedback'] = {'picked': picked, 'weights': after['weights']}
      out['before_feedback'] = [self._linked(r) for r in report['results']]
    return out

  @staticmethod
  def _linked(result: Mapping[str, Any]) -> dict[str, Any]:
    return {**result, 'image': f'/api/images/{result["row"]}'}

  def image(self, row: int, size: int | None = None) -> bytes:
    """A gallery image as JPEG, at most `size` pixels on its longer side. Only a row number
    reaches the file system: the file is the index's."""
    if not 0 <= row < len(self.catalogue.gallery):
      raise RequestError(f'image row {row} is not in the gallery (0..'
                         f'{len(self.catalogue.gallery) - 1})', 404)
    if size is not None and not 16 <= size <= MAX_THUMBNAIL:
      raise RequestError(f'"size" must be 16..{MAX_THUMBNAIL} pixels, got {size}')
    return self._thumbnail(row, size)

  def _encode_image(self, row: int, size: int | None) -> bytes:
    file = self.catalogue.gallery.file(row)
    with Image.open(file) as image:
      image = on_white(ImageOps.exif_transpose(image))  # as searched
      if size:
        image.thumbnail((size, size))
      out = io.BytesIO()
      image.save(out, 'JPEG', quality=85)
    return out.getvalue()
