"""Explicit SIMD (backends/simd.py): vector loops lowered to AVX2 / AVX-512 / NEON / MVE
intrinsics compute what numpy computes, at odd sizes (remainders), with horizontal
reductions, NaN-propagating min/max, and a fallback to the pragma where the lowering cannot.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_emit import refs

import loopweave
from loopweave.backends import c as c_backend
from loopweave.backends import simd
from loopweave.driver import stages
from loopweave.ir.loops import Block, For, If, Scope, Store
from loopweave.pipeline import get_target
from loopweave.runtime import Kernel

S = loopweave.Schedule
GOLDEN = Path(__file__).resolve().parent / "golden"


def _host_has(flag: str) -> bool:
    try:
        return flag in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False


# (kernel, schedule, how many of its vector loops become intrinsics on x86)
CASES = [
    ("matmul", S().vectorize("C", "j"), 2),  # k inner: C kept in a register across k
    ("matmul", S().tile("C", j=16).reorder("C", "j_o", "k", "j").vectorize("C", "j"), 2),
    ("gemm", S().vectorize("C", "j"), 2),
    ("softmax", S().vectorize("e", "j").vectorize("Y", "j"), 2),  # exp: lw_expf_v16 and kin
    ("layernorm", S().vectorize("xc", "j").vectorize("Y", "j"), 2),
    ("jacobi_2d", S().vectorize("A", "j").vectorize("B", "j"), 2),
    ("covariance", S().vectorize("d", "j").vectorize("cov", "j"), 4),  # f64
    ("conv2d", S().vectorize("Y", "x"), 2),
    ("mvt", S().vectorize("x2", "i"), 1),
    ("bicg", S().vectorize("s", "j"), 2),
    ("two_mm", S().vectorize("D", "l"), 2),
    ("qmm", S().vectorize("C", "j"), 1),  # i8 -> i32 widening: only the zeroing loop
    ("maxpool2d", S().vectorize("O", "x"), 1),  # stride 2: only the -inf initialisation
    ("gelu", S().vectorize("Y", "i"), 0),  # erf of a vector
]
CASE_IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(CASES)]

X86 = {"avx512": ("-O2", "-mavx512f", "-mfma"), "avx2": ("-O2", "-mavx2", "-mfma")}


def lowered_loops(source: str, isa: simd.VectorISA) -> int:
    """How many loops of `source` use `isa` (each is guarded by `#if`, as are the include and
    the vector math helpers)."""
    return (source.count(f"#if {isa.guard}\n") - source.count(isa.include_lines())
            - source.count(f"#if {isa.guard}\nstatic inline"))


def check_case(kernel: loopweave.Kernel, name: str) -> None:
    case = refs.KERNELS[name]
    for i, sizes in enumerate(case.sizes):
        args = case.make_inputs(sizes, 100 + i)
        expected = case.expected(args)
        ret = kernel(*[v.copy() if isinstance(v, np.ndarray) else v for v in args.values()]) \
            if not case.inouts else kernel(*args.values())
        got = refs.results_of(case, args, ret)
        for out, want in expected.items():
            err, ok = refs.compare(got[out], want, tol_scale=case.tol_scale)
            assert ok, f"{name}[{out}] at {sizes}: differs from numpy by {err:g}"


@pytest.mark.parametrize("isa", list(X86))
@pytest.mark.parametrize(("name", "schedule", "lowered"), CASES, ids=CASE_IDS)
def test_x86_intrinsics_match_numpy(name, schedule, lowered, isa):
    if not _host_has("avx512f" if isa == "avx512" else "avx2"):
        pytest.skip(f"this CPU has no {isa}")
    k = loopweave.compile(refs.KERNELS[name].source(), schedule=schedule, cflags=X86[isa])
    assert lowered_loops(k.source, simd.ISAS[isa]) == lowered, k.source
    # Every lowered loop keeps the plain loop in its #else branch.
    assert k.source.count("#pragma omp simd") >= lowered
    check_case(k, name)


def test_pragma_only_when_simd_is_off():
    src = refs.KERNELS["matmul"].source()
    k = loopweave.compile(src, schedule=S().vectorize("C", "j"), simd=False)
    assert "_mm" not in k.source and "#pragma omp simd" in k.source
    check_case(k, "matmul")
    with pytest.raises(loopweave.TargetError, match="simd"):
        loopweave.compile(src, simd="yes")


# -- horizontal reductions: the scheduler does not mark reduction loops vector yet, so these
#    tests mark them in the loop AST -----------------------------------------------------------

def _mentions(e, var: str) -> bool:
    return simd._mentions(e, var)


def mark_reduction_loops(node):
    """Each loop whose body is one reduction into a location the loop does not move, marked
    vector (what a scheduler allowing vector reductions would produce)."""
    match node:
        case For(body=Store(reduce=op, indices=ix)) if op and \
                not any(_mentions(i, node.var) for i in ix):
            return dataclasses.replace(node, kind="vector")
        case Block(body=body):
            return Block(tuple(mark_reduction_loops(b) for b in body))
        case If():
            return dataclasses.replace(node, then=mark_reduction_loops(node.then))
        case For() | Scope():
            return dataclasses.replace(node, body=mark_reduction_loops(node.body))
    return node


def compile_marked(src: str, cflags: tuple[str, ...], isa: simd.VectorISA,
                   schedule=None) -> Kernel:
    st = stages(src, cflags=cflags, schedule=schedule)
    loops = mark_reduction_loops(st.loops)
    source = c_backend.CBackend(st.ir, isa).render(loops)
    return Kernel(st.ir, source, "cpu", c_backend.load(st.ir, source, st.target))


INT_KERNEL = """
kernel rows(X: i32[N, D], F: f32[N, D]) -> (s: i32[N], m: i32[N], fmin: f32[N]) {
    s[i] += X[i, j] * 3 - 1
    m[i] max= X[i, j]
    fmin[i] min= F[i, j]
}
"""


@pytest.mark.parametrize("isa", list(X86))
@pytest.mark.parametrize("name", ["softmax", "atax", "layernorm", "mvt", "bicg", "maxpool2d"])
def test_horizontal_reductions_match_numpy(name, isa):
    if not _host_has("avx512f" if isa == "avx512" else "avx2"):
        pytest.skip(f"this CPU has no {isa}")
    k = compile_marked(refs.KERNELS[name].source(), X86[isa], simd.ISAS[isa])
    if name != "maxpool2d":  # its dx loop has 2 iterations: all remainder, still lowered
        assert _horizontal_folds(k.source) > 0
    check_case(k, name)


def _horizontal_folds(source: str) -> int:
    """Folds of vector accumulators: through a lanes array, or AVX-512's in-register sum."""
    return source.count("lw_lanes") + source.count("_reduce_add_")


