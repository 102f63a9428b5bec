"""How good is the cost model? Measured on kernels it was not trained on (matmul, conv2d,
softmax: benchmarks/tune_pretrain.py leaves them out of the shipped model's training).

    .venv/bin/python benchmarks/tune_model.py [--sample 64] [--trials 40] [--out benchmarks/out]
        [--large] [--models FILE ...] [--no-tune]

1. Ranking: a random sample of legal schedules of each held-out kernel (64, as the issue's
   figures ask) is measured; the shipped model ranks the same schedules. Reported: Kendall tau
   between predicted and measured times, top-1 recall (the model's first pick is the fastest
   measured), top-5 recall (the fastest measured is among the model's five first picks), and
   trials to 95% of the sample's best speed over that one pool: in the model's order, and
   expected in a random order ((n + 1) / (g + 1), `search.pool_trials_to_reach`).
   `--models`: model files in autotune/pretrained_cpu.txt's format (what tune_pretrain.py
   writes) rank the same measured pool, one row each, beside the shipped model.
2. Tuning efficiency: `tune()` model-guided and pure random, the same number of trials each,
   each into its own database; reported: trials until the best-so-far is within 95% of the best
   time either search found. Writes <out>/tune_model_<kernel>.png (best-so-far curves).
   `--no-tune` leaves it out.

`--large`: sizes of a hundred million operations and more (softmax: 2048 x 1024), where
`compile()` asks the model (`min_flops`), instead of the small ones.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = {
    "matmul": {"M": 128, "K": 128, "N": 128},
    "conv2d": {"N": 1, "C": 16, "H": 34, "W": 34, "K": 16, "R": 3, "S": 3},
    "softmax": {"N": 256, "D": 256},
}
LARGE_SIZES = {
    "matmul": {"M": 512, "K": 512, "N": 512},
    "conv2d": {"N": 1, "C": 64, "H": 58, "W": 58, "K": 64, "R": 3, "S": 3},
    "softmax": {"N": 2048, "D": 1024},
}


def load_model(path: str | None):
    """The shipped model (None), or one from a file `tune_pretrain.py --out` wrote."""
    from loopweave.autotune.features import FEATURE_VERSION
    from loopweave.autotune.model import CostModel

    if path is None:
        return CostModel.pretrained()
    model = CostModel.pretrained(Path(path))
    if model is None:
        raise SystemExit(f"{path}: not a model of feature version {FEATURE_VERSION}")
    return model


def ranking(name: str, sizes: dict, sample: int, workdir: Path,
            models: dict) -> list[dict]:
    """Kendall tau and top-k recall of each of `models` (name -> model) on the same
    `sample` random schedules, measured once."""
    from loopweave.autotune.executors import LocalExecutor
    from loopweave.autotune.features import features
    from loopweave.autotune.measure import Candidate, make_problem
    from loopweave.autotune.model import kendall_tau
    from loopweave.autotune.search import pool_trials_to_reach
    from loopweave.autotune.space import SearchSpace
    from loopweave.driver import front_end
    from loopweave.examples import load_references
    from loopweave.ir.codegen import loop_ast
    from loopweave.pipeline import get_target, scheduled_default

    source = load_references().KERNELS[name].source()
    ir = front_end(source)
    space = SearchSpace(ir, sizes, get_target("cpu"))
    seen, candidates = set(), []
    for config in space.sample_legal(random.Random(7), sample * 2):
        schedule, options = space.decode(config)
        if schedule.to_json() not in seen and len(candidates) < sample:
            seen.add(schedule.to_json())
            candidates.append(Candidate(schedule.to_json(), options, config, "random"))
    problem = make_problem(source, sizes, "cpu", workdir, timeout_s=10.0, repeats=3)
    executor = LocalExecutor()
    try:
        measured = [(c, o) for c, o in executor.run(problem, candidates) if o.status == "ok"]
    finally:
        executor.close()
    default = scheduled_default(ir, get_target("cpu"), sizes)  # what predictions are relative to
    reference = features(default, loop_ast(default), sizes)
    times = [o.median_s for _, o in measured]
    fastest = min(range(len(times)), key=times.__getitem__)
    rows = []
    for model_name, model in models.items():
        predicted = model.predict([list(o.features) for _, o in measured], reference)
        order = sorted(range(len(times)), key=lambda i: predicted[i])
        model_trials, random_trials = pool_trials_to_reach(times, order, 0.95)
        rows.append({"kernel": name, "model": model_name, "measured": len(times),
                     "kendall_tau": kendall_tau(predicted, times),
                     "top1": int(order[0] == fastest), "top5": int(fastest in order[:5]),
                     "model_pick_vs_best": times[order[0]] / times[fastest],
                     "pool_model_to95": model_trials, "pool_random_to95": random_trials})
    return rows


def efficiency(name: str, sizes: dict, trials: int, out: Path) -> dict:
    """Trials to 95% of the best, model-guided against random, and a plot of both."""
    from loopweave.autotune import tune
    from loopweave.autotune.cli import plot_best_so_far
    from loopweave.autotune.search import trials_to_reach
    from loopweave.examples import load_references

    source = load_references().KERNELS[name].source()
    runs, curves = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for strategy in ("model", "random"):
            start = time.time()
            r = tune(source, sizes, trials=trials, db=Path(tmp) / f"{strategy}.sqlite",
                     strategy=strategy, seed=3, progress=False, repeats=3, workdir=tmp)
            runs[strategy] = (r, time.time() - start)
            curves["model-guided" if strategy == "model" else "random"] = \
                [t for _, t, _ in r.history]
    best = min(r.best_time for r, _ in runs.values() if r.best_time)
    plot_best_so_far(curves, out / f"tune_model_{name}.png", f"{name} {sizes}",
                     runs["model"][0].flops)
    row = {"kernel": name, "trials": trials}
    for strategy, (r, seconds) in runs.items():
        row[f"{strategy}_to95"] = trials_to_reach(r.history, 0.95, best)
        row[f"{strategy}_best_gflops"] = r.gflops
        row[f"{strategy}_seconds"] = seconds
    return row


def main(argv=None) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=64)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--kernels", nargs="*", default=list(SIZES))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out"))
    parser.add_argument("--large", action="store_true", help="compile()'s sizes (LARGE_SIZES)")
    parser.add_argument("--models", nargs="*", default=[],
                        help="model files to rank with too, beside the shipped model")
    parser.add_argument("--no-tune", action="store_true", help="only the ranking (part 1)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = LARGE_SIZES if args.large else SIZES
    models = {"shipped": load_model(None)} | {Path(m).name: load_model(m) for m in args.models}
    models = {name: m for name, m in models.items() if m is not None}  # a stale shipped model
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.kernels:
            ranked = ranking(name, table[name], args.sample, Path(tmp), models)
            eff = {} if args.no_tune else efficiency(name, table[name], args.trials, out)
            rows += [{**rank, **eff} for rank in ranked]
            for row in rows[-len(ranked):]:
                print(json.dumps(row), flush=True)
    print("\n| kernel | sizes | model | measured | Kendall tau | top-1 | top-5 | "
          "model pick / best | pool trials to 95%: model | random (expected) | "
          "tune() trials to 95%: model | random | best GFLOP/s: model | random |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        tuned = (f"{r['model_to95']} | {r['random_to95']} | {r['model_best_gflops']:.2f} | "
                 f"{r['random_best_gflops']:.2f}" if "model_to95" in r else "- | - | - | -")
        print(f"| {r['kernel']} | {table[r['kernel']]} | {r['model']} | {r['measured']} | "
              f"{r['kendall_tau']:.2f} | {r['top1']} | {r['top5']} | "
              f"{r['model_pick_vs_best']:.2f} | {r['pool_model_to95']} | "
              f"{r['pool_random_to95']:.1f} | {tuned} |")
    (out / "tune_model.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
