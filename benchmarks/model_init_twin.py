"""The cost model on two matmul schedules that differ only in the initialisation `C = 0`.

    .venv/bin/python benchmarks/model_init_twin.py [--size 480] [--old-rev 251d96a]

The default schedule of matmul, and the same schedule without its steps on the initialisation
statement S0 (its parallel and vector marks): one store per element of C, against 2K
operations per element in the contraction, so both take the same time. Printed: each one's
measured time (median of 9 calls, OMP_NUM_THREADS as set), and the shipped model's predicted
slowdown of each (exp of its prediction) with the current features and model, and with those
of `--old-rev` (its autotune/features.py and pretrained_cpu.txt, read from git).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def twins(ir):
    """(default schedule, the same without its steps on S0)."""
    from loopweave.passes.schedule import Schedule
    from loopweave.pipeline import default_schedule, get_target

    default = default_schedule(ir, get_target("cpu"))
    steps = json.loads(default.to_json())
    return default, Schedule.from_json(json.dumps([s for s in steps if s["target"] != "S0"]))


def measure(source: str, schedule, n: int) -> float:
    """Median seconds of a call at n^3 (checked against numpy)."""
    import loopweave

    kernel = loopweave.compile(source, schedule=schedule, tuning_db=False, cost_model="off")
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    np.testing.assert_allclose(kernel(a, b), a @ b, rtol=1e-3)
    times = []
    for _ in range(9):
        start = time.perf_counter()
        kernel(a, b)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=480)
    parser.add_argument("--old-rev", default="251d96a")
    args = parser.parse_args(argv)

    from loopweave.autotune.features import features
    from loopweave.autotune.model import CostModel
    from loopweave.ir.codegen import loop_ast
    from loopweave.pipeline import apply_schedule, front_end

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from tune_features_ab import old_model_text, old_module

    source = (ROOT / "examples" / "kernels" / "matmul.lw").read_text()
    ir = front_end(source)
    sizes = {"M": args.size, "K": args.size, "N": args.size}
    pair = twins(ir)
    old = old_module(args.old_rev)
    models = {"old": (old.features, CostModel.from_text(old_model_text(args.old_rev))),
              "new": (features, CostModel.pretrained())}
    print(f"matmul {args.size}^3; old = features and shipped model of {args.old_rev}")
    print("| schedule | measured ms | old: predicted slowdown | new: predicted slowdown |")
    print("|---|---|---|---|")
    predicted = {}
    for name, (extract, model) in models.items():
        rows = []
        for schedule in pair:
            scheduled = apply_schedule(ir, schedule)
            rows.append(extract(scheduled, loop_ast(scheduled), sizes))
        if model is None or not model.trained:
            predicted[name] = [math.nan] * 2
            continue
        # the old revision's model reads the rows alone; the current one them and their
        # difference from the default's (rows[0])
        values = (model.booster.predict(np.array(rows)) if name == "old"
                  else model.predict(rows, rows[0]))
        predicted[name] = [math.exp(p) for p in values]
    for i, label in enumerate(("default", "default without S0's steps")):
        ms = measure(source, pair[i], args.size) * 1e3
        print(f"| {label} | {ms:.2f} | {predicted['old'][i]:.2f} | {predicted['new'][i]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
