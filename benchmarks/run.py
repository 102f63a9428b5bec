"""Running the kernel suite: build every implementation, check it, time them side by side.

Every loopweave variant's result is checked against the kernel's reference (examples/
references.py) at the benchmark size before it is timed, and so is every peer's first output:
a table never compares against something that computes another function.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from benchmarks import peers
from benchmarks.harness import Comparison, measure
from benchmarks.suite import ROOT, SuiteKernel
from loopweave.examples import load_references


@dataclass(frozen=True)
class CompileTime:
    """Seconds for compile() with an empty kernel cache, and again with the library cached."""

    kernel: str
    cold_s: float
    cached_s: float


def _copy(args: dict) -> dict:
    return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in args.items()}


def _check(label: str, got, want: np.ndarray, refs, tol_scale: float) -> str | None:
    if hasattr(got, "numpy"):  # a torch tensor
        got = got.numpy()
    err, ok = refs.compare(np.asarray(got).astype(want.dtype), want, tol_scale)
    return None if ok else f"{label}: result differs from the reference by {err:g}"


def run_kernel(bench: SuiteKernel, *, quick: bool, threads: int, repeats: int,
               check: bool = True) -> Comparison:
    """Measure every available implementation of `bench`; failures become notes, not crashes."""
    refs = load_references()
    case = refs.KERNELS[bench.case]
    sizes = bench.quick_sizes if quick else bench.sizes
    args = case.make_inputs(sizes, 0)
    expected = case.expected(args) if check else {}
    first = next(iter(expected.values()), None)
    notes = list(bench.notes)
    callables = {}
    for name, kernel in peers.loopweave_variants(case.source()).items():
        call_args = _copy(args)
        ret = kernel(*call_args.values())
        if name == "loopweave tuned" and not peers.used_tuning_record(kernel):
            notes.append(peers.NO_TUNING_RECORD)
            continue
        if check:
            got = refs.results_of(case, call_args, ret)
            for out, want in expected.items():
                problem = _check(f"{name} ({out})", got[out], want, refs, case.tol_scale)
                if problem:
                    notes.append(problem)
        values = list(_copy(args).values())
        callables[name] = lambda k=kernel, v=values: k(*v)
    factories = [("numpy", bench.numpy, ())]
    torch = peers.torch_module(threads)
    if torch is None:
        notes.append("torch: not installed, skipped")
    else:
        factories.append(("torch", bench.torch, (torch,)))
    for name, factory, extra in factories:
        if factory is None:
            continue
        try:
            fn = factory(*extra, _copy(args))
            if check and first is not None:
                problem = _check(name, fn(), first, refs, 10 * case.tol_scale)
                if problem:
                    notes.append(problem)
            callables[name] = fn
        except Exception as e:  # a peer that cannot run here is reported, not fatal
            notes.append(f"{name}: skipped ({type(e).__name__}: {e})")
    timings = measure(callables, repeats=repeats, min_sample_s=0.005 if quick else 0.05)
    size = ", ".join(f"{k}={v}" for k, v in sizes.items())
    return Comparison(bench.name, size, bench.work(sizes), timings, tuple(notes))


def compile_times(cases: list[str]) -> list[CompileTime]:
    """Cold and cached `compile()` time of each kernel (default schedule), measured in a fresh
    Python process with an empty kernel cache, so nothing this process compiled or memoised
    helps: cold = the first compile() of the kernel there (parse, check, schedule, isl code
    generation, gcc), cached = the second (the built library is found on disk). Imports and
    one-time set-up are paid by a warm-up kernel before the first measurement."""
    if not cases:
        return []
    with tempfile.TemporaryDirectory(prefix="lw-bench-cache-") as tmp:
        env = {**os.environ, "LOOPWEAVE_CACHE_DIR": tmp}
        code = "import sys; from benchmarks.run import _time_compiles; _time_compiles(sys.argv[1:])"
        out = subprocess.run([sys.executable, "-c", code, *cases], env=env, cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
    rows = [line.split() for line in out.splitlines() if line.startswith("compile ")]
    return [CompileTime(case, float(cold), float(cached)) for _, case, cold, cached in rows]


def _time_compiles(cases: list[str]) -> None:
    """The child of `compile_times`: one `compile <case> <cold s> <cached s>` line per kernel."""
    refs = load_references()
    # Lazily imported modules and one-time probes (the compiler's version) are paid here.
    peers.compile_default("kernel warm_up(X: f32[N]) -> Y: f32[N] { Y[i] = 2.0 * X[i] }")
    for case in cases:
        source = refs.KERNELS[case].source()
        t0 = time.perf_counter()
        peers.compile_default(source)
        t1 = time.perf_counter()
        peers.compile_default(source)
        t2 = time.perf_counter()
        print(f"compile {case} {t1 - t0:.6f} {t2 - t1:.6f}", flush=True)