@pytest.mark.skipif(not _host_has("avx512f"), reason="this CPU has no avx512f")
def test_the_in_register_sum_folds_in_the_lanes_arrays_order():
    """AVX-512's `reduce_add` sums (f32, f64, i32) give the bits of the lanes array's halving
    loops that they replace: both builds of the same vector loops, at odd row lengths."""
    source = """kernel sums(X: f32[N, D], Y: f64[N, D], Z: i32[N, D]) -> (a: f32[N], b: f64[N],
                                                                      c: i32[N]) {
        a[i] += X[i, j] * 1.5
        b[i] += Y[i, j] - 0.25
        c[i] += Z[i, j] * 3
    }"""
    with_sum = compile_marked(source, X86["avx512"], simd.AVX512)
    types = {n: dataclasses.replace(t, ops={o: f for o, f in t.ops.items() if o != "sum"})
             for n, t in simd.AVX512.types.items()}
    without = compile_marked(source, X86["avx512"], dataclasses.replace(simd.AVX512,
                                                                         types=types))
    assert with_sum.source.count("_reduce_add_") == 3 and "_reduce_add_" not in without.source
    rng = np.random.default_rng(9)
    for d in (16, 67, 131, 1000):
        args = (rng.standard_normal((3, d)).astype(np.float32), rng.standard_normal((3, d)),
                rng.integers(-2**31, 2**31, (3, d), dtype=np.int32))
        for got, want in zip(with_sum(*args), without(*args), strict=True):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("isa", list(X86))
