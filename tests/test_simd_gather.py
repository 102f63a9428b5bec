"""Gathers in SIMD vector loops (backends/simd.py): a row copy (`out[i, d] = table[ids[i], d]`)
is one memcpy per row; in other vector loops the row index of `table[ids[i], d]`, invariant in
the loop over d, is read once before the loops over whole vectors (inside an OpenMP loop the
compiler would read it again for every vector), only when they run at least once. The results
match numpy at odd sizes: rows shorter than one vector, exact multiples, empty tensors, other
element types, two gathers in one statement and a gather summed over an inner loop.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from test_simd import X86, _host_has

import loopweave

EMBEDDING = """
kernel embedding(table: {t}[V, D], ids: i32[N]) -> out: {t}[N, D] {{
    out[i, d] = table[ids[i], d]
}}
"""
COPY = """
kernel copy(x: f32[N, D]) -> y: f32[N, D] {
    y[i, d] = x[i, d]
}
"""
TWO = """
kernel two(table: f32[V, D], pos: f32[P, D], ids: i64[N], at: i32[N]) -> out: f32[N, D] {
    out[i, d] = table[ids[i], d] * 2.0 + pos[at[i], d]
}
"""
BAG = """
kernel bag(table: f32[V, D], ids: i32[N, K]) -> out: f32[N, D] {
    out[i, d] += table[ids[i, k], d]
}
"""
SIZES = [(11, 13, 7), (5, 3, 4), (9, 8, 6), (4, 17, 0), (6, 0, 5), (300, 37, 65)]


def _compile(source: str, isa: str) -> loopweave.Kernel:
    if not _host_has("avx512f" if isa == "avx512" else "avx2"):
        pytest.skip(f"this CPU has no {isa}")
    return loopweave.compile(source, cflags=X86[isa], tuning_db=False)


def _hoisted(source: str) -> list[str]:
    """The index loads read before a vector loop: `const <type> lw_ixN = <load>;`."""
    return re.findall(r"const \w+ (lw_ix\d+) = (\w+\[[^;]*\]);", source)


@pytest.mark.parametrize("isa", list(X86))
@pytest.mark.parametrize("dtype", ["f32", "f64", "i8"])
def test_a_row_copy_is_one_memcpy_per_row(isa, dtype):
    k = _compile(EMBEDDING.format(t=dtype), isa)
    body = k.source[k.source.index("void lw_embedding"):]
    ctype = {"f32": "float", "f64": "double", "i8": "int8_t"}[dtype]
    assert re.search(r"memcpy\(&out\[c0 \* D \+ c1\], &table\[\(\(int64_t\)\(ids\[c0\]\)\) \* D "
                     rf"\+ c1\], \(size_t\)\(lw_end\d+ - c1\) \* sizeof\({ctype}\)\);", body), body
    assert "_mm" not in body and "#if" not in body  # plain C: no intrinsics, no guard
    rng = np.random.default_rng(0)
    np_type = {"f32": np.float32, "f64": np.float64, "i8": np.int8}[dtype]
    for v, d, n in SIZES:
        table = (rng.random((v, d)) * 100).astype(np_type)
        ids = rng.integers(0, v, n).astype(np.int32)
        np.testing.assert_array_equal(k(table, ids), np.take(table, ids, axis=0))
        out = np.full((n, d), 7, np_type)
        np.testing.assert_array_equal(k(table, ids, out=out), table[ids])


@pytest.mark.parametrize("isa", list(X86))
def test_a_copy_without_a_gather_keeps_its_vector_moves(isa):
    k = _compile(COPY, isa)
    assert "memcpy(&y" not in k.source and "_mm" in k.source
    x = np.random.default_rng(3).random((5, 21), dtype=np.float32)
    np.testing.assert_array_equal(k(x), x)


@pytest.mark.parametrize("isa", list(X86))
def test_two_gathers_in_one_statement(isa):
    k = _compile(TWO, isa)
    assert sorted(load for _, load in _hoisted(k.source)) == ["at[c0]", "ids[c0]"], k.source
    rng = np.random.default_rng(1)
    for v, d, n in SIZES:
        table = rng.random((v, d), dtype=np.float32)
        pos = rng.random((v + 2, d), dtype=np.float32)
        ids = rng.integers(0, v, n)
        at = rng.integers(0, v + 2, n).astype(np.int32)
        want = table[ids] * np.float32(2) + pos[at]
        np.testing.assert_allclose(k(table, pos, ids, at), want, rtol=1e-6)


@pytest.mark.parametrize("isa", list(X86))
def test_a_gather_summed_over_an_inner_loop(isa):
    k = _compile(BAG, isa)
    assert [load for _, load in _hoisted(k.source)] == ["ids[c0 * K + c1]"], k.source
    rng = np.random.default_rng(2)
    for v, d, n in SIZES:
        table = rng.random((v, d), dtype=np.float32)
        ids = rng.integers(0, v, (n, 3)).astype(np.int32)
        want = np.zeros((n, d), np.float32)
        for j in range(3):  # in the kernel's order of additions
            want += table[ids[:, j]]
        np.testing.assert_allclose(k(table, ids), want, rtol=1e-6)


# -- gathers of single lanes: one gather instruction (backends/simd_gather.py) ------------------

ELL = """
kernel ell(vals: f32[M, K], col: i32[M, K], x: f32[N]) -> y: f32[M] {
    y[i] += vals[i, k] * x[col[i, k]]
}
"""
PICK = """
kernel pick(x: i32[N], f: f32[N], col: i32[R, M]) -> (y: i32[R, M], z: f32[R, M]) {
    y[r, m] = x[col[r, m]] * 3
    z[r, m] = f[col[r, m]]
}
"""
ROWS = """
kernel rows(T: f32[G, N], w: i32[G, M]) -> y: f32[G, M] {
    y[g, m] = T[g, w[g, m]] * 2.0
}
"""
WIDE = """
kernel wide(x: f32[N], col: i64[M]) -> y: f32[M] {
    y[m] = x[col[m]] * 2.0
}
"""
ODD = [1, 5, 15, 16, 17, 37, 64, 100]


def _gathers(source: str) -> int:
    return len(re.findall(r"i32gather_(?:ps|epi32)|vldrwq_gather_shifted_offset", source))


@pytest.mark.parametrize("isa", list(X86))
def test_a_sparse_dot_gathers_its_lanes(isa):
    """ELL SpMV's `x[col[i, k]]` over the vector loop k: the lanes' col values are the gather's
    offsets; the row sums (four accumulators, then the scalar rest) match numpy."""
    k = _compile(ELL, isa)
    assert _gathers(k.source) >= 2, k.source  # the unrolled loop and the one-vector loop
    rng = np.random.default_rng(4)
    for width in ODD:
        n = 3 * width + 7
        vals = rng.standard_normal((9, width), dtype=np.float32)
        col = rng.integers(0, n, (9, width)).astype(np.int32)
        x = rng.standard_normal(n, dtype=np.float32)
        want = (vals.astype(np.float64) * x[col]).sum(axis=1)
        np.testing.assert_allclose(k(vals, col, x), want, rtol=2e-5, atol=1e-5)


@pytest.mark.parametrize("isa", list(X86))
def test_gathered_copies_and_integer_lanes(isa):
    """`z[r, m] = f[col[r, m]]` is no row copy (its source moves by col, not by m): a gather,
    as is the i32 `x[col[r, m]] * 3`. Exact at odd sizes, repeated and edge indices included."""
    k = _compile(PICK, isa)
    assert _gathers(k.source) >= 2, k.source
    assert "memcpy(&z" not in k.source
    rng = np.random.default_rng(5)
    for m in ODD:
        n = m + 3
        x = rng.integers(-1000, 1000, n).astype(np.int32)
        f = rng.standard_normal(n, dtype=np.float32)
        col = rng.integers(0, n, (3, m)).astype(np.int32)
        col[0, 0], col[-1, -1] = 0, n - 1
        y, z = k(x, f, col)
        np.testing.assert_array_equal(y, x[col] * 3)
        np.testing.assert_array_equal(z, f[col])


@pytest.mark.parametrize("isa", list(X86))
def test_a_gather_within_a_row_takes_the_row_as_its_base(isa):
    """`T[g, w[g, m]]`: base `&T[g, 0]`, the w values the offsets; an index one past a row's
    last element is refused before the call."""
    k = _compile(ROWS, isa)
    assert _gathers(k.source) >= 2, k.source
    rng = np.random.default_rng(6)
    for m in ODD:
        t = rng.standard_normal((4, m + 2), dtype=np.float32)
        w = rng.integers(0, m + 2, (4, m)).astype(np.int32)
        np.testing.assert_array_equal(k(t, w), t[np.arange(4)[:, None], w] * np.float32(2))
    w[2, 3] = m + 2
    with pytest.raises(loopweave.ArgumentValueError, match=r"w\[2, 3\]"):
        k(t, w)


@pytest.mark.parametrize("isa", list(X86))
def test_i64_offsets_stay_scalar(isa):
    """The gather instructions take i32 offsets: i64 index values keep the scalar loop."""
    k = _compile(WIDE, isa)
    assert _gathers(k.source) == 0
    rng = np.random.default_rng(7)
    x = rng.standard_normal(50, dtype=np.float32)
    col = rng.integers(0, 50, 37)
    np.testing.assert_array_equal(k(x, col), x[col] * np.float32(2))


def test_helium_gathers_lanes():
    """cortex-m55 (Helium) gathers with `vldrwq_gather_shifted_offset`, under QEMU."""
    try:
        ell = loopweave.compile(ELL, target="cortex-m55", tuning_db=False)
        rows = loopweave.compile(ROWS, target="cortex-m55", tuning_db=False)
    except loopweave.TargetError as e:
        pytest.skip(f"cortex-m55 cannot run here: {e}")
    assert _gathers(ell.source) >= 1 and _gathers(rows.source) >= 1, ell.source
    rng = np.random.default_rng(8)
    vals = rng.standard_normal((3, 13), dtype=np.float32)
    col = rng.integers(0, 20, (3, 13)).astype(np.int32)
    x = rng.standard_normal(20, dtype=np.float32)
    np.testing.assert_allclose(ell(vals, col, x), (vals * x[col]).sum(axis=1), rtol=1e-5)
    t = rng.standard_normal((2, 11), dtype=np.float32)
    w = rng.integers(0, 10, (2, 9)).astype(np.int32)
    np.testing.assert_array_equal(rows(t, w), t[np.arange(2)[:, None], w] * np.float32(2))
