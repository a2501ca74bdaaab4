"""Per-stream online diarization of a shared microphone into sub-participants.

How it works: the stream's speech hops (the VAD mask says which) are kept, silence
removed, in a ring of the last `window_s` of speech. Every `step_s` of speech a window is
cut whose last `lookahead_s` lies after the block of hops it labels, so a block's window
is roughly centred on it; the window is embedded (batched, by the shared
`SpeakerEmbedder`) and matched to the stream's centroids (`cluster.py`). When speech
stops for `flush_silence_s`, or a hop has waited nearly `latency_s`, the pending hops are
labelled from the newest window at once. With more latency, each decision also waits for
up to `smooth_windows` later windows: a new identity opens only if the next window
agrees it is new, and scores are averaged over neighbouring windows before the arg-max.

Labels commit in hop order and never change afterwards: `Labels(start, speakers)` gives,
for hops start.., up to two sub-speaker indices each (-1 = nobody).

Overlap: a hop is labelled with two speakers when the second-best centroid scores at least
`overlap_min` and within `overlap_margin` of the best (on by default, tuned on trn*; off
when `overlap_margin` is None). The encoder gives one embedding per window, so this only
catches overlaps where the window really sounds like both voices; otherwise an overlapped
hop gets its dominant voice. Measured: on trn* it labels 2 s of the 36 s of overlap (all
of them right); on dev* + sample 2.9 s, of which 0.75 s are overlap (silero, 1 s).

Stepping (live or offline), per stream and per tick:

    windows = diarizer.push(hops, speech)      # cheap, numpy only
    embs = embedder.embed(all streams' windows)  # one batched ONNX call, in an executor
    labels = diarizer.accept(embs_for_this_stream)

`step_streams` does those three for many streams with one inference call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.config import VadConfig
from engine.diarize.cluster import ClusterConfig, ClusterState, SpeakerClusterer
from engine.diarize.embed import SpeakerEmbedder
from engine.types import HOP, HOPS_PER_SECOND, SpeechSegment

NOBODY = -1


def shared_mic_vad(vad: VadConfig) -> VadConfig:
    """Voice detection for a shared microphone: more sensitive than for a headset.

    Why: a room microphone hears most people from afar, and a hop the VAD misses is
    missed speech whoever said it; on trn01-09 (silero) the default VAD left 29 % of
    the speech unheard. Tuned there only (groupsense eval diar --tune, with new_speaker
    0.65 kept): threshold 0.1 (off below 0.05) took the DER from 33.2 % to 25.7 % at
    1 s latency and from 32.0 % to 25.8 % at 5 s. Pauses are bridged as for everyone
    (min_silence_ms unchanged): bridging 1 s gained 4 more points on trn, but would count
    a shared mic's pauses as speech where a headset's are not, and skew shares between
    sub-participants and ordinary participants. The backend and its probabilities are
    shared; only the stream's hangover differs.
    """
    return dataclasses.replace(vad, threshold=0.1, hysteresis=0.05)


@dataclass(frozen=True, slots=True, kw_only=True)
class DiarizeConfig:
    window_s: float = 1.5
    step_s: float = 0.5
    lookahead_s: float = 0.5
    latency_s: float = 1.0
    flush_silence_s: float = 0.3
    smooth_windows: int | None = None  # None: as many as latency_s allows
    # second voice where two centroids score within overlap_margin (None: off); chosen on
    # trn* (groupsense eval diar --tune overlap): DER 24.6 -> 24.1 % at 1 s, 24.1 -> 23.7 %
    # at 5 s (silero)
    overlap_margin: float | None = 0.06
    overlap_min: float = 0.2
    # with look-ahead, the next window confirms a new identity if its best score is below
    # cluster.new_speaker + confirm_margin (None: no confirmation asked); 0.05 chosen with
    # new_speaker 0.32 on trn* and spliced trn* turns (--tune): 0.1 gave the same DER,
    # 0.0 (the earlier rule) 1.1 points more on trn* at 5 s
    confirm_margin: float | None = 0.05
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def __post_init__(self) -> None:
        for name in ("window_s", "step_s", "latency_s", "flush_silence_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.lookahead_s < 0:
            raise ValueError(f"lookahead_s must be >= 0, got {self.lookahead_s}")
        if self.step_s + self.lookahead_s > self.window_s:
            raise ValueError("step_s + lookahead_s must fit inside window_s")
        if self.step_s + self.lookahead_s > self.latency_s + 1e-9:
            raise ValueError(
                f"latency_s={self.latency_s} is below step_s + lookahead_s "
                f"({self.step_s + self.lookahead_s}): no label could be committed in time"
            )
        if self.smooth_windows is not None and self.smooth_windows < 0:
            raise ValueError("smooth_windows must be >= 0")
        if self.overlap_margin is not None and self.overlap_margin < 0:
            raise ValueError("overlap_margin must be >= 0")
        if self.confirm_margin is not None and self.confirm_margin < 0:
            raise ValueError("confirm_margin must be >= 0 (None: no confirmation)")

    @property
    def window_hops(self) -> int:
        return round(self.window_s * HOPS_PER_SECOND)

    @property
    def step_hops(self) -> int:
        return round(self.step_s * HOPS_PER_SECOND)

    @property
    def lookahead_hops(self) -> int:
        return round(self.lookahead_s * HOPS_PER_SECOND)

    @property
    def latency_hops(self) -> int:
        return round(self.latency_s * HOPS_PER_SECOND)

    @property
    def smoothing(self) -> int:
        if self.smooth_windows is not None:
            return self.smooth_windows
        spare = self.latency_s - self.step_s - self.lookahead_s
        return max(0, int(spare / self.step_s + 1e-9))


@dataclass(frozen=True, slots=True)
class Labels:
    """Final labels for hops [start, start + len(speakers)): (n, 2) int8, -1 = nobody."""

    start: int
    speakers: np.ndarray

    @property
    def end(self) -> int:
        return self.start + self.speakers.shape[0]


@dataclass(slots=True)
class _Window:
    targets: list[int]  # global hop indices it labels
    cut_at: int  # hops seen when it was cut
    short: bool  # cut before a full window of speech existed (audio repeated)
    emb: np.ndarray | None = None


@dataclass(slots=True)
class DiarizeState:
    """Everything one shared-microphone stream carries between ticks."""

    window_hops: int
    ring: np.ndarray = field(init=False)  # last window_hops speech hops, circular
    n_speech: int = 0  # speech hops seen
    hops_in: int = 0  # hops seen
    silence_run: int = 0
    pending: list[int] = field(default_factory=list)  # speech hops not in a window yet
    in_flight: list[_Window] = field(default_factory=list)  # handed out by push()
    embedded: list[_Window] = field(default_factory=list)  # awaiting a decision
    history: list[np.ndarray] = field(default_factory=list)  # recent decided embeddings
    decided: dict[int, tuple[int, int]] = field(default_factory=dict)  # hop -> speakers
    speech_hops: set[int] = field(default_factory=set)  # undecided speech hops
    committed: int = 0  # hops [0, committed) have been returned
    provisional: bool = False  # identity 0 came from a short window; replace it once
    cluster: ClusterState = field(default_factory=ClusterState)

    def __post_init__(self) -> None:
        self.ring = np.zeros(self.window_hops * HOP, np.float32)

    def reset(self) -> None:
        self.ring.fill(0.0)
        self.n_speech = 0
        self.hops_in = 0
        self.silence_run = 0
        self.pending.clear()
        self.in_flight.clear()
        self.embedded.clear()
        self.history.clear()
        self.decided.clear()
        self.speech_hops.clear()
        self.committed = 0
        self.provisional = False
        self.cluster.reset()


class SharedMicDiarizer:
    """One shared-microphone stream. Owns its `DiarizeState`; shares the embedder."""

    def __init__(self, embedder: SpeakerEmbedder, config: DiarizeConfig | None = None) -> None:
        self.embedder = embedder
        self.config = config or DiarizeConfig()
        self.clusterer = SpeakerClusterer(self.config.cluster)
        self.state = DiarizeState(window_hops=self.config.window_hops)
        self.state.cluster = self.clusterer.new_state()

    def reset(self) -> None:
        self.state.reset()

    @property
    def n_speakers(self) -> int:
        return self.state.cluster.n

    # --- phase 1: buffer audio, cut windows ---------------------------------------

    def push(self, hops: np.ndarray, speech: np.ndarray) -> list[np.ndarray]:
        """int16 (n, HOP) hops and their bool speech mask -> windows to embed (float32)."""
        if hops.dtype != np.int16 or hops.ndim != 2 or hops.shape[1] != HOP:
            raise ValueError(
                f"hops must be int16 of shape (n, {HOP}), got {hops.dtype} {hops.shape}"
            )
        if speech.shape != (hops.shape[0],):
            raise ValueError(f"speech mask shape {speech.shape} != ({hops.shape[0]},)")
        if self.state.in_flight:
            raise RuntimeError("accept() the previous windows' embeddings before pushing more")
        c, st = self.config, self.state
        out: list[np.ndarray] = []
        flush_hops = round(c.flush_silence_s * HOPS_PER_SECOND)
        for i in range(hops.shape[0]):
            g = st.hops_in
            st.hops_in += 1
            if speech[i]:
                slot = st.n_speech % c.window_hops
                st.ring[slot * HOP : (slot + 1) * HOP] = hops[i].astype(np.float32) / 32768.0
                st.n_speech += 1
                st.silence_run = 0
                st.pending.append(g)
                st.speech_hops.add(g)
                if len(st.pending) >= c.step_hops + c.lookahead_hops:
                    out.append(self._cut(st.pending[: c.step_hops]))
                    del st.pending[: c.step_hops]
            else:
                st.silence_run += 1
                if st.silence_run == flush_hops and st.pending:
                    out.append(self._cut(st.pending))
                    st.pending = []
            # a hop must not wait past the latency budget
            if st.pending and st.hops_in - st.pending[0] >= c.latency_hops:
                out.append(self._cut(st.pending))
                st.pending = []
        return out

    def _cut(self, targets: list[int]) -> np.ndarray:
        st = self.state
        w = st.window_hops
        if st.n_speech >= w:
            k = (st.n_speech % w) * HOP
            win = np.concatenate([st.ring[k:], st.ring[:k]])
        else:  # early in the stream: repeat the speech heard so far
            have = st.ring[: st.n_speech * HOP]
            win = np.resize(have, w * HOP)
        st.in_flight.append(
            _Window(targets=list(targets), cut_at=st.hops_in, short=st.n_speech < w)
        )
        return win

    # --- phase 2: decide and commit ----------------------------------------------

    def accept(self, embeddings: np.ndarray, *, final: bool = False) -> Labels:
        """The embeddings of the windows `push` returned (in order) -> newly final labels."""
        st = self.state
        if embeddings.shape[0] != len(st.in_flight):
            raise ValueError(f"{len(st.in_flight)} windows in flight, {embeddings.shape[0]} given")
        for win, e in zip(st.in_flight, embeddings, strict=True):
            win.emb = e.astype(np.float32)
            st.embedded.append(win)
        st.in_flight.clear()
        self._decide(final)
        return self._commit(final)

    def process(self, hops: np.ndarray, speech: np.ndarray) -> Labels:
        """push + embed + accept for this stream alone."""
        windows = self.push(hops, speech)
        return self.accept(self.embedder.embed(windows))

    def flush(self) -> Labels:
        """End of stream: label every pending hop and commit everything."""
        st = self.state
        if st.in_flight:
            raise RuntimeError("accept() the previous windows' embeddings before flushing")
        windows = [self._cut(st.pending)] if st.pending and st.n_speech else []
        st.pending = []
        return self.accept(self.embedder.embed(windows), final=True)

    def _decide(self, final: bool) -> None:
        c, st = self.config, self.state
        k_ahead = c.smoothing
        while st.embedded:
            win = st.embedded[0]
            # only windows cut before this one's deadline may inform it: that keeps
            # decisions independent of how the audio was chunked into calls
            deadline = win.targets[0] + c.latency_hops
            ahead = [w for w in st.embedded[1 : 1 + k_ahead] if w.cut_at <= deadline]
            if len(ahead) < k_ahead and not final and st.hops_in < deadline:
                break
            st.embedded.pop(0)
            self._label(win, ahead)

    def _label(self, win: _Window, ahead: list[_Window]) -> None:
        c, st, cl = self.config, self.state, self.clusterer
        e = win.emb
        if e is None:
            raise RuntimeError("window decided before it was embedded")
        cs = st.cluster
        if st.provisional and not win.short:
            # the first full window takes over identity 0 from the repeated snippet
            cs.centroids[0] = e
            st.provisional = False
        elif win.short:
            # a snippet repeated to fill a window is too weak to open an identity of its own
            if cs.n == 0:
                cl.open(cs, e)
                st.provisional = True
        elif cl.would_open(cs, e):
            nxt = ahead[0].emb if ahead else None
            # with lookahead, one odd window does not open an identity on its own
            if nxt is None or cs.n == 0 or self._confirms(nxt):
                # at a change of voice the window still holds the previous voice: the
                # window furthest ahead is the new voice's purest sample
                far = [w.emb for w in ahead if w.emb is not None and cl.would_open(cs, w.emb)]
                cl.open(cs, far[-1] if far and cs.n > 0 else e)
        scores = cl.scores(cs, e)
        if ahead and cs.n > 1:
            neigh = [w.emb for w in ahead[:1] if w.emb is not None] + st.history[-1:]
            if neigh:
                scores = 0.5 * scores + 0.5 * np.mean([cl.scores(cs, x) for x in neigh], axis=0)
        order = np.argsort(-scores)
        best = int(order[0])
        raw = float(cl.scores(cs, e)[best])
        if raw >= c.cluster.update:
            cl.learn(cs, best, e)
        second = NOBODY
        if (
            c.overlap_margin is not None
            and cs.n > 1
            and scores[order[1]] >= c.overlap_min
            and scores[best] - scores[order[1]] < c.overlap_margin
        ):
            second = int(order[1])
        for g in win.targets:
            st.decided[g] = (best, second)
            st.speech_hops.discard(g)
        st.history.append(e)
        del st.history[:-4]

    def _confirms(self, nxt: np.ndarray) -> bool:
        c, cs = self.config, self.state.cluster
        if c.confirm_margin is None or cs.n >= c.cluster.max_speakers:
            return c.confirm_margin is None
        limit = c.cluster.eager if cs.n < c.cluster.min_speakers else c.cluster.new_speaker
        return float(np.max(self.clusterer.scores(cs, nxt))) < limit + c.confirm_margin

    def _commit(self, final: bool) -> Labels:
        st = self.state
        end = st.hops_in if (final or not st.speech_hops) else min(st.speech_hops)
        n = max(0, end - st.committed)
        out = np.full((n, 2), NOBODY, np.int8)
        for i in range(n):
            got = st.decided.pop(st.committed + i, None)
            if got is not None:
                out[i] = got
        labels = Labels(st.committed, out)
        st.committed = end
        return labels


def step_streams(
    embedder: SpeakerEmbedder,
    diarizers: Sequence[SharedMicDiarizer],
    hops: Sequence[np.ndarray],
    speech: Sequence[np.ndarray],
) -> list[Labels]:
    """One tick for many shared-microphone streams with a single batched inference."""
    if not len(diarizers) == len(hops) == len(speech):
        raise ValueError("one hops array and one speech mask per diarizer")
    cut = [d.push(h, s) for d, h, s in zip(diarizers, hops, speech, strict=True)]
    flat = [w for ws in cut for w in ws]
    embs = embedder.embed(flat)
    out, i = [], 0
    for d, ws in zip(diarizers, cut, strict=True):
        out.append(d.accept(embs[i : i + len(ws)]))
        i += len(ws)
    return out


def segments_by_speaker(labels: np.ndarray) -> dict[int, list[SpeechSegment]]:
    """(n, 2) labels from hop 0 -> each sub-speaker's runs of hops as SpeechSegments."""
    out: dict[int, list[SpeechSegment]] = {}
    if labels.size == 0:
        return out
    for k in sorted({int(v) for v in np.unique(labels) if v != NOBODY}):
        on = np.any(labels == k, axis=1).astype(np.int8)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], on, [0]])))
        out[k] = [
            SpeechSegment(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)
        ]
    return out
