"""The one place the engine imports onnxruntime: with its telemetry switched off.

Recent onnxruntime releases on Linux create a persistent device id and an event cache
(~/.cache/Microsoft/DeveloperTools/.onnxruntime/, $TMPDIR/.ses) the moment the library
initialises, for telemetry. groupsense writes nothing to disk and sends nothing anywhere,
so `ORT_DISABLE_TELEMETRY=1` is set before the import: onnxruntime reads it once per
process, and with it creates none of those files (tests/test_privacy_offline.py).
"""

from __future__ import annotations

import os

os.environ["ORT_DISABLE_TELEMETRY"] = "1"

import onnxruntime

__all__ = ["onnxruntime"]
