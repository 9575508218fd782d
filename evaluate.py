r"""Scores trained runs on the paper's retrieval protocol (§7: Fig. 6, Table 2) or on ADDE's.

  python evaluate.py --workdir=runs/demo
  python evaluate.py --workdirs=runs/classic,runs/no_parts,runs/paper --protocol=paper
  python evaluate.py --workdir=runs/paper --protocol=adde [--adde_dir=/data/adde_splits]
  python evaluate.py --workdirs=runs/classic,runs/paper --protocol=gallery_size

Prints the measured numbers, each with its 95 % bootstrap interval over queries, beside the
published ones, and writes results.json (default <first workdir>/results_<protocol>.json) and
the top-k curves beside it (<same name>_topk.png). Queries are drawn once per dataset split, hit
rule and query seed and stored beside the split, so every run is scored on the same queries.
Runs that differ only in their seed are one column: mean +- sd across seeds.
"""
import logging
import os

from absl import app, flags

from tf_partfash.cli import exit_on_user_error
from tf_partfash.config import DISTANCES
from tf_partfash.queries import HIT_ATTRIBUTES, HIT_RULES
from tf_partfash.retrieval import BACKENDS

flags.DEFINE_string('workdir', None, 'Training directory of the run to evaluate.')
flags.DEFINE_list('workdirs', None, 'Several runs on the same data, scored side by side.')
flags.DEFINE_enum('protocol', 'paper', ['paper', 'adde', 'feedback', 'gallery_size'],
                  "'paper' (§7: direct, 1 and 2 manipulations), 'adde' (ADDE's query files), "
                  "'feedback' (personalization: a simulated shopper's rounds of Eq. 5-6 feedback "
                  "towards the paper queries' hidden targets; tf_partfash/feedback.py) or "
                  "'gallery_size' (AMNet Fig. 6: top-20 after one manipulation in nested "
                  'galleries of --gallery_sizes images; tf_partfash/gallery_sizes.py).')
flags.DEFINE_list('gallery_sizes', ['1000', '2000', '5000', '10000', '19000'],
                  'Gallery sizes of --protocol=gallery_size (at most the paper gallery).')
flags.DEFINE_string('output_json', None, 'results.json path (plots are written beside it).')
flags.DEFINE_enum('distance', 'euclidean', list(DISTANCES),
                  "d of Eq. 4: 'euclidean' (the paper: the Euclidean distances of the S + 1 "
                  "signatures summed) or 'squared' (squared distances summed, what "
                  '--backend=faiss serves).')
flags.DEFINE_enum('hit_attributes', 'special', list(HIT_ATTRIBUTES),
                  'Paper protocol: what a hit must have. ' + ' '.join(
                      f"'{name}': {rule}." for name, rule in HIT_RULES.items()))
flags.DEFINE_enum('backend', 'exact', list(BACKENDS), "Nearest-neighbour search: 'exact' "
                  "(numpy), 'faiss' (exact, squared only) or 'compact' (product-quantised codes "
                  'find 2,000 candidates, re-ranked exactly; tf_partfash/compact.py).')
flags.DEFINE_bool('rebuild_compact_index', False, 'Rebuild the compact index of --backend='
                  'compact (one of another model or gallery is refused until rebuilt).')
flags.DEFINE_integer('query_seed', 0, 'Seed of the paper protocol\'s random manipulations.')
flags.DEFINE_string('adde_dir', None, 'ADDE release files (imgs_test.txt, ...); default: '
                    'written by ADDE\'s rule from the run\'s gallery and query images.')
flags.DEFINE_integer('workers', 2, 'Processes for part extraction if the cache is missing.')
flags.DEFINE_bool('skip_corrupt_images', False, 'As given to train.py: leave out undecodable '
                  'images.')
FLAGS = flags.FLAGS

_DATA_KEYS = ('data_dir', 'split_seed', 'synthetic_images', 'synthetic_seed', 'gallery_images',
              'query_images')


def main(argv):
  del argv
  exit_on_user_error('evaluate.py', _evaluate)


