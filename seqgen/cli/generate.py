"""`seqgen generate`: text from a trained byte language model, streamed chunk by chunk."""
from __future__ import annotations

import sys

from seqgen.tasks.language_model import generate_stream, load_text_run

_LM_KINDS = ("text",)


def _cmd_generate(a):
    from seqgen.utils.threads import configure_threads

    configure_threads(a.threads)
    model, _, info = load_text_run(a.run, kinds=_LM_KINDS)

    def write(s):
        sys.stdout.write(s)
        sys.stdout.flush()

    write(a.prompt)
    generate_stream(model, a.prompt, a.max_bytes, a.temperature, a.top_k, a.top_p, a.seed, a.method, a.chunk,
                    write=write, trained_window=info["trained_window"])
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
    p.add_argument("--method", choices=["cached", "naive"], default="cached",
                   help="cached: key/value cache or conv queues (default); naive: full recompute per byte")
    p.add_argument("--chunk", type=_positive_int, default=None,
                   help="bytes per streamed chunk (default 64, at most half the context the model was trained on)")
    p.add_argument("--threads", type=int, default=1, help="TensorFlow intra-op threads (0 = all cores)")
    p.set_defaults(func=_cmd_generate)
