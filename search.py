r"""Attribute-based fashion search with a trained model (paper §4.6, §5, Fig. 7-8).

  python search.py --workdir=runs/demo --query=17 --set collar=mandarin --output_image=fig7.png
  python search.py --workdir=runs/demo --query=Female/4_Shirts_blouses/0000123_1.jpg \
      --set sleevelen=sleeveless --set color=navy --feedback=3,12 --output_image=fig8.png
  python search.py --workdir=runs/demo --query=photo.jpg --gallery=my_images/ --backend=faiss \
      --distance=squared

A gallery ID is an image's path relative to the dataset's Images/ folder (or to the --gallery
folder), or its row number in the gallery index (the `row` column printed). --query also takes an
image file outside the gallery, run through part extraction and the model. The first search of a
model builds and caches its gallery index and attribute prototypes in the workdir.
"""
from __future__ import annotations

import os

from absl import app, flags

from tf_partfash import atomic, encoders, figures, index, retrieval
from tf_partfash.cli import exit_on_user_error
from tf_partfash.attributes import ATTRIBUTE_NAMES, MISSING, SPECIAL_ATTRIBUTES, attribute
from tf_partfash.encoders import SIGNATURE_METHODS
from tf_partfash.workdir import load_run_config

flags.DEFINE_string('workdir', None, 'Training directory of the model (train.py --workdir).')
flags.DEFINE_string('query', None, 'Gallery ID (path relative to Images/ or row number) or an '
                    'image file.')
flags.DEFINE_multi_string('set', [], 'Attribute manipulation name=value, e.g. color=navy; repeat '
                          'for several. Special attributes: ' + ', '.join(SPECIAL_ATTRIBUTES))
flags.DEFINE_list('feedback', [], 'Gallery IDs the user picks as relevant (§5): one replaces the '
                  'query, several weigh the signatures (Eq. 5-6) for a second search.')
flags.DEFINE_integer('top_k', 10, 'Number of results.', lower_bound=1)
flags.DEFINE_string('gallery', 'test', "'test' (the run's gallery and query images) or a folder "
                    'of images.')
flags.DEFINE_enum('backend', 'exact', retrieval.BACKENDS, 'exact (numpy) or faiss (squared only).')
flags.DEFINE_enum('distance', 'euclidean', retrieval.DISTANCES, 'd of Eq. 4-6: euclidean (the '
                  'paper: sum of the Euclidean distances of the S + 1 signatures) or squared (sum '
                  'of squared distances; what --backend=faiss serves).')
flags.DEFINE_string('output_json', None, 'Write the query and ranked results as JSON here.')
flags.DEFINE_string('output_image', None, 'Write a Fig. 7-like picture (Fig. 8 with --feedback).')
flags.mark_flags_as_required(['workdir', 'query'])
FLAGS = flags.FLAGS


def _query(gallery: index.GalleryIndex, text: str,
           mid: str) -> tuple[index.GalleryIndex, int | None]:
  """(one-item index, position in the gallery or None) of --query."""
  try:
    position = gallery.find(text)
    return gallery.take([position]), position
  except ValueError as e:
    if not os.path.isfile(text):
      raise ValueError(f'--query: neither a gallery ID nor an image file: {e}') from None
  from tf_partfash.workdir import load_trained_model  # slow (TensorFlow): only for a new image
  model, run = load_trained_model(FLAGS.workdir)
  folder, name = os.path.split(os.path.abspath(text))
  return index.embed_images(model, run, folder, [name], mid, progress=False), None


def _search(searcher, gallery, vectors, exclude, demanded, weights=None) -> list[dict]:
  """Ranked results of one query's (1, V, D) vectors, leaving out `exclude` (its own items)."""
  found, dist = searcher.search(vectors, FLAGS.top_k + len(exclude), weights)
  hits = [(int(p), float(d)) for p, d in zip(found[0], dist[0]) if int(p) not in exclude]
  labelled = demanded and (gallery.labels != MISSING).any()
  out = []
  for rank, (p, d) in enumerate(hits[:FLAGS.top_k], start=1):
    out.append({'rank': rank, 'row': p, 'path': str(gallery.paths[p]), 'distance': d,
                'predicted': {a: attribute(a).value(int(gallery.probabilities[a][p].argmax()))
                              for a in SPECIAL_ATTRIBUTES},
                'match': bool(retrieval.matches(gallery.labels[p:p + 1], demanded)[0])
                         if labelled else None})
  return out


def _print_table(title: str, results: list[dict]) -> None:
  print(f'\n{title}\n{"rank":>4} {"row":>6} {"distance":>9}  {"path":<44}'
        + ''.join(f' {a:<11}' for a in SPECIAL_ATTRIBUTES) + ' match')
  for r in results:
    mark = {True: 'yes', False: 'no', None: '-'}[r['match']]
    print(f'{r["rank"]:>4} {r["row"]:>6} {r["distance"]:>9.4f}  {r["path"]:<44}'
          + ''.join(f' {r["predicted"][a][:11]:<11}' for a in SPECIAL_ATTRIBUTES) + f' {mark}')


