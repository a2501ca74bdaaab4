"""Convert Resemblyzer 0.1.4's GE2E speaker encoder (Apache-2.0) to ONNX, without torch.

Reproducible: the weights come from the registry wheel (`pip download Resemblyzer==0.1.4
--no-deps` into a temporary folder) or from a wheel path given with --wheel. The legacy
PyTorch pickle `resemblyzer/pretrained.pt` is read with a restricted unpickler that maps
torch's tensor/storage rebuild calls to numpy; the graph is built with the `onnx` helper
API (a dev-only dependency) and checked against a plain-numpy LSTM reference.

    python scripts/convert_resemblyzer.py [--wheel PATH] [--out engine/diarize/models/...]

Network (Resemblyzer `VoiceEncoder`): mels (batch, frames, 40) -> 3-layer LSTM (256) ->
last hidden state of the top layer -> Linear(256, 256) -> ReLU -> L2 normalisation.
"""

from __future__ import annotations

import argparse
import collections
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np
from onnx_export import finish_model, write_verified

HIDDEN = 256
N_MELS = 40
LAYERS = 3
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "engine" / "diarize" / "models" / "resemblyzer_ge2e.onnx"
_DTYPES = {"FloatStorage": np.float32, "LongStorage": np.int64, "DoubleStorage": np.float64}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class _Storage:
    def __init__(self, dtype: type, numel: int) -> None:
        self.dtype = dtype
        self.numel = numel
        self.data: np.ndarray | None = None


class _LazyTensor:
    def __init__(
        self, storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
    ):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def array(self) -> np.ndarray:
        if self.storage.data is None:
            raise ValueError("storage data not read")
        item = self.storage.data.itemsize
        return np.lib.stride_tricks.as_strided(
            self.storage.data[self.offset :],
            shape=self.size,
            strides=tuple(s * item for s in self.stride),
        ).copy()


def read_legacy_torch(f: IO[bytes]) -> dict[str, np.ndarray]:
    """A legacy (non-zip) torch.save file -> {name: array} of its `model_state`."""
    storages: dict[str, _Storage] = {}

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return lambda st, off, size, stride, *_: _LazyTensor(st, off, size, stride)
            if module == "torch" and name in _DTYPES:
                return name
            if (module, name) == ("collections", "OrderedDict"):
                return collections.OrderedDict
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")

        def persistent_load(self, pid: Any) -> Any:
            typename, stype, key, _location, numel, _view = pid
            if typename != "storage":
                raise pickle.UnpicklingError(f"unexpected persistent id {typename}")
            return storages.setdefault(key, _Storage(_DTYPES[stype], numel))

    safe = pickle.Unpickler  # the three header records hold only ints and dicts
    if safe(f).load() != _LEGACY_MAGIC:
        raise ValueError("not a legacy torch file")
    if safe(f).load() != 1001:
        raise ValueError("unsupported torch protocol version")
    info = safe(f).load()
    if not info.get("little_endian", False):
        raise ValueError("big-endian torch files are not supported")
    obj = Unpickler(f).load()
    for key in safe(f).load():
        (n,) = struct.unpack("<q", f.read(8))
        st = storages[key]
        st.data = np.frombuffer(f.read(n * np.dtype(st.dtype).itemsize), dtype=st.dtype)
    return {k: v.array() for k, v in obj["model_state"].items() if isinstance(v, _LazyTensor)}


