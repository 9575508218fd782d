r"""Two part extractions of the same images against the true parts, paired (§4.3 against §7.5).

  python scripts/compare_part_extractors.py D/parts_truth.csv \
      D/parts_v1_from_image.csv D/parts_v1_regression_v3_<digest>_from_image.csv [--output_json F]

For the images all three files hold: the case accuracy of A and of B with 95 % bootstrap
intervals over images, and B minus A, paired; then per part, over the images where the truth and
both extractions have it, the mean IoU with the true box of A and of B and B minus A, paired
(`evaluation.intervals`). The parts caches of a dataset prepared for a run sit beside its split
(gallery and query images: `*_from_image.csv`, the image alone decides the case).
"""
from __future__ import annotations

import argparse
import json

from tf_partfash.evaluation.paired import paired_extractions
from tf_partfash.parts import read_parts_csv


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('truth')
  parser.add_argument('a', help='parts CSV of extraction A (e.g. jump detection)')
  parser.add_argument('b', help='parts CSV of extraction B (e.g. the regressor)')
  parser.add_argument('--output_json')
  args = parser.parse_args()
  result = paired_extractions(read_parts_csv(args.truth), read_parts_csv(args.a), read_parts_csv(args.b))
  interval = lambda r, scale=1, digits=3: (f'[{scale * r["low"]:+.{digits}f}, '
                                           f'{scale * r["high"]:+.{digits}f}]')
  case = result['case']
  print(f'{result["images"]} images; A: {args.a}; B: {args.b}')
  print(f'case accuracy  A {100 * case["a"]["mean"]:.2f}% [{100 * case["a"]["low"]:.2f}, '
        f'{100 * case["a"]["high"]:.2f}]  B {100 * case["b"]["mean"]:.2f}% '
        f'[{100 * case["b"]["low"]:.2f}, {100 * case["b"]["high"]:.2f}]  B - A '
        f'{100 * case["b_minus_a"]["mean"]:+.2f} points {interval(case["b_minus_a"], 100, 2)}; '
        f'same case {100 * result["case_agreement"]:.1f}%')
  print(f'{"part":<13} {"images":>7} {"IoU A":>6} {"IoU B":>6} {"B - A":>7}  95 % interval')
  for part, r in result['iou'].items():
    print(f'{part:<13} {r["images"]:>7} {r["a"]:>6.3f} {r["b"]:>6.3f} '
          f'{r["b_minus_a"]["mean"]:>+7.3f}  {interval(r["b_minus_a"])}')
  if args.output_json:
    with open(args.output_json, 'w', encoding='utf-8') as f:
      json.dump(result, f, indent=1)


if __name__ == '__main__':
  main()
