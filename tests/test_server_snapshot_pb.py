"""The in-place protobuf conversion (engine/server.py) against the plain keyword one.

snapshot_pb and summary_pb fill messages field by field for speed; this keeps them
equal to what building every message from keywords gives, on views with and without
cues, alerts, follows, events and zero figures."""

from __future__ import annotations

import random

from engine.server import _ROLE_PB, snapshot_pb, summary_pb
from engine.types import Alert, Cue, ParticipantView, SessionView, Transition
from groupsense.v1 import groupsense_pb2 as pb


def _cue_ref(c: Cue) -> pb.Cue:
    return pb.Cue(
        id=c.id,
        kind=c.kind,
        since_s=c.since_s,
        cleared_s=c.cleared_s,
        deviation=c.deviation,
        evidence_s=c.evidence_s,
        confidence=c.confidence,
        message=c.message,
    )


def _participant_ref(v: ParticipantView) -> pb.ParticipantSignals:
    return pb.ParticipantSignals(
        participant_id=v.participant_id,
        role=_ROLE_PB[v.role],
        connected=v.connected,
        speaking=v.speaking,
        speaking_s=v.speaking_s,
        share=v.share,
        since_last_spoke_s=v.since_last_spoke_s,
        unknown_s=v.unknown_s,
        share_5min=v.share_5min,
        share_1min=v.share_1min,
        share_vs_equal=v.share_vs_equal,
        turns=v.turns,
        mean_turn_s=v.mean_turn_s,
        longest_turn_s=v.longest_turn_s,
        backchannels=v.backchannels,
        response_latency_s=v.response_latency_s,
        responses=v.responses,
        overlap_s=v.overlap_s,
        overlaps=v.overlaps,
        interruptions_made=v.interruptions_made,
        interruptions_received=v.interruptions_received,
        affect=v.affect,
        arousal=v.arousal,
        valence=v.valence,
        cues=[_cue_ref(c) for c in v.cues],
    )


def _group_ref(v: SessionView) -> pb.GroupSignals:
    return pb.GroupSignals(
        balance_entropy=v.balance_entropy,
        balance_gini=v.balance_gini,
        balance_entropy_5min=v.balance_entropy_5min,
        group_silences=v.group_silences,
        group_silence_s=v.group_silence_s,
        longest_group_silence_s=v.longest_group_silence_s,
        current_group_silence_s=v.current_group_silence_s,
        overlaps=v.overlaps,
        overlap_s=v.overlap_s,
        turn_rate_per_min=v.turn_rate_per_min,
        facilitator_share=v.facilitator_share,
        follows=[pb.Transition(from_id=t.from_id, to_id=t.to_id, count=t.count) for t in v.follows],
    )


def _alert_ref(a: Alert) -> pb.Alert:
    return pb.Alert(
        id=a.id,
        kind=a.kind,
        participant_id=a.participant,
        since_s=a.since_s,
        cleared_s=a.cleared_s,
        message=a.message,
    )


def _snapshot_ref(v: SessionView) -> pb.SessionSnapshot:
    return pb.SessionSnapshot(
        session_id=v.session_id,
        snapshot_seq=v.seq,
        session_ms=v.session_ms,
        participants=[_participant_ref(p) for p in v.participants],
        events=list(v.events),
        final=v.final,
        group=_group_ref(v),
        alerts=[_alert_ref(a) for a in v.alerts],
    )


def _summary_ref(v: SessionView) -> pb.SessionSummary:
    return pb.SessionSummary(
        session_id=v.session_id,
        duration_ms=v.session_ms,
        participants=[_participant_ref(p) for p in v.participants],
        group=_group_ref(v),
        alerts=[_alert_ref(a) for a in v.alerts],
    )


def _value(rng: random.Random) -> float:
    return rng.choice([0.0, -1.0, 1.0, rng.random() * 100, -0.0])


def _view(rng: random.Random, k: int) -> SessionView:
    parts = []
    for i in range(rng.randint(0, 5)):
        pid = f"p-{k:04d}{i:06x}"
        cues = tuple(
            Cue(
                id=f"cue:{pid}:{j}",
                kind="raised_pitch",
                participant=pid,
                since_s=_value(rng),
                cleared_s=_value(rng),
                deviation=_value(rng),
                evidence_s=_value(rng),
                confidence=rng.random(),
                message=f"pitch {j} ↑",
            )
            for j in range(rng.choice([0, 0, 1, 2]))
        )
        parts.append(
            ParticipantView(
                participant_id=pid,
                role=rng.choice(["participant", "facilitator"]),
                connected=rng.random() < 0.8,
                speaking=rng.random() < 0.3,
                speaking_s=_value(rng),
                share=_value(rng),
                since_last_spoke_s=_value(rng),
                unknown_s=_value(rng),
                share_5min=_value(rng),
                share_1min=_value(rng),
                share_vs_equal=_value(rng),
                turns=rng.choice([0, 1, 127, 128, 2**31]),
                mean_turn_s=_value(rng),
                longest_turn_s=_value(rng),
                backchannels=rng.randint(0, 300),
                response_latency_s=_value(rng),
                responses=rng.randint(0, 3),
                overlap_s=_value(rng),
                overlaps=rng.randint(0, 3),
                interruptions_made=rng.randint(0, 3),
                interruptions_received=rng.randint(0, 3),
                affect=rng.random() < 0.5,
                arousal=_value(rng),
                valence=_value(rng),
                cues=cues,
            )
        )
    zero = rng.random() < 0.2  # a group whose figures are all zero still has a group
    return SessionView(
        session_id=f"s{k}",
        seq=rng.randint(0, 10**6),
        session_ms=rng.randint(0, 10**8),
        participants=tuple(parts),
        events=tuple(f"event {j}" for j in range(rng.choice([0, 0, 2]))),
        final=rng.random() < 0.2,
        balance_entropy=0.0 if zero else _value(rng),
        balance_gini=0.0 if zero else _value(rng),
        balance_entropy_5min=0.0 if zero else _value(rng),
        group_silences=0 if zero else rng.randint(0, 200),
        group_silence_s=0.0 if zero else _value(rng),
        longest_group_silence_s=0.0 if zero else _value(rng),
        current_group_silence_s=0.0 if zero else _value(rng),
        overlaps=0 if zero else rng.randint(0, 200),
        overlap_s=0.0 if zero else _value(rng),
        turn_rate_per_min=0.0 if zero else _value(rng),
        facilitator_share=0.0 if zero else _value(rng),
        follows=tuple(
            Transition(from_id=f"a{j}", to_id=f"b{j}", count=rng.randint(1, 500))
            for j in range(0 if zero else rng.randint(0, 4))
        ),
        alerts=tuple(
            Alert(
                id=f"dominance:p:{j}",
                kind="dominance",
                participant=rng.choice(["", "p-1"]),
                since_s=_value(rng),
                cleared_s=_value(rng),
                message="did 70% of the talking",
            )
            for j in range(rng.choice([0, 0, 1, 3]))
        ),
    )


def test_snapshot_and_summary_equal_the_keyword_construction() -> None:
    rng = random.Random(8)
    for k in range(300):
        v = _view(rng, k)
        got, want = snapshot_pb(v), _snapshot_ref(v)
        assert got == want
        assert got.HasField("group")
        assert got.SerializeToString(deterministic=True) == want.SerializeToString(
            deterministic=True
        )
        got_s, want_s = summary_pb(v), _summary_ref(v)
        assert got_s == want_s
        assert got_s.HasField("group")
        assert got_s.SerializeToString(deterministic=True) == want_s.SerializeToString(
            deterministic=True
        )
