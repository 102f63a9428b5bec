"""The learned cost model: LightGBM ranking of the schedules of each kernel key, calibrated
to a log run time.

The records of one kernel key (kernel, sizes, target, compiler, threads, machine) form one
query; each record's relevance is its speed relative to the key's fastest (`RELEVANCE_LEVELS`
steps), so kernels of very different sizes train one model (LightGBM lambdarank): it learns
which schedules rank above which, from features of the scheduled IR (features.py) and their
difference from the default schedule's. A least-squares slope from the score difference with
the default to log(time / the default's time) turns scores into predicted log slowdowns, so
`compile()` can ask for a candidate predicted 10% faster. Lower predictions are better.

The model is trained online during a sweep (on every correct record of the database whose
features have the current version) and saved in the database; a model for the host CPU,
trained on the project's own sweeps (benchmarks/tune_pretrain.py), ships as
`pretrained_cpu.txt` and is used until a sweep has enough records of its own.

`compile()` uses the model too (autotune/chooser.py). `key_groups`, `split_keys` and
`score_key` serve `loopweave model eval`.
"""

from __future__ import annotations

import json
import logging
import math
import random
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loopweave.autotune.database import Database
from loopweave.autotune.features import FEATURE_NAMES, FEATURE_VERSION
from loopweave.targets import Target
from loopweave.toolchain import content_key

PRETRAINED = Path(__file__).resolve().parent / "pretrained_cpu.txt"
log = logging.getLogger("loopweave.autotune")
MIN_RECORDS = 16  # fewer correct records than this: the model is not trained

# A record's relevance in its query: round(RELEVANCE_LEVELS * fastest time / its time).
RELEVANCE_LEVELS = 15
# Ranking rather than regression on log(time / fastest): leaving one kernel family out, mean
# Kendall tau 0.60 against 0.51, better on five families of six (benchmarks/tune_objectives.py,
# benchmarks/results_tuning.md).
# deterministic: the same records give the same model whatever the threads' timing.
_PARAMS = dict(objective="lambdarank", label_gain=list(range(RELEVANCE_LEVELS + 1)),
               learning_rate=0.08, num_leaves=15, min_data_in_leaf=3,
               bagging_fraction=0.9, bagging_freq=1, feature_fraction=0.9, verbose=-1, seed=0,
               num_threads=2, deterministic=True, force_row_wise=True)
_ROUNDS = 120
# Adapting a model to a machine: small trees at a slow rate, a round per record (4 to
# ADAPT_ROUNDS), so that measurements correct the model where they contradict it and leave it
# alone elsewhere. benchmarks/tune_adapt.py chose these: on a stand-in machine the shipped
# ranking model went from tau 0.58 to 0.64 in 100 records this way; at rate 0.3 with 15 leaves
# it fell to 0.51 after 8-32 records (regression at 0.1, a round per record, had made the top
# pick 3x slower after 32-64).
_ADAPT_PARAMS = {**_PARAMS, "learning_rate": 0.05, "num_leaves": 7, "bagging_fraction": 1.0,
                 "bagging_freq": 0}
ADAPT_ROUNDS = 60
MIN_ADAPT_RECORDS = 8  # fewer correct records than this: the model is not adapted
# From this many correct records a model trained on them alone ranks as well as the shipped
# model adapted to them (benchmarks/tune_adapt.py, docs/tuning.md): below it, one trained
# alone picked schedules 2-6x slower than the best on some draws.
TRAIN_ALONE_RECORDS = 64


def reference_record(rows):
    """The record of a key whose features the model's predictions are relative to: its
    default schedule's (the first candidate of every sweep, and the first compile() ranks),
    else the key's first record."""
    for r in rows:
        if r.is_default:
            return r
    return min(rows, key=lambda r: r.created)


