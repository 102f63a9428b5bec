"""PolyBench/C 4.2 speedups: loopweave's default schedule (and a tuned one where the tuning
database holds a record for the kernel at the dataset's sizes) over the same DSL algorithm as a
plain C loop nest (identity schedule, gcc -O3 -march=native), with the geometric mean; and the
same loop nest built by clang-19 with LLVM Polly (and by clang-19 alone, the control) where
clang-19 with Polly is installed (`make bench-tools`), with loopweave's speedup over Polly.

Each timed call first restores the `inout` arrays from a pristine copy (the same copy in every
implementation), so repeated calls do not run on their own output (an LU of an LU, a stencil
1000 steps on). At MEDIUM sizes the copy is far below 1% of a call. Before timing, every other
variant's results are checked against the naive loop nest's on the same inputs.

Threads: the OpenMP loops of the default schedule run on OMP_NUM_THREADS threads (`python -m
benchmarks --threads N` sets it); with more than one, Polly is built with -polly-parallel so it
runs its parallel loops on as many. The naive loop nest and clang alone stay sequential.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from benchmarks import peers
from benchmarks.harness import geometric_mean, measure
from loopweave.errors import LoopweaveError
from loopweave.examples import load_polybench_references

# Published for context, not measured here.
PUBLISHED = ("LOOPer (published): 1.42x geometric mean speedup over Pluto on PolyBench "
             "(their machine, their baseline; not comparable to the figures above)")


POLYBENCH = load_polybench_references().POLYBENCH


@dataclass(frozen=True)
class PolyRow:
    """One PolyBench kernel: median seconds of each variant (None: not measured), the OpenMP
    threads it ran with, and notes (check failures)."""

    kernel: str
    dataset: str
    naive_s: float
    default_s: float
    tuned_s: float | None
    notes: tuple[str, ...] = ()
    clang_s: float | None = None
    polly_s: float | None = None
    threads: int = 1

    @property
    def speedup(self) -> float:
        return self.naive_s / self.default_s

    @property
    def tuned_speedup(self) -> float | None:
        return None if self.tuned_s is None else self.naive_s / self.tuned_s

    @property
    def polly_speedup(self) -> float | None:
        """Polly's speedup over the naive loop nest."""
        return None if self.polly_s is None else self.naive_s / self.polly_s

    @property
    def over_polly(self) -> float | None:
        """loopweave (default schedule) over Polly: above 1, loopweave is faster."""
        return None if self.polly_s is None else self.polly_s / self.default_s


