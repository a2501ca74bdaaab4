"""StreamNode against a real server on loopback: one call per media-server node carrying
many participants' channels. Each channel behaves as its own StreamAudio call would
(same figures, warnings, auth and pseudonyms); one bad channel gets its own precise
error and never disturbs the others or the call."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from live_util import (
    PSEUDONYM,
    Node,
    Stream,
    Subscriber,
    by_id,
    config,
    end_session,
    frame,
    frames,
    interleave,
    node_batch,
    node_close,
    node_open,
    quiet,
    stream_all,
    talk,
)

from engine.auth import create_token, new_secret
from engine.config import LiveConfig, ServerConfig
from groupsense.v1 import groupsense_pb2 as pb

pytestmark = pytest.mark.timeout(60)

Code = grpc.StatusCode
INVALID, PRECONDITION = Code.INVALID_ARGUMENT.value[0], Code.FAILED_PRECONDITION.value[0]
EXHAUSTED, DENIED = Code.RESOURCE_EXHAUSTED.value[0], Code.PERMISSION_DENIED.value[0]
S = "node-1"
GOOD = talk(("q", 0.3), ("v", 1.2), ("q", 0.5), ("v", 1.0), ("q", 0.6))  # 3.6 s
OTHER = talk(("q", 1.0), ("v", 1.5), ("q", 1.1))  # 3.6 s
QUIET_FRAME = quiet(0.02).tobytes()
OPUS_SILENT = bytes([0xF8])


def final(node: Node, ch: int) -> pb.ChannelStatus:
    got = [s for s in node.of(ch) if s.closed]
    assert got, node.of(ch)
    return got[-1]


async def good_node(ch: grpc.aio.Channel, session: str = S) -> tuple[Node, str]:
    """A node with one good channel (0), half its frames sent."""
    node = Node(ch)
    await node.open(0, config(session, "good"))
    pid = await node.pid(0)
    assert await node.send(*interleave({0: frames(GOOD)[:90]}))
    return node, pid


async def finish_good(node: Node, session: str = S) -> pb.ChannelStatus:
    """Send the good channel's rest, half-close; the call and the channel end OK."""
    assert await node.send(*interleave({0: frames(GOOD)[90:]}))
    assert await node.finish() == Code.OK, await node.status()
    st = final(node, 0)
    assert not st.error and st.ack.frames_received == 180 and st.ack.processed_ms == 3600
    assert node.warnings(0) == []
    return st


async def test_happy_path_three_channels(start_server, channel_to) -> None:
    server = await start_server()
    ch = channel_to(server)
    node = Node(ch)
    for k, ref in enumerate(("ana", "ben", "cleo")):
        await node.open(k, config(S, ref))
    pids = [await node.pid(k) for k in range(3)]
    assert all(PSEUDONYM.match(p) for p in pids) and len(set(pids)) == 3
    assert await node.send(*interleave({0: frames(GOOD), 1: frames(OTHER), 2: frames(GOOD)}))
    assert await node.finish() == Code.OK, await node.status()
    for k in range(3):
        st = final(node, k)
        assert (st.ack.participant_id, st.ack.frames_received) == (pids[k], 180)
        assert st.ack.processed_ms == 3600 and st.ack.last_sequence == 179 and not st.error
    got = by_id(await end_session(ch, S))
    assert 1.8 < got[pids[0]].speaking_s < 2.6 and 1.2 < got[pids[1]].speaking_s < 1.8


async def test_snapshots_equal_those_of_stream_audio(start_server, channel_to) -> None:
    """The same audio, once as two StreamAudio calls and once as two channels of one
    node: the same figures (pseudonyms differ: they are keyed by session)."""
    server = await start_server()
    ch = channel_to(server)
    pcm = {"ana": GOOD, "ben": OTHER}
    streams = await asyncio.gather(*(stream_all(ch, "via-audio", r, x) for r, x in pcm.items()))
    audio_pids = [await s.pid() for s in streams]
    node = Node(ch)
    for k, ref in enumerate(pcm):
        await node.open(k, config("via-node", ref))
    node_pids = [await node.pid(k) for k in range(2)]
    assert await node.send(*interleave({k: frames(x) for k, x in enumerate(pcm.values())}, 5))
    assert await node.finish() == Code.OK
    a, b = await end_session(ch, "via-audio"), await end_session(ch, "via-node")
    for pa, pn in zip(audio_pids, node_pids, strict=True):
        x, y = by_id(a)[pa], by_id(b)[pn]
        x.participant_id = y.participant_id = ""
        assert x == y
    a.group.ClearField("follows")
    b.group.ClearField("follows")
    assert a.group == b.group and a.duration_ms == b.duration_ms


