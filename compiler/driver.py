"""`compile()`: DSL text -> callable `Kernel`, through `loopweave.pipeline.Pipeline`.

    parse -> check (builds the polyhedral IR) -> choose a schedule -> apply -> lower (isl AST)
    -> render -> build -> load

`compile(..., dump=True)` prints the result of each stage; `stages()` returns them for tests.
This module is the API layer: it composes the tuned-schedule lookup of the autotuner with the
pipeline, which sits below the autotuner and never imports it. With `autotune=`, that lookup is
a `CallTimeTuner`: on the first call for each key value it runs `loopweave.autotune.tune` (in
the spirit of Triton's `@triton.autotune(key=[...])`), then hands the pipeline the best record.

Compiles are logged at info level on `loopweave.compile` (kernel, target, seconds).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

# The package: its `tune` (the search and its cost model) is imported on first use, so a
# compile() without autotune= never loads it.
from loopweave import autotune as autotuner
from loopweave.autotune.chooser import (
    CostModelSettings,
    can_choose,
    compile_lookup,
    cost_model_settings,
    recorded_keys,
)
from loopweave.autotune.database import Database, DatabaseError, default_path
from loopweave.autotune.dispatch import tuned_lookup
from loopweave.autotune.keys import kernel_key, key_sizes, machine_fingerprint
from loopweave.errors import ArgumentTypeError, ArgumentValueError
from loopweave.ir.kernel import KernelIR
from loopweave.pipeline import (
    Lookup,
    Pipeline,
    Stages,
    Tuned,
    compiler_flags,
    front_end,
    select_kernel,
)
from loopweave.runtime import Kernel, Recipe
from loopweave.targets import Target

# Re-exported: tests and benchmarks import them from here.
__all__ = ["AutotuneSettings", "CallTimeTuner", "Stages", "compile", "compiler_flags",
           "front_end", "select_kernel", "stages"]

log = logging.getLogger("loopweave.compile")
tuning_log = logging.getLogger("loopweave.autotune")  # where docs/tuning.md says tuning logs


def stages(source: str, target: str = "cpu", *, kernel: str | None = None,
           schedule=None, cc: str | None = None, cflags=None,
           options: dict | None = None) -> Stages:
    """Run every stage up to the generated source (no build): the given schedule, else the
    target's default."""
    return Pipeline(source, target, kernel=kernel, schedule=schedule, cc=cc, cflags=cflags,
                    options=options).stages()


# -- call-time tuning --------------------------------------------------------------------------

@dataclass(frozen=True)
class AutotuneSettings:
    """What `compile(..., autotune={...})` accepts (docs/tuning.md, "Tuning at call time").

    key:     the size names whose values decide when to tune (Triton's `key=`); a call whose
             key values were tuned before reuses that record, whatever its other sizes.
             None: every size of the kernel.
    trials:  measurements per key value (the database's included, as for `tune()`); None
             with `seconds`: no limit but the time.
    seconds: a time budget per key value, checked after each round of `batch` trials.
    The rest go to `loopweave.autotune.tune` as they are.
    """

    key: tuple[str, ...] | None = None
    trials: int | None = 32
    seconds: float | None = None
    strategy: str = "model"
    batch: int = 8
    executor: object = None
    timeout_s: float = 10.0
    repeats: int = 5
    seed: int = 0
    progress: bool = False


def autotune_settings(autotune: object, kernel_ir: KernelIR) -> AutotuneSettings | None:
    """`compile()`'s `autotune=` argument checked against the kernel: None (no call-time
    tuning) for None or False, the defaults for True, else a dict of `AutotuneSettings`
    fields. Raises ArgumentTypeError or ArgumentValueError for anything else."""
    if autotune is None or autotune is False:
        return None
    if autotune is True:
        autotune = {}
    if not isinstance(autotune, Mapping):
        raise ArgumentTypeError("autotune must be True or a dict such as {'key': ['M', 'N'], "
                                f"'trials': 32}}, not {type(autotune).__name__}")
    known = [f.name for f in fields(AutotuneSettings)]
    unknown = [k for k in autotune if k not in known]
    if unknown:
        raise ArgumentTypeError(f"autotune got an unknown setting {unknown[0]!r}; the settings "
                                f"are {', '.join(known)}")
    values = dict(autotune)
    if "seconds" in values and "trials" not in values:
        values["trials"] = None  # a time budget alone: as many trials as the time allows
    if values.get("key") is not None:
        values["key"] = _checked_key(values["key"], kernel_ir)
    settings = AutotuneSettings(**values)
    _check_budget(settings)
    return settings


def _checked_key(key: object, kernel_ir: KernelIR) -> tuple[str, ...]:
    """`key` as a tuple of size names of the kernel."""
    if isinstance(key, str) or not isinstance(key, list | tuple) \
            or not all(isinstance(k, str) for k in key):
        raise ArgumentTypeError(f"autotune key must be a list of size names, not {key!r}")
    for name in key:
        if name not in kernel_ir.sizes:
            sizes = ", ".join(kernel_ir.sizes) or "none"
            raise ArgumentValueError(f"autotune key {name!r} is not a size of kernel "
                                     f"'{kernel_ir.name}' (its sizes: {sizes})")
    return tuple(key)


