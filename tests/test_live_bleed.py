"""Speaker-bleed suppression on the live path: the streaming tidy equals `tidy_mask`,
`LiveBleed` fed in any chunks equals the offline suppression, and a synthesized session
with bleed streamed over a real gRPC server on loopback gives the offline figures."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import av
import grpc
import numpy as np
import pytest
from live_util import Stream, by_id, config, end_session, frame
from numpy.testing import assert_array_equal
from synth import Bleed, Session, packets, random_script, synthesize

from engine.bleed import BleedSuppressor, segments_to_mask, tidy_mask
from engine.bleed.live import LiveBleed, StreamingTidy
from engine.config import BleedConfig, LiveConfig, VadConfig
from engine.offline import _suppress_bleed, analyze
from engine.pipeline import ParticipantPipeline
from engine.types import SpeechSegment
from engine.vad import make_backend

MIN_SILENCE = 30  # the VAD's min_silence_hops: bleed gaps shorter stay speech

# ---------------------------------------------------------------------------
# the streaming tidy


def random_mask(rng: np.random.Generator, n: int) -> np.ndarray:
    """Scattered hits or bursty runs, so short and long gaps and runs all occur."""
    p = rng.uniform(0.05, 0.95)
    if rng.uniform() < 0.5:
        return rng.uniform(size=n) < p
    runs = rng.integers(1, 30, size=n + 1)
    return np.repeat(rng.uniform(size=n + 1) < p, runs)[:n]


@pytest.mark.parametrize("seed", range(4))
def test_streaming_tidy_equals_tidy_mask(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(500):
        m = random_mask(rng, int(rng.integers(0, 400)))
        fill, min_run = int(rng.integers(0, 25)), int(rng.integers(0, 15))
        t = StreamingTidy(fill, min_run)
        parts, pos = [], 0
        while pos < m.shape[0]:
            k = int(rng.choice([0, 1, 2, 3, 7, 20, 64]))
            parts.append(t.push(m[pos : pos + k]))
            pos += k
            # a fixed bound on the look-ahead held back
            assert t.held <= fill + max(min_run - 1, 0)
            assert t.emitted == sum(p.shape[0] for p in parts)
        parts.append(t.finish())
        got = np.concatenate(parts)
        assert_array_equal(got, tidy_mask(m, fill, min_run), err_msg=f"{fill} {min_run}")
        t.reset()  # a reset tidy is a new one
        assert_array_equal(np.concatenate([t.push(m), t.finish()]), tidy_mask(m, fill, min_run))
    with pytest.raises(ValueError, match="fill_hops"):
        StreamingTidy(-1, 3)


def test_streaming_tidy_examples() -> None:
    t = StreamingTidy(fill_hops=3, min_run_hops=4)
    m = np.array([0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0], np.bool_)
    # gap of 2 filled -> run 1..7 (6 hops) kept; gap of 4 not filled; run of 2 dropped
    want = np.array([0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0], np.bool_)
    assert_array_equal(np.concatenate([t.push(m), t.finish()]), want)
    assert_array_equal(want, tidy_mask(m, 3, 4))


# ---------------------------------------------------------------------------
# LiveBleed against the offline suppression


def speechy(n: int, rng: np.random.Generator, level: float) -> np.ndarray:
    """Syllable-like level bumps in talk spurts of 1-4 s, over -62 dB noise."""
    z = np.zeros(n)
    acc = 0.0
    for k, e in enumerate(rng.standard_normal(n)):
        acc = 0.85 * acc + e
        z[k] = acc
    on = np.repeat(rng.uniform(size=n // 100 + 1) < 0.5, 100)[:n]
    x = np.where(on, level + 10 * z / z.std(), -62.0)
    return np.maximum(x, -62 + rng.normal(0, 1, n))


def session_levels(seed: int, n: int) -> tuple[np.ndarray, list[list[SpeechSegment]]]:
    """4 streams: 0 and 1 talk; 2 picks up 0 from loudspeakers (12 hops late, -18 dB)
    and talks a little itself; 3 is quiet. Segments: the VAD-like runs over -45 dB,
    short gaps bridged, short runs dropped."""
    rng = np.random.default_rng(seed)
    a, b = speechy(n, rng, -15.0), speechy(n, rng, -17.0)
    own = np.full(n, -62.0)
    own[n // 2 : n // 2 + 250] = speechy(250, rng, -14.0)
    pick = np.full(n, -62.0)
    pick[12:] = a[:-12] - 18.0
    c = 10 * np.log10(10 ** (own / 10) + 10 ** (pick / 10))
    d = -62 + rng.normal(0, 1, n)
    env = np.stack([a, b, c, d]).astype(np.float32)
    segs = []
    for row in env:
        m = row > -45
        m = ~tidy_mask(~m, 0, 30)  # bridge gaps under 30 hops
        m = tidy_mask(m, 0, 12)  # drop runs under 12 hops
        edges = np.flatnonzero(np.diff(np.concatenate([[0], m.astype(np.int8), [0]])))
        segs.append(
            [SpeechSegment(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2], strict=True)]
        )
    return env, segs


def offline_reference(
    env: np.ndarray, segs: list[list[SpeechSegment]], cfg: BleedConfig, min_speech: int
) -> list[list[SpeechSegment]]:
    """The offline path's own function, on pipelines holding these levels and segments."""
    backend = make_backend(VadConfig())
    pipes = []
    for k in range(env.shape[0]):
        p = ParticipantPipeline.open(f"s{k}", backend, VadConfig())
        p.levels.append(env[k].copy())
        p.segments.extend(segs[k])
        pipes.append(p)
    _suppress_bleed(pipes, env.shape[1], cfg, min_speech, MIN_SILENCE)
    return [list(p.segments) for p in pipes]


