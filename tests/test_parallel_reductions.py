"""Reductions to one element run in parallel and in SIMD, with results that do not depend on
the thread count (passes/default.full_reduction_steps, ir/privatize.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import loopweave
from loopweave import Schedule
from loopweave.errors import ScheduleError

SUM = """kernel total(x: f32[N]) -> s: f32[] {
    s[] += x[i]
}"""
KERNELS = {
    "sum": (SUM, lambda x: x.sum(dtype=np.float64), "f32"),
    "max": ("""kernel biggest(x: f32[N]) -> s: f32[] {
    s[] max= x[i]
}""", lambda x: x.max(), "f32"),
    "min_i32": ("""kernel smallest(x: i32[N]) -> s: i32[] {
    s[] min= x[i]
}""", lambda x: x.min(), "i32"),
    "sum_i32": ("""kernel isum(x: i32[N]) -> s: i32[] {
    s[] += x[i]
}""", lambda x: x.sum(dtype=np.int32), "i32"),
    "sum_2d": ("""kernel total2(x: f64[M, N]) -> s: f64[] {
    s[] += x[i, j] * x[i, j]
}""", lambda x: (x * x).sum(), "f64"),
}


def _input(dtype: str, shape, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype == "i32":
        return rng.integers(-1000, 1000, shape).astype(np.int32)
    return rng.standard_normal(shape).astype(dtype.replace("f", "float"))


@pytest.mark.parametrize("name", KERNELS)
@pytest.mark.parametrize("n", [1, 7, 4097, 10007])
def test_full_reductions_match_numpy(name, n):
    source, reference, dtype = KERNELS[name]
    kernel = loopweave.compile(source, tuning_db=False, cost_model="off")
    x = _input(dtype, (n,) if name != "sum_2d" else (n % 97 + 1, 33), seed=n)
    got = kernel(x)
    if dtype == "i32":
        assert int(got) == int(reference(x))
    else:
        np.testing.assert_allclose(got, reference(x), rtol=1e-5, atol=1e-5)


def test_default_runs_a_full_reduction_in_parallel_and_simd():
    source = loopweave.compile(SUM, tuning_db=False, cost_model="off").source
    assert "#pragma omp parallel for" in source
    assert any(op in source for op in ("_mm256_add_ps", "_mm512_add_ps", "#pragma omp simd",
                                       "vaddq"))
    # the partial results are combined after the parallel loop, in loop order
    assert source.index("#pragma omp parallel for") < source.rindex("s[0] = s[0] +")


def _sum_in_subprocess(threads: int) -> bytes:
    code = textwrap.dedent(f"""
        import sys, numpy as np, loopweave
        kernel = loopweave.compile({SUM!r}, tuning_db=False, cost_model="off")
        x = np.random.default_rng(3).standard_normal(100_003).astype(np.float32)
        sys.stdout.write(np.asarray(kernel(x)).tobytes().hex())
    """)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=300, check=True)
    return bytes.fromhex(out.stdout)


def test_result_is_bit_identical_for_every_thread_count():
    results = {t: _sum_in_subprocess(t) for t in (1, 2, 3)}
    assert results[1] == results[2] == results[3], results


def test_parallel_reduction_needs_reassociate():
    with pytest.raises(ScheduleError, match="reassociate"):
        loopweave.compile(SUM, schedule=Schedule().split("S1", "i", 64).parallel("S1", "i_o"))


def test_explicit_parallel_reduction_schedule():
    schedule = Schedule().reassociate("S1").split("S1", "i", 100).parallel("S1", "i_o")
    kernel = loopweave.compile(SUM, schedule=schedule)
    x = _input("f32", (1234,))
    np.testing.assert_allclose(kernel(x), x.sum(dtype=np.float64), rtol=1e-5)


COLUMN_SUM = """kernel colsum(x: f32[M, N]) -> s: f32[N] {
    s[j] += x[i, j]
}"""


def test_parallel_loop_whose_element_changes_inside_is_refused():
    # i outside j: the element s[j] changes inside the parallel loop, so one partial result
    # per iteration of i cannot hold it.
    schedule = Schedule().reassociate("S1").reorder("S1", "i", "j").parallel("S1", "i")
    with pytest.raises(ScheduleError, match="loop i of S1 cannot be parallel"):
        loopweave.compile(COLUMN_SUM, schedule=schedule)


def test_reduction_loop_inside_parallel_per_element():
    schedule = Schedule().reassociate("S1").parallel("S1", "i")  # loops j, i: i inside
    kernel = loopweave.compile(COLUMN_SUM, schedule=schedule)
    x = _input("f32", (37, 19))
    np.testing.assert_allclose(kernel(x), x.sum(axis=0), rtol=1e-5, atol=1e-5)
