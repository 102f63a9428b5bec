"""Calling a compiled kernel with hostile arguments: each a clear `loopweave` error or a correct
result, never memory corruption.

Wrong dtype, rank, shape, non-contiguous and read-only arrays, memory shared between an output
or `inout` argument and another argument, keyword arguments, zero-size dimensions (every example
kernel, each size set to 0 in turn), and NaN/inf inputs, which must propagate as numpy's do.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from test_kernels import refs  # examples/references/, loaded by path

import loopweave
from loopweave import ArgumentTypeError, ArgumentValueError

GEMM = """kernel gemm(alpha: f32, C: inout f32[M, N], A: f32[M, K], B: f32[K, N]) {
    C[i, j] += alpha * A[i, k] * B[k, j]
}"""
REDUCE = """kernel reduce(X: f32[N, D]) -> (hi: f32[N], lo: f32[N], e: f32[N, D], m: f32[N, D]) {
    hi[i] max= X[i, j]
    lo[i] min= X[i, j]
    e[i, j] = exp(X[i, j])
    m[i, j] = max(X[i, j], 0.0)
}"""
_compiled: dict[str, loopweave.Kernel] = {}


def kernel(source: str) -> loopweave.Kernel:
    if source not in _compiled:
        _compiled[source] = loopweave.compile(source)
    return _compiled[source]


def gemm_args(m=3, k=5, n=4):
    rng = np.random.default_rng(0)
    return (np.float32(2.0), rng.random((m, n), dtype=np.float32),
            rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32))


def gemm_expected(alpha, C, A, B):
    return C + alpha * (A.astype(np.float64) @ B).astype(np.float32)


# -- argument checks ------------------------------------------------------------------------------

@pytest.mark.parametrize("index, bad, error, words", [
    (2, lambda a: a.astype(np.float64), ArgumentTypeError, ["'A'", "float32", "float64"]),
    (2, lambda a: a.astype(np.int32), ArgumentTypeError, ["'A'", "dtype"]),
    (2, lambda a: a[None], ArgumentValueError, ["'A'", "2 dimension"]),
    (2, lambda a: a.ravel(), ArgumentValueError, ["'A'", "2 dimension"]),
    (3, lambda b: b[:-1], ArgumentValueError, ["'B'", "dimension 0", "K"]),
    (1, lambda c: c[:, :-1], ArgumentValueError, ["'C'", "C-contiguous"]),
    (2, lambda a: a.tolist(), ArgumentTypeError, ["'A'", "numpy array", "list"]),
    (0, lambda s: np.ones(1, np.float32), ArgumentTypeError, ["'alpha'", "scalar"]),
    (0, lambda s: "2", ArgumentTypeError, ["'alpha'", "scalar"]),
    (0, lambda s: True, ArgumentTypeError, ["'alpha'"]),
    (0, lambda s: 10**400, ArgumentValueError, ["'alpha'", "does not fit"]),
], ids=["f64", "i32", "rank+1", "rank-1", "shape", "strided-out", "list", "array-for-scalar",
        "str-for-scalar", "bool-for-scalar", "huge-scalar"])
def test_bad_arguments_are_named_errors(index, bad, error, words):
    args = list(gemm_args())
    args[index] = bad(args[index])
    before = args[1].copy() if isinstance(args[1], np.ndarray) else None
    with pytest.raises(error) as info:
        kernel(GEMM)(*args)
    assert all(w in str(info.value) for w in words), str(info.value)
    if before is not None and args[1].shape == before.shape:
        np.testing.assert_array_equal(args[1], before)  # nothing ran


def test_read_only_inout_is_an_error_and_read_only_inputs_are_fine():
    alpha, C, A, B = gemm_args()
    A.flags.writeable = False
    B.flags.writeable = False
    expected = gemm_expected(alpha, C, A, B)
    kernel(GEMM)(alpha, C, A, B)
    np.testing.assert_allclose(C, expected, rtol=1e-5)
    C.flags.writeable = False
    with pytest.raises(ArgumentValueError, match="'C' is inout but read-only"):
        kernel(GEMM)(alpha, C, A, B)


@pytest.mark.parametrize("alias", ["same", "view", "overlap"])
def test_memory_shared_with_an_inout_argument_is_an_error(alias):
    alpha, C, _, _ = gemm_args(m=4, k=4, n=4)
    base = np.ones((4, 8), np.float32)
    C = base[:, :4].copy()
    A = {"same": C, "view": C.reshape(2, 8).reshape(4, 4), "overlap": None}[alias]
    if A is None:  # overlapping halves of one buffer
        buf = np.ones(24, np.float32)
        C, A = buf[:16].reshape(4, 4), buf[8:].reshape(4, 4)
    before = C.copy()
    with pytest.raises(ArgumentValueError, match="overlaps inout argument 'C'"):
        kernel(GEMM)(alpha, C, A, np.eye(4, dtype=np.float32))
    np.testing.assert_array_equal(C, before)


def test_the_same_array_as_two_inputs_is_fine():
    alpha, C, A, _ = gemm_args(m=4, k=4, n=4)
    expected = gemm_expected(alpha, C, A, A)
    kernel(GEMM)(alpha, C, A, A)
    np.testing.assert_allclose(C, expected, rtol=1e-5)


def test_outputs_are_fresh_arrays():
    X = np.arange(6, dtype=np.float32).reshape(2, 3)
    outs = kernel(REDUCE)(X)
    for a in outs:
        assert not np.may_share_memory(a, X) and a.flags.c_contiguous and a.flags.writeable
    assert not any(np.may_share_memory(a, b) for i, a in enumerate(outs) for b in outs[i + 1:])


def test_keyword_arguments():
    alpha, C, A, B = gemm_args()
    expected = gemm_expected(alpha, C, A, B)
    kernel(GEMM)(alpha, C, B=B, A=A)
    np.testing.assert_allclose(C, expected, rtol=1e-5)
    for kwargs, words in [({"A": A, "B": B, "Q": B}, "unexpected keyword argument 'Q'"),
                          ({"alpha": alpha, "A": A, "B": B}, "'alpha' twice"),
                          ({"A": A}, "missing argument(s) B")]:
        with pytest.raises(ArgumentTypeError, match=kwargs and words.replace("(", r"\(")
                           .replace(")", r"\)")):
            kernel(GEMM)(alpha, C, **kwargs)
    with pytest.raises(ArgumentTypeError, match="takes 4 argument"):
        kernel(GEMM)(alpha, C, A, B, B, Q=1)


# -- zero-size dimensions -------------------------------------------------------------------------

ZERO_CASES = [(name, size) for name, case in sorted(refs.KERNELS.items())
              for size in case.sizes[0]]


@pytest.mark.parametrize("name, size", ZERO_CASES, ids=[f"{n}-{s}" for n, s in ZERO_CASES])
def test_zero_size_dimensions(name, size):
    """Each size 0 in turn: a result of the right shape that equals numpy's where numpy has one
    (a sum over nothing is 0, as numpy's), or an `assume` the sizes break."""
    case = refs.KERNELS[name]
    sizes = {**case.sizes[0], size: 0}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. a scale 1/sqrt(D) for D = 0
            args = case.make_inputs(sizes, 0)
    except (ValueError, OverflowError, ZeroDivisionError):
        pytest.skip(f"the example's inputs are undefined for {size}=0")
    for a in args.values():
        if isinstance(a, np.ndarray) and a.size == 0:  # numpy gives a dangling-looking pointer
            assert a.ctypes.data != 0
    try:
        outs = kernel(case.source())(*args.values())
    except ArgumentValueError as e:
        assert "assume" in str(e), str(e)
        return
    outs = outs if isinstance(outs, tuple) else (outs,) if outs is not None else ()
    got = dict(zip(case.outputs, outs, strict=True)) | {n: args[n] for n in case.inouts}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            expected = case.expected(case.make_inputs(sizes, 0))
        except ValueError:  # numpy refuses, e.g. the max of an empty row
            expected = None
    for out_name, value in got.items():
        assert isinstance(value, np.ndarray) and value.flags.c_contiguous, out_name
        if expected is not None:
            want = expected[out_name]
            assert value.shape == want.shape, (out_name, value.shape, want.shape)
            nan = np.isnan(want) if want.dtype.kind == "f" else np.zeros(want.shape, bool)
            np.testing.assert_array_equal(np.isnan(value) if nan.any() else nan, nan)
            assert refs.compare(np.where(nan, 0, value), np.where(nan, 0, want))[1], out_name


def test_reductions_over_nothing_give_their_identity():
    X = np.zeros((3, 0), np.float32)
    hi, lo, e, m = kernel(REDUCE)(X)
    np.testing.assert_array_equal(hi, np.full(3, -np.inf, np.float32))
    np.testing.assert_array_equal(lo, np.full(3, np.inf, np.float32))
    assert e.shape == m.shape == (3, 0)
    hi, lo, e, m = kernel(REDUCE)(np.zeros((0, 5), np.float32))
    assert hi.shape == lo.shape == (0,) and e.shape == (0, 5)


# -- NaN and inf ----------------------------------------------------------------------------------

SPECIAL = np.array([[1.0, np.nan, -2.0, 3.0],
                    [np.inf, 1.0, -np.inf, 0.0],
                    [-np.inf, -np.inf, -np.inf, -np.inf],
                    [np.nan, np.nan, np.inf, -np.inf],
                    [0.5, -0.5, 2.0, -3.0]], dtype=np.float32)


def test_nan_and_inf_propagate_through_max_min_exp_as_in_numpy():
    hi, lo, e, m = kernel(REDUCE)(SPECIAL)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(hi, SPECIAL.max(axis=1))
        np.testing.assert_array_equal(lo, SPECIAL.min(axis=1))
        np.testing.assert_allclose(e, np.exp(SPECIAL), rtol=1e-6)  # NaN, inf exactly
        np.testing.assert_array_equal(m, np.maximum(SPECIAL, np.float32(0)))


def test_nan_and_inf_in_softmax_as_in_numpy():
    softmax = kernel(refs.KERNELS["softmax"].source())
    got = softmax(SPECIAL)
    with np.errstate(all="ignore"):
        want = refs.softmax_ref(SPECIAL)["Y"]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    finite = ~np.isnan(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-6)
    assert np.isnan(got[:4]).all(axis=1).tolist() == [True, True, True, True]


# -- outputs the kernel writes whole are not zeroed first ----------------------------------------

LOWER = """kernel lower(A: f32[N, N]) -> L: f32[N, N] {
    L[i, j] = A[i, j] where j in 0:i + 1
}"""
PREFIX = """kernel prefix(x: f32[N]) -> y: f32[N] {
    y[i] = x[i]
    y[i] += y[i - 1] where i in 1:N
}"""


@pytest.mark.parametrize("name, source, whole", [
    ("matmul", refs.KERNELS["matmul"].source(), True),
    ("lower", LOWER, False), ("prefix", PREFIX, True)])
def test_out_arrays_hold_what_a_fresh_output_would(name, source, whole):
    """An output written whole before any read is handed over unzeroed (its prior contents
    cannot show); one the kernel writes in part is zeroed first, as a fresh output is."""
    k = kernel(source)
    assert (k.ir.outputs[0].name in k._written_first) == whole
    rng = np.random.default_rng(0)
    if name == "matmul":
        args = (rng.random((7, 5), np.float32), rng.random((5, 9), np.float32))
        want = args[0] @ args[1]
    elif name == "lower":
        args = (rng.random((6, 6), np.float32),)
        want = np.tril(args[0])
    else:
        args = (rng.random(11, np.float32),)
        want = np.cumsum(args[0])
    for _ in range(2):  # the second call reuses a buffer with garbage from the first
        out = np.full(want.shape, np.nan, np.float32)
        np.testing.assert_allclose(k(*args, out=out), want, rtol=1e-5)
        np.testing.assert_allclose(k(*args), want, rtol=1e-5)


READ_WHERE_WRITTEN = """kernel part(x: f32[N]) -> y: f32[N] {
    t[i] = x[i] * 2.0 where i in 1:N
    y[i] = t[N - i] where i in 1:N
}"""
READ_UNWRITTEN = """kernel hole(x: f32[N]) -> y: f32[N] {
    t[i] = x[i] * 2.0 where i in 1:N
    y[i] = t[N - 1 - i]
}"""


@pytest.mark.parametrize("source, first", [(READ_WHERE_WRITTEN, True), (READ_UNWRITTEN, False)])
def test_a_temporary_is_zeroed_only_where_a_read_could_see_unwritten_elements(source, first):
    """A temporary needs zeros only if some read could find an element no statement wrote
    (t[0] here); one written in part and read only there needs none (as a row-padded copy,
    whose padding nothing reads). Outputs still need the whole box written."""
    k = kernel(source)
    assert [t.name for t in k.ir.temporaries] == ["t"]
    assert ("t" in k._written_first) == first
    assert ("y" in k._written_first) == (not first)  # y[0] unwritten in the first
    for n in (1, 6, 6, 9):
        x = np.arange(1, n + 1, dtype=np.float32)
        t = np.concatenate([[0], 2 * x[1:]])
        want = np.concatenate([[0], t[::-1][:-1]]) if first else t[::-1]
        np.testing.assert_array_equal(k(x), want)
