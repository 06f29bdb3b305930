"""The loss a model returns from ``compute_loss`` when training is data-parallel.

Under ``tf.distribute`` Keras sums the replicas' gradients, and its built-in
losses divide their per-replica mean by the number of replicas so that the sum
is the gradient of the mean over the global batch.  Our models compute their
own loss, so they do the same here.  On one device (and on JAX) this is the
identity.
"""
from __future__ import annotations

import keras


def per_replica_share(loss):
    """``loss`` (a mean over this replica's batch) divided by the replicas in sync."""
    if keras.backend.backend() != "tensorflow":
        return loss
    import tensorflow as tf  # the TensorFlow backend is in use: it is imported already

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas == 1:
        return loss
    return loss * keras.ops.cast(1.0 / replicas, loss.dtype)
