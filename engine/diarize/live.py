"""Shared microphones on the live path: one online diarizer per stream, batched.

Why this shape: a shared-microphone stream goes through the VAD (and the bleed stage)
like any other; what changes is who its speech is given to. Its *raw* VAD speech (closed
segments, plus the segment still open once it is long enough to count) is the
diarizer's mask, so labels need not wait for a long turn to end: a hop's label is final
within the diarizer's `latency_s` of the VAD deciding the hop. Each sub-speaker's label
runs are then cut to the parent's bleed-cleaned speech and become that sub-participant's
segments. `engine.offline` does exactly the same with whole files, so both paths give
the same segments on the same audio (tests/test_live_shared_mic.py).

Threading, as in `engine.live`: the executor side (`add_audio`, `add_vad`, `mark`,
`step_mics`: one batched embedding call for every shared-microphone stream of the
engine) and the loop side (`add_cleaned`, `settle_cleaned`, `advance`,
`open_segments`) touch disjoint fields; committed labels cross over in `outbox`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.diarize.cluster import speaker_name
from engine.diarize.embed import SpeakerEmbedder
from engine.diarize.online import NOBODY, Labels, SharedMicDiarizer
from engine.types import HOP, SpeechSegment


@dataclass(frozen=True, slots=True)
class SubUpdate:
    """What `advance` found: sub-participants heard for the first time, their new final
    segments, and the hop before which each sub-participant's speech is settled."""

    joined: tuple[str, ...]
    segments: dict[str, list[SpeechSegment]]
    settled: dict[str, int]


