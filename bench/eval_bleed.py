"""Bleed suppression against synthesized truth: leak with it on and off, speaking-time error.

For each seeded session (tests/synth.py's random_script, bundled-sample voices), the
session is written as an Opus MKV and run through the real offline path
(`engine.offline.analyze`). Printed per VAD backend and setting:

- leak: share of bleed-only hops (a track carrying someone else's voice while its
  own participant is silent) that the analysis counts as speech;
- time err: worst and mean |speaking time - truth| / truth over participants
  (participants with >= 5 s of truth speech);
- overlap kept: share of truth overlap hops where every overlapping participant is
  detected as speaking.

    python bench/eval_bleed.py [--seeds 100 101 102] [--minutes 3] [--vad webrtc silero]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from synth import Session, random_script, synthesize

from engine.bleed import segments_to_mask
from engine.config import BleedConfig, VadConfig
from engine.offline import Analysis, analyze


def score(session: Session, result: Analysis) -> dict[str, float]:
    """leak, worst/mean speaking-time error and overlap kept, against the truth."""
    tr = session.truth
    got = {p.name: segments_to_mask(p.segments, tr.hops) for p in result.participants}
    leak_n = leak_d = 0
    errs = []
    for name in tr.names:
        only = tr.bleed_only_mask(name)
        leak_n += int((got[name] & only).sum())
        leak_d += int(only.sum())
        truth_s = tr.speaking_s(name)
        if truth_s >= 5.0:
            errs.append(abs(got[name].sum() / 100 - truth_s) / truth_s)
    kept_n = kept_d = 0
    for ov in tr.overlaps:
        both = np.ones(ov.end - ov.start, np.bool_)
        for n in ov.names:
            both &= got[n][ov.start : ov.end]
        kept_n += int(both.sum())
        kept_d += ov.end - ov.start
    return {
        "leak": leak_n / leak_d if leak_d else 0.0,
        "err_max": max(errs, default=0.0),
        "err_mean": float(np.mean(errs)) if errs else 0.0,
        "overlap_kept": kept_n / kept_d if kept_d else 1.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102, 103])
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--vad", nargs="+", default=["webrtc", "silero"])
    ap.add_argument("--set", nargs="*", default=[], help="BleedConfig overrides: key=value")
    ap.add_argument("--only-on", action="store_true", help="skip the runs with bleed off")
    args = ap.parse_args()
    overrides = {k: float(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    print(
        f"{'seed':>5} {'vad':>7} {'bleed':>5} {'leak%':>6} {'errmax%':>7} "
        f"{'errmean%':>8} {'ovkept%':>7} {'s':>5}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            s = synthesize(random_script(seed, minutes=args.minutes))
            path = s.write_mkv(tmp, f"s{seed}.mkv")
            for vad in args.vad:
                for on in (True,) if args.only_on else (False, True):
                    t = time.perf_counter()
                    r = analyze(
                        [path], VadConfig(backend=vad), bleed=BleedConfig(enabled=on, **overrides)
                    )
                    dt = time.perf_counter() - t
                    m = score(s, r)
                    print(
                        f"{seed:>5} {vad:>7} {'on' if on else 'off':>5} {100 * m['leak']:6.1f} "
                        f"{100 * m['err_max']:7.1f} {100 * m['err_mean']:8.1f} "
                        f"{100 * m['overlap_kept']:7.1f} {dt:5.1f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