def weights_from_wheel(wheel: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(wheel) as z, z.open("resemblyzer/pretrained.pt") as f:
        return read_legacy_torch(f)


def licence_from_wheel(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/LICENSE"))
        return z.read(name).decode("utf-8")


def download_wheel(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "Resemblyzer==0.1.4", "--no-deps", "-d"]
    subprocess.run([*cmd, str(dest)], check=True)
    return next(dest.glob("Resemblyzer-0.1.4-*.whl"))


# --- plain-numpy reference of the network --------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow for large |x|


def reference_forward(w: dict[str, np.ndarray], mels: np.ndarray) -> np.ndarray:
    """PyTorch LSTM semantics (gates i, f, g, o), float64, one time step at a time."""
    x = mels.astype(np.float64)
    batch, frames, _ = x.shape
    for layer in range(LAYERS):
        wih = w[f"lstm.weight_ih_l{layer}"].astype(np.float64)
        whh = w[f"lstm.weight_hh_l{layer}"].astype(np.float64)
        b = (w[f"lstm.bias_ih_l{layer}"] + w[f"lstm.bias_hh_l{layer}"]).astype(np.float64)
        h = np.zeros((batch, HIDDEN))
        c = np.zeros((batch, HIDDEN))
        out = np.zeros((batch, frames, HIDDEN))
        for t in range(frames):
            z = x[:, t] @ wih.T + h @ whh.T + b
            i, f, g, o = np.split(z, 4, axis=1)
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
            out[:, t] = h
        x = out
    e = np.maximum(h @ w["linear.weight"].T.astype(np.float64) + w["linear.bias"], 0.0)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


# --- ONNX graph -----------------------------------------------------------------------


def _reorder_gates(m: np.ndarray) -> np.ndarray:
    """PyTorch stacks gates i, f, g, o; ONNX LSTM wants i, o, f, c."""
    i, f, g, o = np.split(m, 4, axis=0)
    return np.concatenate([i, o, f, g], axis=0)


def build_onnx(w: dict[str, np.ndarray]) -> Any:
    from onnx import TensorProto, helper, numpy_helper

    inits = []
    nodes = [helper.make_node("Transpose", ["mels"], ["x0"], perm=[1, 0, 2])]  # (T, B, 40)
    x = "x0"
    for layer in range(LAYERS):
        wn, rn, bn = f"W{layer}", f"R{layer}", f"B{layer}"
        wi = _reorder_gates(w[f"lstm.weight_ih_l{layer}"])[None].astype(np.float32)
        ri = _reorder_gates(w[f"lstm.weight_hh_l{layer}"])[None].astype(np.float32)
        bias = np.concatenate(
            [
                _reorder_gates(w[f"lstm.bias_ih_l{layer}"]),
                _reorder_gates(w[f"lstm.bias_hh_l{layer}"]),
            ]
        )[None].astype(np.float32)
        inits += [numpy_helper.from_array(a, n) for a, n in ((wi, wn), (ri, rn), (bias, bn))]
        y, yh = f"y{layer}", f"yh{layer}"
        nodes.append(
            helper.make_node("LSTM", [x, wn, rn, bn], [y, yh], hidden_size=HIDDEN, layout=0)
        )
        if layer < LAYERS - 1:
            inits.append(numpy_helper.from_array(np.array([1], np.int64), f"ax1_{layer}"))
            nodes.append(helper.make_node("Squeeze", [y, f"ax1_{layer}"], [f"x{layer + 1}"]))
            x = f"x{layer + 1}"
    inits += [
        numpy_helper.from_array(np.array([0], np.int64), "ax0"),
        numpy_helper.from_array(w["linear.weight"].T.astype(np.float32).copy(), "lin_w"),
        numpy_helper.from_array(w["linear.bias"].astype(np.float32), "lin_b"),
        numpy_helper.from_array(np.array(1e-12, np.float32), "eps"),
    ]
    nodes += [
        helper.make_node("Squeeze", [f"yh{LAYERS - 1}", "ax0"], ["h"]),
        helper.make_node("Gemm", ["h", "lin_w", "lin_b"], ["lin"]),
        helper.make_node("Relu", ["lin"], ["raw"]),
        helper.make_node("ReduceL2", ["raw"], ["norm"], axes=[1], keepdims=1),
        helper.make_node("Max", ["norm", "eps"], ["norm_safe"]),
        helper.make_node("Div", ["raw", "norm_safe"], ["embeddings"]),
    ]
    graph = helper.make_graph(
        nodes,
        "resemblyzer_ge2e",
        [helper.make_tensor_value_info("mels", TensorProto.FLOAT, ["batch", "frames", N_MELS])],
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", HIDDEN])],
        inits,
    )
    graph.doc_string = (
        "GE2E speaker encoder from Resemblyzer 0.1.4 (Apache-2.0, resemble-ai). Input: power "
        "mel spectrogram (not log), 16 kHz, 25 ms Hann window, 10 ms hop, 40 Slaney mels, "
        "shape (batch, frames, 40). Output: L2-normalised 256-d embedding."
    )
    return finish_model(graph, "groupsense scripts/convert_resemblyzer.py")


def verify(model_bytes: bytes, w: dict[str, np.ndarray]) -> float:
    """Largest |ONNX - numpy reference| over random and speech-like mel inputs."""
    import onnxruntime as ort

    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for batch, frames in ((1, 160), (3, 151), (2, 40)):
        # power mels span decades: exp of a normal gives that shape
        mels = np.exp(rng.normal(-4.0, 2.5, (batch, frames, N_MELS))).astype(np.float32)
        got = sess.run(["embeddings"], {"mels": mels})[0]
        want = reference_forward(w, mels)
        worst = max(worst, float(np.max(np.abs(got - want))))
    return worst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheel", type=Path, help="Resemblyzer-0.1.4 wheel (else pip downloads it)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download_wheel(Path(tmp))
        w = weights_from_wheel(wheel)
        licence = licence_from_wheel(wheel)
    return write_verified(
        build_onnx(w),
        verify,
        w,
        tolerance=1e-5,
        out=args.out,
        licence_name="LICENSE.resemblyzer",
        licence_text=licence,
    )


if __name__ == "__main__":
    sys.exit(main())