def _check_budget(settings: AutotuneSettings) -> None:
    trials, seconds = settings.trials, settings.seconds
    if trials is not None and (isinstance(trials, bool) or not isinstance(trials, int)
                               or trials < 1):
        raise ArgumentValueError(f"autotune trials must be a positive integer, not {trials!r}")
    if seconds is not None and (isinstance(seconds, bool)
                                or not isinstance(seconds, int | float) or not seconds > 0):
        raise ArgumentValueError(f"autotune seconds must be a positive number, not {seconds!r}")
    if trials is None and seconds is None:
        raise ArgumentValueError("autotune needs a budget: trials, seconds or both")


class CallTimeTuner:
    """A pipeline `Lookup` that tunes on the first call for each key value.

    For a call's sizes: the sizes its key value was tuned at (this process's memory, else a
    record in the database: later processes do not tune again), else a `tune()` at the call's
    sizes within the budget; then the best record at those sizes, through the ordinary lookup
    (`autotune.dispatch.tuned_lookup`). The pipeline's `TunedInvoker` asks once per distinct
    sizes and builds what this returns.
    """

    clock = staticmethod(time.monotonic)  # what the time budget is read from

    def __init__(self, settings: AutotuneSettings, db: Path, tune_args: dict):
        self.settings = settings
        self.db = db
        self.tune_args = tune_args  # source, target, kernel, cc, cflags, options for tune()
        self.tuned_at: dict[tuple, dict[str, int]] = {}  # key value -> the sizes tuned at

    def key_value(self, kernel_ir: KernelIR, sizes: dict) -> tuple:
        names = self.settings.key if self.settings.key is not None else kernel_ir.sizes
        return tuple((name, sizes.get(name)) for name in names)

    def __call__(self, kernel_ir: KernelIR, sizes: dict, target: Target) -> Tuned | None:
        value = self.key_value(kernel_ir, sizes)
        if value not in self.tuned_at:
            self.tuned_at[value] = (self.recorded_sizes(kernel_ir, sizes, target)
                                    or self.tune(kernel_ir, sizes, target))
        lookup = tuned_lookup(self.db)  # made now: the database may be new since the last call
        return None if lookup is None else lookup(kernel_ir, self.tuned_at[value], target)

    def recorded_sizes(self, kernel_ir: KernelIR, sizes: dict,
                       target: Target) -> dict[str, int] | None:
        """Sizes with the call's key value at which the database holds a correct record of
        this kernel's exact key (the call's own sizes first), or None."""
        if not self.db.exists():
            return None
        wanted = dict(self.key_value(kernel_ir, sizes))
        own = key_sizes(kernel_ir, sizes)
        try:
            with Database(self.db) as database:
                matches = []
                for digest, recorded in recorded_keys(database, kernel_ir, target):
                    if any(recorded.get(k) != v for k, v in wanted.items()):
                        continue
                    # The digest also holds the kernel hash, dtypes, compiler and threads.
                    if kernel_key(kernel_ir, recorded, target).digest == digest \
                            and database.best(digest) is not None:
                        matches.append(recorded)
        except DatabaseError as e:
            tuning_log.debug("tuning database %s unreadable: %s", self.db, e)
            return None
        matches.sort(key=lambda recorded: recorded != own)
        return matches[0] if matches else None

    def tune(self, kernel_ir: KernelIR, sizes: dict, target: Target) -> dict[str, int]:
        """Tune at `sizes` within the budget (records go to the database); the sizes tuned."""
        s = self.settings
        budget = " and ".join(part for part in (
            f"{s.trials} trials" if s.trials else "", f"{s.seconds:g} s" if s.seconds else "")
            if part)
        tuning_log.info("tuning %s on %s at sizes %s (%s)", kernel_ir.name, target.name,
                        dict(sizes), budget)
        start = self.clock()
        measured = self._search(kernel_ir, dict(sizes), target, start)
        tuning_log.info("tuned %s at sizes %s: %d new trials in %.1f s", kernel_ir.name,
                        dict(sizes), measured, self.clock() - start)
        return dict(sizes)

    def _search(self, kernel_ir: KernelIR, sizes: dict, target: Target, start: float) -> int:
        """Run `tune()` until the trials are reached or the time is up; how many it measured.
        Without a time budget, one call; with one, a call per round of `batch` trials (tune()
        continues from the database, so the rounds add up to one search)."""
        s = self.settings
        options = dict(trials=s.trials, db=self.db, strategy=s.strategy, batch=s.batch,
                       executor=s.executor, timeout_s=s.timeout_s, repeats=s.repeats,
                       seed=s.seed, progress=s.progress)
        if s.seconds is None:
            return len(autotuner.tune(sizes=sizes, **self.tune_args, **options).measured)
        goal = s.trials if s.trials is not None else math.inf
        done = self._trials_here(kernel_ir, sizes, target)
        measured = 0
        while done < goal and self.clock() - start < s.seconds:
            options["trials"] = int(min(goal, done + s.batch))
            new = len(autotuner.tune(sizes=sizes, **self.tune_args, **options).measured)
            if new == 0:  # the space is exhausted (or another process reached the goal)
                break
            done, measured = done + new, measured + new
        return measured

    def _trials_here(self, kernel_ir: KernelIR, sizes: dict, target: Target) -> int:
        """The records of this exact key measured on this machine (what `tune()` counts)."""
        if not self.db.exists():
            return 0
        digest = kernel_key(kernel_ir, sizes, target).digest
        with Database(self.db) as database:
            return len(database.records(digest, machine=machine_fingerprint()))


