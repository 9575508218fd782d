r"""Scores trained runs on an evaluation protocol: the paper's (§7: Fig. 6, Table 2) by default.

  python evaluate.py --workdir=runs/demo
  python evaluate.py --workdirs=runs/classic,runs/no_parts,runs/paper --protocol=paper
  python evaluate.py --workdir=runs/paper --protocol=adde [--adde_dir=/data/adde_splits]
  python evaluate.py --workdirs=runs/classic,runs/paper --protocol=gallery_size
  python evaluate.py --workdirs=runs/amnet,runs/paper --protocol=flam [--flam_images=2000]

Prints the measured numbers, each with its 95 % bootstrap interval over queries, beside the
published ones, and writes results.json (default <first workdir>/results_<protocol>.json) and
its figure beside it. Queries are drawn once per dataset split, hit rule and query seed and stored
beside the split, so every run is scored on the same queries. Runs that differ only in their seed
are one column: mean +- sd across seeds. The protocols are declared in tf_partfash/protocols.py.
"""
import dataclasses
import logging
import os

from absl import app, flags

from tf_partfash import cli
from tf_partfash.errors import UserError
from tf_partfash.evaluation.queries import HIT_RULES
from tf_partfash.protocols import (COMMON_OPTIONS, DEFAULT_FLAM_IMAGES, DEFAULT_GALLERY_SIZES,
                                   Options, PROTOCOLS)

flags.DEFINE_string('workdir', None, 'Training directory of the run to evaluate.')
flags.DEFINE_list('workdirs', None, 'Several runs on the same data, scored side by side.')
flags.DEFINE_enum('protocol', 'paper', list(PROTOCOLS), ' '.join(
    f"'{p.name}': {p.description}." for p in PROTOCOLS.values()))
cli.define_search_flags()
cli.define_preparation_flags()
flags.adopt_module_key_flags(cli)
flags.DEFINE_integer('query_seed', 0, "Seed of the queries' random manipulations (and of FLAM's "
                     'sample of evaluation images).')
flags.DEFINE_enum('hit_attributes', 'special', list(HIT_RULES), 'What a hit must have. ' + ' '.join(
    f"'{name}': {rule}." for name, rule in HIT_RULES.items()))
flags.DEFINE_string('adde_dir', None, "ADDE release files (imgs_test.txt, ...); default: written "
                    "by ADDE's rule from the run's gallery and query images.")
flags.DEFINE_list('gallery_sizes', [str(s) for s in DEFAULT_GALLERY_SIZES],
                  'Gallery sizes (at most the paper gallery).')
flags.DEFINE_integer('flam_images', DEFAULT_FLAM_IMAGES, "At most this many test images labelled "
                     "on shape (category), color and pattern are FLAM's evaluation images "
                     "(FLAM §4: 2K on Shopping100k).")
flags.DEFINE_string('output_json', None, 'results.json path (its figure is written beside it).')
FLAGS = flags.FLAGS


def _options() -> Options:
  """The scoring options of the flags; a flag of another protocol is an error."""
  protocol = PROTOCOLS[FLAGS.protocol]
  for name in (field.name for field in dataclasses.fields(Options)):
    if name not in COMMON_OPTIONS and FLAGS[name].present and name not in protocol.options:
      owners = [p.name for p in PROTOCOLS.values() if name in p.options]
      raise UserError(f'--{name} is for --protocol={" or ".join(owners)}')
  try:
    sizes = tuple(int(s) for s in FLAGS.gallery_sizes)
  except ValueError:
    raise UserError(f'--gallery_sizes={",".join(FLAGS.gallery_sizes)}: give whole numbers')
  try:
    return Options(FLAGS.distance, FLAGS.backend, FLAGS.query_seed, FLAGS.hit_attributes,
                   FLAGS.adde_dir, sizes, FLAGS.flam_images)
  except ValueError as e:
    raise UserError(f'--{e}') from None


def _evaluate() -> None:
  workdirs = FLAGS.workdirs or ([FLAGS.workdir] if FLAGS.workdir else [])
  if not workdirs or (FLAGS.workdir and FLAGS.workdirs):
    raise UserError('give either --workdir or --workdirs')
  options = _options()
  logging.getLogger().setLevel(logging.INFO)
  from tf_partfash.evaluation import reports, scoring  # after flag parsing: TensorFlow is slow
  from tf_partfash.storage.workdir import results_file

  runs = scoring.open_runs(workdirs, FLAGS.workers, FLAGS.skip_corrupt_images,
                           FLAGS.rebuild_compact_index)
  outcome = PROTOCOLS[FLAGS.protocol].evaluate(runs, options)
  print(outcome.text)
  output = FLAGS.output_json or os.path.join(outcome.workdir, results_file(FLAGS.protocol))
  figure = reports.write_outcome(outcome, output)
  print(f'Wrote {output} and {figure}')


def main(argv):
  del argv
  cli.exit_on_user_error('evaluate.py', _evaluate)


if __name__ == '__main__':
  app.run(main)
