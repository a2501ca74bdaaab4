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

A tick's streams go through together: their samples converted once, the gate's WebRTC
decisions in one `webrtc_kernel` call, the cutting and gating in one
`silero_cut_kernel` call, the hops' probabilities in one `silero_emit_kernel` call; the
only per-stream Python left is handing each stream its tail, counters and recurrent
state (a live tick has a few hops per stream, and per-stream array work cost as much as
the model did).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from engine.config import VadConfig
from engine.ort import onnxruntime as ort
from engine.types import HOP, SAMPLE_RATE
from engine.vad import kernels as k
from engine.vad.base import VadStreamState, check_flat, process_by_flat
from engine.vad.webrtc import WebRtcBackend, WebRtcState

GATE_AGGRESSIVENESS = 0  # the WebRTC VAD's most permissive mode: the gate misses least

CHUNK = 512
CONTEXT = 64
MAX_BATCH = 32  # batching gains level off near here
MODEL_FILE = "silero_vad.onnx"


def model_path() -> str:
    return str(resources.files("engine.vad").joinpath("models", MODEL_FILE))


def _zero_rnn() -> np.ndarray:
    return np.zeros((2, 128), np.float32)


def _zero_context() -> np.ndarray:
    return np.zeros(CONTEXT, np.float32)


def _zero_meta() -> np.ndarray:
    return np.zeros(k.SILERO_META_SIZE, np.int64)


