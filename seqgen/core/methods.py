"""The names of the generation methods (no Keras import: the CLI lists them in its --help).

* ``CACHED``: one incremental step per position (WaveNet's queues, the Transformer's key/value
  cache, ByteNet's queues) inside one compiled loop;
* ``NAIVE``: the reference: the whole receptive field or prefix recomputed for every position;
* ``NAIVE_CONV``: WaveNet's recompute by one full-sequence convolution per sample (the fastest
  naive way, the bench's baseline);
* ``PARALLEL``: the Parallel WaveNet student, every time step in one pass per flow;
* ``NATIVE``: WaveNet's cached loop run in C (``seqgen.native``), float32 or bfloat16 weights.
"""
CACHED, NAIVE, NAIVE_CONV, PARALLEL, NATIVE = "cached", "naive", "naive-conv", "parallel", "native"
