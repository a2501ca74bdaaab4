"""Decoding at ingress: files (any container PyAV opens), raw PCM16 frames, raw Opus packets.

Every decoder yields 16 kHz mono int16 and raises typed errors with a precise cause.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from engine.audio import opus
from engine.audio.resample import BlockResampler, Resampler
from engine.errors import InputFileError, PayloadDecodeError, StreamFormatError
from engine.types import SAMPLE_RATE, TrackInfo

MAX_CHANNELS = 2
"""A track with more channels likely holds several people; we refuse to mix them blindly."""
MIN_RATE, MAX_RATE = 8_000, 48_000
FILE_BLOCK_S = 0.5
"""Seconds of a file's track converted per resampler call (see BlockResampler)."""


def _layout_name(stream: av.audio.stream.AudioStream) -> str:
    try:
        return str(stream.codec_context.layout.name)
    except Exception:
        return "unknown"


def _open(path: str) -> av.container.InputContainer:
    if not os.path.exists(path):
        raise InputFileError(path, "no such file")
    if os.path.isdir(path):
        raise InputFileError(path, "is a directory, not an audio file")
    if os.path.getsize(path) == 0:
        raise InputFileError(path, "empty file")
    _check_riff_complete(path)
    try:
        return av.open(path, mode="r")
    except av.FFmpegError as exc:
        raise InputFileError(path, f"not a readable media file ({_ffmpeg_cause(exc)})") from None


