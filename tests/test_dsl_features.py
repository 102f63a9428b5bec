"""DSL features met while writing PolyBench: `-=`, scalar (0-d) temporaries and outputs,
`for ... in reversed(lo:hi)`, temporaries shaped by all their writes and typed by later writes.

Each kernel is compiled for the host (default schedule unless stated) and checked against numpy
on odd sizes; misuse gives a loopweave error pointing at the source.
"""

from __future__ import annotations

import os
import re
import shutil
import warnings
from pathlib import Path

os.environ.setdefault("TRITON_INTERPRET", "1")  # as tests/test_triton.py: no GPU here

import numpy as np  # noqa: E402
import pytest

import loopweave  # noqa: E402
from loopweave import (  # noqa: E402
    BoundsError,
    DSLSyntaxError,
    DSLTypeError,
    Schedule,
    ScheduleError,
)
from loopweave.driver import front_end  # noqa: E402
from loopweave.frontend.parser import parse  # noqa: E402

rng = np.random.default_rng(7)


def close(got, want, dtype=np.float64) -> None:
    tol = 1e-4 if np.dtype(dtype) == np.float32 else 1e-10
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


DSL_DOC = Path(__file__).resolve().parent.parent / "docs" / "dsl.md"


def test_every_example_in_the_dsl_guide_checks():
    blocks = re.findall(r"```lw\n(.*?)```", DSL_DOC.read_text(), re.S)
    names = [k.name for block in blocks for k in parse(block)]
    assert {"normalize", "backsub"} <= set(names)
    for block in blocks:
        for k in parse(block):
            front_end(block, k.name)


# -- `-=` ------------------------------------------------------------------------------------------

MATMUL_MINUS = """
kernel k(A: f32[M, K], B: f32[K, N]) -> C: f32[M, N] {
    C[i, j] -= A[i, k] * B[k, j]
}
"""


def test_minus_assign_is_plus_assign_of_the_negation():
    # Desugared in the checker: nothing downstream sees "-=".
    ir = front_end(MATMUL_MINUS)
    update = ir.statements[-1]
    assert update.op == "+=" and update.rhs.op == "neg"
    assert all(s.op != "-=" for s in ir.statements)


@pytest.mark.parametrize("schedule", [None, Schedule().tile("C", i=4, j=4).parallel("C", "i_o")],
                         ids=["default", "tiled"])
def test_minus_assign_into_a_fresh_output_is_minus_the_sum(schedule):
    a = rng.standard_normal((7, 5)).astype(np.float32)
    b = rng.standard_normal((5, 9)).astype(np.float32)
    close(loopweave.compile(MATMUL_MINUS, schedule=schedule)(a, b), -(a @ b), np.float32)


def test_minus_assign_on_inout_with_where():
    # syrk-like: only the lower triangle of C loses alpha * A A^T.
    src = """
    kernel k(alpha: f64, C: inout f64[N, N], A: f64[N, M]) {
        C[i, j] -= alpha * A[i, k] * A[j, k]     where j in 0:i+1
    }"""
    a, c = rng.standard_normal((7, 3)), rng.standard_normal((7, 7))
    want = c - np.tril(0.5 * a @ a.T)
    loopweave.compile(src)(0.5, c, a)
    close(c, want)


@pytest.mark.parametrize("dtype", ["i32", "u8"])
def test_minus_assign_wraps_integers_like_numpy(dtype):
    src = f"kernel k(C: inout {dtype}[N], A: {dtype}[N, M]) {{\n    C[i] -= A[i, j]\n}}\n"
    npt = {"i32": np.int32, "u8": np.uint8}[dtype]
    info = np.iinfo(npt)
    a = rng.integers(info.min, info.max, size=(5, 3), dtype=npt, endpoint=True)
    a[0, 0] = info.min  # -INT_MIN wraps to itself
    c = rng.integers(info.min, info.max, size=5, dtype=npt, endpoint=True)
    want = c.copy()
    for j in range(3):
        want -= a[:, j]  # numpy wraps
    loopweave.compile(src)(c, a)
    np.testing.assert_array_equal(c, want)


def test_minus_assign_in_a_for_loop_accumulates_after_a_first_write():
    src = """
    kernel k(A: f64[T, N]) -> y: f64[N] {
        y[i] = 1.0                      where i in 0:N
        for t in 0:T {
            y[i] -= A[t, i] * A[t, i]
        }
    }"""
    a = rng.standard_normal((4, 7))
    close(loopweave.compile(src)(a), 1.0 - (a * a).sum(0))


