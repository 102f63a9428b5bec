"""`tune()`: an evolutionary search in which the cost model ranks many candidates and only the
best few of each round are measured, plus some random exploration.

Each round: children of the fastest measured configurations (mutations and crossovers) and
fresh random legal ones form a pool; the pool's features are computed in a process pool; the
model ranks them; the `batch - explore` best and `explore` random others are built and
measured; every outcome goes to the database at once; the model is refitted. `trials` is the
number of measurements of this kernel key on this machine in the database: a second call with
more trials continues where the first stopped, seeded with its best configurations.

A progress bar (autotune/report.py) shows the trials and the best time so far on a terminal;
each round is also logged at info level on `loopweave.autotune`. `report=DIR` writes a table
and a plot of the key's records when the search is done.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import nullcontext
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from loopweave.autotune.database import Database, Record, default_path
from loopweave.autotune.executors import (
    LocalExecutor,
    RayExecutor,
    check_main_guard,
    make_executor,
)
from loopweave.autotune.features import FEATURE_NAMES, FEATURE_VERSION, features, flop_count
from loopweave.autotune.gpu_features import GPU_FEATURES, gpu_features
from loopweave.autotune.keys import kernel_key, machine_fingerprint
from loopweave.autotune.measure import (
    GPU_BACKENDS,
    Candidate,
    Problem,
    candidate_stages,
    make_problem,
    problem_backend,
)
from loopweave.autotune.model import CostModel
from loopweave.autotune.report import ProgressBar, best_text, require_plotting, write_report
from loopweave.autotune.space import DEFAULT_SCHEDULE, SearchSpace
from loopweave.errors import LoopweaveError
from loopweave.ir.codegen import loop_ast
from loopweave.passes.schedule import Schedule
from loopweave.pipeline import compiler_flags, front_end, get_target, scheduled_default

log = logging.getLogger("loopweave.autotune")


@dataclass
class TuneResult:
    """What a `tune()` call found and did."""

    key: str
    kernel: str
    best: Record | None
    flops: float
    measured: list[Record] = field(default_factory=list)  # this call's records, in order
    history: list[tuple[int, float | None, str]] = field(default_factory=list)  # trial, s, how
    report: list[Path] = field(default_factory=list)  # files written for `report=DIR`

    @property
    def best_time(self) -> float | None:
        return self.best.median_s if self.best else None

    @property
    def gflops(self) -> float | None:
        return self.flops / self.best.median_s / 1e9 if self.best and self.best.median_s else None

    @property
    def schedule(self) -> Schedule | None:
        """The best record's schedule as a `loopweave.Schedule`; None without a record, or
        where the best is the target's default (what `compile()` builds without a schedule:
        at known sizes its choice differs from any one schedule)."""
        if self.best is None or self.best.is_default:
            return None
        return Schedule.from_json(self.best.schedule)


def _features_of(problem: Problem, candidate: Candidate) -> list[float] | None:
    """Features of one candidate, as `measure.build` computes them (runs in a process pool);
    None if it does not apply."""
    try:
        if problem_backend(problem, candidate) not in GPU_BACKENDS:
            kernel = front_end(problem.source, problem.kernel)
            ir = scheduled_default(kernel, get_target(problem.target, problem.cc, problem.cflags,
                                                      candidate.options), problem.sizes) \
                if candidate.default else Schedule.from_json(candidate.schedule).apply(kernel)
            return features(ir, loop_ast(ir), problem.sizes)
        pipeline, result = candidate_stages(problem, candidate)
        return features(result.ir, result.loops, problem.sizes) + gpu_features(
            pipeline.target, result.source, problem.source, problem.kernel)
    except LoopweaveError:
        return None


class _Search:
    def __init__(self, space: SearchSpace, problem: Problem, db: Database, key, rng,
                 strategy: str, batch: int, explore: int, pool_size: int):
        self.space, self.problem, self.db, self.key = space, problem, db, key
        self.rng, self.strategy = rng, strategy
        self.batch, self.explore, self.pool_size = batch, explore, pool_size
        self.seen: set[str] = set()
        self.elite: list[tuple[float, dict]] = []  # (time, config) of correct records
        self.model = CostModel()
        self._shipped: CostModel | None = None
        self._pool = None
        self._reference: list[float] | None = None  # the default schedule's features

    def identity(self, config: dict) -> str:
        return SearchSpace.identity(*self.space.decode(config))

    def remember(self, record: Record) -> None:
        self.seen.add(record.schedule + record.options)
        if record.status == "ok" and record.config != "{}":
            self.elite.append((record.median_s, json.loads(record.config)))
            self.elite.sort(key=lambda e: e[0])
            del self.elite[16:]

    def fresh(self, configs) -> list[dict]:
        """Legal configurations not measured yet, each once."""
        out, ids = [], set()
        for c in configs:
            schedule, options = self.space.decode(c)
            ident = schedule.to_json() + json.dumps(options, sort_keys=True, default=str)
            if ident in self.seen or ident in ids or not self.space.is_legal(c):
                continue
            ids.add(ident)
            out.append(c)
        return out

    def refit(self) -> None:
        if self.strategy != "model":
            return
        gpu = self.space.ctx.target.backend in GPU_BACKENDS
        width = len(FEATURE_NAMES) + (len(GPU_FEATURES) if gpu else 0)
        if self._shipped is None:  # the shipped model knows the host CPU only
            self._shipped = (None if gpu else CostModel.pretrained()) or CostModel()
        self.model = CostModel.for_records(self.db.records(status="ok"), width, self._shipped)

    def featurize(self, configs: list[dict]) -> list[list[float] | None]:
        candidates = [Candidate(schedule.to_json(), options, config)
                      for config in configs for schedule, options in [self.space.decode(config)]]
        if self._pool is None:
            self._pool = ProcessPoolExecutor(2, mp_context=get_context("spawn"))
        try:
            return list(self._pool.map(_features_of, [self.problem] * len(candidates),
                                       candidates, chunksize=8))
        except BrokenProcessPool:  # a worker died: this round's features are computed here
            log.warning("the feature workers died; computing features in this process")
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            return [_features_of(self.problem, c) for c in candidates]

    def next_round(self, n: int) -> list[tuple[dict, str]]:
        """Up to `n` (config, how chosen) to measure next."""
        if not self.seen:
            first = self.fresh([self.space.default(), *self.space.seeds()])
            if first:
                return [(c, "default" if i == 0 else "seed") for i, c in enumerate(first[:n])]
        if self.strategy == "random" or not self.elite or not self.model.trained:
            return [(c, "random") for c in self.fresh(self.space.sample_legal(self.rng, n * 2))[:n]]
        parents = [c for _, c in self.elite]
        children = []
        for _ in range(self.pool_size):
            a = self.rng.choice(parents[:8])
            if self.rng.random() < 0.3 and len(parents) > 1:
                a = self.space.crossover(a, self.rng.choice(parents), self.rng)
            children.append(self.space.mutate(a, self.rng, n=self.rng.choice((1, 1, 2, 3))))
        explore = min(self.explore, n - 1)
        pool = self.fresh(children + self.space.sample_legal(self.rng, self.pool_size // 4))
        feats = self.featurize(pool)
        if self._reference is None:  # the model's predictions are relative to the default's
            self._reference = self.featurize([{DEFAULT_SCHEDULE: True}])[0] or []
        reference = self._reference or next((f for f in feats if f is not None), None)
        scored = [(p, c) for c, f in zip(pool, feats, strict=True) if f is not None
                  for p in self.model.predict([f], reference)]
        scored.sort(key=lambda pc: pc[0])
        chosen = [(c, "model") for _, c in scored[:n - explore]]
        rest = [c for _, c in scored[n - explore:]]
        self.rng.shuffle(rest)
        chosen += [(c, "random") for c in rest[:explore]]
        return chosen

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)


def _log_round(result: TuneResult, total: int, done: int) -> None:
    log.info("tune %s: %d/%d trials, %s", result.kernel, done, total,
             best_text(result.best_time, result.gflops))


def tune(source: str, sizes: dict[str, int], target: str = "cpu", trials: int = 64, *,
         kernel: str | None = None,
         executor: str | LocalExecutor | RayExecutor | None = None,
         db: str | Path | None = None, cc: str | None = None,
         cflags: str | Sequence[str] | None = None, options: dict | None = None,
         strategy: str = "model", batch: int = 8, explore: int = 2, pool_size: int = 96,
         seed: int = 0, timeout_s: float = 10.0, repeats: int = 5, progress: bool = True,
         report: str | Path | None = None,
         workdir: str | Path | None = None) -> TuneResult:
    """Search schedules of a kernel at `sizes` for `target`; every measurement goes to `db`.

    trials:   measurements of this kernel key on this machine to reach (the database's count
              included: calling again with more trials continues the search)
    executor: "local" (default: parallel builds, isolated measurements), "ray" (a local Ray
              cluster), a Ray address, or an executor object (loopweave.autotune.executors)
    db:       the SQLite file (default: $LOOPWEAVE_TUNE_DB or tuning.sqlite in the kernel cache,
              which is where `compile()` looks for tuned schedules)
    strategy: "model" (evolutionary, ranked by the cost model) or "random"
    batch, explore: measurements per round, and how many of them are random picks
    progress: a progress bar on stderr with the best time so far (only on a terminal)
    report:   a folder for tuning.csv (one row per trial) and tuning.png (best so far against
              trials) of this key's records, written when the search is done

    Worker processes start with multiprocessing's "spawn" method, which runs the main script
    again: in a script, call tune() under `if __name__ == "__main__":` (a LoopweaveError says
    so otherwise).
    """
    if strategy not in ("model", "random"):
        raise ValueError(f"strategy must be 'model' or 'random', not {strategy!r}")
    check_main_guard()
    if report is not None:
        require_plotting()
    ir = front_end(source, kernel)
    tgt = get_target(target, cc, compiler_flags(cflags), options)
    key = kernel_key(ir, sizes, tgt)
    database = Database(db or default_path())
    workdir = Path(workdir) if workdir else database.path.parent / "tune-data"
    problem = make_problem(source, sizes, target, workdir, kernel=kernel, cc=cc,
                           cflags=compiler_flags(cflags), timeout_s=timeout_s, repeats=repeats)
    space = SearchSpace(ir, sizes, tgt, base_options=options)
    search = _Search(space, problem, database, key, random.Random(seed), strategy, batch,
                     explore, pool_size)
    result = TuneResult(key.digest, ir.name, None, flop_count(ir, sizes))
    machine = machine_fingerprint()
    mine = 0
    for r in database.records(key.digest):
        search.remember(r)
        mine += r.machine == machine
    result.best = database.best(key.digest)
    search.refit()
    runner = make_executor(executor)
    bar = ProgressBar.on_terminal(ir.name, trials, mine) if progress else None
    try:
        with bar or nullcontext():
            _search(search, runner, ir, machine, trials, mine, result, bar)
        if search.model.trained and search.model.records:
            search.model.save(database, f"{tgt.name}")
        if report is not None:
            result.report = write_report(report, database.records(key.digest), result.flops,
                                         f"{ir.name} {json.dumps(sizes)} on {tgt.name}")
    finally:
        search.close()
        if executor is None or isinstance(executor, str):
            runner.close()
        database.close()
    return result


def _search(search: _Search, runner, ir, machine: str, trials: int, mine: int,
            result: TuneResult, bar: ProgressBar | None) -> None:
    """Measure rounds of candidates until the key has `trials` records of this machine (of
    any machine with a remote executor), or three rounds find nothing new to measure."""
    remote = not isinstance(runner, LocalExecutor)  # its records carry the workers' machines
    stale = 0
    while mine < trials and stale < 3:
        chosen = search.next_round(min(search.batch, trials - mine))
        stale = 0 if chosen else stale + 1
        candidates = []
        for config, how in chosen:
            schedule, opts = search.space.decode(config)
            candidates.append(Candidate(schedule.to_json(), opts, config, how))
        for cand, outcome in runner.run(search.problem, candidates, threads=search.key.threads):
            record = _record(search.key, ir.name, machine, cand, outcome)
            search.db.add(record)
            search.remember(record)
            result.measured.append(record)
            result.history.append((len(result.measured), outcome.median_s
                                   if outcome.status == "ok" else None, cand.strategy))
            mine += remote or record.machine == machine
            if outcome.status == "ok" and (result.best is None
                                           or outcome.median_s < result.best.median_s):
                result.best = record
            if outcome.status != "ok":
                log.info("candidate %s: %s %s", cand.schedule, outcome.status,
                         outcome.error.splitlines()[0] if outcome.error else "")
            if bar is not None:
                bar.update(mine, result.best_time, result.gflops)
        _log_round(result, trials, mine)
        search.refit()


def _record(key, kernel_name: str, machine: str, cand: Candidate, outcome) -> Record:
    """The database record of one measured candidate."""
    return Record.for_key(
        key, kernel_name, machine=outcome.machine or machine, schedule=cand.schedule,
        options=json.dumps(cand.options, sort_keys=True, default=str),
        config=json.dumps(cand.config, default=str), status=outcome.status,
        features=json.dumps(list(outcome.features)), feature_version=FEATURE_VERSION,
        median_s=outcome.median_s, spread=outcome.spread,
        times=json.dumps(list(outcome.times)), error=outcome.error[:4000],
        strategy=cand.strategy)


def pool_trials_to_reach(times: list[float], order: list[int], fraction: float = 0.95
                         ) -> tuple[int, float]:
    """For a pool of candidates measured once (`times`), the trials a search needs until one
    within `fraction` of the pool's best speed is measured: measuring them in `order` (a
    model's ranking: its first such candidate's place, from 1), and in a uniformly random
    order (the expectation: (n + 1) / (g + 1) for g such candidates among n). Unlike two live
    searches, both figures come from the same measurements, so neither is luck of one run."""
    if not times or sorted(order) != list(range(len(times))):
        raise ValueError("order must rank every measured candidate once")
    best = min(times)
    good = [best / t >= fraction for t in times]
    first = next(place for place, i in enumerate(order, 1) if good[i])
    return first, (len(times) + 1) / (sum(good) + 1)


def trials_to_reach(history: list[tuple[int, float | None, str]], fraction: float = 0.95,
                    best: float | None = None) -> int | None:
    """The first trial whose best-so-far is within `fraction` of `best` (speed ratio)."""
    times = [t for _, t, _ in history if t]
    best = best or (min(times) if times else None)
    so_far = math.inf
    for trial, t, _ in history:
        so_far = min(so_far, t or math.inf)
        if best and best / so_far >= fraction:
            return trial
    return None
