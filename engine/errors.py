"""Typed errors. Each carries the gRPC status a server should answer with."""

from __future__ import annotations


class GroupsenseError(Exception):
    """Base of every error the engine raises on purpose."""

    grpc_status = "INTERNAL"


class InputFileError(GroupsenseError):
    """A file cannot be analysed: corrupt, truncated, empty, no audio, bad layout."""

    grpc_status = "INVALID_ARGUMENT"

    def __init__(self, path: str, cause: str) -> None:
        super().__init__(f"{path}: {cause}")
        self.path = path
        self.cause = cause


class StreamFormatError(GroupsenseError):
    """A live stream's config or frame does not fit the declared format."""

    grpc_status = "INVALID_ARGUMENT"


class PayloadDecodeError(StreamFormatError):
    """A frame's payload could not be decoded with the stream's codec."""


class OverloadError(GroupsenseError):
    """A limit (streams, sessions, queue depth) was reached."""

    grpc_status = "RESOURCE_EXHAUSTED"
