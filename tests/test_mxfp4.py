"""MXFP4: f4e2m1 weights packed two a byte (low nibble first, as OCP MX and torch's
float4_e2m1fn_x2) with an e8m0 scale per 32 along k, examples/kernels/mxfp4_matmul.lw.

Checked: the example against numpy at odd sizes (K even, not a multiple of 32) on every target;
bf16 activations; the reference's packing against the OCP nibble order and ml_dtypes; an odd K
refused at the call; torch float4_e2m1fn_x2 tensors read as their bytes without a copy, in a
call, a custom op and a torch.compile graph.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported: no GPU here

import shutil  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import loopweave  # noqa: E402
from loopweave import torch_ops  # noqa: E402
from loopweave.errors import ArgumentTypeError, ArgumentValueError  # noqa: E402
from loopweave.examples import load_references  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # benchmarks/ is a top-level folder, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import mx_matmul  # noqa: E402

refs = load_references()
CASE = refs.KERNELS["mxfp4_matmul"]
TARGETS = ["cpu", "aarch64", "cortex-m4", "triton", "cuda"]
_TOOLS = {"cpu": ["gcc"], "aarch64": ["aarch64-linux-gnu-gcc", "qemu-aarch64"],
          "cortex-m4": ["arm-none-eabi-gcc", "qemu-system-arm"], "cuda": ["g++"], "triton": []}
_compiled: dict[tuple, object] = {}


def compiled(source: str, target: str = "cpu"):
    """The kernel on `target`, compiled once per session (skipped where its tools are missing)."""
    for tool in _TOOLS[target]:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (make toolchains)")
    if target == "triton":
        pytest.importorskip("triton", reason="triton not installed")
        pytest.importorskip("torch", reason="torch not installed")
        if os.environ.get("TRITON_INTERPRET") != "1":
            pytest.skip("TRITON_INTERPRET was set to something else before the tests")
    key = (source, target)
    if key not in _compiled:
        options = {"emulate": True} if target == "cuda" else {}
        _compiled[key] = loopweave.compile(source, target, tuning_db=False, **options)
    return _compiled[key]


@pytest.mark.parametrize("target", TARGETS)
def test_the_mxfp4_example_matches_numpy_at_odd_sizes(target):
    kernel = compiled(CASE.source(), target)
    sizes = CASE.sizes if target in ("cpu", "cuda") else CASE.sizes[::2]
    assert any(s["K"] % 32 for s in sizes)  # a partial last scale block
    for seed, s in enumerate(sizes):
        args = CASE.make_inputs(s, seed)
        err, ok = refs.compare(kernel(*args.values()), CASE.reference(**args)["Y"])
        assert ok, f"{target} {s}: off by {err:g}"


def test_bf16_activations():
    """The same weights times bf16 activations (widened exactly to f32)."""
    source = CASE.source().replace("X: f32[M, K]", "X: bf16[M, K]")
    assert source != CASE.source()
    kernel = compiled(source)
    args = CASE.make_inputs({"M": 7, "K": 98, "N": 9}, 4)
    args["X"] = args["X"].astype(ml_dtypes.bfloat16)
    want = CASE.reference(**{**args, "X": args["X"].astype(np.float32)})["Y"]
    err, ok = refs.compare(kernel(*args.values()), want)
    assert ok, f"off by {err:g}"


def test_the_packing_is_low_nibble_first_and_decodes_as_ml_dtypes():
    """Byte m of a row holds element 2m in its low 4 bits and element 2m + 1 in its high ones;
    quantized values are f4e2m1 values times their block's power-of-two scale."""
    codes = np.arange(16, dtype=np.uint8)
    values = codes.view(ml_dtypes.float4_e2m1fn).astype(np.float64)
    W, S = refs.microscaling.mxfp4_quantize(values[None, :] * 8.0)  # block max 6 * 8: scale 2^3
    np.testing.assert_array_equal(W[0], codes[0::2] | (codes[1::2] << 4))
    assert S.astype(np.float32)[0, 0] == 8.0
    np.testing.assert_array_equal(refs.microscaling.mxfp4_unpack(W)[0], values)


def test_an_odd_k_is_refused_at_the_call():
    kernel = compiled(CASE.source())
    with pytest.raises(ArgumentValueError, match="K % 2 == 0"):
        kernel(np.zeros((2, 7), np.float32), np.zeros((3, 3), np.uint8),
               np.zeros((3, 1), ml_dtypes.float8_e8m0fnu))


