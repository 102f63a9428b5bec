"""The cost model's features before and after a feature change, on the same measurements.

    .venv/bin/python -m benchmarks.tune_features_ab [--db benchmarks/out/pretrain.sqlite]
        [--old-rev HEAD~1 [REV ...]] [--old-model REV] [--write DB] [--jobs N]

Every correct CPU record of the database (written by benchmarks/tune_pretrain.py) is lowered
again from its kernel (examples/kernels, or the fuzzer's random kernel of its seed), schedule
and options, and gets a feature row from the current autotune/features.py and from that of
each `--old-rev` (read from git). The measured times are the same for all, so the difference
is the features'. Reported, per feature set:

- leave one family out: a model trained on every other family's records ranks each key of the
  held-out family (Kendall tau of predicted against measured times, top-1 regret: the model's
  pick's time over the best time, minus one), the mean per family;
- the shipped model of each version (`--old-model`: the revision whose pretrained_cpu.txt goes
  with `--old-rev`'s features) on the keys of the kernels benchmarks/tune_pretrain.py holds out.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import uuid
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The issue's families (leave one family out), and the kernels of examples/kernels in each.
FAMILIES = {
    "matmul-like": ("matmul", "bmm", "gemm", "two_mm", "qmm", "qmm_requant", "matmul_int4",
                    "matmul_int4_grouped", "linear_f16"),
    "convolution": ("conv2d", "depthwise_conv2d", "maxpool2d"),
    "normalization": ("softmax", "layernorm", "rmsnorm_gelu"),
    "stencil": ("jacobi_1d", "jacobi_2d", "seidel_2d"),
    "triangular": ("lu", "trmm", "syrk"),
    "attention": ("attention",),
}


def old_module(rev: str, path: str = "autotune/features.py"):
    """The features module as it was at `rev` (git), loaded under another name."""
    text = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout
    name = "features_" + "".join(c if c.isalnum() else "_" for c in rev)
    file = Path(tempfile.mkdtemp()) / f"{name}.py"
    file.write_text(text)
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def old_model_text(rev: str) -> str:
    """The shipped model's body at `rev` (without its version line)."""
    text = subprocess.run(["git", "show", f"{rev}:autotune/pretrained_cpu.txt"], cwd=ROOT,
                          check=True, capture_output=True, text=True).stdout
    return text.partition("\n")[2]


def kernel_source(name: str, cases) -> str | None:
    """The DSL text of an example kernel, of the fuzzer's random kernel `fz<seed>`
    (benchmarks/tune_pretrain.py --random) or of its row-wise kernel `rows<seed>` (--rows);
    None for another name."""
    from tests.fuzz import random_kernels, row_kernels

    if name in cases:
        return cases[name].source()
    for prefix, generator in (("fz", random_kernels), ("rows", row_kernels)):
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            return generator.generate(int(name[len(prefix):])).source()
    return None


def refeature(records, extractors, jobs: int = 1) -> dict[str, list]:
    """Per extractor name, the records with that extractor's features (records whose kernel or
    schedule cannot be lowered again are dropped from all); `jobs` processes lower them (each
    takes about half a second)."""
    if jobs > 1 and len(records) > 1:
        chunks = [records[i::jobs] for i in range(jobs)]
        # fork: the workers inherit the old features module loaded from git (old_module)
        with get_context("fork").Pool(jobs) as pool:
            parts = pool.starmap(refeature, [(c, extractors) for c in chunks])
        return {name: [r for part in parts for r in part[name]] for name in extractors}
    from loopweave.autotune.features import FEATURE_VERSION
    from loopweave.examples import load_references
    from loopweave.passes.schedule import Schedule
    from loopweave.pipeline import Pipeline

    cases = load_references().KERNELS
    out = {name: [] for name in extractors}
    for r in records:
        source = kernel_source(r.kernel_name, cases)
        if source is None:
            continue
        try:
            stages = Pipeline(source, "cpu",
                              schedule=Schedule.from_json(r.schedule),
                              options=json.loads(r.options or "{}")).stages()
            rows = {name: fn(stages.ir, stages.loops, json.loads(r.sizes))
                    for name, fn in extractors.items()}
        except Exception as e:  # a record this tree cannot lower any more: skip it
            print(f"skipped {r.kernel_name} {r.uid[:8]}: {type(e).__name__}: {e}",
                  file=sys.stderr)
            continue
        for name, row in rows.items():
            out[name].append(replace(r, features=json.dumps(row),
                                     feature_version=FEATURE_VERSION))
    return out


