"""Linear prediction for a vocoder: per-frame LPC from the conditioning mel, and the excitation transform.

A WaveNet that models the *excitation* ``e_t = s_t - p_t`` of a linear predictor
``p_t = sum_k a_k s_{t-k}`` leaves the spectral envelope to the filter and spends its capacity on what
the filter cannot predict (the ExcitNet / LP-WaveNet / LPCNet idea).  The predictor must be known at
synthesis time, so it comes from what conditions the vocoder, the mel frames:

1. de-normalize the log-mel and ``exp`` it: the magnitude mel (power 1) of :func:`seqgen.data.audio.log_mel`;
2. a non-negative inverse of the mel basis (librosa's filters): each bin starts at the mean density of
   the bands that cover it, then :data:`NNLS_ITERATIONS` multiplicative non-negative least-squares updates
   (Lee and Seung) fit it to the mel, all frames at once (``librosa.feature.inverse.mel_to_stft`` solves the
   same problem per frame with L-BFGS-B, ~100x slower: seconds per utterance, too slow for an input
   pipeline); squared to a power spectrum;
3. a floor under the band the mel does not see (above ``fmax``): the mean power of the top tenth of the
   band below it, so the predictor does not spend its poles on an empty band;
4. the pre-emphasis tilt ``|1 - a e^{-jw}|^2`` when the model takes its samples through pre-emphasis;
5. inverse FFT to the autocorrelation; a Gaussian lag window (:data:`LAG_WINDOW_HZ`) and white-noise
   correction (:data:`WHITE_NOISE`) for a well-conditioned system;
6. Levinson-Durbin (:func:`levinson_durbin`) to order :data:`ORDER`, then bandwidth expansion
   ``a_k gamma^k`` (:data:`GAMMA`), so the synthesis filter ``1 / A(z/gamma)`` stays stable.

:func:`from_waveform` gives the same analysis of the waveform itself (the frames the mel is made of),
the reference the mel-derived predictor is measured against.

Frame ``i`` of seqgen's features is centred on the middle of samples ``[i*hop, (i+1)*hop)`` (see
:func:`seqgen.data.audio.log_mel`), so its predictor serves exactly those samples.

The excitation transform (:func:`excitation`, :func:`reconstruct`) works on integer samples (16-bit
steps): ``p_t = rint(sum_k a_k s_{t-k})`` and ``e_t = s_t - p_t``, both integers, so ``s`` comes back
exactly.  It is a shift given the past, so it has unit Jacobian: a likelihood of ``e`` is one of ``s``.
"""
from __future__ import annotations

import functools

import numpy as np

__all__ = ["ORDER", "GAMMA", "LAG_WINDOW_HZ", "WHITE_NOISE", "levinson_durbin", "from_power", "from_mel",
           "from_waveform", "inverse_mel", "per_sample", "predict", "excitation", "reconstruct", "prediction_gain_db"]

#: predictor order (LPCNet: 16 at 16 kHz; ~20 at 22.05 kHz)
ORDER = 20
#: bandwidth expansion factor
GAMMA = 0.99
#: standard deviation of the Gaussian lag window, Hz
LAG_WINDOW_HZ = 60.0
#: white-noise correction: r[0] *= 1 + WHITE_NOISE (a -40 dB noise floor)
WHITE_NOISE = 1e-4
#: multiplicative updates of the non-negative inverse of the mel basis
NNLS_ITERATIONS = 30


@functools.lru_cache(maxsize=8)
def _mel_basis(sample_rate, n_fft, n_mels, fmin, fmax):
    import librosa

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).astype(np.float64)


def inverse_mel(mel, params, iterations: int = NNLS_ITERATIONS) -> np.ndarray:
    """Non-negative magnitudes ``[frames, n_fft // 2 + 1]`` whose mel (librosa's filters, ``params``) fits the
    magnitude mel ``[frames, n_mels]`` in least squares.  Bins no band covers are 0."""
    basis = _mel_basis(params.sample_rate, params.n_fft, params.n_mels, params.fmin, params.fmax)
    mel = np.maximum(np.asarray(mel, np.float64), 0.0)
    cover = basis.sum(axis=0)
    density = mel / np.maximum(basis.sum(axis=1), 1e-12)
    s = np.where(cover > 0, (density @ basis) / np.maximum(cover, 1e-12), 0.0)
    target = mel @ basis
    for _ in range(int(iterations)):
        s = s * target / np.maximum((s @ basis.T) @ basis, 1e-12)
    return s


