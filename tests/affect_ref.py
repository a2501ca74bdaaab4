"""affect_step as it was before the fast paths (tests/test_affect_step_fused.py compares
the two bit for bit): the unfused prosody path, each stream's mask scanned, a bool
mask per window part, SpeechWindow.push with its own mask."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from prosody_ref import unfused_batch

from engine.affect.features import batch_features
from engine.affect.stream import AffectStream, _Acc, shared_model
from engine.types import HOP, HOPS_PER_SECOND, Cue


def old_affect_step(
    streams: Sequence[AffectStream],
    pcms: Sequence[np.ndarray],
    speech: Sequence[np.ndarray],
    end_hops: Sequence[int],
) -> list[Cue]:
    if not streams:
        return []
    hops = unfused_batch([s.prosody for s in streams], list(pcms), list(speech))
    pending: list[tuple[AffectStream, np.ndarray, float, _Acc]] = []
    for s, pcm, mask, h, end in zip(streams, pcms, speech, hops, end_hops, strict=True):
        mask = np.asarray(mask, bool)
        cap = s.window.buf.shape[0] // HOP
        idx = np.flatnonzero(mask)
        start = 0
        while start < idx.size:
            room = cap - s.window.fill // HOP
            part = idx[start : start + room]
            take = np.zeros(mask.shape[0], bool)
            take[part] = True
            a = s.acc
            a.f0.append(h.f0_st[take])
            a.loud.append(h.loudness_db[take])
            a.jitter.append(h.jitter[take])
            a.shimmer.append(h.shimmer_db[take])
            a.hnr.append(h.hnr_db[take])
            a.nuclei += int(np.count_nonzero(h.nucleus[take]))
            a.hops += int(np.count_nonzero(take))
            full = s.window.push(pcm.reshape(-1, HOP)[part].reshape(-1), np.ones(part.size, bool))
            start += part.size
            if full:
                t_s = (end - (mask.shape[0] - 1 - int(part[-1]))) / HOPS_PER_SECOND
                pending.append((s, full[0], t_s, s.acc))
                s.acc = _Acc()
    if not pending:
        return []
    out = shared_model().predict(batch_features([w for _, w, _, _ in pending]))
    changed: list[Cue] = []
    for k, (s, _, t_s, acc) in enumerate(pending):
        arousal = float(out.arousal[k])
        s.arousal.append(arousal)
        s.arousal_sum += arousal
        if out.valence is not None:
            s.valence.append(float(out.valence[k]))
            s.valence_sum += float(out.valence[k])
        s.windows += 1
        changed += s.cues.update(t_s, acc.summary(arousal))
    return changed
