"""The session synthesizer: exact truth, the written MKV, and live-path arrival."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from synth import (
    Backchannel,
    Bleed,
    Interruption,
    Overlap,
    Script,
    Silence,
    Turn,
    network,
    packets,
    random_script,
    shared_voices,
    synthesize,
)

from engine.audio.decode import decode_file
from engine.audio.opus import Opus16kDecoder
from engine.types import HOP


def script() -> Script:
    f, a, b = "facilitator", "ana", "ben"
    return Script(
        participants=(f, a, b),
        events=(
            Turn(speaker=f, duration_s=5.0),
            Backchannel(speaker=a, at=0.5),
            Turn(speaker=a, duration_s=4.0, gap_s=0.5),
            Overlap(speaker=b, duration_s=4.0, overlap_s=1.0),
            Interruption(speaker=f, duration_s=3.0, after_s=2.0, stop_s=0.7),
            Silence(duration_s=4.0),
            Turn(speaker=a, duration_s=3.0),
        ),
        bleeds=(Bleed(source=f, target=b, delay_ms=120, gain_db=-20, lowpass_hz=None),),
        seed=3,
    )


def test_truth_follows_the_script() -> None:
    s = synthesize(script())
    tr = s.truth
    assert s.tracks.dtype == np.int16 and s.tracks.shape[0] == 3
    assert tr.hops == s.tracks.shape[1] // HOP
    assert [t.speaker for t in tr.turns] == ["facilitator", "ana", "ben", "facilitator", "ana"]
    assert [t.kind for t in tr.turns] == ["turn", "turn", "overlap", "interruption", "turn"]
    ((bc_name, bc),) = tr.backchannels
    assert bc_name == "ana" and 30 <= bc.end - bc.start <= 80
    assert tr.turns[0].start < bc.start < bc.end < tr.turns[0].end
    (it,) = tr.interruptions
    assert (it.by, it.of) == ("facilitator", "ben")
    assert it.t == tr.turns[3].start and 0 < it.of_stops - it.t <= 100
    # the scripted overlap and the interruption both show up as overlaps
    assert any(o.names == ("ana", "ben") for o in tr.overlaps)
    assert any(o.names == ("ben", "facilitator") for o in tr.overlaps)
    (sil,) = tr.group_silences
    assert 395 <= sil.end - sil.start <= 405
    # bleed: facilitator's speech, 12 hops later, in ben's track, 20 dB down
    (bl,) = tr.bleed
    fac = tr.utterances["facilitator"][0]
    assert bl.segments[0].start == (fac.start * HOP + 1920) // HOP
    only = tr.bleed_only_mask("ben")
    assert only.sum() > 300 and not (only & tr.speech_mask("ben")).any()
    lv = lambda x: 10 * np.log10((x.astype(float) ** 2).mean())  # noqa: E731
    seg = slice(bl.segments[0].start * HOP, bl.segments[0].end * HOP)
    src = slice(fac.start * HOP, fac.end * HOP)
    gap = lv(s.track("facilitator")[src]) - lv(s.track("ben")[seg])
    assert 18 < gap < 22
    # speech is where the truth says: loud inside segments, noise outside
    silent = ~(tr.speech_mask("ana") | tr.bleed_mask("ana"))
    hops = s.track("ana")[: tr.hops * HOP].reshape(-1, HOP).astype(float)
    e = 10 * np.log10((hops**2).mean(axis=1) + 1)
    assert e[silent].max() < e[tr.speech_mask("ana")].max() - 30


def test_deterministic_per_seed() -> None:
    a, b = synthesize(script()), synthesize(script())
    assert np.array_equal(a.tracks, b.tracks) and a.truth == b.truth


def test_bad_scripts_are_named() -> None:
    with pytest.raises(ValueError, match="unknown speaker"):
        Script(participants=("a",), events=(Turn(speaker="b", duration_s=1),))
    with pytest.raises(ValueError, match="themself"):
        synthesize(
            Script(
                participants=("a", "b"),
                events=(Turn(speaker="a", duration_s=3), Overlap(speaker="a", duration_s=2)),
            )
        )


def test_written_mkv_has_titled_aligned_tracks(tmp_path: Path) -> None:
    s = synthesize(script())
    tracks, chunks = decode_file(s.write_mkv(tmp_path))
    assert [t.name for t in tracks] == list(s.names)
    parts: list[list[np.ndarray]] = [[] for _ in tracks]
    for i, c in chunks:
        parts[i].append(c)
    x = np.concatenate(parts[0]).astype(float)
    y = s.tracks[0].astype(float)
    n = min(x.size, y.size) - 2000
    lags = [
        float(np.dot(x[1000 + k : 1000 + k + n - 400], y[1000 : 1000 + n - 400]))
        for k in range(-80, 81)
    ]
    assert int(np.argmax(lags)) - 80 == 0


def test_random_scripts_cover_the_range() -> None:
    for seed in range(20):
        sc = random_script(seed)
        assert 4 <= len(sc.participants) <= 8
        assert 1 <= len(sc.bleeds) <= 3
        kinds = {type(e).__name__ for e in sc.events}
        assert {"Turn", "Backchannel", "Overlap"} <= kinds
    s = synthesize(random_script(5, minutes=3))
    assert 150 <= s.truth.duration_s <= 240


def test_live_arrival_is_jittered_lossy_and_deterministic() -> None:
    s = synthesize(script())
    sent = packets(s)
    per = [p for p in sent if p.participant == "ana"]
    assert [p.sequence for p in per] == list(range(len(per)))
    assert all(p.capture_ms == 20 * p.sequence and len(p.payload) == 640 for p in per)
    got = network(sent, seed=1, jitter_ms=60, loss=0.05, duplicate=0.02)
    assert got == network(sent, seed=1, jitter_ms=60, loss=0.05, duplicate=0.02)
    assert got != network(sent, seed=2, jitter_ms=60, loss=0.05, duplicate=0.02)
    keys = [(p.participant, p.sequence) for p in got]
    lost = 1 - len(set(keys)) / len(sent)
    assert 0.03 < lost < 0.07 and len(keys) > len(set(keys))
    arrival = [p.arrival_ms for p in got]
    assert arrival == sorted(arrival)
    caps = [p.capture_ms for p in got if p.participant == "ana"]
    assert any(b < a for a, b in itertools.pairwise(caps))  # reordered ...
    # ... within the window (a duplicate may trail its original by one more window)
    assert all(a - b <= 120 for a, b in itertools.pairwise(caps))


def test_opus_packets_decode_to_the_track() -> None:
    s = synthesize(script())
    ops = [p for p in packets(s, codec="opus") if p.participant == "facilitator"]
    assert len(ops) == s.tracks.shape[1] // 320
    dec = Opus16kDecoder()
    out = np.concatenate([dec.decode(p.payload) for p in ops]).astype(float)
    y = s.track("facilitator").astype(float)
    lags = [float(np.dot(out[2000 + k : 30000 + k], y[2000:30000])) for k in range(0, 400)]
    assert 0 <= int(np.argmax(lags)) < 400  # decodes to the same audio, after encoder delay
    best = int(np.argmax(lags))
    r = np.corrcoef(out[2000 + best : 30000 + best], y[2000:30000])[0, 1]
    assert r > 0.9


def test_shared_data_voices_synthesize(shared_data: Path) -> None:
    voices = shared_voices()
    assert len(voices) >= 4
    s = synthesize(script(), voices=voices[:3])
    assert s.truth.speaking_s("ana") > 3
