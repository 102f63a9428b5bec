"""Calling kernels with the arrays people have: numpy arrays, torch tensors and DLPack objects
(in and out, without copies where the layout allows), `out=`, strided inputs, bf16 as its real
dtype; a kernel as a torch custom op inside `torch.compile`; `inspect.signature` and pickling.

Each array kind runs on `cpu`, `triton` (Triton's interpreter) and `cuda` (CPU emulation), on
odd sizes. The torch tests skip without torch.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported: no GPU here

import copy  # noqa: E402
import importlib.util  # noqa: E402
import inspect  # noqa: E402
import pickle  # noqa: E402
import shutil  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import loopweave  # noqa: E402
from loopweave import ArgumentTypeError, ArgumentValueError  # noqa: E402
from loopweave.errors import LoopweaveWarning, StridedCopyWarning  # noqa: E402
from loopweave.ir.types import BF16  # noqa: E402
from loopweave.runtime import Kernel, Recipe, host_array  # noqa: E402

HAVE_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
needs_ml_dtypes = pytest.mark.skipif(importlib.util.find_spec("ml_dtypes") is None,
                                     reason="ml_dtypes is not installed")

MATMUL = """kernel matmul(A: f32[M, K], B: f32[K, N]) -> C: f32[M, N] {
    C[i, j] += A[i, k] * B[k, j]
}"""
STATS = """kernel stats(X: f32[N, D]) -> (s: f32[N], y: f32[N, D]) {
    s[i] += X[i, j]
    y[i, j] = 2.0 * X[i, j]
}"""
AXPY = """kernel axpy(a: f32, X: f32[N], Y: inout f32[N]) {
    Y[i] = Y[i] + a * X[i]
}"""
SCALE_BF16 = """kernel scale(X: bf16[N], s: f32) -> Y: bf16[N] {
    Y[i] = X[i] * s
}"""


def _target_params():
    triton_missing = not (HAVE_TORCH and importlib.util.find_spec("triton"))
    cuda_missing = shutil.which("g++") is None
    return [
        pytest.param("cpu", {}, id="cpu"),
        pytest.param("triton", {}, id="triton", marks=pytest.mark.skipif(
            triton_missing or os.environ.get("TRITON_INTERPRET") != "1",
            reason="triton and torch, with TRITON_INTERPRET=1, are needed")),
        pytest.param("cuda", {"emulate": True}, id="cuda", marks=pytest.mark.skipif(
            cuda_missing, reason="g++ is needed for the CUDA emulation")),
    ]


TARGETS = _target_params()
_compiled: dict = {}


def compiled(source: str, target: str = "cpu", **options) -> Kernel:
    """The kernel in program order (the schedule does not matter here; its build is the
    fastest), built once per module."""
    key = (source, target, tuple(sorted(options.items())))
    if key not in _compiled:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sequential-loop notes of the GPU targets
            _compiled[key] = loopweave.compile(source, target=target,
                                               schedule=loopweave.Schedule(), **options)
    return _compiled[key]


class DLPackOnly:
    """A foreign array: nothing but the DLPack protocol, over a numpy array's memory."""

    def __init__(self, array: np.ndarray):
        self.array = array

    def __dlpack__(self, **kwargs):
        return self.array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()


class OnDevice(DLPackOnly):
    """A DLPack object that says its memory is on a CUDA device."""

    def __dlpack_device__(self):
        return (2, 0)


def matmul_inputs(m=5, k=7, n=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32)


def as_kind(array: np.ndarray, kind: str):
    if kind == "torch":
        import torch

        return torch.from_numpy(array)
    return DLPackOnly(array) if kind == "dlpack" else array


def to_numpy(value) -> np.ndarray:
    return value.numpy() if type(value).__module__.startswith("torch") else value


KINDS = ["numpy", pytest.param("torch", marks=needs_torch), "dlpack"]


