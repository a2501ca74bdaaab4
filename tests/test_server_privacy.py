"""What the live server keeps and says: `groupsense serve` in its own process (cwd, HOME
and TMPDIR in fresh directories, logging at INFO), the bundled sample replayed into it
with `groupsense replay --speed max`, a subscriber, then SIGINT. No file is written, the
log never names a participant, and snapshots carry pseudonyms and figures only."""

from __future__ import annotations

import asyncio
import math
import os
import re
import signal
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor
from google.protobuf.unknown_fields import UnknownFieldSet
from live_util import CLI, PSEUDONYM, REPO, free_port

from groupsense.v1 import groupsense_pb2 as pb
from groupsense.v1 import groupsense_pb2_grpc as pb_grpc

pytestmark = pytest.mark.timeout(120)

S = "privacy-1"
REFS = re.compile(r"\b(facilitator|ana|ben|cleo)\b", re.IGNORECASE)
ALERT_TEXT = (
    r"(p-[0-9a-f]{10} has not spoken for \d+ minutes? while others talked"
    r"|p-[0-9a-f]{10} did \d+% of the talking in the last 5 minutes"
    r"|p-[0-9a-f]{10} was interrupted \d+ times in the last 5 minutes"
    r"|nobody has spoken for \d+ s)"
)
ALERT_ID = r"(withdrawal|dominance|interrupted|group_silence):(p-[0-9a-f]{10}|group):\d+"
EVENT = re.compile(
    r"^(p-[0-9a-f]{10} (joined|reconnected|disconnected|started speaking|stopped speaking)"
    r"|session (ended|server shutting down|ended after every participant left)"
    rf"|alert {ALERT_ID} (raised|cleared): {ALERT_TEXT}"
    r"|cue [a-z_]+:p-[0-9a-f]{10}:\d+ (raised|cleared): p-[0-9a-f]{10} [a-z ()]+: "
    r"[\d.]+ times their usual variation, over the last \d+ s of their speech)$"
)
ALLOWED_NEW = (".nbi", ".nbc", ".pyc")  # numba's and Python's caches, next to the code
F = descriptor.FieldDescriptor


def _files(*roots: Path) -> set[Path]:
    return {p for root in roots for p in root.rglob("*") if p.is_file()}


def _env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("XDG_", "GROUPSENSE_", "NUMBA_CACHE_DIR"))
    }
    env.update(HOME=str(tmp_path / "home"), TMPDIR=str(tmp_path / "tmp"), PYTHONUNBUFFERED="1")
    return env


def test_snapshots_can_carry_only_pseudonyms_and_figures() -> None:
    """The wire contract itself: no field that could hold audio, words or a name."""
    participant = {f.name: f.type for f in pb.ParticipantSignals.DESCRIPTOR.fields}
    assert participant.pop("participant_id") == F.TYPE_STRING
    assert participant.pop("role") == F.TYPE_ENUM
    assert participant.pop("connected") == participant.pop("speaking") == F.TYPE_BOOL
    assert participant.pop("affect") == F.TYPE_BOOL
    assert participant.pop("cues") == F.TYPE_MESSAGE
    cue = {f.name for f in pb.Cue.DESCRIPTOR.fields if f.type == F.TYPE_STRING}
    assert cue == {"id", "kind", "message"}
    assert {f.type for f in pb.Cue.DESCRIPTOR.fields} <= {F.TYPE_STRING, F.TYPE_DOUBLE}
    assert set(participant.values()) <= {F.TYPE_DOUBLE, F.TYPE_UINT32}  # figures only
    snapshot = {f.name: f.type for f in pb.SessionSnapshot.DESCRIPTOR.fields}
    assert snapshot == {
        "session_id": F.TYPE_STRING,
        "snapshot_seq": F.TYPE_UINT64,
        "session_ms": F.TYPE_UINT64,
        "participants": F.TYPE_MESSAGE,
        "events": F.TYPE_STRING,
        "final": F.TYPE_BOOL,
        "group": F.TYPE_MESSAGE,
        "alerts": F.TYPE_MESSAGE,
    }
    group = {f.name: f.type for f in pb.GroupSignals.DESCRIPTOR.fields}
    assert group.pop("follows") == F.TYPE_MESSAGE
    assert set(group.values()) <= {F.TYPE_DOUBLE, F.TYPE_UINT32}
    transition = {f.name: f.type for f in pb.Transition.DESCRIPTOR.fields}
    assert transition == {"from_id": F.TYPE_STRING, "to_id": F.TYPE_STRING, "count": F.TYPE_UINT32}
    alert = {f.name for f in pb.Alert.DESCRIPTOR.fields if f.type == F.TYPE_STRING}
    assert alert == {"id", "kind", "participant_id", "message"}  # checked by pattern below
    summary = {f.name for f in pb.SessionSummary.DESCRIPTOR.fields}
    assert summary == {"session_id", "duration_ms", "participants", "group", "alerts"}