def _tuning_lookup(settings: AutotuneSettings | None, tuning_db, tune_args: dict,
                   model: CostModelSettings | None, cache: bool) -> Lookup | None:
    """The lookup `compile()` hands the pipeline: call-time tuning with `settings`, else the
    database's exact record, else (with `model`) the cost model's choice."""
    if settings is None:
        return compile_lookup(tuning_db, model, persist=cache)
    if tuning_db is False:
        raise ArgumentTypeError("autotune= stores its records in the tuning database; it "
                                "cannot be combined with tuning_db=False")
    db = Path(tuning_db) if tuning_db else default_path()
    return CallTimeTuner(settings, db, tune_args)


# -- compile -----------------------------------------------------------------------------------

def compile(source: str, target: str = "cpu", *, kernel: str | None = None, schedule=None,
            cc: str | None = None, cflags=None, dump: bool = False, tuning_db=None,
            autotune=None, cost_model=None, cache: bool = True,
            **options) -> Kernel:  # noqa: A001
    """Compile DSL text into a callable `Kernel` for `target`.

    source:   DSL text with one or more `kernel` definitions.
    target:   "cpu" (the host, C99 built by the system compiler).
    kernel:   which kernel of the text, when it defines several.
    schedule: a function KernelIR -> KernelIR (or an object with `.apply`) run on the IR.
    cc, cflags: the C compiler and its optimisation flags (default: $CC or cc, -O3 -march=native;
              $LOOPWEAVE_CFLAGS overrides the flags).
    dump:     print the output of each stage to stderr.
    tuning_db: without a schedule, calls use the best record of this tuning database for their
              exact kernel, sizes, target and compiler (see docs/tuning.md); None: the default
              database, False: never. `Kernel.source` is the source of the last call's sizes.
    autotune: tune at call time: True, or a dict of `AutotuneSettings` fields, e.g.
              {"key": ["M", "N"], "trials": 32, "seconds": 60}. The first call for each value
              of the key sizes tunes (records go to `tuning_db`) and runs the best; later calls
              and processes with that key value reuse the record (docs/tuning.md).
    cost_model: for call sizes without a tuning record, rank candidate schedules (the
              default, neighbours of it, records of the same kernel at other sizes) with the
              learned cost model and build the one predicted fastest if it beats the default by
              a margin. None or "auto" (default): on where a model is available; False or
              "off"; or a dict of `CostModelSettings` fields, e.g. {"budget_s": 2}
              (docs/tuning.md, "The cost model inside compile()").
    cache:    False: this kernel's builds neither read nor write the build cache (they go to a
              private folder that lives as long as the kernel).
    options:  target-specific keywords (e.g. `arch="sm_90"` for cuda), checked by the target.

    Every error about the kernel derives from `loopweave.LoopweaveError`.
    """
    start = time.perf_counter()
    pipeline = Pipeline(source, target, kernel=kernel, schedule=schedule, cc=cc, cflags=cflags,
                        options=options, cache=cache)
    settings = autotune_settings(autotune, pipeline.unscheduled)
    model = cost_model_settings(cost_model)  # checked on every target, used on some
    if not can_choose(pipeline.target):
        model = None
    if settings is not None and schedule is not None:
        raise ArgumentTypeError("autotune= tunes the schedule; it cannot be combined with "
                                "schedule=")
    if schedule is None:
        # After the pipeline has checked the target and the text: a bad kernel is reported
        # as such, whatever the tuning database holds.
        tune_args = dict(source=source, target=target, kernel=kernel, cc=cc, cflags=cflags,
                         options=options or None)
        pipeline.lookup = _tuning_lookup(settings, tuning_db, tune_args, model, cache)
    result = pipeline.stages()
    if dump:
        for name, text in result.dumps:
            print(f"==== {name} ====\n{text}", file=sys.stderr)
    compiled = pipeline.kernel(result)
    # What pickling the kernel records: unpickling compiles it again (`dump` is not repeated).
    compiled.recipe = Recipe(compile, (source,), dict(
        target=target, kernel=kernel, schedule=schedule, cc=cc, cflags=cflags,
        tuning_db=tuning_db, autotune=autotune, cost_model=cost_model, cache=cache, **options))
    log.info("compiled %s for %s in %.3f s%s", compiled.name, compiled.target,
             time.perf_counter() - start, "" if cache else " (build cache off)")
    return compiled
