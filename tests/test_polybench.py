"""PolyBench/C 4.2 in the DSL (examples/polybench/): every kernel compiled for the host CPU and
checked against its numpy reference on the MINI and SMALL datasets (examples/polybench/
references/). Also: each .lw file has a case, and the dataset tables are complete.
"""

from __future__ import annotations

import numpy as np
import pytest

import loopweave
from loopweave.examples import load_polybench_references

poly = load_polybench_references()
_compiled: dict[str, object] = {}

# PolyBench/C 4.2's 30 kernels, by category.
POLYBENCH_30 = {
    "correlation", "covariance",
    "gemm", "gemver", "gesummv", "symm", "syr2k", "syrk", "trmm",
    "2mm", "3mm", "atax", "bicg", "doitgen", "mvt",
    "cholesky", "durbin", "gramschmidt", "lu", "ludcmp", "trisolv",
    "deriche", "floyd-warshall", "nussinov",
    "adi", "fdtd-2d", "heat-3d", "jacobi-1d", "jacobi-2d", "seidel-2d",
}


def compiled(name: str):
    """The kernel compiled once per session (a compile error is raised again in each test)."""
    if name not in _compiled:
        try:
            _compiled[name] = loopweave.compile(poly.POLYBENCH[name].source())
        except Exception as e:
            _compiled[name] = e
    if isinstance(_compiled[name], Exception):
        raise _compiled[name]
    return _compiled[name]


def test_all_thirty_kernels_have_a_file_and_a_case():
    files = {p.stem for p in poly.POLY_DIR.glob("*.lw")}
    assert files == POLYBENCH_30
    assert set(poly.POLYBENCH) == POLYBENCH_30
    for case in poly.POLYBENCH.values():
        assert list(case.datasets) == ["MINI", "SMALL", "MEDIUM", "LARGE"], case.name
        assert case.outputs or case.inouts, case.name


CASES = [pytest.param(name, i, id=f"{name}-" + "-".join(f"{k}{v}" for k, v in sizes.items()))
         for name, case in sorted(poly.POLYBENCH.items()) for i, sizes in enumerate(case.sizes)]


@pytest.mark.parametrize(("name", "size_index"), CASES)
def test_polybench_kernel_matches_reference(name, size_index):
    case = poly.POLYBENCH[name]
    args = case.make_inputs(case.sizes[size_index], 100 + size_index)
    expected = case.expected(args)
    assert list(expected) == list(case.outputs) + list(case.inouts)
    got = poly.results_of(case, args, compiled(name)(*args.values()))
    for out, want in expected.items():
        value = np.asarray(got[out])
        assert value.shape == want.shape and value.dtype == want.dtype, (name, out)
        err, ok = poly.compare(value, want, case.tol_scale)
        assert ok, f"{name}[{out}] at {case.sizes[size_index]}: differs by {err:g}"


def test_references_see_the_inputs_they_need():
    """The conditioning the inputs promise: SPD for cholesky, dominant diagonals, durbin's
    positive definite Toeplitz matrix, a constant column for correlation's threshold."""
    a = poly.cholesky_inputs({"N": 12}, 0)["A"]
    assert np.all(np.linalg.eigvalsh(a) > 0)
    r = poly.durbin_inputs({"N": 40}, 0)["r"]
    assert np.sum(np.abs(r)) < 1.0
    data = poly.correlation_inputs({"M": 5, "N": 9}, 0)["data"]
    assert np.ptp(data[:, 0]) == 0.0


def test_durbin_solves_the_toeplitz_system():
    """Levinson-Durbin: y solves T y = -r with T = toeplitz(1, r[0], ..., r[N-2])."""
    r = poly.durbin_inputs({"N": 16}, 3)["r"]
    y = poly.durbin_ref(r)["y"]
    col = np.concatenate([[1.0], r[:-1]])
    toeplitz = col[np.abs(np.subtract.outer(np.arange(16), np.arange(16)))]
    np.testing.assert_allclose(toeplitz @ y, -r, atol=1e-12)


def test_nussinov_counts_nested_pairs():
    """Bases pair when they sum to 3 (0-3, 1-2) and are not neighbours: in 0 1 0 2 3 the pair
    (0, 4) encloses the pair (1, 3), two nested pairs."""
    table = np.zeros((5, 5), np.int32)
    compiled("nussinov")(np.array([0, 1, 0, 2, 3], dtype=np.int8), table)
    assert table[0, 4] == 2 and table[1, 3] == 1 and table[1, 2] == 0
