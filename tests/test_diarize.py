"""Shared-microphone diarization: the CAM++ ONNX encoder against a numpy evaluation of its
own graph, the fbank front end, the GE2E encoder (kept to compare) against a numpy LSTM,
online clustering, and the per-stream diarizer on real two-speaker speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.audio.decode import decode_file
from engine.datasets import read_rttm
from engine.diarize.cluster import ClusterConfig, SpeakerClusterer, speaker_name
from engine.diarize.embed import (
    EMBED_DIM,
    GE2E_DIM,
    N_MELS,
    Ge2eEmbedder,
    SpeakerEmbedder,
    ge2e_model_path,
    mel_filterbank,
    mel_frames,
    model_path,
)
from engine.diarize.fbank import fbank, fbank_mean_normalised, kaldi_mel_banks
from engine.diarize.online import (
    DiarizeConfig,
    SharedMicDiarizer,
    segments_by_speaker,
    step_streams,
)
from engine.metrics import diarization_error
from engine.types import HOP, HOPS_PER_SECOND


@pytest.fixture(scope="module")
def embedder() -> SpeakerEmbedder:
    return SpeakerEmbedder()


def _numpy_encoder(mels: np.ndarray) -> np.ndarray:
    """Plain-numpy forward pass from the ONNX file's own initializers (ONNX gate order i,o,f,c)."""
    onnx = pytest.importorskip("onnx", reason="onnx (dev dependency) reads the initializers")
    from onnx import numpy_helper

    w = {
        t.name: numpy_helper.to_array(t).astype(np.float64)
        for t in onnx.load(ge2e_model_path()).graph.initializer
    }
    x = mels.astype(np.float64)
    b, t_len, _ = x.shape
    for layer in range(3):
        wi, ri, bias = w[f"W{layer}"][0], w[f"R{layer}"][0], w[f"B{layer}"][0]
        h = np.zeros((b, 256))
        c = np.zeros((b, 256))
        out = np.zeros((b, t_len, 256))
        for t in range(t_len):
            z = x[:, t] @ wi.T + h @ ri.T + bias[:1024] + bias[1024:]
            i, o, f, g = np.split(z, 4, axis=1)
            sig = lambda v: 0.5 * (1 + np.tanh(0.5 * v))  # noqa: E731
            c = sig(f) * c + sig(i) * np.tanh(g)
            h = sig(o) * np.tanh(c)
            out[:, t] = h
        x = out
    e = np.maximum(h @ w["lin_w"] + w["lin_b"], 0.0)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def test_ge2e_onnx_encoder_matches_numpy_lstm() -> None:
    ge2e = Ge2eEmbedder()
    rng = np.random.default_rng(0)
    mels = np.exp(rng.normal(-4.0, 2.5, (3, 60, N_MELS))).astype(np.float32)
    got = ge2e.embed_mels(mels)
    np.testing.assert_allclose(got, _numpy_encoder(mels), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert ge2e.embed([np.zeros(24000, np.float32)]).shape == (1, GE2E_DIM)


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, a: dict) -> np.ndarray:
    """ONNX Conv (1-D or 2-D, zero pads, strides, dilations) in float64 numpy."""
    nd = w.ndim - 2
    pads = a.get("pads", [0] * 2 * nd)
    strides = a.get("strides", [1] * nd)
    dil = a.get("dilations", [1] * nd)
    x = np.pad(x, [(0, 0), (0, 0)] + [(pads[i], pads[i + nd]) for i in range(nd)])
    spans = [dil[i] * (w.shape[2 + i] - 1) + 1 for i in range(nd)]
    win = np.lib.stride_tricks.sliding_window_view(x, spans, axis=tuple(range(2, 2 + nd)))
    win = win[(slice(None), slice(None), *(slice(None, None, s) for s in strides))]
    win = win[(Ellipsis, *(slice(None, None, d) for d in dil))]
    sub = "ab" if nd == 2 else "a"
    out = np.einsum(f"nc{sub}{'pq'[:nd]},oc{'pq'[:nd]}->no{sub}", win, w, optimize=True)
    return out if b is None else out + b.reshape((1, -1) + (1,) * nd)


