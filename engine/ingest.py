"""One live stream's ingress: config validation, ordering by capture time, warnings.

Frames are ordered by their capture timestamps in a small jitter buffer: the next frame
in sequence goes on at once, and a frame after a missing one waits for it up to the
jitter window, so network jitter and reordering never create fake overlaps or silences.
A hole in the timeline is "unknown", not silence. Nothing here decodes or analyses audio.
"""

from __future__ import annotations

import heapq
import re
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

from engine.errors import StreamFormatError

SESSION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
MAX_REF_LEN = 256
MAX_SPEAKERS = 26  # sub-participants are named A-Z
DEFAULT_MAX_SPEAKERS = 8


class Codec(StrEnum):
    PCM16LE = "pcm16le"
    OPUS = "opus"


class Role(StrEnum):
    PARTICIPANT = "participant"
    FACILITATOR = "facilitator"


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamSpec:
    """A validated StreamConfig, in domain terms."""

    session_id: str
    participant_ref: str
    role: Role
    codec: Codec
    sample_rate: int
    channels: int
    affect_consent: bool = False
    shared_microphone: bool = False
    max_speakers: int = 0  # shared microphones only; 0: the engine's default
    expected_speakers: int = 0  # shared microphones only; 0: unknown
    rtp_clock_rate: int = 0
    rtp_timestamp_base: int = 0
    rtp_base_capture_ms: int = 0

    def __post_init__(self) -> None:
        if not SESSION_ID.match(self.session_id):
            raise StreamFormatError(
                "session_id must be 1-128 characters of letters, digits and . _ : -"
            )
        if not self.participant_ref or len(self.participant_ref) > MAX_REF_LEN:
            raise StreamFormatError(f"participant_ref must be 1-{MAX_REF_LEN} characters")
        if not 8000 <= self.sample_rate <= 48000:
            raise StreamFormatError(f"sample_rate_hz must be 8000-48000, got {self.sample_rate}")
        if self.codec is Codec.OPUS and self.sample_rate not in (8000, 12000, 16000, 24000, 48000):
            raise StreamFormatError(
                f"sample_rate_hz {self.sample_rate} is not an Opus rate (8/12/16/24/48 kHz)"
            )
        if self.channels not in (1, 2):
            raise StreamFormatError(f"channels must be 1 or 2, got {self.channels}")
        if (self.max_speakers or self.expected_speakers) and not self.shared_microphone:
            raise StreamFormatError(
                "max_speakers and expected_speakers apply only with shared_microphone set"
            )
        if not 0 <= self.max_speakers <= MAX_SPEAKERS:
            raise StreamFormatError(
                f"max_speakers must be 1-{MAX_SPEAKERS} (or 0 for the default), "
                f"got {self.max_speakers}"
            )
        cap = self.max_speakers or DEFAULT_MAX_SPEAKERS
        if not 0 <= self.expected_speakers <= cap:
            raise StreamFormatError(
                f"expected_speakers must be 0-{cap} (at most max_speakers), "
                f"got {self.expected_speakers}"
            )
        if self.rtp_clock_rate and not 1000 <= self.rtp_clock_rate <= 192000:
            raise StreamFormatError(
                f"rtp_clock_rate must be 1000-192000, got {self.rtp_clock_rate}"
            )


class WarningKind(StrEnum):
    SEQUENCE_GAP = "sequence_gap"
    LATE_FRAME = "late_frame"
    REORDERED = "reordered"
    DUPLICATE = "duplicate"
    CLOCK_SKEW = "clock_skew"


@dataclass(frozen=True, slots=True)
class StreamWarning:
    kind: WarningKind
    sequence: int
    detail: str


class _Unordered:
    """Sorts neither before nor after anything: see `JitterBuffer._heap`."""

    __slots__ = ()

    def __lt__(self, other: object) -> bool:
        return False

    def __gt__(self, other: object) -> bool:
        return False


_Held = tuple[int, int, int | _Unordered, bytes]
RECENT_SEQUENCES = 1024  # sequence numbers remembered to spot duplicates


