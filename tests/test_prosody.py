"""ProsodyTracker: chunking invariance, batching, known signals, validation; RobustBaseline."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from prosody_ref import dense_batch

from engine.affect.baseline import BaselineConfig, RobustBaseline
from engine.affect.prosody import (
    FEATURES,
    ProsodyConfig,
    ProsodyHops,
    ProsodyTracker,
    process_batch,
)
from engine.audio.decode import decode_file
from engine.sample import sample_session, sample_truth

FS = 16_000


def speechlike(seconds: float, f0: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Voiced syllables (4/s, gliding F0) separated by noise and silence, with a mask."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FS) // 160 * 160
    t = np.arange(n) / FS
    f = f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = np.cumsum(f) / FS
    x = sum(np.sin(2 * np.pi * h * phase) / h for h in range(1, 10))
    env = np.maximum(0, np.sin(2 * np.pi * 4 * t)) ** 2
    x = 0.4 * x * env + 0.01 * rng.standard_normal(n)
    x[(t > seconds * 0.4) & (t < seconds * 0.5)] = 0.0
    pcm = np.clip(x * 32767 / 2, -32768, 32767).astype(np.int16)
    mask = np.ones(n // 160, bool)
    mask[int(len(mask) * 0.4) : int(len(mask) * 0.5)] = False
    return pcm, mask


def concat(parts: list[ProsodyHops]) -> dict[str, np.ndarray]:
    names = (*FEATURES, "speech", "voiced", "nucleus")
    return {name: np.concatenate([getattr(p, name) for p in parts]) for name in names}


def run_chunked(pcm: np.ndarray, mask: np.ndarray, sizes: list[int]) -> tuple[dict, object]:
    tracker = ProsodyTracker()
    parts = []
    hop = 0
    i = 0
    while hop < mask.shape[0]:
        step = sizes[i % len(sizes)]
        i += 1
        parts.append(tracker.push(pcm[hop * 160 : (hop + step) * 160], mask[hop : hop + step]))
        assert parts[-1].start_hop == hop
        hop += min(step, mask.shape[0] - hop)
    return concat(parts), tracker.summary()


def test_identical_results_however_chunked() -> None:
    pcm, mask = speechlike(6.0, 140.0, 0)
    whole, summ = run_chunked(pcm, mask, [10_000])
    assert whole["voiced"].sum() > 100 and whole["nucleus"].sum() > 5
    for sizes in ([1], [3, 7, 1], [50, 2, 13]):
        got, s2 = run_chunked(pcm, mask, sizes)
        for name, arr in whole.items():
            assert_array_equal(got[name], arr, err_msg=f"{name} with chunks {sizes}")
        assert repr(s2) == repr(summ)  # repr: NaN compares equal, floats exactly


def test_batch_equals_single_streams() -> None:
    a_pcm, a_mask = speechlike(3.0, 120.0, 1)
    b_pcm, b_mask = speechlike(3.0, 220.0, 2)
    singles = [ProsodyTracker(), ProsodyTracker()]
    batched = [ProsodyTracker(), ProsodyTracker()]
    for lo in range(0, 300, 25):
        sl, ml = slice(lo * 160, (lo + 25) * 160), slice(lo, lo + 25)
        one = [singles[0].push(a_pcm[sl], a_mask[ml]), singles[1].push(b_pcm[sl], b_mask[ml])]
        two = process_batch(batched, [a_pcm[sl], b_pcm[sl]], [a_mask[ml], b_mask[ml]])
        for x, y in zip(one, two, strict=True):
            assert_array_equal(x.matrix(), y.matrix())
            assert_array_equal(x.nucleus, y.nucleus)
    assert repr(singles[0].summary()) == repr(batched[0].summary())
    assert batched[0].summary().f0_mean_st < batched[1].summary().f0_mean_st - 9  # ~an octave


def test_known_pitch_and_masking() -> None:
    pcm, mask = speechlike(4.0, 150.0, 3)
    tracker = ProsodyTracker()
    hops = tracker.push(pcm, mask)
    # no feature outside the speech mask
    for name in FEATURES:
        assert np.isnan(getattr(hops, name)[~mask]).all(), name
    assert not hops.voiced[~mask].any()
    # voiced F0 within +-10 % glide of 150 Hz, i.e. semitones re 27.5 Hz
    f0 = hops.f0_st[hops.voiced]
    lo, hi = 12 * math.log2(150 * 0.88 / 27.5), 12 * math.log2(150 * 1.12 / 27.5)
    assert np.mean((f0 > lo) & (f0 < hi)) > 0.97
    s = tracker.summary()
    assert s.speech_s == pytest.approx(mask.sum() / 100)
    assert 0 < s.voiced_s < s.speech_s
    assert s.jitter < 0.02 and s.hnr_mean_db > 5
    # 4 syllables a second of speech, give or take
    assert 2.5 < s.syllable_rate < 5.0


def test_silence_gives_no_voicing_and_no_inf() -> None:
    tracker = ProsodyTracker()
    hops = tracker.push(np.zeros(16_000, np.int16), np.ones(100, bool))
    assert not hops.voiced.any() and not hops.nucleus.any()
    assert np.isfinite(hops.loudness_db).all() and np.isfinite(hops.spectral_flux).all()
    assert math.isnan(tracker.summary().f0_mean_st)


def test_reset_restarts_the_stream() -> None:
    pcm, mask = speechlike(2.0, 180.0, 4)
    tracker = ProsodyTracker()
    first = tracker.push(pcm, mask)
    tracker.reset()
    again = tracker.push(pcm, mask)
    assert again.start_hop == 0
    assert_array_equal(first.matrix(), again.matrix())


def test_input_checks() -> None:
    t = ProsodyTracker()
    with pytest.raises(ValueError, match="whole"):
        t.push(np.zeros(100, np.int16), np.ones(1, bool))
    with pytest.raises(ValueError, match="int16"):
        t.push(np.zeros(160, np.float32), np.ones(1, bool))
    with pytest.raises(ValueError, match="one value per hop"):
        t.push(np.zeros(320, np.int16), np.ones(1, bool))
    with pytest.raises(ValueError, match="twice"):
        process_batch([t, t], [np.zeros(160, np.int16)] * 2, [np.ones(1, bool)] * 2)
    with pytest.raises(ValueError):
        ProsodyConfig(f0_min_hz=30.0)
    with pytest.raises(TypeError):
        ProsodyConfig(60.0)  # type: ignore[misc]
    t2 = ProsodyTracker()
    pcm, mask = speechlike(1.0, 200.0, 5)
    assert_array_equal(t.push(pcm, mask).values, t2.push(pcm.reshape(-1, 160), mask).values)
    empty = t.push(np.zeros(0, np.int16), np.zeros(0, bool))
    assert empty.n == 0


# ---------------------------------------------------------------------------
# RobustBaseline


def test_baseline_learns_median_and_mad_then_follows_slowly() -> None:
    rng = np.random.default_rng(0)
    cfg = BaselineConfig(learn_s=10.0, half_life_s=20.0)
    b = RobustBaseline(["a", "b"], cfg)
    vals = np.column_stack((20 + 2 * rng.standard_normal(3000), rng.standard_normal(3000)))
    vals[::3, 1] = np.nan  # b is defined on fewer hops
    b.update(vals[:500])
    assert not b.ready.any()
    assert np.isnan(b.deviation(vals[:1])).all()
    b.update(vals[500:1000])
    assert b.ready[0] and not b.ready[1]
    learned = vals[:1000, 0]
    assert b.state.median[0] == pytest.approx(np.median(learned), rel=1e-6)
    mad = np.median(np.abs(learned - np.median(learned)))
    assert b.state.scale[0] == pytest.approx(1.4826 * mad, rel=1e-5)
    b.update(vals[1000:])
    assert b.ready.all()
    z = b.deviation(np.array([[26.0, 0.0]]))
    assert 2.5 < z[0, 0] < 3.5 and abs(z[0, 1]) < 0.3
    # a lasting shift of +4 (2 sd) is followed within a few half-lives, and the scale holds
    shifted = np.column_stack((24 + 2 * rng.standard_normal(12000), rng.standard_normal(12000)))
    b.update(shifted)
    assert b.state.median[0] == pytest.approx(24.0, abs=0.5)
    assert b.state.scale[0] == pytest.approx(2.0, rel=0.25)


def test_baseline_reset_and_checks() -> None:
    b = RobustBaseline(["x"], BaselineConfig(learn_s=5.0))
    b.update(np.arange(600, dtype=np.float64)[:, None])
    assert b.ready.all()
    b.reset()
    assert not b.ready.any() and np.isnan(b.state.median).all()
    with pytest.raises(ValueError):
        b.update(np.zeros((3, 2)))
    with pytest.raises(ValueError):
        RobustBaseline(["x", "x"])
    with pytest.raises(ValueError):
        BaselineConfig(learn_s=1.0)
    with pytest.raises(ValueError):
        RobustBaseline(["x"], BaselineConfig(min_scale=(1.0, 2.0)))


def test_baseline_min_scale_floors_a_constant_feature() -> None:
    b = RobustBaseline(["x"], BaselineConfig(learn_s=5.0, min_scale=(0.5,)))
    b.update(np.full((600, 1), 3.0))
    assert_allclose(b.deviation(np.array([[4.0]])), [[2.0]])


@pytest.mark.parametrize("block", [1, 10, 37])
def test_inverse_fft_on_speech_hops_only_changes_nothing(block: int) -> None:
    """The autocorrelation is computed only on speech hops now: identical features,
    voicing, nuclei and summaries to the old path, for mixed, all-speech and no-speech
    blocks across a batch of streams."""
    a_pcm, a_mask = speechlike(4.0, 120.0, 3)
    b_pcm, b_mask = speechlike(4.0, 210.0, 4)
    c_pcm, c_mask = speechlike(4.0, 160.0, 5)
    b_mask = np.ones_like(b_mask)  # all speech
    c_mask = np.zeros_like(c_mask)  # none
    new = [ProsodyTracker() for _ in range(3)]
    old = [ProsodyTracker() for _ in range(3)]
    for lo in range(0, a_mask.shape[0], block):
        sl, ml = slice(lo * 160, (lo + block) * 160), slice(lo, lo + block)
        pcms = [a_pcm[sl], b_pcm[sl], c_pcm[sl]]
        masks = [a_mask[ml], b_mask[ml], c_mask[ml]]
        got = process_batch(new, pcms, masks)
        want = dense_batch(old, pcms, masks)
        for x, y in zip(got, want, strict=True):
            assert_array_equal(x.matrix(), y.matrix())
            assert_array_equal(x.voiced, y.voiced)
            assert_array_equal(x.nucleus, y.nucleus)
    for x, y in zip(new, old, strict=True):
        assert repr(x.summary()) == repr(y.summary())
    assert new[0].summary().voiced_s > 1.0


@cache
def _sample_tracks(seconds: int = 60) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """The bundled sample's tracks, first `seconds`, with their speakers' labelled speech
    as the mask: real speech with real silences and pauses between turns."""
    truth = sample_truth()
    _, chunks = decode_file(sample_session())
    parts: dict[int, list[np.ndarray]] = {}
    for index, pcm in chunks:
        parts.setdefault(index, []).append(pcm)
    n = seconds * 100
    out = []
    for p in truth["participants"]:
        pcm = np.concatenate(parts[p["track"]])[: n * 160]
        mask = np.zeros(n, bool)
        for a, b in p["segments"]:
            mask[round(a * 100) : round(b * 100)] = True
        out.append((pcm, mask))
    return tuple(out)


def _runs_mask(n: int, speech: float, mean_run: float, seed: int) -> np.ndarray:
    """A two-state Markov mask: speech runs of `mean_run` hops on average, `speech` of
    the time (a person's turns in a group session)."""
    rng = np.random.default_rng(seed)
    p_end = 1.0 / mean_run
    p_start = p_end * speech / (1.0 - speech)
    mask = np.empty(n, bool)
    state = bool(rng.random() < speech)
    for i, u in enumerate(rng.random(n)):
        mask[i] = state
        state = (u >= p_end) if state else (u < p_start)
    return mask


def _compare_skipping_with_dense(
    pcms: list[np.ndarray], masks: list[np.ndarray], sizes: list[int]
) -> list[ProsodyTracker]:
    """Run the batch through process_batch in chunks cycling through `sizes` and through
    the dense reference in whole-second chunks; every output must be bit-identical."""
    n = masks[0].shape[0]
    new = [ProsodyTracker() for _ in pcms]
    old = [ProsodyTracker() for _ in pcms]
    got: list[list[ProsodyHops]] = [[] for _ in pcms]
    want: list[list[ProsodyHops]] = [[] for _ in pcms]
    hop, i = 0, 0
    while hop < n:
        step = sizes[i % len(sizes)]
        i += 1
        sl, ml = slice(hop * 160, (hop + step) * 160), slice(hop, hop + step)
        step_out = process_batch(new, [p[sl] for p in pcms], [m[ml] for m in masks])
        for g, h in zip(got, step_out, strict=True):
            g.append(h)
        hop += step
    for lo in range(0, n, 100):
        sl, ml = slice(lo * 160, (lo + 100) * 160), slice(lo, lo + 100)
        step_out = dense_batch(old, [p[sl] for p in pcms], [m[ml] for m in masks])
        for w, h in zip(want, step_out, strict=True):
            w.append(h)
    for g, w, x, y in zip(got, want, new, old, strict=True):
        a, b = concat(g), concat(w)
        for name in a:
            # Exact: the skipped hops' spectra feed no output, and a skipped hop's level
            # (time-domain energy, equal to the spectral one up to rounding) is only
            # compared by the nucleus tracker; equal bits prove no comparison flipped.
            assert_array_equal(a[name], b[name], err_msg=name)
        assert repr(x.summary()) == repr(y.summary())
        assert x.state.hops == y.state.hops == n
    return new


@pytest.mark.parametrize("sizes", [[1], [2], [10], [100], [3, 1, 7, 2, 37, 1, 1, 64]])
def test_skipping_spectra_off_speech_matches_dense_on_real_speech(sizes: list[int]) -> None:
    """Real speech with its labelled silences, 4 streams batched, chunked several ways:
    values, voicing, nuclei and summaries identical to the all-hops FFT path."""
    tracks = _sample_tracks()
    pcms = [p for p, _ in tracks]
    masks = [m for _, m in tracks]
    assert 0.05 < np.mean(np.concatenate(masks)) < 0.6  # mostly not this speaker's turn
    new = _compare_skipping_with_dense(pcms, masks, sizes)
    assert sum(t.summary().nuclei for t in new) > 20


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("sizes", [[1], [2], [5, 1, 13, 2]])
def test_skipping_spectra_off_speech_matches_dense_on_random_masks(
    seed: int, sizes: list[int]
) -> None:
    """Real audio under random masks: i.i.d. hops (many one-hop runs and chunks that open
    with speech), 15 % speech in turns, all speech, no speech, and speech only from the
    middle on (a stream that had no spectrum before its first speech)."""
    pcm = _sample_tracks()[seed][0][: 20 * 16000]
    n = pcm.shape[0] // 160
    rng = np.random.default_rng(seed)
    late = np.zeros(n, bool)
    late[n // 2 + seed :] = True
    masks = [
        rng.random(n) < 0.5,
        _runs_mask(n, 0.15, 150.0, seed),
        _runs_mask(n, 0.15, 8.0, seed + 10),
        np.ones(n, bool),
        np.zeros(n, bool),
        late,
    ]
    _compare_skipping_with_dense([pcm] * len(masks), masks, sizes)