_ELEMENTWISE = {
    "Relu": lambda x: np.maximum(x[0], 0.0),
    "Sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x[0])),
    "Add": lambda x: x[0] + x[1],
    "Sub": lambda x: x[0] - x[1],
    "Mul": lambda x: x[0] * x[1],
    "Div": lambda x: x[0] / x[1],
    "Max": lambda x: np.maximum(x[0], x[1]),
    "Sqrt": lambda x: np.sqrt(x[0]),
    "Shape": lambda x: np.array(x[0].shape, np.int64),
    "Gather": lambda x: np.take(x[0], x[1]),
    "Expand": lambda x: x[0] * np.ones(tuple(int(i) for i in x[1])),
    "Unsqueeze": lambda x: np.expand_dims(x[0], tuple(int(i) for i in x[1])),
    "Squeeze": lambda x: np.squeeze(x[0], tuple(int(i) for i in x[1])),
    "Slice": lambda x: x[0][:, :, int(x[1][0]) : int(x[2][0])],
    "Gemm": lambda x: x[0] @ x[1] + x[2],
    "Cast": lambda x: x[0].astype(np.float64),
}


def _numpy_op(op: str, x: list[np.ndarray], a: dict) -> np.ndarray:
    if op == "Conv":
        return _conv(x[0], x[1], x[2] if len(x) > 2 else None, a)
    if op == "AveragePool":  # ceil_mode: the last, partial window averages what it has
        k, t = a["kernel_shape"][0], x[0].shape[2]
        return np.stack([x[0][:, :, i : i + k].mean(axis=2) for i in range(0, t, k)], axis=2)
    if op in ("ReduceMean", "ReduceSum", "ReduceL2"):
        axes = tuple(a["axes"]) if "axes" in a else tuple(int(i) for i in x[1])
        keep = bool(a.get("keepdims", 1))
        if op == "ReduceL2":
            return np.sqrt(np.sum(x[0] ** 2, axis=axes, keepdims=keep))
        return (np.mean if op == "ReduceMean" else np.sum)(x[0], axis=axes, keepdims=keep)
    if op == "Reshape":
        return x[0].reshape([x[0].shape[i] if d == 0 else int(d) for i, d in enumerate(x[1])])
    if op == "Transpose":
        return np.transpose(x[0], a["perm"])
    if op == "Concat":
        return np.concatenate(x, axis=a["axis"])
    return _ELEMENTWISE[op](x)


def _numpy_graph(feats: np.ndarray) -> np.ndarray:
    """Evaluate the shipped CAM++ ONNX graph node by node in float64 numpy, from its own
    initializers: an independent check of what onnxruntime computes from the file."""
    onnx = pytest.importorskip("onnx", reason="onnx (dev dependency) reads the graph")
    from onnx import helper, numpy_helper

    m = onnx.load(model_path())
    v: dict[str, np.ndarray] = {}
    for t in m.graph.initializer:
        arr = numpy_helper.to_array(t)
        v[t.name] = arr.astype(np.float64) if arr.dtype.kind == "f" else arr
    v["fbank"] = feats.astype(np.float64)
    for node in m.graph.node:
        a = {at.name: helper.get_attribute_value(at) for at in node.attribute}
        v[node.output[0]] = _numpy_op(node.op_type, [v[i] for i in node.input], a)
    return v["embeddings"]


