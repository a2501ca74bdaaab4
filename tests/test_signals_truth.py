"""Engagement signals against exact ground truth: sessions synthesized from recorded
speech (tests/synth.py) with turns, backchannels, overlaps, interruptions, silences and
loudspeaker bleed, analysed by the real offline path and streamed through the real
live path (jittered, reordered, lossy) into a gRPC server on loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from live_util import Stream, by_id, config, end_session, frame
from synth import (
    Backchannel,
    Interruption,
    Overlap,
    Script,
    Session,
    Silence,
    Turn,
    network,
    packets,
    random_script,
    synthesize,
)

from engine.config import VadConfig
from engine.metrics import matched
from engine.offline import Analysis, analyze
from groupsense.v1 import groupsense_pb2 as pb

pytestmark = pytest.mark.timeout(300)

SEEDS = (11, 12, 13)
TOLERANCE_S = 0.5  # an event matches the truth when it starts within this
# Issue 4's targets: speaking time within 3 % per participant (loudspeaker-bleed
# targets included) and interruptions found with precision and recall >= 0.9.
SPEAKING_TOL = 0.03
EVENT_PR = 0.9


def roles_of(session: Session) -> dict[str, str]:
    return dict(zip(session.names, session.roles, strict=True))


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Session, Analysis]]:
    out = []
    for seed in SEEDS:
        # one loudspeaker-bleed path: a participant hearing two talkers at once through
        # their speakers is the bleed detector's known weak spot (README), measured apart
        session = synthesize(random_script(seed, participants=5, minutes=4.0, bleeds=1))
        path = session.write_mkv(tmp_path_factory.mktemp(f"synth{seed}"))
        result = analyze([path], VadConfig(backend="webrtc"), roles=roles_of(session))
        out.append((session, result))
    return out


def precision_recall(found: list, truth: list, same) -> tuple[float, float, int, int]:
    hits = matched(found, truth, same)
    p = hits / len(found) if found else 1.0
    r = hits / len(truth) if truth else 1.0
    return p, r, len(found), len(truth)


def test_speaking_time_within_3_percent(analysed) -> None:
    for session, result in analysed:
        for p in result.participants:
            truth = session.truth.speaking_s(p.name)
            assert p.figures.speaking_s == pytest.approx(truth, rel=SPEAKING_TOL), (p.name, truth)


def test_turns_within_one_per_twenty(analysed) -> None:
    for session, result in analysed:
        for name in session.names:
            truth = sum(t.speaker == name for t in session.truth.turns)
            got = result.signals.participants[name].turns
            assert abs(got - truth) <= max(1, truth / 20), (name, got, truth)


def test_interruptions_precision_and_recall(analysed) -> None:
    found, truth = [], []
    for k, (session, result) in enumerate(analysed):
        found += [(k, t, by, of) for t, by, of in result.signals.interruptions]
        truth += [(k, i.t / 100, i.by, i.of) for i in session.truth.interruptions]
    p, r, nf, nt = precision_recall(
        found,
        truth,
        lambda f, t: f[0] == t[0] and f[2:] == t[2:] and abs(f[1] - t[1]) <= TOLERANCE_S,
    )
    assert nt >= 5, "the scripts should hold a few interruptions"
    assert p >= EVENT_PR and r >= EVENT_PR, (p, r, nf, nt)


def test_group_silences_precision_and_recall(analysed) -> None:
    found, truth = [], []
    for k, (session, result) in enumerate(analysed):
        found += [(k, a, b) for a, b in result.signals.silences]
        truth += [(k, s.start / 100, s.end / 100) for s in session.truth.group_silences]
    p, r, nf, nt = precision_recall(
        found,
        truth,
        lambda f, t: (
            f[0] == t[0] and abs(f[1] - t[1]) <= TOLERANCE_S and abs(f[2] - t[2]) <= TOLERANCE_S
        ),
    )
    assert nt >= 3
    assert p >= 0.9 and r >= 0.9, (p, r, nf, nt)


def test_backchannels_are_not_turns(analysed) -> None:
    for session, result in analysed:
        for name in session.names:
            truth = sum(n == name for n, _ in session.truth.backchannels)
            got = result.signals.participants[name].backchannels
            assert abs(got - truth) <= 3, (name, got, truth)  # bleed leaks as "mm-hm"s


# -- alerts, as scripted ---------------------------------------------------------------------


def alert_script() -> Script:
    """fac, ana, ben talk; cleo speaks once early, then not for 9 minutes; ana dominates
    minutes 4-9; a 25 s group silence at about 10 minutes; ben interrupts ana three times;
    then four minutes of balanced talk."""
    ev: list = [Turn(speaker="fac", duration_s=6.0), Turn(speaker="cleo", duration_s=4.0)]
    for k in range(14):  # ~3 minutes of balanced talk among fac, ana, ben
        ev.append(Turn(speaker=("ana", "ben", "fac")[k % 3], duration_s=11.0))
    for k in range(12):  # ~5 minutes where ana holds most of the floor
        ev.append(Turn(speaker="ana", duration_s=18.0))
        ev.append(Turn(speaker=("ben", "fac")[k % 2], duration_s=4.0))
        if k in (3, 6, 9):
            ev.append(Turn(speaker="ana", duration_s=6.0))
            ev.append(Interruption(speaker="ben", duration_s=5.0, after_s=2.5, stop_s=0.9))
    ev.append(Silence(duration_s=25.0))
    ev.append(Turn(speaker="cleo", duration_s=6.0))
    ev.append(Backchannel(speaker="fac", at=0.5))
    ev.append(Overlap(speaker="ben", duration_s=5.0, overlap_s=0.3))
    for k in range(20):  # ~4 minutes of balanced talk: ana's dominance fades
        ev.append(Turn(speaker=("fac", "cleo", "ana", "ben")[k % 4], duration_s=11.0))
    return Script(
        participants=("fac", "ana", "ben", "cleo"),
        roles=("facilitator", "participant", "participant", "participant"),
        events=tuple(ev),
        seed=5,
    )


@pytest.fixture(scope="module")
def alert_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Session, Analysis]:
    session = synthesize(alert_script())
    path = session.write_mkv(tmp_path_factory.mktemp("alerts"))
    return session, analyze([path], VadConfig(), roles=roles_of(session))


def test_alerts_fire_and_clear_as_scripted(alert_run) -> None:
    session, result = alert_run
    truth = session.truth
    by_kind = {}
    for a in result.alerts:
        by_kind.setdefault(a.kind, []).append(a)
    # withdrawal: cleo's last word, then 8 minutes; cleared when she speaks again
    cleo = truth.segments["cleo"]
    (w,) = by_kind["withdrawal"]
    assert w.participant == "cleo"
    assert w.since_s == pytest.approx(cleo[0].end / 100 + 480, abs=2.0)
    assert w.cleared_s == pytest.approx(cleo[1].start / 100, abs=1.5)
    # the group silence: raised 20 s into it, cleared when cleo speaks
    (g,) = by_kind["group_silence"]
    (silence,) = [s for s in truth.group_silences if s.end - s.start > 2000]
    assert g.since_s == pytest.approx(silence.start / 100 + 20, abs=1.5)
    assert g.cleared_s == pytest.approx(silence.end / 100, abs=1.5)
    # ana dominates while she holds most of the floor, and it clears afterwards
    (d,) = by_kind["dominance"]
    assert d.participant == "ana" and not d.active
    # ben cut ana off three times within 5 minutes
    (i,) = by_kind["interrupted"]
    assert i.participant == "ana"
    third = sorted(x.t for x in truth.interruptions)[2] / 100
    # counted once the utterances around it can no longer change: at the group's next
    # pause of over a second, which this brisk script keeps waiting for (docs/signals.md)
    assert third < i.since_s < third + 60
    assert set(by_kind) == {"withdrawal", "group_silence", "dominance", "interrupted"}


# -- the live path, jittered, reordered and lossy ------------------------------------------


async def test_live_path_over_a_lossy_network(start_server, channel_to, tmp_path: Path) -> None:
    session = synthesize(random_script(21, participants=4, minutes=3.0))
    offline = analyze(
        [session.write_mkv(tmp_path)], VadConfig(backend="webrtc"), roles=roles_of(session)
    )
    server = await start_server()
    ch = channel_to(server)
    sid = "synth-live"
    sent = packets(session, "opus")
    arrived = network(sent, seed=3, loss=0.01, duplicate=0.01)
    streams: dict[str, Stream] = {}
    for name, role in zip(session.names, session.roles, strict=True):
        s = Stream(ch)
        r = pb.ROLE_FACILITATOR if role == "facilitator" else pb.ROLE_PARTICIPANT
        assert await s.send(config(sid, name, role=r, codec=pb.CODEC_OPUS, rate=48_000))
        streams[name] = s
    names = {await s.pid(): n for n, s in streams.items()}
    for k, p in enumerate(arrived):
        assert await streams[p.participant].send(frame(p.sequence, p.capture_ms, p.payload))
        if k % 400 == 0:
            await asyncio.sleep(0)  # let the server breathe; it paces senders itself
    for s in streams.values():
        assert await s.finish() == grpc.StatusCode.OK
    summary = await end_session(ch, sid)
    live = {names[pid]: v for pid, v in by_id(summary).items()}
    for name in session.names:
        truth = session.truth.speaking_s(name)
        got = live[name]
        lost = got.unknown_s
        # 1 % of frames lost: that time is unknown, not silence, and not speech either
        assert got.speaking_s == pytest.approx(truth, rel=0.03, abs=0.5 + lost), name
        ref = offline.signals.participants[name]
        assert abs(got.turns - ref.turns) <= max(1, ref.turns // 10), name
    g = summary.group
    assert g.group_silences == offline.signals.group_silences
    assert g.balance_entropy == pytest.approx(offline.signals.balance_entropy, abs=0.03)