def _evaluate() -> None:
  workdirs = FLAGS.workdirs or ([FLAGS.workdir] if FLAGS.workdir else [])
  if not workdirs or (FLAGS.workdir and FLAGS.workdirs):
    raise app.UsageError('give either --workdir or --workdirs')
  real = [os.path.realpath(w) for w in workdirs]
  repeated = next((w for w, r in zip(workdirs, real) if real.count(r) > 1), None)
  if repeated:
    raise ValueError(f'--workdirs lists {repeated} twice')
  if FLAGS.adde_dir and FLAGS.protocol != 'adde':
    raise app.UsageError('--adde_dir is for --protocol=adde')
  if FLAGS['hit_attributes'].present and FLAGS.protocol != 'paper':
    raise app.UsageError("--hit_attributes is for --protocol=paper (ADDE's hits need all 12 "
                         "attributes; the shopper's target is the special ones)")
  logging.getLogger().setLevel(logging.INFO)
  # After flag parsing: these import TensorFlow, which is slow.
  from tf_partfash import evaluation, queries, reports
  from tf_partfash.trained_run import TrainedRun

  # Every run opened (and checked finished) before scoring any: a crash after the first run
  # would write nothing.
  runs = [TrainedRun.open(w, workers=FLAGS.workers, skip_corrupt=FLAGS.skip_corrupt_images,
                          rebuild_compact=FLAGS.rebuild_compact_index)
          for w in workdirs]
  data_settings = [{k: r.config.data.get(k) for k in _DATA_KEYS} for r in runs]
  for workdir, settings in zip(workdirs[1:], data_settings[1:]):
    if settings != data_settings[0]:
      raise app.UsageError(f'{workdir} was trained on other data ({settings}) than {workdirs[0]} '
                           f'({data_settings[0]}); runs compared side by side share their data')
  settings = data_settings[0]
  # The data prepared once for every run with the same part extractor (the split and queries
  # are the same for all).
  prepared = {}
  for r in runs:
    if r.config.data['part_extractor'] not in prepared:
      prepared[r.config.data['part_extractor']] = r.data
  runs = [TrainedRun(r.workdir, r.config, data=prepared[r.config.data['part_extractor']],
                     rebuild_compact=FLAGS.rebuild_compact_index) for r in runs]
  data = runs[0].data
  dataset = reports.describe_dataset(settings['data_dir'], data.data_dir, len(data.table))
  if FLAGS.protocol == 'feedback':
    _feedback(runs, data, dataset, settings)
    return
  if FLAGS.protocol == 'gallery_size':
    _gallery_sizes(runs, data, dataset, settings)
    return
  if FLAGS.protocol == 'paper':
    query_sets, query_file = queries.ensure_paper_queries(
        data.split_file, data.table, data.split, FLAGS.query_seed, FLAGS.hit_attributes)
    results = [evaluation.evaluate_paper(r, query_sets, FLAGS.distance, FLAGS.backend)
               for r in runs]
    print(reports.format_paper_tables(results, dataset, FLAGS.hit_attributes, FLAGS.distance))
    rule = {'hit_attributes': FLAGS.hit_attributes, 'hit_rule': HIT_RULES[FLAGS.hit_attributes]}
  else:
    test = queries.ensure_adde_test(data.table, data.split, data.split_file, FLAGS.adde_dir)
    query_file = test.directory
    results = [evaluation.evaluate_adde(r, test, FLAGS.distance, FLAGS.backend)
               for r in runs]
    print('\n'.join(test.notes + (reports.format_adde_table(results, dataset, FLAGS.distance),)))
    rule = {'hit_rule': 'the whole 151-dim label vector of the target (ADDE)'}
  print(f'Queries: {query_file}')
  _write(workdirs[0], reports.results_json(FLAGS.protocol, results, dataset, query_file,
                                           {**_scoring(settings, data), **rule}),
         '_topk.png', lambda plot: reports.plot_top_k(plot, FLAGS.protocol, results, dataset))


def _scoring(settings, data) -> dict:
  """How the runs were scored, for results.json."""
  return {'distance': FLAGS.distance, 'backend': FLAGS.backend, 'query_seed': FLAGS.query_seed,
          'split_seed': settings['split_seed'], 'split_file': data.split_file}


def _write(workdir: str, blob: dict, plot_suffix: str, plot) -> None:
  """results.json (--output_json, default <workdir>/results_<protocol>.json) and its plot."""
  from tf_partfash import reports
  output = FLAGS.output_json or os.path.join(workdir, f'results_{FLAGS.protocol}.json')
  reports.write_json(output, blob)
  figure = os.path.splitext(output)[0] + plot_suffix
  plot(figure)
  print(f'Wrote {output} and {figure}')


def _feedback(runs, data, dataset, settings) -> None:
  from tf_partfash import feedback, feedback_report, queries
  query_sets, query_file = queries.ensure_paper_queries(
      data.split_file, data.table, data.split, FLAGS.query_seed, 'special')
  skipped = {r.workdir: f'{r.config.method}: one feature vector per image, Eq. 5-6 weigh S + 1'
             for r in runs if not r.method.signatures}
  for workdir, reason in skipped.items():
    print(f'skipped {workdir} ({reason})')
  supported = [r for r in runs if r.method.signatures]
  if not supported:
    raise ValueError('no run of a method with S + 1 signatures to personalise: '
                     + ', '.join(skipped))
  results = [feedback.evaluate_feedback(r, query_sets, FLAGS.distance, FLAGS.backend)
             for r in supported]
  print(feedback_report.format_feedback_table(results, dataset))
  print(f'Queries: {query_file}')
  _write(supported[0].workdir, feedback_report.feedback_json(
      results, dataset, query_file, _scoring(settings, data), skipped),
         '_rounds.png', lambda plot: feedback_report.plot_feedback(plot, results, dataset))


def _gallery_sizes(runs, data, dataset, settings) -> None:
  from tf_partfash import gallery_sizes, queries
  try:
    sizes = [int(s) for s in FLAGS.gallery_sizes]
  except ValueError:
    raise app.UsageError(f'--gallery_sizes={",".join(FLAGS.gallery_sizes)}: give whole numbers')
  gallery_sizes.nested_galleries(len(data.rows('gallery')), sizes)  # sizes checked before search
  query_sets, query_file = queries.ensure_paper_queries(
      data.split_file, data.table, data.split, FLAGS.query_seed, 'special')
  results = [gallery_sizes.evaluate_gallery_sizes(r, query_sets[gallery_sizes.SETTING], sizes,
                                                  FLAGS.distance, FLAGS.backend) for r in runs]
  print(gallery_sizes.format_table(results, dataset))
  print(f'Queries: {query_file}')
  _write(runs[0].workdir, gallery_sizes.results_json(results, dataset, query_file,
                                                     _scoring(settings, data)),
         '.png', lambda plot: gallery_sizes.plot(plot, results, dataset))


if __name__ == '__main__':
  app.run(main)
