"""The learned cost model: LightGBM regression on log run time, relative to each kernel's best.

For the records of one kernel key, the target of a record is log(time / fastest time of that
key), so kernels of very different sizes train one model: it learns which schedules are how much
slower than the best one, from features of the scheduled IR (features.py). Lower predictions
are better. The model is trained online during a sweep (on every correct record of the
database whose features have the current version) and saved in the database; a model for the
host CPU, trained on the project's own sweeps (benchmarks/tune_pretrain.py), ships as
`pretrained_cpu.txt` and is used until a sweep has enough records of its own.

`compile()` uses the model too (`ModelChooser`, through `compile_lookup`): for call sizes
without a tuning record it ranks the default schedule, records of the same kernel at other
sizes and neighbours of the default, and builds the best predicted when it beats the default
by a margin. `key_groups`, `split_keys` and `score_key` serve `loopweave model eval`.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from loopweave.autotune.database import Database, Record, default_path
from loopweave.autotune.dispatch import tuned_lookup
from loopweave.autotune.features import FEATURE_NAMES, FEATURE_VERSION, features, flop_count
from loopweave.autotune.keys import kernel_key
from loopweave.autotune.space import DEFAULT_SCHEDULE, SearchSpace
from loopweave.errors import ArgumentTypeError, ArgumentValueError, LoopweaveError
from loopweave.ir.codegen import loop_ast
from loopweave.ir.kernel import KernelIR
from loopweave.passes.schedule import Schedule
from loopweave.pipeline import Lookup, Tuned, apply_schedule, default_schedule
from loopweave.targets import GPU_FACTS, Target
from loopweave.toolchain import cache_dir, code_fingerprint, content_key, write_atomically

PRETRAINED = Path(__file__).resolve().parent / "pretrained_cpu.txt"
log = logging.getLogger("loopweave.autotune")
MIN_RECORDS = 16  # fewer correct records than this: the model is not trained

# deterministic: the same records give the same model whatever the threads' timing.
_PARAMS = dict(objective="regression", learning_rate=0.08, num_leaves=15, min_data_in_leaf=3,
               bagging_fraction=0.9, bagging_freq=1, feature_fraction=0.9, verbose=-1, seed=0,
               num_threads=2, deterministic=True, force_row_wise=True)
_ROUNDS = 120
# Adapting a model to a machine: small trees at a slow rate, a round per two records (4 to
# ADAPT_ROUNDS), so that measurements correct the model where they contradict it and leave it
# alone elsewhere. benchmarks/tune_adapt.py chose these: a faster rate or more rounds
# (0.1, a round per record) sometimes made the top pick 3x slower after 32-64 records.
_ADAPT_PARAMS = {**_PARAMS, "learning_rate": 0.05, "num_leaves": 7, "bagging_fraction": 1.0,
                 "bagging_freq": 0}
ADAPT_ROUNDS = 60
MIN_ADAPT_RECORDS = 8  # fewer correct records than this: the model is not adapted
# From this many correct records a model trained on them alone ranks as well as the shipped
# model adapted to them (benchmarks/tune_adapt.py, docs/tuning.md): below it, one trained
# alone picked schedules 2-6x slower than the best on some draws.
TRAIN_ALONE_RECORDS = 64


def training_set(records, width: int = len(FEATURE_NAMES)) -> tuple[np.ndarray, np.ndarray]:
    """(features, log time relative to the best of the same key and machine) of correct
    records of this version whose feature rows have `width` values (GPU rows end with compile
    statistics)."""
    by_key = defaultdict(list)
    for r in records:
        if r.status == "ok" and r.median_s and r.feature_version == FEATURE_VERSION:
            # Per machine too: times of one key measured on two machines do not compare.
            by_key[(r.key, r.machine)].append(r)
    xs, ys = [], []
    for rows in by_key.values():
        best = min(r.median_s for r in rows)
        for r in rows:
            feats = json.loads(r.features)
            if len(feats) == width:
                xs.append(feats)
                ys.append(math.log(r.median_s / best))
    return np.array(xs, dtype=np.float64).reshape(-1, width), np.array(ys)


class CostModel:
    """Predicts how much slower than the best a candidate is (log ratio; lower is better)."""

    def __init__(self, booster=None, records: int = 0):
        self.booster = booster
        self.records = records

    @property
    def trained(self) -> bool:
        return self.booster is not None

    @classmethod
    def fit(cls, records, width: int = len(FEATURE_NAMES)) -> CostModel:
        """A model trained on the correct records with rows of `width` features (untrained if
        there are too few)."""
        x, y = training_set(records, width)
        if len(y) < MIN_RECORDS:
            return cls(None, len(y))
        import lightgbm

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            booster = lightgbm.train(_PARAMS, lightgbm.Dataset(x, y), num_boost_round=_ROUNDS)
        return cls(booster, len(y))

    @classmethod
    def adapt(cls, base: CostModel, records, width: int = len(FEATURE_NAMES)) -> CostModel:
        """`base` adapted to the machine of `records`: more boosting rounds (LightGBM's
        `init_model`) fitted to what `base` gets wrong on the correct records, so a shipped
        model learns a new machine from a few measurements. `base` itself when it is untrained
        or there are fewer than MIN_ADAPT_RECORDS records."""
        x, y = training_set(records, width)
        if not base.trained or len(y) < MIN_ADAPT_RECORDS:
            return base
        import lightgbm

        rounds = min(ADAPT_ROUNDS, max(4, len(y) // 2))
        params = {**_ADAPT_PARAMS, "min_data_in_leaf": max(3, len(y) // 16)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            booster = lightgbm.train(params, lightgbm.Dataset(x, y), num_boost_round=rounds,
                                     init_model=lightgbm.Booster(
                                         model_str=base.booster.model_to_string()))
        return cls(booster, base.records + len(y))

    @classmethod
    def for_records(cls, records, width: int = len(FEATURE_NAMES),
                    base: CostModel | None = None) -> CostModel:
        """The model a sweep ranks with, given the correct `records` so far: `base` (the
        shipped model, where there is one for these features) adapted to them until there are
        TRAIN_ALONE_RECORDS, then one trained on them alone; untrained without either."""
        x, _ = training_set(records, width)
        if base is not None and base.trained and len(x) < TRAIN_ALONE_RECORDS:
            return cls.adapt(base, records, width)
        model = cls.fit(records, width)
        return model if model.trained or base is None else base

    def predict(self, feature_rows) -> np.ndarray:
        """Predicted log slowdown per row; zeros (no preference) when untrained."""
        rows = np.array(feature_rows, dtype=np.float64)
        x = rows.reshape(len(rows), -1) if rows.size else rows.reshape(0, len(FEATURE_NAMES))
        if not self.trained:
            return np.zeros(len(x))
        return self.booster.predict(x)

    def to_text(self) -> str:
        return self.booster.model_to_string() if self.trained else ""

    @classmethod
    def from_text(cls, text: str, records: int = 0) -> CostModel:
        if not text:
            return cls(None, records)
        import lightgbm

        return cls(lightgbm.Booster(model_str=text), records)

    def save(self, db, name: str) -> None:
        """Store the model in the tuning database under `name`."""
        db.save_model(name, self.to_text(), FEATURE_VERSION, self.records)

    @classmethod
    def load(cls, db, name: str) -> CostModel | None:
        """The model stored under `name`, if it has the current feature version."""
        found = db.load_model(name)
        if found is None or found[1] != FEATURE_VERSION:
            return None
        return cls.from_text(found[0], found[2])

    @classmethod
    def pretrained(cls) -> CostModel | None:
        """The model shipped for the host CPU (None if absent or of another feature version)."""
        if not PRETRAINED.exists():
            return None
        text = PRETRAINED.read_text()
        header, _, body = text.partition("\n")
        if header != f"# loopweave feature version {FEATURE_VERSION}":
            return None
        return cls.from_text(body)

    def save_pretrained(self, path: Path = PRETRAINED) -> None:
        path.write_text(f"# loopweave feature version {FEATURE_VERSION}\n{self.to_text()}")


def kendall_tau(a, b) -> float:
    """Kendall's tau-b between two sequences (ties count as neither concordant nor not)."""
    from scipy.stats import kendalltau

    tau = kendalltau(a, b).statistic
    return float(tau) if tau == tau else 0.0