def levinson_durbin(r, order: int | None = None):
    """Predictor coefficients from autocorrelations ``r [..., >= order + 1]`` (vectorized over frames).

    Returns ``(a, err)``: ``a [..., order]`` with the prediction ``sum_k a[k-1] x_{t-k}`` (``a`` solves the
    Toeplitz system ``R a = r[1:order+1]``), and the final prediction-error power ``err [...]``.  A frame
    with ``r[0] <= 0`` (silence) gets zeros."""
    r = np.asarray(r, np.float64)
    p = r.shape[-1] - 1 if order is None else int(order)
    if p < 1 or r.shape[-1] < p + 1:
        raise ValueError(f"levinson_durbin: need order >= 1 and {p + 1} autocorrelation lags, got {r.shape[-1]}")
    lead = r.shape[:-1]
    a = np.zeros(lead + (p,))
    err = r[..., 0].copy()
    live = err > 0
    err = np.where(live, err, 1.0)
    for i in range(p):
        acc = r[..., i + 1] - np.einsum("...j,...j->...", a[..., :i], r[..., i:0:-1]) if i else r[..., 1].copy()
        k = np.where(live, acc / err, 0.0)
        if i:
            a[..., :i] = a[..., :i] - k[..., None] * a[..., i - 1::-1]
        a[..., i] = k
        err = err * (1.0 - k * k)
    return np.where(live[..., None], a, 0.0), np.where(live, err, 0.0)


def _lag_window(p: int, sample_rate: float) -> np.ndarray:
    k = np.arange(p + 1)
    return np.exp(-0.5 * (2.0 * np.pi * LAG_WINDOW_HZ * k / float(sample_rate)) ** 2)


def from_power(power, sample_rate: float, order: int = ORDER, gamma: float = GAMMA) -> np.ndarray:
    """Coefficients ``[frames, order]`` from one-sided power spectra ``[frames, n_fft // 2 + 1]``: inverse
    FFT to the autocorrelation, lag window, white-noise correction, Levinson-Durbin, bandwidth expansion."""
    power = np.asarray(power, np.float64)
    r = np.fft.irfft(power, axis=-1)[..., : order + 1]
    r = r * _lag_window(order, sample_rate)
    r[..., 0] *= 1.0 + WHITE_NOISE
    a, _ = levinson_durbin(r, order)
    return a * gamma ** np.arange(1, order + 1)


def _tilt(n_bins: int, pre_emphasis: float) -> np.ndarray:
    w = np.linspace(0.0, np.pi, n_bins)
    return np.abs(1.0 - pre_emphasis * np.exp(-1j * w)) ** 2


