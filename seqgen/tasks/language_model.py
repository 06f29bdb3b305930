"""Byte language models (Transformer decoder, ByteNet LM): held-out bits per byte and streamed generation.

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

import numpy as np

from seqgen.core.methods import CACHED, NATIVE
from seqgen.errors import SeqgenError
from seqgen.tasks.base import register_task
from seqgen.tasks.byte_task import LN2, ByteTask, lm_inputs, token_nll

def lm_nll(model, data_dir, split="valid", window=256, batch_size=16, max_windows=0, progress=False, context=0):
    """Bits per byte of a byte LM on consecutive non-overlapping windows of ``split``
    (the first ``max_windows`` of them; 0 = all).  With ``context`` > 0: on the overlapping windows of
    :func:`seqgen.data.windows.scoring_windows` instead, every byte but the first scored once with at least
    ``context`` bytes before it in its window (``max_windows`` then caps those windows).

    Returns ``{"bits_per_byte", "nats_per_byte", "num_bytes", "num_windows", "window", "context"}``.
    """
    from seqgen.data import pipeline as D

    window = min(int(window), int(getattr(model, "max_length", window)))
    if context:
        from seqgen.data.windows import scoring_windows

        data = np.asarray(D.load_bytes(data_dir, split)).astype(np.int32)
        plan = scoring_windows(len(data), window, int(context))[: int(max_windows) or None]
        rows = plan[:, :1] + np.arange(window + 1)[None]
        x, y = data[rows[:, :-1]], data[rows[:, 1:]].copy()
        y[np.arange(window)[None] < plan[:, 1:]] = model.pad_id   # targets an earlier window scored: not again
    else:
        x, y = D.byte_arrays(data_dir, split, window, int(max_windows) or None)
    x = lm_inputs(x, model.bos_id)
    total, count = 0.0, 0.0
    bar = None
    if progress:
        from seqgen.utils.progress import progress as pbar

        bar = pbar(total=int(y.size), desc=f"evaluate {split}", unit="B")
    for i in range(0, len(x), int(batch_size)):
        logits = model.predict_on_batch({"x": x[i:i + batch_size]})
        nll, w = token_nll(logits, y[i:i + batch_size], model.pad_id)
        total += float((nll * w).sum())
        count += float(w.sum())
        if bar is not None:
            bar.update(int(w.sum()))
    if bar is not None:
        bar.close()
    nats = total / max(count, 1.0)
    return {"bits_per_byte": nats / LN2, "nats_per_byte": nats, "num_bytes": int(count),
            "num_windows": int(len(x)), "window": int(window), "context": int(context)}




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
                    method=CACHED, chunk=None, write=None, trained_window=None, weight_dtype=None):
    """Generate ``max_bytes`` bytes after ``prompt`` in chunks of ``chunk`` bytes.

    ``write(text)`` (if given) receives each decoded chunk as it is produced (UTF-8 decoded
    incrementally: a character split across chunks comes out whole).  Returns the generated
    text (without the prompt).  Stops early at EOS.  ``trained_window``: the training
    window of the run (:attr:`LanguageModel.trained_window`), which bounds the context.  ``chunk``
    None: 64 bytes, at most half the context a Transformer may use.  ``method`` ``"native"`` (the cached
    loop in C) takes ``weight_dtype``.
    """
    from seqgen.data.tokenizers import ByteCodec

    if method not in model.METHODS:
        raise SeqgenError(f"--method {method}: a {type(model).__name__} generates with "
                          f"{', '.join(model.METHODS)}")
    native = {}
    if weight_dtype not in (None, "float32"):
        if method != NATIVE:
            raise SeqgenError(f"--weight-dtype {weight_dtype} is how the native loop stores the weights: add "
                              f"--method native")
        native = {"weight_dtype": weight_dtype}

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
                             method=method, **native)[0]
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


@register_task
class LanguageModel(ByteTask):
    """A byte language model run (Transformer decoder or ByteNet LM): bits per byte, generation."""

    kind = "text"
    verb = "generate"
    title = "byte language model"

    def evaluate(self, data=None, split="valid", max_windows=0, progress=True, context=0, window=None, **_) -> dict:
        """Bits per byte of ``split``: back-to-back windows of the run's ``data.window`` (or ``window``), or with
        ``context`` the overlapping windows that score every byte once with that much context
        (:func:`lm_nll`)."""
        dcfg = self.config().get("data", {})
        return lm_nll(self.model, self.data_dir(data), split, int(window or dcfg.get("window", 256)),
                      int(dcfg.get("valid_batch_size", 16)), max_windows=int(max_windows), progress=progress,
                      context=int(context))

    def generate(self, prompt="", max_bytes=256, temperature=1.0, top_k=0, top_p=1.0, seed=0, method=CACHED,
                 chunk=None, write=None, weight_dtype=None) -> str:
        """The continuation of ``prompt`` (str, or bytes taken as they are), streamed to ``write``."""
        return generate_stream(self.model, prompt, max_bytes, temperature, top_k, top_p, seed, method, chunk,
                               write=write, trained_window=self.trained_window, weight_dtype=weight_dtype)


    # ------------------------------------------------------------ training side
    @classmethod
    def _split_sizes(cls, splits):
        return {"num_bytes": {s: int(v.get("num_bytes", 0)) for s, v in splits.items()}}

    @classmethod
    def model_kwargs(cls, model_type, model_cfg, data_info) -> dict:
        kwargs = super().model_kwargs(model_type, model_cfg, data_info)
        if model_type == "bytenet_lm":
            kwargs["encoder"] = False
        return kwargs

    @classmethod
    def train_dataset(cls, model, data_dir, data_cfg, seed, shard=(0, 1)):
        """Random byte windows of ``data.window`` bytes whose first input is BOS."""
        from seqgen.data import pipeline as D

        ds = D.byte_lm_dataset(data_dir, "train", int(data_cfg["window"]), int(data_cfg["batch_size"]), seed=seed)
        bos = model.bos_id
        return D.batches_for_fit(ds.map(lambda batch: ({"x": lm_inputs(batch[0], bos)}, batch[1])))

    @classmethod
    def held_out(cls, model, data_dir, split, data_cfg, max_windows=0, progress=False):
        return lm_nll(model, data_dir, split, int(data_cfg.get("window", 256)), int(data_cfg.get("valid_batch_size", 16)),
                      max_windows=int(max_windows), progress=progress)

    # ------------------------------------------------------------ recipe
    @classmethod
    def run_recipe(cls, recipe) -> dict:
        """prepare -> train -> a generated continuation of ``sample.prompt`` -> bits per byte."""
        import time

        data_dir, run_dir, summary = recipe.prepare_and_train(cls.kind)

        recipe.stage(3, "generate a sample")
        sconf = recipe.sample_conf
        lm = cls(run_dir)
        prompt = str(sconf.get("prompt", ""))
        t1 = time.time()
        gen = lm.generate(prompt, int(sconf.get("max_bytes", 256)), temperature=float(sconf.get("temperature", 1.0)),
                          seed=int(sconf.get("seed", 0)))
        gen_seconds = time.time() - t1
        (recipe.work / "sample.txt").write_text(prompt + gen + "\n", encoding="utf-8")

        recipe.stage(4, "evaluate on the valid split")
        metrics = lm.evaluate(data_dir, "valid")
        metrics.update({"step": lm.step, "split": "valid", "model_type": lm.config()["model"]["type"],
                        "bytes_per_sec": len(gen.encode()) / max(gen_seconds, 1e-9)})
        recipe.finish(metrics, [("sample", recipe.work / "sample.txt"),
                                ("metrics", f"{recipe.work / 'metrics.json'}  (valid {metrics['bits_per_byte']:.3f} "
                                            f"bits/byte at step {lm.step})"),
                                ("run", f"{run_dir}  (seqgen generate --run {run_dir} --prompt TEXT)")])
        return {"metrics": metrics, "sample": prompt + gen, "train": summary}