def test_campplus_onnx_matches_numpy_graph(embedder: SpeakerEmbedder) -> None:
    rng = np.random.default_rng(0)
    for batch, frames in ((2, 148), (1, 251)):  # 251: two CAM segments, the last partial
        feats = rng.normal(0.0, 3.0, (batch, frames, 80)).astype(np.float32)
        feats -= feats.mean(axis=1, keepdims=True)
        got = embedder.embed_fbank(feats)
        np.testing.assert_allclose(got, _numpy_graph(feats), atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_batching_does_not_change_embeddings(embedder: SpeakerEmbedder) -> None:
    rng = np.random.default_rng(1)
    windows = [rng.normal(0, 0.05, 24000).astype(np.float32) for _ in range(5)]
    together = embedder.embed(windows)
    alone = np.concatenate([embedder.embed([w]) for w in windows])
    assert together.shape == (5, EMBED_DIM)
    np.testing.assert_allclose(together, alone, atol=1e-5)
    with pytest.raises(ValueError):
        embedder.embed([windows[0], windows[1][:100]])
    assert np.isfinite(embedder.embed([np.zeros(24000, np.float32)])).all()


def test_fbank_front_end() -> None:
    banks = kaldi_mel_banks()
    assert banks.shape == (80, 257) and (banks >= 0).all() and (banks[:, -1] == 0).all()
    t = np.arange(24000) / 16000
    tone = (0.1 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    f = fbank(tone)
    assert f.shape == (148, 80)  # snip_edges: 1 + (24000 - 400) // 160
    centres = np.argmax(banks, axis=1) * 16000 / 512  # Hz of each bin's peak
    assert abs(centres[int(np.argmax(f[70]))] - 1000) < 60
    # a gain only shifts log energies, which the per-window mean removes
    noise = np.random.default_rng(2).normal(0, 0.05, 24000).astype(np.float32)
    np.testing.assert_allclose(
        fbank_mean_normalised(noise), fbank_mean_normalised(4 * noise), atol=1e-3
    )
    assert np.allclose(fbank_mean_normalised(noise).mean(axis=0), 0.0, atol=1e-4)
    assert np.isfinite(fbank(np.zeros(400, np.float32))).all()
    with pytest.raises(ValueError):
        fbank(np.zeros(399, np.float32))


def test_mel_front_end() -> None:
    fb = mel_filterbank()
    assert fb.shape == (40, 201) and (fb >= 0).all()
    # Slaney-normalised triangles: each has unit area in Hz (x 2/width), so peaks fall with width
    assert fb[0].max() > fb[-1].max()
    t = np.arange(24000) / 16000
    tone = (0.1 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    m = mel_frames(tone)
    assert m.shape == (151, 40)
    centres = np.argmax(fb, axis=1) * 40.0  # Hz of each band's peak bin
    assert abs(centres[int(np.argmax(m[75]))] - 1000) < 120
    assert np.isfinite(mel_frames(np.zeros(1600, np.float32))).all()


def test_clusterer_opens_matches_and_caps() -> None:
    cl = SpeakerClusterer(ClusterConfig(new_speaker=0.5, update=0.6, max_speakers=2))
    st = cl.new_state()
    a = np.zeros(EMBED_DIM, np.float32)
    a[0] = 1
    b = np.zeros(EMBED_DIM, np.float32)
    b[1] = 1
    c = np.zeros(EMBED_DIM, np.float32)
    c[2] = 1
    assert cl.assign(st, a)[0] == 0
    assert cl.assign(st, b)[0] == 1
    assert cl.assign(st, a)[0] == 0
    assert cl.assign(st, c)[0] in (0, 1) and st.n == 2  # capped: no third identity
    st.reset()
    assert st.n == 0
    assert speaker_name("room-2", 1) == "room-2/B"
    with pytest.raises(ValueError):
        ClusterConfig(min_speakers=3, max_speakers=2)


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        DiarizeConfig(latency_s=0.5)  # below step + lookahead
    with pytest.raises(ValueError):
        DiarizeConfig(step_s=1.0, lookahead_s=1.0, window_s=1.5)
    with pytest.raises(ValueError):
        DiarizeConfig(overlap_margin=-0.1)
    with pytest.raises(ValueError):
        DiarizeConfig(confirm_margin=-0.1)
    assert DiarizeConfig(latency_s=5.0).smoothing == 8
    assert DiarizeConfig(latency_s=1.0).smoothing == 0


def _sample(shared_data: Path) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    root = shared_data / "diarization"
    _, chunks = decode_file(root / "sample.wav")
    x = np.concatenate([c for _, c in chunks])
    n = x.shape[0] // HOP
    turns = [(t.start, t.end, t.speaker) for t in read_rttm(root / "sample.rttm")]
    return x[: n * HOP].reshape(n, HOP), turns


def _oracle_mask(turns: list[tuple[float, float, str]], n: int) -> np.ndarray:
    m = np.zeros(n, bool)
    for a, b, _ in turns:
        m[round(a * HOPS_PER_SECOND) : round(b * HOPS_PER_SECOND)] = True
    return m


def _run(d: SharedMicDiarizer, hops: np.ndarray, mask: np.ndarray, chunks: list[int]) -> np.ndarray:
    out = np.full((hops.shape[0], 2), -9, np.int8)
    i = 0
    for size in chunks:
        got = d.process(hops[i : i + size], mask[i : i + size])
        out[got.start : got.end] = got.speakers
        i += size
    got = d.flush()
    out[got.start : got.end] = got.speakers
    return out


@pytest.mark.realdata
@pytest.mark.parametrize("latency", [1.0, 5.0])
def test_chunking_invariance_and_reset(
    shared_data: Path, embedder: SpeakerEmbedder, latency: float
) -> None:
    hops, turns = _sample(shared_data)
    hops, mask = hops[:1500], _oracle_mask(turns, 1500)
    cfg = DiarizeConfig(latency_s=latency)
    d = SharedMicDiarizer(embedder, cfg)
    one = _run(d, hops, mask, [1500])
    rng = np.random.default_rng(7)
    sizes = list(rng.integers(1, 60, 200))
    sizes.append(1500 - sum(sizes)) if sum(sizes) < 1500 else None
    d.reset()
    many = _run(d, hops, mask, [s for s in sizes if s > 0])
    assert (one != -9).all(), "every hop gets a final label"
    np.testing.assert_array_equal(one, many)
    assert (one[~mask] == -1).all() and (one[mask, 0] >= 0).all()


@pytest.mark.realdata
def test_labels_commit_within_latency(shared_data: Path, embedder: SpeakerEmbedder) -> None:
    hops, turns = _sample(shared_data)
    mask = _oracle_mask(turns, hops.shape[0])
    for latency in (1.0, 5.0):
        d = SharedMicDiarizer(embedder, DiarizeConfig(latency_s=latency))
        worst = 0
        for i in range(hops.shape[0]):
            got = d.process(hops[i : i + 1], mask[i : i + 1])
            for j in np.flatnonzero(mask[got.start : got.end]):
                worst = max(worst, i + 1 - (got.start + int(j)))
        assert 0 < worst <= round(latency * HOPS_PER_SECOND)


def _voices(shared_data: Path) -> list[np.ndarray]:
    """Two real voices from two recordings, as hops: sample.wav's speaker90 and dev01.wav's
    MEE009 (their reference turns, concatenated)."""
    root = shared_data / "diarization"
    voices = []
    for fid, rttm, spk in (
        ("sample", "sample.rttm", "speaker90"),
        ("dev01", "debug.development.rttm", "MEE009"),
    ):
        _, chunks = decode_file(root / f"{fid}.wav")
        x = np.concatenate([c for _, c in chunks])
        hops = x[: x.shape[0] // HOP * HOP].reshape(-1, HOP)
        turns = [t for t in read_rttm(root / rttm) if t.file == fid and t.speaker == spk]
        voices.append(
            np.concatenate([hops[round(t.start * 100) : round(t.end * 100)] for t in turns])
        )
    return voices


def _two_voices(shared_data: Path) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """Six 3 s turns alternating between the two real voices of `_voices`."""
    voices = _voices(shared_data)
    seq, ref, t = [], [], 0
    for k in range(6):
        piece = voices[k % 2][(k // 2) * 300 : (k // 2) * 300 + 300]
        seq.append(piece)
        ref.append((t / 100, (t + piece.shape[0]) / 100, "AB"[k % 2]))
        t += piece.shape[0]
    return np.concatenate(seq), ref


def _der(labels: np.ndarray, ref: list[tuple[float, float, str]]) -> float:
    hyp = [
        (s.start_s, s.end_s, str(k))
        for k, segs in segments_by_speaker(labels).items()
        for s in segs
    ]
    return diarization_error(ref, hyp, uem=(0.0, labels.shape[0] / HOPS_PER_SECOND)).der


@pytest.mark.realdata
@pytest.mark.parametrize("latency", [1.0, 5.0])
def test_two_real_voices_are_told_apart(
    shared_data: Path, embedder: SpeakerEmbedder, latency: float
) -> None:
    hops, ref = _two_voices(shared_data)
    d = SharedMicDiarizer(embedder, DiarizeConfig(latency_s=latency))
    labels = _run(d, hops, np.ones(hops.shape[0], bool), [50] * (hops.shape[0] // 50 + 1))
    assert 2 <= d.n_speakers <= 3
    # CAM++ at the trn*-tuned threshold (0.32): both voices are told apart in every turn;
    # what errs is half of the last turn, where voice B's third piece scores under 0.32
    # against B's centroid and opens a third identity (DER 11.7 % at 1 s and at 5 s; 15.0 %
    # at 5 s with the earlier 0.35 and strict confirmation); GE2E stayed under 15 %. Not
    # re-tuned here: these voices come from dev01 and sample, the files the DER is reported on.
    assert _der(labels, ref) < 0.2


@pytest.mark.realdata
def test_batched_streams_equal_single_streams(shared_data: Path, embedder: SpeakerEmbedder) -> None:
    hops, turns = _sample(shared_data)
    mask = _oracle_mask(turns, hops.shape[0])
    a, b = hops[:1200], hops[1200:2400]
    ma, mb = mask[:1200], mask[1200:2400]
    solo = [_run(SharedMicDiarizer(embedder), h, m, [100] * 12) for h, m in ((a, ma), (b, mb))]
    ds = [SharedMicDiarizer(embedder), SharedMicDiarizer(embedder)]
    outs = [np.full((1200, 2), -9, np.int8) for _ in ds]
    for i in range(0, 1200, 100):
        for o, got in zip(
            outs,
            step_streams(
                embedder, ds, [a[i : i + 100], b[i : i + 100]], [ma[i : i + 100], mb[i : i + 100]]
            ),
            strict=True,
        ):
            o[got.start : got.end] = got.speakers
    for o, d in zip(outs, ds, strict=True):
        got = d.flush()
        o[got.start : got.end] = got.speakers
    np.testing.assert_array_equal(outs[0], solo[0])
    np.testing.assert_array_equal(outs[1], solo[1])


@pytest.mark.realdata
def test_identities_stay_stable_when_the_voices_come_back(
    shared_data: Path, embedder: SpeakerEmbedder
) -> None:
    """The same two-voice exchange ten times over (3 min): no identity is added or
    swapped later on, as a long session needs."""
    hops, _ = _two_voices(shared_data)
    n, reps = hops.shape[0], 10
    d = SharedMicDiarizer(embedder, DiarizeConfig(latency_s=5.0))
    labels = _run(
        d, np.tile(hops, (reps, 1)), np.ones(n * reps, bool), [100] * (n * reps // 100 + 1)
    )
    first, last = labels[:n, 0], labels[(reps - 1) * n :, 0]
    assert d.n_speakers <= 3
    assert float(np.mean(first == last)) > 0.9


def _marked_item(fid: str, ref: list[tuple[float, float, str]], speakers: list[str]) -> object:
    """A 30 s item whose hops say who is in them: speaker k's hops are non-zero exactly at
    samples j % (k + 2) == 0 (a pattern any gain keeps); overlapped hops carry both."""
    from cli.eval_diar import Item

    n = 3000
    hops = np.zeros((n, HOP), np.int16)
    centres = (np.arange(n) + 0.5) / HOPS_PER_SECOND
    for a, b, s in ref:
        k = speakers.index(s)
        on = (centres >= a) & (centres < b)
        pattern = (np.arange(HOP) % (k + 2) == 0).astype(np.int16)
        hops[on] |= pattern * (100 + 10 * k)
    return Item(fid, hops, ref, (0.0, 30.0))


def test_spliced_tuning_material_is_seeded_and_its_truth_matches_its_audio() -> None:
    from cli.eval_diar import SPLICE_TURN_S, meetings, splice_items

    spk = ["P", "Q", "R", "S", "T"]
    items = [  # two files of one meeting (P shared), one of another; overlaps included
        _marked_item("trnA", [(0, 9, "P"), (8, 16, "Q"), (16, 28, "P")], spk),
        _marked_item("trnB", [(1, 7, "Q"), (7, 14, "P"), (13.5, 29, "R")], spk),
        _marked_item("trnC", [(0, 12, "S"), (12, 20, "T"), (19, 30, "S")], spk),
    ]
    assert [[it.fid for it in g] for g in meetings(items)] == [["trnA", "trnB"], ["trnC"]]  # type: ignore[attr-defined]
    a, b, c = (splice_items(items, seed=s) for s in (3, 3, 4))  # type: ignore[arg-type]
    assert [it.fid for it in a] == [it.fid for it in b]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.hops, y.hops)
        assert x.ref == y.ref
    assert any(x.ref != y.ref for x, y in zip(a, c, strict=False)) or len(a) != len(c)
    assert any("-m" in it.fid for it in a) and any("-x" in it.fid for it in a)
    lo, hi = (round(v * HOPS_PER_SECOND) for v in SPLICE_TURN_S)
    for it in a:
        assert it.uem == (0.0, it.hops.shape[0] / HOPS_PER_SECOND)
        assert it.ref[0][0] == 0.0 and it.ref[-1][1] == it.uem[1]
        for (_, e0, s0), (b1, _, s1) in zip(it.ref, it.ref[1:], strict=False):
            assert e0 == b1 and s0 != s1, "turns tile the file and alternate"
        for t0, t1, s in it.ref:
            h = it.hops[round(t0 * HOPS_PER_SECOND) : round(t1 * HOPS_PER_SECOND)]
            assert lo <= h.shape[0] <= hi
            k = spk.index(s)
            want = np.arange(HOP) % (k + 2) == 0
            # every hop of the turn is that speaker alone: never silence, overlap or another
            assert ((h != 0) == want).all(), (it.fid, s)
            if "-m" in it.fid:  # within a meeting the audio is copied as recorded
                assert (h[:, want] == 100 + 10 * k).all()


def test_cached_embedder_gives_the_embedder_s_embeddings(embedder: SpeakerEmbedder) -> None:
    from cli.eval_diar import CachedEmbedder

    rng = np.random.default_rng(5)
    wins = [rng.normal(0, 0.1, 24000).astype(np.float32) for _ in range(3)]
    cached = CachedEmbedder(embedder)
    first = cached.embed(wins[:2])
    again = cached.embed([wins[1], wins[2], wins[0]])
    np.testing.assert_allclose(first, embedder.embed(wins[:2]), atol=1e-5)
    np.testing.assert_allclose(again, embedder.embed([wins[1], wins[2], wins[0]]), atol=1e-5)
    assert cached.embed([]).shape == (0, EMBED_DIM)


@pytest.mark.realdata
def test_overlapped_real_speech_gets_two_labels(
    shared_data: Path, embedder: SpeakerEmbedder
) -> None:
    """trn09 (an AMI meeting, 13 s of its 30 s overlapped): at 1 s latency with the shared
    microphone's silero VAD, the default overlap labelling gives a second voice to hops
    only where the reference has two speakers (2 s of them: it catches little of the
    overlap, but what it labels is right); with it off, no hop gets two labels."""
    from cli.eval_diar import diarize, load_items, vad_mask
    from engine.metrics import frames_from_intervals

    (it,) = [x for x in load_items(shared_data / "diarization") if x.fid == "trn09"]
    n = it.hops.shape[0]
    mask = vad_mask(it.hops, "silero")
    speakers = {t[2] for t in it.ref}
    count = np.sum(
        [frames_from_intervals([(a, b) for a, b, k in it.ref if k == s], n) for s in speakers],
        axis=0,
    )
    labels, _, _ = diarize(embedder, DiarizeConfig(latency_s=1.0), it.hops, mask)
    two = labels[:, 1] >= 0
    assert two.sum() >= HOPS_PER_SECOND
    assert (count[two] >= 2).mean() >= 0.9
    assert (labels[two, 0] != labels[two, 1]).all()
    off, _, _ = diarize(embedder, DiarizeConfig(latency_s=1.0, overlap_margin=None), it.hops, mask)
    assert (off[:, 1] == -1).all()
