"""The one protocol every VAD backend follows, and hangover smoothing to segments.

A backend is shared and immutable (an ONNX session, filter coefficients); each
participant gets a private stream state from `open_stream()`. `process` takes a
batch of streams at once so a backend can do one kernel call or one inference
for all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from engine.config import VadConfig
from engine.types import HOP, SpeechSegment
from engine.vad import kernels

_OPEN, _START, _END = kernels.H_SEG_OPEN, kernels.H_SEG_START, kernels.H_LAST_END


@runtime_checkable
class VadStreamState(Protocol):
    """Private per-stream state of one backend."""

    def reset(self) -> None: ...


@runtime_checkable
class VadBackend(Protocol):
    """Speech probability per 10 ms hop, for a batch of streams per call."""

    name: str

    def open_stream(self) -> VadStreamState: ...

    def process(
        self, states: Sequence[VadStreamState], hops: Sequence[np.ndarray]
    ) -> list[np.ndarray]:
        """hops[i] is int16 (n_i, HOP) for states[i]; returns float32 probabilities.

        A backend whose model looks at windows longer than a hop may return fewer
        probabilities than hops (they follow on later calls or on `flush`), but the
        probabilities it returns depend only on the samples, never on the chunking.
        """
        ...

    def flush(self, state: VadStreamState) -> np.ndarray:
        """End of stream: the probabilities still owed for hops already given."""
        ...


def check_hops(hops: np.ndarray) -> None:
    if hops.dtype != np.int16 or hops.ndim != 2 or hops.shape[1] != HOP:
        raise ValueError(f"hops must be int16 of shape (n, {HOP}), got {hops.dtype} {hops.shape}")


class ProcessFlat(Protocol):
    """A backend's optional `process_flat(states, hops, counts)`: `process` for hops
    already in one array, stream after stream (`counts[i]` of `states[i]`), returning
    every stream's probabilities in one array and how many each stream got. The live
    engine's VAD step calls it where a backend has it, with no per-stream arrays."""

    def __call__(
        self, states: Sequence[VadStreamState], hops: np.ndarray, counts: Sequence[int]
    ) -> tuple[np.ndarray, list[int]]: ...


