"""The LLVM Polly peer of the PolyBench benchmark (benchmarks/peers.py, benchmarks/polybench.py).

Where clang-19 with Polly is installed (`make bench-tools`), PolyBench kernels built by it from
loopweave's program-order C must compute what program order built by gcc computes, one thread
and with Polly's OpenMP loops; elsewhere those tests skip with the reason the tables print.
No timing is asserted.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # benchmarks/ is a top-level folder, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import isl_scheduler, peers, polybench  # noqa: E402
from loopweave.examples import load_polybench_references  # noqa: E402

poly = load_polybench_references()


def needs_polly(threads: int):
    reason = peers.polly_status(threads)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


def _check_against_program_order(name: str, threads: int, dataset: str = "MINI"):
    """Polly's build of kernel `name` against gcc's program order and the numpy reference."""
    case = poly.POLYBENCH[name]
    source = case.source()
    polly = peers.compile_polly(source, threads)
    variants = {"naive": peers.compile_naive(source), "polly": polly}
    args = case.make_inputs(case.datasets[dataset], 5)
    assert polybench.differences(case, variants, "naive", args, poly) == []
    call_args = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in args.items()}
    got = poly.results_of(case, call_args, polly(*call_args.values()))
    for out, want in case.expected(args).items():
        err, ok = poly.compare(np.asarray(got[out]), want, case.tol_scale)
        assert ok, f"polly {name}[{out}] differs from the reference by {err:g}"
    return polly


# Not gemm: Polly's matrix-multiplication optimisation takes 20-60 s to build it here, and the
# benchmark checks every Polly result against program order before timing it anyway. A stencil
# is what Polly reorders most riskily: its tiles must respect the time-step dependences.
@needs_polly(1)
def test_polly_jacobi_2d_matches_program_order():
    _check_against_program_order("jacobi-2d", threads=1)


@needs_polly(2)
def test_polly_parallel_lu_matches_program_order(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # read when libgomp loads; harmless if loaded
    polly = _check_against_program_order("lu", threads=2, dataset="SMALL")
    # The check above ran Polly's OpenMP code, not a sequential fallback: Polly parallelises
    # lu's inner loops and calls libgomp for them.
    assert b"GOMP_parallel_loop_runtime_start" in Path(polly.invoke.library_path).read_bytes()


def test_polly_absent_is_a_note_not_a_column(monkeypatch):
    """Without clang-19 the table has no Polly column and says why."""
    monkeypatch.setattr(peers, "POLLY_CC", "clang-19-not-installed-here")
    peers.polly_status.cache_clear()
    try:
        reason = peers.polly_status(1)
        assert reason is not None and "not found" in reason and "make bench-tools" in reason
        row = polybench.PolyRow("gemm", "MINI", 2e-3, 1e-3, None)
        text = polybench.polybench_markdown([row])
        assert "polly ms" not in text and reason in text
        assert polybench.clang_variants("kernel k(X: f64[N]) -> Y: f64[N] { Y[i] = X[i] }",
                                        1) == ({}, [])
    finally:
        monkeypatch.undo()
        peers.polly_status.cache_clear()


def test_polly_columns_and_geometric_means():
    rows = [polybench.PolyRow("gemm", "MEDIUM", 4e-3, 1e-3, None, clang_s=4e-3, polly_s=2e-3),
            polybench.PolyRow("lu", "MEDIUM", 2e-3, 2e-3, None, clang_s=2e-3, polly_s=1e-3,
                              notes=("polly differs from naive on A by 1",))]
    text = polybench.polybench_markdown(rows)
    assert "| gemm | MEDIUM | 4.000 | 1.000 | 4.00x | 4.000 | 2.000 | 2.00x | 2.00x |" in text
    assert "| lu | MEDIUM | 2.000 | 2.000 | 1.00x | 2.000 | 1.000 | 2.00x | 0.50x |" in text
    assert "**Geometric mean loopweave/polly: 1.00x**" in text and "Polly 2.00x" in text
    assert "- lu: polly differs from naive on A by 1" in text


def test_isl_scheduler_table_has_a_polly_column_where_measured():
    with_polly = {"gemm": {"program order": 4e-3, "default": 1e-3, "isl": 2e-3, "polly": 2e-3},
                  "lu": None}
    text = isl_scheduler.table(with_polly, "MEDIUM")
    assert "lw/polly" in text.splitlines()[1] and "lu               failed" in text
    assert text.splitlines()[2].split()[-5:] == ["4.00x", "2.00x", "2.00x", "0.50x", "2.00x"]
    without = isl_scheduler.table({"gemm": {"program order": 4e-3, "default": 1e-3,
                                            "isl": 2e-3}}, "MEDIUM")
    assert "polly" not in without.splitlines()[1]
    assert without.splitlines()[2].split()[-3:] == ["4.00x", "2.00x", "0.50x"]
