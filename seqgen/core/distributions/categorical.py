"""Softmax over ``num_classes`` (optionally mu-law) classes; int inputs and targets."""
import keras
import numpy as np
from keras import ops

from seqgen.core import mu_law as _mu_law
from seqgen.core import sampling as _samplers
from seqgen.core.distributions.base import Distribution, _float, _squeeze_noise, codes_per_class


@keras.saving.register_keras_serializable(package="seqgen")
class Categorical(Distribution):
    """Softmax over ``num_classes`` classes.

    The model's inputs and targets are int32 classes.  With ``mu_law=True``
    the classes are mu-law bins (``num_classes`` must be a power of two,
    ``2**bits``); otherwise they are ``num_classes`` evenly spaced levels
    over [-1, 1] (class ``k`` <-> ``-1 + 2k/(num_classes-1)``).
    """

    type_name = "categorical"
    noise_size = 1
    input_is_discrete = True

    def __init__(self, num_classes=256, mu_law=True):
        num_classes = int(num_classes)
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        mu_law = bool(mu_law)
        if mu_law:
            bits = num_classes.bit_length() - 1
            if 2**bits != num_classes or bits > 16:
                raise ValueError(
                    f"num_classes must be a power of two <= 65536 with mu_law=True, got {num_classes}"
                )
            self.bits = bits
        else:
            self.bits = None
        self.num_classes = num_classes
        self.mu_law = mu_law

    @property
    def param_size(self):
        return self.num_classes

    def nll(self, params, target):
        """Softmax cross-entropy ``[B, T]``; target int classes ``[B, T]``."""
        logits = _float(params)
        log_p = ops.log_softmax(logits, axis=-1)
        idx = ops.expand_dims(ops.cast(target, "int32"), -1)
        return -ops.squeeze(ops.take_along_axis(log_p, idx, axis=-1), -1)

    def bits_to_16bit(self, target):
        """``log2`` of the target class's width in 16-bit steps (see :meth:`Distribution.bits_to_16bit`)."""
        if getattr(self, "_log2_width", None) is None:
            self._log2_width = np.log2(codes_per_class(lambda v: ops.convert_to_numpy(self.from_waveform(v)),
                                                       self.num_classes))
        return self._log2_width[np.asarray(target).astype(np.int64)]

    def probs(self, params, temperature=1.0):
        """Class probabilities ``[..., num_classes]``."""
        return ops.softmax(_float(params) / temperature, axis=-1)

    def sample(self, params, noise, temperature=1.0, top_k=0, top_p=1.0):
        """int32 classes ``[...]`` by inverse CDF (see ``samplers.sample_logits``).

        ``noise``: ``[..., 1]`` uniforms (or ``[...]``).
        """
        params = ops.convert_to_tensor(params)
        u = _squeeze_noise(noise, params)
        return _samplers.sample_logits(params, u, temperature=temperature, top_k=top_k, top_p=top_p)

    def mode(self, params):
        return _samplers.greedy(params)

    def to_waveform(self, samples):
        """int classes -> float32 waveform in [-1, 1]."""
        if self.mu_law:
            return _mu_law.decode(samples, self.bits)
        q = ops.cast(samples, "float32")
        return ops.clip(q * (2.0 / (self.num_classes - 1)) - 1.0, -1.0, 1.0)

    def from_waveform(self, x):
        """float waveform in [-1, 1] -> int32 classes."""
        if self.mu_law:
            return _mu_law.encode(x, self.bits)
        x = ops.clip(ops.cast(x, "float32"), -1.0, 1.0)
        q = ops.round((x + 1.0) * ((self.num_classes - 1) / 2.0))
        return ops.clip(ops.cast(q, "int32"), 0, self.num_classes - 1)

    def get_config(self):
        return {"num_classes": self.num_classes, "mu_law": self.mu_law}
