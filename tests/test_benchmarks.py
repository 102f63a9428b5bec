"""Smoke tests of the benchmark harness (benchmarks/), on tiny sizes so it cannot rot.

No timing is asserted: only that measurements are taken in the promised order, that results are
checked, and that the report files are written.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # benchmarks/ is a top-level folder, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import (  # noqa: E402
    cli,
    conv_layers,
    harness,
    machine,
    matmul_peak,
    model_choice,
    narrow_gemm,
    polybench,
    revisions,
    run,
    skinny_gemm,
    suite,
    thread_pools,
    time_tiles,
    tune_polybench,
)


def test_measure_interleaves_in_shuffled_rounds():
    def timed_order() -> list[str]:
        calls = []
        fns = {name: (lambda n=name: calls.append(n)) for name in "abcd"}
        timings = harness.measure(fns, repeats=6, warmup=1, min_sample_s=0.0, settle_s=0.0)
        assert set(timings) == set("abcd")
        assert all(len(t.samples) == 6 and t.calls_per_sample == 1 for t in timings.values())
        assert all(t.median >= 0 and t.spread >= 0 for t in timings.values())
        return calls[8:]  # warm-up and sizing call of each first

    timed = timed_order()
    rounds = [timed[k:k + 4] for k in range(0, 24, 4)]
    assert all(sorted(r) == list("abcd") for r in rounds)  # one sample of each per round
    followers = {(r[k], r[k + 1]) for r in rounds for k in range(3)}
    assert len(followers) > 4  # not one fixed rotation: neighbours change
    assert timed_order() == timed  # seeded: the same orders in every run


def test_samples_wait_for_other_pools_only_where_threads_run(monkeypatch):
    """With several threads each sample first waits SETTLE_S (other libraries' spinning
    workers go to sleep); with one thread nothing spins and nothing waits."""
    waits = []
    monkeypatch.setattr(harness.time, "sleep", waits.append)
    fns = {"a": lambda: None, "b": lambda: None}
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    harness.measure(fns, repeats=3, min_sample_s=0.0)
    assert waits == [harness.SETTLE_S] * 6
    waits.clear()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    harness.measure(fns, repeats=3, min_sample_s=0.0)
    assert waits == []
    harness.measure(fns, repeats=3, min_sample_s=0.0, settle_s=0.01)
    assert waits == [0.01] * 6


def test_measure_batches_fast_calls():
    t = harness.measure({"noop": lambda: None}, repeats=2, min_sample_s=0.001)["noop"]
    assert t.calls_per_sample > 1


def test_table_has_ratios_against_every_peer():
    timings = {"x": harness.Timing("x", (2.0, 2.0), 1), "y": harness.Timing("y", (1.0, 1.0), 1)}
    cmp = harness.Comparison("k", "N=1", harness.Work(flops=4e9, bytes=2e9), timings, ("a note",))
    text = harness.format_table(cmp, harness.Limits(peak_flops=4e9, bandwidth=1e9))
    assert "| x | 2000.000 | 0.0% | 2.00 | 1.00 | 1.00 |  | 0.50x |" in text
    assert "| y | 1000.000 | 0.0% | 4.00 | 2.00 | 2.00 | 2.00x |  |" in text
    assert "- a note" in text
    assert math.isclose(harness.geometric_mean([1.0, 4.0]), 2.0)


def test_ratios_pair_the_rounds():
    """A ratio is the median of the rounds' ratios: here the machine ran at a third of its
    speed in the last round, which the medians of the times alone would half take in."""
    timings = {"x": harness.Timing("x", (1.0, 2.0, 3.0), 1),
               "y": harness.Timing("y", (2.2, 1.5, 6.0), 1)}
    cmp = harness.Comparison("k", "N=1", harness.Work(), timings)
    assert math.isclose(cmp.ratio("x", "y"), 2.0)  # rounds: 2.2, 0.75, 2.0
    assert math.isclose(cmp.ratio("y", "x"), 0.5)  # rounds: 1 / 2.2, 4 / 3, 0.5
    even = {"x": harness.Timing("x", (1.0, 1.0), 1), "y": harness.Timing("y", (2.0, 3.0), 1)}
    pair = harness.Comparison("k", "", harness.Work(), even)
    assert math.isclose(pair.ratio("x", "y"), math.sqrt(6))  # between the two rounds' ratios
    assert math.isclose(pair.ratio("x", "y") * pair.ratio("y", "x"), 1.0)
    unpaired = {"x": harness.Timing("x", (1.0, 2.0, 3.0), 1), "y": harness.Timing("y", (4.0,), 1)}
    assert math.isclose(harness.Comparison("k", "", harness.Work(), unpaired).ratio("x", "y"), 2)


def test_machine_limits_are_measured():
    flops, width = machine.measure_peak_flops(iters=200_000)
    assert flops > 1e8 and width in (4, 8, 16)
    assert machine.measure_bandwidth(floats=1 << 18) > 1e8
    assert "thread" in machine.blas_info()


def test_suite_kernel_runs_checked_against_every_peer():
    result = run.run_kernel(suite.SUITE["softmax"], quick=True, threads=1, repeats=1)
    assert {"loopweave", "naive C", "numpy"} <= set(result.timings)
    assert not [n for n in result.notes if "differs" in n or "skipped (" in n], result.notes
    assert result.work.bytes > 0


def test_suite_check_catches_a_wrong_peer():
    bad = suite.SUITE["softmax"].__class__(**{**suite.SUITE["softmax"].__dict__,
                                              "numpy": lambda a: lambda: a["X"] * 2.0})
    result = run.run_kernel(bad, quick=True, threads=1, repeats=1)
    assert any(n.startswith("numpy: result differs") for n in result.notes), result.notes


def test_every_suite_kernel_exists():
    from loopweave.examples import load_references

    refs = load_references()
    for bench in suite.SUITE.values():
        assert bench.case in refs.KERNELS, bench.name
        assert bench.work(bench.quick_sizes).bytes > 0


def test_polybench_speedup_row():
    (row,) = polybench.run_polybench(["jacobi-1d"], "MINI", repeats=1, progress=lambda s: None)
    assert row.notes == () and row.speedup > 0
    text = polybench.polybench_markdown([row])
    assert "| jacobi-1d | MINI |" in text and "Geometric mean" in text and "published" in text


def test_cli_selects_and_writes_report(tmp_path):
    try:
        assert cli.main(["--quick", "--repeats", "1", "--out", str(tmp_path), "depthwise_conv2d",
                         "polybench:trisolv"]) == 0
    finally:
        controller = getattr(cli.limit_threads, "controller", None)
        if controller is not None:
            controller.restore_original_limits()
    text = (tmp_path / "results.md").read_text()
    assert "**depthwise_conv2d**" in text and "| trisolv | MINI |" in text
    assert "cold compile()" in text and "measured peak" in text
    assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit):
        cli.select(["no-such-kernel"])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(suite.SUITE))
def test_every_suite_kernel_agrees_with_every_peer(name):
    """At the quick sizes, no implementation's result differs from the reference."""
    result = run.run_kernel(suite.SUITE[name], quick=True, threads=1, repeats=1)
    assert not [n for n in result.notes if "differs" in n or "skipped (" in n], result.notes


