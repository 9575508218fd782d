r"""Serves attribute-based fashion search (paper §4.6, §5, Fig. 7-8) as a JSON API and a web page.

  python serve.py --workdir=runs/demo
  # then open http://127.0.0.1:8000/?query=0&set=sleevelen:sleeveless (API docs: /docs)

The model, the gallery index and the attribute prototypes are loaded once (built, with a progress
line, when missing) and kept in memory; the API answers `POST /api/search` with a gallery ID or
an uploaded photo (and a rectangle drawn on it), attribute changes and relevance feedback. There
is no authentication and no TLS: put it behind a reverse proxy before anyone else reaches it.
"""
from __future__ import annotations

from tf_partfash.serving.blas import one_blas_thread

one_blas_thread()  # before anything loads numpy

import logging  # noqa: E402

from absl import app, flags  # noqa: E402

from tf_partfash import cli  # noqa: E402
from tf_partfash.config import PART_EXTRACTORS  # noqa: E402

flags.DEFINE_string('workdir', None, 'Training directory of the model (train.py --workdir).')
flags.DEFINE_string('gallery', 'test', "'test' (the run's gallery and query images) or a folder "
                    'of images (indexed on start, again when it changed).')
cli.define_search_flags()
flags.adopt_module_key_flags(cli)
flags.DEFINE_enum('part_extractor', None, PART_EXTRACTORS, 'Part extraction of uploaded photos '
                  'and of a --gallery folder; default: the one the model was trained with.')
flags.DEFINE_string('host', '127.0.0.1', 'Address to listen on; anything but loopback exposes '
                    'an API without authentication.')
flags.DEFINE_integer('port', 8000, 'Port to listen on.', lower_bound=0, upper_bound=65535)
flags.DEFINE_float('max_upload_mb', 10.0, 'Largest request (an uploaded photo) in megabytes.',
                   lower_bound=0.01)
flags.DEFINE_integer('max_image_megapixels', 40, 'Largest uploaded photo in decoded megapixels '
                     '(a decompression bomb is refused before it is decoded).', lower_bound=1)
flags.mark_flag_as_required('workdir')
FLAGS = flags.FLAGS

LOOPBACK = ('127.0.0.1', 'localhost', '::1')


def _serve() -> None:
  logging.getLogger().setLevel(logging.INFO)
  if FLAGS.host not in LOOPBACK:
    logging.warning('serving on %s: the API has no authentication and no TLS; put it behind a '
                    'reverse proxy that provides them', FLAGS.host)
  import uvicorn  # after parsing: TensorFlow and the index load next
  from tf_partfash.search.session import open_catalogue
  from tf_partfash.search.trained_run import TrainedRun
  from tf_partfash.serving.app import create_app
  from tf_partfash.serving.service import Limits, SearchService
  run = TrainedRun.open(FLAGS.workdir, rebuild_compact=FLAGS.rebuild_compact_index)
  catalogue = open_catalogue(run, FLAGS.gallery, FLAGS.backend, FLAGS.distance,
                             FLAGS.part_extractor)
  service = SearchService(catalogue, Limits(int(FLAGS.max_upload_mb * 2**20),
                                            FLAGS.max_image_megapixels * 10**6))
  service.warm_up()
  logging.info('serving %s (%s, %d gallery images) on http://%s:%d/', FLAGS.workdir,
               run.method.name, len(catalogue.gallery), FLAGS.host, FLAGS.port)
  uvicorn.run(create_app(service), host=FLAGS.host, port=FLAGS.port, log_level='info')


def main(argv):
  del argv
  cli.exit_on_user_error('serve.py', _serve)


if __name__ == '__main__':
  app.run(main)
