"""`seqgen generate`: text from a trained byte language model, streamed chunk by chunk."""
from __future__ import annotations

import os
import sys

from seqgen.core.methods import CACHED, NAIVE, NATIVE


def _cmd_generate(a):
    from seqgen.tasks.base import load
    from seqgen.utils.threads import configure_threads

    configure_threads(a.threads)
    lm = load(a.run, verb="generate")
    # These are byte models: a prompt that is not valid UTF-8 (the shell passes its bytes through as
    # surrogate escapes) is taken as the bytes it is.
    prompt = os.fsencode(a.prompt)

    def write(s):
        sys.stdout.write(s)
        sys.stdout.flush()

    sys.stdout.flush()
    sys.stdout.buffer.write(prompt)
    sys.stdout.buffer.flush()
    lm.generate(prompt, a.max_bytes, a.temperature, a.top_k, a.top_p, a.seed, a.method, a.chunk, write=write,
                weight_dtype=a.weight_dtype)
    write("\n")


def add(sub):
    from seqgen.cli.types import nonneg_float as _nonneg_float
    from seqgen.cli.types import positive_int as _positive_int

    p = sub.add_parser("generate", help="generate text from a trained byte language model",
                       description="Print the prompt and its continuation, streamed in chunks of --chunk bytes "
                                   "(each chunk re-reads its context through the cached decoder).")
    p.add_argument("--run", required=True, metavar="RUN")
    p.add_argument("--prompt", default="", metavar="TEXT")
    p.add_argument("--max-bytes", type=_positive_int, default=256, help="bytes to generate (default 256)")
    p.add_argument("--temperature", type=_nonneg_float, default=1.0, help="0 = greedy (default 1)")
    p.add_argument("--top-k", type=int, default=0, help="sample from the k most likely bytes (0 = off)")
    p.add_argument("--top-p", type=_nonneg_float, default=1.0, help="nucleus mass (1 = off)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--method", choices=[CACHED, NAIVE, NATIVE], default=CACHED,
                   help="cached: key/value cache or conv queues (default); naive: full recompute per byte; "
                        "native: the same cached loop in C (compiled on first use), faster")
    p.add_argument("--weight-dtype", choices=["float32", "bfloat16", "int8"], default=None,
                   help="--method native: how the loop stores the weight matrices (default float32; the "
                        "arithmetic stays float32)")
    p.add_argument("--chunk", type=_positive_int, default=None,
                   help="bytes per streamed chunk (default 64, at most half the context the model was trained on)")
    p.add_argument("--threads", type=int, default=1, help="TensorFlow intra-op threads (0 = all cores)")
    p.set_defaults(func=_cmd_generate)
