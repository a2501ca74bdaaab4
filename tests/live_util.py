"""Helpers for the tests against a real server on loopback: synthetic PCM, request
builders, a driveable StreamAudio call, and the session summary by participant."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from engine.ingest import Codec, Role, StreamSpec
from groupsense.v1 import groupsense_pb2 as pb
from groupsense.v1 import groupsense_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parents[1]
PSEUDONYM = re.compile(r"^p-[0-9a-f]{10}$")
RATE = 16_000
FRAME_MS = 20
FRAME = RATE * FRAME_MS // 1000


# -- synthetic audio --------------------------------------------------------------------
def voiced(seconds: float, f0: float = 140.0, seed: int = 0) -> np.ndarray:
    """A harmonic, syllable-modulated tone that the VAD takes for speech."""
    t = np.arange(round(seconds * RATE)) / RATE
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))) / RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 30))
    x = x * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2)
    x = x / np.abs(x).max() * 0.3 + np.random.default_rng(seed).normal(0, 0.001, t.size)
    return (x * 32767).astype(np.int16)


def quiet(seconds: float, seed: int = 1) -> np.ndarray:
    """Low-level noise: audio the VAD takes for silence (not digital zeros)."""
    n = round(seconds * RATE)
    return np.random.default_rng(seed).normal(0, 30, n).astype(np.int16)


def talk(*parts: tuple[str, float]) -> np.ndarray:
    """talk(("q", 0.5), ("v", 1.0), ...): quiet and voiced stretches, in order."""
    return np.concatenate([voiced(s) if kind == "v" else quiet(s) for kind, s in parts])


def pcm_spec(session: str, ref: str = "ana", **kw: Any) -> StreamSpec:
    """A 16 kHz mono PCM participant, for tests that drive a LiveEngine by hand."""
    return StreamSpec(
        session_id=session,
        participant_ref=ref,
        role=Role.PARTICIPANT,
        codec=Codec.PCM16LE,
        sample_rate=RATE,
        channels=1,
        **kw,
    )


# -- requests ---------------------------------------------------------------------------
def config(
    session: str,
    ref: str,
    *,
    role: int = pb.ROLE_PARTICIPANT,
    codec: int = pb.CODEC_PCM16LE,
    rate: int = RATE,
    channels: int = 1,
) -> pb.IngestRequest:
    return pb.IngestRequest(
        config=pb.StreamConfig(
            session_id=session,
            participant_ref=ref,
            role=role,
            codec=codec,
            sample_rate_hz=rate,
            channels=channels,
        )
    )


def frame(sequence: int, capture_ms: int, payload: bytes) -> pb.IngestRequest:
    return pb.IngestRequest(
        frame=pb.AudioFrame(sequence=sequence, capture_ms=capture_ms, payload=payload)
    )


def frames(pcm: np.ndarray, *, start_ms: int = 0, start_seq: int = 0) -> list[pb.IngestRequest]:
    """20 ms PCM16LE frames of `pcm` (16 kHz mono), timestamped from `start_ms`."""
    n = pcm.shape[0] // FRAME
    return [
        frame(start_seq + i, start_ms + i * FRAME_MS, pcm[i * FRAME : (i + 1) * FRAME].tobytes())
        for i in range(n)
    ]


# -- a StreamAudio call the test drives -------------------------------------------------
class Stream:
    """One StreamAudio call: write requests one by one, collect every acknowledgement."""

    def __init__(self, channel: grpc.aio.Channel, metadata: Sequence[tuple[str, str]] = ()) -> None:
        self.call = pb_grpc.IngestServiceStub(channel).StreamAudio(metadata=tuple(metadata))
        self.acks: list[pb.IngestResponse] = []
        self._first = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            while (ack := await self.call.read()) is not grpc.aio.EOF:
                self.acks.append(ack)
                self._first.set()
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        finally:
            self._first.set()

    async def send(self, *requests: pb.IngestRequest) -> bool:
        """Write requests; False as soon as the call has ended (e.g. the server aborted).

        Once the server may have ended the call, write at most one more request and then
        read the status: a grpc.aio client that writes to a call the server has just
        ended reports INTERNAL "Internal error from Core" instead of the server's status
        (grpc/grpc#36066)."""
        for r in requests:
            if self.call.done():
                return False
            try:
                await self.call.write(r)
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
                return False
        return not self.call.done()

    async def synced(self, sent: pb.IngestRequest, timeout: float = 10) -> None:
        """Resend a frame already sent and wait for its DUPLICATE warning: the server
        reads a stream in order, so by then it has every frame written before."""
        dup = pb.StreamWarning.DUPLICATE
        before = sum(w.kind == dup for w in self.warnings())
        assert await self.send(sent)
        deadline = asyncio.get_running_loop().time() + timeout
        while sum(w.kind == dup for w in self.warnings()) == before:
            assert asyncio.get_running_loop().time() < deadline, "no DUPLICATE warning"
            assert not self.call.done(), await self.status()
            await asyncio.sleep(0.005)

    async def pid(self) -> str:
        """The pseudonym from the first acknowledgement (sent once the config is accepted)."""
        await asyncio.wait_for(self._first.wait(), 10)
        assert self.acks, f"no acknowledgement: {await self.status()}"
        return self.acks[0].participant_id

    async def finish(self) -> grpc.StatusCode:
        """Half-close and wait for the server's status."""
        return await half_close(self.call, self._reader)

    async def status(self) -> tuple[grpc.StatusCode, str]:
        code = await asyncio.wait_for(self.call.code(), 20)
        await self._reader
        return code, await self.call.details()

    def warnings(self, *, clock_skew: bool = False) -> list[pb.StreamWarning]:
        """Every warning received; CLOCK_SKEW left out unless asked for: a test sends
        faster than real time, which that warning (rightly) reports."""
        return [
            w
            for a in self.acks
            for w in a.warnings
            if clock_skew or w.kind != pb.StreamWarning.CLOCK_SKEW
        ]


async def stream_all(
    channel: grpc.aio.Channel,
    session: str,
    ref: str,
    pcm: np.ndarray,
    *,
    start_ms: int = 0,
    metadata: Sequence[tuple[str, str]] = (),
) -> Stream:
    """Open a stream, send all of `pcm`, half-close; the stream must end OK."""
    s = Stream(channel, metadata)
    assert await s.send(config(session, ref), *frames(pcm, start_ms=start_ms))
    code = await s.finish()
    assert code == grpc.StatusCode.OK, await s.status()
    return s


class Subscriber:
    """A Subscribe call read in the background; every snapshot is kept."""

    def __init__(
        self, channel: grpc.aio.Channel, session: str, metadata: Sequence[tuple[str, str]] = ()
    ) -> None:
        self.call = pb_grpc.SignalServiceStub(channel).Subscribe(
            pb.SubscribeRequest(session_id=session), metadata=tuple(metadata)
        )
        self.snaps: list[pb.SessionSnapshot] = []
        self.error: grpc.aio.AioRpcError | None = None
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for snap in self.call:
                self.snaps.append(snap)
        except grpc.aio.AioRpcError as exc:
            self.error = exc

    async def wait_for(
        self, predicate: Callable[[pb.SessionSnapshot], bool], timeout: float = 10
    ) -> pb.SessionSnapshot:
        """The first snapshot (already received or still to come) that satisfies `predicate`."""
        deadline = asyncio.get_running_loop().time() + timeout
        seen = 0
        while True:
            for snap in self.snaps[seen:]:
                if predicate(snap):
                    return snap
            seen = len(self.snaps)
            if self.task.done():
                raise AssertionError(f"the subscription ended ({self.error}) without a match")
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no matching snapshot in {timeout} s")
            await asyncio.sleep(0.02)

    async def end(self, timeout: float = 10) -> list[pb.SessionSnapshot]:
        """Wait for the server to end the subscription; all snapshots received."""
        await asyncio.wait_for(self.task, timeout)
        return self.snaps


def by_id(msg: pb.SessionSummary | pb.SessionSnapshot) -> dict[str, pb.ParticipantSignals]:
    return {p.participant_id: p for p in msg.participants}


async def end_session(channel: grpc.aio.Channel, session: str, **kw: object) -> pb.SessionSummary:
    stub = pb_grpc.SessionServiceStub(channel)
    return await stub.EndSession(pb.EndSessionRequest(session_id=session), timeout=20, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GROUPSENSE_DEBUG"}
    env.update(extra)
    return env


CLI = (sys.executable, "-m", "cli.main")


# -- a StreamNode call the test drives ----------------------------------------------------
class Node:
    """One StreamNode call: opens, batches and closes of channels; every status kept."""

    def __init__(self, channel: grpc.aio.Channel, metadata: Sequence[tuple[str, str]] = ()) -> None:
        self.call = pb_grpc.IngestServiceStub(channel).StreamNode(metadata=tuple(metadata))
        self.statuses: list[pb.ChannelStatus] = []
        self._opened: dict[int, int] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            while (resp := await self.call.read()) is not grpc.aio.EOF:
                self.statuses.extend(resp.channels)
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass

    async def send(self, *requests: pb.NodeRequest) -> bool:
        for r in requests:
            if self.call.done():
                return False
            try:
                await self.call.write(r)
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
                return False
        return not self.call.done()

    async def open(self, ch: int, cfg: pb.IngestRequest) -> None:
        self._opened[ch] = len(self.statuses)  # `pid` looks at what comes after
        assert await self.send(node_open(ch, cfg))

    def of(self, ch: int) -> list[pb.ChannelStatus]:
        return [s for s in self.statuses if s.channel == ch]

    async def wait(
        self, predicate: Callable[[pb.ChannelStatus], bool], timeout: float = 10, after: int = 0
    ) -> pb.ChannelStatus:
        """The first status from index `after` on (received or still to come) that
        satisfies `predicate`."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for s in self.statuses[after:]:
                if predicate(s):
                    return s
            if self._reader.done():
                raise AssertionError(f"the call ended ({await self.status()}) without a match")
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no matching status in {timeout} s: {self.statuses}")
            await asyncio.sleep(0.01)

    async def pid(self, ch: int) -> str:
        s = await self.wait(
            lambda s: s.channel == ch and (bool(s.ack.participant_id) or s.closed),
            after=self._opened.get(ch, 0),
        )
        assert not s.error, s
        return s.ack.participant_id

    async def finish(self) -> grpc.StatusCode:
        return await half_close(self.call, self._reader)

    async def status(self) -> tuple[grpc.StatusCode, str]:
        code = await asyncio.wait_for(self.call.code(), 20)
        return code, await self.call.details()

    def warnings(self, ch: int) -> list[pb.StreamWarning]:
        return [
            w for s in self.of(ch) for w in s.ack.warnings if w.kind != pb.StreamWarning.CLOCK_SKEW
        ]

    def errors(self) -> dict[int, tuple[int, str]]:
        return {s.channel: (s.error_code, s.error) for s in self.statuses if s.error}


def node_open(ch: int, cfg: pb.IngestRequest) -> pb.NodeRequest:
    return pb.NodeRequest(open=pb.ChannelOpen(channel=ch, config=cfg.config))


def node_close(ch: int) -> pb.NodeRequest:
    return pb.NodeRequest(close=pb.ChannelClose(channel=ch))


def node_batch(*frames: tuple[int, pb.IngestRequest]) -> pb.NodeRequest:
    """A FrameBatch of (channel, IngestRequest{frame}) pairs."""
    return pb.NodeRequest(
        batch=pb.FrameBatch(
            frames=[
                pb.ChannelFrame(
                    channel=ch,
                    sequence=r.frame.sequence,
                    capture_ms=r.frame.capture_ms,
                    payload=r.frame.payload,
                )
                for ch, r in frames
            ]
        )
    )


def interleave(
    per_channel: dict[int, list[pb.IngestRequest]], width: int = 1
) -> list[pb.NodeRequest]:
    """Batches as a node sends them: each holds `width` frames of every channel, in turn."""
    n = max(len(v) for v in per_channel.values())
    return [
        node_batch(*[(ch, r) for ch, reqs in per_channel.items() for r in reqs[k : k + width]])
        for k in range(0, n, width)
    ]


async def half_close(call: Any, reader: Any) -> grpc.StatusCode:
    """Half-close a bidi call and wait for the server's status and our reader's end."""
    if not call.done():
        # If the server ended the call first, this fails; its status follows anyway.
        with contextlib.suppress(Exception):
            await call.done_writing()
    code = await asyncio.wait_for(call.code(), 20)
    await reader
    return code
