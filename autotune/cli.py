"""The `loopweave tune` and `loopweave db` commands.

    loopweave tune kernel.lw --size M=1024 --size K=1024 --size N=1024 --target cpu --trials 200
                   [--db tuning.sqlite] [--ray ADDRESS] [--report out/]
    loopweave db best   [--db FILE] [--kernel NAME]
    loopweave db export FILE [--db FILE]
    loopweave db import FILE [--db FILE]

`--report DIR` also runs a random search with the same budget (into DIR/random.sqlite) and
writes DIR/tuning.png: best-so-far time against trials, model-guided against random.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from loopweave.autotune.database import Database, default_path
from loopweave.autotune.search import tune
from loopweave.errors import LoopweaveError


def register(subparsers) -> None:
    tune = subparsers.add_parser("tune", help="autotune a kernel's schedule at given sizes")
    tune.add_argument("file", help="DSL source file")
    tune.add_argument("--kernel", help="which kernel of the file (when it defines several)")
    tune.add_argument("--size", action="append", default=[], metavar="NAME=VALUE",
                      help="a size (repeat for each size symbol)")
    tune.add_argument("--target", default="cpu")
    tune.add_argument("--trials", type=int, default=64)
    tune.add_argument("--db", help="tuning database (default: $LOOPWEAVE_TUNE_DB or the cache's)")
    tune.add_argument("--ray", metavar="ADDRESS", nargs="?", const="ray",
                      help="measure on a Ray cluster (no address: start a local one)")
    tune.add_argument("--strategy", choices=("model", "random"), default="model")
    tune.add_argument("--timeout", type=float, default=10.0, help="seconds per measurement")
    tune.add_argument("--report", metavar="DIR", help="write a best-so-far plot (PNG) here")
    tune.set_defaults(handler=_tune)

    db = subparsers.add_parser("db", help="the tuning database: best records, export, import")
    actions = db.add_subparsers(dest="action", required=True)
    best = actions.add_parser("best", help="the best record of each kernel key")
    best.add_argument("--kernel", help="only this kernel name")
    export = actions.add_parser("export", help="write every record as JSON lines")
    export.add_argument("file")
    imp = actions.add_parser("import", help="add the records of an export")
    imp.add_argument("file")
    for p in (best, export, imp):
        p.add_argument("--db", help="tuning database (default: $LOOPWEAVE_TUNE_DB or the cache's)")
    db.set_defaults(handler=_db)


def _sizes(items: list[str]) -> dict[str, int]:
    sizes = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not value.strip().lstrip("-").isdigit():
            raise LoopweaveError(f"--size takes NAME=INTEGER, not {item!r}")
        sizes[name.strip()] = int(value)
    return sizes


def _tune(args) -> int:
    source = Path(args.file).read_text(encoding="utf-8")
    sizes = _sizes(args.size)
    common = dict(kernel=args.kernel, target=args.target, timeout_s=args.timeout,
                  executor=args.ray)
    result = tune(source, sizes, trials=args.trials, db=args.db, strategy=args.strategy,
                  **common)
    if result.best is None:
        print(f"no correct schedule found in {args.trials} trials", file=sys.stderr)
        return 1
    print(f"best: {result.best.median_s * 1e3:.4g} ms, {result.gflops:.3g} GFLOP/s "
          f"({len(result.measured)} new measurements)")
    print(f"schedule: {result.best.schedule}")
    if result.best.options not in ("{}", ""):
        print(f"options: {result.best.options}")
    if args.report:
        out = Path(args.report)
        out.mkdir(parents=True, exist_ok=True)
        baseline = tune(source, sizes, trials=args.trials, db=out / "random.sqlite",
                        strategy="random", **common)
        curves = {"model-guided": _history(args.db, result.key),
                  "random": _history(out / "random.sqlite", result.key)}
        path = plot_best_so_far(curves, out / "tuning.png", f"{result.kernel} {sizes}",
                                result.flops)
        print(f"report: {path} (random search best "
              f"{baseline.best_time * 1e3 if baseline.best_time else float('nan'):.4g} ms)")
    return 0


def _history(db_path, key: str) -> list[float | None]:
    with Database(db_path or default_path()) as db:
        return [r.median_s for r in db.records(key)]


def plot_best_so_far(curves: dict[str, list[float | None]], path: Path, title: str,
                     flops: float) -> Path:
    """A PNG of best-so-far GFLOP/s against trials, one line per search strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, times in curves.items():
        best, xs, ys = float("inf"), [], []
        for n, t in enumerate(times, 1):
            best = min(best, t or float("inf"))
            if best < float("inf"):
                xs.append(n)
                ys.append(flops / best / 1e9)
        ax.step(xs, ys, where="post", label=label)
    ax.set_xlabel("trials")
    ax.set_ylabel("best so far (GFLOP/s)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _db(args) -> int:
    with Database(args.db or default_path()) as db:
        if args.action == "export":
            print(f"exported {db.export(args.file)} records to {args.file}")
        elif args.action == "import":
            print(f"imported {db.import_records(args.file)} new records from {args.file}")
        else:
            for key, name, sizes, target, n in db.keys():
                if args.kernel and name != args.kernel:
                    continue
                best = db.best(key)
                line = f"{name} {sizes} {target} ({n} records): "
                line += (f"{best.median_s * 1e3:.4g} ms {best.schedule} "
                         f"{json.loads(best.options) or ''}".rstrip()) if best else "none correct"
                print(line)
    return 0
