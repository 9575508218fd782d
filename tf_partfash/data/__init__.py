"""Datasets in the Shopping100k on-disk layout: reader, splits, built-in synthetic data, tf.data pipeline."""
