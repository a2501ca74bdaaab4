"""Silero VAD v5 on onnxruntime: one shared session, private RNN state per stream,
inference batched across streams.

The model scores 32 ms chunks (512 samples, with the previous 64 samples as
context). Each 10 ms hop takes the probability of the chunk holding its centre,
so a hop's probability is known once that chunk is complete.

Reset policy: the recurrent state starts at zero for each stream and on
`reset()`; it is never reset mid-stream, so results are identical however the
audio is chunked or batched.

`silero-gated` (the `gate` argument) scores a chunk only where the WebRTC VAD, at its
most permissive (aggressiveness 0), hears speech in a hop of that chunk or of the chunk
before; every other chunk gets probability 0 and leaves the recurrent state as it was.
People in a group session are silent most of the time and the model is about two thirds
of a Silero stream's VAD cost: the gate saves it where a far cheaper detector is sure
there is nothing to score. It looks at no later audio, so
hops are final as soon as without it; results stay independent of chunking and batching.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources

import numpy as np
import webrtcvad

from engine.config import VadConfig
from engine.ort import onnxruntime as ort
from engine.types import HOP, SAMPLE_RATE
from engine.vad.base import VadStreamState, check_hops
from engine.vad.webrtc import speech_flags

GATE_AGGRESSIVENESS = 0  # the WebRTC VAD's most permissive mode: the gate misses least

CHUNK = 512
CONTEXT = 64
MAX_BATCH = 32  # batching gains level off near here
MODEL_FILE = "silero_vad.onnx"


def model_path() -> str:
    return str(resources.files("engine.vad").joinpath("models", MODEL_FILE))


def _chunk_of_hop(k: int) -> int:
    return (k * HOP + HOP // 2) // CHUNK


def _first_hop_of_chunk(c: int) -> int:
    """The first hop whose centre lies in chunk `c` (so `_chunk_of_hop` gives `c`)."""
    return -(-(c * CHUNK - HOP // 2) // HOP)


def _zero_rnn() -> np.ndarray:
    return np.zeros((2, 128), np.float32)


def _zero_context() -> np.ndarray:
    return np.zeros(CONTEXT, np.float32)


@dataclass(slots=True)
class SileroState:
    """One stream's recurrent state and the samples its next chunk starts from.

    `tail` is the previous chunk's last CONTEXT samples followed by the samples not yet
    in a whole chunk (fewer than CHUNK): the next model input is `tail` and the new
    samples, cut at CONTEXT + CHUNK, so that a tick's chunks are views of one array
    rather than copies made sample block by sample block. `rnn` is this stream's
    column of the last batched call's output (a view; replaced, never written)."""

    rnn: np.ndarray = field(default_factory=_zero_rnn)  # (2, 128)
    tail: np.ndarray = field(default_factory=_zero_context)
    chunks_done: int = 0
    hops_in: int = 0
    hops_out: int = 0
    chunk_probs: list[float] = field(default_factory=list)  # from chunk `first_chunk` on
    first_chunk: int = 0
    gate: webrtcvad.Vad | None = None  # silero-gated: the WebRTC VAD that gates chunks
    flags: list[bool] = field(default_factory=list)  # its decisions from hop `flags_first` on
    flags_first: int = 0
    heard: bool = False  # it heard speech in the last chunk decided

    @property
    def n_pending(self) -> int:
        return self.tail.shape[0] - CONTEXT

    def reset(self) -> None:
        self.rnn = _zero_rnn()
        self.tail = _zero_context()
        self.chunks_done = 0
        self.hops_in = 0
        self.hops_out = 0
        self.chunk_probs.clear()
        self.first_chunk = 0
        if self.gate is not None:
            self.gate = webrtcvad.Vad(GATE_AGGRESSIVENESS)
        self.flags.clear()
        self.flags_first = 0
        self.heard = False

    def gate_open(self, c: int) -> bool:
        """Whether chunk `c` (the next one, in order) is scored: the gate heard speech
        in one of its hops or in the chunk before. Its hops' decisions are all in: a
        chunk is complete only once the hop holding its last sample is."""
        lo = _first_hop_of_chunk(c) - self.flags_first
        hi = min(_first_hop_of_chunk(c + 1), self.hops_in) - self.flags_first
        heard = any(self.flags[lo:hi])
        del self.flags[:hi]
        self.flags_first += hi
        open_ = heard or self.heard
        self.heard = heard
        return open_


