"""Stream and session lifecycle against a real server on loopback: reconnects, a stream
replaced by a newer one, a client that vanishes, graceful shutdown, slow subscribers,
health and reflection, ending a session and reading its summary."""

from __future__ import annotations

import argparse
import asyncio
import time
import wave
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from live_util import (
    PSEUDONYM,
    Stream,
    Subscriber,
    by_id,
    config,
    end_session,
    frame,
    frames,
    quiet,
    stream_all,
    talk,
)

from cli import replay as replay_cli
from engine.config import LiveConfig
from groupsense.v1 import groupsense_pb2 as pb
from groupsense.v1 import groupsense_pb2_grpc as pb_grpc

pytestmark = pytest.mark.timeout(60)

Code = grpc.StatusCode
S = "room-1"
PART = talk(("q", 0.3), ("v", 1.2), ("q", 0.5))  # 2 s, speech in the middle
QUIET_FRAME = quiet(0.02).tobytes()


async def alone(ch: grpc.aio.Channel, session: str, pcm: np.ndarray) -> pb.ParticipantSignals:
    """The figures of `pcm` streamed alone, in one connection, in a session of its own."""
    s = await stream_all(ch, session, "ref", pcm)
    return by_id(await end_session(ch, session))[await s.pid()]


async def test_reconnect_resumes_the_same_participant(start_server, channel_to) -> None:
    server = await start_server()
    ch = channel_to(server)
    once = await alone(ch, "ref", PART)
    first = await stream_all(ch, S, "ana", PART)
    pid = await first.pid()
    sub = Subscriber(ch, S)
    await sub.wait_for(lambda s: not by_id(s)[pid].connected)
    listed = await pb_grpc.SessionServiceStub(ch).ListSessions(pb.ListSessionsRequest())
    assert [(i.session_id, i.participants, i.active) for i in listed.sessions] == [(S, 1, True)]
    # One second later on the session clock, the same participant comes back.
    second = await stream_all(ch, S, "ana", PART, start_ms=3000)
    assert await second.pid() == pid
    summary = await end_session(ch, S)
    assert summary.duration_ms == 5000
    [ana] = summary.participants
    assert ana.participant_id == pid
    assert ana.speaking_s == pytest.approx(2 * once.speaking_s)  # both connections count
    assert once.speaking_s > 1.0
    assert ana.unknown_s == pytest.approx(1.0)  # the time away is unknown, not silence
    events = [e for snap in await sub.end() for e in snap.events]
    # (the first "disconnected" may have been published before the subscription began)
    assert events.count(f"{pid} reconnected") == 1
    last_gone = len(events) - 1 - events[::-1].index(f"{pid} disconnected")
    assert events.index(f"{pid} reconnected") < last_gone
    assert events[-1] == "session ended"


async def test_a_newer_stream_replaces_the_older(start_server, channel_to) -> None:
    server = await start_server()
    ch = channel_to(server)
    sig = talk(("q", 0.5), ("v", 1.2), ("q", 0.5))
    once = await alone(ch, "ref", sig)
    fs = frames(sig)
    old = Stream(ch)
    assert await old.send(config(S, "ana"), *fs[:25])  # 0-500 ms
    pid = await old.pid()
    await old.synced(fs[24])  # the server has them all (frames in flight would be refused)
    new = Stream(ch)  # e.g. the video server lost track of the old one and reconnected
    assert await new.send(config(S, "ana"))
    assert await new.pid() == pid
    # The old stream's next frame is refused; its frames so far are kept.
    await old.send(fs[25])
    assert await old.status() == (
        Code.ABORTED,
        "replaced by a newer stream for this participant",
    )
    assert await new.send(*fs[25:])
    assert await new.finish() == Code.OK
    [ana] = (await end_session(ch, S)).participants
    assert ana.unknown_s == 0.0  # no hole: the old stream's 500 ms were analysed
    assert ana.speaking_s == pytest.approx(once.speaking_s, abs=0.05)


async def test_a_vanished_client_leaves_others_unaffected(start_server, channel_to) -> None:
    server = await start_server()
    ch = channel_to(server)
    sig = talk(("q", 0.3), ("v", 1.2), ("q", 0.5), ("v", 1.0), ("q", 0.6))  # 3.6 s
    ref = await alone(ch, "ref", sig)
    fs = frames(sig)
    a, b = Stream(ch), Stream(ch)
    assert await a.send(config(S, "ana"), *fs[:90])
    assert await b.send(config(S, "ben"), *fs[:90])
    pa = await a.pid()
    await a.synced(fs[89])  # the server has all of a's frames when it vanishes
    sub = Subscriber(ch, S)
    await sub.wait_for(lambda s: by_id(s)[pa].connected)
    a.call.cancel()  # the client process died, or its network went away
    gone = await sub.wait_for(lambda s: not by_id(s)[pa].connected)
    assert f"{pa} disconnected" in gone.events
    assert await b.send(*fs[90:])
    assert await b.finish() == Code.OK
    summary = by_id(await end_session(ch, S))
    ana, ben = summary[pa], summary[await b.pid()]
    assert not ana.connected
    assert ana.speaking_s > 1.0  # what it sent before vanishing was analysed
    assert ana.unknown_s == pytest.approx(1.8)  # the rest of the session is unknown for it
    assert (ben.speaking_s, ben.unknown_s, ben.since_last_spoke_s) == (
        ref.speaking_s,
        ref.unknown_s,
        ref.since_last_spoke_s,
    )


