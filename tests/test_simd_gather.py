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
