"""Text subcommands: `seqgen generate` (byte LMs) and `seqgen translate` (ByteNet translation).

``ADDERS`` lists the argparse adders (``adder(subparsers)``), like
:data:`seqgen.cli_commands.ADDERS`.

Streaming: ``generate`` decodes ``--chunk`` bytes at a time and prints each
chunk as soon as it is decoded.  The models' ``generate`` starts a fresh
cache on every call, so each chunk re-reads its context (the prompt plus
what came before, at most ``max_length - chunk`` bytes for a Transformer,
the receptive field for a ByteNet) through the same compiled cached loop
before sampling the chunk's new bytes.  The text is therefore a function of
``(prompt, seed, chunk)``; it does not equal a single un-chunked call.
"""
from __future__ import annotations

import codecs
import pathlib
import sys

import numpy as np

from seqgen.errors import SeqgenError

_LM_KINDS = ("text",)


def load_text_run(run_dir, kinds=("text", "pairs")):
    """``(model, step, info)`` of a trained text run (EMA weights when tracked).

    ``info`` is the run's ``run.json`` plus ``trained_window``: the longest
    context the model saw in training (``data.window``), or None."""
    from seqgen.runs import Run

    run = Run(run_dir)
    info = run.info()
    kind = (info.get("data") or {}).get("kind")
    if kind not in kinds:
        raise SeqgenError(f"{run_dir}: a {kind} run; this needs a run trained on {' or '.join(kinds)} data")
    model, step, _ = run.load_model(use_ema=True, compile=False)
    try:
        window = int(run.config()["data"]["window"])
    except (KeyError, TypeError, ValueError, OSError):
        window = None
    return model, step, {**info, "trained_window": window}


def _usable_context(model, trained_window=None):
    """The positions a Transformer may use: ``min(max_length, trained_window)`` (positions
    past the training windows have untrained embeddings)."""
    length = int(model.max_length)
    return min(length, int(trained_window)) if trained_window else length


def _context_limit(model, chunk, trained_window=None):
    """Bytes of context re-read per chunk: a Transformer keeps every position it
    generates within :func:`_usable_context`."""
    if hasattr(model, "max_length"):
        return _usable_context(model, trained_window) - int(chunk)
    return max(1, int(model.receptive_field))


def generate_stream(model, prompt="", max_bytes=256, temperature=1.0, top_k=0, top_p=1.0, seed=0,
                    method="cached", chunk=None, write=None, trained_window=None):
    """Generate ``max_bytes`` bytes after ``prompt`` in chunks of ``chunk`` bytes.

    ``write(text)`` (if given) receives each decoded chunk as it is produced (UTF-8 decoded
    incrementally: a character split across chunks comes out whole).  Returns the generated
    text (without the prompt).  Stops early at EOS.  ``trained_window``: the training
    window of the run (see :func:`load_text_run`), which bounds the context.  ``chunk``
    None: 64 bytes, at most half the context a Transformer may use.
    """
    from seqgen.text import ByteCodec

    tok = ByteCodec()
    if chunk is None:
        chunk = 64
        if hasattr(model, "max_length"):
            chunk = max(1, min(chunk, _usable_context(model, trained_window) // 2))
    chunk = max(1, int(chunk))
    limit = _context_limit(model, chunk, trained_window)
    if limit < 1:
        raise SeqgenError(f"--chunk {chunk} is not smaller than the model's context "
                          f"(max_length {model.max_length}, trained on windows of {trained_window})")
    context = list(tok.encode(prompt))
    dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
    out, left, k = [], int(max_bytes), 0
    while left > 0:
        n = min(chunk, left)
        ctx = context[-limit:] if limit < len(context) else context
        ids = model.generate(np.asarray(ctx, np.int32) if ctx else None, max_new_tokens=n,
                             temperature=temperature, top_k=top_k, top_p=top_p, seed=int(seed) + 7919 * k,
                             method=method)[0]
        ids = [int(i) for i in ids]
        ended = model.eos_id in ids
        if ended:
            ids = ids[:ids.index(model.eos_id)]
        ids = [i for i in ids if i < 256]
        context.extend(ids)
        piece = dec.decode(bytes(ids), final=ended or left - n <= 0)
        out.append(piece)
        if write is not None and piece:
            write(piece)
        left -= n
        k += 1
        if ended:
            break
    return "".join(out)


def _cmd_generate(a):
    from seqgen.sampling import configure_threads

    configure_threads(a.threads)
    model, _, info = load_text_run(a.run, kinds=_LM_KINDS)

    def write(s):
        sys.stdout.write(s)
        sys.stdout.flush()

    write(a.prompt)
    generate_stream(model, a.prompt, a.max_bytes, a.temperature, a.top_k, a.top_p, a.seed, a.method, a.chunk,
                    write=write, trained_window=info["trained_window"])
    write("\n")


def add_generate(sub):
    from seqgen.cli_types import nonneg_float as _nonneg_float
    from seqgen.cli_types import positive_int as _positive_int

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


def _cmd_translate(a):
    from seqgen.evaluation import translate_texts
    from seqgen.sampling import configure_threads

    if a.input and a.text:
        raise SeqgenError("give TEXT or --input FILE, not both")
    if a.input:
        path = pathlib.Path(a.input)
        if not path.is_file():
            raise SeqgenError(f"--input {a.input}: no such file")
        texts = path.read_text(encoding="utf-8").splitlines()
    elif a.text:
        texts = list(a.text)
    else:
        texts = sys.stdin.read().splitlines()
    configure_threads(a.threads)
    model, _, _ = load_text_run(a.run, kinds=("pairs",))
    keep = [i for i, t in enumerate(texts) if t.strip()]
    hyps = translate_texts(model, [texts[i].strip() for i in keep], beam_size=a.beam)
    out = [""] * len(texts)
    for i, h in zip(keep, hyps):
        out[i] = h
    for line in out:
        print(line)


def add_translate(sub):
    from seqgen.cli_types import positive_int as _positive_int

    p = sub.add_parser("translate", help="translate text with a trained ByteNet (one line per input)",
                       description="Translate TEXT arguments, the lines of --input FILE, or stdin; prints one "
                                   "translation per line (empty input lines give empty lines).")
    p.add_argument("text", nargs="*", metavar="TEXT")
    p.add_argument("--run", required=True, metavar="RUN")
    p.add_argument("--input", metavar="FILE", help="one source sentence per line")
    p.add_argument("--beam", type=_positive_int, default=None, metavar="K", help="beam search (default: greedy)")
    p.add_argument("--threads", type=int, default=1, help="TensorFlow intra-op threads (0 = all cores)")
    p.set_defaults(func=_cmd_translate)


def evaluate_text(model, info, data, split="valid", beam=None, max_pairs=0, max_windows=0, cfg=None):
    """`seqgen evaluate` for text runs: bits/byte (LM) or BLEU / chrF (translation)."""
    from seqgen import evaluation

    kind = info["data"]["kind"]
    d = (cfg or {}).get("data", {})
    if kind == "text":
        return evaluation.lm_nll(model, data, split, window=int(d.get("window", 256)),
                                 batch_size=int(d.get("valid_batch_size", 16)), max_windows=max_windows,
                                 progress=True)
    res = evaluation.translation_scores(model, data, split, beam_size=beam, max_pairs=max_pairs)
    res.pop("hypotheses", None)
    return res


ADDERS = [add_generate, add_translate]