def run_live(
    env: np.ndarray,
    segs: list[list[SpeechSegment]],
    cfg: BleedConfig,
    min_speech: int,
    rng: np.random.Generator,
    join: dict[int, int],
) -> list[list[SpeechSegment]]:
    """Feed `LiveBleed` as the live engine does, in random steps: levels arrive ahead
    of what is final, segments once closed, open segments as `speaking`. Checks the
    promise `settled()` makes to the signal tracker on the way."""
    n = env.shape[1]
    keys = [f"s{k}" for k in range(env.shape[0])]
    lb = LiveBleed(cfg, min_speech, MIN_SILENCE)
    out: list[list[SpeechSegment]] = [[] for _ in keys]
    settled = [0] * len(keys)
    fed = [0] * len(keys)
    next_seg = [0] * len(keys)
    pos = 0
    while pos < n:
        pos = min(n, pos + int(rng.choice([1, 3, 5, 17, 60, 250])))
        until = pos
        speaking: dict[str, SpeechSegment | None] = {}
        vad_settled = [pos] * len(keys)
        for k, key in enumerate(keys):
            if pos < join.get(k, 0):
                continue
            if key not in lb.keys:
                lb.add_stream(key)
                fed[k] = max(fed[k], lb.done)
            ahead = min(n, pos + int(rng.integers(0, 40)))  # levels run ahead of the VAD
            while fed[k] < ahead:
                step = int(rng.integers(1, 30))
                lb.add_levels(key, fed[k], env[k, fed[k] : min(fed[k] + step, ahead)])
                fed[k] = min(fed[k] + step, ahead)
            done_segs = []
            while next_seg[k] < len(segs[k]) and segs[k][next_seg[k]].end <= pos:
                done_segs.append(segs[k][next_seg[k]])
                next_seg[k] += 1
            lb.add_segments(key, done_segs)
            if next_seg[k] < len(segs[k]) and segs[k][next_seg[k]].start < pos:
                seg = segs[k][next_seg[k]]
                vad_settled[k] = seg.start
                if pos - seg.start >= min_speech and rng.uniform() < 0.7:
                    speaking[key] = SpeechSegment(seg.start, pos)  # final speech up to pos
                else:
                    until = min(until, seg.start)
        lb.advance(until, speaking)
        for key, new in lb.take().items():
            k = keys.index(key)
            assert all(s.start >= settled[k] for s in new), "settled() promised too much"
            out[k].extend(new)
        for k, key in enumerate(keys):
            if key in lb.keys:
                settled[k] = max(settled[k], lb.settled(key, vad_settled[k]))
    lb.finish(n)
    for key, new in lb.take().items():
        k = keys.index(key)
        assert all(s.start >= settled[k] for s in new), "settled() promised too much"
        out[k].extend(new)
    assert lb.held_hops == 0
    return out


