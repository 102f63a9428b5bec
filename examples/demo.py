"""Compile every kernel in examples/kernels for the host CPU and check it against numpy.

Usage: python examples/demo.py [KERNEL ...] [--small] [--repeat N] [-v]

For each kernel: random inputs at moderate sizes (the `demo_sizes` of examples/references/, or
its first test sizes with --small), one checked call, then the best of N timed calls of the
compiled kernel and of the numpy reference. Prints one row per kernel and exits with status 1 if
any kernel fails to compile, crashes or disagrees with the reference.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback

import numpy as np
import references as refs

import loopweave


def _best_time(fn, make_args, repeat: int) -> float:
    """Best wall time of `fn(args)` over `repeat` calls, each on fresh `args = make_args()`."""
    best = float("inf")
    for _ in range(repeat):
        args = make_args()
        t0 = time.perf_counter()
        fn(args)
        best = min(best, time.perf_counter() - t0)
    return best


def _fmt_time(t: float) -> str:
    if t != t or t == float("inf"):  # NaN or never measured
        return "-"
    if t < 1e-3:
        return f"{t * 1e6:.0f} us"
    if t < 1.0:
        return f"{t * 1e3:.2f} ms"
    return f"{t:.2f} s"


def run_one(case, sizes: dict[str, int], repeat: int) -> tuple[float, bool, float, float, str]:
    """Compile, check and time one kernel; returns (max error, ok, our time, numpy time, note)."""
    kernel = loopweave.compile(case.source(), target="cpu", kernel=case.name)
    args = case.make_inputs(sizes, 0)

    def fresh():
        return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in args.items()}

    expected = case.expected(args)
    call_args = fresh()
    got = refs.results_of(case, call_args, kernel(*call_args.values()))
    err, ok, notes = 0.0, True, []
    for name, want in expected.items():
        value = np.asarray(got[name])
        if value.dtype != want.dtype:
            ok = False
            notes.append(f"{name}: dtype {value.dtype}, want {want.dtype}")
        e, good = refs.compare(value, want, case.tol_scale)
        err, ok = max(err, e), ok and good
        if not good:
            notes.append(f"{name} mismatch")
    ours = _best_time(lambda a: kernel(*a.values()), fresh, repeat)
    ref = _best_time(lambda a: case.reference(**a), fresh, repeat)
    return err, ok, ours, ref, "; ".join(notes)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kernels", nargs="*", help="kernel names (default: all)")
    parser.add_argument("--small", action="store_true", help="use the small test sizes")
    parser.add_argument("--repeat", type=int, default=3, help="timed calls per kernel")
    parser.add_argument("-v", "--verbose", action="store_true", help="print tracebacks")
    opts = parser.parse_args(argv)

    names = [p.stem for p in refs.kernel_files()]
    unknown = [n for n in opts.kernels if n not in names]
    if unknown:
        parser.error(f"unknown kernels: {', '.join(unknown)} (have: {', '.join(names)})")
    names = opts.kernels or names

    header = f"{'kernel':<12} {'sizes':<40} {'max abs err':>11}  {'ok':<4} {'ours':>9} {'numpy':>9}"
    print(header)
    print("-" * len(header))
    failures = 0
    for name in names:
        case = refs.KERNELS.get(name)
        if case is None:
            print(f"{name:<12} (no reference in examples/references/)")
            failures += 1
            continue
        sizes = case.sizes[0] if opts.small else case.demo_sizes
        size_text = " ".join(f"{k}={v}" for k, v in sizes.items())
        try:
            err, ok, ours, ref, note = run_one(case, sizes, max(1, opts.repeat))
        except Exception as e:  # report and go on with the other kernels
            failures += 1
            print(f"{name:<12} {size_text:<40} {'-':>11}  {'FAIL':<4} {'-':>9} {'-':>9}  "
                  f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            if opts.verbose:
                traceback.print_exc()
            continue
        failures += not ok
        print(f"{name:<12} {size_text:<40} {err:>11.2e}  {'ok' if ok else 'FAIL':<4} "
              f"{_fmt_time(ours):>9} {_fmt_time(ref):>9}  {note}".rstrip())
    print("-" * len(header))
    print(f"{len(names) - failures}/{len(names)} kernels ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