def _tiles(gallery, results, picked=()) -> list[figures.Tile]:
  tiles = [figures.Tile(gallery.file(r['row']), f'{r["rank"]}. d={r["distance"]:.4g}\n{r["path"]}',
                        'blue' if r['row'] in picked else 'green' if r['match'] else None)
           for r in results]
  shown = {r['row'] for r in results}
  return tiles + [figures.Tile(gallery.file(p), f'picked\n{gallery.paths[p]}', 'blue')
                  for p in picked if p not in shown]


def _check_output_folders() -> None:
  """--output_json / --output_image in a folder that does not exist fail before the search."""
  for name in ('output_json', 'output_image'):
    file = FLAGS[name].value
    folder = os.path.dirname(os.path.abspath(file)) if file else None
    if folder and not os.path.isdir(folder):
      raise ValueError(f'--{name}={file}: folder {folder} does not exist')


def _session() -> None:
  changes = retrieval.parse_changes(FLAGS.set)  # bad names fail before anything slow
  _check_output_folders()
  mid = index.model_id(FLAGS.workdir)
  gallery = (index.ensure_index(FLAGS.workdir) if FLAGS.gallery == 'test'
             else index.index_folder(FLAGS.workdir, FLAGS.gallery))
  picked = list(dict.fromkeys(gallery.find(item) for item in FLAGS.feedback))  # no repeats
  query, position = _query(gallery, FLAGS.query, mid)
  method = load_run_config(FLAGS.workdir).method
  if len(picked) > 1 and method not in SIGNATURE_METHODS:
    raise ValueError(f'--feedback with several images weighs the S + 1 signatures of the '
                     f'proposed network (Eq. 5-6); a {method} model has one feature vector: '
                     'pick one image (it replaces the query)')
  # Prototypes are computed on first use, which needs the model: only when a change asks.
  encoder = encoders.encoder_for(FLAGS.workdir, method, with_prototypes=bool(changes))
  manipulated = lambda features: encoder.queries(features, [changes])
  known = {a: int(query.labels[0, ATTRIBUTE_NAMES.index(a)]) for a in SPECIAL_ATTRIBUTES}
  demanded = {**{a: v for a, v in known.items() if v != MISSING}, **changes}
  describe = lambda a: (attribute(a).values[known[a]] if known[a] != MISSING else
                        attribute(a).values[int(query.probabilities[a][0].argmax())] + '?')
  edits = [(a, describe(a), attribute(a).values[v]) for a, v in changes.items()]
  text = '\n'.join(f'{a}:\n  {old} -> {new}' for a, old, new in edits) or 'none'
  searcher = retrieval.Searcher(encoder.gallery(gallery), FLAGS.backend, FLAGS.distance)
  own = {position} - {None}
  results = _search(searcher, gallery, manipulated(query), own, demanded)
  print(f'query {query.paths[0]}; manipulation: '
        + (', '.join(f'{a} {old} -> {new}' for a, old, new in edits) or 'none'))
  _print_table(f'top {FLAGS.top_k} of {len(gallery)} ({FLAGS.distance}, {FLAGS.backend})', results)
  report = {'query': str(query.paths[0]), 'query_row': position,
            'changes': {a: attribute(a).values[v] for a, v in changes.items()},
            'demanded': {a: attribute(a).values[v] for a, v in demanded.items()},
            'distance': FLAGS.distance, 'backend': FLAGS.backend, 'results': results}
  query_tile = figures.Tile(query.file(0), f'query\n{query.paths[0]}')
  picture = lambda: figures.manipulation_figure(query_tile, text, _tiles(gallery, results))
  if picked:
    weights, again = None, query
    if len(picked) == 1:  # §5: a single picked image replaces the query
      again, own = gallery.take(picked), own | set(picked)
      note = 'picked image\nreplaces the query'
    else:
      weights = retrieval.personalization_weights(gallery.signatures[picked], FLAGS.distance)
      note = '\n'.join(f'{n}: {w:.2f}' for n, w in zip(retrieval.SIGNATURE_NAMES, weights))
    after = _search(searcher, gallery, manipulated(again), own, demanded, weights)
    print('\nfeedback ' + ', '.join(FLAGS.feedback) + ': ' + note.replace('\n', ', '))
    _print_table('after feedback', after)
    report['feedback'] = {'picked': [str(gallery.paths[p]) for p in picked], 'results': after,
                          'weights': None if weights is None else dict(
                              zip(retrieval.SIGNATURE_NAMES, weights.tolist()))}
    picture = lambda: figures.feedback_figure(
        query_tile, text, _tiles(gallery, results, picked),
        figures.Tile(again.file(0), f'query\n{again.paths[0]}'), note, _tiles(gallery, after))
  if FLAGS.output_image:
    figures.save_figure(picture(), FLAGS.output_image)
    print(f'\npicture: {FLAGS.output_image}')
  if FLAGS.output_json:
    atomic.write_json(FLAGS.output_json, report)


def main(argv):
  del argv
  exit_on_user_error('search.py', _session)


if __name__ == '__main__':
  app.run(main)
