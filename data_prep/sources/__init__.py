"""Corpora that work on a fresh machine, with nothing to download, and a cheap check of any source.

* :mod:`~data_prep.sources.prose`: English prose from the Python standard library
  (the ``stdlib`` text source);
* :mod:`~data_prep.sources.espeak`: espeak-ng through ctypes (speech and IPA);
* :mod:`~data_prep.sources.espeak_speech`: an LJSpeech-layout speech corpus (``espeak:N``);
* :mod:`~data_prep.sources.g2p`: English -> IPA pairs (``espeak-g2p[:N]``);
* :mod:`~data_prep.sources.check`: :func:`check_source`, what a source gives, or a one-line error.
"""
from data_prep.sources.check import check_source
from data_prep.sources.espeak import EspeakSynth
from data_prep.sources.espeak_speech import VOICE_SETTINGS, synthesize_corpus
from data_prep.sources.g2p import g2p_available, g2p_pairs, write_g2p_tsv
from data_prep.sources.prose import stdlib_prose, stdlib_sentences

__all__ = ["EspeakSynth", "VOICE_SETTINGS", "check_source", "g2p_available", "g2p_pairs", "stdlib_prose",
           "stdlib_sentences", "synthesize_corpus", "write_g2p_tsv"]
