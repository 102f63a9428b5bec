"""The cost model inside `compile()`: for call sizes without a tuning record, `ModelChooser`
ranks the default schedule, records of the same kernel at other sizes or thread counts and
neighbours of the default by their features (no build), and hands the pipeline the one
predicted fastest when it beats the default by a margin (docs/tuning.md, "The cost model
inside compile()"). `compile_lookup` is the lookup `compile()` gives the pipeline.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from loopweave.autotune.database import Database, Record, default_path
from loopweave.autotune.dispatch import tuned_lookup
from loopweave.autotune.features import FEATURE_VERSION, features, flop_count
from loopweave.autotune.keys import kernel_key
from loopweave.autotune.model import CostModel, load_model, model_source
from loopweave.autotune.space import DEFAULT_SCHEDULE, SearchSpace
from loopweave.errors import ArgumentTypeError, ArgumentValueError, LoopweaveError
from loopweave.ir.codegen import loop_ast
from loopweave.ir.kernel import KernelIR
from loopweave.passes.isl_scheduler import scheduler_deadline
from loopweave.passes.schedule import Schedule
from loopweave.pipeline import Lookup, Tuned, apply_schedule, scheduled_default
from loopweave.targets import GPU_FACTS, Target
from loopweave.toolchain import cache_dir, code_fingerprint, content_key, write_atomically

log = logging.getLogger("loopweave.autotune")

CHOOSER_VERSION = "2"  # in the cache key of a choice, with the code: new rules make old
#                         choices stale


@dataclass(frozen=True)
class CostModelSettings:
    """What `compile(..., cost_model={...})` accepts (docs/tuning.md, "The cost model inside
    compile()").

    budget_s:   seconds of ranking per kernel and distinct sizes; checked before each
                candidate after the default (the default's features and loading the model
                always happen)
    margin:     a candidate replaces the default only when its predicted time is at least
                (1 + margin) times shorter than the default's
    neighbours: how many neighbours of the default schedule from the tuning space
    similar:    how many records of the same kernel at other sizes or thread counts
    min_flops:  kernels doing fewer operations per call keep the default without ranking
    """

    budget_s: float = 1.0
    margin: float = 0.1
    # Unmeasured neighbours only where asked for: the shipped model ranked a neighbour of
    # matmul 1024^3 without register tiles 1.97x faster than the default, and it ran 2.8x
    # slower (benchmarks, session 6). Records were measured; they stay candidates.
    neighbours: int = 0
    similar: int = 4
    min_flops: float = 1e8


def cost_model_settings(value: object) -> CostModelSettings | None:
    """`compile()`'s `cost_model=` checked: None (off) for False or "off", the defaults for
    None, True or "auto", else a dict of `CostModelSettings` fields."""
    if value is False or value == "off":
        return None
    if value is None or value is True or value == "auto":
        return CostModelSettings()
    if not isinstance(value, Mapping):
        raise ArgumentTypeError("cost_model must be 'auto', 'off', True, False or a dict such "
                                f"as {{'budget_s': 2}}, not {value!r}")
    known = [f.name for f in fields(CostModelSettings)]
    for name, setting in value.items():
        if name not in known:
            raise ArgumentTypeError(f"cost_model got an unknown setting {name!r}; the settings "
                                    f"are {', '.join(known)}")
        integer = name in ("neighbours", "similar")
        if isinstance(setting, bool) or not isinstance(setting, int if integer else int | float) \
                or setting < 0:
            kind = "a non-negative integer" if integer else "a non-negative number"
            raise ArgumentValueError(f"cost_model {name} must be {kind}, not {setting!r}")
    return CostModelSettings(**value)


def can_choose(target: Target) -> bool:
    """Whether compile() may rank schedules for `target`: not the GPU targets, whose features
    need a build (their compile statistics)."""
    return target.backend not in GPU_FACTS


@dataclass(frozen=True)
class ScheduleCandidate:
    """A schedule compile() may build instead of the default."""

    origin: str  # "default", "neighbour", "record <uid> at <sizes>"
    schedule: Schedule | None  # None: the target's default schedule
    options: dict = field(default_factory=dict)
    # For a record at other sizes whose key's default was measured too: (its features, the
    # default's features, the measured log of its time over the default's) at those sizes
    measured: tuple[list[float], list[float], float] | None = None


@dataclass(frozen=True)
class ModelChoice:
    """What the cost model chose for a kernel at some sizes (`Kernel.invoke.records` holds it
    for those sizes when it is not the default)."""

    origin: str  # the winner's, "default" when the default was kept
    schedule: str | None  # the winner's schedule JSON; None: the default
    options: dict
    speedup: float  # the default's predicted time / the winner's
    ranked: int  # candidates ranked
    seconds: float  # time spent ranking

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelChoice:
        return cls(**json.loads(text))


def recorded_keys(database: Database, kernel: KernelIR, target: Target) -> list[tuple[str, dict]]:
    """(key digest, sizes) of every key the database holds for a kernel of this name on
    `target` (any hash, dtypes, compiler or thread count: the caller compares what it needs)."""
    return [(digest, json.loads(sizes)) for digest, name, sizes, target_name, _ in database.keys()
            if name == kernel.name and target_name == target.name]


def size_distance(a: dict, b: dict) -> float:
    """How far apart two sets of sizes are: the sum of |log2| of their ratios."""
    return sum(abs(math.log2((a.get(k, 0) + 1) / (b.get(k, 0) + 1))) for k in {*a, *b})


SimilarRecord = tuple[Record, Record | None]  # a key's best record and its default's record


def similar_records(db: Path, kernel: KernelIR, sizes: dict, target: Target,
                    n: int) -> list[SimilarRecord]:
    """The best records of up to `n` other keys of the same kernel (hash, dtypes, target and
    compiler) at other sizes or thread counts, nearest sizes first, each with the record of
    its key's default measured on the same machine (None if there is none)."""
    own = kernel_key(kernel, sizes, target)
    found = []
    with Database(db, create=False) as database:
        for digest, recorded in recorded_keys(database, kernel, target):
            best = database.best(digest) if digest != own.digest else None
            if best is not None and (best.kernel_hash, best.dtypes, best.compiler) == (
                    own.kernel_hash, own.dtypes, own.compiler):
                default = next((r for r in database.records(digest, status="ok")
                                if r.is_default and r.machine == best.machine), None)
                found.append((size_distance(recorded, json.loads(own.sizes)), best, default))
    found.sort(key=lambda entry: entry[0])
    return [(best, default) for _, best, default in found[:n]]


def record_candidate(similar: SimilarRecord) -> ScheduleCandidate | None:
    """A tuning record at other sizes as a candidate (None if its schedule cannot be read);
    the default's record stands for the default (schedule None). With its key's default
    measured, in the current feature version, it carries what was measured there."""
    record, default = similar
    try:
        schedule = None if record.is_default else Schedule.from_json(record.schedule)
        options = json.loads(record.options or "{}")
        measured = None
        if default is not None and not record.is_default and FEATURE_VERSION == \
                record.feature_version == default.feature_version:
            measured = (json.loads(record.features), json.loads(default.features),
                        math.log(record.median_s / default.median_s))
    except (LoopweaveError, ValueError, KeyError, TypeError, ZeroDivisionError):
        return None
    return ScheduleCandidate(f"record {record.uid[:12]} at {record.sizes}", schedule, options,
                             measured)


def measured_correction(model: CostModel, measured: tuple[list[float], list[float], float]
                        ) -> float:
    """How far the model's predicted log time ratio of a record over its key's default was
    from the measured one at the record's own sizes. Added to the prediction at other sizes,
    the model then only has to predict how the ratio changes with the sizes: its errors on a
    kernel it never saw are mostly the same at both sizes (docs/tuning.md)."""
    row, default_row, measured_log_ratio = measured
    predicted = model.predict([row, default_row], default_row)
    return measured_log_ratio - float(predicted[0] - predicted[1])


def neighbours(space: SearchSpace, n: int, rng: random.Random) -> Iterator[ScheduleCandidate]:
    """Up to `n` distinct legal configurations near the default: the default's choices written
    as knobs (the space's seeds), then those seeds with one knob changed (most changes of a
    knob that the seed does not use change nothing, so drafts are many and cheap)."""
    seeds = [c for c in space.seeds() if not c.get(DEFAULT_SCHEDULE)] or [space.default()]
    drafts = seeds + [space.mutate(rng.choice(seeds), rng) for _ in range(20 * n)]
    seen: set[str] = set()
    for config in drafts:
        if len(seen) >= n:
            return
        schedule, options = space.decode(config)
        identity = SearchSpace.identity(schedule, options)
        if identity not in seen and space.is_legal(config):
            seen.add(identity)
            yield ScheduleCandidate("neighbour", schedule, options)


def predictions(model: CostModel, ranked: list[tuple[ScheduleCandidate, list[float]]]
                ) -> list[float]:
    """The predicted log time of each (candidate, features), up to a constant; ranked[0] is
    the default, whose features the predictions are relative to. A record measured against
    its key's default at other sizes is corrected by what the model got wrong there."""
    predicted = model.predict([row for _, row in ranked], ranked[0][1])
    return [float(p) + (measured_correction(model, c.measured) if c.measured else 0.0)
            for (c, _), p in zip(ranked, predicted, strict=True)]


def schedule_features(kernel: KernelIR, schedule: Schedule, sizes: dict) -> list[float]:
    """The cost model's features of `schedule` applied to `kernel` (no build)."""
    scheduled = apply_schedule(kernel, schedule)
    return features(scheduled, loop_ast(scheduled), sizes)


# Choices by cache key: what this process has decided already.
_CHOICES: dict[str, ModelChoice] = {}


class ModelChooser:
    """A pipeline `Lookup` for sizes without a tuning record: the candidate the cost model
    predicts fastest, built instead of the default when it beats the default's prediction by
    the margin; None (the default) otherwise, and whenever anything fails.

    A choice is kept in this process and, with `persist`, in the build cache, under a key of
    the kernel key, the model, the settings and the similar records ranked.
    """

    clock = staticmethod(time.perf_counter)  # what the budget is read from

    def __init__(self, settings: CostModelSettings, db: Path | None, persist: bool = True):
        self.settings = settings
        self.db = db
        self.persist = persist

    def __call__(self, kernel: KernelIR, sizes: dict, target: Target) -> Tuned | None:
        try:
            choice = self.choose(kernel, sizes, target)
        except LoopweaveError as e:
            log.debug("cost model: %s at sizes %s: %s; default schedule", kernel.name, sizes, e)
            return None
        if choice is None or choice.schedule is None:
            return None
        what = (f"the cost model's choice ({choice.origin}, predicted {choice.speedup:.2f}x "
                "faster than the default)")
        return Tuned(Schedule.from_json(choice.schedule), choice.options, what, choice,
                     level=logging.DEBUG)

    def choose(self, kernel: KernelIR, sizes: dict, target: Target) -> ModelChoice | None:
        """The choice for `kernel` at `sizes` (cached, else ranked); None when the model does
        not apply (no model, too little work)."""
        if flop_count(kernel, sizes) < self.settings.min_flops:
            return None
        source = model_source(self.db, target)
        if source is None:
            log.debug("cost model: none for target %s; default schedule", target.name)
            return None
        records = (similar_records(self.db, kernel, sizes, target, self.settings.similar)
                   if self.db is not None and self.db.exists() and self.settings.similar
                   else [])
        digest = kernel_key(kernel, sizes, target).digest
        key = content_key(CHOOSER_VERSION, code_fingerprint(), digest, source[0],
                          json.dumps(asdict(self.settings), sort_keys=True),
                          *(r.uid for pair in records for r in pair if r is not None))
        choice = self.cached(key)
        if choice is not None:
            log.debug("cost model: %s at sizes %s: cached choice, %s", kernel.name, sizes,
                      choice.origin)
            return choice
        model = load_model(*source)
        if model is None:
            return None
        # Neighbours drawn by the kernel's key alone: the same ones whatever the compiler's
        # code (the cache key changes with it), so a choice changes only with what it ranks.
        choice = self.rank(kernel, sizes, target, model, records,
                           random.Random(int(digest[:8], 16)))
        self.remember(key, choice)
        return choice

    def cached(self, key: str) -> ModelChoice | None:
        """A choice made before under `key`: in this process, else in the build cache."""
        if key in _CHOICES:
            return _CHOICES[key]
        path = cache_dir("model-choices") / f"{key}.json" if self.persist else None
        if path is None or not path.is_file():
            return None
        try:
            _CHOICES[key] = ModelChoice.from_json(path.read_text())
        except (OSError, ValueError, TypeError):
            return None  # unreadable: ranked again and rewritten
        return _CHOICES[key]

    def remember(self, key: str, choice: ModelChoice) -> None:
        _CHOICES[key] = choice
        if self.persist:
            write_atomically(cache_dir("model-choices") / f"{key}.json", choice.to_json())

    def candidates(self, kernel: KernelIR, sizes: dict, target: Target, records: list,
                   rng: random.Random) -> Iterator[ScheduleCandidate]:
        """The default, then the similar records, then neighbours: the most promising first,
        since the budget may stop the ranking at any one of them."""
        yield ScheduleCandidate("default", None)
        yield from filter(None, map(record_candidate, records))
        if self.settings.neighbours:
            space = SearchSpace(kernel, sizes, target)
            yield from neighbours(space, self.settings.neighbours, rng)

    def rank(self, kernel: KernelIR, sizes: dict, target: Target, model: CostModel,
             records: list, rng: random.Random) -> ModelChoice:
        """Rank the candidates within the budget; the winner, or the default. After the
        default, isl's scheduler (an `isl` step's, the slowest part of a candidate) gives up
        where the budget ends, so that one candidate cannot overrun it by seconds."""
        start = budget_start = self.clock()
        ranked: list[tuple[ScheduleCandidate, list[float]]] = []
        seen: set[str] = set()  # schedules ranked (a record may be the default, say)
        with ExitStack() as bounded:
            for candidate in self.candidates(kernel, sizes, target, records, rng):
                if ranked and self.clock() - budget_start > self.settings.budget_s:
                    break
                row = self.features_of(kernel, sizes, target, candidate, seen, not ranked)
                if row is None:
                    continue
                ranked.append((candidate, row))
                if len(ranked) == 1:  # the default (a second of lu's): the budget starts here
                    budget_start = self.clock()
                    bounded.enter_context(scheduler_deadline(self.settings.budget_s))
        predicted = predictions(model, ranked)
        return self.decide(kernel, sizes, ranked, predicted, self.clock() - start)

    @staticmethod
    def features_of(kernel: KernelIR, sizes: dict, target: Target,
                    candidate: ScheduleCandidate, seen: set[str], first: bool
                    ) -> list[float] | None:
        """The candidate's features; None if its schedule was `seen` or does not apply (an
        error for the `first`, the default: there is nothing to compare with then)."""
        schedule = candidate.schedule
        identity = "default" + json.dumps(candidate.options, sort_keys=True, default=str) \
            if schedule is None else SearchSpace.identity(schedule, candidate.options)
        if identity in seen:
            return None
        seen.add(identity)
        try:
            if schedule is None:  # the default, as compile() builds it at these sizes
                scheduled = scheduled_default(kernel, target, sizes)
                return features(scheduled, loop_ast(scheduled), sizes)
            return schedule_features(kernel, schedule, sizes)
        except LoopweaveError as e:
            if first:
                raise
            log.debug("cost model: %s does not apply (%s)", candidate.origin, e)
            return None

    def decide(self, kernel: KernelIR, sizes: dict, ranked: list, predicted,
               seconds: float) -> ModelChoice:
        """The fastest predicted candidate if it beats the default (ranked[0]) by the margin."""
        best = min(range(len(ranked)), key=lambda i: predicted[i])
        speedup = math.exp(predicted[0] - predicted[best])
        for (candidate, _), p in zip(ranked, predicted, strict=True):
            log.debug("cost model: %s at sizes %s: %s predicted %.3f", kernel.name, sizes,
                      candidate.origin, p)
        if best == 0 or speedup < 1.0 + self.settings.margin:
            best, speedup = 0, 1.0
        winner = ranked[best][0]
        log.debug("cost model: %s at sizes %s: %s (predicted %.2fx the default's speed), "
                  "%d candidates ranked in %.2f s", kernel.name, sizes, winner.origin, speedup,
                  len(ranked), seconds)
        schedule = winner.schedule.to_json() if winner.schedule is not None else None
        return ModelChoice(winner.origin, schedule, dict(winner.options), speedup, len(ranked),
                           seconds)


def compile_lookup(tuning_db, settings: CostModelSettings | None,
                   persist: bool = True) -> Lookup | None:
    """The lookup `compile()` hands the pipeline: the exact tuning record of the call's sizes
    (`dispatch.tuned_lookup`), else, with `settings`, the cost model's choice."""
    exact = tuned_lookup(tuning_db)
    if settings is None:
        return exact
    db = None if tuning_db is False else Path(tuning_db) if tuning_db else default_path()
    chooser = ModelChooser(settings, db, persist)
    if exact is None:
        return chooser

    def lookup(kernel: KernelIR, sizes: dict, target: Target) -> Tuned | None:
        return exact(kernel, sizes, target) or chooser(kernel, sizes, target)

    return lookup
