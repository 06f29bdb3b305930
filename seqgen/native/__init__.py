"""Native (C) sampling loops, built on first use with the host's compiler and loaded with ctypes.

``method="native"`` runs the cached loop of a WaveNet (:mod:`.wavenet`), a Transformer decoder
(:mod:`.transformer`) or a ByteNet LM (:mod:`.bytenet`) here instead of in a compiled Keras while-loop:
the same conditioning, noise and sampler, with float32, bfloat16 or int8 weights (see ``README.md``).
Importing this package imports neither Keras nor a compiler.
"""
