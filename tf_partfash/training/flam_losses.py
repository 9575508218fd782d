"""FLAM's losses (Shin et al., paper 003, §3): pure functions of tensors, usable in `tf.function`.

FLAM manipulates a frozen feature x of a retrieval model. Attribute-specific embedders φ_a map x to
e_a ∈ R^k and learn, with a dictionary vector d_a per class, a cosine triplet loss (Eq. 1-2); a
generator G(x ⊕ e_a⁻) -> x̃ learns against a discriminator D with a real/fake branch (Eq. 3) and a
feature-matching branch taught by the embedders (Eq. 4), and a cycle G(G(x, e⁻), e) ≈ x (Eq. 5).
Labels are int tensors with -1 for a missing label; negatives are chosen outside these functions
(`online_negatives`, or the caller), so each function is a fixed formula with golden values.
"""
from __future__ import annotations

import tensorflow as tf


def cosine_distance(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
  """1 - cos(a, b) along the last axis: `dist` of Eq. 1."""
  a, b = tf.math.l2_normalize(a, -1), tf.math.l2_normalize(b, -1)
  return 1.0 - tf.reduce_sum(a * b, -1)


def triplet(anchor: tf.Tensor, positive: tf.Tensor, negative: tf.Tensor,
            margin: float) -> tf.Tensor:
  """Eq. 1 per row: max(0, dist(f, f⁺) - dist(f, f⁻) + μ), cosine distances."""
  return tf.nn.relu(cosine_distance(anchor, positive) - cosine_distance(anchor, negative) + margin)


def _norm(d: tf.Tensor) -> tf.Tensor:
  """The Euclidean norm along the last axis, with a finite gradient at 0 (G starts as the
  identity, so x - G(G(x, e⁻), e) is 0 at first)."""
  return tf.sqrt(tf.reduce_sum(tf.square(d), -1) + 1e-12)


def _masked_mean(values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
  mask = tf.cast(mask, values.dtype)
  return tf.math.divide_no_nan(tf.reduce_sum(values * mask), tf.reduce_sum(mask))


def embedding_loss(embeddings: tf.Tensor, labels: tf.Tensor, dictionary: tf.Tensor,
                   negative_rows: tf.Tensor, negative_classes: tf.Tensor,
                   margin: float) -> tf.Tensor:
  """Eq. 2 for one attribute: ℓ(d_a, e_a⁺, e_a⁻) + ℓ(e_a, d_a⁺, d_a⁻), averaged over the rows that
  have a label and a negative.

  `embeddings` (B, k) are φ_a of the batch, `labels` (B,) their classes (-1: unlabelled, no term:
  the embedders learn from labelled images only), `dictionary` (C, k) the class vectors d_a.
  Row i's first term anchors its class vector d[y_i], with its own embedding as positive and row
  `negative_rows[i]` (another class; -1: none) as negative; the second anchors e_i, with d[y_i] as
  positive and d[`negative_classes[i]`] (a class ≠ y_i) as negative.
  """
  labels = tf.cast(labels, tf.int32)
  negative_rows = tf.cast(negative_rows, tf.int32)
  valid = (labels >= 0) & (negative_rows >= 0)
  own = tf.gather(dictionary, tf.maximum(labels, 0))
  first = triplet(own, embeddings, tf.gather(embeddings, tf.maximum(negative_rows, 0)), margin)
  second = triplet(embeddings, own, tf.gather(dictionary, tf.cast(negative_classes, tf.int32)),
                   margin)
  return _masked_mean(first + second, valid)


def discriminator_adversarial_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
  """Eq. 3 for D, maximising E[log D(x)] + E[log(1 - D(x̃))]: as binary cross entropies."""
  bce = tf.nn.sigmoid_cross_entropy_with_logits
  return (tf.reduce_mean(bce(tf.ones_like(real_logits), real_logits))
          + tf.reduce_mean(bce(tf.zeros_like(fake_logits), fake_logits)))


def generator_adversarial_loss(fake_logits: tf.Tensor) -> tf.Tensor:
  """Eq. 3 for G in the non-saturating form GANs train with: -E[log D(x̃)]."""
  return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(tf.ones_like(fake_logits),
                                                                 fake_logits))


def matching_target(embeddings: tf.Tensor, target: tf.Tensor, wanted: tf.Tensor,
                    remaining: bool = True) -> tf.Tensor:
  """What D's matching branch should output (Eq. 4): the target attribute's block replaced by
  `wanted`, then, with `remaining`, every other attribute's own embedding.

  `embeddings` (B, n, k) are φ of the n manipulated attribute types of x, `target` (B,) the index
  of each row's target attribute, `wanted` (B, k) its wanted embedding (φ_a(x⁻) for a fake, φ_a(x)
  for a real x). Without `remaining` (Table 3's "S"): only `wanted`, (B, k). Else (B, n·k), the
  blocks in attribute order (a fixed order, equal to Eq. 4's target-first one up to a permutation).
  """
  if not remaining:
    return wanted
  n = tf.shape(embeddings)[1]
  is_target = tf.one_hot(tf.cast(target, tf.int32), n, dtype=embeddings.dtype)[:, :, None]
  blocks = is_target * wanted[:, None, :] + (1.0 - is_target) * embeddings
  return tf.reshape(blocks, [tf.shape(blocks)[0], -1])


def matching_loss(predicted: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
  """One term of Eq. 4: E‖f(·) - target‖, the Euclidean norm averaged over the batch."""
  return tf.reduce_mean(_norm(predicted - target))


def cycle_loss(x: tf.Tensor, recovered: tf.Tensor) -> tf.Tensor:
  """Eq. 5: E‖x - G(G(x, e⁻), e)‖, the Euclidean norm averaged over the batch."""
  return tf.reduce_mean(_norm(x - recovered))


def cycle_similarity(x: tf.Tensor, recovered: tf.Tensor) -> tf.Tensor:
  """The mean cosine similarity of x and x̂ = G(G(x, e⁻), e): FLAM's measure of convergence."""
  return tf.reduce_mean(1.0 - cosine_distance(x, recovered))


def nearest_classes(embeddings: tf.Tensor, dictionary: tf.Tensor) -> tf.Tensor:
  """(B,) the class whose dictionary vector is nearest (cosine) to each (B, k) embedding: the
  embedder as a pseudo-labeller of unlabelled images."""
  similarity = tf.linalg.l2_normalize(embeddings, -1) @ tf.transpose(
      tf.linalg.l2_normalize(dictionary, -1))
  return tf.argmax(similarity, axis=-1, output_type=tf.int32)


def online_negatives(classes: tf.Tensor, embeddings: tf.Tensor, target: tf.Tensor,
                     online: bool, seed: tf.Tensor) -> tf.Tensor:
  """(B,) the row of x⁻ in the batch for each row x: a row whose class of the target attribute
  differs (-1 where none does).

  `classes` (B, n) each row's class (label or pseudo-label) per attribute type, `embeddings`
  (B, n, k) its embeddings, `target` (B,) the target attribute of each row. With `online` (FLAM
  §4.1's online sampling), the candidate nearest to x in the remaining attributes (the sum of
  their cosine distances) is taken, so x⁻ shares x's other attributes as far as the batch allows;
  without, a candidate drawn uniformly (stateless, from `seed`, shape (2,)).
  """
  target = tf.cast(target, tf.int32)
  n = tf.shape(classes)[1]
  own = tf.gather(classes, target, axis=1, batch_dims=1)                      # (B,)
  theirs = tf.gather(classes, target, axis=1)                                 # (B, B): [i, j]
  candidate = tf.not_equal(tf.transpose(theirs), own[:, None])               # j differs from i
  if online:
    unit = tf.math.l2_normalize(embeddings, -1)
    distance = 1.0 - tf.einsum('ink,jnk->ijn', unit, unit)                    # (B, B, n)
    remain = 1.0 - tf.one_hot(target, n, dtype=distance.dtype)               # (B, n)
    score = -tf.reduce_sum(distance * remain[:, None, :], -1)
  else:
    score = tf.random.stateless_uniform(tf.shape(candidate), seed)
  score = tf.where(candidate, score, tf.fill(tf.shape(score), -float('inf')))
  chosen = tf.argmax(score, axis=-1, output_type=tf.int32)
  return tf.where(tf.reduce_any(candidate, -1), chosen, -1)
