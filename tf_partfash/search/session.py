"""One shopper's search (paper §4.6, §5, Fig. 7-8): a query image, attribute changes, and
optionally relevance feedback; printed as tables, written as JSON and as a Fig. 7/8-like picture.

search.py parses its flags into a `SearchRequest` and calls `search`. A `Catalogue` is a gallery
opened for searching once; `answer` computes a search of it without printing or writing anything
(serve.py answers every request so).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image

from tf_partfash.attributes import (ATTRIBUTE_NAMES, MISSING, SIGNATURE_NAMES, SPECIAL_ATTRIBUTES,
                                    attribute)
from tf_partfash.errors import UserError
from tf_partfash.parts import is_cut_out
from tf_partfash.search import figures, retrieval
from tf_partfash.search.gallery import GalleryIndex
from tf_partfash.search.trained_run import TrainedRun
from tf_partfash.storage import atomic
from tf_partfash.storage.workdir import load_run_config


@dataclasses.dataclass(frozen=True)
class SearchRequest:
  workdir: str
  query: str                       # gallery ID (path or row number) or an image file
  changes: Sequence[str] = ()      # 'name=value' attribute manipulations
  feedback: Sequence[str] = ()     # gallery IDs the shopper picks as relevant (§5)
  top_k: int = 10
  gallery: str = 'test'            # 'test' (the run's gallery and query images) or a folder
  backend: str = 'exact'
  distance: str = 'euclidean'
  output_json: str | None = None
  output_image: str | None = None
  # Part extraction of images outside the dataset (a query file, a gallery folder): one of
  # `config.PART_EXTRACTORS`; None: the one the run was trained with.
  part_extractor: str | None = None
  rebuild_compact_index: bool = False  # backend=compact: rebuild its stored codes


def _check_outputs(request: SearchRequest) -> None:
  """Outputs that cannot be written fail before the search: a folder that does not exist or is
  not writable, a picture of a format not drawn."""
  for name in ('output_json', 'output_image'):
    file = getattr(request, name)
    folder = os.path.dirname(os.path.abspath(file)) if file else None
    if folder and not os.path.isdir(folder):
      raise UserError(f'--{name}={file}: folder {folder} does not exist')
    if folder and not os.access(folder, os.W_OK):
      raise UserError(f'--{name}={file}: folder {folder} is not writable')
  image = request.output_image
  if image and os.path.splitext(image)[1].lower() not in figures.FORMATS:
    raise UserError(f'--output_image={image}: a picture is written as '
                    + ', '.join(figures.FORMATS) + ' (by its extension)')


@dataclasses.dataclass(frozen=True)
class Catalogue:
  """A gallery made ready to search with a run (§4.6): its index, the method's query encoder and
  the searcher over its vectors. search.py opens one per command, serve.py one per process."""
  run: TrainedRun
  gallery: GalleryIndex
  name: str                      # of its cached files: 'test' or the folder's
  encoder: Any
  searcher: Any
  backend: str
  distance: str
  part_extractor: str | None     # of images from outside the dataset


def open_catalogue(run: TrainedRun, gallery: str = 'test', backend: str = 'exact',
                   distance: str = 'euclidean', part_extractor: str | None = None,
                   with_prototypes: bool = True) -> Catalogue:
  """`gallery`: 'test' (the run's gallery and query images) or a folder of images. Prototypes
  are computed on first use, which needs the model and the training images: without changes to
  search for, `with_prototypes=False` spares them."""
  lazy = backend == 'compact'  # candidates' signatures read from the file, not all held
  index = (run.index(lazy=lazy) if gallery == 'test'
           else run.folder_index(gallery, part_extractor, lazy=lazy))
  encoder = run.encoder(with_prototypes=with_prototypes)
  name = 'test' if gallery == 'test' else run.folder_name(gallery, part_extractor)
  return Catalogue(run, index, name, encoder,
                   run.searcher(name, index, encoder.gallery(index), backend, distance),
                   backend, distance, part_extractor)


@dataclasses.dataclass(frozen=True)
class Query:
  features: GalleryIndex   # one item
  position: int | None     # in the gallery, or None for an image from outside it
  cut_out: bool = False    # an outside image with a transparent background


def image_query(catalogue: Catalogue, file: str) -> Query:
  """The query of an image file from outside the gallery: its parts extracted, then the model."""
  folder, name = os.path.split(os.path.abspath(file))
  return Query(catalogue.run.embed(folder, [name], progress=False,
                                   part_extractor=catalogue.part_extractor), None, is_cut_out(file))


def find_query(catalogue: Catalogue, text: str) -> Query:
  """A gallery ID (path or row), else an image file."""
  try:
    position = catalogue.gallery.find(text)
    return Query(catalogue.gallery.take([position]), position)
  except ValueError as e:
    if not os.path.isfile(text):
      raise UserError(f'--query: neither a gallery ID nor an image file: {e}') from None
  return image_query(catalogue, text)


def _ranked(catalogue: Catalogue, vectors: np.ndarray, exclude: set[int],
            demanded: dict[str, int], top_k: int, weights: np.ndarray | None = None,
            allowed: np.ndarray | None = None) -> list[dict[str, Any]]:
  """Ranked results of one query's (1, V, D) vectors, leaving out `exclude` (its own items) and,
  when `allowed` (a gallery mask) is given, the items it leaves out."""
  gallery, k = catalogue.gallery, top_k + len(exclude)
  while True:  # a restriction may leave fewer than top_k among the nearest k: look further
    found, dist = catalogue.searcher.search(vectors, min(k, len(gallery)), weights)
    hits = [(int(p), float(d)) for p, d in zip(found[0], dist[0])
            if int(p) not in exclude and (allowed is None or allowed[int(p)])]
    if len(hits) >= top_k or k >= len(gallery):
      break
    k *= 4
  rows = [p for p, _ in hits[:top_k]]
  predicted = {a: [attribute(a).values[i] for i in gallery.probabilities[a][rows].argmax(axis=1)]
               for a in SPECIAL_ATTRIBUTES}
  labelled = demanded and gallery.labelled
  matches = retrieval.confirms(gallery.labels[rows], demanded) if labelled else [None] * len(rows)
  return [{'rank': rank, 'row': p, 'path': str(gallery.paths[p]), 'distance': d,
           'predicted': {a: predicted[a][rank - 1] for a in SPECIAL_ATTRIBUTES},
           'match': None if matches[rank - 1] is None else bool(matches[rank - 1])}
          for rank, (p, d) in enumerate(hits[:top_k], start=1)]


def format_results(title: str, results: list[dict[str, Any]]) -> str:
  lines = [f'{title}\n{"rank":>4} {"row":>6} {"distance":>9}  {"path":<44}'
           + ''.join(f' {a:<11}' for a in SPECIAL_ATTRIBUTES) + ' match']
  for r in results:
    mark = {True: 'yes', False: 'no', None: '-'}[r['match']]
    lines.append(f'{r["rank"]:>4} {r["row"]:>6} {r["distance"]:>9.4f}  {r["path"]:<44}'
                 + ''.join(f' {r["predicted"][a][:11]:<11}' for a in SPECIAL_ATTRIBUTES)
                 + f' {mark}')
  return '\n'.join(lines)


def _tiles(gallery: GalleryIndex, results: list[dict], picked: Sequence[int] = ()
           ) -> list[figures.Tile]:
  tiles = [figures.Tile(gallery.file(r['row']), f'{r["rank"]}. d={r["distance"]:.4g}\n{r["path"]}',
                        'blue' if r['row'] in picked else 'green' if r['match'] else None)
           for r in results]
  shown = {r['row'] for r in results}
  return tiles + [figures.Tile(gallery.file(p), f'picked\n{gallery.paths[p]}', 'blue')
                  for p in picked if p not in shown]


@dataclasses.dataclass(frozen=True)
class SearchOutcome:
  """A search's answer: the JSON report, the tables as printed, and its Fig. 7/8-like picture."""
  report: dict[str, Any]
  text: str
  picture: Callable[[], Image.Image]


def search(request: SearchRequest) -> dict[str, Any]:
  """Runs the search, prints its tables, writes the outputs asked for; returns the JSON report."""
  changes = retrieval.parse_changes(request.changes, _manipulable(request.workdir))
  _check_outputs(request)
  run = TrainedRun.open(request.workdir, rebuild_compact=request.rebuild_compact_index)
  catalogue = open_catalogue(run, request.gallery, request.backend, request.distance,
                             request.part_extractor, with_prototypes=bool(changes))
  outcome = answer(catalogue, find_query(catalogue, request.query), changes, request.feedback,
                   request.top_k)
  print(outcome.text)
  if request.output_image:
    figures.save_figure(outcome.picture(), request.output_image)
    print(f'\npicture: {request.output_image}')
  if request.output_json:
    atomic.write_json(request.output_json, outcome.report)
  return outcome.report


def answer(catalogue: Catalogue, query: Query, changes: dict[str, int],
           feedback: Sequence[str] = (), top_k: int = 10,
           allowed: np.ndarray | None = None) -> SearchOutcome:
  """One search of the catalogue (§4.6: Eq. 4 with `changes`), then, with `feedback` (gallery
  IDs the shopper picks), one after it (§5: Eq. 5-6). `allowed`: a mask of the gallery items
  that may be results (SK Planet's category option)."""
  gallery, distance = catalogue.gallery, catalogue.distance
  picked = list(dict.fromkeys(gallery.find(item) for item in feedback))  # no repeats
  if len(picked) > 1 and not catalogue.run.method.signatures:
    raise UserError(f'feedback with several images weighs the S + 1 signatures of the '
                    f'proposed network (Eq. 5-6); a {catalogue.run.method.name} model has one '
                    'feature vector: pick one image (it replaces the query)')
  encoder, q = catalogue.encoder, query.features
  demanded, edits = _demands(q, changes)
  own = {query.position} - {None}
  results = _ranked(catalogue, encoder.queries(q, [changes]), own, demanded, top_k,
                    allowed=allowed)
  text = [f'query {q.paths[0]}; manipulation: '
          + (', '.join(f'{a} {old} -> {new}' for a, old, new in edits) or 'none')
          + ('; its transparent background composited on white, as a shop photo\'s'
             if query.cut_out else ''),
          '\n' + format_results(f'top {top_k} of {len(gallery)} ({distance}, '
                                f'{catalogue.backend})', results)]
  report = {'query': str(q.paths[0]), 'query_row': query.position,
            'changes': {a: attribute(a).values[v] for a, v in changes.items()},
            'demanded': {a: attribute(a).values[v] for a, v in demanded.items()},
            'distance': distance, 'backend': catalogue.backend, 'results': results}
  shown = '\n'.join(f'{a}:\n  {old} -> {new}' for a, old, new in edits) or 'none'
  query_tile = figures.Tile(q.file(0), f'query\n{q.paths[0]}')
  if not picked:
    return SearchOutcome(report, '\n'.join(text), lambda: figures.manipulation_figure(
        query_tile, shown, _tiles(gallery, results)))
  weights, again = None, q
  if len(picked) == 1:  # §5: a single picked image replaces the query
    again, own = gallery.take(picked), own | set(picked)
    note = 'picked image\nreplaces the query'
  else:
    weights = retrieval.personalization_weights(gallery.signatures[picked], distance)
    note = '\n'.join(f'{n}: {w:.2f}' for n, w in zip(SIGNATURE_NAMES, weights))
  after = _ranked(catalogue, encoder.queries(again, [changes]), own, demanded, top_k, weights,
                  allowed)
  text += ['\nfeedback ' + ', '.join(feedback) + ': ' + note.replace('\n', ', '),
           '\n' + format_results('after feedback', after)]
  report['feedback'] = {'picked': [str(gallery.paths[p]) for p in picked], 'results': after,
                        'weights': None if weights is None else dict(
                            zip(SIGNATURE_NAMES, weights.tolist()))}
  return SearchOutcome(report, '\n'.join(text), lambda: figures.feedback_figure(
      query_tile, shown, _tiles(gallery, results, picked),
      figures.Tile(again.file(0), f'query\n{again.paths[0]}'), note, _tiles(gallery, after)))


def _manipulable(workdir: str) -> tuple[str, ...]:
  """What the run's method can change, from run.json alone: bad names fail before anything
  slow (a missing run.json is reported by `TrainedRun.open`)."""
  try:
    return load_run_config(workdir).manipulable
  except FileNotFoundError:
    return SPECIAL_ATTRIBUTES


def _demands(query: GalleryIndex, changes: dict[str, int]
             ) -> tuple[dict[str, int], list[tuple[str, str, str]]]:
  """What the shopper asks for: the query's own special labels with `changes` applied (a feature
  method may change a general attribute too), and each change as (attribute, the query's value,
  or its prediction marked '?', the wanted value)."""
  known = {a: int(query.labels[0, ATTRIBUTE_NAMES.index(a)])
           for a in dict.fromkeys((*SPECIAL_ATTRIBUTES, *changes))}
  demanded = {**{a: v for a, v in known.items() if v != MISSING}, **changes}
  describe = lambda a: (attribute(a).values[known[a]] if known[a] != MISSING else
                        attribute(a).values[int(query.probabilities[a][0].argmax())] + '?')
  return demanded, [(a, describe(a), attribute(a).values[v]) for a, v in changes.items()]
