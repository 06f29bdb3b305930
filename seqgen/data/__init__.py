"""What the models read: the shard schema and its records, manifests, audio features, tokenizers and the
input pipelines.

Vocoder and byte-LM data are read with grain and numpy (no TensorFlow); ``pipeline.pairs_dataset``
(tf.data) still imports TensorFlow, when used."""