def test_thread_pool_matmul_peak_and_time_tile_scripts_run_quick(capsys):
    """The scripts behind issue 17's stall and matmul tables and issue 18's time-tile bound:
    each setting or thread count in its own process, results checked before timing."""
    assert thread_pools.main(["--quick", "--spins", "0"]) == 0
    out = capsys.readouterr().out
    assert "(loopweave's)" in out and "GOMP_SPINCOUNT=0 (the user's)" in out
    assert "failed" not in out
    assert matmul_peak.main(["--quick", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "| 1 | f32 | 256^3 |" in out and "failed" not in out
    assert time_tiles.main(["--quick"]) == 0
    assert "| jacobi-2d |" in capsys.readouterr().out


def test_narrow_and_skinny_gemm_scripts_run_quick(capsys):
    """benchmarks/narrow_gemm.py (f16/bf16 operands, f32 arithmetic) and skinny_gemm.py (few
    rows of C): every result checked against numpy before timing."""
    pytest.importorskip("ml_dtypes", reason="ml_dtypes not installed")
    assert narrow_gemm.main(["--quick", "--types", "f16"]) == 0
    out = capsys.readouterr().out
    assert "| loopweave B f16 |" in out and "over loopweave f32:" in out
    assert skinny_gemm.main(["--quick"]) == 0
    assert "| 8 x 512 x 512 |" in capsys.readouterr().out


def test_convolution_layers_script_runs_quick(capsys):
    """benchmarks/conv_layers.py: both unit-stride forms and the strided one, each checked
    against torch before timing."""
    pytest.importorskip("torch", reason="torch not installed")
    assert conv_layers.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "| loopweave column tile |" in out and "**conv2d_s2** (C=64, K=64" in out


def test_records_tuned_at_one_dataset_are_candidates_at_another(tmp_path, capsys):
    """benchmarks/tune_polybench.py, then benchmarks/model_choice.py --db: the cost model in
    compile() ranks the record tuned at MINI when compiling SMALL; every candidate checked."""
    from loopweave.autotune.database import Database

    db = str(tmp_path / "tune.sqlite")
    assert tune_polybench.main(["--dataset", "MINI", "--trials", "3", "--db", db, "trmm"]) == 0
    out = capsys.readouterr().out
    assert "| trmm | " in out
    # every trial correct; its time "ok", or "noisy" where two rounds of timings spread
    # (MINI's calls take microseconds, and the test's neighbours share the cores)
    with Database(db) as database:
        assert sorted(r.status for r in database.records()) in (
            sorted(["ok"] * ok + ["noisy"] * (3 - ok)) for ok in range(1, 4))
    assert model_choice.main(["--dataset", "SMALL", "--db", db, "--no-program-order",
                              "--repeats", "1", "trmm"]) == 0
    out = capsys.readouterr().out
    assert "| trmm | - |" in out and "failed" not in out and "differ" not in out


def test_random_training_kernels_are_sized_to_their_work():
    """benchmarks/tune_pretrain.py --random: the fuzzer's kernels at one size each, the
    largest within the work limit, and at least 16 (tinier calls time the noise)."""
    from benchmarks.tune_pretrain import random_case
    from loopweave.autotune.features import flop_count
    from loopweave.pipeline import front_end

    found = [random_case(seed, work=1e6) for seed in range(100, 130)]
    cases = [c for c in found if c is not None]
    assert len(cases) >= 10
    for source, sizes in cases:
        kernel = front_end(source)
        assert flop_count(kernel, sizes) <= 1e6
        assert max(sizes[s] for s in kernel.sizes) >= 16


def test_revisions_script_builds_each_side_from_its_own_sources(tmp_path, capsys):
    """benchmarks/revisions.py: HEAD from a temporary worktree against the working tree, each
    process importing loopweave from its side's linked package (the script refuses a process
    that imported another), results checked; the worktree is gone afterwards."""
    revisions.link_package(ROOT, tmp_path)
    assert (tmp_path / "loopweave" / "__init__.py").resolve() == ROOT / "compiler" / "__init__.py"
    assert (tmp_path / "loopweave" / "passes").resolve() == ROOT / "passes"
    qmm = f"{ROOT / 'examples/kernels/qmm.lw'}@M=40,K=33,N=20"
    assert revisions.main(["HEAD", "layernorm", "polybench:gemm", qmm, "--quick", "--rounds",
                           "1", "--seconds", "0.02"]) == 0
    out = capsys.readouterr().out
    assert "| kernel | HEAD (" in out and "| working tree ms |" in out
    assert "| layernorm |" in out and "| polybench:gemm |" in out and f"| {qmm} |" in out
    assert "lw-revisions-" not in revisions._git("worktree", "list")
    with pytest.raises(SystemExit):  # a clear usage error, before any worktree is made
        revisions.main(["HEAD", f"{ROOT / 'examples/kernels/qmm.lw'}@M"])
    assert "expected an existing DSL file and its sizes" in capsys.readouterr().err
