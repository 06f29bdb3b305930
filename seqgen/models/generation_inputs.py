"""Checks of the conditioning given to a vocoder's ``generate`` (WaveNet and the
Parallel WaveNet student share them): host-side numpy, no backend."""
import numpy as np

__all__ = ["check_generation_inputs"]


def check_generation_inputs(what, num_samples, mel, speaker, batch_size, cond_channels, hop_length,
                            num_speakers):
    """``(batch, num_samples, mel [B, F, C] or None, speaker [B] int32 or None)``.

    ``what`` names the model in errors ("this WaveNet").  ``mel``: ``[frames,
    bands]`` (repeated over ``batch_size``) or ``[B, frames, bands]``; with mel the
    length defaults to ``frames * hop_length`` and a smaller ``num_samples`` keeps
    a prefix; an array-like that is not a numpy array and has ``ndim`` 3 (a
    :class:`~seqgen.data.mel_view.MelView`) is kept as it is, to be read slice by
    slice.  ``speaker``: int or ``[B]`` ints.  Raises ValueError with one line.
    """
    b = int(batch_size)
    if cond_channels:
        if mel is None:
            raise ValueError(f"{what} is conditioned on mel: pass mel=[frames, bands]")
        if isinstance(mel, np.ndarray) or getattr(mel, "ndim", None) != 3:
            mel = np.asarray(mel, np.float32)
        if mel.ndim == 2:
            mel = mel[None] if b == 1 else np.broadcast_to(mel[None], (b,) + mel.shape).copy()
        if mel.ndim != 3 or mel.shape[-1] != cond_channels:
            raise ValueError(f"mel must be [frames, {cond_channels}] or [batch, frames, {cond_channels}], "
                             f"got {mel.shape}")
        if b not in (1, mel.shape[0]):
            raise ValueError(f"batch_size={b} does not match mel batch {mel.shape[0]}")
        b = mel.shape[0]
        full = mel.shape[1] * hop_length
        n = full if num_samples is None else int(num_samples)
        if not 0 < n <= full:
            raise ValueError(f"num_samples must be in [1, {full}] (frames*hop_length), got {n}")
    else:
        if mel is not None:
            raise ValueError(f"{what} has no local conditioning (cond_channels=0): mel must be None")
        if num_samples is None or int(num_samples) < 1:
            raise ValueError("num_samples (>= 1) is required without mel")
        n = int(num_samples)
    if not num_speakers:
        if speaker is not None:
            raise ValueError(f"{what} has no speakers (num_speakers=0): speaker must be None")
        return b, n, mel, None
    if speaker is None:
        raise ValueError(f"{what} has speakers: pass speaker=<int> or [batch] ints")
    spk = np.asarray(speaker, np.int32).reshape(-1)
    if spk.size == 1:
        spk = np.full((b,), int(spk[0]), np.int32)
    if spk.shape != (b,):
        raise ValueError(f"speaker must be an int or [{b}] ints, got shape {spk.shape}")
    if spk.min() < 0 or spk.max() >= num_speakers:
        raise ValueError(f"speaker ids must be in [0, {num_speakers})")
    return b, n, mel, spk
