"""The cost model inside compile() (docs/tuning.md, "The cost model inside compile()"): for
call sizes without a tuning record, candidates (the default, neighbours of it, records of the
same kernel at other sizes) are ranked by a model and the best predicted is built when it beats
the default by the margin; `cost_model=` turns it off or sets its budget; the choice is cached;
`loopweave model train` and `model eval`.

The model is trained here, through `loopweave model train`, on synthetic records of a tiny
element-wise kernel whose "measured" time says a parallel loop is three times slower (on these
sizes, thread start-up would indeed dominate): the default schedule parallelizes, so a model
that learned the rule prefers a candidate without one. Nothing here times anything."""

from __future__ import annotations

import json
import logging
import random
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import loopweave
from loopweave import toolchain
from loopweave.autotune import chooser, model
from loopweave.autotune.chooser import (
    ModelChoice,
    ModelChooser,
    ScheduleCandidate,
    schedule_features,
)
from loopweave.autotune.database import DEFAULT_SCHEDULE, Database, Record
from loopweave.autotune.features import FEATURE_NAMES, FEATURE_VERSION, features
from loopweave.autotune.keys import kernel_key, machine_fingerprint
from loopweave.autotune.model import CostModel, key_groups, reference_record
from loopweave.autotune.space import SearchSpace
from loopweave.cli import main as cli_main
from loopweave.errors import ArgumentTypeError, ArgumentValueError, LoopweaveError
from loopweave.ir import isl_deadline
from loopweave.ir.codegen import loop_ast
from loopweave.passes import isl_scheduler
from loopweave.pipeline import default_schedule, front_end, get_target, scheduled_default

AXPBY = """
kernel axpby(A: f32[M, N], B: f32[M, N]) -> C: f32[M, N] {
    C[i, j] = A[i, j] * 2.0 + B[i, j]
}"""
TRAINING_SIZES = ({"M": 32, "N": 48}, {"M": 40, "N": 24})
CALL = (36, 44)  # M, N of the calls: no record at these sizes
# Every test ranks however small the kernel is.
ON = {"min_flops": 0}


def _parallel(features: list[float]) -> bool:
    """Whether a schedule with these features has a parallel loop (a `parallel` step, or one
    that isl's scheduler found)."""
    return features[FEATURE_NAMES.index("mean_parallel_extent")] > 0


def _synthetic_time(features: list[float], rng: random.Random) -> float:
    """The rule the model is to learn: a parallel loop makes the kernel 3x slower."""
    return (3e-3 if _parallel(features) else 1e-3) * rng.uniform(0.95, 1.05)