async def test_many_channels_in_many_sessions(start_server, channel_to) -> None:
    server = await start_server(live=LiveConfig(tick_ms=20))
    ch = channel_to(server)
    node = Node(ch)
    n = 60
    for k in range(n):
        await node.open(k, config(f"room-{k // 10}", f"p{k % 10}"))
    pcm = frames(quiet(2.0))
    assert await node.send(*interleave({k: pcm for k in range(n)}))
    assert await node.finish() == Code.OK, await node.status()
    for k in range(n):
        st = final(node, k)
        assert st.ack.frames_received == 100 and st.ack.processed_ms == 2000, st
    assert len(server.engine.sessions) == 6
    assert all(len(s.participants) == 10 for s in server.engine.sessions.values())


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (config("room 1/../x", "bad"), "session_id must be 1-128 characters"),
        (config(S, "bad", rate=7000), "config: sample_rate_hz must be 8000-48000, got 7000"),
        (config(S, "bad", channels=3), "config: channels must be 1 or 2, got 3"),
        (config(S, "bad", codec=7), "config.codec: unknown codec 7"),
        (config(S, "bad", role=0), "config.role: set ROLE_PARTICIPANT or ROLE_FACILITATOR"),
    ],
    ids=["session id", "rate", "channels", "unknown codec", "role"],
)
async def test_a_bad_channel_config_fails_that_channel_only(
    start_server, channel_to, bad: pb.IngestRequest, message: str
) -> None:
    server = await start_server()
    ch = channel_to(server)
    node, _ = await good_node(ch)
    await node.open(1, bad)
    st = await node.wait(lambda s: s.channel == 1 and s.closed)
    assert st.error_code == INVALID and message in st.error, st
    await finish_good(node)


async def test_a_malformed_frame_fails_its_channel_and_spares_the_rest(
    start_server, channel_to
) -> None:
    server = await start_server()
    ch = channel_to(server)
    node, _ = await good_node(ch)
    await node.open(1, config(S, "bad"))
    await node.pid(1)
    # an odd byte count in the middle of a batch: channel 1 ends there, channel 0's
    # frames around it, in the same batch, are analysed
    good = frames(GOOD)
    assert await node.send(
        node_batch((0, good[90]), (1, frame(0, 0, b"\x01\x02\x03")), (0, good[91])),
        node_batch((1, frame(1, 20, QUIET_FRAME))),  # after its error: dropped quietly
    )
    st = await node.wait(lambda s: s.channel == 1 and s.closed)
    assert st.error_code == INVALID
    assert st.error == "PCM16LE payload of 3 bytes is not a whole number of 1-channel samples"
    assert len(node.errors()) == 1
    assert await node.send(*interleave({0: good[92:]}))
    assert await node.finish() == Code.OK
    assert final(node, 0).ack.frames_received == 180


async def test_an_undecodable_opus_frame_is_reported_on_its_channel(
    start_server, channel_to
) -> None:
    """Passes the TOC check, fails in libopus when analysed: reported on the channel."""
    server = await start_server()
    ch = channel_to(server)
    node, _ = await good_node(ch)
    await node.open(1, config(S, "opus", codec=pb.CODEC_OPUS, rate=48_000))
    await node.pid(1)
    bad = [frame(0, 0, bytes([0xFA, 250, 1, 2]))]
    bad += [frame(i, i * 20, OPUS_SILENT) for i in range(1, 10)]
    assert await node.send(*interleave({1: bad}))
    await finish_good(node)
    st = final(node, 1)
    assert st.error_code == INVALID and st.error.startswith("frame 0: "), st


async def test_a_duplicate_channel_id_is_refused_and_the_open_one_goes_on(
    start_server, channel_to
) -> None:
    server = await start_server()
    ch = channel_to(server)
    node, pid = await good_node(ch)
    await node.open(0, config(S, "someone-else"))
    st = await node.wait(lambda s: s.channel == 0 and bool(s.error))
    assert st.error_code == INVALID and not st.closed
    assert st.error == "channel 0 is already open on this call; close it first"
    assert final_pid(await finish_good(node)) == pid
    assert len(server.engine.sessions[S].participants) == 1


def final_pid(st: pb.ChannelStatus) -> str:
    return st.ack.participant_id