def test_integer_and_min_reductions(isa):
    if not _host_has("avx512f" if isa == "avx512" else "avx2"):
        pytest.skip(f"this CPU has no {isa}")
    k = compile_marked(INT_KERNEL, X86[isa], simd.ISAS[isa])
    assert "_mm" in k.source and _horizontal_folds(k.source) >= 3
    r = np.random.default_rng(0)
    for n, d in [(3, 37), (5, 16), (2, 1), (1, 0)]:
        x = r.integers(-2**31, 2**31, (n, d), dtype=np.int32)
        f = r.uniform(-5, 5, (n, d)).astype(np.float32)
        s, m, fmin = k(x, f)
        with np.errstate(over="ignore"):
            np.testing.assert_array_equal(s, (x * np.int32(3) - np.int32(1)).sum(
                axis=1, dtype=np.int32))
        np.testing.assert_array_equal(m, x.max(axis=1, initial=np.iinfo(np.int32).min))
        np.testing.assert_array_equal(fmin, f.min(axis=1, initial=np.inf))


NAN_KERNEL = """
kernel nanmax(X: f32[N, D], Z: f32[N, D]) -> (Y: f32[N, D], m: f32[N]) {
    Y[i, j] = max(X[i, j], Z[i, j]) + min(Z[i, j], X[i, j])
    m[i] max= X[i, j]
}
"""


@pytest.mark.parametrize("isa", list(X86))
def test_min_max_propagate_nan_like_numpy(isa):
    if not _host_has("avx512f" if isa == "avx512" else "avx2"):
        pytest.skip(f"this CPU has no {isa}")
    k = compile_marked(NAN_KERNEL, X86[isa], simd.ISAS[isa], S().vectorize("Y", "j"))
    assert lowered_loops(k.source, simd.ISAS[isa]) == 2  # Y and the reduction into m
    r = np.random.default_rng(1)
    x = r.uniform(-1, 1, (3, 41)).astype(np.float32)
    z = r.uniform(-1, 1, (3, 41)).astype(np.float32)
    x[0, 5] = np.nan
    z[1, 33] = np.nan
    x[2, 40] = np.nan  # in the scalar remainder
    want_y = np.maximum(x, z) + np.minimum(z, x)
    y, m = k(x, z)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want_y))
    np.testing.assert_allclose(y[~np.isnan(y)], want_y[~np.isnan(want_y)], rtol=1e-6)
    np.testing.assert_array_equal(np.isnan(m), [True, False, True])
    assert m[1] == np.max(x[1])


# -- one loop's intrinsics, as text ---------------------------------------------------------------

AXPY = """
kernel axpy(a: f32, X: f32[N], Y: inout f32[N]) {
    Y[i] += a * X[i]
}
"""


def test_axpy_intrinsics_golden(update_golden):
    st = stages(AXPY, schedule=S().vectorize("Y", "i"))
    body = c_backend.CBackend(st.ir, simd.AVX2).render_body(st.loops)
    golden = GOLDEN / "simd_axpy_avx2.c"
    if update_golden or not golden.exists():
        golden.write_text(body)
        if not update_golden:
            pytest.fail(f"created {golden}; review it and rerun")
    assert body == golden.read_text()
    assert "_mm256_fmadd_ps" in body and "_mm256_set1_ps(a)" in body


@pytest.mark.parametrize("n", [3, 31, 32, 37, 71])
def test_short_vector_loops_run_four_vectors_a_trip(n):
    """axpy's body (3 lines) is unrolled on x86: 4 vectors a trip, then one at a time, then
    scalars (an update in place: no masked tail, tests/test_simd_tail.py); any length gives
    numpy's result. MVE keeps one vector a trip (code size)."""
    st = stages(AXPY, schedule=S().vectorize("Y", "i"))
    body = c_backend.CBackend(st.ir, simd.AVX512).render_body(st.loops)
    assert ">= 64; )" in body and ">= 16; c0 += 16)" in body  # 4 x 16 f32 lanes
    assert body.count("_mm512_fmadd_ps") == simd.AVX512.unroll + 1
    assert simd.MVE.unroll == 1
    k = loopweave.compile(AXPY, schedule=S().vectorize("Y", "i"), tuning_db=False)
    rng = np.random.default_rng(n)
    x, y = rng.random(n, dtype=np.float32), rng.random(n, dtype=np.float32)
    want = y + np.float32(1.5) * x
    k(np.float32(1.5), x, y)
    np.testing.assert_allclose(y, want, rtol=1e-6)