@dataclass(slots=True)
class JitterBuffer:
    """Orders frames by capture time; releases the next frame in sequence at once and
    any other once it is older than the jitter window.

    The window exists to wait for a frame that is missing: a frame whose sequence
    number follows the last one released can have nothing before it still to come, so
    holding it would only delay the live signals (by the whole window, 200 ms by
    default, on every frame of a healthy stream). A connection's first frame waits for
    the window, since frames before it may still arrive, and the frames after it with it.
    The next frame in sequence may share the last released frame's capture time (sub-ms
    chunks, a coarse clock): it is not late.

    `backwards_tolerance_ms`: a frame this far behind the newest one seen is not
    jitter but a broken clock, and is an error.
    """

    jitter_ms: int = 200
    backwards_tolerance_ms: int = 2000
    max_frames: int = 500
    # (capture ms, sequence, tie, payload): plain tuples, made and compared in C (an
    # order=True dataclass's generated __init__ and __lt__ ran in Python on every push
    # and pop). Frames order by (capture ms, sequence), never by payload: `tie` is 0 for
    # a sequence above all before it (no held frame can equal it), else an _Unordered,
    # so that a frame equal to a held one in both compares equal to it, as it did.
    _heap: list[_Held] = field(default_factory=list)
    _newest_ms: int = -1
    _released_ms: int = -1  # capture time of the last frame released
    _released_seq: int = -1  # its sequence number
    _max_seq: int = -1
    # The last RECENT_SEQUENCES sequence numbers remembered, oldest first: those in
    # `_old` (a set mirrors them), then the rising run `_run[_run_from:]`. An in-order
    # stream only appends to the run, looked up by bisection: no hashing per frame (a
    # set's add and discard per frame were a sixth of a push).
    _old: deque[int] = field(default_factory=deque)
    _old_set: set[int] = field(default_factory=set)
    _run: list[int] = field(default_factory=list)
    _run_from: int = 0
    _remembered: int = 0  # how many there are (at most RECENT_SEQUENCES)
    _top: int = -1  # no sequence number remembered is above this

    def push(self, sequence: int, capture_ms: int, payload: bytes) -> list[StreamWarning]:
        """Accept one frame; return warnings. Raises StreamFormatError for a broken clock."""
        warnings: list[StreamWarning] = []
        if self._seen(sequence):
            return [StreamWarning(WarningKind.DUPLICATE, sequence, "sequence seen before; dropped")]
        if self._newest_ms >= 0 and capture_ms < self._newest_ms - self.backwards_tolerance_ms:
            raise StreamFormatError(
                f"capture timestamps run backwards: frame {sequence} at {capture_ms} ms is "
                f"{self._newest_ms - capture_ms} ms behind the newest frame "
                f"(tolerance {self.backwards_tolerance_ms} ms)"
            )
        if capture_ms < self._released_ms or (  # the next in sequence may tie
            capture_ms == self._released_ms and sequence != self._released_seq + 1
        ):
            self._remember(sequence)
            return [
                StreamWarning(
                    WarningKind.LATE_FRAME,
                    sequence,
                    f"arrived after {capture_ms} ms was analysed (jitter window "
                    f"{self.jitter_ms} ms); dropped",
                )
            ]
        if self._max_seq >= 0:
            if sequence > self._max_seq + 1:
                warnings.append(
                    StreamWarning(
                        WarningKind.SEQUENCE_GAP,
                        sequence,
                        f"{sequence - self._max_seq - 1} frame(s) missing before {sequence}",
                    )
                )
            elif sequence < self._max_seq:
                warnings.append(
                    StreamWarning(WarningKind.REORDERED, sequence, "arrived out of order; used")
                )
        if len(self._heap) >= self.max_frames:
            raise StreamFormatError(
                f"more than {self.max_frames} frames buffered: capture timestamps are not "
                "advancing with the audio"
            )
        self._remember(sequence)
        tie: int | _Unordered = 0 if sequence > self._max_seq else _Unordered()
        self._max_seq = max(self._max_seq, sequence)
        self._newest_ms = max(self._newest_ms, capture_ms)
        heapq.heappush(self._heap, (capture_ms, sequence, tie, payload))
        return warnings

    def push_next(self, sequence: int, capture_ms: int, payload: bytes) -> int:
        """`push` for the usual frame, in fewer steps: the next sequence number, not seen
        before, not late, not too far back, room in the buffer, so nothing to warn about.
        Returns the frames now held; 0 if the frame is not such a one (nothing is done:
        `push` it)."""
        heap = self._heap
        if (
            sequence != self._max_seq + 1
            or capture_ms <= self._released_ms  # (so capture_ms >= 0 below)
            or capture_ms < self._newest_ms - self.backwards_tolerance_ms
            or len(heap) >= self.max_frames
        ):
            return 0
        if sequence <= self._top:  # may have been seen: a late frame is remembered
            return 0  # without raising _max_seq
        run = self._run  # it stays rising: this is above every sequence remembered
        run.append(sequence)
        self._top = sequence
        if self._remembered < RECENT_SEQUENCES:
            self._remembered += 1
        elif self._old:  # `_forget_oldest`, inline
            self._old_set.discard(self._old.popleft())
        else:
            start = self._run_from + 1
            if start >= RECENT_SEQUENCES:
                del run[:start]
                start = 0
            self._run_from = start
        self._max_seq = sequence
        if capture_ms > self._newest_ms:
            self._newest_ms = capture_ms
        heapq.heappush(heap, (capture_ms, sequence, 0, payload))
        return len(heap)

    def _seen(self, sequence: int) -> bool:
        if sequence > self._top:
            return False
        if sequence in self._old_set:
            return True
        run = self._run
        i = bisect_left(run, sequence, self._run_from)
        return i < len(run) and run[i] == sequence

    def _remember(self, sequence: int) -> None:
        """Only for a sequence number not `_seen`."""
        run, start = self._run, self._run_from
        if len(run) > start and sequence < run[-1]:  # the run ends: its numbers go to _old
            ended = run[start:]
            self._old.extend(ended)
            self._old_set.update(ended)
            run.clear()
            self._run_from = 0
        run.append(sequence)
        if sequence > self._top:
            self._top = sequence
        if self._remembered < RECENT_SEQUENCES:
            self._remembered += 1
        else:
            self._forget_oldest()

    def _forget_oldest(self) -> None:
        if self._old:
            self._old_set.discard(self._old.popleft())
            return
        start = self._run_from + 1
        if start >= RECENT_SEQUENCES:  # drop the forgotten head now and then, not each time
            del self._run[:start]
            start = 0
        self._run_from = start

    def release(self, *, drain: bool = False) -> list[tuple[int, int, bytes]]:
        """In capture order: frames older than the window, and after them any that follow
        the last released in sequence (all of them when draining)."""
        heap = self._heap
        out: list[tuple[int, int, bytes]] = []
        if not heap:
            return out
        limit = self._newest_ms - self.jitter_ms
        # -1: nothing released yet, so even a stream's first sequence number (0) waits
        after = self._released_seq + 1 if self._released_seq >= 0 else -1
        pop = heapq.heappop
        while heap and (drain or heap[0][0] <= limit or heap[0][1] == after):
            capture_ms, sequence, _, payload = pop(heap)
            out.append((capture_ms, sequence, payload))
            after = sequence + 1
        if out:
            self._released_ms = out[-1][0]
            self._released_seq = out[-1][1]
        return out

    def __len__(self) -> int:
        return len(self._heap)


@dataclass(slots=True)
class RtpClock:
    """RTP timestamps (32-bit, wrapping) to capture ms on the session clock."""

    clock_rate: int
    base_ts: int
    base_ms: int
    _last: int | None = None
    _unwrapped: int = 0

    def to_ms(self, rtp_ts: int) -> int:
        if self._last is None:
            delta = (rtp_ts - self.base_ts) % (1 << 32)
            if delta >= 1 << 31:
                delta -= 1 << 32
            self._unwrapped = delta
        else:
            step = (rtp_ts - self._last) % (1 << 32)
            if step >= 1 << 31:
                step -= 1 << 32
            self._unwrapped += step
        self._last = rtp_ts
        return self.base_ms + (self._unwrapped * 1000) // self.clock_rate
