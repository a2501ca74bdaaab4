"""What the model converters share: finishing the ONNX graph, and writing the model (with
its licence beside it) only once it matches the plain-numpy reference of the network."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

OPSET = 17


def finish_model(graph: Any, producer: str) -> Any:
    """An opset-17, IR-8 model around `graph`, checked by onnx's checker."""
    import onnx
    from onnx import helper

    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=producer
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def write_verified(
    model: Any,
    verify: Callable[[bytes, dict[str, np.ndarray]], float],
    weights: dict[str, np.ndarray],
    *,
    tolerance: float,
    out: Path,
    licence_name: str,
    licence_text: str,
) -> int:
    """Write `out` and `licence_name` beside it unless ONNX Runtime's output strays more
    than `tolerance` from the reference; returns the script's exit status."""
    data = model.SerializeToString()
    worst = verify(data, weights)
    print(f"max |onnx - numpy reference| = {worst:.2e}")
    if worst > tolerance:
        print("verification failed", file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    (out.parent / licence_name).write_text(licence_text, encoding="utf-8")
    print(f"wrote {out} ({len(data)} bytes)")
    return 0
