"""Backend-agnostic maths (``keras.ops`` only): the decoding protocol, samplers, beam search,
output distributions and mu-law.  Nothing here imports TensorFlow."""
