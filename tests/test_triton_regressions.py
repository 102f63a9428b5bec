"""Regressions of the Triton planner (issue [backend-fuzz]), each checked against numpy.

Every kernel here once failed on target "triton" without a bound loop (the planner path:
backends/triton_plan.py and friends) with a raw exception from the generated code or from
Triton's interpreter, or gave a wrong result. Sizes are small and odd so that masks and
edge tiles matter; the kernels run in Triton's interpreter (TRITON_INTERPRET=1).
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported: no GPU here

import ast  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import loopweave  # noqa: E402

pytest.importorskip("triton", reason="triton not installed")
pytest.importorskip("torch", reason="torch not installed")

from loopweave.backends.triton_expr import python_expr  # noqa: E402
from loopweave.examples import load_polybench_references  # noqa: E402
from loopweave.ir import expr as ir  # noqa: E402
from loopweave.ir.types import INDEX  # noqa: E402

if os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("TRITON_INTERPRET was set to something else before the tests",
                allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
TRITON_MAX_NUMEL = 1 << 20  # Triton's limit on the elements of one tensor


def compile_triton(source: str, **options):
    """The kernel of `source` for target "triton" through the planner: program order, so no
    schedule binds a loop (a GPU default schedule would take the scheduled path)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # loops that stay sequential are expected here
        return loopweave.compile(source, target="triton", schedule=loopweave.Schedule(),
                                 tuning_db=False, **options)