def model_input(feature_rows, reference) -> np.ndarray:
    """What the model reads: each feature row, then its difference from `reference`, the
    default schedule's row of the same kernel and sizes. The differences say what a candidate
    changes: leaving one kernel family out, the top pick was on average 44% slower than the
    best without them, 9% with them (benchmarks/tune_objectives.py)."""
    rows = np.array(feature_rows, dtype=np.float64)
    width = len(reference)
    rows = rows.reshape(len(rows), width) if rows.size else rows.reshape(0, width)
    return np.hstack([rows, rows - np.array(reference, dtype=np.float64)])


@dataclass(frozen=True)
class TrainingSet:
    """What a model learns from: one query per key (and machine)."""

    x: np.ndarray  # model inputs (`model_input`), query after query
    relevance: np.ndarray  # round(RELEVANCE_LEVELS * fastest time of the query / time)
    queries: list[int]  # rows per query
    references: list[int]  # the row of each query's reference record (its default) in x
    slowdown: np.ndarray  # log(time / the query's default's time): for the calibration

    def __len__(self) -> int:
        return len(self.relevance)


def training_set(records, width: int = len(FEATURE_NAMES)) -> TrainingSet:
    """The correct records of this version whose feature rows have `width` values (GPU rows
    end with compile statistics), by key and machine."""
    by_key, features = defaultdict(list), {}
    for r in records:
        if r.status == "ok" and r.median_s and r.feature_version == FEATURE_VERSION:
            row = json.loads(r.features)
            if len(row) == width:
                features[id(r)] = row
                # Per machine too: times of one key measured on two machines do not compare.
                by_key[(r.key, r.machine)].append(r)
    xs, relevance, queries, references, slowdown = [np.zeros((0, 2 * width))], [], [], [], []
    for rows in by_key.values():
        best = min(r.median_s for r in rows)
        reference = reference_record(rows)
        references.append(len(relevance) + rows.index(reference))
        xs.append(model_input([features[id(r)] for r in rows], features[id(reference)]))
        relevance += [round(RELEVANCE_LEVELS * best / r.median_s) for r in rows]
        slowdown += [math.log(r.median_s / reference.median_s) for r in rows]
        queries.append(len(rows))
    return TrainingSet(np.vstack(xs), np.array(relevance), queries, references,
                       np.array(slowdown))


def calibration(booster, data: TrainingSet) -> float:
    """The slope that turns score differences into log slowdowns: least squares through the
    origin of log(time / the default's time) on (default's score - score), over every query.
    A model whose scores do not follow the times gets a tiny slope, so compile() never sees a
    clear gain in them."""
    scores = booster.predict(data.x)
    gaps, start = np.zeros(len(scores)), 0
    for n, reference in zip(data.queries, data.references, strict=True):
        gaps[start:start + n] = scores[reference] - scores[start:start + n]
        start += n
    denominator = float(gaps @ gaps)
    slope = float(gaps @ data.slowdown) / denominator if denominator > 0 else 0.0
    return max(slope, 1e-3)


