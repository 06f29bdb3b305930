"""Learned upsampling of frame-rate features (mel) to the sample rate.

::

    mel [B, F, C_in]
      -> zero-pad ``context`` frames on both sides
      -> Conv1D(channels, 2*context+1, valid)   (each frame sees +-context frames)
      -> leaky_relu
      -> for each scale s in upsample_scales:   (prod(scales) == hop_length)
             transposed conv, kernel = stride = s   (frame f -> samples [f*s, (f+1)*s))
             leaky_relu (except after the last)
      -> [B, F*hop_length, channels]

Because every transposed convolution has ``kernel == stride`` it never mixes
neighbouring frames: output sample ``t`` is a function of the context-conv
frame ``t // hop_length`` only, i.e. of mel frames
``t // hop_length - context .. t // hop_length + context``.  Lengths are
exact (``F * hop_length``) and a chunk of frames ``[f0, f0+n)`` can be
upsampled on its own from mel frames ``[f0-context, f0+n+context)`` (zeros
outside ``[0, F)``), giving exactly the corresponding slice of the full
output (see :meth:`Upsampler.frames_with_context`).  A ``kernel == stride``
transposed convolution is a per-frame matmul ``[C, s*C]`` followed by a
reshape, which is how it is computed here.
"""
import keras
import numpy as np
from keras import ops

__all__ = ["Upsampler", "default_upsample_scales"]


def default_upsample_scales(hop_length):
    """Factor ``hop_length`` into small factors (2s merged into 4s), largest first.

    256 -> [4, 4, 4, 4]; 200 -> [5, 5, 4, 2]; 300 -> [5, 5, 4, 3]; 1 -> [].
    """
    n = int(hop_length)
    if n < 1:
        raise ValueError(f"hop_length must be >= 1, got {hop_length}")
    primes = []
    p = 2
    while n > 1 and p * p <= n:
        while n % p == 0:
            primes.append(p)
            n //= p
        p += 1
    if n > 1:
        primes.append(n)
    twos = primes.count(2)
    others = [q for q in primes if q != 2]
    factors = others + [4] * (twos // 2) + [2] * (twos % 2)
    return sorted(factors, reverse=True)


@keras.saving.register_keras_serializable(package="seqgen")
class Upsampler(keras.layers.Layer):
    """Mel ``[B, F, C_in]`` -> conditioning ``[B, F*hop_length, channels]``.

    Args:
        hop_length: samples per frame.
        channels: output (and hidden) channels.
        upsample_scales: list of ints with product ``hop_length``
            (default :func:`default_upsample_scales`).
        context: frames of context on each side of the frame conv (>= 0).
    """

    def __init__(self, hop_length, channels, upsample_scales=None, context=2, **kwargs):
        super().__init__(**kwargs)
        self.hop_length = int(hop_length)
        self.channels = int(channels)
        scales = (default_upsample_scales(self.hop_length) if upsample_scales is None
                  else [int(s) for s in upsample_scales])
        if any(s < 1 for s in scales) or int(np.prod(scales, dtype=np.int64)) != self.hop_length:
            raise ValueError(f"upsample_scales {scales} must be positive with product "
                             f"hop_length={self.hop_length}")
        self.upsample_scales = scales
        self.context = int(context)
        if self.context < 0:
            raise ValueError(f"context must be >= 0, got {context}")
        self.frame_conv = keras.layers.Conv1D(self.channels, 2 * self.context + 1,
                                              padding="valid", name="frame_conv")

    def build(self, input_shape):
        in_ch = int(input_shape[-1])
        self.input_channels = in_ch
        self.frame_conv.build((None, None, in_ch))
        self.up_kernels, self.up_biases = [], []
        for i, s in enumerate(self.upsample_scales):
            self.up_kernels.append(self.add_weight(
                name=f"up{i}_kernel", shape=(self.channels, s * self.channels),
                initializer="glorot_uniform"))
            self.up_biases.append(self.add_weight(
                name=f"up{i}_bias", shape=(self.channels,), initializer="zeros"))
        self.built = True

    def upsample_padded(self, frames):
        """Upsample frames that already carry ``context`` frames on each side.

        ``frames [B, n + 2*context, C_in]`` -> ``[B, n*hop_length, channels]``.
        """
        h = ops.leaky_relu(self.frame_conv(frames), 0.4)
        batch = ops.shape(h)[0]
        n = ops.shape(h)[1]
        last = len(self.upsample_scales) - 1
        for i, s in enumerate(self.upsample_scales):
            h = ops.matmul(h, self.up_kernels[i])                       # [B, n, s*C]
            n = n * s
            h = ops.reshape(h, (batch, n, self.channels)) + self.up_biases[i]
            if i < last:
                h = ops.leaky_relu(h, 0.4)
        return h

    def call(self, inputs):
        c = self.context
        x = ops.pad(inputs, [[0, 0], [c, c], [0, 0]]) if c else inputs
        return self.upsample_padded(x)

    def compute_output_shape(self, input_shape):
        f = input_shape[1]
        return (input_shape[0], None if f is None else f * self.hop_length, self.channels)

    def frames_with_context(self, mel, start, num, transform=None):
        """Host-side (numpy) slice of ``mel [B, F, C]``: frames ``[start-context,
        start+num+context)``, zeros outside ``[0, F)``.  Feeding the result to
        :meth:`upsample_padded` gives exactly samples
        ``[start*hop, (start+num)*hop)`` of ``call(mel)``.  Only those frames of
        ``mel`` are read (it may be any array-like that slices, such as a
        :class:`~seqgen.data.mel_view.MelView`).  ``transform``: applied to the
        frames that exist before the zero padding (per-frame features, e.g. the
        pitch channels), ``[B, n, C] -> [B, n, C']``."""
        b, f = mel.shape[0], mel.shape[1]
        lo, hi = start - self.context, start + num + self.context
        src_lo, src_hi = max(lo, 0), min(hi, f)
        got = None
        if src_hi > src_lo:
            got = np.asarray(mel[:, src_lo:src_hi], np.float32)
            if transform is not None:
                got = np.asarray(transform(got), np.float32)
        ch = got.shape[2] if got is not None else (mel.shape[2] if transform is None else
                                                  np.asarray(transform(np.zeros((b, 1, mel.shape[2]), np.float32))).shape[2])
        out = np.zeros((b, hi - lo, ch), np.float32)
        if got is not None:
            out[:, src_lo - lo:src_hi - lo] = got
        return out

    def get_config(self):
        config = super().get_config()
        config.update(hop_length=self.hop_length, channels=self.channels,
                      upsample_scales=list(self.upsample_scales), context=self.context)
        return config
