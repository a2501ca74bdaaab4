"""Fan-out of session snapshots to subscribers through bounded queues.

A slow subscriber loses its oldest snapshots; publishing never waits, so a
subscriber can never stall ingest.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Generic, TypeVar

T = TypeVar("T")


class SignalHub(Generic[T]):
    def __init__(self, queue_size: int = 8) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self._queue_size = queue_size
        self._queues: set[asyncio.Queue[T | None]] = set()
        self._closed = False
        self.dropped = 0  # snapshots dropped for slow subscribers, for metrics

    @property
    def subscribers(self) -> int:
        return len(self._queues)

    def publish(self, item: T) -> None:
        for q in self._queues:
            self._put_dropping_oldest(q, item)

    def _put_dropping_oldest(self, q: asyncio.Queue[T | None], item: T | None) -> None:
        while True:
            try:
                q.put_nowait(item)
                return
            except asyncio.QueueFull:
                try:
                    q.get_nowait()
                    self.dropped += 1
                except asyncio.QueueEmpty:
                    pass

    def close(self) -> None:
        """No more items: every subscriber's iterator ends after what it has queued."""
        self._closed = True
        for q in self._queues:
            self._put_dropping_oldest(q, None)

    async def subscribe(self, first: T | None = None) -> AsyncGenerator[T, None]:
        """Items published from now on (preceded by `first`), until `close()`."""
        if self._closed:
            if first is not None:
                yield first
            return
        q: asyncio.Queue[T | None] = asyncio.Queue(self._queue_size)
        if first is not None:
            q.put_nowait(first)
        self._queues.add(q)
        try:
            while True:
                item = await q.get()
                if item is None:
                    return
                yield item
        finally:
            self._queues.discard(q)