@dataclass(slots=True)
class SharedMicStream:
    """One shared-microphone stream: its diarizer and the sub-participants it made."""

    parent: str  # the stream's pseudonym; sub-participants are parent/A, parent/B, ...
    diarizer: SharedMicDiarizer
    bleed: bool  # the session removes bleed: cut labels to the parent's cleaned speech
    # -- executor side --
    base: int = -1  # session hop of the diarizer's hop 0 (the stream's first audio)
    audio: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (hop, (n, HOP))
    raw: list[SpeechSegment] = field(default_factory=list)  # VAD segments not yet pushed
    open_seg: SpeechSegment | None = None
    final: int = 0  # session hop before which the VAD's mask is final
    ending: bool = False  # the stream's audio has ended: commit every label now
    outbox: list[Labels] = field(default_factory=list)  # committed, in session hops
    # -- loop side --
    names: list[str] = field(default_factory=list)  # sub-participants heard so far
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int8))
    done: int = -1  # session hop: labels before it have become segments
    open_runs: dict[int, int] = field(default_factory=dict)  # sub -> start of its run
    cleaned: list[SpeechSegment] = field(default_factory=list)  # parent, bleed removed
    cleaned_until: int = 0

    def __post_init__(self) -> None:
        if not self.names:
            self.names.append(speaker_name(self.parent, 0))  # a silent mic stays listed

    @property
    def committed(self) -> int:
        return self.done + self.labels.shape[0]

    # -- executor side ---------------------------------------------------------------
    def add_audio(self, hop: int, hops: np.ndarray) -> None:
        """(n, HOP) int16 hops the VAD has seen, starting at session hop `hop`."""
        if self.base < 0:
            self.base = hop
        self.audio.append((hop, hops))

    def add_vad(self, segments: Sequence[SpeechSegment]) -> None:
        """The stream's newly closed VAD segments (session hops, before bleed removal)."""
        self.raw.extend(segments)

    def mark(self, final: int, open_seg: SpeechSegment | None, *, ending: bool) -> None:
        """How far the VAD mask is final (the open segment's hops are final speech)."""
        self.open_seg = open_seg
        self.final = max(self.final, final, open_seg.end if open_seg is not None else 0)
        self.ending = self.ending or ending

    def take(self) -> tuple[np.ndarray, np.ndarray]:
        """Hops and speech mask from where the diarizer stands to where the mask is final.
        Hops without audio (a gap) are zeros and not speech."""
        if self.base < 0:
            return np.zeros((0, HOP), np.int16), np.zeros(0, np.bool_)
        lo = self.base + self.diarizer.state.hops_in
        n = max(self.final - lo, 0)
        hi = lo + n
        hops = np.zeros((n, HOP), np.int16)
        speech = np.zeros(n, np.bool_)
        keep = []
        for h0, block in self.audio:
            a, b = max(h0, lo), min(h0 + block.shape[0], hi)
            if b > a:
                hops[a - lo : b - lo] = block[a - h0 : b - h0]
            if h0 + block.shape[0] > hi:
                keep.append((h0, block))
        self.audio = keep
        opened = [self.open_seg] if self.open_seg is not None else []
        for seg in [*self.raw, *opened]:
            speech[max(seg.start, lo) - lo : max(min(seg.end, hi) - lo, 0)] = True
        self.raw = [s for s in self.raw if s.end > hi]
        return hops, speech

    # -- loop side ---------------------------------------------------------------------
    def add_cleaned(self, segments: Sequence[SpeechSegment]) -> None:
        self.cleaned.extend(segments)

    def settle_cleaned(self, hop: int) -> None:
        self.cleaned_until = max(self.cleaned_until, hop)

    def take_labels(self) -> None:
        """Move what the executor committed to the loop side."""
        n = len(self.outbox)  # the executor may append meanwhile: take only these
        got = self.outbox[:n]
        del self.outbox[:n]
        for lab in got:
            if self.done < 0:
                self.done = lab.start
            if lab.start != self.committed:
                raise RuntimeError(f"labels from {lab.start}, expected {self.committed}")
            self.labels = np.concatenate([self.labels, lab.speakers])

    def advance(self, *, final: bool = False) -> SubUpdate:
        """Committed labels (cut to the cleaned speech, with bleed on) -> segments of each
        sub-participant, as far as both are final. `final`: the session has ended."""
        self.take_labels()
        if self.done < 0:
            return SubUpdate((), {}, {})
        until = self.committed
        if self.bleed and not final:
            until = min(until, max(self.cleaned_until, self.done))
        n = until - self.done
        block = self.labels[:n]
        if self.bleed:
            mask = np.zeros(n, np.bool_)
            for seg in self.cleaned:
                mask[max(seg.start - self.done, 0) : max(min(seg.end - self.done, n), 0)] = True
            block = np.where(mask[:, None], block, np.int8(NOBODY))
            self.cleaned = [s for s in self.cleaned if s.end > until]
        heard = int(block.max()) + 1 if block.size else 0
        joined = []
        while len(self.names) < heard:
            self.names.append(speaker_name(self.parent, len(self.names)))
            joined.append(self.names[-1])
        segments: dict[str, list[SpeechSegment]] = {}
        for k, name in enumerate(self.names):
            segs = segments.setdefault(name, [])
            carried = self.open_runs.pop(k, None)  # its run reached the previous block's end
            if n == 0:
                if carried is not None and final:
                    segs.append(SpeechSegment(carried, self.done))
                elif carried is not None:
                    self.open_runs[k] = carried
                continue
            on = np.any(block == k, axis=1).astype(np.int8)
            edges = np.flatnonzero(np.diff(np.concatenate([[0], on, [0]])))
            runs = [
                (self.done + int(a), self.done + int(b))
                for a, b in zip(edges[::2], edges[1::2], strict=True)
            ]
            if carried is not None:
                if runs and runs[0][0] == self.done:
                    runs[0] = (carried, runs[0][1])
                else:
                    segs.append(SpeechSegment(carried, self.done))
            for a, b in runs:
                if b == until and not final:
                    self.open_runs[k] = a
                else:
                    segs.append(SpeechSegment(a, b))
        self.labels = self.labels[n:]
        self.done = until
        settled = {name: self.open_runs.get(k, until) for k, name in enumerate(self.names)}
        return SubUpdate(tuple(joined), segments, settled)

    def open_segments(self) -> dict[str, SpeechSegment | None]:
        """Each sub-participant's speech in progress (committed labels not yet final
        segments, bleed not yet removed): for shares and 'speaking' in snapshots."""
        out: dict[str, SpeechSegment | None] = dict.fromkeys(self.names)
        if self.done < 0 or not self.labels.shape[0]:
            for k, start in self.open_runs.items():
                out[self.names[k]] = SpeechSegment(start, self.done) if self.done > start else None
            return out
        for k, name in enumerate(self.names):
            on = np.any(self.labels == k, axis=1)
            if not on[-1]:
                continue
            off = np.flatnonzero(~on)
            r = int(off[-1]) + 1 if off.size else 0
            start = self.open_runs.get(k, self.done) if r == 0 else self.done + r
            out[name] = SpeechSegment(start, self.committed)
        return out


def step_mics(embedder: SpeakerEmbedder, mics: Sequence[SharedMicStream]) -> None:
    """Executor side: push every stream's newly final hops, embed all their windows in one
    call, commit labels to each stream's outbox; flush the streams whose audio ended."""
    cut = []
    for m in mics:
        hops, speech = m.take()
        cut.append(m.diarizer.push(hops, speech) if hops.shape[0] else [])
    embs = embedder.embed([w for ws in cut for w in ws])
    i = 0
    for m, ws in zip(mics, cut, strict=True):
        _post(m, m.diarizer.accept(embs[i : i + len(ws)]))
        i += len(ws)
        if m.ending:
            m.ending = False
            _post(m, m.diarizer.flush())


def _post(m: SharedMicStream, labels: Labels) -> None:
    if labels.speakers.shape[0]:
        m.outbox.append(Labels(labels.start + m.base, labels.speakers))
