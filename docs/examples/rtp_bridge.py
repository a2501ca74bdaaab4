"""Example bridge: plain RTP/Opus over UDP in, one groupsense StreamAudio per SSRC out.

Why this exists: every SFU (mediasoup PlainTransport consumers, Janus VideoRoom
`rtp_forward`, a LiveKit or Jitsi component that receives each participant's RTP) can
send a participant's audio as plain RTP to a UDP port. This is the small piece in
between: it parses each packet's RTP header, keeps one stream per SSRC (one SSRC =
one participant's audio track), and forwards the Opus packets untouched, with their RTP
timestamps and 64-bit extended sequence numbers, to `IngestService.StreamAudio`. The
engine does the jitter buffering, reordering and loss accounting.

    python docs/examples/rtp_bridge.py --listen 127.0.0.1:5004 --session group-42 \\
        --server 127.0.0.1:50051 --participant 1234567=alice --participant 0x5eed=bob

It is an example, not a product: plain RTP only (no SRTP, no RTCP use; RTCP packets on
the same port are recognised and ignored), Opus only, no RED unwrapping, and tracks
are aligned on the session clock by the arrival time of their first packet (RTCP
sender reports would do better). Each SSRC's stream is anchored at that SSRC's first
packet: rtp_timestamp_base = its RTP timestamp, rtp_base_capture_ms = its arrival time
on the session clock (ms since --session-start, default the bridge's start).

Needs grpcio, protobuf and the generated stubs (`groupsense.v1`, from
proto/groupsense/v1/groupsense.proto); nothing else of groupsense.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

try:
    from groupsense.v1 import groupsense_pb2 as pb
    from groupsense.v1 import groupsense_pb2_grpc as pb_grpc
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from groupsense.v1 import groupsense_pb2 as pb
    from groupsense.v1 import groupsense_pb2_grpc as pb_grpc

log = logging.getLogger("rtp_bridge")

RTP_VERSION = 2
RTP_HEADER = struct.Struct("!BBHII")  # V/P/X/CC, M/PT, sequence, timestamp, SSRC
OPUS_CLOCK_RATE = 48_000  # RFC 7587: always 48 kHz, whatever the audio bandwidth
TOKEN_ENV = "GROUPSENSE_TOKEN"
# Worth retrying: the server is restarting or draining, or the network dropped.
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


# -- RTP parsing --------------------------------------------------------------------------
class RtpError(ValueError):
    """A datagram that is not a well-formed RTP packet."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    marker: bool
    payload_type: int
    sequence: int  # 16-bit, as on the wire
    timestamp: int  # 32-bit, as on the wire
    ssrc: int
    csrcs: tuple[int, ...]
    extension_profile: int | None  # None: no header extension
    extension: bytes  # the extension's data, without its 4-byte header
    payload: bytes
    padding: int  # padding bytes removed from the end (0: none)


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse an RTP packet (RFC 3550 section 5.1); raises RtpError with the reason."""
    if len(data) < RTP_HEADER.size:
        raise RtpError(f"{len(data)} bytes is shorter than the 12-byte RTP header")
    b0, b1, sequence, timestamp, ssrc = RTP_HEADER.unpack_from(data)
    version = b0 >> 6
    if version != RTP_VERSION:
        raise RtpError(f"RTP version {version}, expected {RTP_VERSION}")
    has_padding, has_extension, csrc_count = bool(b0 & 0x20), bool(b0 & 0x10), b0 & 0x0F
    pos, end = RTP_HEADER.size, len(data)
    if pos + 4 * csrc_count > end:
        raise RtpError(f"packet of {end} bytes is too short for its {csrc_count} CSRC(s)")
    csrcs = struct.unpack_from(f"!{csrc_count}I", data, pos)
    pos += 4 * csrc_count
    profile: int | None = None
    extension = b""
    if has_extension:
        if pos + 4 > end:
            raise RtpError("packet ends inside its header extension's header")
        profile, words = struct.unpack_from("!HH", data, pos)
        pos += 4
        if pos + 4 * words > end:
            raise RtpError(f"header extension declares {4 * words} bytes, only {end - pos} remain")
        extension = bytes(data[pos : pos + 4 * words])
        pos += 4 * words
    padding = 0
    if has_padding:
        padding = data[-1]
        if padding == 0:
            raise RtpError("padding bit set but the padding count is 0")
        if pos + padding > end:
            raise RtpError(
                f"padding count {padding} exceeds the {end - pos} bytes after the header"
            )
    return RtpPacket(
        marker=bool(b1 & 0x80),
        payload_type=b1 & 0x7F,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        csrcs=tuple(csrcs),
        extension_profile=profile,
        extension=extension,
        payload=bytes(data[pos : end - padding]),
        padding=padding,
    )


def is_rtcp(data: bytes) -> bool:
    """RTCP multiplexed on the RTP port (RFC 5761 section 4): packet types 192-223."""
    return len(data) >= 2 and data[0] >> 6 == RTP_VERSION and 192 <= data[1] <= 223


class SequenceExtender:
    """16-bit RTP sequence numbers -> 64-bit extended ones (cycles * 65536 + seq).

    Each packet is placed relative to the highest number seen so far, taking the
    nearest interpretation (a step of at most 32767 either way), so wraparound and
    reordering across it come out right. The cycle count starts at 1, so a packet
    reordered ahead of the very first one still gets a non-negative number.
    """

    def __init__(self) -> None:
        self.highest: int | None = None

    def extend(self, seq: int) -> int:
        if self.highest is None:
            self.highest = (1 << 16) + seq
            return self.highest
        delta = (seq - self.highest) & 0xFFFF
        if delta >= 1 << 15:
            delta -= 1 << 16
        extended = self.highest + delta
        self.highest = max(self.highest, extended)
        return extended


# -- the bridge ---------------------------------------------------------------------------
class CallFailed(Exception):
    """A StreamAudio call ended with an error status."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


