"""The `loopweave tune` and `loopweave db` commands, and the argument checks every subcommand
shares (a kernel file, `--size NAME=VALUE`, `--target`).

    loopweave tune kernel.lw --size M=1024 --size K=1024 --size N=1024 --target cpu --trials 200
                   [--db tuning.sqlite] [--ray ADDRESS] [--report out/] [--no-progress]
    loopweave db best   [--db FILE] [--kernel NAME]
    loopweave db export FILE [--db FILE]
    loopweave db import FILE [--db FILE]
    loopweave model train [--db FILE] [--target cpu] [--all-machines] [--adapt] [--out FILE]
    loopweave model eval  [--db FILE] [--target cpu] [--all-machines] [--holdout 0.25]
                          [--seed 0] [--kernel NAME ...]
                          [--model trained|adapted|saved|shipped]

A bad argument raises `ArgumentValueError`, which the `loopweave` command prints as one line
with exit status 2. `db best` and `db export` only read: they never create a database file.
`--report DIR` writes DIR/tuning.csv and DIR/tuning.png from the records of the search itself.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from loopweave.autotune.database import Database, default_path
from loopweave.autotune.features import FEATURE_NAMES
from loopweave.autotune.gpu_features import GPU_FEATURES
from loopweave.autotune.keys import machine_fingerprint
from loopweave.autotune.model import (
    MIN_ADAPT_RECORDS,
    MIN_RECORDS,
    CostModel,
    KeyScore,
    key_groups,
    score_key,
    split_keys,
)
from loopweave.autotune.report import plot_best_so_far
from loopweave.autotune.search import tune
from loopweave.errors import ArgumentValueError, TargetError
from loopweave.ir.kernel import KernelIR
from loopweave.pipeline import front_end
from loopweave.targets import GPU_FACTS, target_spec

__all__ = ["check_target", "parse_sizes", "plot_best_so_far", "read_source", "register"]

_DB_HELP = "tuning database (default: $LOOPWEAVE_TUNE_DB or the cache's)"


def register(subparsers) -> None:
    tune = subparsers.add_parser("tune", help="autotune a kernel's schedule at given sizes")
    tune.add_argument("file", help="DSL source file")
    tune.add_argument("--kernel", help="which kernel of the file (when it defines several)")
    tune.add_argument("--size", action="append", default=[], metavar="NAME=VALUE",
                      help="a size (repeat for each size symbol of the kernel)")
    tune.add_argument("--target", default="cpu")
    tune.add_argument("--trials", type=_positive_int, default=64)
    tune.add_argument("--db", help=_DB_HELP)
    tune.add_argument("--ray", metavar="ADDRESS", nargs="?", const="ray",
                      help="measure on a Ray cluster (no address: start a local one)")
    tune.add_argument("--strategy", choices=("model", "random"), default="model")
    tune.add_argument("--timeout", type=float, default=10.0, help="seconds per measurement")
    tune.add_argument("--report", metavar="DIR",
                      help="write DIR/tuning.csv and DIR/tuning.png (best so far against trials)")
    tune.add_argument("--no-progress", dest="progress", action="store_false",
                      help="no progress bar (there is none when stderr is not a terminal)")
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
        p.add_argument("--db", help=_DB_HELP)
    db.set_defaults(handler=_db)
    _register_model(subparsers)


def _register_model(subparsers) -> None:
    model = subparsers.add_parser("model", help="the cost model: train it on the database's "
                                                "records, evaluate it on held-out keys")
    actions = model.add_subparsers(dest="action", required=True)
    train = actions.add_parser("train", help="train on the database's correct records and "
                                             "save the model in the database")
    train.add_argument("--out", metavar="FILE",
                       help="also write the model as a shipped-model file (pretrained_cpu.txt)")
    train.add_argument("--adapt", action="store_true",
                       help="adapt the shipped model to these records (a few dozen suffice) "
                            "instead of training a new one")
    evaluate = actions.add_parser("eval", help="Kendall tau and top-1 regret on held-out keys")
    evaluate.add_argument("--holdout", type=_fraction, default=0.25,
                          help="fraction of the keys held out (drawn with --seed)")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--kernel", action="append", default=[], metavar="NAME",
                          help="hold out every key of this kernel (repeatable; replaces "
                               "--holdout): a family the model never saw")
    evaluate.add_argument("--model", choices=("trained", "adapted", "saved", "shipped"),
                          default="trained",
                          help="trained: on the other keys; adapted: the shipped model adapted "
                               "to the other keys; saved: the database's model of the target; "
                               "shipped: the model in the package")
    for p in (train, evaluate):
        p.add_argument("--db", help=_DB_HELP)
        p.add_argument("--target", default="cpu")
        p.add_argument("--all-machines", action="store_true",
                       help="records of every machine (default: this machine's)")
    model.set_defaults(handler=_model)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, not {text!r}")
    return value


def _positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}")
    return int(text)


# -- argument checks shared by the subcommands ----------------------------------------------------

def read_source(path: str) -> str:
    """The text of a kernel file named on the command line."""
    file = Path(path)
    if not file.is_file():
        raise ArgumentValueError(f"no such kernel file: {path}")
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ArgumentValueError(f"cannot read {path}: {e}") from None


def check_target(name: str) -> str:
    """The canonical name of a `--target`, or an `ArgumentValueError` naming the known ones."""
    try:
        return target_spec(name)[0]
    except TargetError as e:
        raise ArgumentValueError(str(e)) from None


def parse_sizes(items: list[str], kernel: KernelIR) -> dict[str, int]:
    """`--size NAME=VALUE` items checked against `kernel`: every size symbol given, each name
    a size symbol or an integer scalar argument (such as a time-step count, default 1), each
    value a non-negative integer."""
    sizes: dict[str, int] = {}
    known = ", ".join(kernel.params) or "none"
    for item in items:
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not value.isdigit():
            raise ArgumentValueError(f"--size takes NAME=INTEGER (an integer >= 0), "
                                     f"not {item!r}")
        if name not in kernel.params:
            raise ArgumentValueError(f"--size {item}: kernel {kernel.name} has no size {name!r} "
                                     f"(its sizes: {known})")
        sizes[name] = int(value)
    missing = [s for s in kernel.sizes if s not in sizes]
    if missing:
        wanted = " ".join(f"--size {s}=..." for s in missing)
        raise ArgumentValueError(f"kernel {kernel.name} needs every size: {wanted}")
    return sizes


# -- the commands ---------------------------------------------------------------------------------

def _tune(args) -> int:
    source = read_source(args.file)
    target = check_target(args.target)
    ir = front_end(source, args.kernel)
    sizes = parse_sizes(args.size, ir)
    result = tune(source, sizes, target=target, trials=args.trials, kernel=args.kernel,
                  db=args.db, strategy=args.strategy, timeout_s=args.timeout,
                  executor=args.ray, progress=args.progress, report=args.report)
    if result.best is None:
        print(f"no correct schedule found in {args.trials} trials")
        return 1
    print(f"best: {result.best.median_s * 1e3:.4g} ms, {result.gflops:.3g} GFLOP/s "
          f"({len(result.measured)} new measurements)")
    print(f"schedule: {result.best.schedule}")
    if result.best.options not in ("{}", ""):
        print(f"options: {result.best.options}")
    if result.report:
        print(f"report: {', '.join(map(str, result.report))}")
    return 0


def _db(args) -> int:
    if args.action == "import":
        if not Path(args.file).is_file():
            raise ArgumentValueError(f"no such file to import: {args.file}")
        with Database(args.db or default_path()) as db:
            print(f"imported {db.import_records(args.file)} new records from {args.file}")
        return 0
    with _existing_database(args.db) as db:
        if args.action == "export":
            print(f"exported {db.export(args.file)} records to {args.file}")
        else:
            _print_best(db, args.kernel)
    return 0


def _existing_database(path: str | None) -> Database:
    """The database a reading command names, opened read-only; never created."""
    return Database(_existing_path(path), create=False)


def _existing_path(path: str | None) -> Path:
    """The database file `--db` names (or the default one); an error if there is none."""
    file = Path(path) if path else default_path()
    if not file.is_file():
        where = "--db" if path else "the default database ($LOOPWEAVE_TUNE_DB or the cache's)"
        raise ArgumentValueError(f"no tuning database at {file} ({where})")
    return file


def _print_best(db: Database, kernel: str | None) -> None:
    for key, name, sizes, target, n in db.keys():
        if kernel and name != kernel:
            continue
        best = db.best(key)
        line = f"{name} {sizes} {target} ({n} records): "
        line += (f"{best.median_s * 1e3:.4g} ms {best.schedule} "
                 f"{json.loads(best.options) or ''}".rstrip()) if best else "none correct"
        print(line)


def _model(args) -> int:
    target = check_target(args.target)
    width = len(FEATURE_NAMES) + (len(GPU_FEATURES) if target_spec(target)[1].backend
                                  in GPU_FACTS else 0)
    if args.action == "train":
        with Database(_existing_path(args.db)) as db:  # it saves the model there
            return _train(db, target, width, args.all_machines, args.out, args.adapt)
    with _existing_database(args.db) as db:
        groups = key_groups(_training_records(db, target, args.all_machines), width)
        train, held = split_keys(groups, args.holdout, args.seed, tuple(args.kernel))
        model = _model_to_evaluate(args.model, db, target, train, width)
    return _print_scores([score_key(model, rows) for rows in held])


def _training_records(db: Database, target: str, all_machines: bool) -> list:
    """The correct records of `target` (of this machine unless `all_machines`)."""
    machine = None if all_machines else machine_fingerprint()
    return [r for r in db.records(status="ok", machine=machine) if r.target == target]


def _train(db: Database, target: str, width: int, all_machines: bool, out: str | None,
           adapt: bool = False) -> int:
    records = _training_records(db, target, all_machines)
    model = _fitted(records, width, adapt, f"usable records of target {target} in {db.path}")
    model.save(db, target)  # where tune() and compile() look for the target's model
    if out:
        model.save_pretrained(Path(out))
    where = f"{db.path} (model {target!r})" + (f" and {out}" if out else "")
    how = "adapted the shipped model" if adapt else "trained"
    print(f"{how} on {len(_rows(records, width))} records of "
          f"{len(key_groups(records, width))} keys; saved in {where}")
    return 0


def _rows(records: list, width: int) -> list:
    """The records a model would learn from (correct, current feature version, `width`)."""
    return [r for rows in key_groups(records, width).values() for r in rows]


def _fitted(records: list, width: int, adapt: bool, what: str) -> CostModel:
    """A model trained on `records`, or with `adapt` the shipped model adapted to them."""
    if not adapt:
        model = CostModel.fit(records, width)
        if not model.trained:
            raise ArgumentValueError(f"{model.records} {what}; training needs at least "
                                     f"{MIN_RECORDS}")
        return model
    base = CostModel.pretrained()
    if base is None or base.width != width:
        raise ArgumentValueError(f"no shipped model of the current feature version and "
                                 f"{width} features to adapt")
    usable = len(_rows(records, width))
    if usable < MIN_ADAPT_RECORDS:
        raise ArgumentValueError(f"{usable} {what}; adapting needs at least "
                                 f"{MIN_ADAPT_RECORDS}")
    return CostModel.adapt(base, records, width)


def _model_to_evaluate(which: str, db: Database, target: str, train: list,
                       width: int) -> CostModel:
    """The model `model eval --model` names."""
    if which in ("trained", "adapted"):
        return _fitted(train, width, which == "adapted", "training records outside the "
                       "held-out keys")
    model = CostModel.load(db, target) if which == "saved" else CostModel.pretrained()
    if model is None or not model.trained:
        raise ArgumentValueError(f"no {which} model of the current feature version for target "
                                 f"{target}")
    return model


def _print_scores(scores: list[KeyScore]) -> int:
    """A line per held-out key and the means; status 1 when nothing was held out."""
    if not scores:
        print("no held-out keys with correct records to evaluate")
        return 1
    for s in scores:
        print(f"{s.kernel} {s.sizes}: {s.records} records, Kendall tau {s.tau:.3f}, "
              f"top-1 regret {s.regret:.1%}")
    tau = sum(s.tau for s in scores) / len(scores)
    regret = sum(s.regret for s in scores) / len(scores)
    print(f"mean over {len(scores)} held-out keys: Kendall tau {tau:.3f}, "
          f"top-1 regret {regret:.1%}")
    return 0