# -- torch ----------------------------------------------------------------------------------------

def _torch_args(torch, args):
    """X, W and S as torch tensors: W as float4_e2m1fn_x2 [N, K / 2], S as float8_e8m0fnu."""
    W = torch.from_numpy(args["W"]).view(torch.float4_e2m1fn_x2)
    S = torch.from_numpy(args["S"].view(np.uint8)).view(torch.float8_e8m0fnu)
    return torch.from_numpy(args["X"]), W, S


def test_a_torch_float4_x2_tensor_is_read_as_its_bytes_without_a_copy():
    torch = pytest.importorskip("torch")
    args = CASE.make_inputs({"M": 5, "K": 70, "N": 3}, 1)
    X, W, S = _torch_args(torch, args)
    assert W.dtype == torch.float4_e2m1fn_x2 and tuple(W.shape) == (3, 35)
    view = torch_ops.tensor_to_numpy(W)
    assert view.dtype == np.uint8 and view.shape == (3, 35)
    assert view.ctypes.data == W.data_ptr()  # the tensor's own memory
    got = compiled(CASE.source())(X, W, S)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    err, ok = refs.compare(got.numpy(), CASE.reference(**args)["Y"])
    assert ok, f"off by {err:g}"


def test_float4_x2_through_a_custom_op_and_torch_compile():
    torch = pytest.importorskip("torch")
    args = CASE.make_inputs({"M": 6, "K": 96, "N": 5}, 2)
    tensors = _torch_args(torch, args)
    op = compiled(CASE.source()).as_torch_op("lwtest::mxfp4_matmul")
    want = CASE.reference(**args)["Y"]
    assert refs.compare(op(*tensors).numpy(), want)[1]
    # torch's own opcheck cannot copy float4 tensors ("copy_" not implemented): not used here
    graph = torch.compile(lambda x, w, s: torch.relu(op(x, w, s)), fullgraph=True)
    assert refs.compare(graph(*tensors).numpy(), np.maximum(want, 0))[1]


def test_float4_x2_where_a_float_is_declared_is_an_argument_type_error():
    torch = pytest.importorskip("torch")
    args = CASE.make_inputs({"M": 5, "K": 70, "N": 3}, 1)
    X, W, S = _torch_args(torch, args)
    kernel = compiled(CASE.source())
    with pytest.raises(ArgumentTypeError, match="'X'"):
        kernel(torch.zeros(5, 35, dtype=torch.float4_e2m1fn_x2), W, S)


def test_the_benchmark_peer_decodes_the_same_bytes_as_the_reference():
    """benchmarks/mx_matmul.py's torch peer (unpack, 16-entry table, scale, matmul) and one
    quick comparison row, at a size with a partial scale block."""
    torch = pytest.importorskip("torch")
    args = CASE.make_inputs({"M": 9, "K": 98, "N": 11}, 5)
    got = mx_matmul.torch_mxfp4_matmul(torch, *args.values())().numpy()
    assert refs.compare(got, CASE.reference(**args)["Y"])[1]
    threads = torch.get_num_threads()  # the benchmark pins torch to one thread
    try:
        row = mx_matmul.mx_matmul({"M": 8, "K": 70, "N": 8}, 1, "mxfp4_matmul")
    finally:
        torch.set_num_threads(threads)
    assert row.kernel == "mxfp4_matmul" and set(row.timings) == {"loopweave", "torch"}


def test_float4_x2_where_one_code_a_byte_is_declared_is_refused():
    """A `float4_e2m1fn_x2` tensor holds two codes a byte; an `f4e2m1` parameter holds one.
    Read as one code a byte, its high nibbles would be lost without a word."""
    torch = pytest.importorskip("torch")
    kernel = loopweave.compile("kernel w(x: f4e2m1[N]) -> y: f32[N] { y[i] = f32(x[i]) }",
                               tuning_db=False)
    packed = torch.from_numpy(np.array([0x21, 0x43], np.uint8)).view(torch.float4_e2m1fn_x2)
    with pytest.raises(ArgumentTypeError, match="two codes a byte.*u8"):
        kernel(packed)
    codes = torch.from_numpy(np.array([0x1, 0x2], np.uint8))  # one code a byte, as uint8
    np.testing.assert_array_equal(kernel(codes.numpy()), [0.5, 1.0])
