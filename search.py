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

from absl import app, flags

from tf_partfash import cli
from tf_partfash.attributes import SPECIAL_ATTRIBUTES
from tf_partfash.config import PART_EXTRACTORS

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
cli.define_search_flags()
flags.adopt_module_key_flags(cli)
flags.DEFINE_enum('part_extractor', None, PART_EXTRACTORS, 'Part extraction of a query image '
                  "file and of a --gallery folder: 'jumps' (§4.3) or 'regression' (§7.5). "
                  'Default: the one the model was trained with; the test gallery keeps its parts.')
flags.DEFINE_string('output_json', None, 'Write the query and ranked results as JSON here.')
flags.DEFINE_string('output_image', None, 'Write a Fig. 7-like picture (Fig. 8 with --feedback).')
flags.mark_flags_as_required(['workdir', 'query'])
FLAGS = flags.FLAGS


def _search() -> None:
  from tf_partfash.search.session import SearchRequest, search  # after parsing: TF is slow
  search(SearchRequest(FLAGS.workdir, FLAGS.query, tuple(FLAGS.set), tuple(FLAGS.feedback),
                       FLAGS.top_k, FLAGS.gallery, FLAGS.backend, FLAGS.distance,
                       FLAGS.output_json, FLAGS.output_image, FLAGS.part_extractor,
                       FLAGS.rebuild_compact_index))


def main(argv):
  del argv
  cli.exit_on_user_error('search.py', _search)


if __name__ == '__main__':
  app.run(main)
