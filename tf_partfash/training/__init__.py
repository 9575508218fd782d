"""Training (paper §4.4-4.5, §6): the losses (Eq. 1-3), each method's objective, the two-stage
trainer with its checkpoints, tf.distribute strategies, and a whole run as train.py starts it."""