@pytest.mark.parametrize("seed", range(5))
def test_live_bleed_in_random_chunks_equals_offline(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n = 3000
    env, segs = session_levels(seed, n)
    cfg, min_speech = BleedConfig(), 12
    ref = offline_reference(env, segs, cfg, min_speech)
    raw_c = segments_to_mask(segs[2], n).sum()
    assert segments_to_mask(ref[2], n).sum() < 0.6 * raw_c  # the pickup is taken out ...
    for k in (0, 1):  # ... genuine talk is not (but for a few chance matches)
        kept = segments_to_mask(ref[k], n).sum()
        assert kept >= 0.9 * segments_to_mask(segs[k], n).sum()
    for _ in range(3):
        assert run_live(env, segs, cfg, min_speech, rng, join={}) == ref


def test_a_late_joiner_is_a_stream_that_was_silent() -> None:
    """A stream added mid-session grows the detector without losing its history: the
    result is the offline one with that stream at the floor, without speech, before."""
    rng = np.random.default_rng(7)
    n = 3000
    env, segs = session_levels(3, n)
    join = 1200
    env[1, :join] = BleedConfig().floor_dbfs
    segs[1] = [s for s in segs[1] if s.start >= join]
    ref = offline_reference(env, segs, BleedConfig(), 12)
    for _ in range(3):
        assert run_live(env, segs, BleedConfig(), 12, rng, join={1: join}) == ref


def test_lost_audio_holds_the_level() -> None:
    """Packets lost in transit reach the VAD as zeros; marked with `add_lost`, the
    detector holds the level across them, so a lossy stream's bleed is still found."""
    n = 3000
    env, segs = session_levels(2, n)
    clean = offline_reference(env, segs, BleedConfig(), 12)
    lossy = env.copy()
    holes = [(h, h + 2) for h in range(37, n - 2, 97)]  # a lost 20 ms packet per second
    for a, b in holes:
        lossy[:, a:b] = -90.3  # digital silence
    got = {}
    for mark in (False, True):
        lb = LiveBleed(BleedConfig(), 12)
        for k in range(4):
            lb.add_stream(f"s{k}")
            lb.add_levels(f"s{k}", 0, lossy[k])
            lb.add_segments(f"s{k}", segs[k])
            if mark:
                for a, b in holes:
                    lb.add_lost(f"s{k}", a, b)
        for until in range(0, n, 7):
            lb.advance(until)
        lb.finish(n)
        got[mark] = lb.take().get("s2", [])
    raw = segments_to_mask(segs[2], n).sum()
    left = {m: segments_to_mask(got[m], n).sum() for m in got}
    left_clean = segments_to_mask(clean[2], n).sum()
    assert left[False] > left_clean + 0.2 * raw  # the dips hide much of the bleed ...
    assert left[True] <= left_clean + 0.05 * raw  # ... holding the level finds it again


@pytest.mark.parametrize("seed", range(3))
def test_levels_in_pieces_reach_the_detector_as_written(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Levels placed in any pieces (gaps, overlaps, too late, far ahead of the step),
    per stream, with a stream joining midway, reach the detector as if written in
    arrival order on a floor-level track: a later piece overwrites an earlier one, hops
    with none are the floor, hops before `done` are dropped."""
    rng = np.random.default_rng(seed)
    n, floor = 600, BleedConfig().floor_dbfs
    lb = LiveBleed(BleedConfig(), 12)
    keys = ["a", "b", "c"]
    want = np.full((3, n + 200), floor, np.float32)
    seen: list[np.ndarray] = []
    step = BleedSuppressor.step

    def spy(self: BleedSuppressor, env: np.ndarray, speech: np.ndarray) -> np.ndarray:
        block = np.full((3, env.shape[1]), floor, np.float32)
        block[: env.shape[0]] = env  # before "c" joins, it is the floor
        seen.append(block)
        return step(self, env, speech)

    monkeypatch.setattr(BleedSuppressor, "step", spy)
    lb.add_stream("a")
    lb.add_stream("b")
    until = 0
    while until < n:
        if until > n // 2:
            lb.add_stream("c")  # idempotent
        for _ in range(int(rng.integers(0, 6))):
            k = int(rng.integers(0, len(lb.keys)))
            h0 = until + int(rng.integers(-20, 150))
            lv = rng.normal(-30, 10, int(rng.integers(1, 40))).astype(np.float32)
            lb.add_levels(keys[k], h0, lv)
            a = max(h0, until)  # hops before `done` are too late
            want[k, a : h0 + lv.shape[0]] = lv[a - h0 :]
        until = min(until + int(rng.integers(0, 30)), n)
        lb.advance(until)
    assert lb.keys == keys
    assert_array_equal(np.concatenate(seen, axis=1), want[:, :n])


def test_level_pieces_equal_levels_one_by_one() -> None:
    """`add_level_pieces` (back-to-back pieces joined) leaves the stage as `add_levels`
    of each piece in turn would: pieces that overlap, leave gaps or come too late too."""
    rng = np.random.default_rng(7)
    one, many = LiveBleed(BleedConfig(), 12), LiveBleed(BleedConfig(), 12)
    for lb in (one, many):
        lb.add_stream("a")
    until = 0
    for _ in range(200):
        pieces, h = [], until + int(rng.integers(-15, 40))
        for _ in range(int(rng.integers(0, 8))):
            lv = rng.normal(-30, 10, int(rng.integers(1, 4))).astype(np.float32)
            pieces.append((h, lv))
            h += lv.shape[0] + int(rng.choice([0, 0, 0, 2, -1]))  # mostly back to back
        for h0, lv in pieces:
            one.add_levels("a", h0, lv)
        many.add_level_pieces("a", pieces)
        end = one._level_end
        assert many._level_end == end  # (capacities may differ: compare what is written)
        assert_array_equal(one._levels[:, :end], many._levels[:, :end])
        until += int(rng.integers(0, 12))
        one.advance(until)
        many.advance(until)


def test_streaming_tidy_skip_is_push_of_false_hops() -> None:
    """`skip(k)`, where it applies (nothing held), leaves the tidy as `push` of k False
    hops would: the same counts and the same output from then on."""
    rng = np.random.default_rng(5)
    skipped = 0
    for _ in range(300):
        a, b = StreamingTidy(3, 4), StreamingTidy(3, 4)
        m = random_mask(rng, int(rng.integers(0, 50)))
        a.push(m)
        b.push(m)
        k = int(rng.integers(0, 20))
        if not b.skip(k):
            continue
        skipped += 1
        assert_array_equal(a.push(np.zeros(k, np.bool_)), np.zeros(k, np.bool_))
        assert (a.fed, a.emitted, a.held) == (b.fed, b.emitted, 0)
        tail = random_mask(rng, 30)
        assert_array_equal(
            np.concatenate([a.push(tail), a.finish()]), np.concatenate([b.push(tail), b.finish()])
        )
    assert skipped > 50


def test_switched_off_and_input_checks() -> None:
    rng = np.random.default_rng(1)
    env, segs = session_levels(1, 2000)
    off = BleedConfig(enabled=False)
    assert run_live(env, segs, off, 12, rng, join={}) == segs
    lb = LiveBleed(BleedConfig(), 12)
    lb.add_stream("a")
    lb.add_segments("a", [SpeechSegment(10, 50)])
    with pytest.raises(ValueError, match="order"):
        lb.add_segments("a", [SpeechSegment(40, 60)])
    with pytest.raises(ValueError, match="1-D"):
        lb.add_levels("a", 0, np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="min_speech"):
        LiveBleed(BleedConfig(), -1)
    lb.reset()
    assert lb.keys == [] and lb.done == 0


# ---------------------------------------------------------------------------
# end to end: a real server on loopback against `analyze`


def write_pcm_mkv(session: Session, directory: Path) -> Path:
    """The session's tracks as 16 kHz PCM in Matroska: offline reads exactly the samples
    the live path is sent (`Session.write_mkv` is Opus, whose coding alone moves the VAD's
    figures by up to ~2 %)."""
    path = directory / "session-pcm.mkv"
    frame = 320
    with av.open(str(path), "w", format="matroska") as out:
        streams = []
        for name in session.names:
            st = out.add_stream("pcm_s16le", rate=16_000, layout="mono")
            st.metadata["title"] = name
            streams.append(st)
        for k in range(session.tracks.shape[1] // frame):
            for st, x in zip(streams, session.tracks, strict=True):
                f = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(x[None, k * frame : (k + 1) * frame]),
                    format="s16",
                    layout="mono",
                )
                f.sample_rate = 16_000
                f.pts = k * frame
                out.mux(st.encode(f))
        for st in streams:
            out.mux(st.encode(None))
    return path


@pytest.mark.timeout(300)
async def test_live_over_grpc_matches_offline_on_a_session_with_bleed(
    start_server, channel_to, tmp_path: Path
) -> None:
    script = random_script(41, participants=4, minutes=2.0)
    # loud loudspeakers: the VAD takes most of this pickup for speech
    loud = (
        Bleed(source="facilitator", target="p2", delay_ms=90, gain_db=-12, lowpass_hz=3400),
        Bleed(source="p1", target="p3", delay_ms=160, gain_db=-14, lowpass_hz=None),
    )
    session = synthesize(dataclasses.replace(script, bleeds=loud))
    truth = session.truth
    bleed_total = sum(int(truth.bleed_only_mask(n).sum()) for n in session.names)
    assert bleed_total > 500, "the script should hold some bleed"
    mkv = write_pcm_mkv(session, tmp_path)
    offline = analyze([mkv], VadConfig())
    unsuppressed = analyze([mkv], VadConfig(), bleed=BleedConfig(enabled=False))

    server = await start_server(live=LiveConfig(tick_ms=20))
    ch = channel_to(server)
    sid = "live-bleed"
    streams: dict[str, Stream] = {}
    for name in session.names:
        s = Stream(ch)
        assert await s.send(config(sid, name))
        streams[name] = s
    names = {await s.pid(): n for n, s in streams.items()}
    live_session = server.engine.sessions[sid]  # kept: its segments outlive the session
    for k, p in enumerate(packets(session, "pcm16")):
        assert await streams[p.participant].send(frame(p.sequence, p.capture_ms, p.payload))
        if k % 400 == 0:
            await asyncio.sleep(0)
    for s in streams.values():
        assert await s.finish() == grpc.StatusCode.OK
    summary = await end_session(ch, sid)
    live = {names[pid]: v for pid, v in by_id(summary).items()}

    def leak(segments: dict[str, list[SpeechSegment]]) -> float:
        hit = sum(
            int((segments_to_mask(segments[n], truth.hops) & truth.bleed_only_mask(n)).sum())
            for n in session.names
        )
        return hit / bleed_total

    segs_live = {names[pid]: p.closed for pid, p in live_session.participants.items()}
    segs_off = {r.name: list(r.segments) for r in offline.participants}
    segs_raw = {r.name: list(r.segments) for r in unsuppressed.participants}
    off = {r.name: r.figures.speaking_s for r in offline.participants}
    for name in session.names:
        assert live[name].speaking_s == pytest.approx(off[name], rel=0.02), name
        # the summary is the cleaned segments, in order and not overlapping
        assert sum(s.end - s.start for s in segs_live[name]) / 100 == pytest.approx(
            live[name].speaking_s, abs=0.011
        )
    print(
        f"leak: live {leak(segs_live):.3f} offline {leak(segs_off):.3f} "
        f"unsuppressed {leak(segs_raw):.3f}; segments equal "
        f"{sum(len(set(segs_live[n]) & set(segs_off[n])) for n in session.names)}"
        f"/{sum(len(segs_off[n]) for n in session.names)}; speaking s live/offline "
        + ", ".join(f"{n} {live[n].speaking_s:.2f}/{off[n]:.2f}" for n in session.names)
    )
    assert leak(segs_raw) > 0.3  # the VAD does take the bleed for speech ...
    assert leak(segs_live) < 0.05  # ... and the live path takes it out, as offline does
    assert leak(segs_off) < 0.05