def test_long_vector_bodies_are_not_unrolled():
    """A body of more than UNROLL_MAX_LINES lines runs one vector a trip."""
    terms = " + ".join(f"X[i] * {k}.0" for k in range(1, 12))
    source = f"kernel long(X: f32[N]) -> Y: f32[N] {{ Y[i] = {terms} }}"
    st = stages(source, schedule=S().vectorize("Y", "i"))
    body = c_backend.CBackend(st.ir, simd.AVX512).render_body(st.loops)
    assert "_mm512_storeu_ps" in body and ">= 64; )" not in body


def test_unsupported_loops_fall_back_to_the_pragma():
    transposed = """
    kernel t(A: f32[N, M]) -> B: f32[M, N] {
        B[j, i] = A[i, j] * 2.0
    }"""
    st = stages(transposed, schedule=S().vectorize("B", "i"), cflags=X86["avx2"])
    assert "_mm" not in st.source and "#pragma omp simd" in st.source
    k = loopweave.compile(transposed, schedule=S().vectorize("B", "i"))
    a = np.arange(35, dtype=np.float32).reshape(5, 7)
    np.testing.assert_array_equal(k(a), a.T * 2)


# -- instruction-set choice ------------------------------------------------------------------------

def test_isa_follows_the_compiler_flags():
    assert simd.isa_for("gcc", ("-O2", "-mavx2", "-mfma")) is simd.AVX2
    assert simd.isa_for("gcc", ("-O2", "-mavx512f")) is simd.AVX512
    assert simd.isa_for("gcc", ("-O2", "-march=x86-64")) is None
    assert simd.isa_for("no-such-compiler-here", ()) is None
    if shutil.which("aarch64-linux-gnu-gcc"):
        assert simd.isa_for("aarch64-linux-gnu-gcc", ("-O2",)) is simd.NEON
    if shutil.which("arm-none-eabi-gcc"):
        m55 = ("-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard")
        assert simd.isa_for("arm-none-eabi-gcc", m55) is simd.MVE
        assert simd.isa_for("arm-none-eabi-gcc", ("-mcpu=cortex-m4", "-mthumb")) is None


@pytest.mark.parametrize("isa, vector, tile_rows", [("avx2", "lw_vec_f32_8", 6),
                                                    ("avx512", "lw_vec_f32_16", 8)])
def test_register_tile_rows_are_cut_into_machine_vectors(isa, vector, tile_rows):
    """The default matmul's register tile rows are vectors of the flags' width: on AVX2 a
    64-byte GCC vector type lives in memory (each FMA a load and a store), 8x slower."""
    source = stages(refs.KERNELS["matmul"].source(), cflags=X86[isa]).source
    assert f"{vector} lw_r0_0" in source and "lw_r" + str(tile_rows - 1) + "_0" in source
    assert c_backend.vector_bytes(c_backend.make_target("cpu", None, X86[isa], {})) == \
        {"avx2": 32, "avx512": 64}[isa]
    if _host_has(isa.replace("avx512", "avx512f")):
        kernel = loopweave.compile(refs.KERNELS["matmul"].source(), cflags=X86[isa],
                                   tuning_db=False)
        a = np.random.default_rng(1).random((13, 37), np.float32)
        b = np.random.default_rng(2).random((37, 45), np.float32)
        np.testing.assert_allclose(kernel(a, b), a @ b, rtol=1e-4)


# -- Arm: NEON under qemu-aarch64, Helium/MVE under qemu-system-arm --------------------------------

ARM_CASES = [
    ("matmul", S().vectorize("C", "j")),
    ("softmax", S().vectorize("Y", "j")),
    ("layernorm", S().vectorize("xc", "j").vectorize("Y", "j")),
    ("jacobi_2d", S().vectorize("A", "j").vectorize("B", "j")),
    ("covariance", S().vectorize("d", "j").vectorize("cov", "j")),
]


@pytest.mark.parametrize("target", ["aarch64", "cortex-m55"])
@pytest.mark.parametrize(("name", "schedule"), ARM_CASES, ids=[c[0] for c in ARM_CASES])
def test_arm_intrinsics_match_numpy(target, name, schedule):
    src = refs.KERNELS[name].source()
    try:
        k = loopweave.compile(src, target=target, schedule=schedule)
    except loopweave.TargetError as e:
        pytest.skip(f"target {target} cannot run here: {e}")
    isa = simd.NEON if target == "aarch64" else simd.MVE
    # MVE has no f64 and no division: covariance and softmax's Y keep the scalar loop there.
    lowered = target == "aarch64" or name not in ("covariance", "softmax")
    assert (lowered_loops(k.source, isa) > 0) == lowered
    check_case(k, name)


