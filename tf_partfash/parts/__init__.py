"""Unsupervised part extraction (paper §4.3) and its regression form (§7.5)."""
from tf_partfash.parts.boxes import (CASES, PART_NAMES, Parts, box_iou, read_parts_csv,
                                     write_parts_csv)
from tf_partfash.parts.dataset import (compute_parts, ensure_part_regressor, ensure_parts,
                                       format_scores, is_cut_out, lower_body_of, read_image,
                                       regressor_file, regressor_sample, score_parts,
                                       teach_part_regressor)
from tf_partfash.parts.extraction import extract_parts, foreground_mask
from tf_partfash.parts.regression import PartRegressor
