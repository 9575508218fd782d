"""Unsupervised part extraction (paper §4.3)."""
from tf_partfash.parts.boxes import CASES, PART_NAMES, Parts, box_iou, read_parts_csv, write_parts_csv
