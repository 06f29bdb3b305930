"""Translation (ByteNet encoder-decoder): teacher-forced bits per target byte, decoding, BLEU and chrF."""
from __future__ import annotations

import pathlib

import numpy as np

from seqgen.errors import SeqgenError
from seqgen.tasks.base import register_task
from seqgen.tasks.byte_task import LN2, ByteTask, pad_to, pad_to_bucket, token_nll

def pairs_nll(model, data_dir, split="valid", batch_size=16, max_length=256, max_batches=0):
    """Teacher-forced NLL of the targets of ``split`` (bits per target byte, EOS included).

    Returns ``{"bits_per_byte", "nats_per_byte", "num_bytes", "num_pairs"}``.
    """
    from seqgen.data import pipeline as D

    ds = D.pairs_dataset(data_dir, split, int(batch_size), int(max_length), shuffle=False, repeat=False)
    total, count, pairs = 0.0, 0.0, 0
    for k, (inputs, target) in enumerate(ds):
        if max_batches and k >= max_batches:
            break
        feed = {"source": pad_to_bucket(inputs["source"], model.pad_id),
                "target_in": pad_to_bucket(inputs["target_in"], model.pad_id)}
        y = pad_to_bucket(target, model.pad_id)
        nll, w = token_nll(model.predict_on_batch(feed), y, model.pad_id)
        total += float((nll * w).sum())
        count += float(w.sum())
        pairs += int(y.shape[0])
    if not pairs:
        from seqgen.errors import DataError

        raise DataError(f"{data_dir}: the '{split}' split has no pairs of at most {max_length} bytes")
    nats = total / max(count, 1.0)
    return {"bits_per_byte": nats / LN2, "nats_per_byte": nats, "num_bytes": int(count), "num_pairs": pairs}


def translate_texts(model, texts, beam_size=None, batch_size=32, tokenizer=None, length_penalty=None):
    """Translate source strings (greedy, or beam search with ``beam_size``); returns strings in order.

    Sources are sorted by length and decoded in batches so that similar lengths share a
    compiled function."""
    from seqgen.data.tokenizers import ByteCodec

    tok = tokenizer or ByteCodec()
    enc = [tok.encode(t) for t in texts]
    order = sorted(range(len(enc)), key=lambda i: len(enc[i]))
    out = [""] * len(enc)
    for i in range(0, len(order), int(batch_size)):
        idx = order[i:i + batch_size]
        kwargs = {} if length_penalty is None else {"length_penalty": float(length_penalty)}
        rows = model.translate([enc[j] if len(enc[j]) else np.array([model.eos_id], np.int32) for j in idx],
                               beam_size=beam_size, **kwargs)
        for j, row in zip(idx, rows):
            out[j] = tok.decode(row)
    return out


#: how the references of a source are scored: "all" its targets in the split (sacrebleu with a variable number of
#: references per segment), or "first": each pair alone, a source decoded once per pair (one reference)
REFERENCES = ("all", "first")


