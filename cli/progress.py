"""A small progress bar on stderr, for long inputs only."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ProgressBar:
    """Redraws one line; `close()` ends it. Writes nothing but counts and times."""

    def __init__(self, total_s: float, label: str, stream: TextIO | None = None) -> None:
        self.total_s = max(total_s, 1e-9)
        self.label = label
        self.stream = stream or sys.stderr
        self._start = time.monotonic()
        self._drawn = False

    def __call__(self, done_s: float) -> None:
        frac = min(done_s / self.total_s, 1.0)
        width = 30
        filled = int(frac * width)
        elapsed = time.monotonic() - self._start
        speed = done_s / elapsed if elapsed > 0 else 0.0
        self.stream.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {frac * 100:5.1f}% "
            f"{_clock(done_s)}/{_clock(self.total_s)} audio, {speed:.0f}x real time"
        )
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
