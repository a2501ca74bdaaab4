"""Shared microphones on the live path, against a real server on loopback with a real
client: two real voices on one stream become two sub-participants in the snapshots and
the summary, an ordinary stream beside it is untouched, bad speaker counts are refused,
a vanished client leaves the rest intact, nothing is written to disk, and the live
sub-participants equal `groupsense analyze --shared-mic` on the same audio."""

from __future__ import annotations

import asyncio
import re
import wave
from pathlib import Path

import grpc
import numpy as np
import pytest
from live_util import (
    REPO,
    Stream,
    Subscriber,
    by_id,
    config,
    end_session,
    frames,
    quiet,
    talk,
)

from engine.audio.decode import decode_file
from engine.config import VadConfig
from engine.datasets import read_rttm
from engine.live import LIVE_DIARIZE
from engine.offline import analyze
from engine.types import HOP
from groupsense.v1 import groupsense_pb2 as pb

pytestmark = [pytest.mark.timeout(180), pytest.mark.realdata]

SUB = re.compile(r"^p-[0-9a-f]{10}/[A-Z]$")
TURN_S = 5.0
GAP_S = 0.5


def _voice(root: Path, fid: str, rttm: str, speaker: str) -> np.ndarray:
    """One speaker's reference turns from a real recording, end to end, at -26 dBFS (the
    AMI far-field voice is quiet; at its own level the VAD hears only half of it)."""
    _, chunks = decode_file(root / f"{fid}.wav")
    x = np.concatenate([c for _, c in chunks])
    hops = x[: x.shape[0] // HOP * HOP].reshape(-1, HOP)
    turns = [t for t in read_rttm(root / rttm) if t.file == fid and t.speaker == speaker]
    v = np.concatenate([hops[round(t.start * 100) : round(t.end * 100)] for t in turns])
    v = v.astype(np.float64).reshape(-1)
    v *= 0.05 * 32768 / np.sqrt(np.mean(v**2))
    return np.clip(v, -32768, 32767).astype(np.int16)


def two_voices(shared_data: Path) -> tuple[np.ndarray, dict[str, float]]:
    """Four 5 s turns alternating between two real voices from two recordings (sample.wav's
    speaker90, dev00.wav's MEE009), 0.5 s of room noise after each: 22 s, 10 s each."""
    root = shared_data / "diarization"
    voices = [
        _voice(root, "sample", "sample.rttm", "speaker90"),
        _voice(root, "dev00", "debug.development.rttm", "MEE009"),
    ]
    n = round(TURN_S * 16000)
    parts = []
    for k in range(4):
        parts += [voices[k % 2][(k // 2) * n : (k // 2 + 1) * n], quiet(GAP_S, seed=k)]
    return np.concatenate(parts), {"A": 2 * TURN_S, "B": 2 * TURN_S}


def shared_config(session: str, ref: str, **kw: int) -> pb.IngestRequest:
    req = config(session, ref)
    req.config.shared_microphone = True
    for k, v in kw.items():
        setattr(req.config, k, v)
    return req


async def _send(ch: grpc.aio.Channel, first: pb.IngestRequest, pcm: np.ndarray) -> Stream:
    s = Stream(ch)
    assert await s.send(first, *frames(pcm))
    assert await s.finish() == grpc.StatusCode.OK, await s.status()
    return s


def _files(*roots: Path) -> set[Path]:
    return {p for r in roots for p in r.rglob("*") if p.is_file()}


async def test_two_real_voices_become_two_sub_participants(
    shared_data: Path, start_server, channel_to, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pcm, truth = two_voices(shared_data)
    other = talk(("q", 22.0), ("v", 3.0), ("q", 1.0))  # speaks once the room is quiet
    monkeypatch.chdir(tmp_path)  # the server's working directory must stay empty
    roots = (REPO / "engine", REPO / "cli", tmp_path)
    before = _files(*roots)
    server = await start_server()
    ch = channel_to(server)
    s = "mic-live"
    opener = Stream(ch)  # open the session, then subscribe before any audio
    assert await opener.send(shared_config(s, "room-2", max_speakers=4))
    mic = await opener.pid()
    sub = Subscriber(ch, s)
    await sub.wait_for(lambda snap: bool(snap.participants))
    rest = Stream(ch)

    async def mic_audio() -> None:
        assert await opener.send(*frames(pcm))
        assert await opener.finish() == grpc.StatusCode.OK, await opener.status()

    async def other_audio() -> None:
        assert await rest.send(config(s, "ana"), *frames(other))
        assert await rest.finish() == grpc.StatusCode.OK, await rest.status()

    await asyncio.gather(mic_audio(), other_audio())
    ana = await rest.pid()
    summary = await end_session(ch, s)
    snaps = await sub.end()

    got = by_id(summary)
    assert sorted(got) == sorted([f"{mic}/A", f"{mic}/B", ana])  # the mic itself is no speaker
    assert all(SUB.match(p) for p in got if p != ana)
    a, b = got[f"{mic}/A"], got[f"{mic}/B"]
    # A: all but the first 0.5 s of B's first turn, which windows still holding A's voice
    # give to A. B: the VAD hears ~80 % of the quiet far-field voice.
    assert a.speaking_s == pytest.approx(truth["A"], abs=1.2)
    assert 0.6 * truth["B"] <= b.speaking_s <= truth["B"] + 0.5
    assert a.turns >= 2 and b.turns >= 2
    # The ordinary stream is analysed as ever, and shares are over the sub-participants.
    assert got[ana].speaking_s == pytest.approx(3.0, abs=0.2)
    total = a.speaking_s + b.speaking_s + got[ana].speaking_s
    assert got[ana].share == pytest.approx(got[ana].speaking_s / total, abs=1e-6)
    assert a.role == b.role == pb.ROLE_PARTICIPANT and not a.connected
    # Snapshots on the way show the sub-participants like anyone else; "B" joins once heard.
    live = [snap for snap in snaps if not snap.final]
    assert any(f"{mic}/B" in by_id(snap) for snap in live)
    assert any(f"{mic}/B joined" in snap.events for snap in snaps)
    # Speaking events name people: the shared stream itself never "starts speaking".
    events = [e for snap in snaps for e in snap.events]
    assert not any(e.startswith(f"{mic} ") and ("speaking" in e or "joined" in e) for e in events)
    for snap in snaps:
        assert mic not in by_id(snap)
    assert snaps[-1].final and by_id(snaps[-1]) == by_id(summary)
    # Alerts and follows name sub-participants, never the shared stream.
    ids = {t.from_id for t in summary.group.follows} | {t.to_id for t in summary.group.follows}
    ids |= {al.participant_id for al in summary.alerts if al.participant_id}
    assert ids <= set(got)
    assert (f"{mic}/A", f"{mic}/B") in {(t.from_id, t.to_id) for t in summary.group.follows}
    # Nothing written: no audio, no embeddings, no model downloads (the server process
    # as a whole, with its temp and home folders: tests/test_server_privacy.py).
    new = sorted(p for p in _files(*roots) - before if p.suffix not in (".pyc", ".nbi", ".nbc"))
    assert not new, f"files written: {new}"


async def test_live_sub_participants_equal_offline(
    shared_data: Path, start_server, channel_to, tmp_path: Path
) -> None:
    """Same audio, same diarizer settings: the same sub-participants with the same figures
    (the same VAD segments feed the same chunking-invariant diarizer; the summary rounds
    to 10 ms)."""
    pcm, _ = two_voices(shared_data)
    wav = tmp_path / "room.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    offline = analyze([wav], VadConfig(), shared_mic=LIVE_DIARIZE)
    server = await start_server()
    ch = channel_to(server)
    stream = await _send(ch, shared_config("same", "room"), pcm)
    mic = await stream.pid()
    summary = await end_session(ch, "same")
    got = {p.participant_id.replace(mic, "room"): p for p in summary.participants}
    want = {p.name: p for p in offline.participants}
    assert sorted(got) == sorted(want) and len(want) >= 2
    for name, ref in want.items():
        assert got[name].speaking_s == pytest.approx(ref.figures.speaking_s, abs=0.011), name
        assert got[name].turns == ref.figures.turns, name
        assert got[name].longest_turn_s == pytest.approx(ref.figures.longest_turn_s, abs=0.011)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"shared_microphone": True, "max_speakers": 27}, "max_speakers must be 1-26"),
        ({"shared_microphone": False, "max_speakers": 3}, "only with shared_microphone"),
        ({"shared_microphone": True, "expected_speakers": 9}, "expected_speakers must be 0-8"),
        (
            {"shared_microphone": True, "max_speakers": 2, "expected_speakers": 3},
            "expected_speakers must be 0-2",
        ),
    ],
)
async def test_bad_speaker_counts_are_invalid_argument(
    fields: dict[str, object], message: str, start_server, channel_to
) -> None:
    server = await start_server()
    ch = channel_to(server)
    req = config("counts", "room")
    for k, v in fields.items():
        setattr(req.config, k, v)
    s = Stream(ch)
    await s.send(req)
    code, details = await s.status()
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message in details and details.startswith("config: "), details


async def test_a_reconnect_may_not_change_the_shared_flag(start_server, channel_to) -> None:
    server = await start_server()
    ch = channel_to(server)
    first = Stream(ch)
    assert await first.send(shared_config("flag", "room"), *frames(talk(("v", 1.0))))
    assert await first.finish() == grpc.StatusCode.OK
    again = Stream(ch)
    await again.send(config("flag", "room"))
    code, details = await again.status()
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "shared_microphone" in details


async def test_a_vanished_shared_mic_leaves_the_others_intact(
    shared_data: Path, start_server, channel_to
) -> None:
    """The shared mic's client disappears mid-sentence (its call cancelled): its
    sub-participants keep what was heard and show as disconnected; the ordinary stream
    and the session go on."""
    pcm, _ = two_voices(shared_data)
    server = await start_server()
    ch = channel_to(server)
    gone = Stream(ch)
    assert await gone.send(shared_config("vanish", "room"), *frames(pcm[: 12 * 16000]))
    await gone.synced(frames(pcm[: 12 * 16000])[-1])
    mic = await gone.pid()
    gone.call.cancel()
    other = talk(("q", 1.0), ("v", 3.0), ("q", 1.0))
    rest = await _send(ch, config("vanish", "ana"), other)
    ana = await rest.pid()
    summary = await end_session(ch, "vanish")
    got = by_id(summary)
    assert got[ana].speaking_s == pytest.approx(3.0, abs=0.2)
    assert f"{mic}/A" in got and f"{mic}/B" in got  # both voices had been heard by 12 s
    # 12 s sent: A's 5 s turn, B's, then 1 s of A again
    assert got[f"{mic}/A"].speaking_s == pytest.approx(TURN_S + 1.0, abs=1.0)
    assert not got[f"{mic}/A"].connected


async def test_embedding_is_batched_across_sessions_and_off_the_loop(
    shared_data: Path, start_server, channel_to, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two rooms in two sessions, sent at once: their windows go to the encoder together,
    always on the engine's DSP thread, and each room gets the result it gets alone."""
    import threading

    import engine.live

    calls: list[tuple[str, int]] = []
    step = engine.live.step_mics

    def spy(embedder, mics):  # type: ignore[no-untyped-def]
        calls.append((threading.current_thread().name, len(mics)))
        step(embedder, mics)

    monkeypatch.setattr(engine.live, "step_mics", spy)
    pcm, _ = two_voices(shared_data)
    server = await start_server()
    ch = channel_to(server)
    await asyncio.gather(
        _send(ch, shared_config("room-1", "mic"), pcm),
        _send(ch, shared_config("room-2", "mic"), pcm),
    )
    one = await end_session(ch, "room-1")
    two = await end_session(ch, "room-2")
    assert calls and all(name.startswith("groupsense-dsp") for name, _ in calls), calls
    assert max(n for _, n in calls) == 2
    figures = [
        sorted((p.participant_id[-1], p.speaking_s, p.turns) for p in s.participants)
        for s in (one, two)
    ]
    assert figures[0] == figures[1] and len(figures[0]) >= 2
