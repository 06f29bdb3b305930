"""What the models read: the shard schema, manifests, audio features, tokenizers and the input pipelines.

``pipeline`` (tf.data) is the only TensorFlow module here; it is imported only when used."""