def translation_scores(model, data_dir, split="valid", beam_size=None, max_pairs=0, batch_size=32,
                       references="all", length_penalty=None):
    """Corpus BLEU and chrF (sacrebleu, on the detokenized text) of the decoded sources of ``split``.

    ``references="all"``: each distinct source is decoded once and scored against every target the split
    has for it (``max_pairs`` then counts sources); ``"first"``: every pair on its own, one reference.
    Returns ``{"bleu", "chrf", "signature": {"bleu", "chrf"}, "num_pairs", "num_sources", "references",
    "decoding", "hypotheses"}``.
    """
    from sacrebleu.metrics import BLEU, CHRF

    from seqgen.data import pipeline as D
    from seqgen.errors import DataError

    if references not in REFERENCES:
        raise DataError(f"references must be one of {', '.join(REFERENCES)}, got {references!r}")
    try:
        pairs = D.read_pairs(data_dir, split)
    except DataError as e:
        if split == "test":
            raise DataError(f"{e}; `seqgen prepare pairs --test-fraction F` makes one") from None
        raise
    if not pairs:
        raise DataError(f"{data_dir}: the '{split}' split has no pairs")
    if references == "all":
        grouped = {}
        for s, t in pairs:
            grouped.setdefault(s, []).append(t)
        sources = list(grouped)[: int(max_pairs) or None]
        targets = [grouped[s] for s in sources]
    else:
        pairs = pairs[: int(max_pairs) or None]
        sources, targets = [s for s, _ in pairs], [[t] for _, t in pairs]
    hyps = translate_texts(model, sources, beam_size=beam_size, batch_size=batch_size, length_penalty=length_penalty)
    width = max(len(t) for t in targets)
    refs = [[t[k] if k < len(t) else None for t in targets] for k in range(width)]  # None: no k-th reference
    bleu, chrf = BLEU(), CHRF()
    b, c = bleu.corpus_score(hyps, refs), chrf.corpus_score(hyps, refs)
    decoding = f"beam {beam_size}" if beam_size else "greedy"
    if beam_size and length_penalty is not None:
        decoding += f", length penalty {float(length_penalty):g}"
    return {"bleu": float(b.score), "chrf": float(c.score),
            "signature": {"bleu": str(bleu.get_signature()), "chrf": str(chrf.get_signature())},
            "num_pairs": sum(len(t) for t in targets), "num_sources": len(sources), "references": references,
            "decoding": decoding, "hypotheses": hyps}


