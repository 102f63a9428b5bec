"""Regenerate the cost model shipped for the host CPU (autotune/pretrained_cpu.txt).

    .venv/bin/python benchmarks/tune_pretrain.py [--trials 40] [--db benchmarks/out/pretrain.sqlite]
        [--kernels NAME ...] [--budget SECONDS] [--train-only]

Random sweeps of the example kernels (examples/kernels/*.lw) at half their demo sizes, one
thread, every measurement into the database; then a LightGBM model is fitted on every correct
record of the current feature version but those of the held-out kernels of the model report
(benchmarks/tune_model.py: matmul, conv2d, softmax), so that report measures the model on
kernels it has not seen (their records may be in the database: `loopweave model eval` and
benchmarks/tune_features_ab.py use them), and written to autotune/pretrained_cpu.txt.
Re-running adds to the database (the sweeps continue); `--train-only` only fits.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HELD_OUT = ("matmul", "conv2d", "softmax")


def training_sizes(case) -> dict[str, int]:
    """Half the demo sizes (at least 4), so that one call takes about a millisecond."""
    return {k: max(4, v // 2) if k != "T" else max(1, v // 4) for k, v in case.demo_sizes.items()}


def main(argv=None) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40, help="measurements per kernel")
    parser.add_argument("--db", default=str(ROOT / "benchmarks" / "out" / "pretrain.sqlite"))
    parser.add_argument("--kernels", nargs="*", help="default: every example kernel but the "
                        "held-out ones")
    parser.add_argument("--budget", type=float, default=1e9, help="stop starting sweeps after "
                        "this many seconds")
    parser.add_argument("--train-only", action="store_true", help="fit on the database as it is")
    args = parser.parse_args(argv)

    from loopweave.autotune import Database, tune
    from loopweave.autotune.model import CostModel
    from loopweave.examples import load_references

    cases = load_references().KERNELS
    names = [] if args.train_only else args.kernels or [n for n in cases if n not in HELD_OUT]
    start = time.time()
    for name in names:
        if time.time() - start > args.budget:
            print(f"budget spent; skipping {name} and the rest", file=sys.stderr)
            break
        case = cases[name]
        try:
            r = tune(case.source(), training_sizes(case), trials=args.trials, db=args.db,
                     strategy="random", timeout_s=5.0, repeats=3, progress=False)
        except Exception as e:  # one kernel the tuner cannot handle must not stop the rest
            print(f"{name}: {type(e).__name__}: {e}", file=sys.stderr)
            continue
        best = f"{r.best.median_s * 1e3:.3g} ms" if r.best else "none correct"
        print(f"{name:12s} {training_sizes(case)}: {len(r.measured)} new, best {best}",
              flush=True)
    with Database(args.db) as db:
        records = [r for r in db.records(status="ok") if r.kernel_name not in HELD_OUT]
    model = CostModel.fit(records)
    if not model.trained:
        print(f"too few correct records ({len(records)}) to train", file=sys.stderr)
        return 1
    model.save_pretrained()
    print(f"trained on {model.records} records of {len({r.key for r in records})} kernel keys; "
          f"wrote autotune/pretrained_cpu.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