@pytest.mark.parametrize("body, cls, words", [
    ("B[i] -= A[i + 1]", BoundsError, ["A[i + 1]", "out of bounds"]),
    ("B[i] -= f64(A[i])", DSLTypeError, ["f64", "assigned to 'B'"]),
    ("B[i] -= A[i] > 0.0", DSLTypeError, ["condition"]),
])
def test_minus_assign_errors_quote_the_users_line(body, cls, words):
    with pytest.raises(cls) as info:
        front_end(f"kernel k(A: f32[N]) -> B: f32[N] {{\n    {body}\n}}\n")
    e = info.value
    assert e.line == 2 and all(w in e.message for w in words)
    assert body in str(e)  # the source line, with its `-=`, under the message


# -- scalar (0-d) temporaries and outputs ----------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scalar_temporary_norm(dtype):
    t = "f32" if dtype == np.float32 else "f64"
    src = f"""
    kernel k(X: {t}[N]) -> Y: {t}[N] {{
        s += X[i] * X[i]
        Y[i] = X[i] / sqrt(s)
    }}"""
    x = rng.standard_normal(11).astype(dtype)
    ir = front_end(src)
    assert [(t.name, t.shape) for t in ir.temporaries] == [("s", ())]
    close(loopweave.compile(src)(x), x / np.sqrt((x * x).sum()), dtype)


def test_several_scalar_temporaries_standardize():
    src = """
    kernel k(X: f64[N], eps: f64) -> Y: f64[N] {
        total += X[i]
        mean = total / N
        var += (X[i] - mean) * (X[i] - mean)
        Y[i] = (X[i] - mean) / sqrt(var / N + eps)
    }"""
    x = rng.standard_normal(9)
    close(loopweave.compile(src)(x, 1e-3), (x - x.mean()) / np.sqrt(x.var() + 1e-3))


def test_scalar_temporary_restarts_in_each_iteration_of_a_for_loop():
    src = """
    kernel normalize(X: f64[M, N]) -> Y: f64[M, N] {
        for r in 0:M {
            s += X[r, j] * X[r, j]
            Y[r, j] = X[r, j] / sqrt(s)
        }
    }"""
    x = rng.standard_normal((5, 3))
    close(loopweave.compile(src)(x), x / np.linalg.norm(x, axis=1, keepdims=True))


def test_zero_d_output_and_inout():
    src = """
    kernel k(X: f64[N], acc: inout f64[]) -> (total: f64[], count: i32[]) {
        total -= X[i]
        count += select(X[i] > 0.0, 1, 0)
        acc = acc * 2.0 + total
    }"""
    x = rng.standard_normal(13)
    acc = np.array(1.5)
    total, count = loopweave.compile(src)(x, acc)
    assert total.shape == () and count.shape == () and count.dtype == np.int32
    close(total, -x.sum())
    assert int(count) == int((x > 0).sum())
    close(acc, 3.0 - x.sum())


@pytest.mark.parametrize("body, signature, line, column, words", [
    pytest.param("alpha = 1.0\nB[i] = A[i]", "alpha: f32, A: f32[N]", 2, 5,
                 ["cannot assign to 'alpha'", "scalar parameter", "read-only"], id="scalar-param"),
    pytest.param("N = 3\nB[i] = A[i]", "A: f32[N]", 2, 5,
                 ["cannot assign to 'N'", "size"], id="size"),
    pytest.param("for t in 0:N {\n    t = 1.0\n}\nB[i] = A[i]", "A: f32[N]", 3, 9,
                 ["cannot assign to 't'", "`for` loop"], id="loop-variable"),
    pytest.param("s = s + 1.0\nB[i] = A[i] * s", "A: f32[N]", 2, 9,
                 ["'s' is read before it is first written"], id="read-before-write"),
    pytest.param("B = 1.0", "A: f32[N]", 2, 5,
                 ["'B' has rank 1", "no indices"], id="ranked-tensor-bare"),
    pytest.param("s = 1.0\nB[s] = A[0]", "A: f32[N]", 3, 7,
                 ["'s' cannot appear in an index", "a tensor"], id="scalar-as-index"),
    pytest.param("B[i] = A", "A: f32[N]", 2, 12,
                 ["tensor 'A' is used without indices"], id="ranked-tensor-read-bare"),
])
def test_scalar_misuse(body, signature, line, column, words):
    lines = "\n".join(f"    {x}" for x in body.splitlines())
    with pytest.raises(DSLTypeError) as info:
        front_end(f"kernel k({signature}) -> B: f32[N] {{\n{lines}\n}}\n")
    e = info.value
    assert (e.line, e.column) == (line, column), e
    assert all(w in e.message for w in words), e.message