@register_task
class Translator(ByteTask):
    """A ByteNet translation run: teacher-forced bits per target byte, BLEU and chrF, translation."""

    kind = "pairs"
    verb = "translate"
    title = "translation"

    def translate(self, texts, beam_size=None, batch_size=32, length_penalty=None) -> list[str]:
        """Translations of ``texts`` (greedy, or beam search with ``beam_size``), in order."""
        return translate_texts(self.model, list(texts), beam_size=beam_size, batch_size=batch_size,
                               length_penalty=length_penalty)

    def evaluate(self, data=None, split="valid", beam=None, max_pairs=0, references="all", length_penalty=None,
                 **_) -> dict:
        res = translation_scores(self.model, self.data_dir(data), split, beam_size=beam, max_pairs=max_pairs,
                                 references=references, length_penalty=length_penalty)
        res.pop("hypotheses", None)
        return res

    # ------------------------------------------------------------ training side
    @classmethod
    def _split_sizes(cls, splits):
        return {"num_pairs": {s: int(v.get("num_items", 0)) for s, v in splits.items()}}

    @classmethod
    def model_kwargs(cls, model_type, model_cfg, data_info) -> dict:
        return {**super().model_kwargs(model_type, model_cfg, data_info), "encoder": True}

    @classmethod
    def train_dataset(cls, model, data_dir, data_cfg, seed, shard=(0, 1)):
        """Pairs of at most ``data.window`` bytes a side, source and target padded to one power-of-two length
        (a few shapes, so few compilations), as a Python generator of numpy batches."""
        from seqgen.data import pipeline as D
        from seqgen.models.token_decoding import bucket_length

        ds = D.pairs_dataset(data_dir, "train", int(data_cfg["batch_size"]), int(data_cfg["window"]), seed=seed,
                             batch_bytes=int(data_cfg.get("batch_bytes", 0)))
        pad = model.pad_id

        def padded():
            for x, y in ds:
                size = bucket_length(max(x["source"].shape[1], y.shape[1]))
                yield ({"source": pad_to(x["source"], size, pad), "target_in": pad_to(x["target_in"], size, pad)},
                       pad_to(y, size, pad))

        return padded()

    @classmethod
    def held_out(cls, model, data_dir, split, data_cfg, max_windows=0, progress=False):
        """Teacher-forced bits per target byte (``max_windows``: batches of pairs)."""
        return pairs_nll(model, data_dir, split, int(data_cfg["valid_batch_size"]), int(data_cfg["window"]),
                         int(max_windows))

    # ------------------------------------------------------------ recipe
    @classmethod
    def run_recipe(cls, recipe) -> dict:
        """prepare -> train -> a few valid sources translated -> BLEU and chrF on the valid split."""
        from seqgen.data import pipeline as D

        data_dir, run_dir, summary = recipe.prepare_and_train(cls.kind)

        sconf = recipe.sample_conf
        beam = int(sconf.get("beam", 0)) or None
        penalty = sconf.get("length_penalty")
        penalty = None if penalty is None or not beam else float(penalty)
        eval_dir = run_dir
        last = int(sconf.get("average_last", 0) or 0)
        if last > 1:  # the mean of the newest kept checkpoints (chosen on dev for this preset)
            eval_dir = cls._average_last(run_dir, recipe.work / "average", last)
        recipe.stage(3, "translate a few valid sources" + (f" with {eval_dir}" if eval_dir != run_dir else ""))
        translator = cls(eval_dir)
        pairs = D.read_pairs(data_dir, "valid")[: int(sconf.get("num_examples", 5))]
        hyps = translator.translate([s for s, _ in pairs], beam_size=beam, length_penalty=penalty)
        lines = []
        for (s, t), h in zip(pairs, hyps):
            lines += [f"source     {s}", f"reference  {t}", f"output     {h}", ""]
        (recipe.work / "sample.txt").write_text("\n".join(lines), encoding="utf-8")

        splits = D.read_manifest(data_dir, "pairs").get("splits", {})
        names = ["valid"] + (["test"] if "test" in splits else [])
        recipe.stage(4, f"evaluate (BLEU, chrF) on the {' and '.join(names)} split{'s' if len(names) > 1 else ''}")
        metrics = translator.evaluate(data_dir, "valid", beam=beam, max_pairs=int(sconf.get("max_pairs", 0)),
                                      length_penalty=penalty)
        metrics.update({"step": translator.step, "split": "valid", "run": str(eval_dir)})
        line = (f"{recipe.work / 'metrics.json'}  (valid: BLEU {metrics['bleu']:.1f}, chrF {metrics['chrf']:.1f} on "
                f"{metrics['num_sources']} sources")
        if "test" in names:  # the final figure: every test source, all its references
            test = translator.evaluate(data_dir, "test", beam=beam, length_penalty=penalty)
            metrics["test"] = {k: test[k] for k in ("bleu", "chrf", "signature", "num_pairs", "num_sources",
                                                    "references", "decoding")}
            line += f"; test: BLEU {test['bleu']:.1f}, chrF {test['chrf']:.1f} on {test['num_sources']} sources"
        recipe.finish(metrics, [("examples", recipe.work / "sample.txt"),
                                ("metrics", line + f", step {translator.step})"),
                                ("run", f"{eval_dir}  (seqgen translate --run {eval_dir} TEXT)")])
        return {"metrics": metrics, "examples": list(zip(pairs, hyps)), "train": summary}

    @staticmethod
    def _average_last(run_dir, out, n) -> pathlib.Path:
        """``seqgen average --checkpoint last:N`` of ``run_dir`` into ``out``, replacing an earlier average
        there (a recipe's output, remade after every training stage)."""
        import shutil

        from seqgen.runs import Run
        from seqgen.train.averaging import average_checkpoints, parse_steps

        out, earlier = pathlib.Path(out), Run(out)
        if earlier.exists():
            if "averaged_from" not in earlier.info():
                raise SeqgenError(f"{out} is a training run, not an average; move it away to let the recipe "
                                  "write its checkpoint average there")
            shutil.rmtree(out)
        steps = parse_steps(f"last:{n}", run_dir)
        if len(steps) < 2:  # a run stopped early keeps one checkpoint: evaluate it as it is
            return pathlib.Path(run_dir)
        average_checkpoints(run_dir, steps, out)
        return out