F16_ROUND_TRIP = """kernel halves(x: f32[N], h: f16[N]) -> (y: f16[N], z: f32[N]) {
    y[i] = f16(x[i] * 3.0)
    z[i] = f32(h[i]) + f32(f16(x[i]))
}"""


@pytest.mark.skipif(not _host_has("f16c"), reason="the host CPU has no F16C")
def test_f16_vector_loads_and_stores_round_as_the_scalar_code():
    """f16 tensors in vector loops go through F16C (or AVX-512F) conversions, bit for bit as
    the scalar conversion rounds: normal, subnormal, overflowing, infinite and NaN values."""
    schedule = S().vectorize("y", "i").vectorize("z", "i")
    vector = loopweave.compile(F16_ROUND_TRIP, schedule=schedule, tuning_db=False)
    assert "cvtph_ps" in vector.source and "cvtps_ph" in vector.source
    scalar = loopweave.compile(F16_ROUND_TRIP, schedule=schedule, tuning_db=False, simd=False)
    rng = np.random.default_rng(5)
    special = np.array([0.0, -0.0, 1e-8, -3e-6, 6e-5, 65504.0, 65520.0, 1e6, np.inf, -np.inf,
                        np.nan, 2.0 ** -24, 2.0 ** -25, 1.0 + 2.0 ** -11], np.float32)
    x = np.concatenate([special, rng.standard_normal(1001).astype(np.float32) *
                        np.float32(10.0) ** rng.integers(-7, 5, 1001)]).astype(np.float32)
    with np.errstate(over="ignore"):  # the values beyond f16's range become inf, as meant
        h = x.astype(np.float16)
        expected_y = (x * np.float32(3.0)).astype(np.float16)
    for got, want in zip(vector(x, h), scalar(x, h), strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        same = np.isnan(want) | (got.view(f"u{got.itemsize}") == want.view(f"u{want.itemsize}"))
        assert same.all(), (x[~same][:5], got[~same][:5], want[~same][:5])
    np.testing.assert_array_equal(vector(x, h)[0], expected_y)


def test_f16_conversions_compile_for_avx512(tmp_path):
    """The AVX-512 path (its own f16 conversions) is built even where the host cannot run it."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    source = stages(F16_ROUND_TRIP, "cpu", schedule=S().vectorize("y", "i").vectorize("z", "i"),
                    cflags=X86["avx512"]).source
    assert "_mm512_cvtph_ps" in source and "_mm512_cvtps_ph" in source
    path = tmp_path / "halves.c"
    path.write_text(source)
    built = subprocess.run(["gcc", *X86["avx512"], "-c", str(path), "-o", str(tmp_path / "h.o")],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr


REVERSED = """kernel flipped(x: {t}[N], w: {t}[N], h: {t}[K]) -> (s: {t}[], y: {t}[N],
                                                         c: {t}[N - K + 1]) {{
    assume K >= 1
    assume N >= K
    s[] += x[i] * w[N - 1 - i]
    y[i] = x[N - 1 - i] - w[i]
    c[n] += h[k] * x[n + K - 1 - k]
}}"""


def _flipped_reference(x, w, h):
    k = len(h)
    conv = np.array([sum(h[j] * x[n + k - 1 - j] for j in range(k)) for n in range(len(x) - k + 1)])
    return (x.astype(np.float64) * w[::-1]).sum(), x[::-1] - w, conv


@pytest.mark.parametrize("dtype", ["f32", "f64", "i32"])
@pytest.mark.parametrize("isa", list(X86))
def test_reversed_loads_match_numpy(dtype, isa, tmp_path):
    """Stride -1 reads (a dot with a flipped vector, a reversed copy, a convolution written with
    x[n + K - 1 - k]) load from the last lane's element and reverse the lanes."""
    source = REVERSED.format(t=dtype)
    schedule = S().vectorize("s", "i").vectorize("y", "i").vectorize("c", "k")
    if not _host_has("avx512f" if isa == "avx512" else "avx2"):
        # the path is still compiled, though it cannot run here
        text = stages(source, "cpu", schedule=schedule, cflags=X86[isa]).source
        assert text.count("permutexvar") >= 3
        (tmp_path / "flipped.c").write_text(text)
        built = subprocess.run(["gcc", *X86[isa], "-c", str(tmp_path / "flipped.c"), "-o",
                                str(tmp_path / "flipped.o")], capture_output=True, text=True)
        assert built.returncode == 0, built.stderr
        pytest.skip(f"this CPU has no {isa}: compiled only")
    kernel = loopweave.compile(source, schedule=schedule, cflags=X86[isa], tuning_db=False)
    assert kernel.source.count("permute") >= 3
    rng = np.random.default_rng(3)
    np_type = {"f32": np.float32, "f64": np.float64, "i32": np.int32}[dtype]
    for n, k in [(1, 1), (7, 3), (8, 8), (9, 2), (37, 5), (4101, 17)]:
        x, w = (rng.integers(-9, 9, n).astype(np_type) for _ in range(2))
        h = rng.integers(-9, 9, k).astype(np_type)
        s, y, c = kernel(x, w, h)
        want_s, want_y, want_c = _flipped_reference(x, w, h)
        assert s == want_s and (y == want_y).all() and (c == want_c).all(), (n, k)


@pytest.mark.parametrize("target", ["aarch64"])
def test_reversed_loads_on_neon(target):
    source = REVERSED.format(t="f32")
    schedule = S().vectorize("s", "i").vectorize("y", "i").vectorize("c", "k")
    try:
        kernel = loopweave.compile(source, target=target, schedule=schedule)
    except loopweave.TargetError as e:
        pytest.skip(f"target {target} cannot run here: {e}")
    assert "vrev64q_f32" in kernel.source
    rng = np.random.default_rng(4)
    x, w = (rng.integers(-9, 9, 23).astype(np.float32) for _ in range(2))
    h = rng.integers(-9, 9, 6).astype(np.float32)
    for got, want in zip(kernel(x, w, h), _flipped_reference(x, w, h), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("isa", list(X86))
def test_a_negated_term_is_a_subtraction_in_vector_code(isa):
    """`y -= a * b` and `s -= a * b` read as `+ -(a * b)`: rendered as a subtraction (no sign
    flip between the product and the sum, so the compiler may fuse them), same values."""
    src = """
    kernel axpy_minus(a: f64[N], b: f64[N], y: inout f64[N]) -> s: f64[] {
        y[i] -= a[i] * b[i]
        s[] -= a[i] * y[i]
    }"""
    if not _host_has("avx512f" if isa == "avx512" else "avx2"):
        pytest.skip(f"this CPU has no {isa}")
    kernel = loopweave.compile(src, schedule=S().vectorize("y", "i").vectorize("s", "i"),
                               cflags=X86[isa])
    assert kernel.source.count("_sub_pd(") >= 2 and "xor" not in kernel.source
    rng = np.random.default_rng(1)
    a, b, y = rng.random(37), rng.random(37), rng.random(37)
    want_y = y - a * b
    s = kernel(a, b, y)
    np.testing.assert_allclose(y, want_y, rtol=1e-14)
    np.testing.assert_allclose(s, -(a * want_y).sum(), rtol=1e-12)


def test_a_square_root_in_a_fused_loop_vectorizes_with_the_host_flags(tmp_path):
    """rmsnorm's two elementwise statements fused into one loop take a row's `sqrtf` beside a
    store: gcc keeps a call that may set errno in order with the store and vectorizes neither
    unless the host flags say errno is not read (-fno-math-errno); with them the root is one
    inline instruction per row, hoisted, and the loop's division vectorizes."""
    target = get_target("cpu")
    if shutil.which(target.cc) is None:
        pytest.skip(f"no {target.cc}")
    source = (Path(__file__).resolve().parent.parent / "examples" / "kernels"
              / "rmsnorm_gelu.lw").read_text()
    fused = loopweave.compile(source, schedule=S().fuse("xn", "Y", depth=2), tuning_db=False,
                              cost_model=False, cache=False)
    c_file = tmp_path / "k.c"
    c_file.write_text(fused.source)
    flags = [f for f in target.cflags if f != "-march=native"] + ["-mavx512f", "-mavx512vl"]
    assembly = subprocess.run([target.cc, *flags, "-fopenmp", "-S", "-o", "-", str(c_file)],
                              capture_output=True, text=True, check=True).stdout
    # without the flag: `vsqrtss` with a `call sqrtf` beside it for errno, and the loop scalar
    assert "sqrtf@PLT" not in assembly and "vsqrtss" in assembly
