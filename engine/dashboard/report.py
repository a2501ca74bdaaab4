"""The post-session report: one self-contained HTML file, plots as inline SVG.

Input is either the JSON `groupsense analyze --json` writes (participants with their
speech segments) or a session summary as the dashboard serves it (`session_json`).
Whatever figures the input carries are used (a who-follows-whom matrix, group silences,
cues); what it lacks is computed from the segments when there are segments, and
otherwise the section says so in words. No JavaScript, no external resource: the file
opens anywhere and prints to PDF as it looks.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.config import SignalConfig
from engine.signals import SessionSignals, balance, session_signals
from engine.types import SpeechSegment

# Okabe-Ito, in an order whose neighbours differ in lightness too; dash patterns and
# markers repeat the distinction for grey-scale printing and colour-blind readers.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2", "10 4", "4 4", "3 6")
MIN_GROUP_SILENCE_S = SignalConfig().group_silence_min_s
LABEL_W = 220  # room for "p-0123456789 (facilitator)" left of the plots


@dataclass(slots=True)
class Person:
    name: str
    role: str
    speaking_s: float
    share: float
    segments: list[tuple[float, float]] | None
    cues: list[Mapping[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class ReportModel:
    title: str
    source: str
    duration_s: float
    people: list[Person]
    transitions: dict[str, dict[str, int]] | None
    silences: list[tuple[float, float]] | None
    data: Mapping[str, Any]


# -- input --------------------------------------------------------------------------------
def _segments(raw: Any) -> list[tuple[float, float]] | None:
    if not isinstance(raw, list):
        return None
    out: list[tuple[float, float]] = []
    for s in raw:
        if isinstance(s, list | tuple) and len(s) >= 2:
            out.append((float(s[0]), float(s[1])))
        elif isinstance(s, Mapping) and "start_s" in s and "end_s" in s:
            out.append((float(s["start_s"]), float(s["end_s"])))
    return sorted(out)


def _first(d: Mapping[str, Any], *names: str) -> Any:
    for n in names:
        if n in d and d[n] is not None:
            return d[n]
    return None


def load_model(data: Mapping[str, Any], title: str | None = None) -> ReportModel:
    """Either input shape -> one model the sections read."""
    if isinstance(data.get("group"), Mapping):  # `analyze --json` nests the group figures
        data = {**data, **data["group"]}
    raw = data.get("participants")
    if not isinstance(raw, list):
        raise ValueError("the input has no 'participants' list: is it `analyze --json` output?")
    raw = [
        {**p, **p["signals"]}
        if isinstance(p, Mapping) and isinstance(p.get("signals"), Mapping)
        else p
        for p in raw
    ]
    data = {**data, "participants": raw}
    people: list[Person] = []
    for p in raw:
        name = str(_first(p, "name", "participant_id") or f"#{len(people) + 1}")
        role = str(p.get("role") or ("facilitator" if "facilitator" in name.lower() else ""))
        affect = p.get("affect") if isinstance(p.get("affect"), Mapping) else {}
        cues = p.get("cues") or affect.get("cues")  # live summaries; analyze --affect
        cues = cues if isinstance(cues, list) else []
        people.append(
            Person(
                name=name,
                role=role,
                speaking_s=float(p.get("speaking_s") or 0.0),
                share=float(p.get("share") or 0.0),
                segments=_segments(p.get("segments")),
                cues=[c for c in cues if isinstance(c, Mapping)],
            )
        )
    for c in data.get("cues") or []:  # session-level cues naming their participant
        if isinstance(c, Mapping):
            for person in people:
                if person.name == c.get("participant_id"):
                    person.cues.append(dict(c))
    if "duration_s" in data:
        duration = float(data["duration_s"])
        source = "recording analysed with `groupsense analyze`"
    else:
        duration = float(data.get("session_ms") or 0) / 1000
        source = "live session summary" if data.get("final") else "live session (still running)"
    ends = [e for p in people for _, e in (p.segments or [])]
    duration = max(duration, max(ends, default=0.0))
    sid = data.get("session_id")
    files = sorted(  # names only: a report may travel, its author's folders need not
        {Path(str(p["file"])).name for p in raw if isinstance(p, Mapping) and p.get("file")}
    )
    name = title or (f"session {sid}" if sid else ", ".join(files) or "session")
    return ReportModel(
        title=name,
        source=source,
        duration_s=duration,
        people=people,
        transitions=_given_transitions(data, people),
        silences=_given_silences(data),
        data=data,
    )


def _given_transitions(
    data: Mapping[str, Any], people: list[Person]
) -> dict[str, dict[str, int]] | None:
    raw = _first(data, "who_follows_whom", "transitions", "follows")
    if isinstance(raw, Mapping):
        inner = raw.get("matrix") if "matrix" in raw else raw
        ids = raw.get("participants") or raw.get("ids")
        if isinstance(inner, list) and isinstance(ids, list):
            return {
                str(a): {str(b): int(n) for b, n in zip(ids, row, strict=False)}
                for a, row in zip(ids, inner, strict=False)
            }
        if isinstance(inner, Mapping):
            return {
                str(a): {str(b): int(n) for b, n in row.items()}
                for a, row in inner.items()
                if isinstance(row, Mapping)
            }
    if isinstance(raw, list) and all(isinstance(t, Mapping) for t in raw):
        counts = {p.name: {q.name: 0 for q in people} for p in people}
        for t in raw:
            a, b = _first(t, "from_id", "from"), _first(t, "to_id", "to")
            if a is None or b is None:
                return None
            row = counts.setdefault(str(a), {})
            row[str(b)] = row.get(str(b), 0) + int(t.get("count", 1))
        return counts
    if isinstance(raw, list) and len(raw) == len(people):
        return {
            a.name: {b.name: int(n) for b, n in zip(people, row, strict=False)}
            for a, row in zip(people, raw, strict=False)
        }
    return None


def _given_silences(data: Mapping[str, Any]) -> list[tuple[float, float]] | None:
    raw = _first(data, "group_silence_spans", "silences", "group_silences")
    if isinstance(raw, list):
        return _segments(raw)
    return None


def reading_silence_counts(data: Mapping[str, Any]) -> str | None:
    """Group silences from a summary's counts, when it has no spans."""
    n = data.get("group_silences")
    if not isinstance(n, int) or isinstance(n, bool):
        return None
    if n == 0:
        return f"There was no group silence of {MIN_GROUP_SILENCE_S:.0f} s or more."
    total = float(data.get("group_silence_s") or 0.0)
    longest = float(data.get("longest_group_silence_s") or 0.0)
    return (
        f"There {'was' if n == 1 else 'were'} {n} group silence{'s' if n != 1 else ''} of "
        f"{MIN_GROUP_SILENCE_S:.0f} s or more, {total:.0f} s in all; the longest lasted "
        f"{longest:.0f} s."
    )


