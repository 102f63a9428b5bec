"""Building and measuring candidates: builds in parallel, each run in an isolated worker process.

    problem = make_problem(src, sizes, "cpu", workdir)     # inputs and the reference, on disk
    built = build(problem, candidate)                      # schedule -> source -> library
    runner = IsolatedRunner(); outcome = runner.measure(problem, candidate, built)

A worker process loads the built kernel, checks it once against the reference (the numpy
reference of `examples/references/` for a kernel of the example set, otherwise the result of
the same kernel under the default schedule), then times warm-up and repeated calls and reports
the median and spread. A worker that crashes (a signal) or overruns the timeout is killed and
replaced; the candidate is reported as "crash" or "timeout", a mismatch as "wrong", a build
failure as "compile_error". A GPU candidate checked under CUDA emulation or Triton's interpreter
(no GPU here) is "unmeasured": right, with its compile statistics as features, but no time.
A candidate whose timings spread widely twice (NOISY_SPREAD) is "noisy": its time is kept but
neither `best` nor the cost model uses it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import multiprocessing
import os
import re
import signal
import statistics
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from loopweave.autotune import faults
from loopweave.autotune.database import DEFAULT_SCHEDULE
from loopweave.autotune.features import features
from loopweave.autotune.gpu_features import gpu_features
from loopweave.autotune.keys import kernel_hash, machine_fingerprint
from loopweave.backends import cuda, triton
from loopweave.errors import LoopweaveError
from loopweave.examples import load_polybench_references, load_references
from loopweave.ir.expr import evaluate
from loopweave.ir.kernel import KernelIR, ScalarArg, Tensor, allowed_values
from loopweave.ir.specialize import check_assumptions
from loopweave.passes.schedule import Schedule
from loopweave.pipeline import Pipeline, Stages, backend_module, front_end, get_target


@dataclass(frozen=True)
class Problem:
    """What every candidate of one sweep computes, and how it is measured."""

    source: str
    kernel: str | None
    target: str
    sizes: dict
    data_path: str  # .npz: "in:<arg>" inputs in call order, "out:<name>" expected results
    data_digest: str
    outputs: tuple[str, ...]  # names returned by the kernel, in order
    inouts: tuple[str, ...]
    tol_scale: float = 1.0
    reference: str = "default schedule"  # or "numpy (examples/references/)"
    cc: str | None = None
    cflags: tuple[str, ...] | None = None
    timeout_s: float = 10.0
    warmup: int = 1
    repeats: int = 5
    min_time_s: float = 0.05  # repeat until the timed calls add up to this much (up to 50)


@dataclass(frozen=True)
class Candidate:
    """One point of the search space: a schedule and target options."""

    schedule: str  # Schedule.to_json()
    options: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    strategy: str = ""  # how the search chose it: "model", "random", "seed", ...
    fault: str | None = None  # test-only: see loopweave.autotune.faults

    @property
    def default(self) -> bool:
        """Whether this is the target's default, built as `compile()` builds it without a
        record (`schedule` then holds the default schedule before sizes are known)."""
        return bool(self.config.get(DEFAULT_SCHEDULE))


@dataclass(frozen=True)
class Built:
    status: str  # "ok" or "compile_error"
    source: str = ""
    features: tuple[float, ...] = ()
    error: str = ""


@dataclass(frozen=True)
class Outcome:
    status: str
    median_s: float | None = None
    spread: float | None = None
    times: tuple[float, ...] = ()
    error: str = ""
    machine: str = ""
    features: tuple[float, ...] = ()


# -- the problem: inputs and reference ------------------------------------------------------------

@functools.cache
def _polybench_cases() -> dict:
    """PolyBench's cases by kernel name (examples/polybench/references/; {} without them)."""
    refs = load_polybench_references()
    return {} if refs is None else {
        found.group(1): case for case in refs.POLYBENCH.values()
        if (found := re.search(r"^kernel (\w+)", case.source(), re.MULTILINE))}