async def test_graceful_shutdown_analyses_what_was_sent(start_server, channel_to) -> None:
    # A jitter window longer than the audio: a connection's first frame, and the frames
    # in order after it, wait for it, so at shutdown the audio is still buffered.
    server = await start_server(live=LiveConfig(jitter_ms=5000))
    ch = channel_to(server)
    sig = talk(("q", 0.5), ("v", 2.0), ("q", 0.5))
    ref = await alone(ch, "ref", sig)
    fs = frames(sig)
    live = Stream(ch)
    assert await live.send(config(S, "ana"), *fs)
    pid = await live.pid()
    sub = Subscriber(ch, S)
    await sub.wait_for(lambda s: True)
    await live.synced(fs[-1])  # the server has read every frame
    assert [w.kind for w in live.warnings()] == [pb.StreamWarning.DUPLICATE]
    assert by_id(sub.snaps[-1])[pid].speaking_s < ref.speaking_s  # not analysed yet

    stopping = asyncio.create_task(server.stop())
    health = health_pb2_grpc.HealthStub(ch)
    serving = health_pb2.HealthCheckResponse.SERVING
    while (await health.Check(health_pb2.HealthCheckRequest(service=""))).status == serving:
        await asyncio.sleep(0)
    late = Stream(ch)  # a new stream while draining
    await late.send(config(S, "ben"), frame(0, 0, QUIET_FRAME))
    assert await late.status() == (
        Code.UNAVAILABLE,
        "server is shutting down; reconnect to another replica",
    )
    await live.send(frame(len(fs), len(fs) * 20, QUIET_FRAME))  # told on its next frame
    assert await live.status() == (
        Code.UNAVAILABLE,
        "server is shutting down; reconnect to another replica",
    )
    await asyncio.wait_for(stopping, 10)

    snaps = await sub.end()
    final = snaps[-1]
    assert final.final and [s.final for s in snaps].count(True) == 1
    assert "session server shutting down" in final.events
    got = by_id(final)[pid]
    assert (got.speaking_s, got.unknown_s) == (ref.speaking_s, ref.unknown_s)
    assert final.session_ms == 3000
    seqs = [s.snapshot_seq for s in snaps]
    assert seqs == sorted(set(seqs)), seqs  # every snapshot has a new, higher number
    after = Stream(ch)  # and after the drain nothing listens any more
    await after.send(config(S, "ben"))
    assert (await after.status())[0] == Code.UNAVAILABLE


