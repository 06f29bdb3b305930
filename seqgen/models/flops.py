"""FLOP counts per generated sample or token, from a model's configuration.

FLOP are 2 x multiply-adds.  ``method="cached"`` counts the incremental work
of one step (queues / key-value cache); ``"naive"`` counts recomputing the
whole receptive field or prefix for every step.  `seqgen bench` relates these
counts to the measured speed (achieved GFLOP/s and fractions of the ceilings).
"""
from __future__ import annotations

from seqgen.core.methods import CACHED, NAIVE


def _upsampler_flops_per_sample(model):
    """Mel upsampler (frame conv + per-scale matmuls) per output sample."""
    up = model.upsampler
    c_in, c, hop = up.input_channels, up.channels, model.hop_length
    per_frame = 2 * (2 * up.context + 1) * c_in * c          # frame conv
    rows = 1
    for s in up.upsample_scales:                            # [rows, C] @ [C, s*C]
        per_frame += 2 * rows * c * s * c
        rows *= s
    return per_frame / hop


def wavenet_flops(model, method=CACHED):
    """FLOP per generated sample (one row) of a :class:`~seqgen.models.wavenet.WaveNet`.

    Per network position (2 x multiply-adds; biases, gates, sampling and
    other elementwise work not counted)::

        input:       2*R                      continuous input (Dense 1->R); 0 for a
                                              class embedding (a table lookup)
        per layer:   2*k*R*G                  dilated conv (k taps)
                   + 2*C*G                    conditioning projection (C: the mel bands, plus the pitch
                                              features and the harmonic source when the model has them)
                   + 2*(G/2)*(R+S)            residual + skip 1x1 (2*(G/2)*S on the last layer)
        head:        2*S*S + 2*S*P            skip->skip 1x1, skip->params 1x1

    plus the mel upsampler per sample: ``(2*(2c+1)*C*C + sum_i 2*C*C*prod(s_1..s_i)) / hop``
    (frame conv with ``c`` frames of context, transposed convs of scales ``s_i``).
    ``cached`` runs one position per sample; ``naive`` runs the whole window of
    ``receptive_field`` positions per sample (the upsampler once).  The speaker
    projection is once per sequence and not counted.
    """
    r, g, s = model.residual_channels, model.gate_channels, model.skip_channels
    k, c = model.kernel_size, model.cond_channels
    p = model.distribution.param_size
    pos = 0 if model.distribution.input_is_discrete else 2 * r
    per_sample = getattr(model, "sample_cond_channels", c) if c else 0
    for block in model.blocks:
        pos += 2 * k * r * g + 2 * per_sample * g
        pos += 2 * (g // 2) * ((r if block.residual_output else 0) + s)
    pos += 2 * s * s + 2 * s * p
    up = _upsampler_flops_per_sample(model) if c else 0.0
    if method == NAIVE:
        return model.receptive_field * pos + up
    return pos + up


def student_flops(model):
    """FLOP per generated sample (one row) of a Parallel WaveNet student
    (:class:`~seqgen.models.parallel_wavenet.ParallelWaveNet`): every flow is a
    WaveNet position over its noise (input ``2*R``, per layer as in
    :func:`wavenet_flops`, head ``2*S*S + 2*S*2``), all flows per sample, plus
    the mel upsampler (shared by the flows) per sample."""
    r, g, s, k, c = (model.residual_channels, model.gate_channels, model.skip_channels, model.kernel_size,
                     model.cond_channels)
    total = 0
    for flow in model.flows:
        total += 2 * r
        for block in flow.blocks:
            total += 2 * k * r * g + 2 * c * g + 2 * (g // 2) * ((r if block.residual_output else 0) + s)
        total += 2 * s * s + 2 * s * 2
    return total + (_upsampler_flops_per_sample(model) if c else 0.0)


def _transformer_position_flops(model):
    d, f, v = model.d_model, model.d_ff, model.vocab_size
    return model.num_layers * (2 * d * 3 * d + 2 * d * d + 2 * 2 * d * f) + 2 * d * v


def transformer_flops(model, method=CACHED, steps=1, cache_length=None):
    """FLOP per generated token (one row) of a :class:`~seqgen.models.transformer.TransformerDecoder`.

    Per position: ``L * (2*d*3d  [q,k,v]  + 2*d*d  [out]  + 2*2*d*f  [MLP d->f->d]) + 2*d*V  [head]``.
    Attention, cached: each token attends over the key/value buffer of
    ``T`` positions (``T = cache_length``: the whole buffer is multiplied,
    the causal mask is applied after): ``L * (2*T*d [q.k] + 2*T*d [weights.v])``.
    Naive: token ``t`` runs the full network over a prefix of
    ``S_t = bucket(t+1)`` positions (power of two >= 16):
    ``S_t * position + L * 2 * 2 * S_t^2 * d``; averaged over the ``steps``
    timed tokens.
    """
    d, nl = model.d_model, model.num_layers
    pos = _transformer_position_flops(model)
    if method == CACHED:
        t_len = model.max_length if cache_length is None else int(cache_length)
        return pos + nl * 4 * t_len * d
    from seqgen.models.token_decoding import bucket_length

    total = 0
    for t in range(int(steps)):
        size = min(bucket_length(t + 1), model.max_length)
        total += size * pos + nl * 4 * size * size * d
    return total / int(steps)


def bytenet_flops(model, method=CACHED, steps=1):
    """FLOP per generated token (one row) of the ByteNet LM (``encoder=False``).

    Per position: ``sum over decoder blocks of 2*d*(d/2) [reduce] + 2*k*(d/2)^2
    [dilated conv] + 2*(d/2)*d [expand]``, plus ``2*d*V`` [head].  Cached:
    one position per token.  Naive: token ``t`` recomputes a prefix of
    ``S_t = bucket(t+1)`` positions; averaged over the ``steps`` timed tokens.
    """
    d, h, k, v = model.d_model, model.d_model // 2, model.kernel_size, model.vocab_size
    pos = len(model.decoder_blocks) * (2 * d * h + 2 * k * h * h + 2 * h * d) + 2 * d * v
    if method == CACHED:
        return pos
    from seqgen.models.token_decoding import bucket_length

    length = bucket_length(int(steps))
    total = sum(min(bucket_length(t + 1), length) * pos for t in range(int(steps)))
    return total / int(steps)


def transformer_training_flops(model, length):
    """Forward FLOP per position of a training window of ``length`` tokens: the position's work as in
    :func:`transformer_flops` plus attention over the whole window (the scores are computed for all
    ``length`` keys, the causal mask applied after): ``L * (2*length*d + 2*length*d)``."""
    return _transformer_position_flops(model) + model.num_layers * 4 * int(length) * model.d_model


def _bytenet_block_flops(d, k):
    h = d // 2
    return 2 * d * h + 2 * k * h * h + 2 * h * d


def bytenet_training_flops(model, source_length=0, target_length=1):
    """Forward FLOP per target position of a training batch: the decoder blocks and the head per target
    position (:func:`bytenet_flops`) plus, for translation, the encoder blocks over ``source_length``
    source positions shared by the ``target_length`` target positions of a row."""
    d, v = model.d_model, model.vocab_size
    dec = len(model.decoder_blocks) * _bytenet_block_flops(d, model.kernel_size) + 2 * d * v
    enc = len(model.encoder_blocks) * _bytenet_block_flops(d, model.encoder_kernel_size)
    return dec + enc * int(source_length) / max(1, int(target_length))
