"""The harmonic source (seqgen.core.harmonic_source): sinusoids at the frames' F0 with continuous phase,
the same samples from any chunk of frames, silence on unvoiced frames."""
import numpy as np
import pytest

from seqgen.core import harmonic_source as H

from conftest import _np

pytestmark = pytest.mark.multibackend

SR, HOP = 8000, 8


def _source(f0, voiced, cycles, harmonics=3):
    f0, voiced, cycles = (np.asarray(a, np.float32)[None] for a in (f0, voiced, cycles))
    return _np(H.source(f0, voiced, cycles, HOP, SR, harmonics))[0]


def test_a_steady_f0_is_a_continuous_sinusoid_and_its_harmonics():
    f0 = np.full(40, 210.0)
    out = _source(f0, np.ones(40), H.frame_cycles(f0[None], HOP, SR)[0])
    assert out.shape == (40 * HOP, 6)
    n = np.arange(40 * HOP)
    for k in (1, 2, 3):
        np.testing.assert_allclose(out[:, k - 1], np.sin(2 * np.pi * k * 210.0 * n / SR), atol=2e-4)
        np.testing.assert_allclose(out[:, 3 + k - 1], np.cos(2 * np.pi * k * 210.0 * n / SR), atol=2e-4)
    spectrum = np.abs(np.fft.rfft(out[:, 0] * np.hanning(len(n))))
    assert np.fft.rfftfreq(len(n), 1 / SR)[np.argmax(spectrum)] == pytest.approx(210.0, abs=SR / len(n))


def test_the_phase_advances_by_each_frames_f0_without_jumps():
    f0 = np.random.default_rng(0).uniform(80, 300, size=30)
    out = _source(f0, np.ones(30), H.frame_cycles(f0[None], HOP, SR)[0], harmonics=1)
    phase = np.unwrap(np.arctan2(out[:, 0], out[:, 1]))
    step = np.diff(phase) / (2 * np.pi) * SR                      # Hz between consecutive samples
    per_sample = np.repeat(f0, HOP)
    np.testing.assert_allclose(step, per_sample[:-1], rtol=1e-3, atol=0.5)


def test_any_chunk_of_frames_gives_the_samples_of_the_whole():
    """Generation builds each chunk from its own frames and the whole utterance's start phases: the same
    numbers as the whole, so chunked, streamed and naive synthesis agree."""
    rng = np.random.default_rng(1)
    f0, voiced = rng.uniform(70, 400, size=64), rng.uniform(0, 1, size=64)
    cycles = H.frame_cycles(f0[None], HOP, SR)[0]
    whole = _source(f0, voiced, cycles)
    for lo, hi in [(0, 16), (16, 32), (37, 64)]:
        np.testing.assert_array_equal(_source(f0[lo:hi], voiced[lo:hi], cycles[lo:hi]), whole[lo * HOP:hi * HOP])


def test_unvoiced_frames_are_silent_and_the_voicing_ramp():
    f0 = np.full(6, 150.0)
    voiced = _np(H.voicing(np.array([0.0, H.VOICING_LOW, 0.23, H.VOICING_HIGH, 0.5, 0.1], np.float32)))
    np.testing.assert_allclose(voiced, [0.0, 0.0, 0.5, 1.0, 1.0, 0.0], atol=1e-6)
    out = _source(f0, voiced, H.frame_cycles(f0[None], HOP, SR)[0])
    frames = out.reshape(6, HOP, -1)
    assert np.all(frames[[0, 1, 5]] == 0) and np.abs(frames[3]).max() > 0.5
    np.testing.assert_allclose(np.hypot(frames[2, :, 0], frames[2, :, 3]), 0.5, atol=1e-5)   # amplitude = voicing


def test_the_host_phase_is_exact_where_float32_would_drift_and_agrees_with_the_graph():
    f0 = np.random.default_rng(2).uniform(70, 400, size=(2, 50))
    np.testing.assert_allclose(_np(H.frame_cycles_ops(f0.astype(np.float32), HOP, SR)),
                               H.frame_cycles(f0, HOP, SR), atol=1e-4)
    hour = np.full((1, 3600 * SR // HOP), 123.4)                   # an hour: 4.4e5 cycles in all
    last = H.frame_cycles(hour, HOP, SR)[0, -1]
    exact = np.mod((hour.shape[1] - 1) * 123.4 * HOP / SR, 1.0)
    assert abs(last - exact) < 1e-4                                # 1e-4 cycles: 0.04 degrees
    in_float32 = np.cumsum(np.full(hour.shape[1] - 1, 123.4 * HOP / SR, np.float32))[-1]
    assert abs(np.mod(in_float32, 1.0) - exact) > 1e-2           # what the graph's float32 would give


def test_the_phase_counted_run_by_run_is_the_whole_count_bit_for_bit():
    """A stream counts each chunk's phase from the count the chunk before returned: the same float64
    additions in the same order as counting the utterance whole, for runs of any lengths."""
    f0 = np.random.default_rng(5).uniform(60, 450, size=(2, 1000))
    whole = H.frame_cycles(f0, HOP, SR)
    parts, count = [], np.zeros(2)
    for lo, hi in ((0, 1), (1, 17), (17, 17), (17, 400), (400, 1000)):
        cycles, count = H.frame_cycles_from(f0[:, lo:hi], HOP, SR, count)
        assert cycles.shape == (2, hi - lo) and cycles.dtype == np.float32
        parts.append(cycles)
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)
    np.testing.assert_array_equal(count, np.cumsum(f0 * (HOP / SR), axis=1)[:, -1])
