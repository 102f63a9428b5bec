"""compile(..., autotune=...): tuning on the first call for each key value, records reused by
later calls and processes; compile(..., cache=False); what compiles log on `loopweave`.

One real tuning run (two trials at tiny sizes); the key and budget logic is checked with a
stand-in for `loopweave.autotune.tune` that records its calls."""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import loopweave
import loopweave.autotune
from loopweave.autotune import Database
from loopweave.driver import CallTimeTuner
from loopweave.errors import ArgumentTypeError, ArgumentValueError

MATMUL = """
kernel matmul(A: f32[M, K], B: f32[K, N]) -> C: f32[M, N] {
    C[i, j] += A[i, k] * B[k, j]
}"""
# Two trials, measured quickly: the default schedule, then one random one.
TINY = {"key": ["M", "N"], "trials": 2, "batch": 2, "repeats": 3, "strategy": "random"}


def _operands(m: int, k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    return rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32)


def _record_count(db: Path) -> int:
    with Database(db) as d:
        return d.count()


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """A kernel compiled with autotune= and called once at M=9, K=12, N=17 (so tuned there)."""
    db = tmp_path_factory.mktemp("call-time") / "tune.sqlite"
    kernel = loopweave.compile(MATMUL, autotune=TINY, tuning_db=db)
    a, b = _operands(9, 12, 17)
    np.testing.assert_allclose(kernel(a, b), a @ b, rtol=1e-5)
    return SimpleNamespace(kernel=kernel, db=db)


def test_first_call_tunes_stores_the_records_and_runs_the_best(tuned):
    with Database(tuned.db) as d:
        keys = d.keys()
        assert len(keys) == 1 and keys[0][1] == "matmul" and keys[0][4] == 2
        best = d.best(keys[0][0])
    assert best is not None
    assert tuned.kernel.invoke.records[(("K", 12), ("M", 9), ("N", 17))].uid == best.uid


def test_same_key_value_reuses_the_record_without_tuning(tuned):
    before = _record_count(tuned.db)
    a, b = _operands(9, 20, 17)  # K differs; the key is (M, N)
    np.testing.assert_allclose(tuned.kernel(a, b), a @ b, rtol=1e-5)
    assert _record_count(tuned.db) == before
    records = tuned.kernel.invoke.records
    assert records[(("K", 20), ("M", 9), ("N", 17))].uid == \
        records[(("K", 12), ("M", 9), ("N", 17))].uid


def test_a_later_process_reuses_the_record_without_tuning(tuned):
    script = textwrap.dedent(f"""
        import logging, sys, numpy as np, loopweave
        logging.basicConfig(level=logging.INFO, stream=sys.stdout)
        k = loopweave.compile({MATMUL!r}, autotune={TINY!r}, tuning_db=sys.argv[1])
        a, b = np.ones((9, 31), np.float32), np.ones((31, 17), np.float32)
        assert np.allclose(k(a, b), a @ b)
        print("record", next(iter(k.invoke.records.values())).uid)
    """)
    before = _record_count(tuned.db)
    out = subprocess.run([sys.executable, "-c", script, str(tuned.db)], capture_output=True,
                         text=True, env=dict(os.environ), check=True).stdout
    assert _record_count(tuned.db) == before
    assert "tuning matmul" not in out
    uid = next(iter(tuned.kernel.invoke.records.values())).uid
    assert f"record {uid}" in out


class FakeTune:
    """Stands in for loopweave.autotune.tune: records its calls, measures `per_call` each."""

    def __init__(self, per_call: int = 1):
        self.calls: list[dict] = []
        self.per_call = per_call

    def __call__(self, source, sizes, **kwargs):
        self.calls.append({"sizes": dict(sizes), **kwargs})
        return SimpleNamespace(measured=[None] * self.per_call)


@pytest.fixture
def fake_tune(monkeypatch):
    fake = FakeTune()
    monkeypatch.setattr(loopweave.autotune, "tune", fake, raising=False)
    return fake


def test_each_new_key_value_tunes_once(tmp_path, fake_tune):
    kernel = loopweave.compile(MATMUL, autotune={"key": ["M"], "trials": 4},
                               tuning_db=tmp_path / "t.sqlite")
    for m, k in ((3, 4), (3, 5), (6, 4), (3, 7), (6, 9)):
        a, b = _operands(m, k, 2)
        np.testing.assert_allclose(kernel(a, b), a @ b, rtol=1e-5)
    assert [c["sizes"] for c in fake_tune.calls] == [{"M": 3, "K": 4, "N": 2},
                                                      {"M": 6, "K": 4, "N": 2}]
    call = fake_tune.calls[0]
    assert call["trials"] == 4 and call["db"] == tmp_path / "t.sqlite"
    assert call["target"] == "cpu" and call["progress"] is False


def test_without_a_key_every_size_is_the_key(tmp_path, fake_tune):
    kernel = loopweave.compile(MATMUL, autotune=True, tuning_db=tmp_path / "t.sqlite")
    for k in (4, 5, 4):
        kernel(*_operands(3, k, 2))
    assert [c["sizes"]["K"] for c in fake_tune.calls] == [4, 5]
    assert fake_tune.calls[0]["trials"] == 32  # the default budget