def _known_case(kernel: KernelIR) -> tuple[object, bool] | None:
    """The case of the example set or of PolyBench whose computation is exactly this
    kernel's, and whether its numpy reference is the check: the example set's is; PolyBench's
    cases give inputs the kernel is meant for (random ones make cholesky's square roots NaN),
    but at MEDIUM and LARGE some of its numpy references are too ill-conditioned to compare
    with (gramschmidt with more columns than rows: Q's last columns are rounding noise)."""
    refs = load_references()
    for case, numpy in ((refs.KERNELS.get(kernel.name) if refs else None, True),
                        (_polybench_cases().get(kernel.name), False)):
        if case is not None and kernel_hash(front_end(case.source())) == kernel_hash(kernel):
            return case, numpy
    return None


def _random_inputs(kernel: KernelIR, sizes: dict, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    args = {}
    for a in kernel.args:
        dt = a.dtype.numpy
        if isinstance(a, ScalarArg):
            args[a.name] = np.array(sizes.get(a.name, 1) if a.dtype.is_int else 0.5, dtype=dt)
            continue
        shape = tuple(evaluate(d, sizes) for d in a.shape)
        if a.dtype.is_int:
            args[a.name] = rng.integers(-8, 8, size=shape).astype(dt)
        else:
            args[a.name] = rng.uniform(-1, 1, size=shape).astype(dt)
    # An index tensor of a gather (`table[ids[i], d]`) holds indices into what it indexes; a
    # range bound (`row_ptr`) values its checks allow.
    allowed: dict[str, tuple[int, int]] = {}
    for check in kernel.index_checks:
        first, last = allowed_values(kernel, check, sizes)
        a, b = allowed.get(check.index, (first, last))
        allowed[check.index] = (max(a, first), min(b, last))
    for name, (first, last) in allowed.items():
        args[name] = rng.integers(first, max(last, first) + 1, size=args[name].shape).astype(
            args[name].dtype)
    return args


def _results(kernel: KernelIR, args: dict, ret) -> dict:
    outs = [t.name for t in kernel.outputs]
    got = dict(zip(outs, ret if len(outs) > 1 else (ret,), strict=False)) if outs else {}
    got.update({a.name: args[a.name] for a in kernel.args
                if isinstance(a, Tensor) and a.role == "inout"})
    return got


def make_problem(source: str, sizes: dict, target: str, workdir: str | Path, *,
                 kernel: str | None = None, cc=None, cflags=None, seed: int = 0,
                 **measure_options) -> Problem:
    """Inputs for `sizes` and the reference results, written under `workdir`."""
    ir = front_end(source, kernel)
    # before any input is made: a reference (numpy or the default build) would fail on such
    # sizes with an error from inside it, not one that names the `assume`
    check_assumptions(ir, sizes)
    case, numpy = _known_case(ir) or (None, False)
    args = case.make_inputs(sizes, seed) if case is not None else _random_inputs(ir, sizes, seed)
    if numpy:
        expected, tol, how = case.expected(args), case.tol_scale, "numpy (examples/references/)"
    else:
        # The default schedule on the default target, never a tuning record: the reference
        # must not depend on what earlier sweeps recorded.
        reference = Pipeline(source, kernel=kernel, cc=cc, cflags=cflags).kernel()
        copies = {k: np.array(v, copy=True) for k, v in args.items()}
        expected = _results(ir, copies, reference(*copies.values()))
        # outputs that are rounding noise at these sizes are left unchecked: against them
        # every candidate, program order included, was "wrong" (gramschmidt at MEDIUM)
        for name in case.noise_at(sizes) if case is not None else ():  # PolyBench's
            expected.pop(name, None)
        tol, how = 1.0, "default schedule" + (" on PolyBench's inputs" if case else "")
    arrays = {f"in:{k}": np.asarray(v) for k, v in args.items()}
    arrays.update({f"out:{k}": np.asarray(v) for k, v in expected.items()})
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    for k in sorted(arrays):
        h.update(k.encode())
        h.update(np.ascontiguousarray(arrays[k]).tobytes())
    digest = h.hexdigest()[:24]
    path = workdir / f"problem-{digest}.npz"
    if not path.exists():
        tmp = workdir / f".{digest}.{time.time_ns()}.npz"
        save_arrays(tmp, arrays)
        tmp.replace(path)
    inouts = tuple(a.name for a in ir.args if isinstance(a, Tensor) and a.role == "inout")
    return Problem(source, kernel, target, dict(sizes), str(path), digest,
                   tuple(t.name for t in ir.outputs), inouts, tol, how, cc,
                   tuple(cflags) if cflags else None, **measure_options)


#: GPU backends: their candidates get compile statistics as features (autotune/gpu_features).
GPU_BACKENDS = ("cuda", "triton")


def problem_backend(problem: Problem, candidate: Candidate) -> str:
    """The backend a candidate of `problem` is built by."""
    return get_target(problem.target, problem.cc, problem.cflags, candidate.options).backend


def simulated(target) -> str | None:
    """What stands in for the GPU a candidate is meant for (CUDA emulation, Triton's
    interpreter), or None when it runs on the real thing and its time means something."""
    if target.backend == "cuda" and cuda.emulating(target):
        return "CUDA emulation on the CPU"
    if target.backend == "triton" and triton.interpreting(target):
        return "Triton's interpreter"
    return None


# -- building -------------------------------------------------------------------------------------

def measure_pipeline(problem: Problem, candidate: Candidate) -> Pipeline:
    """The pipeline `compile()` runs, with the candidate's schedule and options (none for
    the default: `compile()` without a record)."""
    schedule = None if candidate.default else Schedule.from_json(candidate.schedule)
    return Pipeline(problem.source, problem.target, kernel=problem.kernel, schedule=schedule,
                    cc=problem.cc, cflags=problem.cflags, options=candidate.options)


def candidate_stages(problem: Problem, candidate: Candidate) -> tuple[Pipeline, Stages]:
    """The candidate's pipeline and the stages it builds at the problem's sizes: the
    default's are what `compile()` builds there without a record (its choice by sizes
    included), so that a sweep compares every schedule with what the user would get; a
    schedule's are built with the sizes fixed that `compile()` fixes for a record
    (`Pipeline.fixed_for_choices`: a GEMM's strides, a convolution's sizes)."""
    pipeline = measure_pipeline(problem, candidate)
    if candidate.default:
        return pipeline, pipeline.default_stages(problem.sizes)
    return pipeline, pipeline.stages(problem.sizes, specialize=pipeline.fixed_for_choices())


def build(problem: Problem, candidate: Candidate) -> Built:
    """Schedule, render and build one candidate (into the kernel cache); never raises."""
    try:
        pipeline, result = candidate_stages(problem, candidate)
        source = faults.inject(result.source, result.ir, candidate.fault)
        pipeline.load(replace(result, source=source))
        feats = features(result.ir, result.loops, problem.sizes)
        if pipeline.target.backend in GPU_BACKENDS:
            feats += gpu_features(pipeline.target, source, problem.source, problem.kernel)
        return Built("ok", source, tuple(feats))
    except LoopweaveError as e:
        return Built("compile_error", error=str(e))
    except Exception as e:  # a bug must not stop the sweep: record it with the candidate
        return Built("compile_error", error=f"{type(e).__name__}: {e}")


# -- measuring, inside the worker -----------------------------------------------------------------

_DATA: dict[str, dict] = {}


#: In a saved problem: the ml_dtypes type of each array stored as its bits.
_ML_TYPES_KEY = "__ml_dtypes__"


def save_arrays(path: Path, arrays: dict) -> None:
    """`np.savez` that keeps ml_dtypes types (bf16, the 8- and 4-bit floats): .npz files store
    them as raw bytes ('|V2'), which a kernel refuses, so they go in as their unsigned bits
    with their type's name beside them."""
    ml_types = {k: a.dtype.name for k, a in arrays.items()
                if a.dtype.type.__module__.startswith("ml_dtypes")}
    stored = {k: (a.view(f"u{a.dtype.itemsize}") if k in ml_types else a)
              for k, a in arrays.items()}
    np.savez(path, **stored, **{_ML_TYPES_KEY: np.array(json.dumps(ml_types))})


def load_arrays(path: str | Path) -> dict:
    """What `save_arrays` wrote, with the ml_dtypes types back."""
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files if k != _ML_TYPES_KEY}
        ml_types = json.loads(str(f[_ML_TYPES_KEY])) if _ML_TYPES_KEY in f.files else {}
    if ml_types:
        import ml_dtypes  # present: the arrays were made with it

        for k, name in ml_types.items():
            arrays[k] = arrays[k].view(getattr(ml_dtypes, name))
    return arrays


