"""Alerts for the facilitator, raised and cleared with hysteresis (docs/signals.md).

An alert is a prompt to look, never a judgement. Each kind is raised by one condition
and cleared by a weaker one, so it does not flicker on and off around a threshold:
- withdrawal: a participant silent for `withdrawal_min` minutes while the others talked
  (at least `withdrawal_others_s` in the last 5 minutes); clears when they speak;
- dominance: one participant holds more than `dominance_share` of the last 5 minutes'
  speech (once there is `dominance_min_speech_s` of it); clears below
  `dominance_clear_share`; facilitators are left out unless `dominance_facilitator`;
- group_silence: nobody has spoken for `silence_s`; clears when someone speaks;
- interrupted: one person interrupted `interruptions` times within 5 minutes; clears when
  the count in the last 5 minutes falls to `interruptions_clear`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from engine.config import AlertConfig, SignalConfig
from engine.signals import SessionSignals, SignalTracker
from engine.types import HOPS_PER_SECOND, Alert, SpeechSegment

KINDS = ("withdrawal", "dominance", "group_silence", "interrupted")
WINDOW_S = 300.0
MAX_HISTORY = 1000
"""Alerts kept per session (the oldest cleared ones go first)."""


@dataclass(slots=True)
class AlertTracker:
    """Per-session alert state; `update` with each new SessionSignals."""

    config: AlertConfig
    roles: dict[str, str] = field(default_factory=dict)
    _active: dict[tuple[str, str], Alert] = field(default_factory=dict)
    history: list[Alert] = field(default_factory=list)  # everything raised, in order

    def reset(self) -> None:
        self._active.clear()
        self.history.clear()

    @property
    def active(self) -> list[Alert]:
        return list(self._active.values())

    def update(self, sig: SessionSignals) -> list[Alert]:
        """Raise and clear alerts for the figures at `sig.now_s`; returns what changed."""
        changed: list[Alert] = []
        for key, raise_msg, clear in self._conditions(sig):
            alert = self._active.get(key)
            if alert is None and raise_msg is not None:
                kind, pid = key
                alert = Alert(
                    id=f"{kind}:{pid or 'group'}:{round(sig.now_s * 1000)}",
                    kind=kind,
                    participant=pid,
                    since_s=sig.now_s,
                    cleared_s=-1.0,
                    message=raise_msg,
                )
                self._active[key] = alert
                self.history.append(alert)
                changed.append(alert)
            elif alert is not None and clear:
                done = replace(alert, cleared_s=sig.now_s)
                del self._active[key]
                self.history[self.history.index(alert)] = done
                changed.append(done)
        if len(self.history) > MAX_HISTORY:
            cleared = [a for a in self.history if not a.active]
            for a in cleared[: len(self.history) - MAX_HISTORY]:
                self.history.remove(a)
        return changed

    def _conditions(self, sig: SessionSignals) -> list[tuple[tuple[str, str], str | None, bool]]:
        """(key, message if the raising condition holds, whether the clearing one holds)."""
        c = self.config
        out: list[tuple[tuple[str, str], str | None, bool]] = []
        speech5 = {p: v.speech_5min_s for p, v in sig.participants.items()}
        total5 = sum(speech5.values())
        window_start = sig.now_s - WINDOW_S
        received: dict[str, int] = {}
        for t, _, of in sig.interruptions:
            if t >= window_start:
                received[of] = received.get(of, 0) + 1
        for pid, v in sig.participants.items():
            facilitator = self.roles.get(pid) == "facilitator"
            silent = v.since_last_spoke_s if v.since_last_spoke_s >= 0 else sig.now_s
            others = total5 - speech5[pid]
            withdrawn = (
                not facilitator
                and silent >= c.withdrawal_min * 60
                and others >= c.withdrawal_others_s
            )
            out.append(
                (
                    ("withdrawal", pid),
                    f"{pid} has not spoken for {_minutes(silent)} while others talked"
                    if withdrawn
                    else None,
                    silent < c.withdrawal_min * 60,
                )
            )
            if not facilitator or c.dominance_facilitator:
                enough = total5 >= c.dominance_min_speech_s
                share = v.share_5min
                out.append(
                    (
                        ("dominance", pid),
                        f"{pid} did {share:.0%} of the talking in the last 5 minutes"
                        if enough and share > c.dominance_share
                        else None,
                        share < c.dominance_clear_share,
                    )
                )
            n = received.get(pid, 0)
            out.append(
                (
                    ("interrupted", pid),
                    f"{pid} was interrupted {n} times in the last 5 minutes"
                    if n >= c.interruptions
                    else None,
                    n <= c.interruptions_clear,
                )
            )
        quiet = sig.current_group_silence_s
        out.append(
            (
                ("group_silence", ""),
                f"nobody has spoken for {quiet:.0f} s" if quiet >= c.silence_s else None,
                quiet == 0.0,
            )
        )
        return out


def _minutes(seconds: float) -> str:
    m = max(1, int(seconds // 60))
    return f"{m} minute" if m == 1 else f"{m} minutes"


def replay(
    by_pid: Mapping[str, Sequence[SpeechSegment]],
    duration_hops: int,
    *,
    roles: Mapping[str, str],
    signals: SignalConfig,
    alerts: AlertConfig,
    step_s: float = 1.0,
) -> tuple[SessionSignals, list[Alert]]:
    """Run a recorded session through the live signal and alert path, a snapshot every
    `step_s`, as a live session would have seen it; returns the final figures and every
    alert raised (with when it cleared)."""
    tracker = SignalTracker(signals)
    alert_state = AlertTracker(alerts, roles=dict(roles))
    for pid in by_pid:
        tracker.add_participant(pid, roles.get(pid, "participant"))
    segs = {p: sorted(s, key=lambda x: x.start) for p, s in by_pid.items()}
    nxt = dict.fromkeys(segs, 0)
    step = max(1, round(step_s * HOPS_PER_SECOND))
    now = 0
    while True:
        now = min(now + step, duration_hops)
        open_now: dict[str, SpeechSegment | None] = {}
        for pid, ss in segs.items():
            k = nxt[pid]
            new = []
            while k < len(ss) and ss[k].end <= now:
                new.append(ss[k])
                k += 1
            nxt[pid] = k
            tracker.add_segments(pid, new)
            if k < len(ss) and ss[k].start < now:
                tracker.settle(pid, ss[k].start)
                open_now[pid] = SpeechSegment(ss[k].start, now)
            else:
                tracker.settle(pid, now)
        tracker.advance()
        if now >= duration_hops:
            break
        alert_state.update(tracker.snapshot(now, open_now))
    tracker.finish(duration_hops)
    final = tracker.snapshot(duration_hops)
    alert_state.update(final)
    return final, list(alert_state.history)
