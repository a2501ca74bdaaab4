"""The live path gives the offline figures: the bundled sample replayed over gRPC by the
real `groupsense replay` (a separate process, as a video server would be) into a real
server on loopback, against `engine.offline.analyze` of the same file and the truth."""

from __future__ import annotations

import asyncio
import re

import pytest
from live_util import CLI, PSEUDONYM, REPO, Subscriber, by_id, cli_env, end_session

from engine.config import VadConfig
from engine.offline import Analysis, analyze
from engine.sample import sample_session, sample_truth
from groupsense.v1 import groupsense_pb2 as pb
from groupsense.v1 import groupsense_pb2_grpc as pb_grpc

pytestmark = pytest.mark.timeout(120)

NAMES = ("facilitator", "ana", "ben", "cleo")
REPLAY_LINE = re.compile(r"^(\w+): (\d+) frames as (\S+), (\d+) warnings$", re.M)


@pytest.fixture(scope="module")
def offline() -> Analysis:
    return analyze([sample_session()], VadConfig(), roles={"facilitator": "facilitator"})


@pytest.mark.parametrize("codec", ["opus", "pcm"])
async def test_replay_gives_the_offline_figures(
    codec: str, offline: Analysis, start_server, channel_to
) -> None:
    server = await start_server()
    ch = channel_to(server)
    session = f"sample-{codec}"
    proc = await asyncio.create_subprocess_exec(
        *CLI, "replay", "--session", session, "--speed", "max", "--codec", codec,
        "--server", f"127.0.0.1:{server.port}",
        cwd=REPO, env=cli_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    sub = None
    sessions = pb_grpc.SessionServiceStub(ch)
    for _ in range(300):  # subscribe as soon as the session exists
        listed = await sessions.ListSessions(pb.ListSessionsRequest())
        if session in [s.session_id for s in listed.sessions]:
            sub = Subscriber(ch, session)
            break
        await asyncio.sleep(0.03)
    _, err = await asyncio.wait_for(proc.communicate(), 100)
    stderr = err.decode()
    assert proc.returncode == 0, stderr
    # The sender alone knows which pseudonym is which track (it prints them).
    lines = REPLAY_LINE.findall(stderr)
    names = {pid: name for name, _, pid, _ in lines}
    assert sorted(names.values()) == sorted(NAMES), stderr
    frames = {int(n) for _, n, _, _ in lines}
    assert all(abs(n - 8930) <= 1 for n in frames), frames  # 178.6 s in 20 ms frames
    # The only warnings are CLOCK_SKEW, which a sender this much faster than real time
    # deserves (one per 30 s at most); lost frames would show as unknown_s below.
    assert all(int(w) <= 2 for *_, w in lines), stderr

    summary = await end_session(ch, session)
    assert sub is not None
    snaps = await sub.end()
    assert snaps[-1].final and by_id(snaps[-1]) == by_id(summary)

    assert abs(summary.duration_ms / 1000 - offline.duration_s) <= 0.03
    want = {p.name: p.figures for p in offline.participants}
    got = {names[p.participant_id]: p for p in summary.participants}
    truth = {p["name"]: p for p in sample_truth()["participants"]}
    for name in NAMES:
        live, ref = got[name], want[name]
        assert live.speaking_s == pytest.approx(ref.speaking_s, rel=0.02), name
        assert live.share == pytest.approx(ref.share, rel=0.02, abs=0.002), name
        spoken = sum(e - s for s, e in truth[name]["segments"])
        assert live.speaking_s == pytest.approx(spoken, rel=0.03), name
        assert live.unknown_s == 0.0
        assert not live.connected and not live.speaking
        role = pb.ROLE_FACILITATOR if truth[name]["role"] == "facilitator" else pb.ROLE_PARTICIPANT
        assert live.role == role
    # Shares are of the total speaking time, and nothing else.
    total = sum(p.speaking_s for p in summary.participants)
    for p in summary.participants:
        assert p.share == pytest.approx(p.speaking_s / total, abs=1e-9)
    assert sum(p.share for p in summary.participants) == pytest.approx(1.0, abs=1e-9)
    # The engagement signals and alerts agree too (the live path classifies turns from
    # its own segments, which may differ from the offline ones by a hop here and there).
    sig = offline.signals
    for name in NAMES:
        live, ref = got[name], sig.participants[name]
        for field in ("turns", "backchannels", "interruptions_made", "interruptions_received"):
            assert abs(getattr(live, field) - getattr(ref, field)) <= 1, (name, field)
        assert live.overlap_s == pytest.approx(ref.overlap_s, abs=0.5), name
        # a pause of about 1 s may join two utterances on one path and not the other
        assert live.longest_turn_s == pytest.approx(ref.longest_turn_s, abs=1.0), name
    g = summary.group
    assert g.group_silences == sig.group_silences
    assert g.longest_group_silence_s == pytest.approx(sig.longest_group_silence_s, abs=0.3)
    assert g.balance_entropy == pytest.approx(sig.balance_entropy, abs=0.01)
    assert g.balance_gini == pytest.approx(sig.balance_gini, abs=0.01)
    assert g.facilitator_share == pytest.approx(sig.facilitator_share, abs=0.01)
    assert g.turn_rate_per_min == pytest.approx(sig.turn_rate_per_min, rel=0.1)
    follows = {(names[t.from_id], names[t.to_id]): t.count for t in g.follows}
    assert sum(follows.values()) == pytest.approx(sum(sig.follows.values()), abs=2)
    assert [(a.kind, names.get(a.participant_id, "")) for a in summary.alerts] == [
        (a.kind, a.participant) for a in offline.alerts
    ]
    for live_alert, ref_alert in zip(summary.alerts, offline.alerts, strict=True):
        # the live path hears each segment ~0.5 s later (VAD hangover, bleed stage), and
        # interruptions are counted at the group's next pause over 1 s: that can be the
        # next pause but one
        assert live_alert.since_s == pytest.approx(ref_alert.since_s, abs=5.0)
    # Every snapshot carries the session signals; alerts while active.
    assert all(s.HasField("group") for s in snaps)
    if offline.alerts:
        first = offline.alerts[0]
        assert any(a.kind == first.kind for s in snaps if not s.final for a in s.alerts), (
            "an alert the recording raised never showed in a live snapshot"
        )
    # Participants appear under pseudonyms only.
    for p in summary.participants:
        assert PSEUDONYM.match(p.participant_id), p.participant_id
        assert not any(name in p.participant_id for name in NAMES)
    for snap in snaps:
        for text in [*snap.events, *(p.participant_id for p in snap.participants)]:
            assert not re.search(r"\b(facilitator|ana|ben|cleo)\b", text), text
