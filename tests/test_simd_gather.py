"""Gathers in SIMD vector loops (backends/simd.py): the row index of `table[ids[i], d]`, invariant
in the vector loop over d, is read once before the loops over whole vectors (inside an OpenMP
loop the compiler would read it again for every vector), only when they run at least once;
the results match numpy at odd sizes: rows shorter than one vector, exact multiples, empty
tensors, two gathers in one statement and a gather summed over an inner loop.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from test_simd import X86, _host_has

import loopweave

EMBEDDING = """
kernel embedding(table: f32[V, D], ids: i32[N]) -> out: f32[N, D] {
    out[i, d] = table[ids[i], d]
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
def test_embedding_reads_each_row_index_once(isa):
    k = _compile(EMBEDDING, isa)
    lanes = 16 if isa == "avx512" else 8
    hoisted = _hoisted(k.source)
    assert [load for _, load in hoisted] == ["ids[c0]"], k.source
    name = hoisted[0][0]
    guard = re.search(rf"if \((lw_end\d+) - c1 >= {lanes}\) {{\n\s*const int32_t {name} = ",
                      k.source)
    assert guard is not None, k.source
    whole = k.source[guard.end():k.source.index("for (; c1 < ", guard.end())]
    assert "ids[" not in whole.split(";", 1)[1]  # the vector loops use the name only
    rng = np.random.default_rng(0)
    for v, d, n in SIZES:
        table = rng.random((v, d), dtype=np.float32)
        ids = rng.integers(0, v, n).astype(np.int32)
        np.testing.assert_array_equal(k(table, ids), np.take(table, ids, axis=0))
        out = np.full((n, d), np.nan, np.float32)
        np.testing.assert_array_equal(k(table, ids, out=out), table[ids])


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
