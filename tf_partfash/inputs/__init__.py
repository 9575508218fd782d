"""The training input path: tf.data examples with their part boxes, and batch samplers."""
