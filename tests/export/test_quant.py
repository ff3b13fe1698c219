"""export/quant.py: block-wise quantization against a reference dequantize and onnxruntime."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from qwen_edge.errors import ConfigError
from qwen_edge.export import quant
from qwen_edge.export.quant import QuantizedWeight, dequantize_blockwise, quantize_blockwise

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper

BITS = (4, 8)
BLOCK_SIZES = (16, 32, 64, 128)
# K a multiple of block_size, and K leaving a padded last block
K_KINDS = ("multiple", "padded")
GRID = list(itertools.product(BITS, BLOCK_SIZES, K_KINDS, (False, True)))
GRID_IDS = [f"int{b}-bs{bs}-{kk}-{'sym' if s else 'asym'}" for b, bs, kk, s in GRID]

N = 24
# MatMulNBits with int8 activations (accuracy_level=4) quantizes A per block to int8; measured
# worst case on this grid and on K in {896, 4864}: 0.7% relative Frobenius error (AMD EPYC, ORT 1.32).
ACCURACY_LEVEL_4_RTOL = 2e-2


def _k(block_size: int, kind: str) -> int:
    return 3 * block_size if kind == "multiple" else 3 * block_size - 5


def _weight(n: int, k: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 0.02, (n, k)).astype(np.float32)


# -- round trip ----------------------------------------------------------------------------


@pytest.mark.parametrize(("bits", "block_size", "k_kind", "symmetric"), GRID, ids=GRID_IDS)
def test_round_trip_within_half_a_step(
    bits: int, block_size: int, k_kind: str, symmetric: bool
) -> None:
    k = _k(block_size, k_kind)
    w = _weight(N, k)
    q = quantize_blockwise(w, bits=bits, block_size=block_size, symmetric=symmetric)

    k_blocks = -(-k // block_size)
    assert (q.bits, q.block_size, q.K, q.N) == (bits, block_size, k, N)
    assert q.packed.shape == (N, k_blocks, block_size * bits // 8)
    assert q.packed.dtype == np.uint8
    assert q.scales.shape == (N, k_blocks)
    assert q.scales.dtype == np.float32
    if symmetric:
        assert q.zero_points is None
    else:
        assert q.zero_points is not None
        assert q.zero_points.shape == (N, -(-k_blocks * bits // 8))
        assert q.zero_points.dtype == np.uint8

    d = dequantize_blockwise(q)
    assert d.shape == (N, k)
    assert d.dtype == np.float32
    half_step = np.repeat(np.abs(q.scales) / 2, block_size, axis=1)[:, :k]
    assert np.all(np.abs(d - w) <= half_step * (1 + 1e-4))
    # and not trivially: RTN on N(0, 0.02) lands near its expected error
    rel = np.linalg.norm(d - w) / np.linalg.norm(w)
    assert rel < (0.13 if bits == 4 else 0.008)


@pytest.mark.parametrize(("bits", "block_size", "k_kind", "symmetric"), GRID, ids=GRID_IDS)
def test_padded_tail_holds_the_zero_point(
    bits: int, block_size: int, k_kind: str, symmetric: bool
) -> None:
    k = _k(block_size, k_kind)
    q = quantize_blockwise(_weight(N, k), bits=bits, block_size=block_size, symmetric=symmetric)
    codes = _unpack(q.packed, bits).reshape(N, -1)
    zp = np.repeat(q.zero_points_unpacked(), block_size, axis=1)
    np.testing.assert_array_equal(codes[:, k:], zp[:, k:])


@pytest.mark.parametrize(("bits", "symmetric"), list(itertools.product(BITS, (False, True))))
def test_exact_zeros_and_constant_blocks(bits: int, symmetric: bool) -> None:
    bs = 16
    rng = np.random.default_rng(1)
    blocks = [
        np.zeros(bs),  # all zero: scale 0, no NaN
        np.full(bs, 0.37),  # constant positive
        np.full(bs, -2.5),  # constant negative
        np.where(np.arange(bs) % 3 == 0, 0.0, rng.normal(0, 1, bs)),  # exact zeros among values
        np.where(np.arange(bs) == 5, 1e-3, 0.0),  # one non-zero
        np.abs(rng.normal(3.0, 0.1, bs)),  # one-sided, far from 0
        np.full(bs, 1e-39),  # subnormal: below what a float32 scale can resolve
    ]
    w = np.concatenate(blocks)[None, :].astype(np.float32)
    w = np.concatenate([w, -w])  # and every block negated
    q = quantize_blockwise(w, bits=bits, block_size=bs, symmetric=symmetric)
    d = dequantize_blockwise(q)

    assert np.all(np.isfinite(q.scales))
    assert np.all(np.isfinite(d))
    zeros = w == 0
    assert np.all(d[zeros] == 0.0)
    np.testing.assert_array_equal(q.scales[:, 0], 0.0)
    # constant blocks round-trip (exactly when symmetric: scale = c / 2**(bits-1))
    constant = slice(bs, 3 * bs)
    np.testing.assert_allclose(d[:, constant], w[:, constant], rtol=1e-6)
    half_step = np.repeat(np.abs(q.scales) / 2, bs, axis=1)
    assert np.all(np.abs(d - w) <= half_step * (1 + 1e-4) + 1e-37)


# -- layout, by hand -----------------------------------------------------------------------


def test_int4_asymmetric_layout_by_hand() -> None:
    s = 0.125
    # block 0: codes 0..15 with zero point 3; block 2: codes 0, 15 then zeros, zp 5;
    # block 1 (K=35: 3 values + padding): codes 15, 0, 7, zp 15. 3 blocks: the last
    # zero-point byte has an empty high nibble.
    b0 = (np.arange(16) - 3) * s
    b1 = np.array([0, -15, -8], dtype=np.float64) * s
    b2 = np.concatenate([np.array([-5, 10]), np.zeros(14)]) * s
    row1 = np.concatenate([b2, b0, np.array([0.0, -15.0, -8.0]) * s])[None]
    w = np.concatenate([np.concatenate([b0, b2, b1])[None], row1]).astype(np.float32)
    assert w.shape == (2, 35)
    q = quantize_blockwise(w, bits=4, block_size=16)

    np.testing.assert_array_equal(q.scales, np.full((2, 3), s, np.float32))
    block0 = [0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE]  # low nibble first
    block2 = [0xF0] + [0x55] * 7  # codes 0, 15, then zeros at the zero point 5
    block1 = [0x0F, 0xF7] + [0xFF] * 6  # codes 15, 0, 7, then padding at the zero point 15
    expected = np.array([[block0, block2, block1], [block2, block0, block1]], np.uint8)
    np.testing.assert_array_equal(q.packed, expected)
    # zero points 3, 5, 15 -> bytes (3 | 5 << 4), (15 | 0 << 4)
    assert q.zero_points is not None
    np.testing.assert_array_equal(q.zero_points, np.array([[0x53, 0x0F], [0x35, 0x0F]], np.uint8))
    np.testing.assert_array_equal(q.zero_points_unpacked(), [[3, 5, 15], [5, 3, 15]])
    np.testing.assert_array_equal(q.gather_zero_points(), [[[3], [5], [15]], [[5], [3], [15]]])
    np.testing.assert_array_equal(dequantize_blockwise(q), w)


def test_int8_asymmetric_layout_by_hand() -> None:
    s = 0.25
    codes = np.array([0, 255, 3, 4, 100, 200, 3, 3, 17, 18, 19, 20, 21, 22, 23, 24], np.uint8)
    w = ((codes.astype(np.float64) - 3) * s)[None].astype(np.float32)
    q = quantize_blockwise(w, bits=8, block_size=16)
    np.testing.assert_array_equal(q.packed, codes[None, None])
    np.testing.assert_array_equal(q.scales, [[s]])
    assert q.zero_points is not None
    np.testing.assert_array_equal(q.zero_points, [[3]])
    np.testing.assert_array_equal(q.gather_zero_points(), [[[3]]])
    np.testing.assert_array_equal(dequantize_blockwise(q), w)


@pytest.mark.parametrize("bits", BITS)
def test_symmetric_layout_by_hand(bits: int) -> None:
    half = 1 << (bits - 1)
    s = 0.5
    codes = np.array([0, 2 * half - 1, half, half + 1] + [half - 1] * 12, np.uint8)
    neg_larger = (codes.astype(np.float64) - half) * s  # -half*s .. (half-1)*s
    w = np.stack([neg_larger, -neg_larger]).astype(np.float32)
    q = quantize_blockwise(w, bits=bits, block_size=16, symmetric=True)
    # the larger side maps to code 0 in both rows: a positive scale, then a negative one
    np.testing.assert_array_equal(q.scales, [[s], [-s]])
    expected_codes = np.stack([codes, codes])[:, None, :]
    np.testing.assert_array_equal(_unpack(q.packed, bits), expected_codes)
    if bits == 4:
        np.testing.assert_array_equal(q.packed[0, 0, :2], [0xF0, 0x98])
    np.testing.assert_array_equal(q.zero_points_unpacked(), [[half], [half]])
    np.testing.assert_array_equal(dequantize_blockwise(q), w)


@pytest.mark.parametrize("bits", BITS)
def test_symmetric_scale_is_the_smallest_within_half_a_step(bits: int) -> None:
    # larger side -8 steps (int4); the other side may reach 7.5 steps before the scale grows
    half = 1 << (bits - 1)
    s = 0.5
    w = np.zeros((2, 16), np.float32)
    w[0, :2] = [-half * s, (half - 0.6) * s]  # fits: scale stays s
    w[1, :2] = [-half * s, (half - 0.25) * s]  # does not: scale = (half - 0.25) * s / (half - 0.5)
    q = quantize_blockwise(w, bits=bits, block_size=16, symmetric=True)
    np.testing.assert_allclose(q.scales[:, 0], [s, (half - 0.25) * s / (half - 0.5)], rtol=1e-7)
    d = dequantize_blockwise(q)
    assert np.all(np.abs(d - w) <= np.abs(q.scales) / 2 * (1 + 1e-4))


# -- onnxruntime ---------------------------------------------------------------------------


def _session(
    nodes: list[onnx.NodeProto], inits: dict[str, np.ndarray], inputs: dict[str, int]
) -> ort.InferenceSession:
    graph = helper.make_graph(
        nodes,
        "quant_test",
        [helper.make_tensor_value_info(name, dtype, None) for name, dtype in inputs.items()],
        [helper.make_tensor_value_info(n.output[0], TensorProto.FLOAT, None) for n in nodes],
        [numpy_helper.from_array(a, name) for name, a in inits.items()],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)]
    )
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _matmul_nbits(q: QuantizedWeight, *, accuracy_level: int) -> onnx.NodeProto:
    inputs = ["A", "B", "scales"] + ([] if q.zero_points is None else ["zero_points"])
    return helper.make_node(
        "MatMulNBits", inputs, ["Y"], domain="com.microsoft",
        K=q.K, N=q.N, bits=q.bits, block_size=q.block_size, accuracy_level=accuracy_level,
    )  # fmt: skip


def _shared_session(
    q: QuantizedWeight, *, accuracy_level: int = 0, gather_zp: bool = True
) -> ort.InferenceSession:
    """MatMulNBits and GatherBlockQuantized reading the same initializer ``B``."""
    inits = {"B": q.packed, "scales": q.scales, "scales_3d": q.scales[:, :, None].copy()}
    gather_inputs = ["B", "ids", "scales_3d"]
    if q.zero_points is not None:
        inits["zero_points"] = q.zero_points
    if gather_zp:
        inits["zero_points_3d"] = q.gather_zero_points()
        gather_inputs.append("zero_points_3d")
    gather = helper.make_node(
        "GatherBlockQuantized", gather_inputs, ["E"], domain="com.microsoft",
        gather_axis=0, quantize_axis=2, block_size=q.block_size, bits=q.bits,
    )  # fmt: skip
    nodes = [_matmul_nbits(q, accuracy_level=accuracy_level), gather]
    return _session(nodes, inits, {"A": TensorProto.FLOAT, "ids": TensorProto.INT64})


@pytest.mark.parametrize(("bits", "block_size", "k_kind", "symmetric"), GRID, ids=GRID_IDS)
def test_matmul_nbits_matches_reference(
    bits: int, block_size: int, k_kind: str, symmetric: bool
) -> None:
    k = _k(block_size, k_kind)
    q = quantize_blockwise(_weight(N, k), bits=bits, block_size=block_size, symmetric=symmetric)
    a = np.random.default_rng(2).normal(0, 1, (2, 3, k)).astype(np.float32)
    ids = np.zeros(1, np.int64)
    y, _ = _shared_session(q).run(None, {"A": a, "ids": ids})
    ref = a @ dequantize_blockwise(q).T
    assert y.shape == (2, 3, N)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize(("bits", "block_size", "k_kind", "symmetric"), GRID, ids=GRID_IDS)
def test_gather_block_quantized_shares_the_matmul_weight(
    bits: int, block_size: int, k_kind: str, symmetric: bool
) -> None:
    k = _k(block_size, k_kind)
    q = quantize_blockwise(_weight(N, k), bits=bits, block_size=block_size, symmetric=symmetric)
    ids = np.array([[3, 0, N - 1], [3, 7, 11]], np.int64)
    a = np.zeros((1, k), np.float32)
    _, e = _shared_session(q).run(None, {"A": a, "ids": ids})

    # [..., k_blocks, block_size]: the exporter reshapes to [..., k_blocks * block_size] and
    # slices [..., :K]; the padded tail dequantizes to exactly 0
    assert e.shape == (2, 3, q.k_blocks, block_size)
    flat = e.reshape(2, 3, -1)
    np.testing.assert_array_equal(flat[..., :k], dequantize_blockwise(q)[ids])
    assert np.all(flat[..., k:] == 0.0)


@pytest.mark.parametrize("search", [False, True], ids=["rtn", "searched"])
@pytest.mark.parametrize("bits", BITS)
def test_symmetric_weights_need_no_zero_points_in_either_op(bits: int, search: bool) -> None:
    # both ops default the zero point to 2**(bits-1) for uint8 data
    q = quantize_blockwise(_weight(N, 100), bits=bits, block_size=32, symmetric=True,
                           search=search)
    ids = np.array([5, 1], np.int64)
    a = np.random.default_rng(3).normal(0, 1, (4, 100)).astype(np.float32)
    y, e = _shared_session(q, gather_zp=False).run(None, {"A": a, "ids": ids})
    d = dequantize_blockwise(q)
    np.testing.assert_allclose(y, a @ d.T, rtol=1e-5, atol=1e-5 * np.abs(a @ d.T).max())
    np.testing.assert_array_equal(e.reshape(2, -1)[:, :100], d[ids])


@pytest.mark.parametrize(("bits", "block_size", "k_kind", "symmetric"), GRID, ids=GRID_IDS)
def test_matmul_nbits_int8_activations_within_tolerance(
    bits: int, block_size: int, k_kind: str, symmetric: bool
) -> None:
    k = _k(block_size, k_kind)
    q = quantize_blockwise(_weight(N, k), bits=bits, block_size=block_size, symmetric=symmetric)
    a = np.random.default_rng(4).normal(0, 1, (5, k)).astype(np.float32)
    session = _session([_matmul_nbits(q, accuracy_level=4)], _inits(q), {"A": TensorProto.FLOAT})
    (y,) = session.run(None, {"A": a})
    ref = a @ dequantize_blockwise(q).T
    assert np.linalg.norm(y - ref) <= ACCURACY_LEVEL_4_RTOL * np.linalg.norm(ref)


# -- symmetric scale search ----------------------------------------------------------------


def _block_errors(w: np.ndarray, q: QuantizedWeight) -> np.ndarray:
    """Squared error per block [N, k_blocks]."""
    pad = q.k_blocks * q.block_size - q.K
    d = np.pad(dequantize_blockwise(q) - w, ((0, 0), (0, pad)))
    return (d.reshape(q.N, q.k_blocks, q.block_size) ** 2).sum(-1)


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("dist", ["gauss", "student-t3"])
def test_scale_search_never_worse_than_rtn_per_block(bits: int, dist: str) -> None:
    rng = np.random.default_rng(7)
    shape = (64, 3 * 32 - 5)
    w = (rng.normal(0, 0.02, shape) if dist == "gauss"
         else rng.standard_t(3, shape) * 0.02).astype(np.float32)
    rtn = quantize_blockwise(w, bits=bits, block_size=32, symmetric=True)
    searched = quantize_blockwise(w, bits=bits, block_size=32, symmetric=True, search=True)
    assert searched.zero_points is None
    e_rtn, e_search = _block_errors(w, rtn), _block_errors(w, searched)
    assert np.all(e_search <= e_rtn * (1 + 1e-5) + 1e-12)
    # and strictly better overall (4 bits: ~9% less squared error on Gaussian blocks)
    assert e_search.sum() < (0.97 if bits == 4 else 0.999) * e_rtn.sum()


def test_scale_search_picks_the_best_candidate_by_brute_force() -> None:
    # reference: for every ratio, RTN codes at ratio * s0, then the least-squares scale
    w = _weight(8, 64, seed=11)
    q = quantize_blockwise(w, bits=4, block_size=32, symmetric=True, search=True)
    s0 = quantize_blockwise(w, bits=4, block_size=32, symmetric=True).scales
    blocks = w.reshape(8, 2, 32).astype(np.float64)
    best = np.full((8, 2), np.inf)
    for ratio in quant.SEARCH_RATIOS:
        c = np.clip(np.rint(blocks / (s0[..., None] * ratio)), -8, 7)
        fit = (blocks * c).sum(-1) / (c * c).sum(-1)
        best = np.minimum(best, ((blocks - fit[..., None] * c) ** 2).sum(-1))
    np.testing.assert_allclose(_block_errors(w, q), best, rtol=1e-4, atol=1e-12)


def test_scale_search_keeps_zeros_and_padding_exact() -> None:
    w = _weight(6, 70, seed=5)
    w[:, ::3] = 0.0
    w[2] = 0.0  # all-zero row: scale 0
    q = quantize_blockwise(w, bits=4, block_size=32, symmetric=True, search=True)
    d = dequantize_blockwise(q)
    assert np.all(d[w == 0.0] == 0.0)
    assert np.all(q.scales[2] == 0.0)
    codes = np.empty((6, q.k_blocks, 32), np.uint8)
    codes[..., 0::2], codes[..., 1::2] = q.packed & 0x0F, q.packed >> 4
    assert np.all(codes.reshape(6, -1)[:, 70:] == 8)  # the padded tail is the zero point


# -- arguments, determinism, dtypes --------------------------------------------------------

BAD_ARGUMENTS = [
    ({"bits": 3}, "bits=3"),
    ({"bits": 2}, "bits=2"),
    ({"bits": 16}, "bits=16"),
    ({"bits": True}, "bits=True"),
    ({"bits": "4"}, "bits='4'"),
    ({"bits": 4.0}, "bits=4.0"),
    ({"block_size": 8}, "block_size=8"),
    ({"block_size": 48}, "block_size=48"),
    ({"block_size": 0}, "block_size=0"),
    ({"block_size": -32}, "block_size=-32"),
    ({"block_size": 32.0}, "block_size=32.0"),
    ({"block_size": True}, "block_size=True"),
    ({"symmetric": "yes"}, "symmetric='yes'"),
    ({"search": 1}, "search=1"),
    ({"search": True}, "search=True needs symmetric=True"),
    ({"w": np.zeros(32, np.float32)}, "w:"),
    ({"w": np.zeros((2, 2, 32), np.float32)}, "w:"),
    ({"w": np.zeros((0, 32), np.float32)}, "w:"),
    ({"w": np.zeros((4, 0), np.float32)}, "w:"),
    ({"w": np.zeros((4, 32), np.int32)}, "w: expected a floating-point"),
    ({"w": [[0.0] * 32]}, "w:"),
    ({"w": np.full((4, 32), np.nan, np.float32)}, "w: row 0 holds NaN"),
    ({"w": np.where(np.arange(128).reshape(4, 32) == 70, np.inf, 0.0)}, "w: row 2 holds NaN"),
]


@pytest.mark.parametrize(("override", "message"), BAD_ARGUMENTS, ids=[m for _, m in BAD_ARGUMENTS])
def test_bad_arguments_raise_config_error(override: dict[str, object], message: str) -> None:
    kwargs: dict[str, object] = {"w": np.zeros((4, 32), np.float32), "bits": 4, "block_size": 16}
    kwargs.update(override)
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        quantize_blockwise(**kwargs)  # type: ignore[arg-type]


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="bits"):
        quantize_blockwise(np.zeros((1, 16), np.float32), bits=5)


def test_inconsistent_quantized_weight_is_rejected() -> None:
    q = quantize_blockwise(_weight(4, 64), bits=4, block_size=32)
    with pytest.raises(ConfigError, match=r"^QuantizedWeight\.scales"):
        QuantizedWeight(q.packed, q.scales[:, :1], q.zero_points, 4, 32, 64, 4)
    with pytest.raises(ConfigError, match=r"^QuantizedWeight\.packed"):
        QuantizedWeight(q.packed, q.scales, q.zero_points, 8, 32, 64, 4)


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("bits", BITS)
def test_deterministic_and_independent_of_chunking(
    bits: int, symmetric: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = _weight(301, 200, seed=5)  # 301 rows: the last chunk is ragged
    first = quantize_blockwise(w, bits=bits, block_size=32, symmetric=symmetric)
    again = quantize_blockwise(w.copy(), bits=bits, block_size=32, symmetric=symmetric)
    monkeypatch.setattr(quant, "_CHUNK_ELEMENTS", 7 * 224)  # 7 rows per chunk
    chunked = quantize_blockwise(w, bits=bits, block_size=32, symmetric=symmetric)
    for other in (again, chunked):
        assert other.packed.tobytes() == first.packed.tobytes()
        assert other.scales.tobytes() == first.scales.tobytes()
        if symmetric:
            assert other.zero_points is None
        else:
            assert other.zero_points is not None
            assert first.zero_points is not None
            assert other.zero_points.tobytes() == first.zero_points.tobytes()


@pytest.mark.parametrize("dtype", ["float16", "float64", "bfloat16"])
def test_other_float_dtypes_quantize_like_their_float32_values(dtype: str) -> None:
    if dtype == "bfloat16":
        ml_dtypes = pytest.importorskip("ml_dtypes")
        np_dtype = np.dtype(ml_dtypes.bfloat16)
    else:
        np_dtype = np.dtype(dtype)
    w = _weight(8, 70).astype(np_dtype)
    q = quantize_blockwise(w, bits=4, block_size=32)
    ref = quantize_blockwise(w.astype(np.float32), bits=4, block_size=32)
    assert q.packed.tobytes() == ref.packed.tobytes()
    assert q.scales.tobytes() == ref.scales.tobytes()


def test_input_is_not_modified() -> None:
    w = _weight(16, 64)
    before = w.copy()
    quantize_blockwise(w, bits=4, block_size=16, symmetric=True)
    np.testing.assert_array_equal(w, before)


# -- helpers -------------------------------------------------------------------------------


def _inits(q: QuantizedWeight) -> dict[str, np.ndarray]:
    inits = {"B": q.packed, "scales": q.scales}
    if q.zero_points is not None:
        inits["zero_points"] = q.zero_points
    return inits


def _unpack(packed: np.ndarray, bits: int) -> np.ndarray:
    """uint8 ``[..., blob]`` -> codes ``[..., blob * 8 // bits]`` (independent of quant.py)."""
    if bits == 8:
        return packed
    out = np.empty((*packed.shape[:-1], packed.shape[-1] * 2), np.uint8)
    for i in range(packed.shape[-1]):
        out[..., 2 * i] = packed[..., i] % 16
        out[..., 2 * i + 1] = packed[..., i] // 16
    return out