# -- figures from segments: the engine's own definitions (docs/signals.md) ---------------
def _signals(people: Sequence[Person]) -> SessionSignals:
    by = {
        p.name: [SpeechSegment(round(a * 100), round(b * 100)) for a, b in p.segments or []]
        for p in people
    }
    end = max((s.end for segs in by.values() for s in segs), default=0)
    return session_signals(by, end, SignalConfig(group_silence_min_s=MIN_GROUP_SILENCE_S))


def transitions_from_segments(people: Sequence[Person]) -> dict[str, dict[str, int]]:
    """Who takes the floor after whom (floor changes, as engine.signals counts them)."""
    counts = {p.name: {q.name: 0 for q in people} for p in people}
    for (a, b), n in _signals(people).follows.items():
        counts[a][b] = n
    return counts


def group_silences(people: Sequence[Person]) -> list[tuple[float, float]]:
    """Stretches with nobody speaking, at least MIN_GROUP_SILENCE_S long, after the first
    speech and ended by speech."""
    return list(_signals(people).silences)


def balance_entropy(amounts: Sequence[float]) -> float:
    """Normalised entropy of speaking times: 1 = everyone equal, 0 = one person only."""
    return balance(amounts)[0]


# -- formatting -----------------------------------------------------------------------------
def clock(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _label(p: Person) -> str:
    tagged = p.role == "facilitator" and "facilitator" not in p.name.lower()
    return p.name + (" (facilitator)" if tagged else "")


# -- SVG plots -------------------------------------------------------------------------------
def _axis_ticks(duration: float, x0: float, width: float, y: float, height: float) -> str:
    step = next((s for s in (10, 30, 60, 120, 300, 600, 900, 1800) if duration / s <= 8), 3600)
    out = []
    t = 0.0
    while t <= duration + 1e-6:
        x = x0 + width * (t / duration if duration else 0)
        out.append(
            f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x:.1f}" y2="{y + height:.1f}" '
            'stroke="#d0d0d0" stroke-width="1"/>'
            f'<text x="{x:.1f}" y="{y + height + 14:.1f}" font-size="11" '
            f'text-anchor="middle" fill="#333">{clock(t)}</text>'
        )
        t += step
    return "".join(out)


