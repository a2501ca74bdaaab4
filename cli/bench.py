"""`groupsense bench`: live load generator, streams per server core and latency.

Why this shape: the figure users need is "how many participants can one core serve
live", which only a real server under real-time load can show. The server runs in
its own process pinned to one core; the load (several processes, pinned to the
other core) sends pre-encoded 20 ms frames over loopback gRPC at real-time pace,
in sessions of 6-12 participants, with one Subscribe client per session. N steps
up until a step drops frames or its p99 latency reaches the target. The same run
measures the transport ceiling: the same server with `LiveConfig.analyse_audio`
off (frames ordered and acknowledged, never decoded or analysed).

Capture-to-snapshot latency, precisely: for each session and each 20 ms frame
index k (capture interval [20k, 20k + 20) ms), from the wall-clock moment the first
frame k of that session is written to its gRPC call, to the arrival at the
session's subscriber of the first snapshot whose session_ms >= 20k + 20 (the
frame's audio is on the analysed timeline). The sender writes frame k at its real-
time due moment, 20k + 20 ms after the step's start (the audio must exist first).

Nothing here writes audio to disk: frames are encoded in memory in each process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

FRAME_MS = 20
CLIP_S = 40  # seconds of each sample track pre-encoded and looped
SIZE_PATTERN = (6, 8, 10, 12, 7, 9, 11)  # session sizes, mean 9
LATENCY_DEFINITION = (
    "capture-to-snapshot latency: per session and 20 ms frame k, from the write of the "
    "session's first frame k (at its real-time due moment) to the arrival of the first "
    "snapshot with session_ms >= 20k+20"
)
AFFECT_MODES = ("model", "prosody")
_INGEST = "/groupsense.v1.IngestService/StreamAudio"
_NODE = "/groupsense.v1.IngestService/StreamNode"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bench",
        help="load-test a live server: streams per core, latency, transport ceiling",
        description="Starts a server pinned to one core and drives participants (sessions of "
        "6-12, 20 ms frames, real time) from the other core over loopback gRPC. "
        + LATENCY_DEFINITION,
    )
    p.add_argument("--vad", nargs="+", default=None, help="backends (default: all of them)")
    p.add_argument("--codec", nargs="+", choices=("opus", "pcm"), default=None)
    p.add_argument("--quick", action="store_true", help="a rougher figure within about 60 s")
    p.add_argument("--json", metavar="OUT", help="write results as JSON")
    p.add_argument(
        "--from-json",
        metavar="REPORT",
        help="run nothing: print the table of an earlier run's --json (and --plot it)",
    )
    p.add_argument(
        "--plot", metavar="OUT.png|OUT.svg", help="latency vs streams plot (PNG via chromium)"
    )
    p.add_argument("--start", type=int, default=None, help="first step's streams")
    p.add_argument(
        "--max-streams",
        type=int,
        default=4000,
        help="the search's last step (a figure that reaches it is a lower bound: '>=')",
    )
    p.add_argument("--growth", type=float, default=None, help="step factor (default 1.5)")
    p.add_argument("--refine", type=int, default=None, help="bisection steps after a failure")
    p.add_argument("--seconds", type=float, default=None, help="measured seconds per step")
    p.add_argument("--warmup", type=float, default=None, help="unmeasured seconds per step")
    p.add_argument("--workers", type=int, default=2, help="load-generator processes")
    p.add_argument("--p99-ms", type=float, default=150.0, help="latency target")
    p.add_argument("--retries", type=int, default=None, help="re-measure a failed step")
    p.add_argument("--tick-ms", type=int, default=20, help="server LiveConfig.tick_ms")
    p.add_argument("--jitter-ms", type=int, default=20, help="server LiveConfig.jitter_ms")
    p.add_argument("--snapshot-s", type=float, default=0.05, help="snapshot_interval_s")
    p.add_argument("--no-transport", action="store_true", help="skip the transport ceiling")
    p.add_argument(
        "--affect",
        nargs="+",
        choices=AFFECT_MODES,
        default=["model"],
        help="what every (consenting) participant's voice goes through: model = prosody, "
        "its cues and the affect model; prosody = prosody and its cues only "
        "(LiveConfig.affect_model off; configurations named <vad>/<codec>/prosody); "
        "--soak takes the first",
    )
    p.add_argument(
        "--ingest",
        choices=("node", "stream"),
        default="node",
        help="node: StreamNode, one call per load process carrying its participants' "
        "channels, one FrameBatch per 20 ms (as a media server would); stream: one "
        "StreamAudio call per participant, one message per frame",
    )
    p.add_argument(
        "--node-channels", type=int, default=512, help="channels per StreamNode call (node)"
    )
    p.add_argument(
        "--soak",
        nargs="?",
        type=float,
        const=90.0,
        default=None,
        metavar="MINUTES",
        help="instead of the search: one session of --soak-streams participants for MINUTES "
        "of session time (default 90), sent faster than real time; the server's resident "
        "memory is sampled every session minute and must stay flat",
    )
    p.add_argument("--soak-streams", type=int, default=10, help="participants in the soak")
    p.set_defaults(run=run)


# -- helpers shared by the processes -----------------------------------------------------
def config_name(vad: str, codec: str, affect: str) -> str:
    """A configuration's name in the table and JSON: `<vad>/<codec>`, with the affect
    model (the default), or `<vad>/<codec>/prosody` without it."""
    return f"{vad}/{codec}" if affect == "model" else f"{vad}/{codec}/{affect}"


def session_sizes(n: int) -> list[int]:
    """Split n participants into sessions of 6-12 (fewer than 6: one small session)."""
    sizes: list[int] = []
    i = 0
    while n - sum(sizes) > 12:
        s = SIZE_PATTERN[i % len(SIZE_PATTERN)]
        if n - sum(sizes) - s < 6:
            s = n - sum(sizes) - 6
        sizes.append(s)
        i += 1
    if n - sum(sizes) > 0:
        sizes.append(n - sum(sizes))
    return sizes


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def frame_request(sequence: int, capture_ms: int, payload: bytes) -> bytes:
    """A serialized IngestRequest{frame}: hand-encoded so the generator stays cheap."""
    inner = (
        b"\x08"
        + _varint(sequence)
        + b"\x10"
        + _varint(capture_ms)
        + b"\x22"
        + _varint(len(payload))
        + payload
    )
    return b"\x12" + _varint(len(inner)) + inner


def channel_frame(channel: int, sequence: int, capture_ms: int, payload: bytes) -> bytes:
    """A serialized ChannelFrame (StreamNode), hand-encoded like `frame_request`."""
    inner = (
        b"\x08"
        + _varint(channel)
        + b"\x10"
        + _varint(sequence)
        + b"\x18"
        + _varint(capture_ms)
        + b"\x2a"
        + _varint(len(payload))
        + payload
    )
    return b"\x0a" + _varint(len(inner)) + inner  # as one FrameBatch.frames entry


def batch_requests(frames: list[bytes], max_bytes: int = 60_000) -> list[bytes]:
    """Serialized NodeRequest{batch}s holding `frames` (from `channel_frame`), each
    under `max_bytes` (the server refuses messages over its max_message_bytes)."""
    out: list[bytes] = []
    part: list[bytes] = []
    size = 0
    for f in frames:
        if part and size + len(f) > max_bytes:
            body = b"".join(part)
            out.append(b"\x12" + _varint(len(body)) + body)
            part, size = [], 0
        part.append(f)
        size += len(f)
    if part:
        body = b"".join(part)
        out.append(b"\x12" + _varint(len(body)) + body)
    return out


def _proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _pin(core: int | None) -> None:
    if core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})


# -- the server process ------------------------------------------------------------------
def server_main() -> None:
    """Child process: a real Server with the bench's LiveConfig; prints its port, stops
    on stdin EOF (so it never outlives the bench)."""
    opts = json.loads(sys.argv[1])
    _pin(opts["core"])
    from engine.config import EngineConfig, LiveConfig, ServerConfig, VadConfig
    from engine.server import Server

    config = EngineConfig(
        server=ServerConfig(port=0, max_concurrent_streams=1024),
        live=LiveConfig(
            tick_ms=opts["tick_ms"],
            jitter_ms=opts["jitter_ms"],
            snapshot_interval_s=opts["snapshot_s"],
            max_sessions=4096,
            max_streams=100_000,
            analyse_audio=opts["analyse"],
            affect_model=opts.get("affect", "model") == "model",
        ),
        vad=VadConfig(backend=opts["vad"]),
    )

    async def main() -> None:
        server = Server(config)
        port = await server.start()
        print(f"PORT {port}", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)
        await server.stop()

    asyncio.run(main())


def start_server(opts: dict[str, Any]) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from cli.bench import server_main; server_main()",
            json.dumps(opts),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"bench server did not start: {line!r}")
    return proc, int(line.split()[1])


def stop_server(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- the load-generator processes ----------------------------------------------------------
def _clips(codec: str) -> list[list[bytes]]:
    """Each sample track's first CLIP_S seconds as 20 ms payloads (in memory only)."""
    from cli.replay import _Encoder
    from engine.audio.decode import decode_file
    from engine.sample import sample_session

    infos, chunks = decode_file(str(sample_session()))
    pcm: list[list[np.ndarray]] = [[] for _ in infos]
    for i, chunk in chunks:
        pcm[i].append(chunk)
    out = []
    for parts in pcm:
        audio = np.concatenate(parts)[: CLIP_S * 16000]
        enc = _Encoder(codec)
        out.append(enc.frames(audio) + enc.frames(np.zeros(0, np.int16), final=True))
    return out


