"""MelView and load_log_mel (seqgen.data.mel_view): normalized frames read per slice from a memory-mapped
.npy, the same bits as normalizing the whole array; one-line errors for bad files."""
import os

import numpy as np
import pytest

from seqgen.data.mel_view import MelView, load_log_mel

MEAN = np.linspace(-6.0, -2.0, 5).astype(np.float32)
STD = np.linspace(1.0, 2.0, 5).astype(np.float32)


def _raw(frames=300, seed=0):
    return np.random.default_rng(seed).normal(-4.0, 1.5, size=(frames, 5)).astype(np.float32)


def test_slices_are_the_whole_normalization_sliced():
    raw = _raw()
    whole = ((raw - MEAN) / STD).astype(np.float32)[None]
    view = MelView(raw, MEAN, STD)
    assert view.shape == (1, 300, 5) and view.ndim == 3 and len(view) == 1
    for idx in [(slice(None), slice(0, 7)), (slice(None), slice(250, 400)), (0, slice(10, 20)),
                (slice(None), slice(5, 9), slice(None)), (slice(None),)]:
        np.testing.assert_array_equal(view[idx], whole[idx])
    np.testing.assert_array_equal(np.asarray(view), whole)
    assert np.asarray(view, np.float64).dtype == np.float64
    with pytest.raises(IndexError, match="band axis"):
        view[:, :, 1:3]
    with pytest.raises(ValueError, match=r"mean/std"):
        MelView(raw, MEAN[:4], STD)


def test_load_maps_the_file_and_reads_either_layout(tmp_path):
    raw = _raw()
    np.save(tmp_path / "a.npy", raw)
    np.save(tmp_path / "b.npy", raw.T.copy())                     # [n_mels, frames]
    a = load_log_mel(tmp_path / "a.npy", 5, MEAN, STD)
    b = load_log_mel(tmp_path / "b.npy", 5, MEAN, STD)
    assert a.shape == b.shape == (1, 300, 5)
    np.testing.assert_array_equal(a[:, 40:90], b[:, 40:90])
    np.testing.assert_array_equal(np.asarray(a), ((raw - MEAN) / STD)[None])


def _resident_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux's /proc/self/statm")
def test_reading_a_long_mel_through_keeps_no_file_pages_resident(tmp_path):
    """A mapping held for the whole view would keep every page read in the resident set (a 60-minute
    mel: its 99 MB by the end); the view maps the file per read, so reading 64 MB through leaves the
    resident set where it was."""
    frames = 200_000
    out = np.lib.format.open_memmap(tmp_path / "long.npy", mode="w+", dtype=np.float32, shape=(frames, 80))
    out[:] = -4.0
    out.flush()
    del out
    view = load_log_mel(tmp_path / "long.npy", 80, np.full(80, -4.0), np.ones(80))   # scans it whole
    before = _resident_mb()
    total = 0.0
    for lo in range(0, frames, 512):
        total += float(view[:, lo:lo + 512].sum())
    assert total == 0.0
    assert _resident_mb() - before < 16, "the file's pages stayed mapped"


def test_bad_files_are_one_line_errors_naming_the_file(tmp_path):
    raw = _raw(100000)                                             # two blocks of the finiteness scan
    raw[70000, 2] = np.nan
    np.save(tmp_path / "nan.npy", raw)
    with pytest.raises(ValueError, match=r"--mel .*nan\.npy: contains NaN or Inf \(first at frame 70000\)"):
        load_log_mel(tmp_path / "nan.npy", 5, MEAN, STD)
    np.save(tmp_path / "shape.npy", np.zeros((10, 7), np.float32))
    with pytest.raises(ValueError, match=r"shape\.npy: expected \[frames, 5\]"):
        load_log_mel(tmp_path / "shape.npy", 5, MEAN, STD)
    (tmp_path / "junk.npy").write_bytes(b"not a numpy file")
    with pytest.raises(ValueError, match=r"junk\.npy: cannot read a numpy array"):
        load_log_mel(tmp_path / "junk.npy", 5, MEAN, STD)
    np.save(tmp_path / "ints.npy", np.zeros((10, 5), np.int16))
    with pytest.raises(ValueError, match="floating point"):
        load_log_mel(tmp_path / "ints.npy", 5, MEAN, STD)
