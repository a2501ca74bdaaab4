"""Silero VAD v5 on onnxruntime: one shared session, private RNN state per stream,
inference batched across streams.

The model scores 32 ms chunks (512 samples, with the previous 64 samples as
context). Each 10 ms hop takes the probability of the chunk holding its centre,
so a hop's probability is known once that chunk is complete.

Reset policy: the recurrent state starts at zero for each stream and on
`reset()`; it is never reset mid-stream, so results are identical however the
audio is chunked or batched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from engine.config import VadConfig
from engine.ort import onnxruntime as ort
from engine.types import HOP, SAMPLE_RATE
from engine.vad.base import VadStreamState, check_hops

CHUNK = 512
CONTEXT = 64
MAX_BATCH = 32  # batching gains level off near here
MODEL_FILE = "silero_vad.onnx"


def model_path() -> str:
    return str(resources.files("engine.vad").joinpath("models", MODEL_FILE))


def _chunk_of_hop(k: int) -> int:
    return (k * HOP + HOP // 2) // CHUNK


@dataclass(slots=True)
class SileroState:
    rnn: np.ndarray = field(default_factory=lambda: np.zeros((2, 1, 128), np.float32))
    context: np.ndarray = field(default_factory=lambda: np.zeros(CONTEXT, np.float32))
    pending: np.ndarray = field(default_factory=lambda: np.zeros(CHUNK, np.float32))
    n_pending: int = 0
    chunks_done: int = 0
    hops_in: int = 0
    hops_out: int = 0
    chunk_probs: list[float] = field(default_factory=list)  # from chunk `first_chunk` on
    first_chunk: int = 0

    def reset(self) -> None:
        self.rnn.fill(0.0)
        self.context.fill(0.0)
        self.pending.fill(0.0)
        self.n_pending = 0
        self.chunks_done = 0
        self.hops_in = 0
        self.hops_out = 0
        self.chunk_probs.clear()
        self.first_chunk = 0


class SileroBackend:
    name = "silero"

    def __init__(self, config: VadConfig, session: ort.InferenceSession | None = None) -> None:
        self.session = session or make_session(config.silero_threads)
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)

    def open_stream(self) -> SileroState:
        return SileroState()

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
        # Cut every stream's new samples into whole chunks, then infer round by round.
        work: list[list[np.ndarray]] = []
        for st, h in zip(typed, hops, strict=True):
            samples = h.reshape(-1).astype(np.float32) / 32768.0
            st.hops_in += h.shape[0]
            work.append(self._cut(st, samples))
        self._infer(typed, work)
        return [self._emit(st) for st in typed]

    def flush(self, state: VadStreamState) -> np.ndarray:
        if not isinstance(state, SileroState):
            raise TypeError(f"not a silero stream state: {type(state).__name__}")
        if state.n_pending:
            chunk = np.zeros(CHUNK, np.float32)
            chunk[: state.n_pending] = state.pending[: state.n_pending]
            state.n_pending = 0
            self._infer([state], [[chunk]])
        return self._emit(state)

    @staticmethod
    def _cut(st: SileroState, samples: np.ndarray) -> list[np.ndarray]:
        chunks = []
        pos = 0
        if st.n_pending:
            take = min(CHUNK - st.n_pending, samples.shape[0])
            st.pending[st.n_pending : st.n_pending + take] = samples[:take]
            st.n_pending += take
            pos = take
            if st.n_pending == CHUNK:
                chunks.append(st.pending.copy())
                st.n_pending = 0
        while samples.shape[0] - pos >= CHUNK:
            chunks.append(samples[pos : pos + CHUNK])
            pos += CHUNK
        rest = samples.shape[0] - pos
        if rest:
            st.pending[:rest] = samples[pos:]
            st.n_pending = rest
        return chunks

    def _infer(self, states: list[SileroState], work: list[list[np.ndarray]]) -> None:
        rounds = max((len(w) for w in work), default=0)
        for r in range(rounds):
            rows = [i for i, w in enumerate(work) if len(w) > r]
            for start in range(0, len(rows), MAX_BATCH):
                part = rows[start : start + MAX_BATCH]
                x = np.empty((len(part), CONTEXT + CHUNK), np.float32)
                rnn = np.empty((2, len(part), 128), np.float32)
                for j, i in enumerate(part):
                    x[j, :CONTEXT] = states[i].context
                    x[j, CONTEXT:] = work[i][r]
                    rnn[:, j] = states[i].rnn[:, 0]
                out, rnn_next = self.session.run(None, {"input": x, "state": rnn, "sr": self._sr})
                for j, i in enumerate(part):
                    st = states[i]
                    st.rnn[:, 0] = rnn_next[:, j]
                    st.context[:] = x[j, -CONTEXT:]
                    st.chunk_probs.append(float(out[j, 0]))
                    st.chunks_done += 1

    @staticmethod
    def _emit(st: SileroState) -> np.ndarray:
        """Probabilities of the hops whose chunk has been scored, in hop order."""
        probs = []
        k = st.hops_out
        while k < st.hops_in and _chunk_of_hop(k) < st.chunks_done:
            probs.append(st.chunk_probs[_chunk_of_hop(k) - st.first_chunk])
            k += 1
        st.hops_out = k
        keep_from = min(_chunk_of_hop(k), st.chunks_done)  # no later hop needs older chunks
        if keep_from > st.first_chunk:
            del st.chunk_probs[: keep_from - st.first_chunk]
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
