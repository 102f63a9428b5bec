"""How the cost model should learn: training objectives and default-relative features, each
scored leaving one kernel family out, on the records of a tuning database.

    .venv/bin/python -m benchmarks.tune_objectives [--db benchmarks/out/pretrain.sqlite]
        [--candidates benchmarks/out/model_choice.json] [--variants V ...] [--drop PREFIX ...]

For each family of benchmarks/tune_features_ab.FAMILIES a model is trained on the records of
every other kernel (the other families, the example kernels in no family and the fuzzer's
random kernels `fz*` and row-wise kernels `rows*` of benchmarks/tune_pretrain.py --random and
--rows, less those `--drop` names) and ranks each key of the held-out
family; the table gives the mean Kendall tau and the mean top-1 regret (the model's first pick's
time over the best time, minus one) per family and variant:
    regression   LightGBM regression on log(time / the key's best time) (the shipped model)
    lambdarank   LightGBM lambdarank, one query per key, relevance from the speed relative to
                 the key's best (0..15)
    xendcg       LightGBM rank_xendcg, the same queries and relevance
    +rel         the same, each row extended with its difference from the key's default
                 schedule (what compile() and a sweep always rank first)
With `--candidates` (what benchmarks/model_choice.py --json measured: PolyBench kernels, never
in the training set, each with the candidates compile() ranks), each variant is also trained on
every record and picks among each kernel's candidates: the table gives the geomean speedup of
its pick over the default (regression variants keep the default unless the pick is predicted
10% faster, compile()'s margin; ranking variants have no time scale and take their top pick),
mean tau and regret.

    vsdefault    regression on log(time / the key's default schedule's time): the prediction
                 is the slowdown against the default, what compile()'s margin rule asks
    rankorder    lambdarank with relevance from each record's place in its key's order
                 (fastest 15, slowest 0, evenly between): every pair counts, as in Kendall tau
    ranklog      lambdarank with relevance from log(time / best) spread over the key's range
                 (a key whose records span 4x and one spanning 100x each use every level)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np

from benchmarks.tune_features_ab import FAMILIES

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("regression", "lambdarank", "xendcg", "regression+rel", "lambdarank+rel",
            "xendcg+rel", "vsdefault+rel", "rankorder+rel", "ranklog+rel")


def reference(rows):
    """The key's default-schedule record (else its first record): model.reference_record."""
    from loopweave.autotune.model import reference_record

    return reference_record(rows)


def matrix(rows, relative: bool) -> np.ndarray:
    """The rows' features, and with `relative` their differences from the reference's
    (model.model_input, what the shipped model reads)."""
    from loopweave.autotune.model import model_input

    features = [json.loads(r.features) for r in rows]
    if relative:
        return model_input(features, json.loads(reference(rows).features))
    return np.array(features, dtype=np.float64)


def relevance(objective: str, times: list[float]) -> list[int]:
    """The ranking label of each time of one key (0..RELEVANCE_LEVELS, higher is faster)."""
    from loopweave.autotune.model import RELEVANCE_LEVELS as top

    best, worst = min(times), max(times)
    if objective == "rankorder":
        order = sorted(range(len(times)), key=times.__getitem__)
        place = {i: k for k, i in enumerate(order)}
        return [round(top * (1 - place[i] / max(len(times) - 1, 1))) for i in range(len(times))]
    if objective == "ranklog":
        span = math.log(worst / best) or 1.0
        return [round(top * (1 - math.log(t / best) / span)) for t in times]
    return [round(top * best / t) for t in times]


