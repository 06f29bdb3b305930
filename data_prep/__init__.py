"""Corpus preparation: raw audio, text or pairs -> shards, split and manifest (`seqgen prepare KIND`).

Depends on seqgen (its schema, manifest and audio features), never the
reverse: only the CLI and the recipe runner call in here.
"""


def prepare_corpus(kind: str, src, out, **options) -> dict:
    """`seqgen prepare KIND --input SRC --out OUT` with the preparer's keyword options."""
    if kind == "vocoder":
        from data_prep import vocoder

        return vocoder.prepare(str(src), out, **options)
    if kind == "text":
        from data_prep import text

        return text.prepare_text([str(src)], out, **options)
    if kind == "pairs":
        from data_prep import text

        return text.prepare_pairs(str(src), out, **options)
    from seqgen.errors import DataError

    raise DataError(f"no preparer for data of kind {kind!r}; expected vocoder, text or pairs")