@dataclass(slots=True)
class SileroState:
    """One stream's recurrent state, the samples its next chunk starts from, and its
    counters.

    `tail` is the previous chunk's last CONTEXT samples followed by the samples not yet
    in a whole chunk (fewer than CHUNK). `rnn` is this stream's column of the last
    batched call's output (a view; replaced, never written). `meta` holds the counters
    (kernels.SM_*): hops in, chunks scored (or shut), and whether the gate heard speech
    in the chunk being filled and in the last one decided. `gate` is silero-gated's
    WebRTC VAD, None without the gate."""

    gate: WebRtcState | None = None
    rnn: np.ndarray = field(default_factory=_zero_rnn)  # (2, 128)
    tail: np.ndarray = field(default_factory=_zero_context)
    meta: np.ndarray = field(default_factory=_zero_meta)

    @property
    def n_pending(self) -> int:
        return self.tail.shape[0] - CONTEXT

    def reset(self) -> None:
        self.rnn = _zero_rnn()
        self.tail = _zero_context()
        self.meta = _zero_meta()
        if self.gate is not None:
            self.gate.reset()


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
        self._gate_backend = WebRtcBackend(
            VadConfig(backend="webrtc", webrtc_aggressiveness=GATE_AGGRESSIVENESS)
        )

    def open_stream(self) -> SileroState:
        return SileroState(gate=self._gate_backend.open_stream() if self.gate else None)

    def process(
        self, states: Sequence[VadStreamState], hops: Sequence[np.ndarray]
    ) -> list[np.ndarray]:
        return process_by_flat(self.process_flat, states, hops)

    def process_flat(
        self, states: Sequence[VadStreamState], hops: np.ndarray, counts: Sequence[int]
    ) -> tuple[np.ndarray, list[int]]:
        """`process` for hops already in one array, stream after stream (`counts[i]` of
        `states[i]`): every stream's samples converted, cut and gated at once (one kernel
        call), the model run over all their chunks batched, their hops' probabilities in
        one array. Returns them and how many each stream got."""
        typed = _typed(states)
        n_hops = check_flat(hops, counts, len(typed))
        flags = np.zeros(0, np.float32)
        if self.gate:
            gates = [st.gate for st in typed if st.gate is not None]
            if len(gates) != len(typed):
                raise ValueError("a silero-gated batch holds a stream opened without the gate")
            flags, _ = self._gate_backend.process_flat(gates, hops, counts)
        samples = hops.reshape(-1).astype(np.float32)
        samples *= 1.0 / 32768.0  # a power of two: exact, as dividing is
        return self._run(typed, samples, n_hops * HOP, flags, n_hops)

    def flush(self, state: VadStreamState) -> np.ndarray:
        (st,) = _typed([state])
        pad = np.zeros(CHUNK - st.n_pending if st.n_pending else 0, np.float32)
        none = np.zeros(1, np.int64)
        out, _ = self._run([st], pad, np.array([pad.shape[0]], np.int64), pad[:0], none)
        return out

    def _run(
        self,
        typed: list[SileroState],
        samples: np.ndarray,
        n_samples: np.ndarray,
        flags: np.ndarray,
        n_hops: np.ndarray,
    ) -> tuple[np.ndarray, list[int]]:
        """Cut and gate (one kernel call), score the open chunks, emit the hops."""
        n = len(typed)
        if n == 0:
            return np.zeros(0, np.float32), []
        tails = [st.tail for st in typed]
        n_tail = np.array([t.shape[0] for t in tails], np.int64)
        before = np.stack([st.meta for st in typed])
        meta = before.copy()
        n_chunks = int(((n_tail - CONTEXT + n_samples) // CHUNK).sum())
        x = np.empty((n_chunks, CONTEXT + CHUNK), np.float32)
        owner = np.empty(n_chunks, np.int64)
        rank = np.empty(n_chunks, np.int64)
        open_ = np.empty(n_chunks, np.uint8)
        tails_out = np.empty((n, CONTEXT + CHUNK), np.float32)
        n_tail_out = np.empty(n, np.int64)
        k.silero_cut_kernel(
            np.concatenate(tails),
            n_tail,
            samples,
            n_samples,
            flags,
            n_hops,
            self.gate,
            meta,
            HOP,
            CHUNK,
            CONTEXT,
            x,
            owner,
            rank,
            open_,
            tails_out,
            n_tail_out,
        )
        probs = np.zeros(n_chunks, np.float32)  # a chunk the gate keeps shut: 0
        if n_chunks:
            self._infer(typed, x, owner, rank, open_, probs)
        # a stream's hops centred in its unfinished chunk (at most CHUNK // HOP + 1) wait for it
        out = np.empty(int(n_hops.sum()) + n * (CHUNK // HOP + 2), np.float32)
        n_out = np.empty(n, np.int64)
        made = k.silero_emit_kernel(before, meta, probs, HOP, CHUNK, out, n_out)
        for st, row, t, m in zip(typed, meta, tails_out, n_tail_out.tolist(), strict=True):
            st.meta = row.copy()  # copies: a view would keep this tick's arrays alive
            st.tail = t[:m].copy()
        return out[:made], n_out.tolist()

    def _infer(
        self,
        typed: list[SileroState],
        x: np.ndarray,
        owner: np.ndarray,
        rank: np.ndarray,
        open_: np.ndarray,
        probs: np.ndarray,
    ) -> None:
        """Score the open inputs, a round per rank (a stream's r-th chunk after its
        (r-1)-th: the recurrent state runs in order), batched across streams."""
        scored = open_.astype(np.bool_)
        for r in range(int(rank.max()) + 1):
            rows = np.flatnonzero(scored & (rank == r))
            for start in range(0, rows.shape[0], MAX_BATCH):
                part = rows[start : start + MAX_BATCH]
                who = owner[part].tolist()
                rnn = np.stack([typed[i].rnn for i in who], axis=1)
                out, rnn_next = self.session.run(
                    None, {"input": x[part], "state": rnn, "sr": self._sr}
                )
                probs[part] = out[:, 0]
                for j, i in enumerate(who):
                    typed[i].rnn = rnn_next[:, j]


def _typed(states: Sequence[VadStreamState]) -> list[SileroState]:
    typed = [st for st in states if isinstance(st, SileroState)]
    if len(typed) != len(states):
        bad = next(st for st in states if not isinstance(st, SileroState))
        raise TypeError(f"not a silero stream state: {type(bad).__name__}")
    if len({id(st) for st in typed}) != len(typed):  # one row of counters per stream
        raise ValueError("a stream appears twice in one batch")
    return typed


def make_session(threads: int = 1) -> ort.InferenceSession:
    """The shared, immutable inference session, with explicit thread counts."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return ort.InferenceSession(model_path(), sess_options=opts, providers=["CPUExecutionProvider"])