def fit(groups: list[list], variant: str):
    """A LightGBM booster for `variant` on the record groups (one group per key); its
    predictions are 'lower is faster' for every variant."""
    import lightgbm

    from loopweave.autotune.model import _PARAMS, _ROUNDS, RELEVANCE_LEVELS

    objective, _, rel = variant.partition("+")
    xs, ys, sizes = [], [], []
    for rows in groups:
        best = min(r.median_s for r in rows)
        xs.append(matrix(rows, bool(rel)))
        if objective == "regression":
            ys.append([math.log(r.median_s / best) for r in rows])
        elif objective == "vsdefault":
            ys.append([math.log(r.median_s / reference(rows).median_s) for r in rows])
        else:
            ys.append(relevance(objective, [r.median_s for r in rows]))
        sizes.append(len(rows))
    regression = objective in ("regression", "vsdefault")
    params = {**_PARAMS, "objective": "regression" if regression else
              "rank_xendcg" if objective == "xendcg" else "lambdarank"}
    data = lightgbm.Dataset(np.vstack(xs), np.concatenate(ys))
    if not regression:
        params["label_gain"] = list(range(RELEVANCE_LEVELS + 1))
        data.set_group(sizes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        booster = lightgbm.train(params, data, num_boost_round=_ROUNDS)
    sign = 1.0 if regression else -1.0
    return lambda rows: sign * booster.predict(matrix(rows, bool(rel)))


def score(predict, rows) -> tuple[float, float, int, float]:
    """Kendall tau, top-1 regret, and trials to 95% of the key's best over its records: in
    the model's order, and expected in a random order (search.pool_trials_to_reach)."""
    from loopweave.autotune.model import kendall_tau
    from loopweave.autotune.search import pool_trials_to_reach

    predicted = predict(rows)
    times = [r.median_s for r in rows]
    pick = int(np.argmin(predicted))
    order = sorted(range(len(rows)), key=lambda i: predicted[i])
    return (kendall_tau(predicted, times), times[pick] / min(times) - 1.0,
            *pool_trials_to_reach(times, order, 0.95))


def family_of(kernel_name: str) -> str | None:
    return next((f for f, names in FAMILIES.items() if kernel_name in names), None)


def leave_family_out(groups: list[list], variants=VARIANTS) -> dict[str, dict[str, tuple]]:
    """{family: {variant: (mean tau, mean regret, keys, mean trials to 95% in the model's
    order, mean expected in a random order)}}."""
    out: dict[str, dict[str, tuple]] = {}
    for family in FAMILIES:
        held = [g for g in groups if family_of(g[0].kernel_name) == family]
        train = [g for g in groups if family_of(g[0].kernel_name) != family]
        if not held:
            continue
        out[family] = {}
        for variant in variants:
            predict = fit(train, variant)
            scores = [score(predict, g) for g in held]
            out[family][variant] = (float(np.mean([s[0] for s in scores])),
                                    float(np.mean([s[1] for s in scores])), len(held),
                                    float(np.mean([s[2] for s in scores])),
                                    float(np.mean([s[3] for s in scores])))
    return out


def candidate_groups(path: str) -> dict[str, list]:
    """benchmarks/model_choice.py's measured candidates as record-like rows, the default
    first, per kernel."""
    from types import SimpleNamespace

    kernels = json.loads(Path(path).read_text())["kernels"]
    groups = {}
    for name, cands in kernels.items():
        rows = [SimpleNamespace(kernel_name=name, features=json.dumps(c["features"]),
                                median_s=c["seconds"], created=i, config=json.dumps(
                                    {"default_schedule": c["origin"] == "default"}))
                for i, c in enumerate(cands) if c["seconds"]]
        if len(rows) > 1 and json.loads(rows[0].config)["default_schedule"]:
            groups[name] = rows
    return groups


def pick_speedups(groups: list[list], candidates: dict[str, list],
                  variants=VARIANTS) -> dict[str, tuple[float, float, float]]:
    """Per variant trained on `groups`: (geomean default time / pick time, mean tau, mean
    regret) over the candidate groups."""
    out = {}
    for variant in variants:
        predict = fit(groups, variant)
        speedups, taus, regrets = [], [], []
        for rows in candidates.values():
            predicted = predict(rows)
            tau, regret, _, _ = score(predict, rows)
            pick = int(np.argmin(predicted))
            regression = variant.split("+")[0] in ("regression", "vsdefault")
            if regression and predicted[0] - predicted[pick] < math.log(1.1):
                pick = 0
            speedups.append(rows[0].median_s / rows[pick].median_s)
            taus.append(tau)
            regrets.append(regret)
        out[variant] = (float(np.exp(np.mean(np.log(speedups)))), float(np.mean(taus)),
                        float(np.mean(regrets)))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=str(ROOT / "benchmarks" / "out" / "pretrain.sqlite"))
    parser.add_argument("--candidates", help="benchmarks/model_choice.py --json output")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--min-records", type=int, default=8,
                        help="keys with fewer correct records are left out")
    parser.add_argument("--drop", nargs="*", default=[], metavar="PREFIX",
                        help="leave out the records of kernels whose names start so (rows: "
                        "the row-wise kernels, to measure what they add)")
    args = parser.parse_args(argv)

    from loopweave.autotune.database import Database
    from loopweave.autotune.model import key_groups

    with Database(args.db, create=False) as db:
        records = [r for r in db.records(status="ok") if r.target == "cpu" and r.median_s
                   and not r.kernel_name.startswith(tuple(args.drop))]
    groups = [g for g in key_groups(records).values() if len(g) >= args.min_records]
    kernels = {g[0].kernel_name for g in groups}
    print(f"{sum(map(len, groups))} records, {len(groups)} keys, {len(kernels)} kernels "
          f"({sum(k.startswith('fz') for k in kernels)} random, "
          f"{sum(k.startswith('rows') for k in kernels)} row-wise)\n")
    variants = args.variants
    result = leave_family_out(groups, variants)
    print("| family (held out) | keys | " + " | ".join(f"tau {v}" for v in variants) + " |")
    print("|---|---|" + "---|" * len(variants))
    for family, row in result.items():
        n = next(iter(row.values()))[2]
        print(f"| {family} | {n} | " + " | ".join(f"{row[v][0]:.2f}" for v in variants) + " |")
    means = {v: np.mean([row[v][0] for row in result.values()]) for v in variants}
    print("| mean | | " + " | ".join(f"{means[v]:.2f}" for v in variants) + " |\n")
    print("| family (held out) | " + " | ".join(f"regret {v}" for v in variants) + " |")
    print("|---|" + "---|" * len(variants))
    for family, row in result.items():
        print(f"| {family} | " + " | ".join(f"{row[v][1]:.1%}" for v in variants) + " |")
    means = {v: np.mean([row[v][1] for row in result.values()]) for v in variants}
    print("| mean | " + " | ".join(f"{means[v]:.1%}" for v in variants) + " |\n")
    print("Trials to 95% of each key's best over its records, the model's order (random "
          "order's expectation):\n")
    print("| family (held out) | " + " | ".join(f"trials {v}" for v in variants) + " |")
    print("|---|" + "---|" * len(variants))
    for family, row in result.items():
        print(f"| {family} | " + " | ".join(f"{row[v][3]:.1f} ({row[v][4]:.1f})"
                                            for v in variants) + " |")
    if args.candidates:
        candidates = candidate_groups(args.candidates)
        picks = pick_speedups(groups, candidates, variants)
        print(f"\nOn {len(candidates)} kernels' candidates ({args.candidates}), trained on "
              "every record:\n")
        print("| variant | pick / default (geomean) | mean tau | mean regret |")
        print("|---|---|---|---|")
        for v, (speedup, tau, regret) in picks.items():
            print(f"| {v} | {speedup:.3f}x | {tau:.2f} | {regret:.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