@dataclass(frozen=True, slots=True)
class Frame:
    sequence: int  # extended
    timestamp: int  # RTP, 32-bit
    payload: bytes
    arrival_ms: int  # on the session clock


@dataclass(frozen=True, kw_only=True)
class Settings:
    server: str
    session: str
    listen: tuple[str, int] = ("127.0.0.1", 5004)
    payload_type: int = 111
    participants: dict[int, str] = field(default_factory=dict)  # SSRC -> participant_ref
    facilitators: frozenset[int] = frozenset()  # SSRCs whose role is facilitator
    channels: int = 1
    token: str | None = None
    token_file: str | None = None  # re-read at every (re)connect: rotate it in place
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    session_start: float | None = None  # Unix time of the session clock's 0
    queue_frames: int = 250  # per SSRC: 5 s of 20 ms frames
    idle_s: float = 10.0  # end an SSRC's stream after this long without packets
    max_ssrcs: int = 32


@dataclass(eq=False)
class SsrcStream:
    """One SSRC: its queue of frames, and the task that streams them."""

    ssrc: int
    ref: str
    role: pb.Role
    queue: asyncio.Queue[Frame | None]
    extender: SequenceExtender = field(default_factory=SequenceExtender)
    task: asyncio.Task[None] | None = None
    participant_id: str = ""
    frames_sent: int = 0
    dropped: int = 0  # frames dropped because the queue was full
    warnings: int = 0
    warning_kinds: dict[str, int] = field(default_factory=dict)
    failed: str = ""  # why streaming stopped for good ("" while it is fine)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes], None]) -> None:
        self._on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._on_datagram(data)

    def error_received(self, exc: Exception) -> None:
        log.warning("UDP socket error: %s", exc)


