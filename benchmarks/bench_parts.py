"""Part extraction speed (§4.3, §7.6: the paper's method takes about 0.1 s per image).

  python benchmarks/bench_parts.py [--sample_dir DIR] [--synthetic_dir DIR] [--repeats N]
      [--regressor part_regressor.npz] [--output_json parts_speed.json]

Prints, per image set, milliseconds per image of `extract_parts` on the decoded 762x1100 array
(decode excluded; smaller synthetic images are upscaled to that size first) as CPU time on one
core (`cv2.setNumThreads(1)`, one BLAS thread; CPU time is less inflated than wall time by other
processes sharing the machine) and as wall time, plus the decode times of the files: a full
decode and the reduced (DCT-scaled) decode that `compute_parts` uses. With `--regressor` (§7.5),
the regressor's extraction is timed too, alternating with jump detection pass by pass, and the
ratio of their CPU times printed.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import time

os.environ.setdefault('OMP_NUM_THREADS', '1')  # one core: the regressor's matrix products too

import cv2

from tf_partfash.parts import PartRegressor, extract_parts, read_image
from tf_partfash.parts.extraction import WORK_HEIGHT


def _per_image_ms(fns, items, repeats: int) -> list[tuple[float, float]]:
  """Per function of `fns`, (CPU ms, wall ms) per call on each item: the best of `repeats` passes
  over the items, the functions' passes alternating so that they share the machine's state."""
  for fn in fns:  # warm-up
    for item in items:
      fn(item)
  cpu, wall = [[] for _ in fns], [[] for _ in fns]
  for _ in range(repeats):
    for k, fn in enumerate(fns):
      c0, w0 = time.process_time(), time.perf_counter()
      for item in items:
        fn(item)
      cpu[k].append((time.process_time() - c0) / len(items))
      wall[k].append((time.perf_counter() - w0) / len(items))
  return [(1e3 * min(c), 1e3 * min(w)) for c, w in zip(cpu, wall)]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  # The real sample is found as the tests find it: $TF_PARTFASH_SHOPPING100K, else
  # ../shared/shopping100k beside the repository.
  shared = os.environ.get('TF_PARTFASH_SHOPPING100K') or os.path.join(
      os.path.dirname(os.path.dirname(os.path.abspath(__file__))), '..', 'shared', 'shopping100k')
  parser.add_argument('--sample_dir', default=os.path.join(shared, 'sample'),
                      help='dataset with real Shopping100k images (Images/**.jpg)')
  parser.add_argument('--synthetic_dir', help='synthetic dataset (Images/**.jpg), e.g. the '
                      "demo's under $TF_PARTFASH_CACHE (default ~/.cache/tf_partfash)")
  parser.add_argument('--max_images', type=int, default=100)
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--regressor', help='a part regressor (.npz) to time beside jump detection')
  parser.add_argument('--output_json')
  args = parser.parse_args()
  cv2.setNumThreads(1)
  regressor = PartRegressor.load(args.regressor) if args.regressor else None
  fns = [extract_parts] + ([regressor.extract] if regressor else [])
  records = []
  print(f'{"images":<12} {"n":>4} {"file size":>10} {"extract CPU":>12} {"extract wall":>13} '
        f'{"full decode":>12} {"reduced decode":>15}'
        + (f' {"regression CPU":>15} {"regression/jumps":>17}' if regressor else ''))
  for name, data_dir in (('real sample', args.sample_dir), ('synthetic', args.synthetic_dir)):
    if data_dir is None:
      print(f'{name:<12} skipped: give --synthetic_dir')
      continue
    files = sorted(glob.glob(os.path.join(data_dir, 'Images', '**', '*.jpg'),
                             recursive=True))[:args.max_images]
    if not files:
      print(f'{name:<12} no images under {data_dir}/Images')
      continue
    sizes = {f'{im.shape[1]}x{im.shape[0]}' for im in map(read_image, files)}
    # The budget is for the real size: extraction's cost is mostly the downscaling.
    images = [cv2.resize(read_image(f), (762, 1100), interpolation=cv2.INTER_LINEAR) for f in files]
    timed = _per_image_ms(fns, images, args.repeats)
    (extract_cpu, extract_wall), regression = timed[0], timed[1:]
    (full_cpu, _), = _per_image_ms([read_image], files, 1)
    (reduced_cpu, _), = _per_image_ms([lambda f: read_image(f, WORK_HEIGHT)], files, 1)
    record = {'images': name, 'n': len(files), 'jumps_cpu_ms': extract_cpu,
              'jumps_wall_ms': extract_wall, 'full_decode_ms': full_cpu,
              'reduced_decode_ms': reduced_cpu}
    line = (f'{name:<12} {len(files):>4} {",".join(sorted(sizes)):>10} {extract_cpu:>9.2f} ms '
            f'{extract_wall:>10.2f} ms {full_cpu:>9.2f} ms {reduced_cpu:>12.2f} ms')
    if regression:
      record.update(regression_cpu_ms=regression[0][0], regression_wall_ms=regression[0][1],
                    ratio_regression_to_jumps=regression[0][0] / extract_cpu)
      line += f' {regression[0][0]:>12.2f} ms {record["ratio_regression_to_jumps"]:>16.2f}x'
    print(line)
    records.append(record)
  print('budget: 3 ms per 762x1100 image on one core; paper: 100 ms')
  if args.output_json:
    with open(args.output_json, 'w', encoding='utf-8') as f:
      json.dump(records, f, indent=1)


if __name__ == '__main__':
  main()
