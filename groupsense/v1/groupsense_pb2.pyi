from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_PARTICIPANT: _ClassVar[Role]
    ROLE_FACILITATOR: _ClassVar[Role]

class Codec(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CODEC_UNSPECIFIED: _ClassVar[Codec]
    CODEC_PCM16LE: _ClassVar[Codec]
    CODEC_OPUS: _ClassVar[Codec]
ROLE_UNSPECIFIED: Role
ROLE_PARTICIPANT: Role
ROLE_FACILITATOR: Role
CODEC_UNSPECIFIED: Codec
CODEC_PCM16LE: Codec
CODEC_OPUS: Codec

class StreamConfig(_message.Message):
    __slots__ = ("session_id", "participant_ref", "role", "codec", "sample_rate_hz", "channels", "affect_consent", "shared_microphone", "rtp_clock_rate", "rtp_timestamp_base", "rtp_base_capture_ms", "max_speakers", "expected_speakers")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANT_REF_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    AFFECT_CONSENT_FIELD_NUMBER: _ClassVar[int]
    SHARED_MICROPHONE_FIELD_NUMBER: _ClassVar[int]
    RTP_CLOCK_RATE_FIELD_NUMBER: _ClassVar[int]
    RTP_TIMESTAMP_BASE_FIELD_NUMBER: _ClassVar[int]
    RTP_BASE_CAPTURE_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_SPEAKERS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SPEAKERS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    participant_ref: str
    role: Role
    codec: Codec
    sample_rate_hz: int
    channels: int
    affect_consent: bool
    shared_microphone: bool
    rtp_clock_rate: int
    rtp_timestamp_base: int
    rtp_base_capture_ms: int
    max_speakers: int
    expected_speakers: int
    def __init__(self, session_id: _Optional[str] = ..., participant_ref: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ..., codec: _Optional[_Union[Codec, str]] = ..., sample_rate_hz: _Optional[int] = ..., channels: _Optional[int] = ..., affect_consent: _Optional[bool] = ..., shared_microphone: _Optional[bool] = ..., rtp_clock_rate: _Optional[int] = ..., rtp_timestamp_base: _Optional[int] = ..., rtp_base_capture_ms: _Optional[int] = ..., max_speakers: _Optional[int] = ..., expected_speakers: _Optional[int] = ...) -> None: ...

class AudioFrame(_message.Message):
    __slots__ = ("sequence", "capture_ms", "rtp_timestamp", "payload")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_MS_FIELD_NUMBER: _ClassVar[int]
    RTP_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    capture_ms: int
    rtp_timestamp: int
    payload: bytes
    def __init__(self, sequence: _Optional[int] = ..., capture_ms: _Optional[int] = ..., rtp_timestamp: _Optional[int] = ..., payload: _Optional[bytes] = ...) -> None: ...

class IngestRequest(_message.Message):
    __slots__ = ("config", "frame")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    config: StreamConfig
    frame: AudioFrame
    def __init__(self, config: _Optional[_Union[StreamConfig, _Mapping]] = ..., frame: _Optional[_Union[AudioFrame, _Mapping]] = ...) -> None: ...

class StreamWarning(_message.Message):
    __slots__ = ("kind", "sequence", "detail")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[StreamWarning.Kind]
        SEQUENCE_GAP: _ClassVar[StreamWarning.Kind]
        LATE_FRAME: _ClassVar[StreamWarning.Kind]
        REORDERED: _ClassVar[StreamWarning.Kind]
        DUPLICATE: _ClassVar[StreamWarning.Kind]
        CLOCK_SKEW: _ClassVar[StreamWarning.Kind]
    KIND_UNSPECIFIED: StreamWarning.Kind
    SEQUENCE_GAP: StreamWarning.Kind
    LATE_FRAME: StreamWarning.Kind
    REORDERED: StreamWarning.Kind
    DUPLICATE: StreamWarning.Kind
    CLOCK_SKEW: StreamWarning.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    kind: StreamWarning.Kind
    sequence: int
    detail: str
    def __init__(self, kind: _Optional[_Union[StreamWarning.Kind, str]] = ..., sequence: _Optional[int] = ..., detail: _Optional[str] = ...) -> None: ...

class IngestResponse(_message.Message):
    __slots__ = ("participant_id", "frames_received", "last_sequence", "processed_ms", "warnings")
    PARTICIPANT_ID_FIELD_NUMBER: _ClassVar[int]
    FRAMES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PROCESSED_MS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    participant_id: str
    frames_received: int
    last_sequence: int
    processed_ms: int
    warnings: _containers.RepeatedCompositeFieldContainer[StreamWarning]
    def __init__(self, participant_id: _Optional[str] = ..., frames_received: _Optional[int] = ..., last_sequence: _Optional[int] = ..., processed_ms: _Optional[int] = ..., warnings: _Optional[_Iterable[_Union[StreamWarning, _Mapping]]] = ...) -> None: ...

class ChannelOpen(_message.Message):
    __slots__ = ("channel", "config")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    channel: int
    config: StreamConfig
    def __init__(self, channel: _Optional[int] = ..., config: _Optional[_Union[StreamConfig, _Mapping]] = ...) -> None: ...

class ChannelFrame(_message.Message):
    __slots__ = ("channel", "sequence", "capture_ms", "rtp_timestamp", "payload")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_MS_FIELD_NUMBER: _ClassVar[int]
    RTP_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    channel: int
    sequence: int
    capture_ms: int
    rtp_timestamp: int
    payload: bytes
    def __init__(self, channel: _Optional[int] = ..., sequence: _Optional[int] = ..., capture_ms: _Optional[int] = ..., rtp_timestamp: _Optional[int] = ..., payload: _Optional[bytes] = ...) -> None: ...

class FrameBatch(_message.Message):
    __slots__ = ("frames",)
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[ChannelFrame]
    def __init__(self, frames: _Optional[_Iterable[_Union[ChannelFrame, _Mapping]]] = ...) -> None: ...

class ChannelClose(_message.Message):
    __slots__ = ("channel",)
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    channel: int
    def __init__(self, channel: _Optional[int] = ...) -> None: ...

class NodeRequest(_message.Message):
    __slots__ = ("open", "batch", "close")
    OPEN_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    open: ChannelOpen
    batch: FrameBatch
    close: ChannelClose
    def __init__(self, open: _Optional[_Union[ChannelOpen, _Mapping]] = ..., batch: _Optional[_Union[FrameBatch, _Mapping]] = ..., close: _Optional[_Union[ChannelClose, _Mapping]] = ...) -> None: ...

class ChannelStatus(_message.Message):
    __slots__ = ("channel", "ack", "error_code", "error", "closed")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    channel: int
    ack: IngestResponse
    error_code: int
    error: str
    closed: bool
    def __init__(self, channel: _Optional[int] = ..., ack: _Optional[_Union[IngestResponse, _Mapping]] = ..., error_code: _Optional[int] = ..., error: _Optional[str] = ..., closed: _Optional[bool] = ...) -> None: ...

class NodeResponse(_message.Message):
    __slots__ = ("channels",)
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    channels: _containers.RepeatedCompositeFieldContainer[ChannelStatus]
    def __init__(self, channels: _Optional[_Iterable[_Union[ChannelStatus, _Mapping]]] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class ParticipantSignals(_message.Message):
    __slots__ = ("participant_id", "role", "connected", "speaking", "speaking_s", "share", "since_last_spoke_s", "unknown_s", "share_5min", "share_1min", "share_vs_equal", "turns", "mean_turn_s", "longest_turn_s", "backchannels", "response_latency_s", "responses", "overlap_s", "overlaps", "interruptions_made", "interruptions_received", "affect", "arousal", "valence", "cues")
    PARTICIPANT_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    SPEAKING_FIELD_NUMBER: _ClassVar[int]
    SPEAKING_S_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    SINCE_LAST_SPOKE_S_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_S_FIELD_NUMBER: _ClassVar[int]
    SHARE_5MIN_FIELD_NUMBER: _ClassVar[int]
    SHARE_1MIN_FIELD_NUMBER: _ClassVar[int]
    SHARE_VS_EQUAL_FIELD_NUMBER: _ClassVar[int]
    TURNS_FIELD_NUMBER: _ClassVar[int]
    MEAN_TURN_S_FIELD_NUMBER: _ClassVar[int]
    LONGEST_TURN_S_FIELD_NUMBER: _ClassVar[int]
    BACKCHANNELS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_LATENCY_S_FIELD_NUMBER: _ClassVar[int]
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_S_FIELD_NUMBER: _ClassVar[int]
    OVERLAPS_FIELD_NUMBER: _ClassVar[int]
    INTERRUPTIONS_MADE_FIELD_NUMBER: _ClassVar[int]
    INTERRUPTIONS_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    AFFECT_FIELD_NUMBER: _ClassVar[int]
    AROUSAL_FIELD_NUMBER: _ClassVar[int]
    VALENCE_FIELD_NUMBER: _ClassVar[int]
    CUES_FIELD_NUMBER: _ClassVar[int]
    participant_id: str
    role: Role
    connected: bool
    speaking: bool
    speaking_s: float
    share: float
    since_last_spoke_s: float
    unknown_s: float
    share_5min: float
    share_1min: float
    share_vs_equal: float
    turns: int
    mean_turn_s: float
    longest_turn_s: float
    backchannels: int
    response_latency_s: float
    responses: int
    overlap_s: float
    overlaps: int
    interruptions_made: int
    interruptions_received: int
    affect: bool
    arousal: float
    valence: float
    cues: _containers.RepeatedCompositeFieldContainer[Cue]
    def __init__(self, participant_id: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ..., connected: _Optional[bool] = ..., speaking: _Optional[bool] = ..., speaking_s: _Optional[float] = ..., share: _Optional[float] = ..., since_last_spoke_s: _Optional[float] = ..., unknown_s: _Optional[float] = ..., share_5min: _Optional[float] = ..., share_1min: _Optional[float] = ..., share_vs_equal: _Optional[float] = ..., turns: _Optional[int] = ..., mean_turn_s: _Optional[float] = ..., longest_turn_s: _Optional[float] = ..., backchannels: _Optional[int] = ..., response_latency_s: _Optional[float] = ..., responses: _Optional[int] = ..., overlap_s: _Optional[float] = ..., overlaps: _Optional[int] = ..., interruptions_made: _Optional[int] = ..., interruptions_received: _Optional[int] = ..., affect: _Optional[bool] = ..., arousal: _Optional[float] = ..., valence: _Optional[float] = ..., cues: _Optional[_Iterable[_Union[Cue, _Mapping]]] = ...) -> None: ...

class Cue(_message.Message):
    __slots__ = ("id", "kind", "since_s", "cleared_s", "deviation", "evidence_s", "confidence", "message")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SINCE_S_FIELD_NUMBER: _ClassVar[int]
    CLEARED_S_FIELD_NUMBER: _ClassVar[int]
    DEVIATION_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_S_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: str
    since_s: float
    cleared_s: float
    deviation: float
    evidence_s: float
    confidence: float
    message: str
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[str] = ..., since_s: _Optional[float] = ..., cleared_s: _Optional[float] = ..., deviation: _Optional[float] = ..., evidence_s: _Optional[float] = ..., confidence: _Optional[float] = ..., message: _Optional[str] = ...) -> None: ...

class Transition(_message.Message):
    __slots__ = ("from_id", "to_id", "count")
    FROM_ID_FIELD_NUMBER: _ClassVar[int]
    TO_ID_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    from_id: str
    to_id: str
    count: int
    def __init__(self, from_id: _Optional[str] = ..., to_id: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class Alert(_message.Message):
    __slots__ = ("id", "kind", "participant_id", "since_s", "cleared_s", "message")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANT_ID_FIELD_NUMBER: _ClassVar[int]
    SINCE_S_FIELD_NUMBER: _ClassVar[int]
    CLEARED_S_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: str
    participant_id: str
    since_s: float
    cleared_s: float
    message: str
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[str] = ..., participant_id: _Optional[str] = ..., since_s: _Optional[float] = ..., cleared_s: _Optional[float] = ..., message: _Optional[str] = ...) -> None: ...

class GroupSignals(_message.Message):
    __slots__ = ("balance_entropy", "balance_gini", "balance_entropy_5min", "group_silences", "group_silence_s", "longest_group_silence_s", "current_group_silence_s", "overlaps", "overlap_s", "turn_rate_per_min", "facilitator_share", "follows")
    BALANCE_ENTROPY_FIELD_NUMBER: _ClassVar[int]
    BALANCE_GINI_FIELD_NUMBER: _ClassVar[int]
    BALANCE_ENTROPY_5MIN_FIELD_NUMBER: _ClassVar[int]
    GROUP_SILENCES_FIELD_NUMBER: _ClassVar[int]
    GROUP_SILENCE_S_FIELD_NUMBER: _ClassVar[int]
    LONGEST_GROUP_SILENCE_S_FIELD_NUMBER: _ClassVar[int]
    CURRENT_GROUP_SILENCE_S_FIELD_NUMBER: _ClassVar[int]
    OVERLAPS_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_S_FIELD_NUMBER: _ClassVar[int]
    TURN_RATE_PER_MIN_FIELD_NUMBER: _ClassVar[int]
    FACILITATOR_SHARE_FIELD_NUMBER: _ClassVar[int]
    FOLLOWS_FIELD_NUMBER: _ClassVar[int]
    balance_entropy: float
    balance_gini: float
    balance_entropy_5min: float
    group_silences: int
    group_silence_s: float
    longest_group_silence_s: float
    current_group_silence_s: float
    overlaps: int
    overlap_s: float
    turn_rate_per_min: float
    facilitator_share: float
    follows: _containers.RepeatedCompositeFieldContainer[Transition]
    def __init__(self, balance_entropy: _Optional[float] = ..., balance_gini: _Optional[float] = ..., balance_entropy_5min: _Optional[float] = ..., group_silences: _Optional[int] = ..., group_silence_s: _Optional[float] = ..., longest_group_silence_s: _Optional[float] = ..., current_group_silence_s: _Optional[float] = ..., overlaps: _Optional[int] = ..., overlap_s: _Optional[float] = ..., turn_rate_per_min: _Optional[float] = ..., facilitator_share: _Optional[float] = ..., follows: _Optional[_Iterable[_Union[Transition, _Mapping]]] = ...) -> None: ...

class SessionSnapshot(_message.Message):
    __slots__ = ("session_id", "snapshot_seq", "session_ms", "participants", "events", "final", "group", "alerts")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_SEQ_FIELD_NUMBER: _ClassVar[int]
    SESSION_MS_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    snapshot_seq: int
    session_ms: int
    participants: _containers.RepeatedCompositeFieldContainer[ParticipantSignals]
    events: _containers.RepeatedScalarFieldContainer[str]
    final: bool
    group: GroupSignals
    alerts: _containers.RepeatedCompositeFieldContainer[Alert]
    def __init__(self, session_id: _Optional[str] = ..., snapshot_seq: _Optional[int] = ..., session_ms: _Optional[int] = ..., participants: _Optional[_Iterable[_Union[ParticipantSignals, _Mapping]]] = ..., events: _Optional[_Iterable[str]] = ..., final: _Optional[bool] = ..., group: _Optional[_Union[GroupSignals, _Mapping]] = ..., alerts: _Optional[_Iterable[_Union[Alert, _Mapping]]] = ...) -> None: ...

class ListSessionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SessionInfo(_message.Message):
    __slots__ = ("session_id", "participants", "session_ms", "active")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    SESSION_MS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    participants: int
    session_ms: int
    active: bool
    def __init__(self, session_id: _Optional[str] = ..., participants: _Optional[int] = ..., session_ms: _Optional[int] = ..., active: _Optional[bool] = ...) -> None: ...

class ListSessionsResponse(_message.Message):
    __slots__ = ("sessions",)
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[SessionInfo]
    def __init__(self, sessions: _Optional[_Iterable[_Union[SessionInfo, _Mapping]]] = ...) -> None: ...

class EndSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class GetSummaryRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class SessionSummary(_message.Message):
    __slots__ = ("session_id", "duration_ms", "participants", "group", "alerts")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    duration_ms: int
    participants: _containers.RepeatedCompositeFieldContainer[ParticipantSignals]
    group: GroupSignals
    alerts: _containers.RepeatedCompositeFieldContainer[Alert]
    def __init__(self, session_id: _Optional[str] = ..., duration_ms: _Optional[int] = ..., participants: _Optional[_Iterable[_Union[ParticipantSignals, _Mapping]]] = ..., group: _Optional[_Union[GroupSignals, _Mapping]] = ..., alerts: _Optional[_Iterable[_Union[Alert, _Mapping]]] = ...) -> None: ...
