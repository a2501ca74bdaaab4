"""The fused prosody path (stream_frames_kernel, advance_kernel, batch-wide outputs)
against the unfused one it replaced (tests/prosody_ref.py), bit for bit: live ticks
send a few streams' blocks per call, mostly without speech, in any mix."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from prosody_ref import unfused_advance, unfused_batch

from engine.affect import kernels as k
from engine.affect.prosody import (
    _WINDOW,
    _WINDOW_ACF,
    _WINDOW_POWER,
    HISTORY,
    ProsodyHops,
    ProsodyTracker,
    process_batch,
)
from engine.types import HOP
from tests.test_prosody import _runs_mask, _sample_tracks


def same_state(a: ProsodyTracker, b: ProsodyTracker) -> None:
    sa, sb = a.state, b.state
    for name in ("history", "pitch", "spectral", "pulse", "nuclei", "sums"):
        assert_array_equal(getattr(sa, name), getattr(sb, name), err_msg=name)
    for name in ("hops", "speech_hops", "voiced_hops", "nuclei_count", "spectral_hop"):
        assert getattr(sa, name) == getattr(sb, name), name


def same_hops(a: ProsodyHops, b: ProsodyHops) -> None:
    assert a.start_hop == b.start_hop
    for name in ("values", "speech", "voiced", "nucleus"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert_array_equal(x, y, err_msg=name)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_process_batch_equals_unfused_in_any_mix_of_streams_and_chunks(seed: int) -> None:
    """Six streams (15 % speech in turns, i.i.d. hops, all, none, speech from the middle
    on), each call a random subset with random chunk lengths (0 too): every ProsodyHops
    and every state as the unfused path gives."""
    rng = np.random.default_rng(seed)
    tracks = _sample_tracks()
    n = 1500
    pcms = [tracks[i % len(tracks)][0][(i * 37) * HOP :][: n * HOP] for i in range(6)]
    late = np.zeros(n, bool)
    late[n // 2 + seed :] = True
    masks = [
        _runs_mask(n, 0.15, 60.0, seed),
        rng.random(n) < 0.5,
        np.ones(n, bool),
        np.zeros(n, bool),
        late,
        _runs_mask(n, 0.2, 5.0, seed + 10),
    ]
    new = [ProsodyTracker() for _ in pcms]
    old = [ProsodyTracker() for _ in pcms]
    done = [0] * len(pcms)
    calls = 0
    while min(done) < n:
        pick = [i for i in range(len(pcms)) if done[i] < n and rng.random() < 0.6]
        if not pick:
            continue
        ins = []
        for i in pick:
            step = min(int(rng.choice([0, 1, 2, 7, 50, 50, 50, 120])), n - done[i])
            a, b = done[i], done[i] + step
            ins.append((pcms[i][a * HOP : b * HOP], masks[i][a:b]))
            done[i] = b
        got = process_batch([new[i] for i in pick], [p for p, _ in ins], [m for _, m in ins])
        want = unfused_batch([old[i] for i in pick], [p for p, _ in ins], [m for _, m in ins])
        for g, w in zip(got, want, strict=True):
            same_hops(g, w)
        calls += 1
    assert calls > 20
    for a, b in zip(new, old, strict=True):
        same_state(a, b)
        assert repr(a.summary()) == repr(b.summary())
    assert sum(t.state.nuclei_count for t in new) > 5


def test_outputs_do_not_alias_the_callers_mask() -> None:
    pcm = _sample_tracks()[0][0][: 100 * HOP]
    mask = np.zeros(100, bool)
    mask[10:60] = True
    h = ProsodyTracker().push(pcm, mask)
    mask[:] = False
    assert h.speech[10:60].all() and h.speech.sum() == 50


def _advance_inputs(n: int, share: float, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(HISTORY + n * HOP) * 0.1
    t = np.arange(x.shape[0])
    x += 0.3 * np.sin(2 * np.pi * 140.0 * t / 16000)  # a periodic voice for the pulses
    acf = rng.standard_normal((n, 270)) * 0.2
    acf[:, 0] = rng.uniform(0.5, 2.0, n)
    acf[:, 100:110] += acf[:, :1] * 0.9  # peaks near 155 Hz over the threshold
    level, alpha, hamm, flux = rng.uniform(-70, -10, (4, n))
    speech = rng.random(n) < share
    return x, acf, level, alpha, hamm, flux, speech


@pytest.mark.parametrize("share", [0.0, 0.2, 1.0])
def test_advance_kernel_equals_the_kernels_one_by_one(share: float) -> None:
    """advance_kernel against the separate kernels and numpy between them (the reference
    each kernel is tested against lives in test_prosody_kernels.py), over two chunks."""
    a, b = ProsodyTracker(), ProsodyTracker()
    for seed in (0, 1):
        n = 60
        x, acf, level, alpha, hamm, flux, speech = _advance_inputs(n, share, seed)
        want = unfused_advance(b, x, level, alpha, hamm, flux, acf, speech)
        values = np.empty((n, k.N_FEATURES))
        voiced = np.empty(n, np.uint8)
        nucleus = np.empty(n, np.uint8)
        st = a.state
        counts = k.advance_kernel(
            acf,
            _WINDOW_ACF,
            level,
            alpha,
            hamm,
            flux,
            speech.view(np.uint8),
            x,
            st.hops,
            HOP,
            a._pitch_params,
            a._pulse_params,
            a._nuclei_params,
            st.pitch,
            st.pulse,
            st.nuclei,
            st.sums,
            st.history,
            values,
            voiced,
            nucleus,
        )
        assert_array_equal(values, want.values)
        assert_array_equal(voiced.view(bool), want.voiced)
        assert_array_equal(nucleus.view(bool), want.nucleus)
        assert counts == (int(speech.sum()), int(want.voiced.sum()), int(want.nucleus.sum()))
        assert_array_equal(st.history, x[-HISTORY:])
        st.hops += n
        for name in ("pitch", "pulse", "nuclei", "sums"):
            assert_array_equal(getattr(st, name), getattr(b.state, name), err_msg=name)
        if share == 1.0:
            assert want.voiced.any() and np.isfinite(want.values[:, k.F_JITTER]).any()


def test_stream_frames_kernel_lays_out_samples_and_frames_as_numpy() -> None:
    rng = np.random.default_rng(5)
    n = 40
    history = rng.standard_normal(HISTORY) * 0.1
    pcm = rng.integers(-32768, 32768, n * HOP, dtype=np.int16)
    speech = rng.random(n) < 0.3
    x = np.empty(HISTORY + n * HOP)
    frames = np.empty((n, k.FRAME))
    rows = np.empty(n, np.int64)
    sel = np.empty(n, bool)
    level = np.full(n, 7.0)
    first = HISTORY + HOP - k.FRAME
    args = (first, HOP, _WINDOW, speech, _WINDOW_POWER, 3)
    m = k.stream_frames_kernel(history, pcm, x, *args, frames, rows, sel, level)
    want_x = np.concatenate((history, pcm / 32768.0))
    assert_array_equal(x, want_x)
    frames2, rows2, sel2, level2 = (
        np.empty_like(frames),
        np.empty_like(rows),
        sel.copy(),
        level.copy(),
    )
    level2[:] = 7.0
    m2 = k.frame_rows_kernel(want_x, *args, frames2, rows2, sel2, level2)
    assert m == m2
    assert_array_equal(frames[:m], frames2[:m])
    assert_array_equal(rows[:m], rows2[:m])
    assert_array_equal(sel[:m], sel2[:m])
    assert_array_equal(level, level2)