def test_a_time_budget_runs_rounds_until_the_trials_are_reached(tmp_path, monkeypatch):
    fake = FakeTune(per_call=2)
    monkeypatch.setattr(loopweave.autotune, "tune", fake, raising=False)
    kernel = loopweave.compile(MATMUL, autotune={"trials": 5, "seconds": 600, "batch": 2},
                               tuning_db=tmp_path / "t.sqlite")
    kernel(*_operands(3, 4, 2))
    # Each round asks tune() for `batch` more trials of the same key, up to the goal.
    assert [c["trials"] for c in fake.calls] == [2, 4, 5]


def test_a_spent_time_budget_stops_after_the_round_in_progress(tmp_path, monkeypatch):
    readings = iter(range(0, 10_000, 60))  # every reading of the clock is 60 s later
    monkeypatch.setattr(CallTimeTuner, "clock", staticmethod(lambda: next(readings)))
    fake = FakeTune(per_call=2)
    monkeypatch.setattr(loopweave.autotune, "tune", fake, raising=False)
    kernel = loopweave.compile(MATMUL, autotune={"seconds": 150, "batch": 2},
                               tuning_db=tmp_path / "t.sqlite")
    kernel(*_operands(3, 4, 2))
    # Started at 0 s; rounds start at 60 s and 120 s; at 180 s the budget is spent.
    assert len(fake.calls) == 2


@pytest.mark.parametrize("autotune, error, match", [
    ({"key": ["Q"]}, ArgumentValueError, "'Q' is not a size of kernel 'matmul'"),
    ({"key": "M"}, ArgumentTypeError, "must be a list of size names"),
    ({"trails": 3}, ArgumentTypeError, "unknown setting 'trails'"),
    ({"trials": 0}, ArgumentValueError, "trials must be a positive integer"),
    ({"seconds": -1}, ArgumentValueError, "seconds must be a positive number"),
    ({"trials": None}, ArgumentValueError, "needs a budget"),
    ("yes", ArgumentTypeError, "autotune must be True or a dict"),
])
def test_bad_autotune_settings_are_one_line_errors(autotune, error, match):
    with pytest.raises(error, match=match):
        loopweave.compile(MATMUL, autotune=autotune)


def test_autotune_needs_a_database_and_no_schedule():
    with pytest.raises(ArgumentTypeError, match="tuning_db=False"):
        loopweave.compile(MATMUL, autotune=True, tuning_db=False)
    with pytest.raises(ArgumentTypeError, match="schedule="):
        loopweave.compile(MATMUL, autotune=True, schedule=loopweave.Schedule())


# -- cache=False and logging -------------------------------------------------------------------

AXPY = "kernel axpy(a: f32, X: f32[N], Y: f32[N]) -> Z: f32[N] { Z[i] = a * X[i] + Y[i] }"


def _entries(cache: Path) -> set[Path]:
    return {p for p in cache.rglob("*") if p.is_file()} if cache.exists() else set()


def test_cache_false_neither_reads_nor_writes_the_build_cache(tmp_path, monkeypatch, caplog):
    cache = tmp_path / "cache"
    monkeypatch.setenv("LOOPWEAVE_CACHE_DIR", str(cache))
    x = np.arange(6, dtype=np.float32)
    with caplog.at_level(logging.DEBUG, logger="loopweave"):
        private = loopweave.compile(AXPY, cache=False, tuning_db=False)
        np.testing.assert_array_equal(private(2.0, x, x), 3 * x)
    assert _entries(cache) == set(), "cache=False wrote into the build cache"
    assert "build cache off" in caplog.text
    cached = loopweave.compile(AXPY, tuning_db=False)  # writes the entry
    written = _entries(cache)
    assert cached.invoke.library_path in written
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="loopweave.cache"):
        again = loopweave.compile(AXPY, cache=False, tuning_db=False)
        np.testing.assert_array_equal(again(2.0, x, x), 3 * x)
    assert cache not in again.invoke.library_path.parents, "cache=False read the build cache"
    assert "build cache hit" not in caplog.text and "build cache miss" in caplog.text
    assert _entries(cache) == written
    # A pickled kernel is compiled again as it was: still without the cache.
    unpickled = pickle.loads(pickle.dumps(again))
    assert cache not in unpickled.invoke.library_path.parents
    assert _entries(cache) == written


def test_compiles_and_cache_hits_are_logged_on_the_loopweave_logger(tmp_path, monkeypatch,
                                                                   caplog):
    monkeypatch.setenv("LOOPWEAVE_CACHE_DIR", str(tmp_path / "cache"))
    with caplog.at_level(logging.DEBUG, logger="loopweave"):
        loopweave.compile(AXPY, tuning_db=False)
        loopweave.compile(AXPY, tuning_db=False)
    compiles = [r for r in caplog.records if r.name == "loopweave.compile"]
    assert len(compiles) == 2 and all(r.levelno == logging.INFO for r in compiles)
    assert compiles[0].getMessage().startswith("compiled axpy for cpu in ")
    cache = [r.getMessage() for r in caplog.records if r.name == "loopweave.cache"]
    assert any(m.startswith("build cache miss") for m in cache)
    assert any(m.startswith("build cache hit") for m in cache)
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "loopweave.cache")
    # A library configures no handlers: the application decides where records go.
    assert logging.getLogger("loopweave").handlers == []