def _check_riff_complete(path: str) -> None:
    """A WAV whose data chunk is cut short: FFmpeg reads it silently, so check the header."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk = f.read(8)
            declared = int.from_bytes(chunk[4:8], "little")
            if chunk[:4] == b"data":
                have = size - pos - 8
                if declared not in (0, 0xFFFFFFFF) and have < declared:
                    raise InputFileError(
                        path,
                        f"truncated: the WAV header declares {declared} bytes of audio, "
                        f"the file holds {have}",
                    )
                return
            pos += 8 + declared + (declared & 1)


def _ffmpeg_cause(exc: Exception) -> str:
    strerror = getattr(exc, "strerror", None)
    return str(strerror or exc).strip() or type(exc).__name__


def probe_file(path: str | os.PathLike[str]) -> list[TrackInfo]:
    """List the participant tracks in a file, validating each; raises InputFileError."""
    path = os.fspath(path)
    with _open(path) as container:
        return _tracks(path, container)


def _tracks(path: str, container: av.container.InputContainer) -> list[TrackInfo]:
    audio = list(container.streams.audio)
    if not audio:
        raise InputFileError(path, "no audio track")
    stem = Path(path).stem
    tracks = []
    for i, s in enumerate(audio):
        ctx = s.codec_context
        if ctx is None or not s.codec_context.name:
            raise InputFileError(path, f"audio track {i}: no decoder for its codec")
        channels = ctx.channels
        if channels < 1 or channels > MAX_CHANNELS:
            raise InputFileError(
                path,
                f"audio track {i}: unsupported channel layout '{_layout_name(s)}' "
                f"({channels} channels); one participant per mono or stereo track",
            )
        rate = ctx.sample_rate
        if not MIN_RATE <= rate <= MAX_RATE:
            raise InputFileError(
                path, f"audio track {i}: sample rate {rate} Hz outside {MIN_RATE}-{MAX_RATE} Hz"
            )
        title = (s.metadata.get("title") or s.metadata.get("TITLE") or "").strip()
        name = title or (stem if len(audio) == 1 else f"{stem}#{i}")
        duration = None
        if s.duration is not None and s.time_base is not None:
            duration = float(s.duration * s.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        tracks.append(
            TrackInfo(
                path=path,
                index=i,
                name=name,
                codec=ctx.name,
                sample_rate=rate,
                channels=channels,
                duration_s=duration,
            )
        )
    return tracks


def decode_file(
    path: str | os.PathLike[str],
) -> tuple[list[TrackInfo], Iterator[tuple[int, np.ndarray]]]:
    """Open a file and decode all its audio tracks in one demux pass.

    Returns the tracks and an iterator of (track index, 16 kHz mono int16 chunk).
    The iterator raises InputFileError on corrupt or truncated data.
    """
    path = os.fspath(path)
    container = _open(path)
    try:
        tracks = _tracks(path, container)
    except BaseException:
        container.close()
        raise
    return tracks, _decode_iter(path, container)


def _decode_iter(
    path: str, container: av.container.InputContainer
) -> Iterator[tuple[int, np.ndarray]]:
    streams = list(container.streams.audio)
    index_of = {s.index: i for i, s in enumerate(streams)}
    # Files are converted in blocks: one resampler call per FILE_BLOCK_S per track
    # instead of one per 20 ms packet; same audio, much less per-packet overhead.
    resamplers: list[BlockResampler | _OpusBlocks] = [
        _OpusBlocks(s) if _direct_opus(s) else BlockResampler(FILE_BLOCK_S) for s in streams
    ]
    decoded = [0] * len(streams)
    i = 0
    try:
        for packet in container.demux(streams):
            i = index_of[packet.stream.index]  # not stream_index: 0 on flush packets
            blocks = resamplers[i]
            if isinstance(blocks, _OpusBlocks):
                if not packet.size:
                    continue
                discard = 0
                if packet.has_sidedata("skip_samples"):  # end trimming, on the last packet
                    side = bytes(packet.get_sidedata("skip_samples"))
                    discard = int.from_bytes(side[4:8], "little") // opus.PRE_SKIP_DIVISOR
                try:
                    pcm = blocks.push(bytes(packet), discard)  # type: ignore[arg-type]
                except PayloadDecodeError as exc:
                    raise InputFileError(path, f"audio track {i}: corrupt data ({exc})") from None
                if pcm.size:
                    decoded[i] += pcm.size
                    yield i, pcm
                continue
            try:
                frames: list[av.AudioFrame] = packet.decode()  # type: ignore[assignment]
            except av.FFmpegError as exc:
                raise InputFileError(
                    path, f"audio track {i}: corrupt data ({_ffmpeg_cause(exc)})"
                ) from None
            push = blocks.push
            for frame in frames:
                pcm = push(frame)
                if pcm.size:
                    decoded[i] += pcm.size
                    yield i, pcm
        for i, r in enumerate(resamplers):
            tail = r.flush()
            if tail.size:
                decoded[i] += tail.size
                yield i, tail
    except av.FFmpegError as exc:
        raise InputFileError(path, f"unreadable or truncated ({_ffmpeg_cause(exc)})") from None
    except StreamFormatError as exc:
        raise InputFileError(path, f"audio track {i}: {exc}") from None
    finally:
        container.close()
    for i, n in enumerate(decoded):
        if n == 0:
            raise InputFileError(path, f"audio track {i}: no decodable audio (truncated?)")


def _direct_opus(stream: av.audio.stream.AudioStream) -> bool:
    """Whether a file's track can go to libopus directly (see engine.audio.opus): Opus
    with an OpusHead for at most two channels (mapping family 0)."""
    ctx = stream.codec_context
    if ctx.name not in ("opus", "libopus") or not opus.available():
        return False
    head = bytes(ctx.extradata or b"")
    return len(head) >= 19 and head.startswith(b"OpusHead") and head[18] == 0


class _OpusBlocks:
    """A file's Opus track decoded by libopus at 16 kHz, handed on in FILE_BLOCK_S blocks.

    Applies the container's trimming: OpusHead's pre-skip at the start (the encoder's
    look-ahead) and the end padding the last packet's side data records.
    """

    __slots__ = ("_base", "_block", "_buf", "_decode_to", "_fill", "_skip")

    def __init__(self, stream: av.audio.stream.AudioStream) -> None:
        head = bytes(stream.codec_context.extradata or b"")
        self._decode_to = opus.Opus16kDecoder().decode_to
        self._skip = int.from_bytes(head[10:12], "little") // opus.PRE_SKIP_DIVISOR
        self._block = round(FILE_BLOCK_S * SAMPLE_RATE)
        self._buf = np.zeros(self._block + opus.MAX_FRAME, np.int16)
        self._base = self._buf.ctypes.data
        self._fill = 0

    def push(self, payload: bytes, discard: int = 0) -> np.ndarray:
        """Decode one packet, dropping `discard` samples from its end."""
        fill = self._fill
        n = self._decode_to(payload, self._base + 2 * fill) - discard
        if self._skip and n > 0:
            drop = min(self._skip, n)
            self._skip -= drop
            self._buf[fill : fill + n - drop] = self._buf[fill + drop : fill + n].copy()
            n -= drop
        if n > 0:
            fill += n
        self._fill = fill
        if fill < self._block:
            return _NONE
        return self.flush()

    def flush(self) -> np.ndarray:
        out = self._buf[: self._fill].copy()
        self._fill = 0
        return out


_NONE = np.zeros(0, np.int16)
_NONE.flags.writeable = False


class PcmDecoder:
    """Raw interleaved PCM16LE payloads of a fixed rate and channel count."""

    def __init__(self, sample_rate: int, channels: int) -> None:
        _check_format(sample_rate, channels)
        self.sample_rate = sample_rate
        self.channels = channels
        self._layout = "mono" if channels == 1 else "stereo"
        # 16 kHz mono: the payload's samples are the engine's, as they are
        self.passthrough = sample_rate == SAMPLE_RATE and channels == 1
        self._resampler = None if self.passthrough else Resampler()

    def decode(self, payload: bytes) -> np.ndarray:
        frame_bytes = 2 * self.channels
        if not payload or len(payload) % frame_bytes:
            raise PayloadDecodeError(
                f"PCM16LE payload of {len(payload)} bytes is not a whole number of "
                f"{self.channels}-channel samples"
            )
        samples = np.frombuffer(payload, dtype="<i2")
        if self._resampler is None:
            return samples.astype(np.int16, copy=True)
        frame = av.AudioFrame.from_ndarray(
            samples.reshape(1, -1), format="s16", layout=self._layout
        )
        frame.sample_rate = self.sample_rate
        return self._resampler.convert(frame)

    def flush(self) -> np.ndarray:
        if self._resampler is None:
            return np.zeros(0, dtype=np.int16)
        return self._resampler.convert(None)


class OpusDecoder:
    """Raw Opus packets (one per frame, as RTP carries them), decoded by libopus.

    Straight to 16 kHz mono where libopus can be called directly (engine.audio.opus);
    otherwise through PyAV at 48 kHz and libswresample.
    """

    def __init__(self, sample_rate: int = 48_000, channels: int = 1) -> None:
        _check_format(sample_rate, channels)
        self.sample_rate = sample_rate
        self.channels = channels
        self._direct = opus.Opus16kDecoder() if opus.available() else None
        if self._direct is None:
            self._codec = av.CodecContext.create("libopus", "r")
            self._codec.sample_rate = 48_000  # FFmpeg asks libopus for 48 kHz
            self._codec.layout = "mono" if channels == 1 else "stereo"
            self._resampler = Resampler()

    def decode(self, payload: bytes) -> np.ndarray:
        if self._direct is not None:
            return self._direct.decode(payload)
        if not payload:
            raise PayloadDecodeError("empty Opus packet")
        try:
            frames = self._codec.decode(av.Packet(payload))
        except av.FFmpegError as exc:
            raise PayloadDecodeError(
                f"Opus packet does not decode ({_ffmpeg_cause(exc)})"
            ) from None
        if not frames:
            return np.zeros(0, dtype=np.int16)
        if len(frames) == 1:
            return self._resampler.convert(frames[0])
        return np.concatenate([self._resampler.convert(f) for f in frames])

    def flush(self) -> np.ndarray:
        if self._direct is not None:
            return np.zeros(0, dtype=np.int16)
        return self._resampler.convert(None)


def _check_format(sample_rate: int, channels: int) -> None:
    if not MIN_RATE <= sample_rate <= MAX_RATE:
        raise StreamFormatError(f"sample_rate {sample_rate} outside {MIN_RATE}-{MAX_RATE} Hz")
    if channels not in (1, 2):
        raise StreamFormatError(f"channels must be 1 or 2, got {channels}")
