"""Paired comparisons on the same items, with bootstrap intervals (`evaluation.intervals`): two
evaluate.py results files scored on the same queries (the same model searched two ways, or two
models), and two part extractions of the same images against the true parts (§4.3 vs §7.5).
scripts/paired_difference.py and scripts/compare_part_extractors.py print them."""
from __future__ import annotations

import numpy as np

from tf_partfash.errors import UserError
from tf_partfash.evaluation import intervals
from tf_partfash.parts import PART_NAMES, Parts, box_iou


def paired_results(a: dict, b: dict, k: int) -> list[dict]:
  """Two results.json contents scored on the same queries: per run they share (matched by
  workdir; with none in common, in order) and setting, A's and B's top-k and B - A with its 95 %
  paired bootstrap interval over the queries."""
  if a['query_file'] != b['query_file']:
    raise UserError(f'the files were scored on other queries: {a["query_file"]} and '
                    f'{b["query_file"]}')
  by_workdir = {r['workdir']: r for r in b['runs']}
  if any(r['workdir'] in by_workdir for r in a['runs']):
    pairs = [(r, by_workdir[r['workdir']]) for r in a['runs'] if r['workdir'] in by_workdir]
  elif len(a['runs']) == len(b['runs']):  # e.g. one model copied to another workdir
    pairs = list(zip(a['runs'], b['runs']))
  else:
    raise UserError(f'no workdir in common and {len(a["runs"])} runs against '
                    f'{len(b["runs"])}: nothing to pair')
  out = []
  for run_a, run_b in pairs:
    for setting, scores_a in run_a['settings'].items():
      hits_a = np.asarray(scores_a.get('first_hit', [])) < k
      hits_b = np.asarray(run_b['settings'][setting].get('first_hit', [])) < k
      if 'first_hit' not in scores_a or not len(hits_a):
        continue
      diff, low, high = intervals.paired_difference(hits_b, hits_a)
      out.append({'workdir': run_a['workdir'], 'name': run_a['name'], 'setting': setting,
                  'queries': len(hits_a), f'top{k}_a': float(hits_a.mean()),
                  f'top{k}_b': float(hits_b.mean()), 'b_minus_a': diff, 'ci95': [low, high]})
  return out


def paired_extractions(truth: dict[str, Parts], a: dict[str, Parts], b: dict[str, Parts]) -> dict:
  """Two part extractions (path -> `Parts`) against the true parts, over the images all three
  hold: each one's case accuracy with its 95 % interval over images and B minus A paired; per
  part, over the images where all three have it, the mean IoU with the true box of each and B
  minus A paired."""
  paths = sorted(set(truth) & set(a) & set(b))
  if not paths:
    raise UserError('no image is in the truth and in both extractions')
  case = {name: np.array([parts[p].case == truth[p].case for p in paths], float)
          for name, parts in (('a', a), ('b', b))}
  out = {'images': len(paths),
         'case': {'a': _rate(case['a']), 'b': _rate(case['b']),
                  'b_minus_a': _difference(case['b'], case['a'])},
         'case_agreement': float(np.mean([a[p].case == b[p].case for p in paths])), 'iou': {}}
  for part in PART_NAMES:
    both = [p for p in paths if part in truth[p].boxes and part in a[p].boxes
            and part in b[p].boxes]
    if not both:
      continue
    iou = {name: np.array([box_iou(truth[p].boxes[part], parts[p].boxes[part]) for p in both])
           for name, parts in (('a', a), ('b', b))}
    out['iou'][part] = {'images': len(both), 'a': float(iou['a'].mean()),
                        'b': float(iou['b'].mean()),
                        'b_minus_a': _difference(iou['b'], iou['a'])}
  return out


def _rate(values: np.ndarray) -> dict:
  low, high = intervals.interval(values)
  return {'mean': float(values.mean()), 'low': low, 'high': high}


def _difference(b: np.ndarray, a: np.ndarray) -> dict:
  mean, low, high = intervals.paired_difference(b, a)
  return {'mean': mean, 'low': low, 'high': high}
