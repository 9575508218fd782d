"""The training input path: a dataset made ready for a run (labels, split, parts), tf.data
examples with their part boxes, batch samplers, and the decoded-pixel cache."""