class SileroBackend:
    name = "silero"

    def __init__(
        self,
        config: VadConfig,
        session: ort.InferenceSession | None = None,
        *,
        gate: bool = False,
    ) -> None:
        self.session = session or make_session(config.silero_threads)
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)
        self.gate = gate
        self.name = "silero-gated" if gate else "silero"

    def open_stream(self) -> SileroState:
        return SileroState(gate=webrtcvad.Vad(GATE_AGGRESSIVENESS) if self.gate else None)

    def process(
        self, states: Sequence[VadStreamState], hops: Sequence[np.ndarray]
    ) -> list[np.ndarray]:
        if len(states) != len(hops):
            raise ValueError(f"{len(states)} states but {len(hops)} hop arrays")
        typed: list[SileroState] = []
        for st, h in zip(states, hops, strict=True):
            if not isinstance(st, SileroState):
                raise TypeError(f"not a silero stream state: {type(st).__name__}")
            check_hops(h)
            typed.append(st)
        # Every stream's new samples cut into whole model inputs (views), then inferred
        # round by round: a stream's r-th chunk goes in round r, after its (r-1)-th.
        work: list[list[np.ndarray]] = []
        for st, h in zip(typed, hops, strict=True):
            st.hops_in += h.shape[0]
            if st.gate is not None:
                st.flags.extend(speech_flags(st.gate, h))
            work.append(self._cut(st, h.reshape(-1).astype(np.float32) / 32768.0))
        self._infer(typed, work)
        return [self._emit(st) for st in typed]

    def flush(self, state: VadStreamState) -> np.ndarray:
        if not isinstance(state, SileroState):
            raise TypeError(f"not a silero stream state: {type(state).__name__}")
        if state.n_pending:
            x = np.zeros(CONTEXT + CHUNK, np.float32)  # the last chunk, padded with zeros
            x[: state.tail.shape[0]] = state.tail
            state.tail = x[-CONTEXT:].copy()
            self._infer([state], [[x]])
        return self._emit(state)

    @staticmethod
    def _cut(st: SileroState, samples: np.ndarray) -> list[np.ndarray]:
        """The model inputs (CONTEXT + CHUNK samples) that `samples` complete."""
        full = np.concatenate((st.tail, samples))
        n = (full.shape[0] - CONTEXT) // CHUNK
        st.tail = full[n * CHUNK :].copy()  # a copy: `full` is let go after this tick
        return [full[r * CHUNK : r * CHUNK + CONTEXT + CHUNK] for r in range(n)]

    def _infer(self, states: list[SileroState], work: list[list[np.ndarray]]) -> None:
        """Score each stream's chunks in order, a round per chunk, batched across
        streams; a gated stream's chunk the gate keeps shut gets 0 without the model."""
        rounds = max((len(w) for w in work), default=0)
        for r in range(rounds):
            rows = []
            for i, w in enumerate(work):
                if len(w) <= r:
                    continue
                st = states[i]
                if st.gate is None or st.gate_open(st.chunks_done):
                    rows.append(i)
                else:  # its chunks before this one are done: order is kept
                    st.chunk_probs.append(0.0)
                    st.chunks_done += 1
            for start in range(0, len(rows), MAX_BATCH):
                part = rows[start : start + MAX_BATCH]
                x = np.stack([work[i][r] for i in part])
                rnn = np.stack([states[i].rnn for i in part], axis=1)
                out, rnn_next = self.session.run(None, {"input": x, "state": rnn, "sr": self._sr})
                probs = out[:, 0].tolist()
                for j, i in enumerate(part):
                    st = states[i]
                    st.rnn = rnn_next[:, j]
                    st.chunk_probs.append(probs[j])
                    st.chunks_done += 1

    @staticmethod
    def _emit(st: SileroState) -> np.ndarray:
        """Probabilities of the hops whose chunk has been scored, in hop order."""
        k, first, done = st.hops_out, st.first_chunk, st.chunks_done
        ready = min(st.hops_in, _first_hop_of_chunk(done))  # the hops of scored chunks
        cp = st.chunk_probs
        probs = [cp[_chunk_of_hop(j) - first] for j in range(k, ready)] if ready > k else []
        k = max(k, ready)
        st.hops_out = k
        keep_from = min(_chunk_of_hop(k), done)  # no later hop needs older chunks
        if keep_from > first:
            del cp[: keep_from - first]
            st.first_chunk = keep_from
        return np.asarray(probs, dtype=np.float32)


def make_session(threads: int = 1) -> ort.InferenceSession:
    """The shared, immutable inference session, with explicit thread counts."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return ort.InferenceSession(model_path(), sess_options=opts, providers=["CPUExecutionProvider"])