async def test_frames_for_a_channel_never_opened(start_server, channel_to) -> None:
    server = await start_server()
    ch = channel_to(server)
    node, _ = await good_node(ch)
    assert await node.send(
        node_batch((7, frame(0, 0, QUIET_FRAME))), node_batch((7, frame(1, 20, QUIET_FRAME)))
    )
    st = await node.wait(lambda s: s.channel == 7)
    assert st.error_code == PRECONDITION and st.error.startswith("channel 7 is not open")
    await finish_good(node)
    assert len(node.of(7)) == 1  # reported once, not per frame


async def test_the_channel_limit_per_call(start_server, channel_to) -> None:
    server = await start_server(max_node_channels=2)
    ch = channel_to(server)
    node, _ = await good_node(ch)
    await node.open(1, config(S, "b"))
    await node.pid(1)
    await node.open(2, config(S, "c"))
    st = await node.wait(lambda s: s.channel == 2 and s.closed)
    assert st.error_code == EXHAUSTED
    assert st.error == ("channel limit per StreamNode call reached (2, [server] max_node_channels)")
    assert await node.send(node_close(1))
    await node.wait(lambda s: s.channel == 1 and s.closed)
    await node.open(2, config(S, "c"))  # room again
    assert PSEUDONYM.match(await node.pid(2))
    await finish_good(node)


async def test_engine_limits_apply_per_channel(start_server, channel_to) -> None:
    server = await start_server(live=LiveConfig(max_streams_per_session=1))
    ch = channel_to(server)
    node, _ = await good_node(ch)
    await node.open(1, config(S, "second"))
    st = await node.wait(lambda s: s.channel == 1 and s.closed)
    assert (st.error_code, st.error) == (
        EXHAUSTED,
        "stream limit per session reached (1)",
    )
    await finish_good(node)


async def test_close_acknowledges_and_a_reopen_resumes_the_participant(
    start_server, channel_to
) -> None:
    server = await start_server()
    ch = channel_to(server)
    node = Node(ch)
    await node.open(3, config(S, "ana"))
    pid = await node.pid(3)
    assert await node.send(*interleave({3: frames(GOOD)[:100]}), node_close(3))
    st = await node.wait(lambda s: s.channel == 3 and s.closed)
    assert not st.error and st.ack.frames_received == 100 and st.ack.processed_ms == 2000
    await node.open(3, config(S, "ana"))
    assert await node.pid(3) == pid  # the same participant
    assert await node.send(*interleave({3: frames(GOOD[32000:], start_ms=2000, start_seq=100)}))
    assert await node.finish() == Code.OK
    assert final(node, 3).ack.processed_ms == 3600
    p = server.engine.sessions[S].participants[pid]
    assert p.connection == 1 and not p.connected


async def test_a_vanished_node_disconnects_its_channels_only(start_server, channel_to) -> None:
    server = await start_server()
    ch = channel_to(server)
    keeper, kept = await good_node(ch)
    gone = Node(ch)
    await gone.open(0, config(S, "leaver"))
    left = await gone.pid(0)
    assert await gone.send(*interleave({0: frames(OTHER)[:50]}))
    sub = Subscriber(ch, S)
    await sub.wait_for(lambda s: len(s.participants) == 2)
    gone.call.cancel()  # the node process dies without a word
    snap = await sub.wait_for(lambda s: not by_id(s)[left].connected)
    assert by_id(snap)[kept].connected
    await finish_good(keeper)


async def test_a_newer_stream_audio_replaces_a_node_channel(start_server, channel_to) -> None:
    server = await start_server()
    ch = channel_to(server)
    node, pid = await good_node(ch)
    s = Stream(ch)
    assert await s.send(config(S, "good"))
    assert await s.pid() == pid
    assert await node.send(*interleave({0: frames(GOOD)[90:95]}))
    st = await node.wait(lambda s: s.channel == 0 and s.closed)
    assert st.error_code == Code.ABORTED.value[0]
    assert st.error == "replaced by a newer stream for this participant"
    assert await node.finish() == Code.OK
    await s.finish()


async def test_warnings_go_to_their_channel(start_server, channel_to) -> None:
    server = await start_server()
    ch = channel_to(server)
    node, _ = await good_node(ch)
    await node.open(1, config(S, "gappy"))
    await node.pid(1)
    q = frames(quiet(1.0))
    assert await node.send(
        *interleave({1: q[:10]}),
        node_batch((1, q[12]), (1, q[11]), (1, q[12])),  # gap, reordered, duplicate
        *interleave({1: q[13:]}),
    )
    kinds = pb.StreamWarning
    await finish_good(node)
    assert [w.kind for w in node.warnings(1)] == [
        kinds.SEQUENCE_GAP,
        kinds.REORDERED,
        kinds.DUPLICATE,
    ]
    assert [w.sequence for w in node.warnings(1)] == [12, 11, 12]