def _write_wav(path: Path, pcm: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(pcm.tobytes())


async def test_a_subscriber_that_never_reads_blocks_nothing(
    start_server, channel_to, tmp_path: Path
) -> None:
    server = await start_server(live=LiveConfig(snapshot_interval_s=0.05, subscriber_queue=2))
    ch = channel_to(server)
    # A tiny HTTP/2 window: the server's sends to this subscriber stall almost at once.
    stuck_ch = channel_to(
        server, (("grpc.http2.lookahead_bytes", 1024), ("grpc.http2.bdp_probe", 0))
    )
    files = []
    for i in range(4):
        files.append(tmp_path / f"p{i}.wav")
        pcm = talk(*[("v", 0.6 + 0.1 * i), ("q", 0.5)] * 40)  # ~45-55 s each
        _write_wav(files[-1], pcm)
    first = Stream(ch)  # the session exists once a stream is open
    assert await first.send(config(S, "early"), frame(0, 0, QUIET_FRAME))
    await first.pid()
    stuck = pb_grpc.SignalServiceStub(stuck_ch).Subscribe(pb.SubscribeRequest(session_id=S))
    await stuck.read()  # one snapshot, then never again
    reader = Subscriber(ch, S)
    args = argparse.Namespace(
        server=f"127.0.0.1:{server.port}",
        token=None,
        tls_ca=None,
        tls_cert=None,
        tls_key=None,
        session=S,
        codec="pcm",
        quiet=True,
    )
    names: dict[str, str] = {}
    t0 = time.monotonic()
    # As fast as the client can send: the server must slow it down (flow control), not
    # fail it, nor let the subscriber that never reads hold anything up.
    code = await asyncio.wait_for(replay_cli.replay(args, [str(f) for f in files], None, names), 30)
    took = time.monotonic() - t0
    assert code == 0
    assert sorted(names.values()) == ["p0", "p1", "p2", "p3"]
    assert await first.finish() == Code.OK
    assert server.engine.sessions[S].hub.dropped > 0  # the stuck subscriber did fall behind
    summary = await end_session(ch, S)
    snaps = await reader.end()
    assert snaps[-1].final
    assert took < 20
    # It saw the session move all along, not just its end.
    assert len({s.session_ms for s in snaps}) >= 5
    assert by_id(snaps[-1]) == by_id(summary)
    assert all(by_id(summary)[pid].speaking_s > 5 for pid in names)
    stuck.cancel()


async def test_health_and_reflection(start_server, channel_to) -> None:
    server = await start_server()
    ch = channel_to(server)
    health = health_pb2_grpc.HealthStub(ch)
    for service in ("", "groupsense.v1.IngestService", "groupsense.v1.SignalService"):
        got = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert got.status == health_pb2.HealthCheckResponse.SERVING, service
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
    assert err.value.code() == Code.NOT_FOUND

    stub = reflection_pb2_grpc.ServerReflectionStub(ch)

    async def ask(**kw: str) -> reflection_pb2.ServerReflectionResponse:
        async def requests():  # type: ignore[no-untyped-def]
            yield reflection_pb2.ServerReflectionRequest(**kw)

        [response] = [r async for r in stub.ServerReflectionInfo(requests())]
        return response

    listed = await ask(list_services="")
    names = {s.name for s in listed.list_services_response.service}
    assert {
        "groupsense.v1.IngestService",
        "groupsense.v1.SignalService",
        "groupsense.v1.SessionService",
        "grpc.health.v1.Health",
    } <= names
    found = await ask(file_containing_symbol="groupsense.v1.IngestService")
    fd = descriptor_pb2.FileDescriptorProto.FromString(
        found.file_descriptor_response.file_descriptor_proto[0]
    )
    assert fd.package == "groupsense.v1"
    ingest = next(s for s in fd.service if s.name == "IngestService")
    assert [(m.name, m.client_streaming, m.server_streaming) for m in ingest.method] == [
        ("StreamAudio", True, True),
        ("StreamNode", True, True),
    ]


async def test_end_session_summary_and_subscribe_after_end(start_server, channel_to) -> None:
    server = await start_server()
    ch = channel_to(server)
    sessions = pb_grpc.SessionServiceStub(ch)
    a = await stream_all(ch, S, "ana", PART)
    b = Stream(ch)  # still streaming when the session is ended
    assert await b.send(config(S, "ben"), *frames(PART)[:50])
    pa, pb_id = await a.pid(), await b.pid()
    assert PSEUDONYM.match(pa) and PSEUDONYM.match(pb_id) and pa != pb_id
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await sessions.GetSummary(pb.GetSummaryRequest(session_id=S))
    assert (err.value.code(), err.value.details()) == (
        Code.FAILED_PRECONDITION,
        f"session {S!r} is still active; end it first",
    )
    watcher = Subscriber(ch, S)
    await watcher.wait_for(lambda s: True)

    summary = await sessions.EndSession(pb.EndSessionRequest(session_id=S))
    assert summary.session_id == S
    assert summary.duration_ms == 2000
    got = by_id(summary)
    assert set(got) == {pa, pb_id}
    assert got[pa].speaking_s > 1.0 and not got[pa].connected and not got[pb_id].connected
    assert sum(p.share for p in summary.participants) == pytest.approx(1.0)
    # The open subscription gets the final snapshot and ends; the open stream is refused.
    snaps = await watcher.end()
    assert snaps[-1].final and by_id(snaps[-1]) == got
    assert watcher.error is None
    await b.send(frames(PART)[50])
    assert await b.status() == (Code.FAILED_PRECONDITION, f"session {S} has ended")
    # Afterwards: the same summary, again and again; Subscribe yields the final snapshot.
    assert await sessions.GetSummary(pb.GetSummaryRequest(session_id=S)) == summary
    assert await sessions.EndSession(pb.EndSessionRequest(session_id=S)) == summary
    late = Subscriber(ch, S)
    [final] = await late.end()
    assert final.final and by_id(final) == got and final.session_ms == summary.duration_ms
    listed = await sessions.ListSessions(pb.ListSessionsRequest())
    assert S not in [i.session_id for i in listed.sessions]
    again = Stream(ch)  # an ended session is not reopened by a new stream
    await again.send(config(S, "ana"))
    assert await again.status() == (Code.FAILED_PRECONDITION, f"session {S} has ended")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await sessions.GetSummary(pb.GetSummaryRequest(session_id="nope"))
    assert (err.value.code(), err.value.details()) == (Code.NOT_FOUND, "no session 'nope'")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await sessions.EndSession(pb.EndSessionRequest(session_id="nope"))
    assert (err.value.code(), err.value.details()) == (
        Code.NOT_FOUND,
        "no active session 'nope'",
    )


async def test_an_idle_session_ends_by_itself(start_server, channel_to) -> None:
    server = await start_server(live=LiveConfig(idle_session_s=0.3))
    ch = channel_to(server)
    s = await stream_all(ch, S, "ana", PART)
    sub = Subscriber(ch, S)
    final = await sub.wait_for(lambda snap: snap.final, timeout=5)
    assert "session ended after every participant left" in final.events
    assert by_id(final)[await s.pid()].speaking_s > 1.0
    summary = await pb_grpc.SessionServiceStub(ch).GetSummary(pb.GetSummaryRequest(session_id=S))
    assert by_id(summary) == by_id(final)