@dataclass
class _Session:
    sid: str
    size: int
    sent: list[float]
    latencies: list[float] = field(default_factory=list)
    resolved: int = 0


class _Ticker:
    """One clock for every stream of a process: an event per 20 ms tick."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.k = -1
        self.event = asyncio.Event()
        self.lag: list[float] = []

    async def run(self, frames: int) -> None:
        for k in range(frames):
            due = self.start + (k + 1) * FRAME_MS / 1000
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self.lag.append(time.monotonic() - due)
            self.k = k
            ev, self.event = self.event, asyncio.Event()
            ev.set()


async def _step(cmd: dict[str, Any], clips: list[list[bytes]]) -> dict[str, Any]:
    import grpc

    from groupsense.v1 import groupsense_pb2 as pb
    from groupsense.v1 import groupsense_pb2_grpc as pb_grpc

    codec = cmd["codec"]
    node_mode = cmd.get("ingest", "stream") == "node"
    W = pb.StreamWarning
    lost = {W.LATE_FRAME, W.DUPLICATE, W.SEQUENCE_GAP}  # frames the server did not analyse
    frames = int((cmd["warmup_s"] + cmd["seconds"]) * 1000 / FRAME_MS)
    warm = int(cmd["warmup_s"] * 1000 / FRAME_MS)
    target = f"127.0.0.1:{cmd['port']}"
    channels = []
    sessions: list[_Session] = []
    # every participant: (session, its StreamConfig, clip, offset)
    members: list[tuple[_Session, pb.StreamConfig, list[bytes], int]] = []
    errors: list[str] = []
    for si, (sid, size) in enumerate(cmd["sessions"]):
        channels.append(grpc.aio.insecure_channel(target))
        s = _Session(sid, size, [0.0] * frames)
        sessions.append(s)
        for j in range(size):
            cfg = _load_config(sid, j, codec)
            clip = clips[j % len(clips)]
            offset = (si * 151 + (j // len(clips)) * 353) % len(clip)
            members.append((s, cfg, clip, offset))
    ticker = _Ticker(time.monotonic() + 3600)  # started below, once every stream is open
    if node_mode:
        senders = await _open_nodes(channels[0], members, cmd["node_channels"], frames, ticker)
    else:
        senders = await _open_streams(channels, sessions, members, frames, ticker)
    ticker.start = time.monotonic() + 0.3
    sub_stub = [pb_grpc.SignalServiceStub(ch) for ch in channels]

    async def subscriber(s: _Session, stub: pb_grpc.SignalServiceStub) -> None:
        try:
            async for snap in stub.Subscribe(pb.SubscribeRequest(session_id=s.sid)):
                now = time.monotonic()
                covered = min(snap.session_ms // FRAME_MS, frames)
                while s.resolved < covered and s.sent[s.resolved] > 0:
                    if s.resolved >= warm:
                        s.latencies.append(now - s.sent[s.resolved])
                    s.resolved += 1
                if snap.final:
                    return
        except grpc.aio.AioRpcError as exc:
            errors.append(f"subscribe {s.sid}: {exc.code().name}")

    subs = [
        asyncio.create_task(subscriber(s, st)) for s, st in zip(sessions, sub_stub, strict=True)
    ]
    cpu0 = time.process_time()
    tick_task = asyncio.create_task(ticker.run(frames))
    results = await asyncio.gather(*(send(lost, errors) for send in senders))
    await tick_task
    cpu = time.process_time() - cpu0
    end_stubs = [pb_grpc.SessionServiceStub(ch) for ch in channels]
    for s, stub in zip(sessions, end_stubs, strict=True):
        try:
            await stub.EndSession(pb.EndSessionRequest(session_id=s.sid))
        except grpc.aio.AioRpcError as exc:
            errors.append(f"end {s.sid}: {exc.code().name}")
    _, pending = await asyncio.wait(subs, timeout=5)
    for t in pending:
        t.cancel()
    for ch in channels:
        await ch.close()
    lat = [x for s in sessions for x in s.latencies]
    unresolved = sum(max(frames - s.resolved, 0) for s in sessions)
    return {
        "t_measure": ticker.start + warm * FRAME_MS / 1000,
        "t_end": ticker.start + frames * FRAME_MS / 1000,
        "latencies_ms": [round(x * 1000, 2) for x in lat],
        "unresolved_frames": unresolved,
        "sent": sum(r[0] for r in results),
        "dropped": sum(r[1] for r in results),
        "send_lag_p99_ms": float(np.percentile(ticker.lag[warm:], 99) * 1000) if ticker.lag else 0,
        "cpu_s": cpu,
        "errors": errors[:10],
    }


_Sender = Any  # async (lost kinds, errors) -> (frames sent, frames lost)


async def _open_streams(
    channels: list[Any],
    sessions: list[_Session],
    members: list[tuple[_Session, Any, list[bytes], int]],
    frames: int,
    ticker: _Ticker,
) -> list[_Sender]:
    """--ingest stream: one StreamAudio call per participant, one message per frame."""
    import grpc

    from groupsense.v1 import groupsense_pb2 as pb

    methods = {
        id(s): ch.stream_stream(
            _INGEST,
            request_serializer=lambda b: b,
            response_deserializer=pb.IngestResponse.FromString,
        )
        for s, ch in zip(sessions, channels, strict=True)
    }
    calls = []
    for s, cfg, clip, offset in members:
        call = methods[id(s)]()
        await call.write(pb.IngestRequest(config=cfg).SerializeToString())
        calls.append((s, call, clip, offset))
    for _, call, _, _ in calls:  # every config acknowledged before any frame
        await call.read()

    def sender(s: _Session, call: Any, clip: list[bytes], offset: int) -> _Sender:
        async def send(lost: set[int], errors: list[str]) -> tuple[int, int]:
            sent = 0
            try:
                for k in range(frames):
                    while ticker.k < k:
                        await ticker.event.wait()
                    if s.sent[k] == 0.0:
                        s.sent[k] = time.monotonic()
                    await call.write(frame_request(k, k * FRAME_MS, clip[(offset + k) % len(clip)]))
                    sent += 1
                await call.done_writing()
                received, warned = 0, 0
                while (ack := await call.read()) is not grpc.aio.EOF:
                    received = ack.frames_received
                    warned += sum(w.kind in lost for w in ack.warnings)  # not CLOCK_SKEW
                return sent, max(sent - received, 0) + warned
            except grpc.aio.AioRpcError as exc:
                errors.append(f"stream {s.sid}: {exc.code().name} {exc.details()}")
                return sent, frames  # the stream failed: count every frame as lost

        return send

    return [sender(*c) for c in calls]


async def _open_nodes(
    channel: Any,
    members: list[tuple[_Session, Any, list[bytes], int]],
    per_call: int,
    frames: int,
    ticker: _Ticker,
) -> list[_Sender]:
    """--ingest node: StreamNode calls of up to `per_call` channels, each sending one
    FrameBatch (or a few, under the message size limit) per 20 ms for all its channels."""
    import grpc

    from groupsense.v1 import groupsense_pb2 as pb

    method = channel.stream_stream(
        _NODE, request_serializer=lambda b: b, response_deserializer=pb.NodeResponse.FromString
    )
    senders = []
    for first in range(0, len(members), per_call):
        group = members[first : first + per_call]
        call = method()
        for cid, (_, cfg, _, _) in enumerate(group):
            open_ = pb.ChannelOpen(channel=cid, config=cfg)
            await call.write(pb.NodeRequest(open=open_).SerializeToString())
        opened: set[int] = set()
        while len(opened) < len(group):  # every open acknowledged before any frame
            resp = await call.read()
            if resp is grpc.aio.EOF:
                raise RuntimeError("StreamNode ended before acknowledging its channels")
            for st in resp.channels:
                if st.error:
                    raise RuntimeError(f"channel {st.channel}: {st.error}")
                opened.add(st.channel)
        senders.append(_node_sender(call, group, frames, ticker))
    return senders


def _node_sender(
    call: Any, group: list[tuple[_Session, Any, list[bytes], int]], frames: int, ticker: _Ticker
) -> _Sender:
    import grpc

    async def send(lost: set[int], errors: list[str]) -> tuple[int, int]:
        received: dict[int, int] = {}
        warned = [0]
        failed: set[int] = set()

        async def read() -> None:
            while (resp := await call.read()) is not grpc.aio.EOF:
                for st in resp.channels:
                    if st.error:
                        failed.add(st.channel)
                        errors.append(f"channel {st.channel}: {st.error}")
                    received[st.channel] = st.ack.frames_received
                    warned[0] += sum(w.kind in lost for w in st.ack.warnings)

        reader = asyncio.create_task(read())
        sessions = {id(s): s for s, _, _, _ in group}.values()
        try:
            for k in range(frames):
                while ticker.k < k:
                    await ticker.event.wait()
                now = time.monotonic()
                for s in sessions:
                    if s.sent[k] == 0.0:
                        s.sent[k] = now
                ms = k * FRAME_MS
                batch = [
                    channel_frame(cid, k, ms, clip[(offset + k) % len(clip)])
                    for cid, (_, _, clip, offset) in enumerate(group)
                ]
                for req in batch_requests(batch):
                    await call.write(req)
            await call.done_writing()
            await reader
        except grpc.aio.AioRpcError as exc:
            errors.append(f"node: {exc.code().name} {exc.details()}")
            reader.cancel()
            return frames * len(group), frames * len(group)
        sent = frames * len(group)
        got = sum(received.get(cid, 0) for cid in range(len(group)) if cid not in failed)
        return sent, max(sent - got, 0) + warned[0]

    return send


def worker_main() -> None:
    """Child process: pre-encodes clips, then runs one step per JSON line on stdin."""
    opts = json.loads(sys.argv[1])
    _pin(opts["core"])
    clips = {c: _clips(c) for c in opts["codecs"]}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        print("READY", flush=True)
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            cmd = json.loads(line)
            try:
                result = await _step(cmd, clips[cmd["codec"]])
            except Exception as exc:  # a refused or broken step fails; the bench goes on
                result = {"fatal": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(result), flush=True)

    asyncio.run(main())


class Workers:
    def __init__(self, n: int, core: int | None, codecs: list[str]) -> None:
        opts = json.dumps({"core": core, "codecs": codecs})
        self.procs = [
            subprocess.Popen(
                [sys.executable, "-c", "from cli.bench import worker_main; worker_main()", opts],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(n)
        ]
        for p in self.procs:
            assert p.stdout is not None
            if p.stdout.readline().strip() != "READY":
                raise RuntimeError("bench load generator did not start")

    def run(self, cmds: list[dict[str, Any]]) -> list[dict[str, Any]]:
        used = self.procs[: len(cmds)]
        for p, cmd in zip(used, cmds, strict=True):
            assert p.stdin is not None
            p.stdin.write(json.dumps(cmd) + "\n")
            p.stdin.flush()
        out = []
        for p in used:
            assert p.stdout is not None
            line = p.stdout.readline()
            if not line:
                raise RuntimeError("a bench load generator died")
            out.append(json.loads(line))
        return out

    def close(self) -> None:
        for p in self.procs:
            assert p.stdin is not None
            p.stdin.close()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# -- the orchestrator --------------------------------------------------------------------
@dataclass
class Step:
    streams: int
    sessions: int
    ok: bool
    dropped: int
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    server_cpu_pct: float  # of the server's one core, over the measured window
    rss_delta_mb: float
    send_lag_p99_ms: float
    generator_cpu_pct: float
    reason: str


_STEP_IDS = itertools.count()


def _poll(pid: int, stop: list[bool], samples: list[tuple[float, float, float]]) -> None:
    while not stop[0]:
        try:
            samples.append((time.monotonic(), _proc_cpu_s(pid), _proc_rss_mb(pid)))
        except OSError:
            return
        time.sleep(0.2)


def run_step(
    server: subprocess.Popen[str],
    port: int,
    workers: Workers,
    n: int,
    codec: str,
    args: argparse.Namespace,
    tag: str,
    rss0: float,
) -> Step:
    """One load level; `rss0` is the server's resident memory right after start-up, so
    the step's RSS delta also holds what earlier steps left (an upper bound)."""
    import threading

    sizes = session_sizes(n)
    per: list[list[tuple[str, int]]] = [[] for _ in workers.procs]
    for i, size in enumerate(sizes):
        per[i % len(per)].append((f"{tag}-{n}-{next(_STEP_IDS)}", size))  # never reused
    cmds = [
        {
            "port": port,
            "codec": codec,
            "sessions": ss,
            "warmup_s": args.warmup,
            "seconds": args.seconds,
            "ingest": args.ingest,
            "node_channels": args.node_channels,
        }
        for ss in per
        if ss
    ]
    samples: list[tuple[float, float, float]] = []
    stop = [False]
    poller = threading.Thread(target=_poll, args=(server.pid, stop, samples), daemon=True)
    poller.start()
    try:
        results = workers.run(cmds)
    finally:
        stop[0] = True
        poller.join()
    fatal = [r["fatal"] for r in results if "fatal" in r]
    if fatal:
        return Step(n, len(sizes), False, n, *(math.inf,) * 3, math.nan, math.nan, 0, 0, fatal[0])
    t0 = max(r["t_measure"] for r in results)
    t1 = min(r["t_end"] for r in results)
    window = [s for s in samples if t0 <= s[0] <= t1]
    if len(window) >= 2:
        cpu_pct = 100 * (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0])
    else:
        cpu_pct = float("nan")
    rss_peak = max((s[2] for s in samples), default=rss0)
    lat = np.array([x for r in results for x in r["latencies_ms"]], dtype=float)
    p50, p95, p99 = (
        (float(v) for v in np.percentile(lat, [50, 95, 99])) if lat.size else (math.inf,) * 3
    )
    dropped = sum(r["dropped"] for r in results)
    lag = max(r["send_lag_p99_ms"] for r in results)
    gen_cpu = 100 * sum(r["cpu_s"] for r in results) / (args.warmup + args.seconds)
    errors = [e for r in results for e in r["errors"]]
    reasons = []
    if dropped:
        reasons.append(f"{dropped} frames dropped")
    if errors:
        reasons.append(f"errors: {errors[0]}")
    if not p99 < args.p99_ms:
        reasons.append(f"p99 {p99:.0f} ms")
    if lag > FRAME_MS * 2:
        reasons.append(f"load generator behind (send lag p99 {lag:.0f} ms)")
    return Step(
        streams=n,
        sessions=len(sizes),
        ok=not reasons,
        dropped=dropped,
        latency_p50_ms=round(p50, 1),
        latency_p95_ms=round(p95, 1),
        latency_p99_ms=round(p99, 1),
        server_cpu_pct=round(cpu_pct, 1),
        rss_delta_mb=round(rss_peak - rss0, 2),
        send_lag_p99_ms=round(lag, 1),
        generator_cpu_pct=round(gen_cpu, 1),
        reason="; ".join(reasons) or "ok",
    )