def test_output_without_shape_suggests_a_zero_d_one():
    with pytest.raises(DSLTypeError, match=r"s: f32\[\] for a single value"):
        front_end("kernel k(A: f32[N]) -> s: f32 {\n    s += A[i]\n}\n")


# -- for ... in reversed(lo:hi) --------------------------------------------------------------------

BACKSUB = """
kernel backsub(U: f64[N, N], b: f64[N]) -> x: f64[N] {
    for i in reversed(0:N) {
        x[i] = b[i]
        x[i] -= U[i, j] * x[j]      where j in i+1:N
        x[i] = x[i] / U[i, i]
    }
}
"""


@pytest.mark.parametrize("n", [1, 7])
def test_back_substitution_runs_downwards(n):
    u = np.triu(rng.standard_normal((n, n))) + 3 * np.eye(n)
    b = rng.standard_normal(n)
    close(loopweave.compile(BACKSUB)(u, b), np.linalg.solve(u, b))


SUFFIX = """
kernel k(a: f64[N]) -> s: f64[N] {{
    assume N >= 1
    s[N - 1] = a[N - 1]
    for i in {order} {{
        s[i] = s[i + 1] + a[i]
    }}
}}
"""


def test_the_direction_decides_the_result():
    a = rng.standard_normal(9)
    down = loopweave.compile(SUFFIX.format(order="reversed(0:N-1)"))(a)
    close(down, np.cumsum(a[::-1])[::-1])  # suffix sums
    up = loopweave.compile(SUFFIX.format(order="0:N-1"))(a)  # reads s[i + 1] before it is set
    assert not np.allclose(up[:-2], down[:-2])


def test_nested_reversed_loops_visit_in_the_source_order():
    # A running hash of the visited (i, j): any other order gives another number.
    src = """
    kernel k(X: i64[N]) -> h: i64[] {
        h = 0
        for i in reversed(1:N) {
            for j in reversed(i:N+1) {
                h = (h * 7 + i * 3 + j + X[i]) % 1000003
            }
        }
    }"""
    x = rng.integers(0, 50, size=6)
    want = 0
    for i in range(5, 0, -1):
        for j in range(6, i - 1, -1):
            want = (want * 7 + i * 3 + j + int(x[i])) % 1000003
    assert int(loopweave.compile(src)(x)) == want


def test_reversed_loop_dependences_are_respected_by_scheduling():
    with pytest.raises(ScheduleError):
        loopweave.compile(SUFFIX.format(order="reversed(0:N-1)"),
                          schedule=Schedule().parallel("s", "i"))
    # A legal schedule (the inner loop of back substitution tiled) keeps the answer.
    u = np.triu(rng.standard_normal((9, 9))) + 3 * np.eye(9)
    b = rng.standard_normal(9)
    tiled = loopweave.compile(BACKSUB, schedule=Schedule().tile("S1", j=4))
    close(tiled(u, b), np.linalg.solve(u, b))


def test_bounds_error_in_a_reversed_loop_shows_the_source_value():
    src = "kernel k(A: f32[N]) -> B: f32[N] {\n    for i in reversed(0:N) {\n" \
          "        B[i] = A[i + 1]\n    }\n}\n"
    with pytest.raises(BoundsError) as info:
        front_end(src)
    e = info.value
    assert e.line == 3 and "reads A[" in e.message
    sizes = dict(re.findall(r"(\w+)=(-?\d+)", e.message.split("iteration")[0]))
    i = int(re.search(r"iteration \(i=(-?\d+)\)", e.message).group(1))
    element = int(re.search(r"reads A\[(-?\d+)\]", e.message).group(1))
    assert element == i + 1 and i == int(sizes["N"]) - 1  # the last i is N-1, as written


def test_unknown_loop_order_is_a_syntax_error():
    with pytest.raises(DSLSyntaxError) as info:
        front_end("kernel k(A: f32[N]) -> B: f32[N] {\n    for i in backwards(0:N) {\n"
                  "        B[i] = A[i]\n    }\n}\n")
    assert (info.value.line, info.value.column) == (2, 14)
    assert "reversed(lo:hi)" in info.value.message


# -- a temporary's shape: the bounding box of all its writes ---------------------------------------

def test_shape_covers_every_write():
    src = """
    kernel concat(X: f32[N], Z: f32[M]) -> y: f32[N + M] {
        t[i] = X[i]
        t[N + j] = Z[j]
        y[i] = t[i]             where i in 0:N+M
    }"""
    ir = front_end(src)
    assert [loopweave.ir.expr.to_str(d) for d in ir.temporaries[0].shape] == ["N + M"]
    x, z = rng.standard_normal(5).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    close(loopweave.compile(src)(x, z), np.concatenate([x, z]), np.float32)