async def test_an_empty_request_ends_the_call(start_server, channel_to) -> None:
    server = await start_server()
    node = Node(channel_to(server))
    await node.send(pb.NodeRequest())
    assert await node.status() == (
        Code.INVALID_ARGUMENT,
        "a NodeRequest must hold an open, a batch or a close",
    )


async def test_an_ended_session_refuses_a_channel(start_server, channel_to) -> None:
    server = await start_server()
    ch = channel_to(server)
    await stream_all(ch, "done", "ana", GOOD)
    await end_session(ch, "done")
    node, _ = await good_node(ch)
    await node.open(1, config("done", "ben"))
    st = await node.wait(lambda s: s.channel == 1 and s.closed)
    assert (st.error_code, st.error) == (PRECONDITION, "session done has ended")
    await finish_good(node)


async def test_draining_ends_the_call_unavailable(start_server, channel_to) -> None:
    server = await start_server()
    ch = channel_to(server)
    node, pid = await good_node(ch)
    # Every frame sent must have reached the engine before the drain: a batch still in
    # flight would meet the drain on the server and end the call before our write below.
    p = server.engine.sessions[S].participants[pid]
    for _ in range(1000):
        if p.frames_received == 90:
            break
        await asyncio.sleep(0.01)
    assert p.frames_received == 90
    await server.engine.drain()
    # one message, then the status: a grpc.aio client that writes on after the server
    # ended the call reports INTERNAL instead of the server's status (grpc#36066)
    await node.send(node_batch((0, frames(GOOD)[90])))
    code, details = await node.status()
    assert code == Code.UNAVAILABLE and "shutting down" in details
    assert server.engine.summaries[S].participants[0].participant_id == pid


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret"
    path.write_text(new_secret() + "\n")
    return path


def md(secret_file: Path, role: str, *sessions: str) -> tuple[tuple[str, str], ...]:
    secret = secret_file.read_bytes().strip()
    tok = create_token(secret, role=role, sessions=sessions, ttl_s=3600)  # type: ignore[arg-type]
    return (("authorization", f"Bearer {tok}"),)


async def test_auth_per_call_and_per_channel(secret_file: Path, start_server, channel_to) -> None:
    server = await start_server(secret_file=str(secret_file))
    ch = channel_to(server)
    # no token, or a facilitator's: the whole call is refused
    for metadata, code in (
        ((), Code.UNAUTHENTICATED),
        (md(secret_file, "facilitator", "a"), Code.PERMISSION_DENIED),
    ):
        node = Node(ch, metadata)
        await node.send(node_open(0, config("a", "x")))
        got, details = await node.status()
        assert got == code, details
    assert details == "a facilitator token may not call StreamNode"
    # an ingest token for session a: its channels in b are refused, those in a work
    node = Node(ch, md(secret_file, "ingest", "a"))
    await node.open(0, config("a", "ana"))
    await node.open(1, config("b", "ben"))
    assert PSEUDONYM.match(await node.pid(0))
    st = await node.wait(lambda s: s.channel == 1 and s.closed)
    assert (st.error_code, st.error) == (DENIED, "this token does not grant access to session 'b'")
    assert await node.send(*interleave({0: frames(GOOD)}))
    assert await node.finish() == Code.OK
    assert final(node, 0).ack.frames_received == 180
    assert "b" not in server.engine.sessions


async def test_statuses_carry_pseudonyms_never_refs(start_server, channel_to) -> None:
    server = await start_server()
    ch = channel_to(server)
    node = Node(ch)
    await node.open(0, config(S, "Ana Lopez <ana@example.org>"))
    await node.open(1, config(S, "Ben Okafor", rate=7000))
    assert await node.send(*interleave({0: frames(GOOD)}))
    assert await node.finish() == Code.OK
    wire = b"".join(s.SerializeToString() for s in node.statuses)
    assert b"Ana" not in wire and b"ana@" not in wire and b"Ben" not in wire


def test_max_node_channels_is_validated() -> None:
    with pytest.raises(ValueError, match="max_node_channels must be positive, got 0"):
        ServerConfig(max_node_channels=0)