def check_snapshot(raw: bytes) -> pb.SessionSnapshot:
    snap = pb.SessionSnapshot.FromString(raw)
    assert len(UnknownFieldSet(snap)) == 0
    assert snap.session_id == S
    for event in snap.events:
        assert EVENT.match(event), event
    for p in snap.participants:
        assert len(UnknownFieldSet(p)) == 0
        assert PSEUDONYM.match(p.participant_id), p.participant_id
        assert p.role in (pb.ROLE_PARTICIPANT, pb.ROLE_FACILITATOR)
        values = (p.speaking_s, p.share, p.since_last_spoke_s, p.unknown_s)
        assert all(math.isfinite(v) for v in values)
        assert 0 <= p.share <= 1 and p.speaking_s >= 0 and p.unknown_s >= 0
        assert p.since_last_spoke_s >= -1
        assert p.speaking_s <= snap.session_ms / 1000 + 0.01
    for t in snap.group.follows:
        assert PSEUDONYM.match(t.from_id) and PSEUDONYM.match(t.to_id)
    for a in snap.alerts:
        assert re.fullmatch(ALERT_ID, a.id) and re.fullmatch(ALERT_TEXT, a.message), a
        assert a.participant_id == "" or PSEUDONYM.match(a.participant_id)
    return snap


async def _read_stderr(stream: asyncio.StreamReader, into: list[str], ready: asyncio.Event) -> None:
    while line := await stream.readline():
        text = line.decode(errors="replace")
        into.append(text)
        if "serving on" in text:
            ready.set()
    ready.set()


async def test_serve_writes_nothing_and_names_no_one(tmp_path: Path) -> None:
    for d in ("cwd", "home", "tmp"):
        (tmp_path / d).mkdir()
    code_dirs = (REPO / "engine", REPO / "cli")
    before = _files(tmp_path, *code_dirs)
    env = _env(tmp_path)
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        *CLI, "serve", "--port", str(port),
        cwd=tmp_path / "cwd", env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    procs = [server]  # whatever the outcome, none outlives the test
    log: list[str] = []
    ready = asyncio.Event()
    assert server.stderr is not None and server.stdout is not None
    reader = asyncio.create_task(_read_stderr(server.stderr, log, ready))
    ch = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        await asyncio.wait_for(ready.wait(), 30)
        assert server.returncode is None, "".join(log)
        replay = await asyncio.create_subprocess_exec(
            *CLI, "replay", "--session", S, "--speed", "max", "--codec", "pcm",
            "--server", f"127.0.0.1:{port}",
            cwd=tmp_path / "cwd", env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        procs.append(replay)
        sessions = pb_grpc.SessionServiceStub(ch)
        for _ in range(300):
            listed = await sessions.ListSessions(pb.ListSessionsRequest())
            if S in [s.session_id for s in listed.sessions]:
                break
            await asyncio.sleep(0.03)
        subscribe = ch.unary_stream(
            "/groupsense.v1.SignalService/Subscribe",
            request_serializer=pb.SubscribeRequest.SerializeToString,
            response_deserializer=None,  # raw bytes: unknown fields would show
        )
        raws: list[bytes] = []

        async def collect() -> None:
            async for raw in subscribe(pb.SubscribeRequest(session_id=S)):
                raws.append(raw)

        watcher = asyncio.create_task(collect())
        watch = await asyncio.create_subprocess_exec(  # and a facilitator's terminal view
            *CLI, "watch", S, "--server", f"127.0.0.1:{port}",
            cwd=tmp_path / "cwd", env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        procs.append(watch)
        _, err = await asyncio.wait_for(replay.communicate(), 90)
        assert replay.returncode == 0, err.decode()
        assert "ana:" in err.decode()  # the sender knows its tracks; the server must not

        server.send_signal(signal.SIGINT)  # graceful: drain, final snapshot, exit
        await asyncio.wait_for(watcher, 30)
        seen, watch_err = await asyncio.wait_for(watch.communicate(), 30)
        assert watch.returncode == 0, watch_err.decode()
        assert await asyncio.wait_for(server.wait(), 30) == 0, "".join(log)
        await reader
    finally:
        await ch.close()
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    snaps = [check_snapshot(r) for r in raws]
    assert len(snaps) >= 2
    final = snaps[-1]
    assert final.final and "session server shutting down" in final.events
    assert len(final.participants) == 4
    assert sum(p.speaking_s for p in final.participants) > 100  # it did analyse the sample

    text = "".join(log) + (await server.stdout.read()).decode(errors="replace")
    assert "groupsense.server listening on" in text  # INFO logging is on and captured
    assert "draining" in text
    named = REFS.findall(text)
    assert not named, f"the server's log names participants: {named}\n{text}"
    # What the facilitator's view shows: pseudonyms and figures, to the end of the session.
    view = seen.decode()
    assert "(ended)" in view and "(F)" in view
    assert {p.participant_id for p in final.participants} <= set(
        re.findall(r"p-[0-9a-f]{10}", view)
    )
    assert not REFS.findall(view), view

    created = sorted(p for p in _files(tmp_path, *code_dirs) - before)
    unexpected = [p for p in created if p.suffix not in ALLOWED_NEW]
    assert not unexpected, f"files written: {unexpected}"
