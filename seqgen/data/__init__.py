"""What the models read: the shard schema and its records, manifests, audio features, tokenizers and the
input pipelines (grain and numpy: nothing here imports TensorFlow)."""
