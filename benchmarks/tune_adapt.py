"""How many measurements does the shipped cost model need to learn a new machine?

    .venv/bin/python benchmarks/tune_adapt.py --collect [--db benchmarks/out/adapt.sqlite]
        [--cflags "-O3 -march=x86-64-v2"] [--trials 20]
    .venv/bin/python benchmarks/tune_adapt.py [--db benchmarks/out/adapt.sqlite]
        [--samples 0 8 16 32 64 128] [--draws 5]

`--collect` measures random schedules of a few example kernels, one thread, on "another
machine": this one with other compiler flags (by default no AVX, as an older x86 machine), so
the times are not those the shipped model learned. Then, for each sample count k, `--draws`
times: k of the records of the adaptation kernels (whole sweeps of up to 8 trials of a random
kernel at a time, as a user who tuned one or two kernels has them) adapt the shipped model
(`CostModel.adapt`, what `loopweave model train --adapt` does), and a model is trained on the
same k records alone (`CostModel.fit`, 16 records at least); both rank every key of the
evaluation kernels, which they never saw. Reported: the mean Kendall tau and top-1 regret over
draws, and the fewest samples after which the adapted model keeps a tau within 0.05 of the
model adapted on every adaptation record.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVALUATION = ("matmul", "conv2d", "softmax")  # what tune_pretrain.py holds out too
ADAPTATION = ("gemm", "bmm", "two_mm", "layernorm", "rmsnorm_gelu", "depthwise_conv2d", "trmm",
              "jacobi_2d")
SWEEP = 8  # records a drawn kernel contributes at a time


def collect(db: str, cflags: str, trials: int) -> None:
    """Random sweeps of the evaluation and adaptation kernels at tune_pretrain's sizes."""
    from loopweave.autotune import tune
    from loopweave.examples import load_references

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from tune_pretrain import training_sizes

    cases = load_references().KERNELS
    for name in EVALUATION + ADAPTATION:
        sizes = training_sizes(cases[name])
        try:
            r = tune(cases[name].source(), sizes, trials=trials, db=db, cflags=cflags,
                     strategy="random", timeout_s=5.0, repeats=3, progress=False)
        except Exception as e:  # one kernel the tuner cannot handle must not stop the rest
            print(f"{name}: {type(e).__name__}: {e}", file=sys.stderr)
            continue
        print(f"{name:18s} {sizes}: {len(r.measured)} new", flush=True)


def draw(groups: dict, k: int, rng: random.Random) -> list:
    """k records: sweeps of up to SWEEP records of randomly drawn keys."""
    keys = list(groups)
    rng.shuffle(keys)
    picked: list = []
    while len(picked) < k and keys:
        rows = list(groups[keys.pop()])
        rng.shuffle(rows)
        picked += rows[:min(SWEEP, k - len(picked))]
    if len(picked) < k:  # every key drawn once: the rest from what is left
        rest = [r for rows in groups.values() for r in rows if r not in picked]
        picked += rng.sample(rest, min(k - len(picked), len(rest)))
    return picked


def scores(model, held: list) -> tuple[float, float]:
    """Mean Kendall tau and top-1 regret of `model` over the held-out keys."""
    from loopweave.autotune.model import score_key

    s = [score_key(model, rows) for rows in held]
    return sum(x.tau for x in s) / len(s), sum(x.regret for x in s) / len(s)


def evaluate(db: str, samples: list[int], draws: int) -> int:
    from loopweave.autotune.database import Database
    from loopweave.autotune.model import MIN_RECORDS, CostModel, key_groups

    with Database(db, create=False) as database:
        groups = key_groups(database.records(status="ok"))
    held = [rows for rows in groups.values() if rows[0].kernel_name in EVALUATION]
    pool = {k: rows for k, rows in groups.items() if rows[0].kernel_name in ADAPTATION}
    shipped = CostModel.pretrained()
    if not held or not pool or shipped is None:
        print("no evaluation keys, adaptation records or shipped model", file=sys.stderr)
        return 1
    everything = [r for rows in pool.values() for r in rows]
    ceiling = scores(CostModel.adapt(shipped, everything), held)
    print(f"{len(held)} evaluation keys ({sum(map(len, held))} records), {len(pool)} "
          f"adaptation keys ({len(everything)} records); adapted on all of them: tau "
          f"{ceiling[0]:.2f}, regret {ceiling[1]:.1%}; trained on all of them alone: tau "
          f"{scores(CostModel.fit(everything), held)[0]:.2f}\n")
    print("| samples | adapted: tau | adapted: regret | trained alone: tau | "
          "trained alone: regret |")
    print("|---|---|---|---|---|")
    enough = None
    for k in samples:
        adapted, alone = [], []
        for d in range(draws):
            picked = draw(pool, k, random.Random(1000 * k + d))
            adapted.append(scores(CostModel.adapt(shipped, picked), held))
            if len(picked) >= MIN_RECORDS:
                alone.append(scores(CostModel.fit(picked), held))
        tau = sum(a[0] for a in adapted) / draws
        regret = sum(a[1] for a in adapted) / draws
        alone_text = (f"{sum(a[0] for a in alone) / len(alone):.2f} | "
                      f"{sum(a[1] for a in alone) / len(alone):.1%}" if alone else "- | -")
        print(f"| {k} | {tau:.2f} | {regret:.1%} | {alone_text} |")
        if enough is None and tau >= ceiling[0] - 0.05:
            enough = k
        elif tau < ceiling[0] - 0.05:
            enough = None
    print(f"\nsamples to come within 0.05 of the tau adapted on every record (and stay): "
          f"{enough if enough is not None else 'more than ' + str(samples[-1])}")
    return 0


def main(argv=None) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=str(ROOT / "benchmarks" / "out" / "adapt.sqlite"))
    parser.add_argument("--collect", action="store_true")
    parser.add_argument("--cflags", default="-O3 -march=x86-64-v2")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--samples", type=int, nargs="*", default=[0, 8, 16, 32, 64, 128])
    parser.add_argument("--draws", type=int, default=5)
    args = parser.parse_args(argv)
    if args.collect:
        collect(args.db, args.cflags, args.trials)
        return 0
    return evaluate(args.db, args.samples, args.draws)


if __name__ == "__main__":
    sys.exit(main())
