"""PolyBench with the cost model choosing the schedule inside compile(), against the default
schedule and against the best of the candidates the model ranked (measured).

    python -m benchmarks.model_choice                          # SMALL, every kernel
    python -m benchmarks.model_choice --dataset MEDIUM --neighbours 8 gemm lu

For each kernel, `compile(source, tuning_db=False, cost_model={...})` ranks the default schedule
and `--neighbours` neighbours of it (the tuning space's seeds first, which include isl's own
scheduler, then single-knob changes) by the model's prediction and builds the one predicted
fastest when it beats the default by the margin (autotune/chooser.ModelChooser). Then every ranked
candidate is built and timed interleaved with the default and program order (gcc -O3
-march=native, benchmarks/polybench.time_variants), and checked against program order. Columns:
the model's pick over the default (the issue's number), the best measured candidate over the
default (what a perfect model would give), Kendall tau between predicted and measured times of
the candidates, the seconds of compile() and its first call (the build and the ranking), and
the seconds ranking every candidate takes (compile() stops at its budget).

The PolyBench kernels are not in the model's training set (examples/kernels are), so this is
the model on kernels it never saw.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
import warnings
from pathlib import Path

from benchmarks import peers
from benchmarks.harness import geometric_mean
from benchmarks.polybench import differences, time_variants
from loopweave.autotune.chooser import (
    CostModelSettings,
    ModelChooser,
    predictions,
    similar_records,
)
from loopweave.autotune.model import kendall_tau, load_model, model_source
from loopweave.errors import LoopweaveError
from loopweave.examples import load_polybench_references
from loopweave.pipeline import front_end, get_target

log = logging.getLogger("benchmarks.model_choice")


def ranked_candidates(source: str, sizes: dict, settings: CostModelSettings,
                      db: Path | None = None):
    """[(candidate, predicted)] as the chooser ranks them in compile() (same candidates, same
    seed-independent order; the default first), with the records of `db` at other sizes."""
    kernel = front_end(source)
    target = get_target("cpu")
    model = load_model(*model_source(None, target))
    chooser = ModelChooser(settings, db, persist=False)
    records = similar_records(db, kernel, sizes, target, settings.similar) if db else []
    rows = []
    seen = set()
    for cand in chooser.candidates(kernel, sizes, target, records, random.Random(0)):
        try:
            row = chooser.features_of(kernel, sizes, target, cand, seen, False)
        except LoopweaveError:
            continue
        if row is not None:  # schedule None: the default, as compile() builds it
            rows.append((cand, cand.schedule, row))
    predicted = predictions(model, [(c, f) for c, _, f in rows])  # rows[0]: the default
    return [(c, s, float(p), f) for (c, s, f), p in zip(rows, predicted, strict=True)]


def run_one(name: str, dataset: str, settings: CostModelSettings, repeats: int,
            db: Path | None = None, program_order: bool = True) -> dict:
    """Times (seconds) of program order (unless told not: at LARGE it takes minutes), the
    default, compile()'s model choice and every ranked candidate; the predictions; the
    ranking time; check notes (against program order, else the default)."""
    poly = load_polybench_references()
    case = poly.POLYBENCH[name]
    source = case.source()
    sizes = dict(case.datasets[dataset])
    args = case.make_inputs(sizes, 0)
    start = time.perf_counter()
    model_kernel = peers.loopweave.compile(source, tuning_db=db or False, cache=False,
                                           cost_model=vars(settings))
    model_kernel(*(a.copy() for a in args.values()))  # the choice is made here
    choose_s = time.perf_counter() - start
    choice = next(iter(model_kernel.invoke.records.values()), None)
    start = time.perf_counter()
    ranked = ranked_candidates(source, sizes, settings, db)
    rank_s = time.perf_counter() - start
    variants = {"program order": peers.compile_naive(source)} if program_order else {}
    variants |= {"default": peers.compile_default(source), "model": model_kernel}
    for i, (cand, schedule, _, _) in enumerate(ranked[1:], 1):
        try:
            variants[f"c{i}"] = peers.loopweave.compile(source, schedule=schedule,
                                                        tuning_db=False, **cand.options)
        except LoopweaveError as e:
            print(f"{name}: candidate {i} ({cand.origin}) does not build: {e}", file=sys.stderr)
    notes = differences(case, variants, "program order" if program_order else "default", args,
                        poly, sizes)
    times = time_variants(case, variants, args, repeats)
    cand_times = [times["default"]] + [times.get(f"c{i}") for i in range(1, len(ranked))]
    measured = [(p, t) for (_, _, p, _), t in zip(ranked, cand_times, strict=True) if t]
    return {"times": times, "ranked": [r[:3] for r in ranked], "cand_times": cand_times,
            "features": [r[3] for r in ranked], "choice": choice,
            "choose_s": choose_s, "rank_s": rank_s, "notes": notes,
            "tau": kendall_tau(*zip(*measured, strict=True)) if len(measured) > 2 else float("nan")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kernels", nargs="*", help="PolyBench kernels (default: all 30)")
    parser.add_argument("--dataset", default="SMALL",
                        choices=("MINI", "SMALL", "MEDIUM", "LARGE"))
    parser.add_argument("--neighbours", type=int, default=8)
    parser.add_argument("--budget", type=float, default=1.0, help="compile()'s ranking budget")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--db", help="a tuning database: its records of the kernels at other "
                        "sizes are candidates (nearest-record reuse)")
    parser.add_argument("--no-program-order", action="store_true",
                        help="do not time program order (minutes per kernel at LARGE)")
    parser.add_argument("--json", help="write every kernel's candidates (origin, features, "
                        "prediction, measured seconds) here, for benchmarks/tune_objectives.py "
                        "--candidates")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    settings = CostModelSettings(budget_s=args.budget, neighbours=args.neighbours, min_flops=0)
    names = args.kernels or list(load_polybench_references().POLYBENCH)
    print(f"PolyBench {args.dataset}: the shipped cost model choosing in compile() "
          f"(neighbours {args.neighbours}, budget {args.budget} s, margin {settings.margin}"
          + (f", records of other sizes from {args.db}" if args.db else "") + ")")
    print("| kernel | program ms | default ms | model ms | model/default | best/default "
          "| candidates | tau | model pick | compile s | rank s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    model_x, best_x, taus, seconds, ranks = [], [], [], [], []
    saved = {}
    for name in names:
        try:
            r = run_one(name, args.dataset, settings, args.repeats,
                        Path(args.db) if args.db else None, not args.no_program_order)
        except Exception as e:  # one kernel must not stop the table
            print(f"| {name} | failed: {type(e).__name__}: {str(e).splitlines()[0]} |")
            continue
        t = r["times"]
        saved[name] = [{"origin": c.origin, "features": f, "predicted": p, "seconds": s}
                       for (c, _, p), f, s in zip(r["ranked"], r["features"], r["cand_times"],
                                                  strict=True)]
        best = min(x for x in r["cand_times"] if x)
        mx, bx = t["default"] / t["model"], t["default"] / best
        model_x.append(mx)
        best_x.append(bx)
        seconds.append(r["choose_s"])
        ranks.append(r["rank_s"])
        if r["tau"] == r["tau"]:
            taus.append(r["tau"])
        pick = r["choice"].origin if r["choice"] is not None else "default"
        program = f"{t['program order'] * 1e3:.3f}" if "program order" in t else "-"
        print(f"| {name} | {program} | {t['default'] * 1e3:.3f} | "
              f"{t['model'] * 1e3:.3f} | {mx:.2f}x | {bx:.2f}x | {len(r['ranked'])} | "
              f"{r['tau']:.2f} | {pick} | {r['choose_s']:.2f} | {r['rank_s']:.2f} |"
              + ("".join(f" {n};" for n in r["notes"])), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"dataset": args.dataset, "kernels": saved}))
    if model_x:
        print(f"| geomean | | | | {geometric_mean(model_x):.2f}x | "
              f"{geometric_mean(best_x):.2f}x | | {sum(taus) / max(len(taus), 1):.2f} (mean) | "
              f"| {max(seconds):.2f} (max) | {max(ranks):.2f} (max) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
