"""The learned cost model: LightGBM regression on log run time, relative to each kernel's best.

For the records of one kernel key, the target of a record is log(time / fastest time of that
key), so kernels of very different sizes train one model: it learns which schedules are how much
slower than the best one, from features of the scheduled IR (features.py). Lower predictions
are better. The model is trained online during a sweep (on every correct record of the
database whose features have the current version) and saved in the database; a model for the
host CPU, trained on the project's own sweeps (benchmarks/tune_pretrain.py), ships as
`pretrained_cpu.txt` and is used until a sweep has enough records of its own.
"""

from __future__ import annotations

import json
import math
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

from loopweave.autotune.features import FEATURE_NAMES, FEATURE_VERSION

PRETRAINED = Path(__file__).resolve().parent / "pretrained_cpu.txt"
MIN_RECORDS = 16  # fewer correct records than this: the model is not trained

_PARAMS = dict(objective="regression", learning_rate=0.08, num_leaves=15, min_data_in_leaf=3,
               bagging_fraction=0.9, bagging_freq=1, feature_fraction=0.9, verbose=-1, seed=0,
               num_threads=2)
_ROUNDS = 120


def training_set(records, width: int = len(FEATURE_NAMES)) -> tuple[np.ndarray, np.ndarray]:
    """(features, log time relative to the key's best) of correct records of this version
    whose feature rows have `width` values (GPU rows end with compile statistics)."""
    by_key = defaultdict(list)
    for r in records:
        if r.status == "ok" and r.median_s and r.feature_version == FEATURE_VERSION:
            by_key[r.key].append(r)
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
