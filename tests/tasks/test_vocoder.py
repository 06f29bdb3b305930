"""`seqgen sample` and `seqgen evaluate` on a trained tiny run (CLI end to end)."""
import json

import numpy as np
import pytest
import soundfile as sf

from conftest import cli_here, run_cli


def _valid_wav(data_dir, tmp_path, seconds=0.3):
    """A held-out utterance of the prepared corpus, written as a wav file."""
    from seqgen.data import audio as A
    from seqgen.data import pipeline as D

    info = D.VocoderData(data_dir)
    window = int(seconds * info.sample_rate) // info.hop * info.hop
    _, target, weight = next(iter(D.vocoder_eval_dataset(data_dir, "valid", window, 1, discrete=False)))
    wav = target[0][: int(weight[0].sum())]
    return A.save(tmp_path / "ref.wav", wav, info.sample_rate), info


@pytest.mark.slow  # ~60 s; cached == naive is checked for every decoder in tests/models/test_contract.py
def test_naive_and_cached_write_identical_wavs(tiny_run, espeak_vocoder_data, tmp_path):
    ref, info = _valid_wav(espeak_vocoder_data, tmp_path, seconds=0.15)
    outs = {}
    for method in ("naive", "cached"):
        out = tmp_path / f"{method}.wav"
        run_cli("sample", "--run", tiny_run, "--mel-from", ref, "--out", out, "--method", method,
                "--seed", "7", "--json", tmp_path / f"{method}.json")
        outs[method] = out
    a, sr = sf.read(outs["naive"], dtype="int16")
    b, _ = sf.read(outs["cached"], dtype="int16")
    assert sr == info.sample_rate
    assert len(a) == (len(sf.read(ref)[0]) // info.hop) * info.hop
    assert np.array_equal(a, b)
    assert outs["naive"].read_bytes() == outs["cached"].read_bytes()
    # Another seed gives another sample.
    run_cli("sample", "--run", tiny_run, "--mel-from", ref, "--out", tmp_path / "s8.wav", "--seed", "8")
    c, _ = sf.read(tmp_path / "s8.wav", dtype="int16")
    assert not np.array_equal(b, c)
    cached = json.loads((tmp_path / "cached.json").read_text())
    naive = json.loads((tmp_path / "naive.json").read_text())
    assert cached["step"] == 20 and cached["num_samples"] == len(b)
    print("samples/s cached", cached["samples_per_sec"], "naive", naive["samples_per_sec"])


def test_native_method_writes_the_cached_wav(tiny_run, espeak_vocoder_data, tmp_path):
    """`seqgen sample --method native` (the loop in C) writes what `--method cached` writes (to float
    rounding), and streamed the same file as not; a weight type without --method native is a one-line
    error."""
    ref, _ = _valid_wav(espeak_vocoder_data, tmp_path, seconds=0.1)
    for name, extra in (("cached", ["--method", "cached"]), ("native", ["--method", "native"]),
                        ("stream", ["--method", "native", "--stream"])):
        run_cli("sample", "--run", tiny_run, "--mel-from", ref, "--out", tmp_path / f"{name}.wav", "--seed", "2",
                "--json", tmp_path / f"{name}.json", *extra)
    # the C loop sums in another order: a draw within rounding of a class boundary could go the other way
    native, cached = (sf.read(tmp_path / f"{n}.wav", dtype="int16")[0] for n in ("native", "cached"))
    assert len(native) == len(cached) and np.mean(native == cached) > 0.99
    assert (tmp_path / "stream.wav").read_bytes() == (tmp_path / "native.wav").read_bytes()
    res = json.loads((tmp_path / "native.json").read_text())
    assert res["method"] == "native" and res["weight_dtype"] == "float32"
    run_cli("sample", "--run", tiny_run, "--mel-from", ref, "--out", tmp_path / "bf16.wav", "--seed", "2",
            "--method", "native", "--weight-dtype", "bfloat16")
    assert sf.read(tmp_path / "bf16.wav")[0].shape == sf.read(tmp_path / "cached.wav")[0].shape
    code, _, err = cli_here("sample", "--run", tiny_run, "--mel-from", ref, "--out", tmp_path / "x.wav",
                            "--weight-dtype", "int8")
    assert code == 2 and "--method native" in err and len(err.strip().splitlines()) == 1


def test_sample_from_npy_and_plot(tiny_run, espeak_vocoder_data, tmp_path):
    from seqgen.data import audio as A

    ref, info = _valid_wav(espeak_vocoder_data, tmp_path, seconds=0.1)
    mel = A.log_mel(A.load(ref, info.sample_rate), info.features)
    np.save(tmp_path / "mel.npy", mel)
    run_cli("sample", "--run", tiny_run, "--mel", tmp_path / "mel.npy", "--out", tmp_path / "a.wav", "--seed", "1")
    run_cli("sample", "--run", tiny_run, "--mel-from", ref, "--out", tmp_path / "b.wav", "--seed", "1", "--plot")
    # The same mel, given as frames or computed from the wav, gives the same audio.
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    png = (tmp_path / "b.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_top_p_sampling_from_the_cli(tiny_run, espeak_vocoder_data, tmp_path, quiet_cli):
    ref, _ = _valid_wav(espeak_vocoder_data, tmp_path, seconds=0.1)
    outs = {}
    for name, extra in (("plain", []), ("one", ["--top-p", "1"]), ("nucleus", ["--top-p", "0.5"])):
        code, _, err = cli_here("sample", "--run", tiny_run, "--mel-from", ref, "--out", tmp_path / f"{name}.wav",
                                "--seed", "2", "--json", tmp_path / f"{name}.json", *extra)
        assert code == 0, err
        outs[name] = (tmp_path / f"{name}.wav").read_bytes()
    assert outs["one"] == outs["plain"] and outs["nucleus"] != outs["plain"]
    assert json.loads((tmp_path / "nucleus.json").read_text())["top_p"] == 0.5
    code, _, err = cli_here("sample", "--run", tiny_run, "--mel-from", ref, "--out", tmp_path / "x.wav",
                            "--top-p", "1.5")
    assert code == 2 and "--top-p must be in (0, 1]" in err


def test_sample_user_errors_are_one_line(tiny_run, tmp_path, quiet_cli):
    cases = [
        (["--seconds", "1"], "mel-conditioned"),
        (["--mel-from", tmp_path / "missing.wav"], "missing.wav"),
        (["--mel", tmp_path / "missing.npy"], "missing.npy"),
    ]
    np.save(tmp_path / "bad.npy", np.zeros((10, 7), np.float32))
    cases.append((["--mel", tmp_path / "bad.npy"], "80"))
    for extra, needle in cases:
        code, _, err = cli_here("sample", "--run", tiny_run, "--out", tmp_path / "x.wav", *extra)
        assert code == 2, (extra, err)
        assert err.count("\n") == 1 and err.startswith("seqgen: error:") and needle in err, (extra, err)
    code, _, err = cli_here("sample", "--run", tmp_path / "norun", "--out", tmp_path / "x.wav", "--seconds", "1")
    assert code == 2 and "no such run directory" in err


def test_evaluate_writes_json(tiny_run, espeak_vocoder_data, tmp_path):
    out = tmp_path / "m.json"
    run_cli("evaluate", "--run", tiny_run, "--data", espeak_vocoder_data, "--json", out)
    m = json.loads(out.read_text())
    manifest = json.loads((espeak_vocoder_data / "manifest.json").read_text())
    assert m["step"] == 20
    assert m["num_samples"] == manifest["splits"]["valid"]["num_samples"]
    # A model that has trained a little beats the uniform 8 bits but is far from perfect.
    assert 0.5 < m["nll_bits_per_sample"] < 8.0


def test_stream_writes_the_same_file_and_yields_the_same_audio(tiny_run, espeak_vocoder_data, tmp_path):
    import seqgen
    from seqgen.data import audio as A

    ref, info = _valid_wav(espeak_vocoder_data, tmp_path, seconds=0.2)
    run_cli("sample", "--run", tiny_run, "--mel-from", ref, "--out", tmp_path / "whole.wav", "--seed", "3",
            "--chunk-size", "512")
    run_cli("sample", "--run", tiny_run, "--mel-from", ref, "--out", tmp_path / "stream.wav", "--seed", "3",
            "--chunk-size", "512", "--stream", "--json", tmp_path / "s.json")
    assert (tmp_path / "stream.wav").read_bytes() == (tmp_path / "whole.wav").read_bytes()
    res = json.loads((tmp_path / "s.json").read_text())
    assert res["stream"] is True and res["num_samples"] == len(sf.read(tmp_path / "whole.wav")[0])
    assert res["chunks"] > 1 and 0 < res["first_chunk_seconds"] <= res["wall_seconds"]
    assert 0 < res["chunk_rtf_median"] <= res["chunk_rtf_max"] and res["peak_rss_mb"] > 0
    # raw frames in a .npy are read per chunk from the mapped file: the same file again
    np.save(tmp_path / "mel.npy", A.log_mel(A.load(ref, info.sample_rate), info.features).T)   # [n_mels, frames]
    run_cli("sample", "--run", tiny_run, "--mel", tmp_path / "mel.npy", "--out", tmp_path / "npy.wav", "--seed",
            "3", "--chunk-size", "512", "--stream")
    assert (tmp_path / "npy.wav").read_bytes() == (tmp_path / "whole.wav").read_bytes()
    chunks = list(seqgen.load(tiny_run).stream(mel_from=ref, seed=3, chunk_size=512))
    assert len(chunks) > 1
    A.save(tmp_path / "lib.wav", np.concatenate(chunks), info.sample_rate)
    assert (tmp_path / "lib.wav").read_bytes() == (tmp_path / "whole.wav").read_bytes()
    out = run_cli("sample", "--run", tiny_run, "--mel-from", ref, "--out", tmp_path / "x.wav", "--stream",
                  "--method", "naive", check=False)
    assert out.returncode != 0 and "cannot stream" in (out.stderr + out.stdout)


def test_several_inputs_share_batched_loops_and_each_is_its_own_sample(tiny_run, espeak_vocoder_data, tmp_path,
                                                                       quiet_cli):
    from seqgen.data import audio as A

    ref, info = _valid_wav(espeak_vocoder_data, tmp_path, seconds=0.25)
    audio = A.load(ref, info.sample_rate)
    clips = tmp_path / "clips"
    clips.mkdir()
    for name, secs in (("a", 0.1), ("b", 0.25), ("c", 0.15)):   # three lengths: padded to share a loop
        A.save(clips / f"{name}.wav", audio[: int(secs * info.sample_rate)], info.sample_rate)
    np.save(tmp_path / "d.npy", A.log_mel(audio[: int(0.05 * info.sample_rate)], info.features))
    code, _, err = cli_here("sample", "--run", tiny_run, "--mel-from", clips, "--mel", tmp_path / "d.npy",
                            "--out", tmp_path / "out", "--batch-size", "2", "--seed", "5", "--json", tmp_path / "r.json")
    assert code == 0, err
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["count"] == 4 and [i["seed"] for i in r["items"]] == [5, 6, 7, 8] and r["batch_size"] == 2
    # input k (folders sorted, then --mel) is what sampling it alone with seed 5 + k makes, up to the float
    # rounding of another batch shape: a draw that lands within rounding of a class boundary can go the
    # other way (seen once in a full run on a Zen 5 host: 4 of 3,072 samples), so nearly every sample, not
    # every one, must agree; a wrong seed or row would make nearly all of them differ
    for k, name in enumerate(("a", "b", "c")):
        code, _, err = cli_here("sample", "--run", tiny_run, "--mel-from", clips / f"{name}.wav", "--out",
                                tmp_path / f"alone_{name}.wav", "--seed", str(5 + k))
        assert code == 0, err
        batched, _ = sf.read(tmp_path / "out" / f"{name}.wav", dtype="int16")
        alone, _ = sf.read(tmp_path / f"alone_{name}.wav", dtype="int16")
        assert len(batched) == len(alone) == len(sf.read(clips / f"{name}.wav")[0]) // info.hop * info.hop
        assert np.mean(batched == alone) > 0.99, np.mean(batched == alone)
    assert (tmp_path / "out" / "d.wav").is_file()
    code, _, err = cli_here("sample", "--run", tiny_run, "--mel-from", clips, "--out", tmp_path / "x.wav")
    assert code == 2 and "folder" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli_here("sample", "--run", tiny_run, "--mel-from", clips, "--out", tmp_path / "o", "--stream")
    assert code == 2 and "--stream works on one input" in err