def _records(sizes: dict, n: int, rng: random.Random) -> list[Record]:
    """`n` records of distinct legal schedules of AXPBY at `sizes`, the default's among them."""
    ir, target = front_end(AXPBY), get_target("cpu")
    space = SearchSpace(ir, sizes, target)
    key = kernel_key(ir, sizes, target)
    schedules = {default_schedule(ir, target).to_json(): default_schedule(ir, target)}
    for config in space.sample_legal(rng, 4 * n):
        schedule, _ = space.decode(config)
        schedules.setdefault(schedule.to_json(), schedule)
    records = []
    for text, schedule in list(schedules.items())[:n]:
        row = schedule_features(ir, schedule, sizes)
        records.append(Record.for_key(
            key, "axpby", machine=machine_fingerprint(), schedule=text, options="{}",
            status="ok", feature_version=FEATURE_VERSION, features=json.dumps(row),
            median_s=_synthetic_time(row, rng)))
    return records


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tuning database of synthetic AXPBY records at two sizes, and a model trained on them
    by `loopweave model train`."""
    db = tmp_path_factory.mktemp("model-in-compile") / "tune.sqlite"
    rng = random.Random(0)
    with Database(db) as database:
        for sizes in TRAINING_SIZES:
            for record in _records(sizes, 20, rng):
                database.add(record)
    assert cli_main(["model", "train", "--db", str(db)]) == 0
    return db


@pytest.fixture
def fresh_choices(monkeypatch):
    """No choice made in this process yet; counts the rankings."""
    monkeypatch.setattr(chooser, "_CHOICES", {})
    calls = SimpleNamespace(n=0)
    rank = ModelChooser.rank

    def counting(self, *args, **kwargs):
        calls.n += 1
        return rank(self, *args, **kwargs)

    monkeypatch.setattr(ModelChooser, "rank", counting)
    return calls


def _call(kernel) -> tuple[object, np.ndarray, np.ndarray, np.ndarray]:
    """Call `kernel` at CALL; (what it used at those sizes, A, B, C)."""
    rng = np.random.default_rng(1)
    a = rng.random(CALL, dtype=np.float32)
    b = rng.random(CALL, dtype=np.float32)
    c = kernel(a, b)
    np.testing.assert_allclose(c, a * 2.0 + b, rtol=1e-6)
    used = getattr(kernel.invoke, "records", {}).get(tuple(sorted(
        {"M": CALL[0], "N": CALL[1]}.items())))
    return used, a, b, c


def test_train_saves_a_model_that_learned_the_rule(trained):
    with Database(trained) as database:
        learned = CostModel.load(database, "cpu")
        groups = key_groups(database.records()).values()
    assert learned is not None and learned.trained
    rows, predicted = [], []
    for group in groups:  # each key's predictions are relative to its default's features
        rows += [json.loads(r.features) for r in group]
        predicted += list(learned.predict([json.loads(r.features) for r in group],
                                          json.loads(reference_record(group).features)))
    slow = [_parallel(row) for row in rows]
    assert max(p for p, s in zip(predicted, slow, strict=True) if not s) < \
        min(p for p, s in zip(predicted, slow, strict=True) if s)


def test_eval_reports_tau_and_regret_on_held_out_keys(trained, capsys):
    assert cli_main(["model", "eval", "--db", str(trained), "--holdout", "0.5"]) == 0
    mean = capsys.readouterr().out.splitlines()[-1]
    assert mean.startswith("mean over 1 held-out keys"), mean
    tau, regret = re.fullmatch(r".*Kendall tau (\S+), top-1 regret (\S+)%", mean).groups()
    # Its pick is one of the fast schedules (within their 5% noise), never a 3x slower one.
    assert float(tau) > 0.3 and float(regret) < 15
    assert cli_main(["model", "eval", "--db", str(trained), "--kernel", "nothing"]) == 1


def test_compile_builds_the_candidate_the_model_prefers(trained, fresh_choices):
    kernel = loopweave.compile(AXPBY, tuning_db=trained,
                               cost_model={**ON, "similar": 0, "neighbours": 6})
    used, *_ = _call(kernel)
    assert isinstance(used, ModelChoice) and used.origin == "neighbour"
    assert used.speedup > 1.1
    assert "#pragma omp parallel" not in kernel.source  # what ran: the chosen schedule
    assert "omp parallel" in loopweave.compile(AXPBY, tuning_db=False).source  # the default's
    assert used.ranked > 1 and fresh_choices.n == 1


def test_a_record_at_other_sizes_is_ranked_and_chosen(trained, fresh_choices):
    settings = {**ON, "neighbours": 0, "similar": 1}
    kernel = loopweave.compile(AXPBY, tuning_db=trained, cost_model=settings)
    used, *_ = _call(kernel)
    with Database(trained) as database:
        nearest = min((json.loads(r.sizes) for r in database.records()),
                      key=lambda s: abs(s["M"] - CALL[0]) + abs(s["N"] - CALL[1]))
        best = database.best(kernel_key(front_end(AXPBY), nearest, get_target("cpu")).digest)
    assert used.origin.startswith(f"record {best.uid[:12]}") and used.schedule == best.schedule


def test_a_record_the_model_does_not_prefer_is_not_applied(trained, tmp_path, fresh_choices):
    # The only similar record parallelizes (like the default): ranked, predicted no faster.
    db = tmp_path / "tune.sqlite"
    ir, target = front_end(AXPBY), get_target("cpu")
    sizes = {"M": 35, "N": 45}
    space = SearchSpace(ir, sizes, target)
    schedule, _ = space.decode({**space.default(), "C.tile1.i": 8, "C.parallel": True})
    with Database(trained) as source, Database(db) as database:
        CostModel.load(source, "cpu").save(database, "cpu")
        database.add(Record.for_key(kernel_key(ir, sizes, target), "axpby",
                                    machine=machine_fingerprint(), schedule=schedule.to_json(),
                                    options="{}", status="ok", median_s=1e-3))
    # The model learned the 3x rule from 40 noisy records; on schedules alike in it (both
    # parallel) its predictions differ by up to about 20%, which a 50% margin absorbs.
    kernel = loopweave.compile(AXPBY, tuning_db=db,
                               cost_model={**ON, "neighbours": 0, "margin": 0.5})
    used, *_ = _call(kernel)
    assert used is None and fresh_choices.n == 1  # ranked, and the default kept


def test_a_record_measured_against_its_default_is_chosen_by_that_measurement(
        trained, tmp_path, fresh_choices):
    # The same record as above, now with its key's default measured 3x slower at its sizes:
    # the model's prediction (no faster) is corrected by what it got wrong there.
    db = tmp_path / "tune.sqlite"
    ir, target = front_end(AXPBY), get_target("cpu")
    sizes = {"M": 35, "N": 45}
    space = SearchSpace(ir, sizes, target)
    schedule, _ = space.decode({**space.default(), "C.tile1.i": 8, "C.parallel": True})
    key = kernel_key(ir, sizes, target)
    default = scheduled_default(ir, target, sizes)
    rows = {"record": schedule_features(ir, schedule, sizes),
            "default": features(default, loop_ast(default), sizes)}
    with Database(trained) as source, Database(db) as database:
        CostModel.load(source, "cpu").save(database, "cpu")
        for what, text, config, median_s in (
                ("record", schedule.to_json(), "{}", 1e-3),
                ("default", default_schedule(ir, target).to_json(),
                 json.dumps({DEFAULT_SCHEDULE: True}), 3e-3)):
            database.add(Record.for_key(
                key, "axpby", machine=machine_fingerprint(), schedule=text, options="{}",
                status="ok", median_s=median_s, config=config, feature_version=FEATURE_VERSION,
                features=json.dumps(rows[what])))
    kernel = loopweave.compile(AXPBY, tuning_db=db,
                               cost_model={**ON, "neighbours": 0, "margin": 0.5})
    used, *_ = _call(kernel)
    assert used is not None and used.schedule == schedule.to_json()
    assert 2.0 < used.speedup < 4.5  # about the measured 3x, as the model adjusts it


def test_the_option_turns_the_model_off(trained, fresh_choices):
    for off in ("off", False):
        used, *_ = _call(loopweave.compile(AXPBY, tuning_db=trained, cost_model=off))
        assert used is None
    assert fresh_choices.n == 0
    # No time to rank anything but the default: the default.
    used, *_ = _call(loopweave.compile(AXPBY, tuning_db=trained,
                                       cost_model={**ON, "budget_s": 0}))
    assert used is None and fresh_choices.n == 1
    # Too little work for the default threshold: not even ranked.
    used, *_ = _call(loopweave.compile(AXPBY, tuning_db=trained))
    assert used is None and fresh_choices.n == 1


@pytest.mark.parametrize("bad, error", [
    ("fast", ArgumentTypeError), ({"budget": 1}, ArgumentTypeError),
    ({"budget_s": -1}, ArgumentValueError), ({"neighbours": 1.5}, ArgumentValueError)])
def test_bad_settings_are_refused(bad, error):
    with pytest.raises(error):
        loopweave.compile(AXPBY, tuning_db=False, cost_model=bad)


def test_the_choice_is_cached_in_the_process_and_the_build_cache(trained, fresh_choices,
                                                                 caplog):
    settings = {**ON, "similar": 0, "margin": 0.123}  # a key no other test uses
    first, *_ = _call(loopweave.compile(AXPBY, tuning_db=trained, cost_model=settings))
    assert fresh_choices.n == 1
    with caplog.at_level(logging.DEBUG, logger="loopweave.autotune"):
        again, *_ = _call(loopweave.compile(AXPBY, tuning_db=trained, cost_model=settings))
    assert fresh_choices.n == 1 and again == first
    assert "cached choice" in caplog.text
    chooser._CHOICES.clear()  # as a new process: the build cache has it
    later, *_ = _call(loopweave.compile(AXPBY, tuning_db=trained, cost_model=settings))
    assert fresh_choices.n == 1 and later == first


def test_a_changed_compiler_decides_again(trained, fresh_choices, monkeypatch):
    """The cached choice is keyed on loopweave's own code: another code digest ranks again."""
    settings = {**ON, "similar": 0, "margin": 0.125}
    _call(loopweave.compile(AXPBY, tuning_db=trained, cost_model=settings))
    _call(loopweave.compile(AXPBY, tuning_db=trained, cost_model=settings))
    assert fresh_choices.n == 1
    monkeypatch.setattr(chooser, "code_fingerprint", lambda: "an edited compiler")
    _call(loopweave.compile(AXPBY, tuning_db=trained, cost_model=settings))
    assert fresh_choices.n == 2


