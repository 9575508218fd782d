"""Unsupervised part extraction (paper §4.3)."""
from tf_partfash.parts.boxes import (CASES, PART_NAMES, Parts, box_iou, read_parts_csv,
                                     write_parts_csv)
from tf_partfash.parts.dataset import (compute_parts, format_scores, ensure_parts,
                                       lower_body_of, read_image, score_parts)
from tf_partfash.parts.extraction import extract_parts, foreground_mask