def timeline_svg(model: ReportModel) -> str:
    """Who spoke when: one row per person, a bar per speech segment."""
    people = [p for p in model.people if p.segments is not None]
    if not people or model.duration_s <= 0:
        return ""
    row, x0, width = 26, LABEL_W, 620
    height = row * len(people)
    parts = [
        f'<svg viewBox="0 0 {x0 + width + 20} {height + 40}" width="100%" role="img" '
        f'aria-labelledby="tl-title" xmlns="http://www.w3.org/2000/svg">'
        '<title id="tl-title">Who spoke when, one row per person</title>',
        _axis_ticks(model.duration_s, x0, width, 4, height),
    ]
    for silence in model.silences or []:
        a, b = silence
        parts.append(
            f'<rect x="{x0 + width * a / model.duration_s:.1f}" y="4" '
            f'width="{max(width * (b - a) / model.duration_s, 1):.1f}" height="{height}" '
            'fill="#f1ecd9"/>'
        )
    for i, p in enumerate(people):
        y = 4 + i * row
        colour = PALETTE[i % len(PALETTE)]
        parts.append(
            f'<text x="{x0 - 8}" y="{y + row * 0.65:.1f}" font-size="12" text-anchor="end" '
            f'fill="#1a1a1a">{_e(_label(p))}</text>'
        )
        for a, b in p.segments or []:
            parts.append(
                f'<rect x="{x0 + width * a / model.duration_s:.2f}" y="{y + 5}" '
                f'width="{max(width * (b - a) / model.duration_s, 0.8):.2f}" height="{row - 10}" '
                f'fill="{colour}"/>'
            )
    parts.append("</svg>")
    return "".join(parts)