# -- evaluation on held-out keys (`loopweave model eval`) -----------------------------------------

@dataclass(frozen=True)
class KeyScore:
    """How well a model ranks the correct records of one key (on one machine)."""

    kernel: str
    sizes: str
    records: int
    tau: float  # Kendall tau of predicted against measured times
    regret: float  # the model's top pick's time / the best time - 1 (0: it picked the best)


def key_groups(records, width: int = len(FEATURE_NAMES)) -> dict[tuple, list]:
    """Correct records of the current feature version with `width` features, by (key,
    machine): the groups a model is trained on and scored on."""
    groups = defaultdict(list)
    for r in records:
        if r.status == "ok" and r.median_s and r.feature_version == FEATURE_VERSION \
                and len(json.loads(r.features)) == width:
            groups[(r.key, r.machine)].append(r)
    return groups


def split_keys(groups: dict, holdout: float, seed: int,
               kernels: tuple[str, ...] = ()) -> tuple[list, list]:
    """(training records, held-out groups): the groups of the kernels named in `kernels` (a
    family left out), else a `holdout` fraction of the groups drawn with `seed`."""
    names = sorted(groups)
    if kernels:
        held = [k for k in names if groups[k][0].kernel_name in kernels]
    else:
        rng = random.Random(seed)
        held = rng.sample(names, max(1, round(len(names) * holdout))) if names else []
    train = [r for k in names if k not in held for r in groups[k]]
    return train, [groups[k] for k in held]


