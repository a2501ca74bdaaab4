"""Test sender: play one audio track of a file as an RTP/Opus stream over UDP.

Why this exists: to try `rtp_bridge.py` (and a groupsense server behind it) without a
video server. It does what an SFU's plain-RTP output does for one participant: Opus at
48 kHz in 20 ms frames, one Opus packet per RTP packet (RFC 7587), payload type 111,
a random SSRC and random initial sequence number and timestamp, the sequence number
+1 and the timestamp +960 per packet, the marker bit on the first packet. Packets are
paced in real time, or `--speed` times faster.

    python docs/examples/send_rtp.py engine/data/sample/session.mkv --track 1 \\
        --port 5004 --speed 8

Needs PyAV (with libopus, as its wheels have) and numpy. Sends only to the address
given (default 127.0.0.1). Tracks are numbered from 0, in file order.
"""

from __future__ import annotations

import argparse
import random
import socket
import struct
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import av
import numpy as np

OPUS_RATE = 48_000  # Opus's RTP clock is always 48 kHz (RFC 7587)
FRAME_SAMPLES = 960  # 20 ms at 48 kHz
FRAME_S = FRAME_SAMPLES / OPUS_RATE


def pcm_48k_mono(path: str, track: int = 0) -> Iterator[np.ndarray]:
    """Decode one audio track of `path` to 48 kHz mono int16 chunks."""
    with av.open(path) as container:
        audio = list(container.streams.audio)
        if not audio:
            raise ValueError(f"{path}: no audio track")
        if not 0 <= track < len(audio):
            raise ValueError(f"{path}: no audio track {track} (it has {len(audio)}, from 0)")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=OPUS_RATE)
        for frame in container.decode(audio[track]):
            for out in resampler.resample(frame):
                yield out.to_ndarray().reshape(-1)
        for out in resampler.resample(None):
            yield out.to_ndarray().reshape(-1)


def frames_20ms(
    chunks: Iterable[np.ndarray], start_s: float = 0.0, duration_s: float | None = None
) -> Iterator[np.ndarray]:
    """Cut 48 kHz audio into 960-sample frames from `start_s`, for `duration_s` at most.
    The last frame is padded with zeros."""
    skip = round(start_s * OPUS_RATE)
    left = None if duration_s is None else round(duration_s * OPUS_RATE)
    pending = np.zeros(0, np.int16)
    for chunk in chunks:
        if skip:
            cut = min(skip, chunk.shape[0])
            chunk, skip = chunk[cut:], skip - cut
        if left is not None:
            chunk = chunk[:left]
            left -= chunk.shape[0]
        pending = np.concatenate([pending, chunk])
        while pending.shape[0] >= FRAME_SAMPLES:
            yield pending[:FRAME_SAMPLES]
            pending = pending[FRAME_SAMPLES:]
        if left == 0:
            break
    if pending.shape[0]:
        yield np.pad(pending, (0, FRAME_SAMPLES - pending.shape[0]))


def encode_opus(frames: Iterable[np.ndarray], bitrate: int = 32_000) -> Iterator[bytes]:
    """Encode 960-sample mono frames with libopus: one packet (20 ms) per frame."""
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate = OPUS_RATE
    enc.layout = "mono"
    enc.format = "s16"
    enc.bit_rate = bitrate
    for i, samples in enumerate(frames):
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = OPUS_RATE
        frame.pts = i * FRAME_SAMPLES
        for packet in enc.encode(frame):
            yield bytes(packet)
    for packet in enc.encode(None):
        yield bytes(packet)


def opus_packets(
    path: str,
    track: int = 0,
    *,
    start_s: float = 0.0,
    duration_s: float | None = None,
    bitrate: int = 32_000,
) -> Iterator[bytes]:
    """The Opus packets (20 ms each) of one track of a file, from `start_s`."""
    return encode_opus(frames_20ms(pcm_48k_mono(path, track), start_s, duration_s), bitrate)


