"""The VAD backends side by side, measured in one run: cost and accuracy in one table.

Why one script: a user choosing a backend trades cost against accuracy, and on a
shared machine costs are only comparable when measured in the same run. Cost comes
from bench/bench_vad.py's cases (8 streams x 60 s of the bundled sample, batched as
`analyze` does, best of --reps, pinned to one core); accuracy from `groupsense eval
vad` on the labelled files in ../shared/data/vad (never tuned on here).

    python bench/vad_table.py [--reps 3] [--data DIR] [--vad webrtc numba silero]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

from bench_vad import BACKENDS, cases, frames, run_hangover_kernel, stream_seconds
from benchutil import pin_one_core, warm_backend

from cli.main import main as groupsense


def costs(names: list[str], reps: int) -> dict[str, float]:
    """Seconds per stream-second for each backend and for raw webrtcvad (the floor)."""
    frames()
    run_hangover_kernel()
    todo = cases({name: warm_backend(name) for name in names})
    best = dict.fromkeys(todo, float("inf"))
    for _ in range(reps):  # interleaved: drift in machine load hits every case alike
        for name, fn in todo.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    secs = stream_seconds()
    return {name: t / secs for name, t in best.items()}


def accuracy(names: list[str], data: Path | None) -> dict[str, dict[str, float]] | str:
    """Rows of `groupsense eval vad` by backend, or the reason there are none."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "vad.json"
        argv = ["eval", "vad", "--vad", *names, "--json", str(out)]
        if data is not None:
            argv += ["--data", str(data)]
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = groupsense(argv)
        if code != 0:
            return err.getvalue().strip() or f"groupsense eval vad exited {code}"
        result = json.loads(out.read_text())
    return {r["backend"]: r for r in result["rows"]} | {"_data": result}


def table(cost: dict[str, float], acc: dict[str, dict[str, float]] | str, names: list[str]) -> str:
    floor = cost["webrtcvad raw (floor)"]
    lines = [
        "| backend | us per stream-second | vs raw webrtcvad | streams per core (VAD alone) "
        "| precision | recall | F1 | ROC-AUC |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in names:
        key = next(k for k in cost if k.split()[0] == name or k == name)
        per = cost[key]
        row = f"| {name} | {per * 1e6:.1f} | {per / floor:.3g}x | {1 / per:,.0f} "
        if isinstance(acc, dict) and name in acc:
            a = acc[name]
            row += (
                f"| {a['precision']:.3f} | {a['recall']:.3f} | {a['f1']:.3f} | {a['roc_auc']:.3f} |"
            )
        else:
            row += "| - | - | - | - |"
        lines.append(row)
    lines.append(
        f"| webrtcvad raw (floor) | {floor * 1e6:.1f} | 1x | {1 / floor:,.0f} | - | - | - | - |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="VAD backends: cost and accuracy in one table.")
    ap.add_argument("--reps", type=int, default=3, help="best of this many timing runs")
    ap.add_argument("--vad", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    ap.add_argument("--data", type=Path, default=None, help="labelled *.wav + *.scv folder")
    args = ap.parse_args(argv)
    core = pin_one_core()
    cost = costs(args.vad, args.reps)
    acc = accuracy(args.vad, args.data)
    print(
        f"Cost: 8 streams x 60 s of the bundled sample, batched, best of {args.reps}, core "
        f"{core}. Accuracy: 10 ms frames against the labels"
        + (
            f" of {acc['_data']['data']} ({acc['_data']['audio_s']:.0f} s)."
            if isinstance(acc, dict)
            else "."
        )
    )
    if isinstance(acc, str):
        print(f"(no accuracy columns: {acc})")
    print()
    print(table(cost, acc, args.vad))
    return 0


if __name__ == "__main__":
    sys.exit(main())
