"""`groupsense replay`: behave like a video server, one StreamAudio per participant track."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import av
import grpc
import numpy as np

from cli.client import add_connection_args, call_metadata, open_channel, rpc_error_line
from engine.audio.decode import decode_file, probe_file
from engine.errors import InputFileError
from engine.sample import sample_session
from engine.types import SAMPLE_RATE
from groupsense.v1 import groupsense_pb2 as pb
from groupsense.v1 import groupsense_pb2_grpc as pb_grpc

FRAME_MS = 20
FRAME = SAMPLE_RATE * FRAME_MS // 1000
QUEUE_FRAMES = 250  # 5 s of audio per track ahead of the pacing


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "replay",
        help="stream recorded tracks into a server, paced like live audio",
        description="Streams every audio track of FILES (default: the bundled sample) into a "
        "groupsense server as one StreamAudio per participant, in 20 ms frames.",
    )
    p.add_argument("files", nargs="*", metavar="FILES")
    p.add_argument("--session", required=True, metavar="S")
    p.add_argument(
        "--speed", default="1", help="1 = real time, N = N times faster, max = no pacing"
    )
    p.add_argument("--codec", choices=("opus", "pcm"), default="opus")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    add_connection_args(p)
    p.set_defaults(run=run)


def parse_speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        raise ValueError(f"--speed must be a number or 'max', got {text!r}") from None
    if not 0.1 <= speed <= 1000:
        raise ValueError(f"--speed must be between 0.1 and 1000, got {speed}")
    return speed


@dataclass
class Track:
    ref: str
    role: pb.Role
    queue: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_FRAMES))
    frames_sent: int = 0
    warnings: int = 0
    participant_id: str = ""


class _Encoder:
    """16 kHz int16 -> 20 ms payloads (PCM16LE at 16 kHz, or Opus at 48 kHz)."""

    def __init__(self, codec: str) -> None:
        self.codec = codec
        self._pending = np.zeros(0, np.int16)
        if codec == "opus":
            self._enc = av.CodecContext.create("libopus", "w")
            self._enc.sample_rate = 48_000
            self._enc.layout = "mono"
            self._enc.format = "s16"
            self._enc.bit_rate = 24_000
            self._up = av.AudioResampler(format="s16", layout="mono", rate=48_000, frame_size=960)

    def frames(self, pcm: np.ndarray, final: bool = False) -> list[bytes]:
        self._pending = np.concatenate([self._pending, pcm])
        n = self._pending.shape[0] // FRAME
        if final and self._pending.shape[0] % FRAME:
            n += 1
            self._pending = np.pad(self._pending, (0, n * FRAME - self._pending.shape[0]))
        block, self._pending = self._pending[: n * FRAME], self._pending[n * FRAME :]
        if self.codec == "pcm":
            return [block[i : i + FRAME].tobytes() for i in range(0, block.shape[0], FRAME)]
        resampled = []
        if block.shape[0]:
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            resampled = self._up.resample(frame)
        if final:
            resampled += self._up.resample(None)
        out: list[bytes] = []
        for f in resampled:
            out.extend(bytes(p) for p in self._enc.encode(f))
        if final:
            out.extend(bytes(p) for p in self._enc.encode(None))
        return out


async def _produce(files: list[str], tracks: list[Track], codec: str) -> None:
    """Decode every file once, feeding each track's queue (bounded: paced by the senders)."""
    base = 0
    for path in files:
        infos, chunks = decode_file(path)
        encoders = [_Encoder(codec) for _ in infos]
        for i, pcm in chunks:
            for payload in encoders[i].frames(pcm):
                await tracks[base + i].queue.put(payload)
        for i, enc in enumerate(encoders):
            for payload in enc.frames(np.zeros(0, np.int16), final=True):
                await tracks[base + i].queue.put(payload)
            await tracks[base + i].queue.put(None)
        base += len(infos)


async def _send(
    stub: pb_grpc.IngestServiceStub,
    track: Track,
    names: dict[str, str],
    session: str,
    codec: str,
    speed: float | None,
    start: float,
    metadata: tuple[tuple[str, str], ...],
) -> None:
    async def requests() -> AsyncIterator[pb.IngestRequest]:
        yield pb.IngestRequest(
            config=pb.StreamConfig(
                session_id=session,
                participant_ref=track.ref,
                role=track.role,
                codec=pb.CODEC_OPUS if codec == "opus" else pb.CODEC_PCM16LE,
                sample_rate_hz=48_000 if codec == "opus" else SAMPLE_RATE,
                channels=1,
            )
        )
        seq = 0
        while (payload := await track.queue.get()) is not None:
            capture_ms = seq * FRAME_MS
            if speed is not None:
                delay = start + capture_ms / 1000 / speed - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            yield pb.IngestRequest(
                frame=pb.AudioFrame(sequence=seq, capture_ms=capture_ms, payload=payload)
            )
            seq += 1
            track.frames_sent = seq

    # grpc.aio reports a server's abort as INTERNAL "Internal error from Core" when the
    # client wrote after it (grpc#36066), so write explicitly and hold the frames until
    # the config is acknowledged: config and auth errors (the common ones) arrive intact.
    call = stub.StreamAudio(metadata=metadata)
    accepted = asyncio.Event()

    async def writer() -> None:
        try:
            first = True
            async for req in requests():
                await call.write(req)
                if first:
                    await accepted.wait()
                    first = False
            await call.done_writing()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            return  # the call has ended; the reading side reports its status

    sending = asyncio.create_task(writer())
    try:
        while (ack := await call.read()) is not grpc.aio.EOF:
            accepted.set()
            track.participant_id = ack.participant_id
            names[ack.participant_id] = track.ref
            track.warnings += len(ack.warnings)
        await sending
    finally:
        sending.cancel()


async def replay(
    args: argparse.Namespace,
    files: list[str],
    speed: float | None,
    names: dict[str, str] | None = None,
) -> int:
    """Stream the files' tracks; fills `names` (pseudonym -> the ref we sent), which only
    the sender can know: the server never reveals refs."""
    names = {} if names is None else names
    tracks: list[Track] = []
    for path in files:
        for info in probe_file(path):
            role = (
                pb.ROLE_FACILITATOR if "facilitator" in info.name.lower() else pb.ROLE_PARTICIPANT
            )
            tracks.append(Track(ref=info.name, role=role))
    channel = open_channel(args)
    stub = pb_grpc.IngestServiceStub(channel)
    metadata = call_metadata(args)
    start = time.monotonic() + 0.2
    producer = asyncio.create_task(_produce(files, tracks, args.codec))
    senders = [
        asyncio.create_task(_send(stub, t, names, args.session, args.codec, speed, start, metadata))
        for t in tracks
    ]
    try:
        await asyncio.gather(producer, *senders)
    except grpc.RpcError as exc:
        print(rpc_error_line("replay", exc), file=sys.stderr)
        return 1
    finally:
        for task in [producer, *senders]:
            task.cancel()
        await channel.close()
    if not args.quiet:
        for t in tracks:
            print(
                f"{t.ref}: {t.frames_sent} frames as {t.participant_id}, {t.warnings} warnings",
                file=sys.stderr,
            )
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        speed = parse_speed(args.speed)
    except ValueError as exc:
        print(f"groupsense replay: {exc}", file=sys.stderr)
        return 2
    files = list(args.files) or [str(sample_session())]
    try:
        return asyncio.run(replay(args, files, speed))
    except InputFileError as exc:
        print(f"groupsense replay: error: {exc}", file=sys.stderr)
        return 1
