"""`seqgen prepare vocoder|text|pairs`: a corpus into shards (the work is in :mod:`data_prep`)."""
from __future__ import annotations

from seqgen.cli.types import fraction, positive_int

def _cmd_prepare_vocoder(a):
    from data_prep import vocoder

    vocoder.prepare(a.input, a.out, sample_rate=a.sample_rate, bits=a.bits, n_mels=a.n_mels,
                    valid_fraction=a.valid_fraction, audio_column=a.audio_column, text_column=a.text_column,
                    speaker_column=a.speaker_column, workers=a.workers, valid_ids=a.valid_ids)


def _cmd_prepare_migrate(a):
    from data_prep import migrate

    migrate.migrate(a.data)


def _cmd_prepare_text(a):
    from data_prep import text

    text.prepare_text(a.input, a.out, valid_fraction=a.valid_fraction, tokenizer=a.tokenizer,
                      vocab_size=a.vocab_size)


def _cmd_prepare_pairs(a):
    from data_prep import text

    text.prepare_pairs(a.input, a.out, valid_fraction=a.valid_fraction, workers=a.workers,
                       test_fraction=a.test_fraction)


def add(sub):
    p = sub.add_parser("prepare", help="prepare a corpus (audio, text or translation pairs) into shards",
                       description="Prepare a corpus into sharded records with a train/valid split and a manifest.")
    ps = p.add_subparsers(dest="what", metavar="{vocoder,text,pairs,migrate}", required=True)

    v = ps.add_parser("vocoder", help="audio corpus for vocoder training",
                      description="SRC is an LJSpeech-layout folder, a folder of audio files, a CSV manifest, "
                                  "or espeak:N (N sentences synthesized offline with espeak-ng).")
    v.add_argument("--input", required=True, metavar="SRC")
    v.add_argument("--out", required=True, metavar="DATA")
    v.add_argument("--sample-rate", type=positive_int, default=None,
                   help="target rate (default: the rate of the first readable file)")
    v.add_argument("--bits", type=int, default=8, choices=range(2, 17), metavar="BITS",
                   help="mu-law bits (default 8: 256 classes)")
    v.add_argument("--n-mels", type=positive_int, default=80)
    v.add_argument("--valid-fraction", type=fraction, default=0.05)
    v.add_argument("--valid-ids", default=None, metavar="LIST",
                   help="the valid split is exactly these utterances (a yardstick list such as "
                        "recipes/ljspeech_vocoder/yardstick.tsv, or one id per line), so they are never trained on")
    v.add_argument("--audio-column", default="path", help="CSV manifest: column with audio paths")
    v.add_argument("--text-column", default=None, help="CSV manifest: column with the transcript")
    v.add_argument("--speaker-column", default=None, help="CSV manifest: column with the speaker")
    v.add_argument("--workers", type=positive_int, default=None, help="processes (default: up to 4)")
    v.set_defaults(func=_cmd_prepare_vocoder)

    t = ps.add_parser("text", help="text corpus for byte-level language models",
                      description="FILE... are text files, or 'stdlib' for English prose from the Python "
                                  "standard library. The last --valid-fraction of the bytes is the valid split.")
    t.add_argument("--input", required=True, nargs="+", metavar="FILE")
    t.add_argument("--out", required=True, metavar="DATA")
    t.add_argument("--valid-fraction", type=fraction, default=0.1)
    t.add_argument("--tokenizer", choices=["bytes", "sentencepiece"], default="bytes")
    t.add_argument("--vocab-size", type=positive_int, default=2000, help="sentencepiece vocabulary size")
    t.set_defaults(func=_cmd_prepare_text)

    q = ps.add_parser("pairs", help="source<TAB>target pairs for translation",
                      description="FILE.tsv has source<TAB>target lines, or espeak-g2p[:N] for (N of) the English -> "
                                  "IPA pairs made offline with espeak-ng from the embedded prose (about 1,100). The split is grouped by source side.")
    q.add_argument("--input", required=True, metavar="FILE.tsv")
    q.add_argument("--out", required=True, metavar="DATA")
    q.add_argument("--valid-fraction", type=fraction, default=0.05,
                   help="share of source sentences in the valid (dev) split")
    q.add_argument("--test-fraction", type=fraction, default=0.0,
                   help="share of source sentences in a test split (0 = none), apart from valid and train")
    q.add_argument("--workers", type=positive_int, default=None)
    q.set_defaults(func=_cmd_prepare_pairs)

    m = ps.add_parser("migrate", help="rewrite a corpus prepared by an older seqgen in today's shard format",
                      description="Vocoder corpora of shard format 1 (TFRecord, read with TensorFlow) become "
                                  "ArrayRecord shards (format 2), record for record, same split.")
    m.add_argument("data", metavar="DATA")
    m.set_defaults(func=_cmd_prepare_migrate)
