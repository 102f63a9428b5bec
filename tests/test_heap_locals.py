"""Local buffers too large for a thread's stack come from the heap (backends/c_family.py
`render_scope`, `CBackend.heap_local_bytes`): softmax's fused row `e[j]` as wide as the data
had overflowed an 8 MB stack (a row of 2.5M floats: the process died of SIGSEGV).

Checked on the rendered source (a stack array below the bound, the heap above it, freed at
the end of its block; the Arm targets' C keeps its variable-length arrays), numerically on
rows on either side of the bound with a symbolic and a constant row length, and in a child
process whose stack is limited to 2 MB, where a 4 MB row now runs."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import loopweave
from loopweave.backends.c import CBackend
from loopweave.driver import stages
from loopweave.examples import load_references

SOFTMAX = load_references().KERNELS["softmax"].source()


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_a_row_of_symbolic_length_is_on_the_stack_below_the_bound_and_on_the_heap_above():
    source = loopweave.compile(SOFTMAX, tuning_db=False).source
    bound = CBackend.heap_local_bytes // 4
    assert f"const int64_t lw_e_on_stack = lw_max_i64(D, 1) <= {bound};" in source
    assert "float lw_e_stack[lw_e_on_stack ? lw_max_i64(D, 1) : 1]" in source
    assert "lw_heap_local(lw_max_i64(D, 1) * 4)" in source
    assert "if (!lw_e_on_stack) lw_heap_free(e);" in source


def test_arm_targets_keep_their_variable_length_arrays():
    source = stages(SOFTMAX, "aarch64").source
    assert "lw_heap_local" not in source and "float e[lw_max_i64(D, 1)]" in source


@pytest.mark.parametrize("columns", [7, CBackend.heap_local_bytes // 4,
                                     CBackend.heap_local_bytes // 4 + 3])
def test_rows_on_either_side_of_the_bound_match_numpy(columns):
    kernel = loopweave.compile(SOFTMAX, tuning_db=False)
    x = np.random.default_rng(columns).standard_normal((3, columns)).astype(np.float32)
    np.testing.assert_allclose(kernel(x), _softmax(x), rtol=1e-5, atol=1e-9)


def test_a_row_of_constant_length_above_the_bound_is_on_the_heap():
    columns = CBackend.heap_local_bytes // 4 + 5
    kernel = loopweave.compile(SOFTMAX.replace("D]", f"{columns}]"), tuning_db=False)
    assert f"lw_heap_local({columns} * 4)" in kernel.source and "lw_heap_free(e);" in kernel.source
    x = np.random.default_rng(1).standard_normal((2, columns)).astype(np.float32)
    np.testing.assert_allclose(kernel(x), _softmax(x), rtol=1e-5, atol=1e-9)


def _small_stack():
    resource.setrlimit(resource.RLIMIT_STACK, (2 << 20, resource.getrlimit(
        resource.RLIMIT_STACK)[1]))


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_STACK sizes the stack on Linux")
def test_a_row_larger_than_the_stack_runs():
    """A 4 MB row under a 2 MB stack limit (the main thread's and OpenMP's threads'): the
    child exits cleanly and prints the error against numpy."""
    script = textwrap.dedent(f"""
        import numpy as np, loopweave
        kernel = loopweave.compile({SOFTMAX!r}, tuning_db=False)
        x = np.random.default_rng(0).standard_normal((4, 1 << 20)).astype(np.float32)
        e = np.exp(x - x.max(axis=1, keepdims=True))
        print(float(np.abs(kernel(x) - e / e.sum(axis=1, keepdims=True)).max()))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, preexec_fn=_small_stack, env={**os.environ})
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert float(done.stdout.split()[-1]) < 1e-6
