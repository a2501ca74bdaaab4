"""SessionView -> the dashboard's JSON, in one generic function.

The conversion walks dataclasses field by field rather than naming fields, so every
signal added to `SessionView`/`ParticipantView` (shares over windows, turns, balance,
alerts, cues, ...) reaches the browser and the report without an edit here. The front
end renders optional fields only when they are present.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from typing import Any

from engine.types import SessionView


def to_jsonable(value: Any) -> Any:
    """Dataclasses, enums, mappings, sequences and numpy values -> JSON-ready data.

    Non-finite floats become None (JSON has no NaN); numpy is handled by duck typing
    (`tolist`/`item`) so this module needs no numpy import."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return to_jsonable(value.tolist())
    if hasattr(value, "item"):
        return to_jsonable(value.item())
    raise TypeError(f"cannot convert {type(value).__name__} to JSON")


def session_json(view: SessionView) -> dict[str, Any]:
    """Every field of the snapshot, as JSON-ready data. Alerts, whatever their type, get
    an `id` (the ack endpoint's key) when they carry an `alert_id` instead."""
    data: dict[str, Any] = to_jsonable(view)
    alerts = data.get("alerts")
    if isinstance(alerts, list):
        for a in alerts:
            if isinstance(a, dict) and "id" not in a and "alert_id" in a:
                a["id"] = a["alert_id"]
    return data
