"""Evaluation (paper §7): queries, metrics, scoring with bootstrap intervals, reports beside the
published numbers, test accuracy, and the protocols (`tf_partfash.protocols`)."""