def per_bin(model: ReportModel) -> tuple[float, list[list[float]]]:
    """Seconds of speech per person per time bin (about 8-30 bins)."""
    d = max(model.duration_s, 1.0)
    size = next((s for s in (15, 30, 60, 120, 300, 600) if d / s <= 30), 900)
    n = max(math.ceil(d / size), 1)
    out = []
    for p in model.people:
        bins = [0.0] * n
        for a, b in p.segments or []:
            k = int(a // size)
            while k < n and k * size < b:
                lo, hi = k * size, (k + 1) * size
                bins[k] += max(0.0, min(b, hi) - max(a, lo))
                k += 1
        out.append(bins)
    return float(size), out


def over_time_svg(model: ReportModel) -> str:
    if not any(p.segments for p in model.people):
        return ""
    size, bins = per_bin(model)
    n = len(bins[0])
    x0, width, height, top = 60, 700, 180, 10
    peak = max(size, 1.0)
    parts = [
        f'<svg viewBox="0 0 {x0 + width + 20} {height + 60}" width="100%" role="img" '
        'aria-labelledby="ot-title" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="ot-title">Seconds of speech per person in each {clock(size)} '
        "of the session</title>",
        _axis_ticks(n * size, x0, width, top, height),
    ]
    for frac in (0.0, 0.5, 1.0):
        y = top + height * (1 - frac)
        parts.append(
            f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + width}" y2="{y:.1f}" stroke="#d0d0d0"/>'
            f'<text x="{x0 - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
            f'fill="#333">{frac * peak:g} s</text>'
        )
    for i, (p, series) in enumerate(zip(model.people, bins, strict=True)):
        colour, dash = PALETTE[i % len(PALETTE)], DASHES[i % len(DASHES)]
        pts = [
            (x0 + width * (k + 0.5) / n, top + height * (1 - v / peak))
            for k, v in enumerate(series)
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2.2"'
            f"{dash_attr}/>"
        )
        ly = top + height + 32
        lx = x0 + i * 170
        parts.append(
            f'<line x1="{lx}" y1="{ly}" x2="{lx + 28}" y2="{ly}" stroke="{colour}" '
            f'stroke-width="2.2"{dash_attr}/>'
            f'<text x="{lx + 34}" y="{ly + 4}" font-size="11" fill="#1a1a1a">'
            f"{_e(p.name)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def shares_svg(model: ReportModel) -> str:
    people = model.people
    if not people:
        return ""
    row, x0, width = 28, LABEL_W, 520
    height = row * len(people)
    even = 1 / len(people)
    top = max(max(p.share for p in people), even) * 1.1
    ex = x0 + width * even / top
    parts = [
        f'<svg viewBox="0 0 {x0 + width + 80} {height + 30}" width="100%" role="img" '
        'aria-labelledby="sh-title" xmlns="http://www.w3.org/2000/svg">'
        '<title id="sh-title">Each person\'s share of all speech; the dashed line is an '
        "even share</title>",
    ]
    for i, p in enumerate(people):
        y = 4 + i * row
        w = width * p.share / top
        parts.append(
            f'<text x="{x0 - 8}" y="{y + row * 0.62:.1f}" font-size="12" text-anchor="end" '
            f'fill="#1a1a1a">{_e(_label(p))}</text>'
            f'<rect x="{x0}" y="{y + 5}" width="{w:.1f}" height="{row - 10}" '
            f'fill="{PALETTE[i % len(PALETTE)]}"/>'
            f'<text x="{x0 + w + 6:.1f}" y="{y + row * 0.62:.1f}" font-size="12" '
            f'fill="#1a1a1a">{pct(p.share)} · {clock(p.speaking_s)}</text>'
        )
    parts.append(
        f'<line x1="{ex:.1f}" y1="2" x2="{ex:.1f}" y2="{height + 6}" stroke="#333" '
        'stroke-dasharray="4 3"/>'
        f'<text x="{ex:.1f}" y="{height + 22}" font-size="11" text-anchor="middle" '
        f'fill="#333">even share {pct(even)}</text></svg>'
    )
    return "".join(parts)


def follows_svg(model: ReportModel, counts: Mapping[str, Mapping[str, int]]) -> str:
    """Nodes on a circle; an arrow A -> B as thick as how often B spoke after A."""
    names = [p.name for p in model.people]
    total = max((n for row in counts.values() for n in row.values()), default=0)
    if len(names) < 2 or total == 0:
        return ""
    cx, cy, r, node = 260, 205, 140, 30
    pos = {
        n: (
            cx + r * math.cos(2 * math.pi * i / len(names) - math.pi / 2),
            cy + r * math.sin(2 * math.pi * i / len(names) - math.pi / 2),
        )
        for i, n in enumerate(names)
    }
    parts = [
        '<svg viewBox="0 0 520 410" width="100%" class="graph" role="img" '
        'aria-labelledby="fw-title" '
        'xmlns="http://www.w3.org/2000/svg"><title id="fw-title">Who spoke after whom: '
        "arrows point from a speaker to the next, thicker when more frequent</title>"
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" '
        'markerHeight="9" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#444"/></marker></defs>'
    ]
    for a in names:
        for b in names:
            n = counts.get(a, {}).get(b, 0)
            if a == b or n == 0:
                continue
            (x1, y1), (x2, y2) = pos[a], pos[b]
            dx, dy = x2 - x1, y2 - y1
            d = math.hypot(dx, dy) or 1.0
            ux, uy = dx / d, dy / d
            ox, oy = -uy * 7, ux * 7  # two directions side by side
            sx, sy = x1 + ux * node + ox, y1 + uy * node + oy
            ex, ey = x2 - ux * (node + 4) + ox, y2 - uy * (node + 4) + oy
            w = 1 + 7 * n / total
            parts.append(
                f'<line x1="{sx:.1f}" y1="{sy:.1f}" x2="{ex:.1f}" y2="{ey:.1f}" '
                f'stroke="#444" stroke-opacity="0.75" stroke-width="{w:.1f}" '
                'marker-end="url(#arrow)"/>'
                f'<text x="{(sx + ex) / 2 + ox * 1.4:.1f}" y="{(sy + ey) / 2 + oy * 1.4 + 4:.1f}" '
                f'font-size="11" text-anchor="middle" fill="#1a1a1a">{n}</text>'
            )
    for i, name in enumerate(names):
        x, y = pos[name]
        inside = len(name) <= 9  # longer names (pseudonyms) go under the circle
        ty = y + 4 if inside else (y + node + 15 if y >= cy else y - node - 7)
        halo = "" if inside else ' stroke="#fff" stroke-width="4" paint-order="stroke"'
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{node}" fill="#fff" '
            f'stroke="{PALETTE[i % len(PALETTE)]}" stroke-width="4"/>'
            f'<text x="{x:.1f}" y="{ty:.1f}" font-size="13" text-anchor="middle" '
            f'fill="#1a1a1a"{halo}>{_e(name[:24])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def cues_svg(model: ReportModel) -> str:
    rows = [p for p in model.people if p.cues]
    if not rows or model.duration_s <= 0:
        return ""
    row, x0, width = 26, LABEL_W, 620
    height = row * len(rows)
    parts = [
        f'<svg viewBox="0 0 {x0 + width + 20} {height + 40}" width="100%" role="img" '
        'aria-labelledby="cu-title" xmlns="http://www.w3.org/2000/svg">'
        '<title id="cu-title">When cues were shown, per person</title>',
        _axis_ticks(model.duration_s, x0, width, 4, height),
    ]
    for i, p in enumerate(rows):
        y = 4 + i * row
        parts.append(
            f'<text x="{x0 - 8}" y="{y + row * 0.65:.1f}" font-size="12" text-anchor="end" '
            f'fill="#1a1a1a">{_e(p.name)}</text>'
        )
        for c in p.cues:
            a, b = _cue_span(c)
            if a is None:
                continue
            b = a if b is None else b
            parts.append(
                f'<rect x="{x0 + width * a / model.duration_s:.1f}" y="{y + 6}" '
                f'width="{max(width * (b - a) / model.duration_s, 3):.1f}" height="{row - 12}" '
                'fill="#E69F00" stroke="#5c3d00"/>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _cue_span(c: Mapping[str, Any]) -> tuple[float | None, float | None]:
    a = _first(c, "start_s", "since_s", "at_s")
    if a is None and c.get("start_ms") is not None:
        a = float(c["start_ms"]) / 1000
    b = _first(c, "end_s", "until_s", "cleared_s")
    if b is not None and float(b) < 0:
        b = None  # still active at the end
    if b is None and c.get("end_ms") is not None:
        b = float(c["end_ms"]) / 1000
    return (None if a is None else float(a)), (None if b is None else float(b))


def _cue_words(c: Mapping[str, Any]) -> str:
    kind = str(_first(c, "label", "kind", "name") or "cue").replace("_", " ")
    ev = _first(c, "text", "message", "description", "evidence")
    if isinstance(ev, Mapping):
        ev = ", ".join(f"{str(k).replace('_', ' ')} {v}" for k, v in ev.items())
    return kind + (f": {ev}" if ev else "")


# -- readings ---------------------------------------------------------------------------------
def reading_shares(model: ReportModel) -> str:
    people = sorted(model.people, key=lambda p: p.share, reverse=True)
    if not people:
        return "Nobody was heard."
    even = 1 / len(people)
    top, low = people[0], people[-1]
    ent = balance_entropy([p.speaking_s for p in people])
    word = "evenly" if ent >= 0.9 else "fairly evenly" if ent >= 0.75 else "unevenly"
    text = (
        f"{top.name} spoke most ({pct(top.share)} of all speech) and {low.name} least "
        f"({pct(low.share)}); with {len(people)} people an even share is {pct(even)} each. "
        f"Talk was spread {word} (balance {ent:.2f}, where 1 means everyone spoke equally)."
    )
    fac = [p for p in people if p.role == "facilitator"]
    if fac:
        text += f" The facilitator took {pct(sum(p.share for p in fac))} of the talk."
    return text


def reading_over_time(model: ReportModel) -> str:
    size, bins = per_bin(model)
    words = []
    for p, series in zip(model.people, bins, strict=True):
        active = [k for k, v in enumerate(series) if v > 0]
        if not active:
            words.append(f"{p.name} did not speak")
            continue
        lapse = _longest_quiet(p, model.duration_s)
        words.append(
            f"{p.name} spoke in {len(active)} of {len(series)} stretches of {clock(size)}, "
            f"longest quiet {clock(lapse)}"
        )
    return "; ".join(words) + "."


def _longest_quiet(p: Person, duration: float) -> float:
    edges = [0.0, *[x for s in p.segments or [] for x in s], duration]
    return max((edges[i + 1] - edges[i] for i in range(0, len(edges) - 1, 2)), default=duration)


def reading_follows(model: ReportModel, counts: Mapping[str, Mapping[str, int]]) -> str:
    pairs = sorted(
        ((n, a, b) for a, row in counts.items() for b, n in row.items() if a != b and n),
        reverse=True,
    )
    if not pairs:
        return "There were no changes of speaker to count."
    total = sum(n for n, _, _ in pairs)
    text = f"The floor changed hands {total} times. Most often {pairs[0][2]} spoke after "
    text += f"{pairs[0][1]} ({pairs[0][0]} time{'s' if pairs[0][0] != 1 else ''})"
    if len(pairs) > 1:
        text += f", then {pairs[1][2]} after {pairs[1][1]} ({pairs[1][0]})"
    names = [p.name for p in model.people]
    never = [n for n in names if not any(counts.get(a, {}).get(n, 0) for a in names)]
    if never:
        text += f". Nobody handed over to {', '.join(never)}"
    return text + "."


def reading_silences(silences: Sequence[tuple[float, float]]) -> str:
    if not silences:
        return f"There was no group silence of {MIN_GROUP_SILENCE_S:.0f} s or more."
    lengths = [b - a for a, b in silences]
    k = max(range(len(lengths)), key=lengths.__getitem__)
    return (
        f"There {'was' if len(silences) == 1 else 'were'} {len(silences)} group "
        f"silence{'s' if len(silences) != 1 else ''} of {MIN_GROUP_SILENCE_S:.0f} s or more, "
        f"{sum(lengths):.0f} s in all; the longest, {lengths[k]:.0f} s, began at "
        f"{clock(silences[k][0])}."
    )


# -- the page ---------------------------------------------------------------------------------
_CSS = """
:root { color-scheme: light; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans",
  sans-serif; color: #1a1a1a; background: #fff; margin: 0 auto; max-width: 860px;
  padding: 24px; }
h1 { font-size: 1.6rem; margin: 0 0 4px; }
h2 { font-size: 1.15rem; margin: 28px 0 6px; border-bottom: 1px solid #ccc;
  padding-bottom: 2px; }
.meta { color: #444; margin: 0 0 12px; }
.reading { margin: 6px 0 10px; }
.note { color: #444; font-size: .9rem; }
table { border-collapse: collapse; margin: 8px 0; font-size: .9rem; }
th, td { border: 1px solid #bbb; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
section { break-inside: avoid; page-break-inside: avoid; }
svg { display: block; max-width: 100%; height: auto; }
svg.graph { max-width: 520px; margin: 0 auto; }
@page { size: A4; margin: 16mm 14mm; }
@media print {
  body { padding: 0; max-width: none; font-size: 11pt; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2 { break-after: avoid; }
}
"""


def _table(model: ReportModel) -> str:
    extra_keys = ["turns", "longest_turn_s", "longest_silence_s"]
    raw = {str(_first(p, "name", "participant_id")): p for p in model.data["participants"]}
    keys = [k for k in extra_keys if any(k in r for r in raw.values())]
    head = "".join(f"<th>{_e(k.removesuffix('_s').replace('_', ' '))}</th>" for k in keys)
    rows = []
    for p in model.people:
        r = raw.get(p.name, {})
        cells = "".join(
            f"<td>{_e(clock(r[k]) if k.endswith('_s') and r.get(k) is not None else r.get(k, ''))}"
            "</td>"
            for k in keys
        )
        rows.append(
            f"<tr><td>{_e(_label(p))}</td><td>{clock(p.speaking_s)}</td>"
            f"<td>{pct(p.share)}</td>{cells}</tr>"
        )
    return (
        "<table><caption class='note'>Figures per person</caption><thead><tr><th>person</th>"
        f"<th>speaking</th><th>share</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _matrix_table(model: ReportModel, counts: Mapping[str, Mapping[str, int]]) -> str:
    names = [p.name for p in model.people]
    head = "".join(f"<th scope='col'>{_e(n)}</th>" for n in names)
    rows = "".join(
        f"<tr><th scope='row'>{_e(a)}</th>"
        + "".join(f"<td>{counts.get(a, {}).get(b, 0) if a != b else '–'}</td>" for b in names)
        + "</tr>"
        for a in names
    )
    return (
        "<table><caption class='note'>Rows: who spoke; columns: who spoke next</caption>"
        f"<thead><tr><th></th>{head}</tr></thead><tbody>{rows}</tbody></table>"
    )


def _alerts_section(model: ReportModel) -> list[str]:
    """Alerts the engine raised (a summary carries all of them, with clearing times)."""
    alerts = [a for a in model.data.get("alerts") or [] if isinstance(a, Mapping)]
    if not alerts and "duration_s" in model.data:
        return []  # `analyze` output has no alerts: say nothing rather than "none"
    out = ["<section aria-labelledby='s-alerts'><h2 id='s-alerts'>Alerts</h2>"]
    if not alerts:
        out.append("<p class='reading'>No alert was raised in this session.</p></section>")
        return out
    kinds: dict[str, int] = {}
    for a in alerts:
        kinds[str(a.get("kind", "alert"))] = kinds.get(str(a.get("kind", "alert")), 0) + 1
    summary = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(kinds.items()))
    out.append(
        f"<p class='reading'>{len(alerts)} alert(s) were raised ({_e(summary)}). Each was a "
        "prompt to look, raised and cleared automatically.</p><ul>"
    )
    for a in alerts:
        since = a.get("since_s")
        cleared = a.get("cleared_s")
        when = f"{clock(float(since))}" if isinstance(since, int | float) else ""
        if isinstance(cleared, int | float) and cleared >= 0:
            when += f" – {clock(float(cleared))}"
        who = a.get("participant") or a.get("participant_id") or "the group"
        text = a.get("message") or str(a.get("kind", "alert")).replace("_", " ")
        out.append(f"<li>{_e(when)}: {_e(text)} <span class='note'>({_e(who)})</span></li>")
    out.append("</ul></section>")
    return out


def render_report(data: Mapping[str, Any], *, title: str | None = None) -> str:
    """The whole report as one HTML string."""
    model = load_model(data, title)
    has_segments = any(p.segments for p in model.people)
    if model.silences is None and has_segments:
        model.silences = group_silences(model.people)
    counts = model.transitions
    counted_from = "given"
    if counts is None and has_segments:
        counts = transitions_from_segments(model.people)
        counted_from = "segments"
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    no_segments = (
        "<p class='note'>This input has per-person totals but no speech segments, so this "
        "plot cannot be drawn. Run <code>groupsense analyze --json</code> on the recording "
        "for the full report.</p>"
    )
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>groupsense report: {_e(model.title)}</title><style>{_CSS}</style></head><body>",
        "<header><h1>Session report</h1>",
        f"<p class='meta'>{_e(model.title)} · {clock(model.duration_s)} · "
        f"{len(model.people)} people · {_e(model.source)} · generated {generated}</p>",
        "<p class='note'>Figures come from who spoke when, detected in each person's audio; "
        "nothing was transcribed or recorded. They describe participation, not people: read "
        "them alongside what you saw in the session.</p></header>",
        "<section aria-labelledby='s-shares'><h2 id='s-shares'>Shares of talk</h2>",
        f"<p class='reading'>{_e(reading_shares(model))}</p>",
        shares_svg(model),
        _table(model),
        "</section>",
        "<section aria-labelledby='s-time'><h2 id='s-time'>Participation over time</h2>",
    ]
    if has_segments:
        out += [
            f"<p class='reading'>{_e(reading_over_time(model))}</p>",
            timeline_svg(model),
            over_time_svg(model),
        ]
    else:
        out.append(no_segments)
    out.append("</section>")
    out.append("<section aria-labelledby='s-follow'><h2 id='s-follow'>Who follows whom</h2>")
    if counts is not None:
        note = (
            "Counted from the speech segments: each time the floor passed from one person to "
            "another (short backchannels such as “mm-hm” inside someone else's turn are "
            "left out)."
            if counted_from == "segments"
            else "As computed by the engine."
        )
        out += [
            f"<p class='reading'>{_e(reading_follows(model, counts))}</p>",
            follows_svg(model, counts),
            _matrix_table(model, counts),
            f"<p class='note'>{_e(note)}</p>",
        ]
    else:
        out.append(no_segments)
    out.append("</section>")
    out.append("<section aria-labelledby='s-sil'><h2 id='s-sil'>Group silences</h2>")
    counted = reading_silence_counts(model.data)
    if model.silences is not None:
        out.append(f"<p class='reading'>{_e(reading_silences(model.silences))}</p>")
        if model.silences:
            items = "".join(
                f"<li>{clock(a)} – {clock(b)} ({b - a:.0f} s)</li>" for a, b in model.silences
            )
            out.append(
                f"<ul>{items}</ul><p class='note'>Shaded in the who-spoke-when plot above.</p>"
            )
    elif counted is not None:
        out.append(f"<p class='reading'>{_e(counted)}</p>")
    else:
        out.append(no_segments)
    out.append("</section>")
    out += _alerts_section(model)
    out.append("<section aria-labelledby='s-cues'><h2 id='s-cues'>Cues</h2>")
    cued = [p for p in model.people if p.cues]
    if cued:
        items = "".join(
            f"<li><strong>{_e(p.name)}</strong>: "
            + "; ".join(
                _e(_cue_words(c))
                + (f" (at {clock(a)})" if (a := _cue_span(c)[0]) is not None else "")
                for c in p.cues
            )
            + "</li>"
            for p in cued
        )
        out += [
            f"<p class='reading'>{sum(len(p.cues) for p in cued)} cue(s) for {len(cued)} "
            "person(s), each relative to that person's own baseline: prompts to check in, "
            "never a diagnosis.</p>",
            cues_svg(model),
            f"<ul>{items}</ul>",
        ]
    else:
        out.append(
            "<p class='reading'>No cues in this data: either none fired, or voice cues were "
            "not computed for this session (they need each person's consent).</p>"
        )
    out.append("</section></body></html>")
    return "\n".join(out)
