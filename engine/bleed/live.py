"""Speaker-bleed suppression on the live path: the offline result, streamed.

Offline (`engine.offline._suppress_bleed`) runs `BleedSuppressor` over the whole
session, tidies each stream's bleed mask with look-ahead (`tidy_mask`) and cuts the
bleed out of the final VAD segments (`remove_hops`). `LiveBleed` does the same while
a session runs, so live and offline give the same segments on the same audio:

- the detector steps over aligned blocks of hops [done, until), where `until` is how
  far every stream's speech mask and levels are final (the caller knows: the VAD's
  settled hop, or the end of a segment in progress); the detector is chunk-invariant;
- `StreamingTidy` is `tidy_mask` as a stream: it holds at most `fill + min_run - 1`
  hops back (its look-ahead) and equals `tidy_mask` on the whole mask;
- a final VAD segment is cleaned and released once the tidy mask is final past its
  end, and `settled()` tells the signal tracker how far a stream's cleaned speech is
  final, accounting for that delay.

Hops with no level (before a stream joined, in long gaps, after it left) count as
the floor level with no speech, as for a stream that was silent; hops of audio lost in
transit (`add_lost`) hold the level before them. Per step the work is numpy over the
new hops only, plus one kernel call for the whole session.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.bleed.suppress import BleedSuppressor, remove_hops
from engine.config import BleedConfig
from engine.types import SpeechSegment

__all__ = ["LiveBleed", "StreamingTidy"]


def _run_lengths(mask: np.ndarray) -> list[tuple[bool, int]]:
    n = mask.shape[0]
    if n == 0:
        return []
    change = np.flatnonzero(mask[1:] != mask[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [n]])
    return list(zip(mask[starts].tolist(), (ends - starts).tolist(), strict=True))


@dataclass(slots=True)
class StreamingTidy:
    """`tidy_mask` over a mask that arrives in pieces: fill gaps of at most `fill_hops`
    between bleed hops, then drop runs shorter than `min_run_hops`.

    Each stage holds back only the run whose fate is still open (a gap that may yet be
    closed by a bleed hop, a run that may yet grow long enough), so the output lags
    the input by at most `fill_hops + min_run_hops - 1` hops. `finish()` applies the
    rule at the end of the mask (a trailing gap is not filled, a short trailing run is
    dropped). Works over runs, not hops: numpy to find them, a few steps per run.
    """

    fill_hops: int
    min_run_hops: int
    seen_true: bool = False  # a bleed hop came before: a gap can be filled
    gap: int = 0  # stage 1: false hops held (a gap that may still be filled)
    gap_dead: bool = False  # the current false run cannot be filled: pass it through
    run: int = 0  # stage 2: true hops held (a run that may still be too short)
    run_long: bool = False  # the current true run is long enough: pass it through
    fed: int = 0
    emitted: int = 0

    def __post_init__(self) -> None:
        if self.fill_hops < 0 or self.min_run_hops < 0:
            raise ValueError("fill_hops and min_run_hops must be >= 0")

    def push(self, mask: np.ndarray) -> np.ndarray:
        """Feed the next hops of the mask; return the next hops of the tidy mask."""
        if mask.ndim != 1:
            raise ValueError(f"mask must be 1-D, got shape {mask.shape}")
        n = mask.shape[0]
        if self.gap_dead and not self.run and not mask.any():  # the common case: no bleed
            self.fed += n
            self.emitted += n
            return np.zeros(n, np.bool_)
        out: list[tuple[bool, int]] = []
        for value, length in _run_lengths(np.asarray(mask, np.bool_)):
            self._fill(value, length, out)
        self.fed += mask.shape[0]
        return self._emit(out)

    def skip(self, n: int) -> bool:
        """`push` of `n` False hops where nothing is held: True if done (the output is
        `n` False hops, like the input); False if something is held (call `push`)."""
        if not self.gap_dead or self.run:
            return False
        self.fed += n
        self.emitted += n
        return True

    def finish(self) -> np.ndarray:
        """The mask has ended: release what is held, with the end-of-mask rule."""
        out: list[tuple[bool, int]] = []
        if self.gap:
            self._drop(False, self.gap, out)
            self.gap = 0
        if self.run:
            out.append((False, self.run))
            self.run = 0
        self.run_long = False
        self.gap_dead = True
        return self._emit(out)

    @property
    def held(self) -> int:
        return self.fed - self.emitted

    def reset(self) -> None:
        self.seen_true = False
        self.gap = 0
        self.gap_dead = False
        self.run = 0
        self.run_long = False
        self.fed = 0
        self.emitted = 0

    def _fill(self, value: bool, length: int, out: list[tuple[bool, int]]) -> None:
        if value:
            if self.gap:  # held only while fillable: closed by this run, so filled
                self._drop(True, self.gap, out)
                self.gap = 0
            self._drop(True, length, out)
            self.seen_true = True
            self.gap_dead = False
        elif self.gap_dead:
            self._drop(False, length, out)
        else:
            self.gap += length
            if not self.seen_true or self.gap > self.fill_hops:
                self._drop(False, self.gap, out)
                self.gap = 0
                self.gap_dead = True

    def _drop(self, value: bool, length: int, out: list[tuple[bool, int]]) -> None:
        if value:
            if self.run_long:
                out.append((True, length))
                return
            self.run += length
            if self.run >= self.min_run_hops:
                out.append((True, self.run))
                self.run = 0
                self.run_long = True
        else:
            if self.run:  # a run that ended too short
                out.append((False, self.run))
                self.run = 0
            self.run_long = False
            out.append((False, length))

    def _emit(self, out: list[tuple[bool, int]]) -> np.ndarray:
        if not out:
            return np.zeros(0, np.bool_)
        values = np.array([v for v, _ in out], np.bool_)
        lengths = np.array([n for _, n in out], np.int64)
        self.emitted += int(lengths.sum())
        return np.repeat(values, lengths)


@dataclass(slots=True)
class _Stream:
    """One participant's share of the session's bleed stage."""

    tidy: StreamingTidy
    mask_base: int  # session hop of mask[0]
    row: int  # this stream's row in the session's level buffer (and the detector)
    queue: deque[SpeechSegment] = field(default_factory=deque)  # final, not yet cleaned
    mask: np.ndarray = field(default_factory=lambda: np.zeros(0, np.bool_))  # tidy, final
    dom: np.ndarray = field(default_factory=lambda: np.zeros(0, np.bool_))  # from dom_base
    dom_base: int = 0  # session hop of dom[0]
    last_end: int = -1
    open_start: int | None = None  # start of a segment in progress (still to be added)
    lost: list[tuple[int, int]] = field(default_factory=list)  # hops whose level is held
    last_level: float | None = None  # level of the hop before `done`

    @property
    def mask_end(self) -> int:
        return self.mask_base + self.mask.shape[0]

    def reset(self, base: int = 0) -> None:
        self.tidy.reset()
        self.mask_base = base
        self.queue.clear()
        self.mask = np.zeros(0, np.bool_)
        self.dom = np.zeros(0, np.bool_)
        self.dom_base = base
        self.last_end = -1
        self.open_start = None
        self.lost.clear()
        self.last_level = None


class LiveBleed:
    """One session's live bleed stage, between the VAD's final segments and the signals.

    Feed per stream: `add_levels` or `add_level_pieces` (per-hop dBFS from
    `ParticipantPipeline.keep_levels`, placed at session hops; needed only before the
    `advance` that covers them) and `add_segments` (final VAD segments, in order). Call
    `advance(until)` once every stream's speech and levels before `until` are final;
    `take()` returns the cleaned segments released since, and `settled()` how far a
    stream's cleaned speech is final. `finish(end)` at the end of the session releases
    everything. Results equal the offline suppression of the whole session however
    the calls are chunked (tests/test_live_bleed.py).
    """

    def __init__(
        self, config: BleedConfig, min_speech_hops: int, min_silence_hops: int = 0
    ) -> None:
        if min_speech_hops < 0 or min_silence_hops < 0:
            raise ValueError(
                f"min_speech_hops and min_silence_hops must be >= 0, got "
                f"{min_speech_hops}, {min_silence_hops}"
            )
        self.config = config
        self.min_speech_hops = min_speech_hops
        self.min_silence_hops = min_silence_hops
        self.keys: list[str] = []
        self._streams: dict[str, _Stream] = {}
        self._suppressor: BleedSuppressor | None = None
        self.done = 0  # hops before this have been through the detector
        self._cleaned: dict[str, list[SpeechSegment]] = {}
        self._levels = np.zeros((0, 0), np.float32)
        """Per stream and hop from `done` on, dBFS (the floor where none came): written
        as levels arrive, so a step copies one block instead of many small arrays."""
        self._level_end = 0  # columns from here on were never written: all floor

    # -- streams ---------------------------------------------------------------------
    def add_stream(self, key: str) -> None:
        """Register a stream (idempotent). A stream that joins late counts as silent
        (floor level, no speech) before it joined, so the detector is grown exactly:
        the others' history is kept and the result is what a session-long run over a
        silent track would give."""
        if key in self._streams:
            return
        self._streams[key] = _Stream(
            tidy=StreamingTidy(self.config.fill_gap_hops, self.config.min_run_hops),
            mask_base=self.done,
            row=len(self.keys),
            dom_base=self.done,
        )
        self.keys.append(key)
        floor = np.full((1, self._levels.shape[1]), self.config.floor_dbfs, np.float32)
        self._levels = np.vstack([self._levels, floor])
        self._cleaned[key] = []
        self._suppressor = self._grown(self._suppressor, len(self.keys))

    def _grown(self, old: BleedSuppressor | None, n: int) -> BleedSuppressor:
        new = BleedSuppressor(n, self.config)
        if old is None or old.hops_seen == 0:
            return new  # nothing seen yet: nothing to carry over
        a, b = old.state, new.state
        m = old.n_streams
        b.t[:] = a.t
        b.hist_env[:m] = a.hist_env
        b.hist_env[m:] = self.config.floor_dbfs  # a silent stream sits at the floor
        b.hist_speech[:m] = a.hist_speech
        b.hist_diff[:m] = a.hist_diff
        b.hist_mom[:m] = a.hist_mom
        b.cross[:m, :m] = a.cross  # products with a flat stream's change are 0
        return new

    def add_levels(self, key: str, start_hop: int, levels: np.ndarray) -> None:
        """Per-hop levels (dBFS) of `key`'s audio from session hop `start_hop` on."""
        if levels.ndim != 1:
            raise ValueError(f"levels must be 1-D, got shape {levels.shape}")
        st = self._streams[key]
        a = start_hop - self.done  # the buffer starts at `done`
        b = a + levels.shape[0]
        if b <= 0:
            return  # too late for the detector (counted as the floor)
        if a < 0:
            levels, a = levels[-a:], 0
        if b > self._levels.shape[1]:
            self._levels = self._grow(b)
        self._levels[st.row, a:b] = levels  # later levels overwrite earlier ones
        if b > self._level_end:
            self._level_end = b

    def _grow(self, size: int) -> np.ndarray:
        old = self._levels
        cols = max(size, 2 * old.shape[1], 32)
        grown = np.full((old.shape[0], cols), self.config.floor_dbfs, np.float32)
        grown[:, : self._level_end] = old[:, : self._level_end]
        return grown

    def add_level_pieces(self, key: str, pieces: Sequence[tuple[int, np.ndarray]]) -> None:
        """`add_levels` of each (start_hop, levels) piece in order. Pieces that follow on
        from each other (a tick's worth each, a step's worth held) are written as one."""
        i, n = 0, len(pieces)
        while i < n:
            start, levels = pieces[i]
            end, j = start + levels.shape[0], i + 1
            while j < n and pieces[j][0] == end and levels.ndim == pieces[j][1].ndim == 1:
                end += pieces[j][1].shape[0]
                j += 1
            if j > i + 1:  # back to back, so no piece overwrites another: one write
                levels = np.concatenate([lv for _, lv in pieces[i:j]])
            self.add_levels(key, start, levels)
            i = j

    def add_lost(self, key: str, start_hop: int, end_hop: int) -> None:
        """Hops [start_hop, end_hop) of `key` were lost in transit (and bridged with
        zeros for the VAD): the detector holds the level of the hop before across them.
        A -90 dB dip would swamp the envelope's correlation for a whole window, and with
        a packet or two lost a second that hides most bleed. (Offline has no loss.)"""
        if end_hop > max(start_hop, self.done):
            self._streams[key].lost.append((start_hop, end_hop))

    def add_segments(self, key: str, segments: Iterable[SpeechSegment]) -> None:
        """Final VAD segments of `key`, in order, not overlapping."""
        st = self._streams[key]
        for seg in segments:
            if seg.start < st.last_end or seg.end <= seg.start:
                raise ValueError(f"{key}: segments must be non-empty, in order, not overlapping")
            st.queue.append(seg)
            st.last_end = seg.end

    # -- stepping --------------------------------------------------------------------
    def advance(
        self, until: int, speaking: Mapping[str, SpeechSegment | None] | None = None
    ) -> None:
        """Run the detector over [done, until): every stream's speech and levels there
        must be final. `speaking` holds segments still open whose hops are final speech
        up to their end (a VAD segment in progress that is already long enough)."""
        n = until - self.done
        if n <= 0 or self._suppressor is None:
            return
        lo = self.done
        env = np.full((len(self.keys), n), self.config.floor_dbfs, np.float32)
        speech = np.zeros((len(self.keys), n), np.bool_)
        speaking = speaking or {}
        if self._level_end:
            self._take_levels(env, n)
        for k, key in enumerate(self.keys):
            st = self._streams[key]
            if st.lost:
                self._hold(st, env[k], lo, until)
            for seg in st.queue:
                a, b = max(seg.start, lo), min(seg.end, until)
                if b > a:
                    speech[k, a - lo : b - lo] = True
            open_seg = speaking.get(key)
            st.open_start = None if open_seg is None else open_seg.start
            if open_seg is not None:
                a, b = max(open_seg.start, lo, st.last_end), min(open_seg.end, until)
                if b > a:
                    speech[k, a - lo : b - lo] = True
        mask = self._suppressor.step(env, speech)
        dominated = self._suppressor.last_dominated
        # per stream: whole-block answers in one call each, not one small call per row
        last: list[float] = env[:, -1].tolist()
        any_dom: list[bool] = np.logical_or.reduce(dominated, axis=1).tolist()
        any_bleed: list[bool] = np.logical_or.reduce(mask, axis=1).tolist()
        for k, key in enumerate(self.keys):
            st = self._streams[key]
            st.last_level = last[k]
            if st.dom.shape[0] or any_dom[k]:
                st.dom = np.concatenate([st.dom, dominated[k]])
            else:  # nothing held and nothing dominated: move the base instead
                st.dom_base = until
            if not any_bleed[k] and st.tidy.skip(n):  # no bleed in, none held: all False
                if st.mask.shape[0]:
                    st.mask = np.concatenate([st.mask, np.zeros(n, np.bool_)])
                else:
                    st.mask_base += n
                continue
            tidy = st.tidy.push(mask[k])
            if st.mask.shape[0] or tidy.any():
                st.mask = np.concatenate([st.mask, tidy])
            else:  # nothing held and no bleed: move the base instead of storing False
                st.mask_base += tidy.shape[0]
        self.done = until
        self._release(final=False)

    def _take_levels(self, env: np.ndarray, n: int) -> None:
        """Copy the next `n` hops of levels into `env` and shift the rest down (the
        buffer starts at `done`); what was never written stays at the floor."""
        buf, end = self._levels, self._level_end
        m = min(n, end)
        env[:, :m] = buf[:, :m]
        rest = end - n
        if rest > 0:
            buf[:, :rest] = buf[:, n:end]
            buf[:, rest:end] = self.config.floor_dbfs
            self._level_end = rest
        else:
            buf[:, :end] = self.config.floor_dbfs
            self._level_end = 0

    @staticmethod
    def _hold(st: _Stream, row: np.ndarray, lo: int, until: int) -> None:
        keep = []
        for a, b in sorted(st.lost):
            x, y = max(a, lo), min(b, until)
            if y > x:
                before = row[x - lo - 1] if x > lo else st.last_level
                if before is not None:
                    row[x - lo : y - lo] = before
            if b > until:
                keep.append((a, b))
        st.lost = keep

    def finish(self, end_hop: int) -> None:
        """End of session: every segment has been added; clean and release them all."""
        self.advance(end_hop)
        for st in self._streams.values():
            st.mask = np.concatenate([st.mask, st.tidy.finish()])
        self._release(final=True)

    def _release(self, *, final: bool) -> None:
        for key, st in self._streams.items():
            end = st.mask_end
            out = self._cleaned[key]
            while st.queue and (final or st.queue[0].end <= end):
                out.extend(self._clean(st, st.queue.popleft()))
            # keep the mask from where a segment still to be cleaned may start
            base = min(st.queue[0].start, end) if st.queue else end
            if st.open_start is not None:
                base = min(base, st.open_start)
            if base > st.mask_base:
                st.mask = st.mask[base - st.mask_base :]
                st.mask_base = base
            if base > st.dom_base:
                st.dom = st.dom[base - st.dom_base :]
                st.dom_base = base

    def _clean(self, st: _Stream, seg: SpeechSegment) -> list[SpeechSegment]:
        """`remove_hops` on one segment; hops with no final mask are not bleed."""
        removed = np.zeros(seg.end - seg.start, np.bool_)
        a, b = max(seg.start, st.mask_base), min(seg.end, st.mask_end)
        if b > a:
            removed[a - seg.start : b - seg.start] = st.mask[a - st.mask_base : b - st.mask_base]
        dom = np.zeros(seg.end - seg.start, np.bool_)
        a, b = max(seg.start, st.dom_base), min(seg.end, st.dom_base + st.dom.shape[0])
        if b > a:
            dom[a - seg.start : b - seg.start] = st.dom[a - st.dom_base : b - st.dom_base]
        pieces = remove_hops(
            [SpeechSegment(0, seg.end - seg.start)],
            removed,
            self.min_speech_hops,
            dom,
            self.min_silence_hops,
        )
        return [SpeechSegment(p.start + seg.start, p.end + seg.start) for p in pieces]

    # -- results ---------------------------------------------------------------------
    def take(self) -> dict[str, list[SpeechSegment]]:
        """Cleaned segments released since the last call, per stream, in order."""
        out = {k: v for k, v in self._cleaned.items() if v}
        for k in out:
            self._cleaned[k] = []
        return out

    def settled(self, key: str, vad_settled: int) -> int:
        """Hop before which `key`'s cleaned speech is final, given the VAD's: a segment
        still waiting for its tidy mask starts no earlier than where it starts."""
        st = self._streams[key]
        return min(vad_settled, st.queue[0].start) if st.queue else vad_settled

    @property
    def held_hops(self) -> int:
        """Hops of the tidy look-ahead held back, at most (a latency figure)."""
        return max((st.tidy.held for st in self._streams.values()), default=0)

    def reset(self) -> None:
        """Forget every stream and all history (a new session)."""
        self.keys.clear()
        self._streams.clear()
        self._cleaned.clear()
        self._suppressor = None
        self._levels = np.zeros((0, 0), np.float32)
        self._level_end = 0
        self.done = 0