class Bridge:
    """Receives RTP on a UDP socket and streams each SSRC to groupsense."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.streams: dict[int, SsrcStream] = {}
        self.malformed = 0
        self.ignored = 0  # other payload types, empty payloads, RTCP, SSRCs over the limit
        self._noted: set[tuple[str, int]] = set()  # (what, key): logged once already
        self._stopping = asyncio.Event()
        self._transport: asyncio.DatagramTransport | None = None
        self._channel = _open_channel(settings)
        self._stub = pb_grpc.IngestServiceStub(self._channel)
        start = time.time() if settings.session_start is None else settings.session_start
        self._mono_zero = time.monotonic() - (time.time() - start)

    def session_ms(self) -> int:
        """Now on the session clock: ms since the session start."""
        return max(int((time.monotonic() - self._mono_zero) * 1000), 0)

    async def start(self) -> tuple[str, int]:
        """Bind the UDP socket; returns the address bound (port 0 picks a free one)."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self.on_datagram), local_addr=self.settings.listen
        )
        self._transport = transport
        host, port = transport.get_extra_info("sockname")[:2]
        log.info(
            "listening for RTP/Opus (PT %d) on %s:%d; session %r on %s",
            self.settings.payload_type,
            host,
            port,
            self.settings.session,
            self.settings.server,
        )
        return host, port

    def _note_once(self, what: str, key: int, message: str, *args: Any) -> None:
        if (what, key) not in self._noted:
            self._noted.add((what, key))
            log.warning(message, *args)

    def on_datagram(self, data: bytes) -> None:
        if self._stopping.is_set():
            return
        if is_rtcp(data):
            self.ignored += 1
            return
        try:
            packet = parse_rtp(data)
        except RtpError as exc:
            self.malformed += 1
            if self.malformed == 1 or self.malformed % 1000 == 0:
                log.warning("malformed RTP packet (%d so far): %s", self.malformed, exc)
            return
        if packet.payload_type != self.settings.payload_type:
            self.ignored += 1
            self._note_once(
                "pt",
                packet.ssrc << 7 | packet.payload_type,
                "SSRC %d: ignoring payload type %d (expecting %d; RED, CN or DTMF?)",
                packet.ssrc,
                packet.payload_type,
                self.settings.payload_type,
            )
            return
        if not packet.payload:  # keep-alive or padding-only: nothing to decode
            self.ignored += 1
            return
        stream = self.streams.get(packet.ssrc) or self._new_stream(packet.ssrc)
        if stream is None:
            return
        if stream.failed:
            self.ignored += 1
            return
        frame = Frame(
            stream.extender.extend(packet.sequence),
            packet.timestamp,
            packet.payload,
            self.session_ms(),
        )
        if stream.queue.full():  # the server is not keeping up: keep the newest audio
            stream.queue.get_nowait()
            stream.dropped += 1
            if stream.dropped == 1 or stream.dropped % 250 == 0:
                log.warning("SSRC %d: queue full, %d frame(s) dropped", stream.ssrc, stream.dropped)
        stream.queue.put_nowait(frame)

    def _new_stream(self, ssrc: int) -> SsrcStream | None:
        if len(self.streams) >= self.settings.max_ssrcs:
            self.ignored += 1
            self._note_once("limit", ssrc, "SSRC %d ignored: --max-ssrcs reached", ssrc)
            return None
        ref = self.settings.participants.get(ssrc, f"ssrc-{ssrc}")
        role = pb.ROLE_FACILITATOR if ssrc in self.settings.facilitators else pb.ROLE_PARTICIPANT
        stream = SsrcStream(ssrc, ref, role, asyncio.Queue(self.settings.queue_frames))
        stream.task = asyncio.create_task(self._run(stream), name=f"ssrc-{ssrc}")
        self.streams[ssrc] = stream
        log.info("SSRC %d: new stream as participant_ref %r", ssrc, ref)
        return stream

    async def _run(self, s: SsrcStream) -> None:
        """Stream this SSRC: one StreamAudio while packets flow; reconnect when they
        resume after --idle-timeout, or after a retryable error."""
        backoff = 0.5
        while True:
            first = await s.queue.get()
            if first is None:
                return
            try:
                ended = await self._call(s, first)
            except CallFailed as exc:
                if exc.code in RETRYABLE and not self._stopping.is_set():
                    log.warning("SSRC %d: %s; retrying in %.1f s", s.ssrc, exc, backoff)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), backoff)
                    backoff = min(backoff * 2, 8.0)
                    continue
                s.failed = str(exc)
                log.error("SSRC %d: stream ended by the server: %s", s.ssrc, s.failed)
                return
            backoff = 0.5
            if ended:
                return

    async def _call(self, s: SsrcStream, first: Frame) -> bool:
        """One StreamAudio call; True when the bridge is stopping, False after idling.
        Raises CallFailed when the server (or the network) ends the call with an error."""
        call = self._stub.StreamAudio(metadata=_metadata(self.settings))
        reader = asyncio.create_task(self._read_acks(s, call))
        stopping = True
        try:
            await call.write(
                pb.IngestRequest(
                    config=pb.StreamConfig(
                        session_id=self.settings.session,
                        participant_ref=s.ref,
                        role=s.role,
                        codec=pb.CODEC_OPUS,
                        sample_rate_hz=OPUS_CLOCK_RATE,
                        channels=self.settings.channels,
                        rtp_clock_rate=OPUS_CLOCK_RATE,
                        rtp_timestamp_base=first.timestamp,
                        rtp_base_capture_ms=first.arrival_ms,
                    )
                )
            )
            frame: Frame | None = first
            while frame is not None:
                await call.write(
                    pb.IngestRequest(
                        frame=pb.AudioFrame(
                            sequence=frame.sequence,
                            rtp_timestamp=frame.timestamp,
                            payload=frame.payload,
                        )
                    )
                )
                s.frames_sent += 1
                try:
                    frame = await asyncio.wait_for(s.queue.get(), self.settings.idle_s)
                except TimeoutError:
                    log.info(
                        "SSRC %d: no packets for %.0f s; ending its stream",
                        s.ssrc,
                        self.settings.idle_s,
                    )
                    stopping = False
                    break
            await call.done_writing()
        except (asyncio.InvalidStateError, grpc.aio.AioRpcError):
            pass  # the call has already ended; its status (below) says how
        except BaseException:  # cancelled (stop() timed out) or a bug: end the call
            call.cancel()
            reader.cancel()
            raise
        await reader
        code = await call.code()
        if code != grpc.StatusCode.OK:
            raise CallFailed(code, await call.details() or "")
        return stopping

    async def _read_acks(self, s: SsrcStream, call: Any) -> None:
        try:
            while (ack := await call.read()) is not grpc.aio.EOF:
                if ack.participant_id and ack.participant_id != s.participant_id:
                    s.participant_id = ack.participant_id
                    log.info("SSRC %d (%s) is participant %s", s.ssrc, s.ref, s.participant_id)
                for w in ack.warnings:
                    s.warnings += 1
                    kind = pb.StreamWarning.Kind.Name(w.kind)
                    s.warning_kinds[kind] = s.warning_kinds.get(kind, 0) + 1
                    log.warning(
                        "SSRC %d: %s at frame %d: %s",
                        s.ssrc,
                        pb.StreamWarning.Kind.Name(w.kind),
                        w.sequence,
                        w.detail,
                    )
        except grpc.aio.AioRpcError:
            pass  # reported by _call from the call's status

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Stop receiving, finish every stream (the server gets a clean end), close."""
        self._stopping.set()
        if self._transport is not None:
            self._transport.close()
        for s in self.streams.values():
            if s.queue.full():
                s.queue.get_nowait()
                s.dropped += 1
            s.queue.put_nowait(None)
        tasks = [s.task for s in self.streams.values() if s.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout_s)
            for t in pending:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._channel.close()
        for s in self.streams.values():
            log.info(
                "SSRC %d (%s as %s): %d frames sent, %d dropped, %d warnings%s",
                s.ssrc,
                s.ref,
                s.participant_id or "?",
                s.frames_sent,
                s.dropped,
                s.warnings,
                f", failed: {s.failed}" if s.failed else "",
            )


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _open_channel(s: Settings) -> grpc.aio.Channel:
    # Keepalive no more often than the server allows (its default minimum is 10 s).
    options = [("grpc.keepalive_time_ms", 30_000)]
    if s.tls_ca:
        creds = grpc.ssl_channel_credentials(
            root_certificates=_read(s.tls_ca),
            private_key=_read(s.tls_key) if s.tls_key else None,
            certificate_chain=_read(s.tls_cert) if s.tls_cert else None,
        )
        return grpc.aio.secure_channel(s.server, creds, options=options)
    return grpc.aio.insecure_channel(s.server, options=options)


def _metadata(s: Settings) -> tuple[tuple[str, str], ...]:
    token = s.token
    if s.token_file:
        token = Path(s.token_file).read_text().strip()
    return (("authorization", f"Bearer {token}"),) if token else ()


# -- command line -------------------------------------------------------------------------
def parse_ssrc(text: str) -> int:
    ssrc = int(text, 0)  # decimal, or 0x... hex
    if not 0 <= ssrc <= 0xFFFFFFFF:
        raise ValueError(f"SSRC {text} is not a 32-bit number")
    return ssrc


def parse_participant(text: str) -> tuple[int, str]:
    """'SSRC=ref' -> (ssrc, ref)."""
    ssrc, sep, ref = text.partition("=")
    if not sep or not ref:
        raise argparse.ArgumentTypeError(f"expected SSRC=ref, got {text!r}")
    try:
        return parse_ssrc(ssrc.strip()), ref
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _ssrc_arg(text: str) -> int:
    try:
        return parse_ssrc(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _listen_arg(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    try:
        return host.strip("[]") or "127.0.0.1", int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}") from None


def settings_from_args(argv: list[str] | None = None) -> Settings:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--listen",
        type=_listen_arg,
        default=("127.0.0.1", 5004),
        metavar="HOST:PORT",
        help="UDP address for RTP (default 127.0.0.1:5004)",
    )
    p.add_argument("--server", default="127.0.0.1:50051", metavar="HOST:PORT")
    p.add_argument("--session", required=True, help="the groupsense session_id")
    p.add_argument("--payload-type", type=int, default=111, help="Opus's RTP payload type")
    p.add_argument(
        "--participant",
        type=parse_participant,
        action="append",
        default=[],
        metavar="SSRC=REF",
        help="participant_ref for an SSRC (default ssrc-<n>)",
    )
    p.add_argument(
        "--facilitator",
        type=_ssrc_arg,
        action="append",
        default=[],
        metavar="SSRC",
        help="this SSRC is the facilitator's",
    )
    p.add_argument(
        "--channels", type=int, choices=(1, 2), default=1, help="decode to mono (default) or stereo"
    )
    p.add_argument("--token", default=None, help=f"bearer token (default ${TOKEN_ENV})")
    p.add_argument("--token-file", default=None, help="read the token here at each connect")
    p.add_argument("--tls-ca", metavar="PEM", help="verify the server with this CA (TLS)")
    p.add_argument("--tls-cert", metavar="PEM", help="client certificate (mutual TLS)")
    p.add_argument("--tls-key", metavar="PEM", help="client private key (mutual TLS)")
    p.add_argument(
        "--session-start",
        type=float,
        default=None,
        metavar="UNIX_TIME",
        help="when the session clock was 0 (default: now). Give the same value "
        "to every bridge of a session and after a restart",
    )
    p.add_argument("--queue-frames", type=int, default=250, help="per-SSRC queue bound")
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="end an SSRC's stream after this long without packets",
    )
    p.add_argument("--max-ssrcs", type=int, default=32)
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if a.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if (a.tls_cert or a.tls_key) and not a.tls_ca:
        p.error("--tls-cert/--tls-key need --tls-ca")
    return Settings(
        server=a.server,
        session=a.session,
        listen=a.listen,
        payload_type=a.payload_type,
        participants=dict(a.participant),
        facilitators=frozenset(a.facilitator),
        channels=a.channels,
        token=a.token or os.environ.get(TOKEN_ENV),
        token_file=a.token_file,
        tls_ca=a.tls_ca,
        tls_cert=a.tls_cert,
        tls_key=a.tls_key,
        session_start=a.session_start,
        queue_frames=a.queue_frames,
        idle_s=a.idle_timeout,
        max_ssrcs=a.max_ssrcs,
    )


async def run(settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(sig, stop.set)
    bridge = Bridge(settings)
    try:
        await bridge.start()
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", *settings.listen, exc)
        return 1
    await stop.wait()
    log.info("stopping: finishing every stream")
    await bridge.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    settings = settings_from_args(argv)
    try:
        return asyncio.run(run(settings))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