def leave_family_out(records, width: int) -> dict[str, tuple[float, float, int]]:
    """Per family: (mean tau, mean regret, keys) of a model trained on the other families."""
    from loopweave.autotune.model import CostModel, key_groups, score_key

    groups = key_groups(records, width)
    result = {}
    for family, kernels in FAMILIES.items():
        held = [rows for rows in groups.values() if rows[0].kernel_name in kernels]
        train = [r for rows in groups.values() if rows[0].kernel_name not in kernels
                 for r in rows]
        model = CostModel.fit(train, width)
        if not held or not model.trained:
            continue
        scores = [score_key(model, rows) for rows in held]
        result[family] = (sum(s.tau for s in scores) / len(scores),
                          sum(s.regret for s in scores) / len(scores), len(scores))
    return result


def shipped_scores(model, records, width: int, kernels) -> list:
    """Per held-out kernel key: the shipped model's KeyScore."""
    from loopweave.autotune.model import key_groups, score_key

    return [score_key(model, rows) for rows in key_groups(records, width).values()
            if rows[0].kernel_name in kernels]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=str(ROOT / "benchmarks" / "out" / "pretrain.sqlite"))
    parser.add_argument("--old-rev", nargs="+", default=["HEAD~1"],
                        help="one or more revisions whose features to compare")
    parser.add_argument("--old-model", help="revision of the old shipped model (default: "
                        "the first --old-rev)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="processes that lower the records again")
    parser.add_argument("--write", help="also write the records with the new features (and new "
                        "uids) to this database: a feature change keeps its measurements")
    args = parser.parse_args(argv)

    from loopweave.autotune import features as new
    from loopweave.autotune.database import Database
    from loopweave.autotune.model import CostModel

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from tune_pretrain import HELD_OUT

    modules = {rev: old_module(rev) for rev in args.old_rev} | {"new": new}
    names = list(modules)
    with Database(args.db, create=False) as db:
        records = [r for r in db.records(status="ok") if r.target == "cpu" and r.median_s]
    sets = refeature(records, {n: m.features for n, m in modules.items()}, args.jobs)
    if args.write:
        with Database(args.write) as out:
            for r in sets["new"]:
                out.add(replace(r, uid=uuid.uuid4().hex))
        print(f"wrote {len(sets['new'])} records to {args.write}")
    widths = {n: len(m.FEATURE_NAMES) for n, m in modules.items()}
    print(f"{len(sets['new'])} records of {len({r.key for r in sets['new']})} keys; features: "
          + ", ".join(f"{n} version {m.FEATURE_VERSION} ({widths[n]} values)"
                      for n, m in modules.items()) + "\n")
    print("| family (held out) | keys | " + " | ".join(f"tau {n}" for n in names) + " | "
          + " | ".join(f"regret {n}" for n in names) + " |")
    print("|---|---|" + "---|" * (2 * len(names)))
    lofo = {n: leave_family_out(sets[n], widths[n]) for n in names}
    for family in FAMILIES:
        if all(family in lofo[n] for n in names):
            print(f"| {family} | {lofo['new'][family][2]} | "
                  + " | ".join(f"{lofo[n][family][0]:.2f}" for n in names) + " | "
                  + " | ".join(f"{lofo[n][family][1]:.1%}" for n in names) + " |")
    old = args.old_rev[0]
    shipped = {old: CostModel.from_text(old_model_text(args.old_model or old)),
               "new": CostModel.pretrained()}
    print(f"\n| shipped model on | {old}: tau | new: tau | {old}: regret | new: regret |")
    print("|---|---|---|---|---|")
    for kernel in HELD_OUT:
        row = {}
        for name, model in shipped.items():
            if model is None or not model.trained:
                continue
            scores = shipped_scores(model, sets[name], widths[name], (kernel,))
            if scores:
                row[name] = scores[0]
        if len(row) == 2:
            print(f"| {kernel} {row['new'].sizes} | {row[old].tau:.2f} | {row['new'].tau:.2f} "
                  f"| {row[old].regret:.1%} | {row['new'].regret:.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