def score_key(model: CostModel, rows: list) -> KeyScore:
    """Kendall tau and top-1 regret of `model` on the records of one key."""
    predicted = model.predict([json.loads(r.features) for r in rows])
    times = [r.median_s for r in rows]
    pick = min(range(len(rows)), key=lambda i: predicted[i])
    tau = kendall_tau(predicted, times) if len(rows) > 1 else 0.0
    return KeyScore(rows[0].kernel_name, rows[0].sizes, len(rows), tau,
                    times[pick] / min(times) - 1.0)


# -- choosing a schedule inside compile() ---------------------------------------------------------
#
# For call sizes without a tuning record, `ModelChooser` ranks a few candidates (the default
# schedule, records of the same kernel at other sizes or thread counts, neighbours of the default
# in the tuning space) by their features, without building any, and hands the pipeline the one
# predicted fastest when it beats the default's prediction by the margin.

CHOOSER_VERSION = "1"  # in the cache key of a choice, with the code: new rules make old
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


def similar_records(db: Path, kernel: KernelIR, sizes: dict, target: Target,
                    n: int) -> list[Record]:
    """The best records of up to `n` other keys of the same kernel (hash, dtypes, target and
    compiler) at other sizes or thread counts, nearest sizes first."""
    own = kernel_key(kernel, sizes, target)
    found = []
    with Database(db, create=False) as database:
        for digest, recorded in recorded_keys(database, kernel, target):
            best = database.best(digest) if digest != own.digest else None
            if best is not None and (best.kernel_hash, best.dtypes, best.compiler) == (
                    own.kernel_hash, own.dtypes, own.compiler):
                found.append((size_distance(recorded, json.loads(own.sizes)), best))
    found.sort(key=lambda pair: pair[0])
    return [record for _, record in found[:n]]