def _load_data(problem: Problem) -> dict:
    if problem.data_digest not in _DATA:
        _DATA.clear()  # one problem at a time: do not keep large arrays around
        _DATA[problem.data_digest] = load_arrays(problem.data_path)
    return _DATA[problem.data_digest]


def run_measurement(problem: Problem, candidate: Candidate, built: Built) -> Outcome:
    """Load the built candidate in this process, check it, time it (what a worker does)."""
    machine = machine_fingerprint()
    pipeline, result = candidate_stages(problem, candidate)
    # the source built (faults included), at every call
    kernel = pipeline.kernel(replace(result, source=built.source), per_sizes=False)
    data = _load_data(problem)
    inputs = {k[3:]: v for k, v in data.items() if k.startswith("in:")}

    def fresh():  # inout arrays are updated in place: every call starts from the inputs
        return {k: np.array(v, copy=True) for k, v in inputs.items()}

    args = fresh()
    got = _results(result.ir, args, kernel(*args.values()))
    refs = load_references()
    for name in (*problem.outputs, *problem.inouts):
        if f"out:{name}" not in data:  # rounding noise at these sizes (`make_problem`)
            continue
        err, ok = refs.compare(got[name], data[f"out:{name}"], problem.tol_scale) if refs \
            else _compare(got[name], data[f"out:{name}"])
        if not ok:
            return Outcome("wrong", error=f"{name} differs from the {problem.reference} "
                           f"reference by {err:g}", machine=machine)
    stand_in = simulated(pipeline.target)
    if stand_in:  # right, but its time on this CPU says nothing about a GPU
        return Outcome("unmeasured", error=f"checked under {stand_in}; not timed",
                       machine=machine)
    for _ in range(problem.warmup):
        kernel(*fresh().values())

    def round_of_timings() -> list[float]:
        times: list[float] = []
        while len(times) < problem.repeats or (sum(times) < problem.min_time_s
                                               and len(times) < 50):
            args = fresh()
            start = time.perf_counter()
            kernel(*args.values())
            times.append(time.perf_counter() - start)
        return times

    return timed_outcome(round_of_timings, machine)


