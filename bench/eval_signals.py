"""Engagement signals against exact ground truth, on synthesized sessions.

Sessions come from tests/synth.py (`random_script`: 5 participants, the bundled sample's
voices, turns, backchannels, early starts, interruptions, group silences and 1-3
loudspeaker-bleed paths), written as multi-track Opus MKV and analysed by the real
offline path (`engine.offline.analyze`, bleed suppression on). Seeds here are apart from
those the definitions, the bleed rules and the tests were developed on (1-16, 21, 30-41).

    python bench/eval_signals.py [--seeds 100 ... 119] [--minutes 4] [--vad webrtc]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from synth import random_script, synthesize

from engine.config import VadConfig
from engine.metrics import matched
from engine.offline import analyze

TOL_S = 0.5


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(100, 120)))
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--participants", type=int, default=5)
    ap.add_argument("--vad", default="webrtc", choices=["webrtc", "numba", "silero"])
    args = ap.parse_args(argv)
    speak_err: list[float] = []
    turns_ok = turns_n = 0
    bc_found = bc_truth = 0
    counts = {"interruptions": [0, 0, 0], "group silences": [0, 0, 0]}  # hits, found, truth
    for seed in args.seeds:
        s = synthesize(random_script(seed, participants=args.participants, minutes=args.minutes))
        with tempfile.TemporaryDirectory() as d:
            r = analyze(
                [s.write_mkv(d)],
                VadConfig(backend=args.vad),
                roles=dict(zip(s.names, s.roles, strict=True)),
            )
        for p in r.participants:
            truth = s.truth.speaking_s(p.name)
            if truth >= 5.0:
                speak_err.append(abs(p.figures.speaking_s - truth) / truth)
            t_turns = sum(t.speaker == p.name for t in s.truth.turns)
            got = r.signals.participants[p.name].turns
            turns_n += 1
            turns_ok += abs(got - t_turns) <= max(1, t_turns / 20)
            bc_found += r.signals.participants[p.name].backchannels
            bc_truth += sum(n == p.name for n, _ in s.truth.backchannels)
        found = list(r.signals.interruptions)
        truth_i = [(i.t / 100, i.by, i.of) for i in s.truth.interruptions]
        hits = matched(found, truth_i, lambda f, t: f[1:] == t[1:] and abs(f[0] - t[0]) <= TOL_S)
        for k, v in enumerate((hits, len(found), len(truth_i))):
            counts["interruptions"][k] += v
        found_g = list(r.signals.silences)
        truth_g = [(g.start / 100, g.end / 100) for g in s.truth.group_silences]
        hits = matched(
            found_g,
            truth_g,
            lambda f, t: abs(f[0] - t[0]) <= TOL_S and abs(f[1] - t[1]) <= TOL_S,
        )
        for k, v in enumerate((hits, len(found_g), len(truth_g))):
            counts["group silences"][k] += v
    n = len(args.seeds)
    print(
        f"{n} sessions x {args.minutes:g} min x {args.participants} participants, VAD "
        f"{args.vad}, seeds {' '.join(map(str, args.seeds))}\n"
    )
    print("| signal | result |")
    print("| --- | --- |")
    print(
        f"| speaking time per participant (>= 5 s) | worst error {max(speak_err):.1%}, "
        f"mean {sum(speak_err) / len(speak_err):.1%}, within 3 % for "
        f"{sum(e <= 0.03 for e in speak_err)}/{len(speak_err)} participants |"
    )
    print(f"| turns within +-1 per 20 | {turns_ok}/{turns_n} participants |")
    print(f"| backchannels | {bc_found} found, {bc_truth} in the truth |")
    for name, (hits, nf, nt) in counts.items():
        p = hits / nf if nf else 1.0
        rc = hits / nt if nt else 1.0
        print(
            f"| {name} (start within {TOL_S} s) | precision {p:.2f} ({hits}/{nf}), "
            f"recall {rc:.2f} ({hits}/{nt}) |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
