"""A candidate whose timings spread widely is timed again, and stored as "noisy" (kept for
reading, never `best`, never a model's training row) when the second round is no steadier:
a stalled thread pool or a busy machine must not become a schedule's time."""

from __future__ import annotations

from loopweave.autotune.database import Database, Record
from loopweave.autotune.measure import NOISY_SPREAD, spread_of, timed_outcome

STEADY = [1.0, 1.01, 0.99, 1.0, 1.02]
NOISY = [1.0, 3.0, 0.5, 6.0, 1.0, 0.4]


def rounds(*given):
    calls = iter(given)
    return lambda: list(next(calls))


def test_the_spread_is_the_interquartile_range_over_the_median():
    assert spread_of(STEADY) < 0.05 and spread_of(NOISY) > NOISY_SPREAD
    assert spread_of([1.0, 9.0]) == 0.0  # too few to tell


def test_a_steady_round_is_timed_once():
    outcome = timed_outcome(rounds(STEADY), "m")
    assert outcome.status == "ok" and outcome.times == tuple(STEADY)


def test_a_noisy_round_is_timed_again_and_the_steadier_kept():
    outcome = timed_outcome(rounds(NOISY, STEADY), "m")
    assert outcome.status == "ok" and outcome.times == tuple(STEADY)
    assert outcome.median_s == 1.0


def test_noisy_twice_is_stored_as_noisy_and_never_best(tmp_path):
    outcome = timed_outcome(rounds(NOISY, NOISY), "m")
    assert outcome.status == "noisy" and "spread" in outcome.error and "load" in outcome.error
    fields = ("k", "h", "n", "{}", "", "cpu", "cc", "m", "[]", "{}")
    with Database(tmp_path / "t.sqlite") as db:
        db.add(Record(*fields, "noisy", median_s=0.001, spread=outcome.spread))
        db.add(Record(*fields, "ok", median_s=0.002, spread=0.01))
        assert db.best("k").median_s == 0.002  # the faster noisy time is not trusted
        assert [r.status for r in db.records(status="ok")] == ["ok"]