def rtp_packet(
    *,
    payload_type: int,
    sequence: int,
    timestamp: int,
    ssrc: int,
    payload: bytes,
    marker: bool = False,
    csrcs: tuple[int, ...] = (),
    extension: tuple[int, bytes] | None = None,
    padding: int = 0,
) -> bytes:
    """Build one RTP packet (RFC 3550 section 5.1).

    `extension` is (profile, data) with len(data) a multiple of 4; `padding` is the
    number of padding bytes to append (the last one holds the count), 0 for none.
    """
    if not 0 <= payload_type <= 127:
        raise ValueError(f"payload type must be 0-127, got {payload_type}")
    if len(csrcs) > 15:
        raise ValueError("at most 15 CSRCs")
    if not 0 <= padding <= 255:
        raise ValueError("padding must be 0-255 bytes")
    b0 = (2 << 6) | (0x20 if padding else 0) | (0x10 if extension else 0) | len(csrcs)
    b1 = (0x80 if marker else 0) | payload_type
    out = bytearray(struct.pack("!BBHII", b0, b1, sequence & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc))
    for csrc in csrcs:
        out += struct.pack("!I", csrc)
    if extension is not None:
        profile, data = extension
        if len(data) % 4:
            raise ValueError("header extension data must be a multiple of 4 bytes")
        out += struct.pack("!HH", profile, len(data) // 4) + data
    out += payload
    if padding:
        out += bytes(padding - 1) + bytes([padding])
    return bytes(out)


@dataclass
class Packetizer:
    """Numbers a stream of 20 ms Opus packets as one RTP stream."""

    ssrc: int
    payload_type: int = 111
    sequence: int = 0
    timestamp: int = 0
    sent: int = 0

    @classmethod
    def random(cls, payload_type: int = 111, ssrc: int | None = None) -> Packetizer:
        return cls(
            ssrc=random.getrandbits(32) if ssrc is None else ssrc,
            payload_type=payload_type,
            sequence=random.getrandbits(16),
            timestamp=random.getrandbits(32),
        )

    def packet(self, payload: bytes) -> bytes:
        data = rtp_packet(
            payload_type=self.payload_type,
            sequence=self.sequence,
            timestamp=self.timestamp,
            ssrc=self.ssrc,
            payload=payload,
            marker=self.sent == 0,  # first packet of a talkspurt (RFC 3551 section 4.1)
        )
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = (self.timestamp + FRAME_SAMPLES) & 0xFFFFFFFF
        self.sent += 1
        return data


def send(
    payloads: Iterable[bytes],
    address: tuple[str, int],
    packetizer: Packetizer,
    speed: float | None = 1.0,
) -> int:
    """Send each payload as one RTP packet, one per 20 ms / speed (None: unpaced).
    Returns the number of packets sent."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        start = time.monotonic()
        for i, payload in enumerate(payloads):
            if speed is not None:
                delay = start + i * FRAME_S / speed - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            sock.sendto(packetizer.packet(payload), address)
    return packetizer.sent


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    value = float(text)
    if not 0.1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"--speed must be 0.1-1000 or 'max', got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("file", help="any file PyAV opens (WAV, Ogg, MKV, ...)")
    p.add_argument("--track", type=int, default=0, help="audio track index, from 0 (default 0)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--payload-type", type=int, default=111)
    p.add_argument("--ssrc", type=lambda s: int(s, 0), default=None, help="default: random")
    p.add_argument("--start", type=float, default=0.0, help="start at this second of the track")
    p.add_argument("--duration", type=float, default=None, help="send this many seconds")
    p.add_argument("--bitrate", type=int, default=32_000)
    p.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        help="1 = real time (default), N = N times faster, max = unpaced "
        "(a loopback socket buffer may then drop packets)",
    )
    args = p.parse_args(argv)
    packetizer = Packetizer.random(args.payload_type, args.ssrc)
    print(
        f"send_rtp: track {args.track} of {args.file} -> {args.host}:{args.port} "
        f"as SSRC {packetizer.ssrc} (PT {args.payload_type}, speed {args.speed or 'max'})",
        file=sys.stderr,
    )
    try:
        payloads = opus_packets(
            args.file,
            args.track,
            start_s=args.start,
            duration_s=args.duration,
            bitrate=args.bitrate,
        )
        n = send(payloads, (args.host, args.port), packetizer, args.speed)
    except (ValueError, OSError, av.FFmpegError) as exc:
        print(f"send_rtp: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"send_rtp: interrupted after {packetizer.sent} packets", file=sys.stderr)
        return 130
    print(f"send_rtp: sent {n} packets ({n * FRAME_S:.1f} s of audio)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
