"""Check the numpy references of examples/references/ against literal loop transcriptions.

Every `naive_<kernel>` of tests/naive_loops.py and tests/naive_loops_data.py restates its
kernel's DSL statements as plain Python loops in float64. The vectorised references must agree
with them on the default test sizes. These tests compile nothing.
"""

from __future__ import annotations

import naive_loops
import naive_loops_data
import numpy as np
import pytest
from naive_loops import as_f64, polybench_lu

from loopweave.examples import load_references

NAIVE = {**naive_loops.NAIVE, **naive_loops_data.NAIVE}

refs = load_references()



CASES = [(name, i) for name, case in refs.KERNELS.items() for i in range(len(case.sizes))]


def test_every_kernel_file_has_a_case_and_a_naive_version():
    files = {p.stem for p in refs.kernel_files()}
    assert files == set(refs.KERNELS), "examples/kernels/*.lw and references.KERNELS differ"
    assert set(NAIVE) == set(refs.KERNELS)
    for case in refs.KERNELS.values():
        assert case.sizes and case.demo_sizes, case.name
        assert case.outputs or case.inouts, case.name


@pytest.mark.parametrize(("name", "size_index"), CASES)
def test_reference_matches_naive_loops(name, size_index):
    case = refs.KERNELS[name]
    sizes = case.sizes[size_index]
    args = case.make_inputs(sizes, 1234 + size_index)
    before = {k: v.copy() for k, v in args.items() if isinstance(v, np.ndarray)}
    expected = case.expected(args)
    for k, v in before.items():  # references never modify their arguments
        np.testing.assert_array_equal(args[k], v)
    assert list(expected) == list(case.outputs) + list(case.inouts)
    naive = NAIVE[name](**{k: (v.copy() if isinstance(v, np.ndarray) else v)
                           for k, v in args.items()})
    for out, want in expected.items():
        assert want.flags.c_contiguous
        if out in case.inouts:
            assert want.dtype == args[out].dtype and want.shape == args[out].shape
        loop = np.asarray(naive[out]).astype(want.dtype)
        err, ok = refs.compare(loop, want, tol_scale=0.01)
        assert ok, f"{name}[{out}] {sizes}: reference and loops differ by {err:g}"


def test_input_dtypes_and_layout():
    for case in refs.KERNELS.values():
        args = case.make_inputs(case.sizes[0], 0)
        for k, v in args.items():
            assert isinstance(v, np.ndarray | np.generic), (case.name, k)
            if isinstance(v, np.ndarray):
                assert v.flags.c_contiguous, (case.name, k)


def test_inputs_are_deterministic():
    for case in refs.KERNELS.values():
        a, b = case.make_inputs(case.sizes[0], 7), case.make_inputs(case.sizes[0], 7)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


def test_lu_matches_polybench_order():
    args = refs.KERNELS["lu"].make_inputs({"N": 13}, 3)
    err, ok = refs.compare(polybench_lu(args["A"])["A"].astype(np.float32),
                           refs.lu_ref(**args)["A"], tol_scale=0.01)
    assert ok, err


def test_lu_factors_reconstruct_the_matrix():
    a = refs.KERNELS["lu"].make_inputs({"N": 16}, 5)["A"]
    lu = refs.lu_ref(a.copy())["A"].astype(np.float64)
    low = np.tril(lu, -1) + np.eye(16)
    np.testing.assert_allclose(low @ np.triu(lu), a, rtol=1e-5, atol=1e-5)


def test_seidel_order_matters():
    """A Jacobi-style (all old values) sweep gives a different answer: the order is observable."""
    a = refs.KERNELS["seidel_2d"].make_inputs({"N": 7, "T": 1}, 2)["A"].astype(np.float64)
    jac = a.copy()
    jac[1:-1, 1:-1] = sum(a[1 + di:a.shape[0] - 1 + di, 1 + dj:a.shape[1] - 1 + dj]
                          for di in (-1, 0, 1) for dj in (-1, 0, 1)) / 9.0
    gs = refs.seidel_2d_ref(a.astype(np.float32), np.int32(1))["A"]
    assert not np.allclose(gs, jac, atol=1e-4)


def test_trmm_order_matters():
    """Updating rows bottom-up (reading updated rows) would give a different answer."""
    args = refs.KERNELS["trmm"].make_inputs({"M": 7, "N": 3}, 2)
    A, B = as_f64(args["A"]), as_f64(args["B"])
    for i in reversed(range(7)):
        for k in range(i + 1, 7):
            B[i] += A[k, i] * B[k]
    B *= float(args["alpha"])
    assert not np.allclose(refs.trmm_ref(**args)["B"], B, atol=1e-4)


def test_unpack_int4():
    w = np.array([[0x21, 0xF0]], dtype=np.uint8)
    np.testing.assert_array_equal(refs.unpack_int4(w), [[1, 0], [2, 15]])


def test_compare():
    exp = np.array([1.0, 2.0], dtype=np.float32)
    assert refs.compare(exp.copy(), exp) == (0.0, True)
    assert not refs.compare(exp + 1e-2, exp)[1]
    assert not refs.compare(np.array([np.nan, 2.0], dtype=np.float32), exp)[1]
    assert not refs.compare(exp[:1], exp)[1]
    ints = np.array([1, 2], dtype=np.int32)
    assert refs.compare(ints + np.array([0, 1], dtype=np.int32), ints) == (1.0, False)


def test_loaders_share_one_module_and_one_case_class():
    # Tests, the tuner and the benchmarks all load the references; a second load must not make a
    # second Case class (isinstance would fail across them), and PolyBench builds on the same one.
    from loopweave.examples import load_polybench_references

    assert load_references() is refs
    poly = load_polybench_references()
    assert poly is load_polybench_references()
    assert all(isinstance(c, refs.Case) for c in (*refs.KERNELS.values(), *poly.POLYBENCH.values()))
    assert poly.compare is refs.compare and poly.results_of is refs.results_of
    # every group's cases are in the table, once, and every name is its own
    groups = [c.name for g in refs.GROUPS for c in g.CASES]
    assert len(groups) == len(set(groups)) == len(refs.KERNELS)
    assert all(name == case.name for name, case in poly.POLYBENCH.items())