def record_candidate(record: Record) -> ScheduleCandidate | None:
    """A tuning record at other sizes as a candidate (None if its schedule cannot be read)."""
    try:
        schedule = Schedule.from_json(record.schedule)
        options = json.loads(record.options or "{}")
    except (LoopweaveError, ValueError, KeyError, TypeError):
        return None
    return ScheduleCandidate(f"record {record.uid[:12]} at {record.sizes}", schedule, options)


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


def schedule_features(kernel: KernelIR, schedule: Schedule, sizes: dict) -> list[float]:
    """The cost model's features of `schedule` applied to `kernel` (no build)."""
    scheduled = apply_schedule(kernel, schedule)
    return features(scheduled, loop_ast(scheduled), sizes)


# Loaded models by identity, and choices by cache key: what this process has done already.
_MODELS: dict[str, CostModel] = {}
_CHOICES: dict[str, ModelChoice] = {}


def model_source(db: Path | None, target: Target) -> tuple[str, Callable[[], str]] | None:
    """(identity, text reader) of the model compile() uses for `target`: the database's model
    of the target (what `tune()` and `loopweave model train` save) if it has the current
    feature version, else the shipped one for the "cpu" target; None if there is neither."""
    if db is not None and db.exists():
        with Database(db, create=False) as database:
            found = database.load_model(target.name)
        if found is not None and found[1] == FEATURE_VERSION and found[0]:
            text = found[0]
            return f"database {content_key(text)}", lambda: text
    if target.name == "cpu" and PRETRAINED.exists():
        return f"shipped {PRETRAINED.stat().st_mtime_ns}", _pretrained_body
    return None


def _pretrained_body() -> str:
    """The shipped model's text ("" if it has another feature version)."""
    header, _, body = PRETRAINED.read_text().partition("\n")
    return body if header == f"# loopweave feature version {FEATURE_VERSION}" else ""


def load_model(identity: str, read: Callable[[], str]) -> CostModel | None:
    """The model `identity` (loaded once per process); None without LightGBM."""
    if identity not in _MODELS:
        try:
            _MODELS[identity] = CostModel.from_text(read())
        except ImportError as e:
            log.debug("cost model unavailable (%s): default schedules", e)
            return None
    return _MODELS[identity]


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
        key = content_key(CHOOSER_VERSION, code_fingerprint(),
                          kernel_key(kernel, sizes, target).digest, source[0],
                          json.dumps(asdict(self.settings), sort_keys=True),
                          *(r.uid for r in records))
        choice = self.cached(key)
        if choice is not None:
            log.debug("cost model: %s at sizes %s: cached choice, %s", kernel.name, sizes,
                      choice.origin)
            return choice
        model = load_model(*source)
        if model is None:
            return None
        choice = self.rank(kernel, sizes, target, model, records,
                           random.Random(int(key[:8], 16)))
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
        """Rank the candidates within the budget; the winner, or the default."""
        start = self.clock()
        ranked: list[tuple[ScheduleCandidate, list[float]]] = []
        seen: set[str] = set()  # schedules ranked (a record may be the default, say)
        for candidate in self.candidates(kernel, sizes, target, records, rng):
            if ranked and self.clock() - start > self.settings.budget_s:
                break
            schedule = candidate.schedule
            if schedule is None:  # the default: program order where the target has none
                schedule = default_schedule(kernel, target) or Schedule()
            identity = SearchSpace.identity(schedule, candidate.options)
            if identity in seen:
                continue
            seen.add(identity)
            try:
                row = schedule_features(kernel, schedule, sizes)
            except LoopweaveError as e:
                if not ranked:
                    raise  # the default's features: nothing to compare with
                log.debug("cost model: %s does not apply (%s)", candidate.origin, e)
                continue
            ranked.append((candidate, row))
        predicted = model.predict([row for _, row in ranked])
        return self.decide(kernel, sizes, ranked, predicted, self.clock() - start)

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