def rand(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def assert_close(got, want, rtol=1e-4, atol=1e-5):
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


# -- 1. the kernel's docstring ------------------------------------------------------------------

FIVE_STATEMENTS = """
kernel moments(samples: f32[N, D]) -> normalized: f32[N, D] {
    row_mean[i] += samples[i, j] / D
    row_variance[i] += (samples[i, j] - row_mean[i]) * (samples[i, j] - row_mean[i]) / D
    row_skew[i] += (samples[i, j] - row_mean[i]) / sqrt(row_variance[i])
    row_peak[i] max= samples[i, j] - row_mean[i] + row_skew[i]
    normalized[i, j] = (samples[i, j] - row_mean[i]) / row_peak[i]
}"""


def test_long_docstring_of_a_fused_kernel_is_valid_python():
    kernel = compile_triton(FIVE_STATEMENTS)
    ast.parse(kernel.source)  # was: the docstring cut inside its closing quotes
    assert kernel.source.count("@triton.jit") == 1  # five statements, one fused kernel
    x = rand(np.random.default_rng(1), (5, 7))
    mean = (x / np.float32(7)).sum(1, keepdims=True)
    variance = ((x - mean) * (x - mean) / np.float32(7)).sum(1, keepdims=True)
    skew = ((x - mean) / np.sqrt(variance)).sum(1, keepdims=True)
    peak = (x - mean + skew).max(1, keepdims=True)
    assert_close(kernel(x), (x - mean) / peak, rtol=1e-3, atol=1e-4)


# -- 2. f16 operands of tl.dot ------------------------------------------------------------------

@pytest.mark.parametrize("types", [("f16", "f32"), ("f32", "f16"), ("f16", "bf16")])
def test_dot_of_mixed_storage_types_under_f32_casts(types):
    a_type, b_type = types
    source = f"""
kernel mixed(A: {a_type}[M, K], B: {b_type}[K, N]) -> C: f32[M, N] {{
    C[i, j] += {'f32(A[i, k])' if a_type != 'f32' else 'A[i, k]'} *
               {'f32(B[k, j])' if b_type != 'f32' else 'B[k, j]'}
}}"""
    kernel = compile_triton(source)
    rng = np.random.default_rng(2)
    a = rand(rng, (17, 19), np.float16 if a_type == "f16" else np.float32)
    b = rand(rng, (19, 5), np.float16 if b_type == "f16" else np.float32)
    if b_type == "bf16":
        from loopweave.ir.types import BF16  # the runtime's bf16 numpy type

        b = b.astype(BF16.numpy)
    want = a.astype(np.float32) @ b.astype(np.float32)
    assert_close(kernel(a, b), want, rtol=2e-3, atol=2e-3)


def test_dot_of_two_f16_loads_stays_f16():
    kernel = compile_triton("""
kernel half(A: f16[M, K], B: f16[K, N]) -> C: f32[M, N] {
    C[i, j] += f32(A[i, k]) * f32(B[k, j])
}""")
    assert "tl.dot(" in kernel.source
    rng = np.random.default_rng(3)
    a, b = rand(rng, (9, 21), np.float16), rand(rng, (21, 7), np.float16)
    assert_close(kernel(a, b), a.astype(np.float32) @ b.astype(np.float32), 2e-3, 2e-3)


# -- 3. block sizes within Triton's tensor limit ------------------------------------------------

def launched_blocks(source: str) -> list[dict[str, int]]:
    """The constant BLOCK_... values of each launch in a generated module."""
    return [{name: int(value) for name, value in re.findall(r"(BLOCK_\w+)=(\d+)", line)}
            for line in source.splitlines() if "[grid](" in line]


def test_rank_four_rows_fit_triton_tensor_limit():
    kernel = compile_triton("""
kernel scale_rows(X: f32[A, B, C, D]) -> Y: f32[A, B, C, D] {
    s[a] += X[a, b, c, d]
    Y[a, b, c, d] = X[a, b, c, d] / s[a]
}""")
    (blocks,) = launched_blocks(kernel.source)  # Y's tile: a x b x c x d
    tile = [blocks[f"BLOCK_{axis}"] for axis in "ABCD"]
    assert np.prod(tile) <= TRITON_MAX_NUMEL, blocks
    x = np.random.default_rng(4).random((3, 4, 16, 5)).astype(np.float32)
    assert_close(kernel(x), x / x.sum((1, 2, 3))[:, None, None, None])


def test_explicit_blocks_over_triton_tensor_limit_are_refused():
    source = """
kernel plus(X: f32[A, B, C]) -> Y: f32[A, B, C] {
    s[a] += X[a, b, c]
    Y[a, b, c] = X[a, b, c] + s[a]
}"""
    with pytest.raises(loopweave.TargetError, match="1048576"):
        compile_triton(source, block={"a": 64, "b": 4096, "c": 4096})


# -- 4. integer casts of literals ---------------------------------------------------------------

def test_integer_literal_casts():
    kernel = compile_triton("""
kernel ints(X: i32[N]) -> (Z: i32[N], Y: i32[N], W: i16[N]) {
    Z[i] = i32(0)
    Y[i] = max(X[i], i32(0)) + i32(3)
    W[i] = i16(7)
}""")
    x = np.random.default_rng(5).integers(-9, 9, 11).astype(np.int32)
    z, y, w = kernel(x)
    assert_close(z, np.zeros(11, np.int32))
    assert_close(y, np.maximum(x, 0) + 3)
    assert_close(w, np.full(11, 7, np.int16))


# -- 5. element-wise updates of inout tensors ---------------------------------------------------

def test_elementwise_accumulation_into_inout():
    kernel = compile_triton("""
kernel axpy(x: f32[N], y: inout f32[N]) {
    y[i] += x[i]
}""")
    rng = np.random.default_rng(6)
    x, y = rand(rng, 13), rand(rng, 13)
    want = y + x
    kernel(x, y)
    assert_close(y, want)


def test_elementwise_max_update_into_inout_matrix():
    kernel = compile_triton("""
kernel clamp(x: f32[M, N], y: inout f32[M, N]) {
    y[i, j] max= x[i, j] * 2.0
}""")
    rng = np.random.default_rng(7)
    x, y = rand(rng, (5, 9)), rand(rng, (5, 9))
    want = np.maximum(y, 2 * x)
    kernel(x, y)
    assert_close(y, want)


@pytest.mark.parametrize("op, combine", [("max=", np.max), ("+=", np.sum)])
def test_reduction_into_a_divided_index_combines_every_term(op, combine):
    """`m[g / 16] max= a[g]`: sixteen g update each element, with no reduction variable of
    their own; the identity initialisation was folded into the update, so each stored over
    the last (found by the LUT GEMM helper)."""
    kernel = compile_triton(f"kernel m(a: f32[G]) -> m: f32[(G + 15) / 16] {{\n"
                            f"    m[g / 16] {op} a[g]\n}}")
    rng = np.random.default_rng(8)
    for n in (1, 16, 17, 70):
        a = rand(rng, n)
        want = np.array([combine(a[i:i + 16]) for i in range(0, n, 16)], np.float32)
        assert_close(kernel(a), want)


# -- 6. batched softmax and attention over 3-D tensors ------------------------------------------

def test_batched_softmax():
    kernel = compile_triton("""
kernel batched_softmax(X: f32[H, N, D]) -> Y: f32[H, N, D] {
    m[h, i] max= X[h, i, j]
    e[h, i, j] = exp(X[h, i, j] - m[h, i])
    s[h, i] += e[h, i, j]
    Y[h, i, j] = e[h, i, j] / s[h, i]
}""")
    x = rand(np.random.default_rng(8), (3, 5, 37))
    e = np.exp(x - x.max(2, keepdims=True))
    assert_close(kernel(x), e / e.sum(2, keepdims=True))


BATCHED_ATTENTION = """
kernel batched_attention(Q: f32[H, L, D], K: f32[H, S, D], V: f32[H, S, E], scale: f32)
        -> O: f32[H, L, E] {
    P[h, l, s] += Q[h, l, d] * K[h, s, d] * scale
    m[h, l] max= P[h, l, s]
    W[h, l, s] = exp(P[h, l, s] - m[h, l])
    z[h, l] += W[h, l, s]
    O[h, l, e] += W[h, l, s] * V[h, s, e] / z[h, l]
}"""


def test_batched_attention():
    kernel = compile_triton(BATCHED_ATTENTION)
    rng = np.random.default_rng(9)
    q, k, v = rand(rng, (2, 5, 3)), rand(rng, (2, 7, 3)), rand(rng, (2, 7, 5))
    assert_close(kernel(q, k, v, 0.5), attention_reference(q, k, v, 0.5))


def attention_reference(q, k, v, scale):
    p = np.einsum("hld,hsd->hls", q, k) * np.float32(scale)
    w = np.exp(p - p.max(2, keepdims=True))
    return np.einsum("hls,hse->hle", w / w.sum(2, keepdims=True), v)


def test_batched_attention_with_wide_heads_fits_its_blocks_when_launched():
    # whole-loop blocks of e and d (64 each) beside the h, l, s, d tile: the launcher
    # halves the other blocks until the 5-axis tensor fits
    kernel = compile_triton(BATCHED_ATTENTION)
    assert "_lw_fit_blocks(" in kernel.source
    rng = np.random.default_rng(10)
    q, k, v = rand(rng, (1, 3, 40)), rand(rng, (1, 5, 40)), rand(rng, (1, 5, 33))
    assert_close(kernel(q, k, v, 0.25), attention_reference(q, k, v, 0.25))


def test_whole_loop_blocks_over_triton_tensor_limit_are_refused_when_launched():
    kernel = compile_triton(BATCHED_ATTENTION)
    rng = np.random.default_rng(11)
    q, k, v = rand(rng, (1, 1, 1025)), rand(rng, (1, 1, 1025)), rand(rng, (1, 1, 1025))
    with pytest.raises(loopweave.TargetError, match="BLOCK_D_P=2048, BLOCK_E=2048"):
        kernel(q, k, v, 1.0)


def test_locals_of_a_schedule_get_memory_from_the_launcher():
    # under a schedule, storage reduction makes s[r] a 0-d local the runtime does not allocate
    kernel = compile_triton("""
kernel row_share(X: f32[M, N]) -> Y: f32[M, N] {
    for r in 0:M {
        s[r] += X[r, j]
        Y[r, j] = X[r, j] / s[r]
    }
}""")
    assert "torch.empty(" in kernel.source
    x = np.random.default_rng(12).random((5, 9)).astype(np.float32)
    assert_close(kernel(x), x / x.sum(1, keepdims=True))


# -- 7. PolyBench on the planner ----------------------------------------------------------------

poly = load_polybench_references()


#: Smaller than MINI, odd: the interpreter runs every launch of a host loop one by one.
POLYBENCH_SIZES = {"atax": {"M": 7, "N": 9}, "bicg": {"M": 7, "N": 9}, "cholesky": {"N": 9},
                   "correlation": {"M": 5, "N": 7}, "nussinov": {"N": 7},
                   "symm": {"M": 5, "N": 7}}


@pytest.mark.parametrize("name", sorted(POLYBENCH_SIZES))
def test_polybench_on_the_triton_planner(name):
    case = poly.POLYBENCH[name]
    kernel = compile_triton(case.source())
    args = case.make_inputs(POLYBENCH_SIZES[name], 100)
    expected = case.expected(args)  # before the call: it updates inout arrays in place
    got = poly.results_of(case, args, kernel(*args.values()))
    for out, want in expected.items():
        err, ok = poly.compare(got[out], want, case.tol_scale)
        assert ok, f"{name}: {out} differs from numpy by {err:g}"


# -- 8. found by the backend fuzzer ---------------------------------------------------------------

POW = """
kernel powers(A: f64[N], B: f64[N], F: f32[N], s: f64) -> (O: f64[N], P: f64[N], Q: f32[N]) {
    O[i] = pow(A[i], B[i])
    P[i] = pow(A[i], 3.0) + pow(s, 0.5) + pow(-2.0, 2.0)
    Q[i] = pow(F[i], f32(B[i]))
}"""


def pow_inputs():
    """Negative bases with whole (odd and even) exponents, fractional ones (nan), x ** 0,
    0 ** positive, negative exponents; 9 elements."""
    a = np.array([2.0, -2.0, -2.0, 0.0, 0.0, -0.5, 3.0, -1.5, 0.7])
    b = np.array([1.5, 3.0, 2.0, 0.0, 2.0, 0.5, -1.0, -3.0, 2.5])
    return a, b, (a * 1.25).astype(np.float32)


@pytest.mark.parametrize("path", ["planner", "default schedule"])
def test_pow_of_f64_and_f32_matches_numpy(path):
    """pow is exp2(b * log2|a|) with the sign of a negative base for an odd whole b and nan
    for a fractional one (libdevice.pow returns None in the interpreter); on f64 the helper
    once failed in the interpreter (`bitwise_and` on f64 after a 0-d comparison)."""
    kernel = compile_triton(POW) if path == "planner" else \
        loopweave.compile(POW, target="triton", tuning_db=False)
    a, b, f = pow_inputs()
    o, p, q = kernel(a, b, f, 0.7)
    with np.errstate(invalid="ignore", divide="ignore"):
        np.testing.assert_allclose(o, np.power(a, b), rtol=1e-12, atol=0, equal_nan=True)
        np.testing.assert_allclose(p, a ** 3 + 0.7 ** 0.5 + 4.0, rtol=1e-12, atol=0)
        np.testing.assert_allclose(q, np.power(f, b.astype(np.float32)), rtol=2e-6,
                                   equal_nan=True)
    assert np.isnan(o[5]) and o[1] == -8.0 and o[2] == 4.0 and o[3] == 1.0


AOT_POW = """
import sys
from loopweave.backends.triton import aot_compile
from loopweave.driver import stages
st = stages(sys.stdin.read(), target="triton")
for fn, ptx in aot_compile(st.ir, st.source, arch=90).items():
    assert ".target sm_90" in ptx, fn
    print(fn, "ex2" in ptx or "__nv_exp2" in ptx)
"""


def test_pow_helper_compiles_for_a_real_gpu_ahead_of_time():
    """Triton's own compiler (no GPU needed) accepts the pow helper on f64 and f32."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, "-c", AOT_POW], input=POW, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "powers" in done.stdout


def test_sigmoid_of_a_sum_negates_the_whole_sum():
    """sigmoid(a + b) was written 1 / (1 + exp(-a + b)); found with `j` as a value."""
    kernel = compile_triton("kernel k(C: f32[M, N]) -> O: f32[M] {\n"
                            "    O[i] += sigmoid(C[M - 1 - i, j] + j)\n}")
    c = rand(np.random.default_rng(8), (3, 5))
    want = (1 / (1 + np.exp(-(c[::-1] + np.arange(5, dtype=np.float32))))).sum(1)
    assert_close(kernel(c), want.astype(np.float32))


def test_negated_launcher_expressions_keep_their_parentheses():
    """The launcher's Python for -(N - 1) was `(-N - 1)`."""
    e = ir.Unary("neg", ir.Binary("-", ir.Var("N"), ir.Const(1), INDEX), INDEX)
    assert eval(python_expr(e), {"N": 7}) == -6  # noqa: S307 - our own generated text


def test_bf16_stores_round_to_nearest_even():
    """f32 values stored into bf16 round to nearest, ties to even, as ml_dtypes and the C
    targets do (Triton 3.9's interpreter truncates in its own cast: fuzz seed 19738 drifted
    to 1.5x the reference over seven in-place updates). Bit for bit, NaN and infinities
    included; and the bits read back by `bitcast`."""
    kernel = loopweave.compile("""kernel k(X: f32[N]) -> (Y: bf16[N], B: i16[N]) {
        Y[i] = X[i] * 1.0
        B[i] = bitcast(bf16(X[i]), i16)
    }""", target="triton", tuning_db=False)
    rng = np.random.default_rng(19738)
    ties = np.array([1975.0, 1977.0, 1979.0, 1980.0, 2001.0, 2003.0, 2005.0, -2003.0, 1e-40,
                     -0.0, np.inf, -np.inf, np.nan, 3.4e38], np.float32)
    x = np.concatenate([ties, (rng.standard_normal(1001) * 1000).astype(np.float32)])
    y, bits = kernel(x)
    want = x.astype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(np.asarray(y).view(np.uint16), want.view(np.uint16))
    np.testing.assert_array_equal(bits.view(np.uint16), want.view(np.uint16))


def test_narrow_casts_inside_expressions_round_as_on_the_c_targets():
    """`f32(bf16(x))` and `f16(x)` inside an expression round to the narrow type (they were
    no-ops on Triton); a reduction into a narrow type combines in f32 and rounds when stored
    (its value's implicit cast is not a second rounding, as in C's `c_family.store`); bf16
    loads of subnormal values are exact (the interpreter's own widening flushed them). The same
    bits as program order on the C target."""
    source = """kernel k(X: f32[N], H: f16[N], L: bf16[N]) -> (Y: f32[N], Z: f32[N], U: f16[N],
                                                             W: f32[N]) {
        Y[i] = f32(bf16(X[i] * 3.0))
        Z[i] = f32(f16(X[i])) + f32(H[i])
        U[i] max= f16(X[i] * 2.0) + X[j]
        W[i] = f32(L[i]) * 1.0
    }"""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(37) * 100).astype(np.float32)
    h = rng.standard_normal(37).astype(np.float16)
    low = np.concatenate([np.array([1e-40, 3e-39, -2e-39], np.float32),
                          rng.standard_normal(34).astype(np.float32)]).astype(ml_dtypes.bfloat16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", loopweave.SequentialLoopWarning)
        triton = loopweave.compile(source, target="triton", tuning_db=False)(x, h, low)
    program_order = loopweave.compile(source, schedule=loopweave.Schedule(), tuning_db=False)
    for got, want in zip(triton, program_order(x, h, low), strict=True):
        np.testing.assert_array_equal(np.asarray(got).view(np.uint8),
                                      np.asarray(want).view(np.uint8))
