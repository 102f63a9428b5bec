"""PolyBench/C 4.2 speedups: loopweave's default schedule (and a tuned one where the tuning
database holds a record for the kernel at the dataset's sizes) over the same DSL algorithm as a
plain C loop nest (identity schedule, gcc -O3 -march=native), with the geometric mean.

Each timed call first restores the `inout` arrays from a pristine copy (the same copy in every
implementation), so repeated calls do not run on their own output (an LU of an LU, a stencil
1000 steps on). At MEDIUM sizes the copy is far below 1% of a call. Before timing, the scheduled
kernel's results are checked against the naive loop nest's on the same inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmarks import peers
from benchmarks.harness import geometric_mean, measure
from loopweave.examples import load_polybench_references

# Published for context, not measured here.
PUBLISHED = ("LOOPer (published): 1.42x geometric mean speedup over Pluto on PolyBench "
             "(their machine, their baseline; not comparable to the figures above)")


POLYBENCH = load_polybench_references().POLYBENCH


@dataclass(frozen=True)
class PolyRow:
    """One PolyBench kernel: median seconds of each variant, and notes (check failures)."""

    kernel: str
    dataset: str
    naive_s: float
    default_s: float
    tuned_s: float | None
    notes: tuple[str, ...] = ()

    @property
    def speedup(self) -> float:
        return self.naive_s / self.default_s

    @property
    def tuned_speedup(self) -> float | None:
        return None if self.tuned_s is None else self.naive_s / self.tuned_s


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


def differences(case, variants: dict, base: str, args: dict, mod) -> list[str]:
    """Notes for the variants whose results differ from variant `base`'s (each run on its own
    copy of `args`; tolerance: ten times the kernel's `tol_scale`)."""
    base_args = _copy(args)
    want_all = mod.results_of(case, base_args, variants[base](*base_args.values()))
    notes = []
    for label in [v for v in variants if v != base]:
        other_args = _copy(args)
        got = mod.results_of(case, other_args, variants[label](*other_args.values()))
        for out, want in want_all.items():
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


def run_one(name: str, dataset: str, repeats: int, check: bool) -> PolyRow:
    """Build the variants of one PolyBench kernel, check them, and time them interleaved."""
    mod = load_polybench_references()
    case = POLYBENCH[name]
    source = case.source()
    variants = {"naive": peers.compile_naive(source), "default": peers.compile_default(source)}
    args = case.make_inputs(case.datasets[dataset], 0)
    tuned = peers.compile_tuned(source)
    if tuned is not None:
        tuned_args = _copy(args)
        tuned(*tuned_args.values())
        if peers.used_tuning_record(tuned):
            variants["tuned"] = tuned
    notes = differences(case, variants, "naive", args, mod) if check else []
    t = time_variants(case, variants, args, repeats)
    return PolyRow(name, dataset, t["naive"], t["default"], t.get("tuned"), tuple(notes))


def run_polybench(names: list[str], dataset: str, *, repeats: int, check: bool = True,
                  progress=print) -> list[PolyRow]:
    """Every named kernel at `dataset`; a kernel that fails to build is reported and skipped."""
    rows = []
    for name in names:
        try:
            rows.append(run_one(name, dataset, repeats, check))
        except Exception as e:  # reported in the table's notes, the run goes on
            progress(f"polybench {name}: failed: {type(e).__name__}: {e}")
            rows.append(PolyRow(name, dataset, float("nan"), float("nan"), None,
                                (f"failed: {type(e).__name__}: {str(e).splitlines()[0]}",)))
            continue
        r = rows[-1]
        progress(f"polybench {name:15s} {dataset}: naive {r.naive_s * 1e3:9.3f} ms, "
                 f"default {r.default_s * 1e3:9.3f} ms, speedup {r.speedup:.2f}x")
    return rows


def polybench_markdown(rows: list[PolyRow]) -> str:
    """The speedup table with the geometric mean, then the published figure for context."""
    has_tuned = any(r.tuned_s is not None for r in rows)
    head = "| kernel | dataset | naive C ms | loopweave ms | speedup |"
    rule = "|---|---|---:|---:|---:|"
    if has_tuned:
        head += " tuned ms | tuned speedup |"
        rule += "---:|---:|"
    lines = ["## PolyBench/C 4.2: loopweave (default schedule) over the naive C loop nest", "",
             "Both sides are the same DSL kernel (examples/polybench/); the naive side uses the "
             "identity schedule. Both built with gcc -O3 -march=native, one thread.", "",
             head, rule]
    ok = [r for r in rows if r.naive_s == r.naive_s]  # not NaN
    for r in rows:
        if r.naive_s != r.naive_s:
            line = f"| {r.kernel} | {r.dataset} | - | - | - |"
        else:
            line = (f"| {r.kernel} | {r.dataset} | {r.naive_s * 1e3:.3f} | "
                    f"{r.default_s * 1e3:.3f} | {r.speedup:.2f}x |")
        if has_tuned:
            line += (f" {r.tuned_s * 1e3:.3f} | {r.tuned_speedup:.2f}x |" if r.tuned_s
                     else " - | - |")
        lines.append(line)
    gm = geometric_mean([r.speedup for r in ok])
    lines += ["", f"**Geometric mean speedup (default schedule): {gm:.2f}x** over {len(ok)} "
              "kernels."]
    tuned = [r.tuned_speedup for r in ok if r.tuned_speedup]
    if tuned:
        lines.append(f"Geometric mean speedup (tuned, {len(tuned)} kernels): "
                     f"{geometric_mean(tuned):.2f}x.")
    lines += ["", f"- {PUBLISHED}"]
    lines += [f"- {r.kernel}: {n}" for r in rows for n in r.notes]
    return "\n".join(lines) + "\n"
