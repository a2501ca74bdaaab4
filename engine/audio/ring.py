"""A preallocated ring buffer of samples: audio is held only as long as a window needs it."""

from __future__ import annotations

import numpy as np


class RingBuffer:
    """Fixed-capacity FIFO of int16 samples. Never grows: overflow is an error, not a realloc."""

    __slots__ = ("_buf", "_capacity", "_read", "_size")

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self._capacity = capacity
        self._buf = np.zeros(capacity, dtype=np.int16)
        self._read = 0
        self._size = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    def __len__(self) -> int:
        return self._size

    def write(self, samples: np.ndarray) -> None:
        n = samples.shape[0]
        if n > self._capacity - self._size:
            raise OverflowError(
                f"ring buffer full: {self._size} + {n} samples > capacity {self._capacity}"
            )
        start = (self._read + self._size) % self._capacity
        first = min(n, self._capacity - start)
        self._buf[start : start + first] = samples[:first]
        if first < n:
            self._buf[: n - first] = samples[first:]
        self._size += n

    def read_into(self, out: np.ndarray) -> None:
        """Move len(out) samples from the front of the buffer into `out`."""
        n = out.shape[0]
        if n > self._size:
            raise ValueError(f"asked for {n} samples, {self._size} buffered")
        first = min(n, self._capacity - self._read)
        out[:first] = self._buf[self._read : self._read + first]
        if first < n:
            out[first:] = self._buf[: n - first]
        self._read = (self._read + n) % self._capacity
        self._size -= n

    def clear(self) -> None:
        """Forget the content and zero the storage so no audio lingers in memory."""
        self._buf.fill(0)
        self._read = 0
        self._size = 0
