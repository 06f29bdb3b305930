"""seqgen: autoregressive audio and text generation on Keras 3.

Importing this package is cheap: it imports neither Keras nor TensorFlow.
Submodules are imported on demand (``seqgen.data.audio``, ``seqgen.models``, ...).
TensorFlow-only code lives in ``seqgen.train.strategy`` (``tf.distribute``) and is never imported by
the backend-agnostic core; the input pipelines (``seqgen.data.pipeline``) and TensorBoard logging
(``seqgen.utils.summary``) need no TensorFlow.

``seqgen.load(RUN)`` returns a trained run as its task object
(:class:`~seqgen.tasks.vocoder.Vocoder`, :class:`~seqgen.tasks.language_model.LanguageModel`
or :class:`~seqgen.tasks.translation.Translator`)::

    import seqgen
    voc = seqgen.load("runs/lj")
    voc.resynthesize("speech.wav", "resynth.wav", seed=1)
    print(seqgen.load("runs/lm").generate("ROMEO:", max_bytes=200, seed=1))
    print(seqgen.load("runs/mt").translate(["The cat sleeps."], beam_size=4))
"""
import os as _os

__version__ = "0.1.0"

# Quieter TensorFlow start-up unless the user asked otherwise.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# JAX when it is installed and TensorFlow (the `[tf]` extra) is not, unless a backend is named.
from seqgen.utils import backend as _backend  # noqa: E402  (imports neither Keras nor TensorFlow)

_backend.choose()


def load(run_dir):
    """A trained run as its task object (see :mod:`seqgen.tasks.base`)."""
    from seqgen.tasks.base import load as _load

    return _load(run_dir)
