r"""Paired top-k difference between two evaluate.py results files scored on the same queries.

  python benchmarks/paired_difference.py runs/demo/results_paper_squared.json \
      runs/demo/results_paper.json [--k 20] [--output_json diff.json]

For every run the two files share (matched by workdir; with none in common, in order) and every
setting, prints B's top-k minus A's, in points, with its 95 % paired bootstrap interval over the
queries (`evaluation.intervals`): for example the same model searched with two distances, or two
models on the same query file.
The files must have been written on the same query file (results.json `query_file`).
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from tf_partfash.evaluation import intervals


def _load(file: str) -> dict:
  with open(file, encoding='utf-8') as f:
    return json.load(f)


def paired(a: dict, b: dict, k: int) -> list[dict]:
  """Per shared run and setting: A's and B's top-k and B - A with its interval."""
  if a['query_file'] != b['query_file']:
    raise ValueError(f'the files were scored on other queries: {a["query_file"]} and '
                     f'{b["query_file"]}')
  by_workdir = {r['workdir']: r for r in b['runs']}
  if any(r['workdir'] in by_workdir for r in a['runs']):
    pairs = [(r, by_workdir[r['workdir']]) for r in a['runs'] if r['workdir'] in by_workdir]
  elif len(a['runs']) == len(b['runs']):  # e.g. one model copied to another workdir
    pairs = list(zip(a['runs'], b['runs']))
  else:
    raise ValueError(f'no workdir in common and {len(a["runs"])} runs against '
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


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('a', help='results.json A')
  parser.add_argument('b', help='results.json B (the difference is B - A)')
  parser.add_argument('--k', type=int, default=20)
  parser.add_argument('--output_json')
  args = parser.parse_args()
  a, b = _load(args.a), _load(args.b)
  try:
    rows = paired(a, b, args.k)
  except ValueError as e:
    sys.exit(f'paired_difference.py: error: {e}')
  describe = lambda blob: ', '.join(f'{key}={blob[key]}' for key in ('distance', 'hit_attributes')
                                    if key in blob)
  print(f'A: {args.a} ({describe(a)})\nB: {args.b} ({describe(b)})')
  print(f'{"run":<24} {"setting":<12} {"queries":>7} {"A":>6} {"B":>6}  B - A [95 % interval]')
  for r in rows:
    low, high = r['ci95']
    print(f'{r["name"]:<24} {r["setting"]:<12} {r["queries"]:>7} '
          f'{100 * r[f"top{args.k}_a"]:>6.1f} {100 * r[f"top{args.k}_b"]:>6.1f}  '
          f'{100 * r["b_minus_a"]:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]')
  if args.output_json:
    with open(args.output_json, 'w', encoding='utf-8') as f:
      json.dump({'a': args.a, 'b': args.b, 'k': args.k, 'rows': rows}, f, indent=1)


if __name__ == '__main__':
  main()