#: A round of timings whose interquartile range exceeds this fraction of its median is noisy
#: (another process took the cores, a thread pool spun): it is timed again, and a record still
#: noisy the second time is stored as "noisy", not as a time the search and the model trust.
NOISY_SPREAD = 0.5


def spread_of(times: list[float]) -> float:
    """The interquartile range of `times` over their median (0 for fewer than 4)."""
    median = statistics.median(times)
    if len(times) < 4 or median <= 0:
        return 0.0
    quartiles = statistics.quantiles(times, n=4)
    return (quartiles[2] - quartiles[0]) / median


def timed_outcome(round_of_timings, machine: str) -> Outcome:
    """The outcome of one or two rounds of `round_of_timings()` (see NOISY_SPREAD): the
    steadier round's median and spread, "ok" unless both rounds were noisy."""
    rounds = [round_of_timings()]
    if spread_of(rounds[0]) > NOISY_SPREAD:
        rounds.append(round_of_timings())
    times = min(rounds, key=spread_of)
    median, spread = statistics.median(times), spread_of(times)
    if spread <= NOISY_SPREAD:
        return Outcome("ok", median, spread, tuple(times), machine=machine)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return Outcome("noisy", median, spread, tuple(times), machine=machine,
                   error=f"timings spread {spread:.0%} of their median in two rounds (load "
                         f"{load:.1f} on {os.cpu_count()} CPUs): not kept as this schedule's "
                         f"time")