def test_the_code_fingerprint_follows_the_files(tmp_path, monkeypatch):
    first = toolchain.code_fingerprint()
    assert first == toolchain.code_fingerprint() and len(first) == 16
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "a.py").write_text("x = 1\n")
    monkeypatch.setattr(toolchain, "CODE_PACKAGES", ("pkg",))
    monkeypatch.syspath_prepend(str(tmp_path))
    toolchain.code_fingerprint.cache_clear()
    before = toolchain.code_fingerprint()
    (package / "a.py").write_text("x = 2\n")
    toolchain.code_fingerprint.cache_clear()
    assert toolchain.code_fingerprint() != before
    toolchain.code_fingerprint.cache_clear()


def test_without_the_build_cache_the_choice_stays_in_the_process(trained, fresh_choices):
    settings = {**ON, "similar": 0, "margin": 0.124}
    _call(loopweave.compile(AXPBY, tuning_db=trained, cost_model=settings, cache=False))
    chooser._CHOICES.clear()
    _call(loopweave.compile(AXPBY, tuning_db=trained, cost_model=settings, cache=False))
    assert fresh_choices.n == 2


def test_without_lightgbm_or_when_ranking_fails_the_default_runs(trained, fresh_choices,
                                                                 monkeypatch):
    settings = {**ON, "similar": 0, "margin": 0.125}

    def no_lightgbm(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'lightgbm'")

    monkeypatch.setattr(model, "_MODELS", {})
    monkeypatch.setattr(CostModel, "from_text", no_lightgbm)
    used, *_ = _call(loopweave.compile(AXPBY, tuning_db=trained, cost_model=settings))
    assert used is None and fresh_choices.n == 0
    monkeypatch.undo()

    def broken(*args):
        raise LoopweaveError("no features")

    monkeypatch.setattr(chooser, "_CHOICES", {})
    monkeypatch.setattr(chooser, "schedule_features", broken)
    used, *_ = _call(loopweave.compile(AXPBY, tuning_db=trained, cost_model=settings))
    assert used is None


def test_isl_scheduler_gives_up_where_the_ranking_budget_ends(trained, fresh_choices,
                                                              monkeypatch):
    # A candidate with an isl step whose scheduler would run for SCHEDULER_SECONDS: inside
    # the ranking it gets no more than what is left of the budget.
    limits = []

    def slow_scheduler(constraints, options, seconds):
        limits.append(seconds)
        raise isl_deadline.SchedulerTimeout(seconds)

    monkeypatch.setattr(isl_scheduler.isl_deadline, "compute_schedule", slow_scheduler)

    def candidates(self, *args):
        yield ScheduleCandidate("default", None)
        yield ScheduleCandidate("isl seed", loopweave.Schedule().isl())

    monkeypatch.setattr(ModelChooser, "candidates", candidates)
    ir, target = front_end(AXPBY), get_target("cpu")
    settings = chooser.CostModelSettings(budget_s=0.5, min_flops=0)
    choice = ModelChooser(settings, trained, persist=False).choose(
        ir, {"M": CALL[0], "N": CALL[1]}, target)
    assert len(limits) == 1 and 0 < limits[0] <= 0.5
    assert choice.origin == "default" and choice.ranked == 1  # the isl seed did not apply
    assert isl_scheduler.scheduler_seconds() == isl_scheduler.SCHEDULER_SECONDS  # outside
