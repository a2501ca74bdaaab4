"""Speaker bleed: another participant's voice picked up from loudspeakers.

`BleedSuppressor` marks such hops per session; `remove_hops` takes them out of a
stream's speech segments.
"""

from __future__ import annotations

from engine.bleed.suppress import (
    BleedState,
    BleedSuppressor,
    hop_levels,
    remove_hops,
    segments_to_mask,
    tidy_mask,
)

__all__ = [
    "BleedState",
    "BleedSuppressor",
    "hop_levels",
    "remove_hops",
    "segments_to_mask",
    "tidy_mask",
]
