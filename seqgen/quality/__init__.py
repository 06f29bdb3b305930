"""Objective speech quality of a vocoder: what `seqgen evaluate --quality` measures.

* :mod:`~seqgen.quality.metrics` - the scores of one utterance: PESQ wide-band and STOI against the
  recording (intrusive), DNSMOS P.835 (non-intrusive), F0 error and voicing error (``librosa.pyin``),
  mel-cepstral distortion and log-mel L1 (which see the harmonics up to the run's fmax, where PESQ,
  STOI and DNSMOS see nothing above 8 kHz).
* :mod:`~seqgen.quality.griffin_lim` - the floor: Griffin-Lim from the run's own features.
* :mod:`~seqgen.quality.bootstrap` - paired differences with a bootstrap 95% interval.
* :mod:`~seqgen.quality.yardstick` - the committed lists of evaluation and dev utterances.
* :mod:`~seqgen.quality.report` - resynthesis of whole utterances, the table, its JSON and PNG.

The scoring libraries are the extra ``[quality]`` (``pesq``, ``pystoi``, ``speechmos``,
``onnxruntime``); :func:`require` names it in one line when one is missing.
"""
from __future__ import annotations

import importlib.util

from seqgen.errors import SeqgenError

#: import name -> the package pip installs it from
SCORERS = {"pesq": "pesq", "pystoi": "pystoi", "speechmos": "speechmos", "onnxruntime": "onnxruntime"}


def missing() -> list[str]:
    """The scoring packages that are not installed."""
    return [pkg for mod, pkg in SCORERS.items() if importlib.util.find_spec(mod) is None]


def require(what: str = "seqgen evaluate --quality") -> None:
    """Raise a one-line error naming the ``[quality]`` extra when a scoring package is missing."""
    gone = missing()
    if gone:
        raise SeqgenError(f"{what} needs the speech-quality scorers ({', '.join(gone)} not installed): "
                          f"pip install -e '.[quality]' (or pip install {' '.join(SCORERS.values())})")
