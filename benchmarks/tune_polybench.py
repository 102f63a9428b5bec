"""Tune every PolyBench kernel at one dataset and print how much faster the best record is
than the default schedule's record of the same sweep (what tuning can gain there).

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.tune_polybench --dataset MEDIUM \
        --trials 16 --db benchmarks/out/polybench_medium.sqlite [kernels]

Random search (`tune(strategy="random")`), `repeats=3`; the first trials of each key are
program order, the default schedule (built as compile() builds it at those sizes) and the
generators' seeds. The database then serves `benchmarks/model_choice.py --db`, where the
records become candidates of the cost model at other sizes (nearest-record reuse).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

from benchmarks.harness import geometric_mean


def best_over_default(db: str, key: str) -> tuple[int, float | None, float | None]:
    """(correct records, the default's seconds, the best's seconds) of one key."""
    from loopweave.autotune.database import Database

    with Database(db) as database:
        ok = database.records(key, status="ok")
    default = next((r.median_s for r in ok if r.is_default), None)
    return len(ok), default, min((r.median_s for r in ok), default=None)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kernels", nargs="*", help="PolyBench kernels (default: all 30)")
    parser.add_argument("--dataset", default="MEDIUM", choices=("MINI", "SMALL", "MEDIUM"))
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--db", default="benchmarks/out/polybench.sqlite")
    args = parser.parse_args(argv)

    import loopweave
    from loopweave.examples import load_polybench_references

    cases = load_polybench_references().POLYBENCH
    print(f"PolyBench {args.dataset}, {args.trials} random trials per kernel, one thread "
          f"(OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}), database {args.db}")
    print("| kernel | correct records | default ms | best ms | best/default | seconds |")
    print("|---|---:|---:|---:|---:|---:|")
    gains = []
    for name in args.kernels or list(cases):
        case = cases[name]
        start = time.perf_counter()
        try:
            result = loopweave.tune(case.source(), case.datasets[args.dataset],
                                    trials=args.trials, db=args.db, strategy="random",
                                    repeats=3, progress=False, timeout_s=30)
        except loopweave.LoopweaveError as e:
            print(f"| {name} | failed: {str(e).splitlines()[0]} |")
            continue
        n, default, best = best_over_default(args.db, result.key)
        seconds = time.perf_counter() - start
        if default is None or best is None:
            print(f"| {name} | {n} | - | - | - (the default's record is not correct or "
                  f"noisy) | {seconds:.0f} |")
            continue
        gains.append(default / best)
        print(f"| {name} | {n} | {default * 1e3:.3f} | {best * 1e3:.3f} | "
              f"{default / best:.2f}x | {seconds:.0f} |", flush=True)
    if gains:
        print(f"| geomean ({len(gains)} kernels) | | | | {geometric_mean(gains):.2f}x | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
