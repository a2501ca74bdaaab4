"""Reframing of arbitrary-length sample chunks into whole 10 ms hops."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.audio.ring import RingBuffer
from engine.types import HOP


@dataclass(slots=True)
class Framer:
    """Buffers samples and hands out whole hops, shape (n, HOP), int16.

    Output depends only on the sample sequence, never on how it was chunked.
    """

    capacity_hops: int = 400  # 4 s: more than any single decoded frame
    _ring: RingBuffer = field(init=False)
    _out: np.ndarray = field(init=False)
    hops_emitted: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.capacity_hops <= 0:
            raise ValueError(f"capacity_hops must be positive, got {self.capacity_hops}")
        self._ring = RingBuffer(self.capacity_hops * HOP)
        self._out = np.zeros((self.capacity_hops, HOP), dtype=np.int16)

    @property
    def pending_samples(self) -> int:
        """Samples held short of a whole hop (0: the next whole hops pass as they are)."""
        return len(self._ring)

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Add samples; return the whole hops now available (a view valid until the next
        call, of the framer's buffer or of `samples`)."""
        if samples.dtype != np.int16 or samples.ndim != 1:
            raise ValueError(f"expected 1-D int16 samples, got {samples.dtype} {samples.shape}")
        n = samples.shape[0]
        if not len(self._ring) and not n % HOP and n <= self._out.size:
            # The live case: 20 ms frames are whole hops and nothing is pending, so the
            # hops are the samples themselves (the ring's write and read cost ~10 us).
            self.hops_emitted += n // HOP
            return samples.reshape(-1, HOP)
        n_out = 0
        pos = 0
        while pos < samples.shape[0]:
            room = self._ring.capacity - len(self._ring)
            take = min(room, samples.shape[0] - pos)
            self._ring.write(samples[pos : pos + take])
            pos += take
            n = len(self._ring) // HOP
            if n and n_out + n > self.capacity_hops:
                raise ValueError(
                    f"chunk of {samples.shape[0]} samples exceeds framer capacity; "
                    "push smaller chunks"
                )
            if n:  # all whole hops in one copy: the rows of _out are contiguous
                self._ring.read_into(self._out[n_out : n_out + n].reshape(-1))
            n_out += n
        self.hops_emitted += n_out
        return self._out[:n_out]

    def flush(self) -> np.ndarray:
        """End of stream: zero-pad the last partial hop, if any, and return it."""
        rest = len(self._ring)
        if rest == 0:
            return self._out[:0]
        self._out[0].fill(0)
        self._ring.read_into(self._out[0, :rest])
        self.hops_emitted += 1
        return self._out[:1]

    def reset(self) -> None:
        self._ring.clear()
        self._out.fill(0)
        self.hops_emitted = 0