# -- array kinds on every target --------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("target, options", TARGETS)
def test_each_array_kind_in_and_out(target, options, kind):
    A, B = matmul_inputs()
    got = compiled(MATMUL, target, **options)(as_kind(A, kind), as_kind(B, kind))
    assert type(got).__module__.split(".")[0] == ("torch" if kind == "torch" else "numpy")
    np.testing.assert_allclose(to_numpy(got), A @ B, rtol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("target, options", TARGETS)
def test_out_is_written_in_place_and_returned(target, options, kind):
    A, B = matmul_inputs(m=6, k=9, n=5)
    C = np.full((6, 5), np.nan, np.float32)  # stale contents must not leak into the result
    out = as_kind(C, kind)
    got = compiled(MATMUL, target, **options)(A, B, out=out)
    assert got is out
    np.testing.assert_allclose(C, A @ B, rtol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("target, options", TARGETS)
def test_inout_arguments_of_every_kind_are_updated_in_place(target, options, kind):
    X = np.arange(11, dtype=np.float32)
    Y = np.ones(11, np.float32)
    a = as_kind(np.array(2.0, np.float32), kind) if kind == "torch" else 2.0  # a 0-d tensor
    assert compiled(AXPY, target, **options)(a, as_kind(X, kind), as_kind(Y, kind)) is None
    np.testing.assert_allclose(Y, 1 + 2 * X)


@pytest.mark.parametrize("target, options", TARGETS)
def test_a_strided_input_is_copied_with_one_warning(target, options):
    kernel = compiled(MATMUL, target, **options)
    kernel._copied.clear()  # the kernel is shared between tests: warn afresh here
    A, _ = matmul_inputs()
    wide = np.random.default_rng(1).random((7, 6), dtype=np.float32)
    B = wide[:, ::2]  # strides (24, 8): not C-contiguous
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = kernel(A, B)
        second = kernel(A, B)
    copies = [w for w in caught if issubclass(w.category, StridedCopyWarning)]
    assert len(copies) == 1 and "'B'" in str(copies[0].message), [str(w.message) for w in caught]
    assert copies[0].filename == __file__  # points at the caller's line
    assert issubclass(StridedCopyWarning, LoopweaveWarning)
    for got in (first, second):
        np.testing.assert_allclose(got, A @ B, rtol=1e-5)


@needs_torch
def test_strided_and_transposed_torch_tensors():
    import torch

    A, B = matmul_inputs(m=4, k=6, n=5)
    tB = torch.from_numpy(np.ascontiguousarray(B.T)).T  # a transposed view
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StridedCopyWarning)
        got = compiled(MATMUL)(torch.from_numpy(A), tB)
    assert isinstance(got, torch.Tensor)
    np.testing.assert_allclose(got.numpy(), A @ B, rtol=1e-5)


def test_a_strided_inout_argument_is_an_error():
    Y = np.ones(22, np.float32)[::2]
    with pytest.raises(ArgumentValueError, match="'Y' is inout but not C-contiguous"):
        compiled(AXPY)(1.0, np.ones(11, np.float32), Y)


def test_arrays_are_read_without_copies():
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert np.shares_memory(host_array(DLPackOnly(base), "x", "f32[N]"), base)
    if HAVE_TORCH:
        import torch

        tensor = torch.arange(12, dtype=torch.float32, requires_grad=True)
        assert host_array(tensor, "x", "f32[N]").ctypes.data == tensor.data_ptr()


# -- out= -------------------------------------------------------------------------------------

def test_out_for_several_outputs():
    X = np.random.default_rng(2).random((5, 3), dtype=np.float32)
    y = np.empty((5, 3), np.float32)
    s, y_got = compiled(STATS)(X, out=(None, y))  # None: allocate that one
    assert y_got is y
    np.testing.assert_allclose(s, X.sum(axis=1), rtol=1e-5)
    np.testing.assert_allclose(y, 2 * X)


def read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


@pytest.mark.parametrize("make_out, error, words", [
    (lambda: np.empty((5, 4), np.float32), ArgumentValueError,
     ["out array for 'C'", "(5, 4)", "(M, N) = (5, 3)"]),
    (lambda: np.empty((5, 3), np.float64), ArgumentTypeError,
     ["out array for 'C'", "float32", "float64"]),
    (lambda: np.empty((3, 5), np.float32).T, ArgumentValueError,
     ["out array for 'C'", "not C-contiguous"]),
    (lambda: read_only(np.empty((5, 3), np.float32)), ArgumentValueError,
     ["out array for 'C'", "read-only"]),
    (lambda: [[0.0] * 3] * 5, ArgumentTypeError, ["out array for 'C'", "not list"]),
    (lambda: (np.empty((5, 3), np.float32), np.empty(3)), ArgumentTypeError,
     ["1 output(s) (C)", "tuple of 1"]),
], ids=["shape", "dtype", "strided", "read-only", "list", "two-for-one"])
def test_bad_out_arrays_are_named_errors(make_out, error, words):
    A, B = matmul_inputs()
    with pytest.raises(error) as info:
        compiled(MATMUL)(A, B, out=make_out())
    assert all(w in str(info.value) for w in words), str(info.value)


def test_out_overlapping_an_input_or_another_out_is_an_error():
    X = np.ones((4, 3), np.float32)
    with pytest.raises(ArgumentValueError, match="out array for 'y' overlaps argument 'X'"):
        compiled(STATS)(X, out=(None, X))
    buffer = np.zeros(16, np.float32)
    with pytest.raises(ArgumentValueError, match="overlaps the out array for 's'"):
        compiled(STATS)(X, out=(buffer[:4], buffer[2:14].reshape(4, 3)))
    with pytest.raises(ArgumentTypeError, match="2 output.*tuple of 2"):
        compiled(STATS)(X, out=np.empty(4, np.float32))
    with pytest.raises(ArgumentTypeError, match="no outputs"):
        compiled(AXPY)(1.0, np.ones(3, np.float32), np.ones(3, np.float32), out=np.ones(3))


def test_device_memory_on_a_host_target_is_an_error_naming_the_argument():
    A, B = matmul_inputs()
    with pytest.raises(ArgumentTypeError, match=r"argument 'B' is on DLPack device 2:0.*B\.cpu"):
        compiled(MATMUL)(A, OnDevice(B))


def test_not_an_array_names_the_kinds_taken():
    with pytest.raises(ArgumentTypeError, match="numpy array, a torch tensor or a DLPack "
                                                r"object \(f32\[M, K\]\), not str"):
        compiled(MATMUL)("A", np.ones((1, 1), np.float32))


# -- bf16 ---------------------------------------------------------------------------------------

def assert_bf16_equal(got_bits: np.ndarray, want: np.ndarray, target: str) -> None:
    """`got_bits` (the uint16 bits of a bf16 result) is `want` rounded to bf16: to nearest, as
    the C and CUDA code round; on `triton` also toward zero, as Triton's interpreter converts
    (a GPU rounds to nearest)."""
    nearest = want.astype(BF16.numpy).view(np.uint16)
    toward_zero = (want.view(np.uint32) >> 16).astype(np.uint16)
    ok = (got_bits == nearest) | ((got_bits == toward_zero) if target == "triton" else False)
    assert ok.all(), (got_bits, nearest)


@needs_ml_dtypes
@pytest.mark.parametrize("target, options", TARGETS)
def test_bf16_arrays_as_ml_dtypes_and_as_bits(target, options):
    import ml_dtypes

    X = (np.arange(13, dtype=np.float32) / 3).astype(ml_dtypes.bfloat16)
    want = X.astype(np.float32) * np.float32(1.5)
    kernel = compiled(SCALE_BF16, target, **options)
    got = kernel(X, 1.5)
    assert got.dtype == ml_dtypes.bfloat16
    assert_bf16_equal(got.view(np.uint16), want, target)
    bits = kernel(X.view(np.uint16), 1.5)  # the uint16 bits, as before ml_dtypes
    assert bits.dtype == ml_dtypes.bfloat16
    assert_bf16_equal(bits.view(np.uint16), want, target)


@needs_torch
@pytest.mark.parametrize("target, options", TARGETS)
def test_bf16_torch_tensors(target, options):
    import torch

    X = torch.linspace(-2, 2, 13, dtype=torch.bfloat16)
    got = compiled(SCALE_BF16, target, **options)(X, 1.5)
    assert got.dtype == torch.bfloat16
    want = (X.float() * 1.5).numpy()
    assert_bf16_equal(got.view(torch.int16).numpy().view(np.uint16), want, target)
    out = torch.empty(13, dtype=torch.bfloat16)
    assert compiled(SCALE_BF16, target, **options)(X, 1.5, out=out) is out
    torch.testing.assert_close(out, got, rtol=0, atol=0)


def test_a_bf16_parameter_refuses_other_dtypes():
    with pytest.raises(ArgumentTypeError, match=r"argument 'X' must have dtype .*uint16 bits"
                                                r".*not float32"):
        compiled(SCALE_BF16)(np.ones(3, np.float32), 1.0)


# -- torch custom op ----------------------------------------------------------------------------

@needs_torch
def test_a_kernel_as_a_torch_op_in_a_compiled_graph():
    import torch

    op = compiled(MATMUL).as_torch_op("lwtest::matmul")
    assert compiled(MATMUL).as_torch_op("lwtest::matmul") is op  # registered once
    graphs = []

    def recording_backend(graph_module, example_inputs):  # what torch.compile traced
        graphs.append(graph_module)
        return graph_module.forward

    @torch.compile(backend=recording_backend, fullgraph=True)
    def layer(x, w):
        return torch.relu(op(x, w)) * 2 + 1

    A, B = matmul_inputs(m=9, k=5, n=7)
    A -= 0.5
    got = layer(torch.from_numpy(A), torch.from_numpy(B))
    np.testing.assert_allclose(got.numpy(), np.maximum(A @ B, 0) * 2 + 1, rtol=1e-5)
    assert "lwtest.matmul" in graphs[0].code, graphs[0].code
    aot = torch.compile(layer.__wrapped__, backend="aot_eager", fullgraph=True)
    np.testing.assert_allclose(aot(torch.from_numpy(A), torch.from_numpy(B)).numpy(),
                               np.maximum(A @ B, 0) * 2 + 1, rtol=1e-5)


@needs_torch
def test_torch_op_fake_shapes_schema_and_mutation():
    import torch

    stats = compiled(STATS).as_torch_op("lwtest::stats")
    axpy = compiled(AXPY).as_torch_op("lwtest::axpy")
    assert str(axpy._opoverload._schema) == ("lwtest::axpy(float a, Tensor X, Tensor(a!) Y) "
                                              "-> ()")
    X = torch.rand(6, 5)
    torch.library.opcheck(stats, (X,))  # schema, fake tensors, AOT dispatch
    with torch._subclasses.fake_tensor.FakeTensorMode():
        s, y = torch.ops.lwtest.stats(torch.empty(6, 5))
        assert (s.shape, y.shape, y.dtype) == ((6,), (6, 5), torch.float32)
    Y = torch.ones(7)
    axpy(3.0, torch.arange(7.0), Y)
    torch.testing.assert_close(Y, 1 + 3 * torch.arange(7.0))
    with pytest.raises(ArgumentTypeError, match="'X' must have dtype torch.float32"):
        with torch._subclasses.fake_tensor.FakeTensorMode():
            stats(torch.empty(6, 5, dtype=torch.float64))


# -- signature, repr, pickle ----------------------------------------------------------------------

def test_signature_names_the_parameters():
    sig = inspect.signature(compiled(MATMUL))
    assert list(sig.parameters) == ["A", "B", "out"]
    assert sig.parameters["out"].kind is inspect.Parameter.KEYWORD_ONLY
    assert str(sig) == "(A: 'f32[M, K]', B: 'f32[K, N]', *, out=None) -> 'C: f32[M, N]'"
    axpy = inspect.signature(compiled(AXPY))
    assert str(axpy) == "(a: 'f32', X: 'f32[N]', Y: 'inout f32[N]') -> None"  # and no out=
    assert "matmul(A: in f32[M, K], B: in f32[K, N])" in repr(compiled(MATMUL))


@pytest.mark.parametrize("target, options", TARGETS)
def test_pickle_round_trip_by_source_schedule_and_target(target, options):
    schedule = loopweave.Schedule().tile("C", i=4) if target == "cpu" else None
    kwargs = {"target": target, "schedule": schedule, **options}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kernel = loopweave.compile(MATMUL, **kwargs)  # records its Recipe
        again = pickle.loads(pickle.dumps(kernel))
    assert again.target == target and again.source == kernel.source
    A, B = matmul_inputs(m=7, k=3, n=5)
    np.testing.assert_allclose(again(A, B), A @ B, rtol=1e-5)
    assert pickle.loads(pickle.dumps(again)).source == kernel.source  # keeps its recipe


def test_any_recipe_pickles():
    recipe = Recipe(loopweave.compile, (MATMUL,), {"schedule": loopweave.Schedule()})
    kernel = pickle.loads(pickle.dumps(Kernel(*_parts(compiled(MATMUL)), recipe=recipe)))
    assert kernel.recipe.build is loopweave.compile and kernel.recipe.args == (MATMUL,)
    assert kernel.recipe.kwargs["schedule"].steps == []
    A, B = matmul_inputs()
    np.testing.assert_allclose(kernel(A, B), A @ B, rtol=1e-5)


def _parts(kernel: Kernel) -> tuple:
    return kernel.ir, kernel.source, kernel.target, kernel.invoke


def test_a_kernel_without_recipe_says_why_it_does_not_pickle_but_copies():
    k = compiled(MATMUL)
    bare = Kernel(*_parts(k))
    with pytest.raises(TypeError, match="cannot pickle kernel 'matmul'"):
        pickle.dumps(bare)
    clone = copy.copy(bare)  # shares the loaded code: no recipe needed
    assert clone.invoke is bare.invoke and clone is not bare