class CostModel:
    """Ranks the schedules of a kernel at some sizes; its predictions are log slowdowns (lower
    is faster), calibrated to be log(time / the default schedule's time) plus a constant."""

    def __init__(self, booster=None, records: int = 0, slope: float = 1.0):
        self.booster = booster
        self.records = records
        self.slope = slope  # log slowdown per unit of ranking score (`calibration`)

    @property
    def trained(self) -> bool:
        return self.booster is not None

    @property
    def width(self) -> int | None:
        """The length of the feature rows it reads (None when untrained)."""
        return self.booster.num_feature() // 2 if self.trained else None  # rows, differences

    @classmethod
    def fit(cls, records, width: int = len(FEATURE_NAMES)) -> CostModel:
        """A model trained on the correct records with rows of `width` features (untrained if
        there are too few)."""
        return cls._fit(training_set(records, width))

    @classmethod
    def _fit(cls, data: TrainingSet) -> CostModel:
        if len(data) < MIN_RECORDS:
            return cls(None, len(data))
        booster = _train(_PARAMS, data, _ROUNDS)
        return cls(booster, len(data), calibration(booster, data))

    @classmethod
    def adapt(cls, base: CostModel, records, width: int = len(FEATURE_NAMES)) -> CostModel:
        """`base` adapted to the machine of `records`: more boosting rounds (LightGBM's
        `init_model`) fitted to what `base` gets wrong on the correct records, so a shipped
        model learns a new machine from a few measurements, and calibrated on them. `base`
        itself when it is untrained or there are fewer than MIN_ADAPT_RECORDS records."""
        return cls._adapt(base, training_set(records, width))

    @classmethod
    def _adapt(cls, base: CostModel, data: TrainingSet) -> CostModel:
        if not base.trained or len(data) < MIN_ADAPT_RECORDS:
            return base
        rounds = min(ADAPT_ROUNDS, max(4, len(data)))
        params = {**_ADAPT_PARAMS, "min_data_in_leaf": max(3, len(data) // 16)}
        booster = _train(params, data, rounds, base.booster)
        return cls(booster, base.records + len(data), calibration(booster, data))

    @classmethod
    def for_records(cls, records, width: int = len(FEATURE_NAMES),
                    base: CostModel | None = None) -> CostModel:
        """The model a sweep ranks with, given the correct `records` so far: `base` (the
        shipped model, where there is one for these features) adapted to them until there are
        TRAIN_ALONE_RECORDS, then one trained on them alone; untrained without either."""
        data = training_set(records, width)
        if base is not None and base.trained and len(data) < TRAIN_ALONE_RECORDS:
            return cls._adapt(base, data)
        model = cls._fit(data)
        return model if model.trained or base is None else base

    def predict(self, feature_rows, reference) -> np.ndarray:
        """Predicted log slowdown per feature row, up to a constant: the difference of two
        rows' predictions is the predicted log of their time ratio. Zeros (no preference)
        when untrained. `reference`: the feature row of the kernel's default schedule at the
        same sizes (`model_input`)."""
        x = model_input(feature_rows, reference)
        if not self.trained:
            return np.zeros(len(x))
        return -self.slope * self.booster.predict(x)

    def to_text(self) -> str:
        """The calibration slope on the first line, then LightGBM's model ("" untrained)."""
        return f"slope {self.slope!r}\n{self.booster.model_to_string()}" if self.trained else ""

    @classmethod
    def from_text(cls, text: str, records: int = 0) -> CostModel:
        if not text:
            return cls(None, records)
        import lightgbm

        first, _, body = text.partition("\n")
        if not first.startswith("slope "):  # a regression model of this session's first
            return cls(None, records)      # version 3 commit: ranks nothing, is replaced
        return cls(lightgbm.Booster(model_str=body), records, float(first.split()[1]))

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
    def pretrained(cls, path: Path | None = None) -> CostModel | None:
        """The model shipped for the host CPU, or another file `save_pretrained` wrote (None
        if absent or of another feature version)."""
        path = path or PRETRAINED  # read at the call: tests point PRETRAINED elsewhere
        if not path.exists():
            return None
        text = path.read_text()
        header, _, body = text.partition("\n")
        if header != f"# loopweave feature version {FEATURE_VERSION}":
            return None
        return cls.from_text(body)

    def save_pretrained(self, path: Path = PRETRAINED) -> None:
        path.write_text(f"# loopweave feature version {FEATURE_VERSION}\n{self.to_text()}")


def _train(params: dict, data: TrainingSet, rounds: int, init=None):
    import lightgbm

    dataset = lightgbm.Dataset(data.x, data.relevance, group=data.queries)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lightgbm.train(params, dataset, num_boost_round=rounds, init_model=init)


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
    predicted = model.predict([json.loads(r.features) for r in rows],
                              json.loads(reference_record(rows).features))
    times = [r.median_s for r in rows]
    pick = min(range(len(rows)), key=lambda i: predicted[i])
    tau = kendall_tau(predicted, times) if len(rows) > 1 else 0.0
    return KeyScore(rows[0].kernel_name, rows[0].sizes, len(rows), tau,
                    times[pick] / min(times) - 1.0)


# -- the model compile() uses -----------------------------------------------------------------

# Loaded models by identity: what this process has read already.
_MODELS: dict[str, CostModel] = {}


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