def test_a_later_write_over_a_longer_range_grows_the_temporary():
    # j ranges over Z's extent M in the second write (not over t's extent N so far).
    src = """
    kernel k(X: f64[N, N], Z: f64[N, M]) -> y: f64[N] {
        t[i, j] = X[i, j]
        t[i, j] = Z[i, j]
        y[i] += t[i, j]         where j in 0:M
    }"""
    x, z = rng.standard_normal((3, 3)), rng.standard_normal((3, 5))
    close(loopweave.compile(src)(x, z), z.sum(1))
    x, z = rng.standard_normal((4, 4)), rng.standard_normal((4, 2))
    close(loopweave.compile(src)(x, z), z.sum(1))


def test_shape_grows_with_writes_inside_a_loop():
    src = """
    kernel prefix(X: f64[N]) -> y: f64[N] {
        assume N >= 1
        t[0] = X[0]
        for k in 1:N {
            t[k] = t[k - 1] + X[k]
        }
        y[i] = t[i]
    }"""
    ir = front_end(src)
    assert [loopweave.ir.expr.to_str(d) for d in ir.temporaries[0].shape] == ["N"]
    x = rng.standard_normal(8)
    close(loopweave.compile(src)(x), np.cumsum(x))


# -- a temporary's type when its first write has none ----------------------------------------------

def test_untyped_first_write_takes_the_type_of_a_later_write():
    src = """
    kernel k(A: f64[N, M]) -> y: f64[N] {
        t[i] = 0                where i in 0:N
        t[i] += A[i, j]
        y[i] = 0.5 * t[i]
    }"""
    assert front_end(src).temporaries[0].dtype.name == "f64"
    a = rng.standard_normal((5, 3)) * 1e-9 + 1.0  # f32 would round the sum
    close(loopweave.compile(src)(a), 0.5 * a.sum(1))


def test_untyped_float_literal_takes_the_kernels_float_type():
    src = """
    kernel k(X: f64[N]) -> y: f64[N] {
        c = 0.1
        y[i] = X[i] * c
    }"""
    assert front_end(src).temporaries[0].dtype.name == "f64"
    x = rng.standard_normal(5)
    close(loopweave.compile(src)(x), x * 0.1)  # 0.1 not rounded to f32


@pytest.mark.parametrize("first, words", [
    ("c = 0.5", ["'c' is f32", "line 2", "f64(0)"]),  # two float types: f32
    ("c = 2", ["'c' is i64", "line 2"]),
])
def test_a_default_type_is_explained_in_the_type_error(first, words):
    src = f"kernel k(X: f64[N], Z: f32[N]) -> y: f64[N] {{\n    {first}\n    y[i] = X[i] * c\n}}\n"
    with pytest.raises(DSLTypeError) as info:
        front_end(src)
    assert info.value.line == 3 and all(w in info.value.message for w in words), info.value


# -- the other backends see the same desugared IR ------------------------------------------------

NORM = """
kernel k(X: f32[N]) -> Y: f32[N] {
    s += X[i] * X[i]
    Y[i] = X[i] / sqrt(s)
}
"""


def _available(target: str) -> None:
    if target == "triton":
        pytest.importorskip("triton", reason="triton not installed")
        if os.environ.get("TRITON_INTERPRET") != "1":
            pytest.skip("TRITON_INTERPRET was set to something else before the tests")
    elif shutil.which("g++") is None:
        pytest.skip("g++ not installed (CUDA emulation)")


@pytest.mark.parametrize("target, options", [("triton", {}), ("cuda", {"emulate": True})],
                         ids=["triton", "cuda-emulated"])
def test_features_on_the_gpu_backends(target, options):
    _available(target)
    a = rng.standard_normal((7, 5)).astype(np.float32)
    b = rng.standard_normal((5, 9)).astype(np.float32)
    u = np.triu(rng.standard_normal((7, 7))) + 3 * np.eye(7)
    rhs = rng.standard_normal(7)
    x = rng.standard_normal(11).astype(np.float32)
    cases = [(MATMUL_MINUS, (a, b), -(a @ b), np.float32),
             (BACKSUB, (u, rhs), np.linalg.solve(u, rhs), np.float64),
             (NORM, (x,), x / np.sqrt((x * x).sum()), np.float32)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CUDA: "runs in a single thread" for sequential parts
        for src, args, want, dtype in cases:
            close(loopweave.compile(src, target=target, **options)(*args), want, dtype)