def from_mel(log_mel, params, order: int = ORDER, pre_emphasis: float = 0.0, gamma: float = GAMMA) -> np.ndarray:
    """Coefficients ``[frames, order]`` from de-normalized log-mel frames ``[frames, n_mels]`` (natural log
    of the magnitude mel, as :func:`seqgen.data.audio.log_mel` makes them; ``params`` its
    :class:`~seqgen.data.audio.FeatureParams`)."""
    log_mel = np.asarray(log_mel, np.float64)
    if log_mel.ndim != 2 or log_mel.shape[1] != params.n_mels:
        raise ValueError(f"from_mel: log-mel frames must be [frames, {params.n_mels}], got {log_mel.shape}")
    power = inverse_mel(np.exp(log_mel), params) ** 2
    freqs = np.fft.rfftfreq(params.n_fft, 1.0 / params.sample_rate)
    fmax = params.fmax if params.fmax else params.sample_rate / 2.0
    above = freqs > fmax
    if above.any():
        inband = np.flatnonzero(~above)
        top = inband[-max(1, len(inband) // 10):]
        power[:, above] = power[:, top].mean(axis=1, keepdims=True)
    if pre_emphasis:
        power = power * _tilt(power.shape[1], pre_emphasis)
    return from_power(power, params.sample_rate, order, gamma)


def from_waveform(audio, params, order: int = ORDER, pre_emphasis: float = 0.0, gamma: float = GAMMA) -> np.ndarray:
    """Coefficients ``[frames, order]`` of the waveform's own frames (the windows its mel is made of:
    reflect-padded, Hann, ``center=False``), with the same lag window, correction and expansion."""
    audio = np.asarray(audio, np.float64)
    hop, n_fft = params.hop_length, params.n_fft
    frames = len(audio) // hop
    pad = (n_fft - hop) // 2
    mode = "reflect" if len(audio) > pad else "constant"
    padded = np.pad(audio, (pad, n_fft - hop - pad), mode=mode)
    windows = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:frames]
    window = np.hanning(params.win_length + 1)[:-1] if params.win_length == n_fft else np.pad(
        np.hanning(params.win_length + 1)[:-1], ((n_fft - params.win_length) // 2,) * 2)
    power = np.abs(np.fft.rfft(windows * window, axis=-1)) ** 2
    if pre_emphasis:
        power = power * _tilt(power.shape[1], pre_emphasis)
    return from_power(power, params.sample_rate, order, gamma)


def per_sample(a, n: int, hop: int, start: int = 0) -> np.ndarray:
    """The predictor of each of ``n`` samples from absolute sample ``start`` on: row ``t`` is
    ``a[(start + t) // hop]`` (samples past the last frame keep its predictor)."""
    a = np.asarray(a)
    frames = np.minimum((int(start) + np.arange(n)) // int(hop), len(a) - 1)
    return a[frames]


def predict(s, a, hop: int, start: int = 0) -> np.ndarray:
    """``p_t = sum_k a[f, k-1] s_{t-k}`` for every sample (``f = (start + t) // hop``; ``s`` before its first
    sample counts as 0), float64.

    The sum runs over ``k = 1 .. order`` in that order, as :func:`reconstruct` computes it sample by
    sample, so both give the same bits."""
    s = np.asarray(s, np.float64)
    n = len(s)
    rows = per_sample(np.asarray(a, np.float64), n, hop, start)
    out = np.zeros(n)
    for k in range(1, rows.shape[1] + 1):
        lagged = np.concatenate([np.zeros(min(k, n)), s[: n - k]])
        out = out + rows[:, k - 1] * lagged
    return out


def excitation(s, a, hop: int) -> np.ndarray:
    """Integer samples ``s`` -> integer excitation ``s_t - rint(p_t)`` (int64)."""
    s = np.asarray(s)
    if not np.issubdtype(s.dtype, np.integer):
        raise ValueError("excitation: samples must be integers (16-bit steps)")
    return s.astype(np.int64) - np.rint(predict(s, a, hop)).astype(np.int64)


def reconstruct(e, a, hop: int) -> np.ndarray:
    """The inverse of :func:`excitation`, sample by sample: ``s_t = e_t + rint(p_t)`` (int64)."""
    e = np.asarray(e, np.int64)
    n = len(e)
    rows = per_sample(np.asarray(a, np.float64), n, hop)
    order = rows.shape[1]
    s = np.zeros(n, np.int64)
    for t in range(n):
        acc = 0.0
        for k in range(1, order + 1):
            acc = acc + rows[t, k - 1] * (float(s[t - k]) if t >= k else 0.0)
        s[t] = e[t] + int(np.rint(acc))
    return s


def synthesis_filter(x, a, hop: int, start: int = 0) -> np.ndarray:
    """``y_t = x_t + sum_k a[f, k-1] y_{t-k}`` (the all-pole filter ``1 / A(z)`` with each frame's own
    predictor; ``f = (start + t) // hop``; ``y`` before its first sample counts as 0), float64.  Per frame
    through ``scipy.signal.lfilter``, its state rebuilt from the last ``order`` outputs when the predictor
    changes (:func:`scipy.signal.lfiltic`).  What an error in the excitation does to the samples."""
    from scipy.signal import lfilter, lfiltic

    x = np.asarray(x, np.float64)
    a = np.asarray(a, np.float64)
    n, order = len(x), a.shape[1]
    y = np.zeros(n)
    t = 0
    while t < n:
        f = min((int(start) + t) // int(hop), len(a) - 1)
        end = n if f == len(a) - 1 else min(n, (f + 1) * int(hop) - int(start))
        den = np.concatenate([[1.0], -a[f]])
        past = y[max(0, t - order): t][::-1]  # y_{t-1}, y_{t-2}, ...
        zi = lfiltic([1.0], den, np.pad(past, (0, order - len(past))))
        y[t:end], _ = lfilter([1.0], den, x[t:end], zi=zi)
        t = end
    return y


def prediction_gain_db(x, a, hop: int, mask=None) -> float:
    """``10 log10(sum x^2 / sum (x - p)^2)`` over the samples of the frames in ``mask`` (all by default)."""
    x = np.asarray(x, np.float64)
    e = x - predict(x, a, hop)
    if mask is not None:
        keep = per_sample(np.asarray(mask, bool), len(x), hop)
        x, e = x[keep], e[keep]
    return float(10.0 * np.log10(np.sum(x * x) / max(np.sum(e * e), 1e-300)))