def search(
    opts: dict[str, Any],
    workers: Workers,
    codec: str,
    args: argparse.Namespace,
    label: str,
) -> list[Step]:
    """Step N up until a step fails, then bisect between the last pass and the fail.

    A failed step is measured again (--retries): on a shared machine one scheduling
    hiccup from another process fails a few seconds' p99, which says nothing of the
    server. A step fails only if every attempt fails; every attempt is reported."""
    server, port = start_server(opts)
    rss0 = _proc_rss_mb(server.pid)
    steps: list[Step] = []

    def measure(n: int) -> bool:
        for _ in range(1 + args.retries):
            st = run_step(server, port, workers, n, codec, args, label.replace("/", "-"), rss0)
            steps.append(st)
            print(
                f"  {label:<16} {n:>5} streams: p99 {st.latency_p99_ms:>7.1f} ms, "
                f"server CPU {st.server_cpu_pct:5.1f} %, {st.reason}",
                file=sys.stderr,
                flush=True,
            )
            if st.ok:
                return True
        return False

    try:
        n, good, bad = args.start, 0, 0
        while n <= args.max_streams:
            if not measure(n):
                bad = n
                break
            good = n
            n = max(int(n * args.growth), n + 6)
        for _ in range(args.refine if bad else 0):
            mid = (good + bad) // 2
            if bad - good < max(6, good // 20):
                break
            good, bad = (mid, bad) if measure(mid) else (good, mid)
    finally:
        stop_server(server)
    return steps


def summarise(steps: list[Step]) -> dict[str, Any]:
    passed = [s for s in steps if s.ok]
    best = max(passed, key=lambda s: s.streams) if passed else min(steps, key=lambda s: s.streams)
    n = best.streams if passed else 0
    limited = bool(passed) and any(
        not s.ok and "load generator" in s.reason and s.streams > n for s in steps
    )
    return {
        "streams_per_core": n,
        "generator_limited": limited,  # the figure is then a lower bound
        # no step above it failed: the search stopped at --max-streams (a lower bound too)
        "capped": bool(passed) and n == max(s.streams for s in steps),
        "latency_p50_ms": best.latency_p50_ms,
        "latency_p95_ms": best.latency_p95_ms,
        "latency_p99_ms": best.latency_p99_ms,
        "at_streams": best.streams,
        "cpu_per_stream_pct": round(best.server_cpu_pct / best.streams, 4),
        "cpu_us_per_stream_s": round(best.server_cpu_pct / 100 / best.streams * 1e6, 1),
        "rss_per_stream_mb": round(best.rss_delta_mb / best.streams, 4),
        # What one whole core would hold at this CPU cost: robust to a shared, noisy core.
        "cpu_streams_per_core": int(100 / best.server_cpu_pct * best.streams)
        if best.server_cpu_pct > 0
        else None,
        "steps": [asdict(s) for s in steps],
    }


def _defaults(args: argparse.Namespace) -> None:
    from engine.config import VAD_BACKENDS

    q = args.quick
    args.vad = args.vad or (["webrtc"] if q else list(VAD_BACKENDS))
    args.codec = args.codec or (["opus"] if q else ["opus", "pcm"])
    args.start = args.start or (60 if q else 48)
    args.growth = args.growth or (2.0 if q else 1.5)
    args.refine = args.refine if args.refine is not None else (0 if q else 2)
    args.retries = args.retries if args.retries is not None else (0 if q else 1)
    args.seconds = args.seconds or (2.5 if q else 6.0)
    args.warmup = args.warmup or (1.0 if q else 2.0)


# -- the soak: an accelerated long session, memory sampled -------------------------------
SOAK_SESSION = "soak"


async def _soak(
    port: int, pid: int, minutes: float, n: int, codec: str, clips: list[list[bytes]]
) -> dict[str, Any]:
    """One session of `n` participants over one StreamNode call, `minutes` of session
    time sent as fast as the server analyses it (its backpressure paces the sender), with
    a subscriber; the server's RSS sampled against the session time analysed."""
    import grpc

    from groupsense.v1 import groupsense_pb2 as pb
    from groupsense.v1 import groupsense_pb2_grpc as pb_grpc

    ch = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    call = ch.stream_stream(
        _NODE, request_serializer=lambda b: b, response_deserializer=pb.NodeResponse.FromString
    )()
    for j in range(n):
        cfg = _load_config(SOAK_SESSION, j, codec)
        await call.write(
            pb.NodeRequest(open=pb.ChannelOpen(channel=j, config=cfg)).SerializeToString()
        )
    processed = [0] * n
    errors: list[str] = []

    async def read() -> None:
        while (resp := await call.read()) is not grpc.aio.EOF:
            for st in resp.channels:
                if st.error:
                    errors.append(f"channel {st.channel}: {st.error}")
                processed[st.channel] = max(processed[st.channel], st.ack.processed_ms)

    snaps = [0]

    async def subscribe() -> None:
        stub = pb_grpc.SignalServiceStub(ch)
        with contextlib.suppress(grpc.aio.AioRpcError):
            async for _ in stub.Subscribe(pb.SubscribeRequest(session_id=SOAK_SESSION)):
                snaps[0] += 1

    samples: list[tuple[float, float, float]] = []  # (session minute, RSS MB, wall s)
    t0 = time.monotonic()

    async def sample() -> None:
        while True:
            samples.append((min(processed) / 60_000, _proc_rss_mb(pid), time.monotonic() - t0))
            await asyncio.sleep(0.5)

    reader = asyncio.create_task(read())
    await asyncio.sleep(0.2)
    sub = asyncio.create_task(subscribe())
    sampler = asyncio.create_task(sample())
    total = int(minutes * 60_000 / FRAME_MS)
    per_msg = 10  # frames per channel per message: 200 ms
    for k0 in range(0, total, per_msg):
        batch = [
            channel_frame(j, k, k * FRAME_MS, clips[j % len(clips)][(j * 353 + k) % len(clips[0])])
            for k in range(k0, min(k0 + per_msg, total))
            for j in range(n)
        ]
        for req in batch_requests(batch):
            await call.write(req)
        if errors:
            break
    await call.done_writing()
    await reader
    wall = time.monotonic() - t0
    sampler.cancel()
    samples.append((min(processed) / 60_000, _proc_rss_mb(pid), wall))
    stub = pb_grpc.SessionServiceStub(ch)
    summary = await stub.EndSession(pb.EndSessionRequest(session_id=SOAK_SESSION))
    await asyncio.wait_for(sub, 10)
    await ch.close()
    per_minute: dict[int, float] = {}
    for minute, rss, _ in samples:
        per_minute.setdefault(int(minute), rss)  # the first sample in each minute
    return {
        "errors": errors[:10],
        "session_minutes": round(summary.duration_ms / 60_000, 2),
        "participants": len(summary.participants),
        "wall_s": round(wall, 1),
        "speed": round(summary.duration_ms / 1000 / wall, 1),
        "snapshots": snaps[0],
        "rss_mb_by_minute": {str(m): round(v, 1) for m, v in sorted(per_minute.items())},
    }


def soak(args: argparse.Namespace, base: dict[str, Any]) -> dict[str, Any]:
    """`--soak`: the result, with `flat` (RSS from minute 10 on grows by at most
    max(5 MB, 2 %)); the server process is started fresh for it."""
    vad, codec, affect = args.vad[0], args.codec[0], args.affect[0]
    server, port = start_server({**base, "vad": vad, "analyse": True, "affect": affect})
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    _pin(load_core_of(base))  # this process sends: off the server's core
    try:
        clips = _clips(codec)
        res = asyncio.run(_soak(port, server.pid, args.soak, args.soak_streams, codec, clips))
    finally:
        stop_server(server)
        if affinity is not None:
            os.sched_setaffinity(0, affinity)
    by_min = {int(m): v for m, v in res["rss_mb_by_minute"].items()}
    ref_min = min((m for m in by_min if m >= min(10, int(args.soak) // 2)), default=0)
    last = max(by_min) if by_min else 0
    # A straight line through the samples from ref_min on: one sample swings by +-15 MB
    # with the allocator and gRPC's buffers, a leak shows as a slope.
    xs = [m for m in sorted(by_min) if m >= ref_min]
    slope = float(np.polyfit(xs, [by_min[m] for m in xs], 1)[0]) if len(xs) >= 3 else math.nan
    growth = slope * (last - ref_min) if len(xs) >= 3 else by_min[last] - by_min[ref_min]
    res.update(
        configuration=config_name(vad, codec, affect),
        rss_from_minute=ref_min,
        rss_at_from_mb=by_min.get(ref_min),
        rss_at_end_mb=by_min.get(last),
        rss_mean_mb=round(float(np.mean([by_min[m] for m in xs])), 1),
        rss_slope_mb_per_hour=round(slope * 60, 2),
        rss_growth_mb=round(growth, 1),  # of the fitted line, ref_min to the end
        flat=bool(growth <= max(5.0, 0.02 * by_min.get(ref_min, 0.0))) and not res["errors"],
    )
    return res


def load_core_of(base: dict[str, Any]) -> int | None:
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    rest = [c for c in cores if c != base["core"]]
    return rest[0] if rest else base["core"]


def soak_table(res: dict[str, Any]) -> str:
    return (
        f"soak {res['configuration']}: {res['participants']} participants, "
        f"{res['session_minutes']} session minutes in {res['wall_s']} s ({res['speed']}x real "
        f"time); RSS {res['rss_at_from_mb']} MB at minute {res['rss_from_minute']}, "
        f"{res['rss_at_end_mb']} MB at the end, mean {res['rss_mean_mb']} MB; fitted "
        f"growth {res['rss_growth_mb']:+} MB ({res['rss_slope_mb_per_hour']:+} MB/h): "
        + ("flat" if res["flat"] else "NOT flat")
        + (f"; errors: {res['errors'][0]}" if res["errors"] else "")
    )


def run(args: argparse.Namespace) -> int:
    if args.from_json:
        return _from_json(args.from_json, args.plot)
    _defaults(args)
    args.affect = list(dict.fromkeys(args.affect))  # each mode measured once
    from engine.config import VAD_BACKENDS

    bad = [v for v in args.vad if v not in VAD_BACKENDS]
    if bad:
        print(f"groupsense bench: unknown VAD backend {bad[0]!r}", file=sys.stderr)
        return 2
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server_core = cores[0] if cores else None
    load_core = cores[1] if len(cores) > 1 else server_core
    base = {
        "core": server_core,
        "tick_ms": args.tick_ms,
        "jitter_ms": args.jitter_ms,
        "snapshot_s": args.snapshot_s,
    }
    print(
        f"groupsense bench: server on core {server_core}, load on core {load_core}; "
        f"{LATENCY_DEFINITION}",
        file=sys.stderr,
        flush=True,
    )
    if args.soak is not None:
        if args.soak <= 0 or args.soak_streams <= 0:
            print("groupsense bench: --soak and --soak-streams must be positive", file=sys.stderr)
            return 2
        res = soak(args, base)
        print(soak_table(res))
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump({"machine": _machine(server_core, load_core), "soak": res}, f, indent=1)
        return 0 if res["flat"] else 1
    workers = Workers(args.workers, load_core, args.codec)
    configs: dict[str, dict[str, Any]] = {}
    transport: dict[str, dict[str, Any]] = {}
    try:
        for codec in args.codec:
            # The ceiling is measured before and after the configurations (full run) and
            # the better kept: it is an upper bound, and a busy neighbour only lowers it.
            tr_opts = {**base, "vad": "webrtc", "analyse": False}
            ceilings = []
            if not args.no_transport:
                ceilings.append(
                    summarise(search(tr_opts, workers, codec, args, f"transport/{codec}"))
                )
            for vad, affect in itertools.product(args.vad, args.affect):
                opts = {**base, "vad": vad, "analyse": True, "affect": affect}
                name = config_name(vad, codec, affect)
                configs[name] = summarise(search(opts, workers, codec, args, name))
            if not args.no_transport and not args.quick:
                ceilings.append(
                    summarise(search(tr_opts, workers, codec, args, f"transport/{codec}"))
                )
            if ceilings:
                transport[codec] = max(ceilings, key=lambda c: c["streams_per_core"])
                transport[codec]["runs"] = [c["streams_per_core"] for c in ceilings]
            for vad, affect in itertools.product(args.vad, args.affect):
                t = transport.get(codec)
                configs[config_name(vad, codec, affect)]["transport_streams_per_core"] = (
                    t["streams_per_core"] if t else None
                )
    finally:
        workers.close()
    report = {
        "definition": LATENCY_DEFINITION,
        "criteria": f"no dropped frames and p99 < {args.p99_ms:g} ms",
        "machine": _machine(server_core, load_core),
        "live_config": {
            "tick_ms": args.tick_ms,
            "jitter_ms": args.jitter_ms,
            "snapshot_interval_s": args.snapshot_s,
        },
        "affect": args.affect,
        "quick": args.quick,
        "ingest": args.ingest,
        "configurations": configs,
        "transport": transport,
    }
    print(table(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
    if args.plot:
        write_plot(args.plot, plot_svg(report))
    return 0


def _from_json(path: str, plot: str | None) -> int:
    """An earlier run's table (and plot) again, e.g. after the plot's style changed."""
    try:
        with open(path, encoding="utf-8") as f:
            report = json.load(f)
        text = table(report)
        svg = plot_svg(report) if plot else ""
    except OSError as exc:
        print(f"groupsense bench: {path}: {exc.strerror}", file=sys.stderr)
        return 2
    except (ValueError, KeyError, TypeError) as exc:  # not JSON, or not a bench report
        what = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        print(f"groupsense bench: {path}: not a bench --json report ({what})", file=sys.stderr)
        return 2
    print(text)
    if plot:
        write_plot(plot, svg)
    return 0


def write_plot(path: str, svg: str) -> str:
    """SVG as is; PNG rendered from it by a headless chromium when one is installed
    (no plotting library is a dependency). Without chromium the SVG is written beside."""
    if not path.endswith(".png"):
        with open(path, "w", encoding="utf-8") as f:
            f.write(svg)
        return path
    import shutil
    import tempfile

    browser = next(
        (b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None
    )
    if browser is not None:
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "plot.svg")
            with open(src, "w", encoding="utf-8") as f:
                f.write(svg)
            done = subprocess.run(
                [
                    browser,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--hide-scrollbars",
                    f"--screenshot={os.path.abspath(path)}",
                    "--window-size=720,420",
                    src,
                ],
                capture_output=True,
                timeout=60,
            )
        if done.returncode == 0 and os.path.exists(path):
            return path
    fallback = path[: -len(".png")] + ".svg"
    print(
        f"groupsense bench: no headless chromium to render PNG; wrote {fallback}", file=sys.stderr
    )
    return write_plot(fallback, svg)


def _machine(server_core: int | None, load_core: int | None) -> dict[str, Any]:
    import grpc

    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "numpy": np.__version__,
        "server_core": server_core,
        "load_core": load_core,
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def table(report: dict[str, Any]) -> str:
    rows = [
        f"# {report['definition']}; pass = {report['criteria']}",
        "| configuration | streams/core | transport ceiling | % of ceiling | p50 ms | p95 ms "
        "| p99 ms | CPU us per stream-s | streams/core by CPU | RSS MB/stream |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    items = list(report["configurations"].items()) + [
        (f"transport/{c}", {**v, "transport_streams_per_core": v["streams_per_core"]})
        for c, v in report["transport"].items()
    ]
    for name, c in items:
        ceiling = c.get("transport_streams_per_core")
        # a ceiling the search did not get past is a lower bound: the share, an upper one
        high = report["transport"].get(name.split("/")[1], {}).get("capped", False)
        pct = (
            f"{'<=' if high else ''}{100 * c['streams_per_core'] / ceiling:.0f} %"
            if ceiling
            else "-"
        )
        lower = ">=" if c["generator_limited"] or c.get("capped", False) else ""
        top = (">=" if high else "") + (str(ceiling) if ceiling else "-")
        rows.append(
            f"| {name} | {lower}{c['streams_per_core']} | {top} | {pct} "
            f"| {c['latency_p50_ms']} | {c['latency_p95_ms']} | {c['latency_p99_ms']} "
            f"| {c['cpu_us_per_stream_s']} | {c['cpu_streams_per_core']} "
            f"| {c['rss_per_stream_mb']} |"
        )
    return "\n".join(rows)


def plot_svg(report: dict[str, Any]) -> str:
    """p99 (solid) and p50 (dashed) latency against streams, one colour per config; a
    retried load level shows its better attempt (all attempts are in the JSON)."""
    series = list(report["configurations"].items()) + [
        (f"transport/{c}", v) for c, v in report["transport"].items()
    ]
    w, h, ml, mr, mt, mb = 720, 420, 60, 170, 20, 45
    xs = [s["streams"] for _, c in series for s in c["steps"]] or [1]
    ys = [s[k] for _, c in series for s in c["steps"] for k in ("latency_p50_ms", "latency_p99_ms")]
    ys = [y for y in ys if math.isfinite(y)] or [1]
    xmax = max(xs) * 1.05
    ymax = min(max(max(ys), 160) * 1.05, 600)  # clipped: the region near 150 ms matters

    def px(x: float) -> float:
        return ml + x / xmax * (w - ml - mr)

    def py(y: float) -> float:
        return h - mb - min(y, ymax) / ymax * (h - mt - mb)

    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]
    colours += ["#bcbd22", "#e377c2", "#000000", "#393b79", "#98df8a", "#ff9896", "#c5b0d5"]
    colours += ["#aec7e8", "#637939"]  # sixteen configurations
    ceilings = {"transport/opus": "#a0a0a0", "transport/pcm": "#505050"}  # greys, thicker
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        'font-family="sans-serif" font-size="11">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<line x1="{ml}" y1="{h - mb}" x2="{w - mr}" y2="{h - mb}" stroke="black"/>',
        f'<line x1="{ml}" y1="{mt}" x2="{ml}" y2="{h - mb}" stroke="black"/>',
        f'<line x1="{ml}" y1="{py(150):.1f}" x2="{w - mr}" y2="{py(150):.1f}" stroke="#999" '
        'stroke-dasharray="2,3"/>',
        f'<text x="{w - mr - 4}" y="{py(150) - 3:.1f}" text-anchor="end" fill="#666">150 ms</text>',
        f'<text x="{(ml + w - mr) / 2}" y="{h - 8}" text-anchor="middle">streams on one '
        "server core</text>",
        f'<text x="14" y="{(mt + h - mb) / 2}" transform="rotate(-90 14 {(mt + h - mb) / 2})" '
        'text-anchor="middle">capture-to-snapshot latency, ms</text>',
    ]
    for i in range(6):
        x, y = xmax * i / 5, ymax * i / 5
        out.append(f'<text x="{px(x):.1f}" y="{h - mb + 14}" text-anchor="middle">{x:.0f}</text>')
        out.append(f'<text x="{ml - 4}" y="{py(y) + 4:.1f}" text-anchor="end">{y:.0f}</text>')
    for i, (name, c) in enumerate(series):
        col = ceilings.get(name) or colours[i % len(colours)]
        width = 3 if name in ceilings else 2
        best: dict[int, dict[str, Any]] = {}  # a retried load level: its better attempt
        for st in c["steps"]:
            if (
                st["streams"] not in best
                or st["latency_p99_ms"] < best[st["streams"]]["latency_p99_ms"]
            ):
                best[st["streams"]] = st
        steps = [best[n] for n in sorted(best)]
        for key, dash in (("latency_p99_ms", ""), ("latency_p50_ms", ' stroke-dasharray="5,4"')):
            pts = " ".join(
                f"{px(s['streams']):.1f},{py(s[key]):.1f}" for s in steps if math.isfinite(s[key])
            )
            out.append(
                f'<polyline points="{pts}" fill="none" stroke="{col}" '
                f'stroke-width="{width}"{dash}/>'
            )
        ly = mt + 14 + 16 * i
        out.append(
            f'<line x1="{w - mr + 10}" y1="{ly - 4}" x2="{w - mr + 30}" y2="{ly - 4}" '
            f'stroke="{col}" stroke-width="{width}"/>'
        )
        out.append(f'<text x="{w - mr + 34}" y="{ly}">{name}</text>')
    ly = mt + 14 + 16 * len(series) + 8
    out.append(f'<text x="{w - mr + 10}" y="{ly}" fill="#444">solid p99, dashed p50</text>')
    out.append("</svg>")
    return "\n".join(out)


def _load_config(session_id: str, j: int, codec: str) -> Any:
    """The load's participant j (a StreamConfig): the first of a session facilitates; all
    consent to affect analysis, so prosody (and, unless --affect prosody, the affect
    model) runs for everyone."""
    from groupsense.v1 import groupsense_pb2 as pb

    return pb.StreamConfig(
        session_id=session_id,
        participant_ref=f"p{j}",
        role=pb.ROLE_FACILITATOR if j == 0 else pb.ROLE_PARTICIPANT,
        codec=pb.CODEC_OPUS if codec == "opus" else pb.CODEC_PCM16LE,
        sample_rate_hz=48_000 if codec == "opus" else 16_000,
        channels=1,
        affect_consent=True,
    )