def omp_threads() -> int:
    """The threads the kernels' OpenMP loops run on: OMP_NUM_THREADS, else (as OpenMP does)
    every core."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else (os.cpu_count() or 1)


def clang_variants(source: str, threads: int) -> tuple[dict, list[str]]:
    """The program-order loop nest built by clang-19 alone and with Polly, where Polly is
    available; a variant that fails to build is left out with a note."""
    if peers.polly_status(threads) is not None:
        return {}, []
    built, notes = {}, []
    for label, build in (("clang", peers.compile_clang),
                         ("polly", lambda s: peers.compile_polly(s, threads))):
        try:
            built[label] = build(source)
        except LoopweaveError as e:  # e.g. a clang crash on one kernel: the others go on
            notes.append(f"{label}: build failed ({str(e).splitlines()[0]}); omitted")
    return built, notes


def _timed_call(kernel, args: dict, pristine: dict):
    inouts = {k: v for k, v in args.items() if k in pristine}
    values = list(args.values())

    def call():
        for k, arr in inouts.items():
            np.copyto(arr, pristine[k])
        return kernel(*values)
    return call


def _copy(args):
    return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in args.items()}


def differences(case, variants: dict, base: str, args: dict, mod,
                sizes: dict | None = None) -> list[str]:
    """Notes for the variants whose results differ from variant `base`'s (each run on its own
    copy of `args`; tolerance: ten times the kernel's `tol_scale`), but on the outputs that
    are rounding noise at `sizes` (`Case.noise`)."""
    base_args = _copy(args)
    want_all = mod.results_of(case, base_args, variants[base](*base_args.values()))
    notes = []
    for label in [v for v in variants if v != base]:
        other_args = _copy(args)
        got = mod.results_of(case, other_args, variants[label](*other_args.values()))
        for out, want in want_all.items():
            if sizes is not None and out in case.noise_at(sizes):
                continue
            err, ok = mod.compare(np.asarray(got[out]), np.asarray(want), 10 * case.tol_scale)
            if not ok:
                notes.append(f"{label} differs from {base} on {out} by {err:g}")
    return notes


def time_variants(case, variants: dict, args: dict, repeats: int) -> dict[str, float]:
    """Median seconds per call of each variant, timed interleaved, with the `inout` arrays
    restored from a pristine copy before every call."""
    pristine = {k: args[k].copy() for k in case.inouts}
    calls = {label: _timed_call(k, _copy(args), pristine) for label, k in variants.items()}
    timings = measure(calls, repeats=repeats, min_sample_s=0.05)
    return {label: t.median for label, t in timings.items()}


def run_one(name: str, dataset: str, repeats: int, check: bool, threads: int = 1,
            polly: bool = True) -> PolyRow:
    """Build the variants of one PolyBench kernel (clang-19 and Polly too where `polly` and
    available), check them, and time them interleaved."""
    mod = load_polybench_references()
    case = POLYBENCH[name]
    source = case.source()
    variants = {"naive": peers.compile_naive(source), "default": peers.compile_default(source)}
    built, build_notes = clang_variants(source, threads) if polly else ({}, [])
    args = case.make_inputs(case.datasets[dataset], 0)
    tuned = peers.compile_tuned(source)
    if tuned is not None:
        tuned_args = _copy(args)
        tuned(*tuned_args.values())
        if peers.used_tuning_record(tuned):
            variants["tuned"] = tuned
    variants.update(built)
    notes = build_notes + (differences(case, variants, "naive", args, mod,
                                       case.datasets[dataset]) if check else [])
    t = time_variants(case, variants, args, repeats)
    return PolyRow(name, dataset, t["naive"], t["default"], t.get("tuned"), tuple(notes),
                   t.get("clang"), t.get("polly"), threads)


def run_polybench(names: list[str], dataset: str, *, repeats: int, check: bool = True,
                  progress=print, threads: int | None = None, polly: bool = True
                  ) -> list[PolyRow]:
    """Every named kernel at `dataset`; a kernel that fails to build is reported and skipped.
    threads: what the OpenMP loops run on (None: `omp_threads()`, what they do run on). It
    does not change that (OMP_NUM_THREADS does, before OpenMP loads): it says whether Polly is
    built with OpenMP loops, and the table prints it. polly: False leaves clang-19 and Polly
    out."""
    threads = omp_threads() if threads is None else threads
    rows = []
    for name in names:
        try:
            rows.append(run_one(name, dataset, repeats, check, threads, polly))
        except Exception as e:  # reported in the table's notes, the run goes on
            progress(f"polybench {name}: failed: {type(e).__name__}: {e}")
            rows.append(PolyRow(name, dataset, float("nan"), float("nan"), None,
                                (f"failed: {type(e).__name__}: {str(e).splitlines()[0]}",),
                                threads=threads))
            continue
        r = rows[-1]
        polly_ms = "" if r.polly_s is None else f", polly {r.polly_s * 1e3:9.3f} ms"
        progress(f"polybench {name:15s} {dataset}: naive {r.naive_s * 1e3:9.3f} ms, "
                 f"default {r.default_s * 1e3:9.3f} ms{polly_ms}, speedup {r.speedup:.2f}x")
    return rows


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.3f}"


def _x(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def polybench_markdown(rows: list[PolyRow]) -> str:
    """The speedup table with the geometric means (and the Polly columns where Polly was
    measured, else the reason it was not), then the published figure for context."""
    has_tuned = any(r.tuned_s is not None for r in rows)
    has_polly = any(r.polly_s is not None for r in rows)
    threads = max((r.threads for r in rows), default=1)
    head = "| kernel | dataset | naive C ms | loopweave ms | speedup |"
    rule = "|---|---|---:|---:|---:|"
    if has_tuned:
        head += " tuned ms | tuned speedup |"
        rule += "---:|---:|"
    if has_polly:
        head += " clang ms | polly ms | polly speedup | loopweave/polly |"
        rule += "---:|---:|---:|---:|"
    on = "one thread" if threads == 1 else f"{threads} OpenMP threads"
    lines = ["## PolyBench/C 4.2: loopweave (default schedule) over the naive C loop nest", "",
             "Both are the same DSL kernel (examples/polybench/); the naive side uses the "
             f"identity schedule. Both built with gcc -O3 -march=native, {on}."]
    if has_polly:
        lines.append(f"clang and polly: the naive loop nest built by {peers.POLLY_CC} "
                     f"{' '.join(peers.CLANG_CFLAGS)}, alone and with "
                     f"`{' '.join(peers.polly_cflags(threads)[len(peers.CLANG_CFLAGS):])}`; "
                     "loopweave/polly = polly ms / loopweave ms (above 1: loopweave faster).")
    lines += ["", head, rule]
    ok = [r for r in rows if r.naive_s == r.naive_s]  # not NaN
    for r in rows:
        if r.naive_s != r.naive_s:
            line = f"| {r.kernel} | {r.dataset} | - | - | - |"
        else:
            line = f"| {r.kernel} | {r.dataset} | {_ms(r.naive_s)} | {_ms(r.default_s)} | " \
                   f"{_x(r.speedup)} |"
        if has_tuned:
            line += f" {_ms(r.tuned_s)} | {_x(r.tuned_speedup)} |"
        if has_polly:
            line += (f" {_ms(r.clang_s)} | {_ms(r.polly_s)} | {_x(r.polly_speedup)} | "
                     f"{_x(r.over_polly)} |")
        lines.append(line)
    gm = geometric_mean([r.speedup for r in ok])
    lines += ["", f"**Geometric mean speedup (default schedule): {gm:.2f}x** over {len(ok)} "
              "kernels."]
    tuned = [r.tuned_speedup for r in ok if r.tuned_speedup]
    if tuned:
        lines.append(f"Geometric mean speedup (tuned, {len(tuned)} kernels): "
                     f"{geometric_mean(tuned):.2f}x.")
    with_polly = [r for r in ok if r.polly_s is not None]
    if with_polly:
        over, polly = (geometric_mean([getattr(r, a) for r in with_polly])
                       for a in ("over_polly", "polly_speedup"))
        clang = geometric_mean([r.naive_s / r.clang_s for r in with_polly if r.clang_s])
        lines.append(f"**Geometric mean loopweave/polly: {over:.2f}x**; over the naive loop "
                     f"nest, Polly {polly:.2f}x and clang alone {clang:.2f}x "
                     f"({len(with_polly)} kernels).")
    lines += ["", f"- {PUBLISHED}"]
    if not has_polly and peers.polly_status(threads) is not None:
        lines.append(f"- {peers.polly_status(threads)}")
    lines += [f"- {r.kernel}: {n}" for r in rows for n in r.notes]
    return "\n".join(lines) + "\n"
