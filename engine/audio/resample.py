"""Explicit, once-only conversion of any input format to 16 kHz mono int16.

Uses libswresample through PyAV (its default windowed-sinc filter, 32 taps per
phase, with an anti-alias low-pass): with libopus decoding Opus at 16 kHz itself
(engine.audio.opus), the one place in the engine where sample rate or channel count
changes. Plain decimation is never used.
"""

from __future__ import annotations

import av
import numpy as np

from engine.errors import StreamFormatError
from engine.types import SAMPLE_RATE

QUALITY = "swr-sinc32"
"""Name of the resampling filter, reported in outputs so results are traceable."""

_PACKED = {"u8": "u1", "s16": "i2", "s32": "i4", "s64": "i8", "flt": "f4", "dbl": "f8"}
_DTYPES = {name + p: np.dtype(code) for name, code in _PACKED.items() for p in ("", "p")}
"""numpy dtype of each sample format PyAV decodes to ("p": planar, one plane per channel)."""


_EMPTY = np.zeros(0, np.int16)
_EMPTY.flags.writeable = False


def _samples_of(frame: av.AudioFrame) -> np.ndarray:
    """The 16 kHz mono s16 samples of a converted frame, as an array of its own.

    Why not `to_ndarray()`: it costs 3-4x more (a vstack) for the same copy.
    """
    plane = frame.planes[0]
    return np.frombuffer(plane, np.int16, frame.samples).copy()  # type: ignore[call-overload]


class Resampler:
    """Converts decoded frames of one fixed input format to 16 kHz mono int16."""

    __slots__ = ("_resampler",)

    def __init__(self) -> None:
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)

    def convert(self, frame: av.AudioFrame | None) -> np.ndarray:
        """Resample one frame (None flushes the filter's tail)."""
        out = self._resampler.resample(frame)
        if not out:
            return np.zeros(0, dtype=np.int16)
        if len(out) == 1:
            return _samples_of(out[0])
        return np.concatenate([_samples_of(f) for f in out])


class BlockResampler:
    """A `Resampler` fed in blocks: one track's decoded frames are gathered, then converted
    with one libswresample call per `block_s` seconds of input.

    Why: the filter-graph call costs about as much as decoding a 20 ms Opus packet,
    whatever the frame's length. The resampler is a stream whose output depends only
    on the input samples, so converting the same samples in longer blocks gives the
    same audio (checked in bench/bench_decode.py) for a fraction of the calls. Input
    already at 16 kHz mono s16 is passed through without a filter call.

    For files, where the added latency of a block does not matter; the live path keeps
    converting frame by frame.
    """

    __slots__ = (
        "_buf",
        "_channels",
        "_fill",
        "_format",
        "_layout",
        "_planar",
        "_rate",
        "_resampler",
        "_width",
        "block_s",
    )

    def __init__(self, block_s: float = 0.5) -> None:
        if not 0.0 < block_s <= 4.0:
            raise ValueError(f"block_s must be in (0, 4], got {block_s}")
        self.block_s = block_s
        self._resampler = Resampler()
        self._format = ""
        self._layout = ""
        self._rate = 0
        self._channels = 0
        self._planar = False
        self._width = 1  # values per sample and row: the channel count if interleaved
        self._buf = np.zeros((0, 0), np.int16)
        self._fill = 0  # samples buffered

    def _setup(self, frame: av.AudioFrame) -> None:
        fmt = frame.format.name
        if fmt not in _DTYPES:
            raise StreamFormatError(f"unsupported sample format {fmt!r}")
        self._format = fmt
        self._layout = frame.layout.name
        self._rate = frame.sample_rate
        self._channels = frame.layout.nb_channels
        self._planar = frame.format.is_planar
        self._width = 1 if self._planar else self._channels
        rows = self._channels if self._planar else 1
        cap = max(1, round(self.block_s * self._rate))
        self._buf = np.zeros((rows, cap * self._width), _DTYPES[fmt])

    @property
    def _passthrough(self) -> bool:
        return self._format == "s16" and self._channels == 1 and self._rate == SAMPLE_RATE

    def push(self, frame: av.AudioFrame) -> np.ndarray:
        """Add one decoded frame; return the 16 kHz mono int16 samples now converted
        (often none: they come with a later frame or with `flush`)."""
        if not self._format:
            self._setup(frame)
        elif (
            frame.sample_rate != self._rate
            or frame.format.name != self._format
            or frame.layout.nb_channels != self._channels
        ):
            raise StreamFormatError(
                f"format changed mid-stream: {self._format} {self._layout} {self._rate} Hz "
                f"-> {frame.format.name} {frame.layout.name} {frame.sample_rate} Hz"
            )
        n = frame.samples
        fill = self._fill
        buf = self._buf
        width = self._width
        cap = buf.shape[1] // width
        if fill + n > cap or n == 0:
            return self._push_slow(frame)
        a, b = fill * width, (fill + n) * width
        if buf.shape[0] == 1:
            buf[0, a:b] = np.frombuffer(frame.planes[0], buf.dtype, b - a)  # type: ignore[call-overload]
        else:
            planes = frame.planes
            for row in range(buf.shape[0]):
                buf[row, a:b] = np.frombuffer(planes[row], buf.dtype, b - a)  # type: ignore[call-overload]
        self._fill = fill + n
        if fill + n == cap:
            return self._convert()
        return _EMPTY

    def _push_slow(self, frame: av.AudioFrame) -> np.ndarray:
        """A frame that does not fit in what is left of the block (or has no samples)."""
        if frame.samples == 0:
            return _EMPTY
        head = self._convert()
        if frame.samples > self._buf.shape[1] // self._width:  # longer than a block
            return _join(head, self._resampler.convert(frame))
        return _join(head, self.push(frame))

    def flush(self) -> np.ndarray:
        """End of stream: convert what is buffered and drain the filter's tail."""
        if not self._format:
            return _EMPTY
        head = self._convert()
        if self._passthrough:
            return head
        return _join(head, self._resampler.convert(None))

    def _convert(self) -> np.ndarray:
        n = self._fill
        if n == 0:
            return _EMPTY
        self._fill = 0
        block = self._buf[:, : n * self._width]
        if self._passthrough:
            return block[0].copy()
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(block), format=self._format, layout=self._layout
        )
        frame.sample_rate = self._rate
        return self._resampler.convert(frame)


def _join(head: np.ndarray, tail: np.ndarray) -> np.ndarray:
    if not head.size:
        return tail
    return np.concatenate([head, tail]) if tail.size else head
