"""Prosody against Praat (parselmouth) and Emo-DB syllable labels: `python bench/eval_prosody.py`.

Sets (never tune and report on the same files):
  tune:   vad/ (15 files) and Emo-DB speakers 03, 08, 10 -- ProsodyConfig defaults were set here
  report: Emo-DB speakers 09 (f), 11 (m), 12 (m)    -- the figures the tests assert

Per hop: F0 of frames both we and Praat call voiced (Praat "To Pitch (ac)", 10 ms step,
60-500 Hz, our frame centres), median |error| in semitones and gross errors (> 20 % off).
Per file: jitter (local), shimmer (local, dB) and mean HNR (Praat "To Harmonicity (cc)")
correlated with ours over files. Speech rate: our nuclei in the 2.0 s excerpt vs the
labelled syllables that start before 2.0 s, both per 2.0 s. The VAD mask is all-speech:
this measures the features, not the VAD. Audio is read with PyAV and converted to 16 kHz
by engine.audio.resample.Resampler; nothing is written anywhere.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from engine.affect.prosody import FRAME_LAG_S, ProsodyConfig, ProsodyTracker
from engine.audio.resample import Resampler
from engine.datasets import shared_data_dir
from engine.types import HOP, SAMPLE_RATE

TUNE_SPEAKERS = ("03", "08", "10")
REPORT_SPEAKERS = ("09", "11", "12")
F0_MIN, F0_MAX = 60.0, 500.0
EXCERPT_S = 2.0
FLUSH_HOPS = 10  # silence after an excerpt, so a last peak can be confirmed


def read_16k(path: Path) -> np.ndarray:
    res = Resampler()
    parts = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            parts.append(res.convert(frame))
    parts.append(res.convert(None))
    x = np.concatenate(parts)
    return x[: x.shape[0] // HOP * HOP]


@dataclass(frozen=True, slots=True)
class FileResult:
    name: str
    f0_err_st: np.ndarray  # per hop both voiced: ours - Praat, semitones
    gross: np.ndarray  # bool per such hop
    jitter: tuple[float, float]  # (ours, Praat)
    shimmer_db: tuple[float, float]
    hnr_db: tuple[float, float]
    rate: tuple[float, float] | None  # (ours, labelled) syllables/s


def syllables_before(silb: Path, limit_s: float) -> int:
    n = 0
    for line in silb.read_text(encoding="latin-1").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1] != "." and float(parts[0]) < limit_s:
            n += 1
    return n


def evaluate_file(path: Path, config: ProsodyConfig, silb: Path | None = None) -> FileResult:
    import parselmouth
    from parselmouth.praat import call

    x = read_16k(path)
    n = x.shape[0] // HOP
    pcm = np.concatenate((x, np.zeros(FLUSH_HOPS * HOP, np.int16)))
    mask = np.concatenate((np.ones(n, bool), np.zeros(FLUSH_HOPS, bool)))
    tracker = ProsodyTracker(config)
    hops = tracker.push(pcm, mask)
    summ = tracker.summary()

    snd = parselmouth.Sound(x.astype(np.float64) / 32768.0, SAMPLE_RATE)
    pitch = snd.to_pitch_ac(time_step=0.01, pitch_floor=F0_MIN, pitch_ceiling=F0_MAX)
    pf = pitch.selected_array["frequency"]
    px = pitch.xs()
    centres = (np.arange(n) + 1) * HOP / SAMPLE_RATE - FRAME_LAG_S
    idx = np.clip(np.round((centres - px[0]) / 0.01).astype(int), 0, len(pf) - 1)
    near = np.abs(px[idx] - centres) <= 0.0051
    praat_f0 = np.where(near, pf[idx], 0.0)
    ours_st = hops.f0_st[:n]
    both = (praat_f0 > 0) & ~np.isnan(ours_st)
    praat_st = 12.0 * np.log2(np.where(both, praat_f0, 1.0) / 27.5)
    err = (ours_st - praat_st)[both]
    ours_hz = 27.5 * 2.0 ** (ours_st[both] / 12.0)
    gross = np.abs(ours_hz / praat_f0[both] - 1.0) > 0.2

    pp = call(snd, "To PointProcess (periodic, cc)", F0_MIN, F0_MAX)
    pj = call(pp, "Get jitter (local)", 0, 0, 0.0001, 0.02, 1.3)
    ps = call([snd, pp], "Get shimmer (local_dB)", 0, 0, 0.0001, 0.02, 1.3, 1.6)
    harm = snd.to_harmonicity_cc(time_step=0.01, minimum_pitch=F0_MIN)
    ph = call(harm, "Get mean", 0, 0)
    rate = None
    if silb is not None and silb.exists():
        rate = (summ.nuclei / EXCERPT_S, syllables_before(silb, EXCERPT_S) / EXCERPT_S)
    return FileResult(
        name=path.name,
        f0_err_st=err,
        gross=gross,
        jitter=(summ.jitter, float(pj)),
        shimmer_db=(summ.shimmer_db, float(ps)),
        hnr_db=(summ.hnr_mean_db, float(ph)),
        rate=rate,
    )


def file_sets(root: Path) -> dict[str, list[tuple[Path, Path | None]]]:
    emo = sorted((root / "emotion" / "wav").glob("*.wav"))
    silb = root / "emotion" / "silb"

    def emo_set(speakers: tuple[str, ...]) -> list[tuple[Path, Path | None]]:
        return [(p, silb / (p.stem + ".silb")) for p in emo if p.name[:2] in speakers]

    return {
        "tune: vad/": [(p, None) for p in sorted((root / "vad").glob("*.wav"))],
        "tune: emotion 03,08,10": emo_set(TUNE_SPEAKERS),
        "report: emotion 09,11,12": emo_set(REPORT_SPEAKERS),
    }


@dataclass(frozen=True, slots=True)
class SetScores:
    files: int
    f0_frames: int
    f0_median_err_st: float
    f0_gross_rate: float
    r_jitter: float
    r_shimmer: float
    r_hnr: float
    r_rate: float
    rate_mae: float


def _corr(pairs: list[tuple[float, float]]) -> float:
    a = np.array([p for p in pairs if all(math.isfinite(v) for v in p)])
    if a.shape[0] < 3:
        return math.nan
    return float(np.corrcoef(a[:, 0], a[:, 1])[0, 1])


def score(results: list[FileResult]) -> SetScores:
    err = np.concatenate([r.f0_err_st for r in results])
    gross = np.concatenate([r.gross for r in results])
    rates = [r.rate for r in results if r.rate is not None]
    rate_arr = np.array(rates) if rates else np.zeros((0, 2))
    return SetScores(
        files=len(results),
        f0_frames=int(err.shape[0]),
        f0_median_err_st=float(np.median(np.abs(err))) if err.size else math.nan,
        f0_gross_rate=float(gross.mean()) if gross.size else math.nan,
        r_jitter=_corr([r.jitter for r in results]),
        r_shimmer=_corr([r.shimmer_db for r in results]),
        r_hnr=_corr([r.hnr_db for r in results]),
        r_rate=_corr(rates) if rates else math.nan,
        rate_mae=float(np.mean(np.abs(rate_arr[:, 0] - rate_arr[:, 1]))) if rates else math.nan,
    )


def evaluate_set(
    files: list[tuple[Path, Path | None]], config: ProsodyConfig | None = None
) -> SetScores:
    cfg = config or ProsodyConfig()
    return score([evaluate_file(p, cfg, s) for p, s in files])


def main() -> int:
    root = shared_data_dir()
    if root is None:
        print("../shared/data is not present", file=sys.stderr)
        return 1
    head = (
        f"{'set':<26}{'files':>6}{'frames':>8}{'F0 med|e| st':>14}{'gross %':>9}"
        f"{'r jit':>7}{'r shim':>7}{'r HNR':>7}{'r rate':>7}{'rate MAE':>9}"
    )
    print(head)
    print("-" * len(head))
    for name, files in file_sets(root).items():
        s = evaluate_set(files)
        print(
            f"{name:<26}{s.files:>6}{s.f0_frames:>8}{s.f0_median_err_st:>14.3f}"
            f"{100 * s.f0_gross_rate:>9.2f}{s.r_jitter:>7.2f}{s.r_shimmer:>7.2f}{s.r_hnr:>7.2f}"
            f"{s.r_rate:>7.2f}{s.rate_mae:>9.2f}"
        )
    print("rate: syllables/s over the 2.0 s excerpt; r: Pearson over files; MAE in syll/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