def _compare(got, expected) -> tuple[float, bool]:
    """Without the example references: numpy's allclose at float32 tolerance."""
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        return float("inf"), False
    err = float(np.max(np.abs(got - expected))) if got.size else 0.0
    return err, bool(np.allclose(got, expected, rtol=1e-4, atol=1e-5, equal_nan=False))


def _prepare(problem: Problem) -> str:
    try:
        backend_module(get_target(problem.target, problem.cc, problem.cflags))
        _load_data(problem)
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    # One untimed call of the default schedule loads the backend's runtime (torch and Triton
    # for the Triton target), so a candidate's timeout measures the candidate alone.
    default = Candidate("[]")
    built = build(problem, default)
    if built.status == "ok":
        try:
            run_measurement(replace(problem, warmup=0, repeats=1, min_time_s=0), default, built)
        except Exception:  # the default's own problems show when it is measured
            pass
    return "ready"


def _worker_main(conn) -> None:
    """A measurement worker: measure what the parent sends until it closes the pipe."""
    # This module's imports (the pipeline, hence the front end and passes) are done before
    # "ready", so they are not part of any measurement's timeout.
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    conn.send("ready")
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "prepare":  # import the backend, load the data: outside any timeout
            conn.send(_prepare(message[1]))
            continue
        _, problem, candidate, built = message
        try:
            outcome = run_measurement(problem, candidate, built)
        except Exception as e:
            outcome = Outcome("crash", error=f"{type(e).__name__}: {e}\n"
                              f"{traceback.format_exc(limit=3)}", machine=machine_fingerprint())
        conn.send(outcome)


# -- the isolated runner, in the parent -----------------------------------------------------------

class IsolatedRunner:
    """Runs measurements in a worker process it replaces whenever one dies or hangs."""

    def __init__(self):
        self._ctx = multiprocessing.get_context("spawn")
        self._process = None
        self._conn = None
        self.workers_started = 0
        self.startup_timeout_s = 120.0
        self._prepared: str | None = None  # the problem the current worker is ready for

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._process = self._ctx.Process(target=_worker_main, args=(child,), daemon=True,
                                          name="loopweave-measure")
        self._process.start()
        child.close()
        self._conn = parent
        self.workers_started += 1
        # The timeout of a measurement must not include the interpreter's start-up.
        if not parent.poll(self.startup_timeout_s) or parent.recv() != "ready":
            self._kill()
            raise LoopweaveError("the measurement worker did not start")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join(5)
            self._conn.close()
        self._process = self._conn = self._prepared = None

    def measure(self, problem: Problem, candidate: Candidate, built: Built) -> Outcome:
        """Measure one built candidate; the outcome's status says what happened."""
        if built.status != "ok":
            return Outcome(built.status, error=built.error, machine=machine_fingerprint())
        if self._process is None or not self._process.is_alive():
            self._start()
        if self._prepared != problem.data_digest:
            self._conn.send(("prepare", problem))
            answer = self._conn.recv() if self._conn.poll(self.startup_timeout_s) else "timeout"
            if answer != "ready":
                self._kill()
                return Outcome("crash", error=f"preparing the worker failed: {answer}",
                               machine=machine_fingerprint(), features=built.features)
            self._prepared = problem.data_digest
        try:
            self._conn.send(("measure", problem, candidate, built))
            if self._conn.poll(problem.timeout_s):
                outcome = self._conn.recv()
                return Outcome(**{**outcome.__dict__, "features": built.features})
            self._kill()
            return Outcome("timeout", error=f"no result within {problem.timeout_s:g} s",
                           machine=machine_fingerprint(), features=built.features)
        except (EOFError, OSError, BrokenPipeError):
            self._process.join(5)
            code = self._process.exitcode
            self._kill()
            why = f"signal {signal.Signals(-code).name}" if code and code < 0 else f"exit {code}"
            return Outcome("crash", error=f"the measurement worker died ({why})",
                           machine=machine_fingerprint(), features=built.features)

    def close(self) -> None:
        if self._process is not None:
            try:
                self._conn.close()
                self._process.join(2)
            finally:
                self._kill()
