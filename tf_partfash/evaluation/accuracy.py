"""Test accuracy of a trained run (what train.py reports at its end): per attribute, beside the
majority-class rate, from the same forward pass that writes the test images' index."""
from __future__ import annotations

import logging
import os

import keras
import numpy as np

from tf_partfash.attributes import ATTRIBUTE_NAMES, MISSING, SPECIAL_ATTRIBUTES
from tf_partfash.inputs.prepared import PreparedData
from tf_partfash.search.trained_run import TrainedRun
from tf_partfash.storage import atomic
from tf_partfash.storage.workdir import ACCURACY_FILE, RunConfig


def report_test_accuracy(workdir: str, run: RunConfig, model: keras.Model,
                         data: PreparedData) -> dict[str, dict[str, float]]:
  """Indexes the test images (the index evaluate.py and search.py read), scores the predicted
  attributes, writes accuracy.json and logs the table."""
  index = TrainedRun(workdir, run, model, data).index('test')
  train_rows, test_rows = data.rows('train'), index.rows
  table = accuracy_table(data.examples.labels[test_rows], index.probabilities,
                         data.examples.labels[train_rows], index.case_probabilities,
                         data.label_case[test_rows], data.label_case[train_rows])
  atomic.write_json(os.path.join(workdir, ACCURACY_FILE), table)
  logging.info('test accuracy (%d images):\n%s', len(test_rows), format_accuracy(table))
  return table


def _scores(truth: np.ndarray, predicted: np.ndarray, train: np.ndarray) -> dict[str, float] | None:
  valid = truth != MISSING
  train = train[train != MISSING]
  if not valid.any() or not len(train):
    return None
  majority = np.bincount(train).argmax()
  return {'accuracy': float((predicted[valid] == truth[valid]).mean()),
          'majority': float((truth[valid] == majority).mean()), 'count': int(valid.sum())}


def accuracy_table(labels: np.ndarray, probabilities: dict[str, np.ndarray],
                   train_labels: np.ndarray, case_probabilities: np.ndarray | None = None,
                   case: np.ndarray | None = None,
                   train_case: np.ndarray | None = None) -> dict[str, dict[str, float]]:
  """Per attribute: accuracy on labelled images, the majority-class rate, and the count.

  `probabilities` (attribute -> (N, K)) and `case_probabilities` ((N, 3), the "Extract Parts?"
  head's) are the model's, for the images of `labels`. The majority class is the most frequent
  label in the training set, so the rate is what a network that ignored the image would score on
  these images. With `case` (part extraction's case index per image), the head is scored the same
  way as `extract_parts`.
  """
  table = {}
  for j, name in enumerate(ATTRIBUTE_NAMES):
    row = _scores(labels[:, j], probabilities[name].argmax(axis=1), train_labels[:, j])
    if row:
      table[name] = row
  if case is not None and train_case is not None and case_probabilities is not None:
    table['extract_parts'] = _scores(case, case_probabilities.argmax(axis=1), train_case)
  return table


def format_accuracy(table: dict[str, dict[str, float]]) -> str:
  lines = [f'{"attribute":<11} {"accuracy":>8} {"majority":>8} {"images":>7}']
  for name in ATTRIBUTE_NAMES + ('extract_parts',):
    if name in table:
      row = table[name]
      mark = '*' if name in SPECIAL_ATTRIBUTES else ' '
      lines.append(f'{name + mark:<11} {100 * row["accuracy"]:7.1f}% {100 * row["majority"]:7.1f}%'
                   f' {row["count"]:7d}')
  special = [table[n]['accuracy'] for n in SPECIAL_ATTRIBUTES if n in table]
  if special:
    lines.append(f'mean of the special attributes (*): {100 * sum(special) / len(special):.1f}%')
  return '\n'.join(lines)