def process_by_flat(
    process_flat: ProcessFlat, states: Sequence[VadStreamState], hops: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """`process` through a backend's `process_flat`: the hops joined, the results split."""
    if len(states) != len(hops):
        raise ValueError(f"{len(states)} states but {len(hops)} hop arrays")
    for h in hops:
        check_hops(h)
    flat = np.concatenate(hops) if hops else np.zeros((0, HOP), np.int16)
    out, counts = process_flat(states, flat, [h.shape[0] for h in hops])
    return np.split(out, np.cumsum(counts)[:-1]) if counts else []


def check_flat(hops: np.ndarray, counts: Sequence[int], n_states: int) -> np.ndarray:
    """A `process_flat` call's input checked (its kernels read rows by these counts);
    returns the counts as int64."""
    check_hops(hops)
    n_hops = np.array(counts, np.int64).reshape(-1)
    if n_states != n_hops.shape[0] or int(n_hops.sum()) != hops.shape[0]:
        counted = int(n_hops.sum())
        raise ValueError(f"{n_states} states, {counted} hops counted, {hops.shape[0]} given")
    if n_hops.size and n_hops.min() < 0:
        raise ValueError(f"hop counts must be >= 0, got {int(n_hops.min())}")
    return n_hops


@dataclass(slots=True)
class Hangover:
    """Streaming hysteresis + gap bridging + short-run removal, as an explicit state."""

    config: VadConfig
    _state: np.ndarray = field(init=False)
    _out: np.ndarray = field(init=False)
    _open: SpeechSegment | None = field(init=False, default=None)  # open_segment's last

    def __post_init__(self) -> None:
        self._state = np.zeros(kernels.HANGOVER_STATE_SIZE, dtype=np.int64)
        self._out = np.zeros((1025, 2), dtype=np.int64)

    def push(self, probs: np.ndarray) -> list[SpeechSegment]:
        """Feed probabilities in hop order; return the segments that closed."""
        cap = self._out.shape[0] - 1
        if probs.shape[0] <= cap:  # the live case, a tick's hops: one call, no loop
            return self._step(probs)
        segments: list[SpeechSegment] = []
        for start in range(0, probs.shape[0], cap):
            segments.extend(self._step(probs[start : start + cap]))
        return segments

    def push_uniform(self, n: int, n_active: int) -> bool:
        """Feed `n` probabilities of which `n_active` reach the onset (a float32
        probability against the float64 threshold, as the kernel compares), when the
        count alone decides what `push` would do: all below with no segment open (only
        the clock moves) or all at or above (a run starts or goes on; nothing closes).
        Returns False, changing nothing, otherwise: then `push` them. A live tick's few
        hops per stream are mostly one of the two, and the kernel call cost more than
        its work."""
        st = self._state
        if n_active == 0 and not st[kernels.H_SEG_OPEN] and not st[kernels.H_RAW_ON]:
            st[kernels.H_T] += n
            return True
        if n_active == n:  # the offset is at or below the onset: every hop is active
            t = st[kernels.H_T]
            if not st[kernels.H_SEG_OPEN]:
                st[kernels.H_SEG_OPEN] = 1
                st[kernels.H_SEG_START] = t
            st[kernels.H_RAW_ON] = 1
            st[kernels.H_LAST_END] = st[kernels.H_T] = t + n
            return True
        return False

    def _step(self, probs: np.ndarray) -> list[SpeechSegment]:
        """At most len(_out) - 1 probabilities through the kernel."""
        c = self.config
        n = kernels.hangover_kernel(
            np.ascontiguousarray(probs, np.float32),
            self._state,
            c.threshold,
            c.threshold - c.hysteresis,
            c.min_speech_hops,
            c.min_silence_hops,
            self._out,
        )
        return [SpeechSegment(int(a), int(b)) for a, b in self._out[:n]] if n else []

    def flush(self) -> list[SpeechSegment]:
        """End of stream: close an open segment (if long enough) and reset."""
        st = self._state
        segments = []
        if (
            st[kernels.H_SEG_OPEN]
            and st[kernels.H_LAST_END] - st[kernels.H_SEG_START] >= self.config.min_speech_hops
        ):
            segments.append(
                SpeechSegment(int(st[kernels.H_SEG_START]), int(st[kernels.H_LAST_END]))
            )
        st[kernels.H_SEG_OPEN] = 0
        st[kernels.H_RAW_ON] = 0
        return segments

    @property
    def hops_seen(self) -> int:
        return int(self._state[kernels.H_T])

    def open_segment(self) -> SpeechSegment | None:
        """The segment in progress, once it is long enough to count, else None.

        Asked of every speaking participant several times a tick (the pass, the bleed
        step, a snapshot): the last answer is kept while the segment is unchanged, since
        building a frozen SpeechSegment cost more than the rest of the tick's work on it."""
        st = self._state.tolist()
        if not st[_OPEN]:
            return None
        start, end = st[_START], st[_END]
        if end - start < self.config.min_speech_hops:
            return None
        seg = self._open
        if seg is None or seg.end != end or seg.start != start:
            seg = self._open = SpeechSegment(start, end)
        return seg

    def has_open_segment(self) -> bool:
        """`open_segment() is not None`, without building the segment."""
        st = self._state.tolist()
        return bool(st[_OPEN]) and st[_END] - st[_START] >= self.config.min_speech_hops

    def settled_until(self) -> int:
        """Hops before this are final: every segment starting earlier has been returned
        by `push` (the open one, if any, starts here or later)."""
        st = self._state
        return int(st[kernels.H_SEG_START] if st[kernels.H_SEG_OPEN] else st[kernels.H_T])

    @property
    def in_speech(self) -> bool:
        """True while a segment is open (speech now, or a gap not yet long enough to end it)."""
        return bool(self._state[kernels.H_SEG_OPEN])

    def reset(self) -> None:
        self._state.fill(0)
