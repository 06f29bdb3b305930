"""beam_search: finds better-than-greedy sequences, scores consistent with the
sequences (cache reordering), per-example max_length, batching, beam 1 ==
greedy for both decoders."""
import keras
import numpy as np
import pytest
from keras import ops

from seqgen.core.beam_search import beam_search
from seqgen.core.decoding import compile_fn
from seqgen.models.bytenet import ByteNet
from seqgen.models.transformer import TransformerDecoder

pytestmark = pytest.mark.multibackend

V, EOS, PAD, BOS = 8, 7, 6, 5


def _toy(seed=0):
    """A model whose logits depend on the previous token, the position and a
    cache (running sum of the earlier inputs, per row): wrong cache
    reordering gives wrong scores."""
    rng = np.random.default_rng(seed)
    table = rng.normal(size=(V, V)).astype(np.float32) * 2
    pos = rng.normal(size=(16, V)).astype(np.float32)
    hist = rng.normal(size=(V, V)).astype(np.float32) * 2

    def logits_np(prev, t, acc):
        return table[prev] + pos[t] + hist[acc % V]

    def step_fn(x, cache, t, ctx):
        acc = cache["acc"]
        logits = (ops.take(table, x, axis=0) + ops.take(pos, ops.reshape(t, (1,)), axis=0)
                  + ops.take(hist, ops.mod(acc, V), axis=0))
        return logits, {"acc": acc + x}

    return step_fn, logits_np


def _log_softmax(z):
    z = z.copy()
    z[[PAD, BOS]] = -1e9
    z = z - z.max()
    return z - np.log(np.exp(z).sum())


def _score(logits_np, seq, alpha):
    """Normalised log-probability of a sequence (BOS first input, stops at EOS)."""
    prev, acc, lp = BOS, 0, 0.0
    n = 0
    for t, tok in enumerate(seq):
        if tok == PAD:
            break
        lp += _log_softmax(logits_np(prev, t, acc))[tok]
        n += 1
        acc += prev
        prev = tok
        if tok == EOS:
            break
    return lp / ((5.0 + n) / 6.0) ** alpha, n


def _run(step_fn, b, k, length, alpha, max_length=None, return_all=False):
    def fn(x0, ml):
        return beam_search(step_fn, {"acc": ops.zeros((b,), "int32")}, x0, beam_size=k,
                           length=length, eos_id=EOS, max_length=ml, length_penalty=alpha,
                           pad_id=PAD, banned=(PAD, BOS), return_all=return_all)

    ml = np.full((b,), length, np.int32) if max_length is None else np.asarray(max_length, np.int32)
    seqs, scores = compile_fn(fn)(np.full((b,), BOS, np.int32), ml)
    return ops.convert_to_numpy(seqs), ops.convert_to_numpy(scores)


def _greedy(logits_np, length):
    prev, acc, out = BOS, 0, []
    for t in range(length):
        tok = int(np.argmax(_log_softmax(logits_np(prev, t, acc))))
        out.append(tok)
        if tok == EOS:
            break
        acc += prev
        prev = tok
    return out


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_scores_match_sequences_and_beat_greedy(alpha):
    wins = 0
    for seed in range(3):
        step_fn, logits_np = _toy(seed)
        seqs, scores = _run(step_fn, 1, 4, 6, alpha, return_all=True)
        assert seqs.shape == (1, 4, 6) and scores.shape == (1, 4)
        assert np.all(np.diff(scores[0]) <= 1e-6)  # sorted best first
        for seq, sc in zip(seqs[0], scores[0]):
            ref, n = _score(logits_np, seq, alpha)
            np.testing.assert_allclose(sc, ref, rtol=1e-4, atol=1e-4)
            assert (seq[n:] == PAD).all()
        g = _greedy(logits_np, 6)
        g_score, _ = _score(logits_np, g, alpha)
        assert scores[0, 0] >= g_score - 1e-5
        wins += scores[0, 0] > g_score + 1e-4
    assert wins >= 1  # beam search is not just greedy here


def test_beam_one_is_greedy_and_batch_rows_independent():
    step_fn, logits_np = _toy(1)
    seqs, _ = _run(step_fn, 1, 1, 7, 0.0)
    g = _greedy(logits_np, 7)
    np.testing.assert_array_equal(seqs[0, :len(g)], g)
    # a batch of 3 identical rows with different max lengths
    seqs3, scores3 = _run(step_fn, 3, 3, 7, 0.6, max_length=[7, 3, 1])
    single, s1 = _run(step_fn, 1, 3, 7, 0.6)
    np.testing.assert_array_equal(seqs3[0], single[0])
    np.testing.assert_allclose(scores3[0], s1[0], rtol=1e-5)
    for row, m in zip(seqs3, [7, 3, 1]):
        assert (row[m:] == PAD).all() and (row[:1] != PAD).all()


def test_max_length_without_eos():
    step_fn, _ = _toy(2)

    def no_eos(x, cache, t, ctx):
        logits, cache = step_fn(x, cache, t, ctx)
        return ops.where(ops.arange(V) == EOS, -1e9, logits), cache

    seqs, _ = _run(no_eos, 2, 2, 8, 0.6, max_length=[5, 8])
    assert (seqs[0, :5] != PAD).all() and (seqs[0, 5:] == PAD).all()
    assert (seqs[1] != PAD).all() and not (seqs == EOS).any()


def test_transformer_and_bytenet_beam_one_equals_greedy():
    keras.utils.set_random_seed(0)
    tr = TransformerDecoder(num_layers=1, d_model=16, num_heads=2, max_length=64, dropout=0.0)
    greedy = tr.generate([[1, 2, 3], [4, 5, 6]], max_new_tokens=8, temperature=0.0)
    beam1 = tr.generate_beam([[1, 2, 3], [4, 5, 6]], max_new_tokens=8, beam_size=1,
                             length_penalty=0.0)
    np.testing.assert_array_equal(beam1, greedy)
    beam3, scores = tr.generate_beam([[1, 2, 3], [4, 5, 6]], max_new_tokens=8, beam_size=3,
                                     return_scores=True)
    assert beam3.shape == (2, 8) and np.all(np.isfinite(scores))

    bn = ByteNet(d_model=16, dilations=[1, 2], num_sets=1, unfold_b=4)
    srcs = [[10, 20, 30], [40, 50, 60, 70, 80]]
    np.testing.assert_array_equal(bn.translate(srcs, beam_size=1, length_penalty=0.0),
                                  bn.translate(srcs, temperature=0.0))
    out = bn.translate(srcs, beam_size=3)
    bounds = bn.unfold_bound([3, 5])
    for row, m in zip(out, bounds):
        assert (row[m:] == 256).all()
