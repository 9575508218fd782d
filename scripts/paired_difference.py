r"""Paired top-k difference between two evaluate.py results files scored on the same queries.

  python scripts/paired_difference.py runs/demo/results_paper_squared.json \
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

from tf_partfash.evaluation.paired import paired_results


def _load(file: str) -> dict:
  with open(file, encoding='utf-8') as f:
    return json.load(f)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('a', help='results.json A')
  parser.add_argument('b', help='results.json B (the difference is B - A)')
  parser.add_argument('--k', type=int, default=20)
  parser.add_argument('--output_json')
  args = parser.parse_args()
  a, b = _load(args.a), _load(args.b)
  try:
    rows = paired_results(a, b, args.k)
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
