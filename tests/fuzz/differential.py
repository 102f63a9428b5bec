"""Differential runner for random kernels: every target against program-order C.

    python -m tests.fuzz.differential --n 1000 --seed 0 --targets cpu,cpu-random,triton,cuda,aarch64

For each kernel of tests/fuzz/random_kernels.py (seeds seed .. seed+n-1) the reference is the
kernel in program order on the host (`compile(src, "cpu", schedule=Schedule())`); each target
runs it on the same inputs and its outputs and `inout` tensors are compared with tolerances by
dtype (integers exactly). Targets: `cpu` (the default schedule), `cpu-random` (a random legal
schedule, tests/fuzz/random_schedules.py), `cpu-portable` (the default schedule
built without -march=native: no intrinsics header, 4x quicker to build), `triton` (Triton's
interpreter), `cuda` (CPU emulation), `aarch64` (QEMU; skipped with the reason where the tools
are missing).

Every outcome is one of: `ok`; `unsupported` (a `LoopweaveError` that says what is not
supported, kept with its message); `skip` (the target is not available here); `mismatch`; or
`crash` (any other exception, a `CompileError` on generated code, a dead or hung process).
The last two are failures: `shrink()` (tests/fuzz/shrink.py) reduces a failing kernel (drops
statements, the time loop, `where` conditions, tensor dimensions; simplifies expressions;
lowers sizes) while it still fails the same way, and `regression_snippet()` prints the
minimal kernel as a test case for tests/test_backend_fuzz_regressions.py.

Each target runs in a forked child process (a segfaulting or hanging kernel is a crash of that
target, not of the runner).
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before anything imports triton: no GPU here

import argparse  # noqa: E402
import ctypes  # noqa: E402
import multiprocessing  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field, replace  # noqa: E402

import numpy as np  # noqa: E402

if __package__ in (None, ""):  # run as a script: tests/fuzz/differential.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from fuzz import random_kernels as rk  # noqa: E402
    from fuzz import random_schedules as rs  # noqa: E402
    from fuzz import row_kernels  # noqa: E402
    from fuzz.shrink import shrink  # noqa: E402
else:
    from . import random_kernels as rk  # noqa: E402
    from . import random_schedules as rs  # noqa: E402
    from . import row_kernels  # noqa: E402
    from .shrink import shrink  # noqa: E402

import loopweave  # noqa: E402
from loopweave.driver import front_end  # noqa: E402
from loopweave.errors import CompileError, LoopweaveError  # noqa: E402
from loopweave.ir.expr import evaluate  # noqa: E402
from loopweave.ir.kernel import ScalarArg  # noqa: E402

ALL_TARGETS = ("cpu", "cpu-random", "cpu-portable", "triton", "cuda", "aarch64")
FAILURES = ("mismatch", "crash")
# Tolerances by dtype: rtol, and atol as rtol times the largest magnitude of the reference
# (reductions in another order differ by rounding relative to their terms, not their result).
RTOL = {"f64": 1e-9, "f32": 2e-4, "f16": 2e-2, "bf16": 8e-2}
TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Case:
    """One kernel to run: DSL text, its sizes, scalar values, and the seed of its inputs."""

    source: str
    sizes: dict
    scalars: dict = field(default_factory=dict)
    seed: int = 0
    schedule_seed: int = 0  # the cpu-random target's schedule
    schedule_json: str | None = None  # a fixed schedule for cpu-random (shrinking, regressions)


@dataclass
class Outcome:
    target: str
    status: str  # ok, unsupported, skip, mismatch, crash
    message: str = ""
    seconds: float = 0.0
    schedule: str | None = None  # cpu-random: the schedule it ran

    @property
    def failed(self) -> bool:
        return self.status in FAILURES


# -- inputs and comparison ----------------------------------------------------------------

def make_inputs(kernel_ir, case: Case) -> list:
    """The kernel's arguments, in call order, random but fixed by `case.seed`."""
    rng = np.random.default_rng(case.seed)
    env = {**case.sizes, **{k: v for k, v in case.scalars.items() if isinstance(v, int)}}
    args = []
    for a in kernel_ir.args:
        if isinstance(a, ScalarArg):
            args.append(case.scalars[a.name])
            continue
        shape = tuple(evaluate(d, env) for d in a.shape)
        dtype = a.dtype.numpy
        if a.dtype.is_float:
            args.append(rng.uniform(-1.0, 1.0, shape).astype(dtype))
        elif a.dtype.kind == "uint":
            args.append(rng.integers(0, 12, shape).astype(dtype))
        else:
            args.append(rng.integers(-6, 7, shape).astype(dtype))
    return args


def results_of(kernel_ir, args: list, returned) -> dict[str, np.ndarray]:
    """Outputs and inout tensors after a call, by name, as plain numpy arrays."""
    outs = kernel_ir.outputs
    values = [] if returned is None else (list(returned) if len(outs) > 1 else [returned])
    got = {t.name: np.array(v) for t, v in zip(outs, values, strict=True)}
    for spec, arg in zip(kernel_ir.args, args, strict=True):
        if not isinstance(spec, ScalarArg) and spec.role == "inout":
            got[spec.name] = np.array(arg)
    return got


def compare(got: dict, want: dict, dtypes: dict[str, str]) -> str | None:
    """None when `got` agrees with `want`, else what differs."""
    for name, ref in want.items():
        if name not in got:
            return f"{name}: missing"
        g = got[name]
        if g.shape != ref.shape or g.dtype != ref.dtype:
            return f"{name}: shape/dtype {g.shape} {g.dtype}, expected {ref.shape} {ref.dtype}"
        dtype = dtypes.get(name, "f64" if ref.dtype.kind == "f" else "int")
        if dtype not in RTOL:
            if not np.array_equal(g, ref):
                bad = np.argwhere(g != ref)[0]
                return (f"{name}: {np.count_nonzero(g != ref)} of {g.size} elements differ, "
                        f"first at {tuple(bad)}: {g[tuple(bad)]} != {ref[tuple(bad)]}")
            continue
        message = _compare_floats(name, g.astype(np.float64), ref.astype(np.float64), RTOL[dtype])
        if message:
            return message
    return None


def _compare_floats(name: str, g: np.ndarray, ref: np.ndarray, rtol: float) -> str | None:
    if g.size == 0:
        return None
    special = ~np.isfinite(ref) | ~np.isfinite(g)
    if not np.array_equal(np.isnan(g), np.isnan(ref)) or \
            not np.array_equal(g[np.isinf(ref)], ref[np.isinf(ref)]):
        at = tuple(np.argwhere((np.isnan(g) != np.isnan(ref)) | (special & (g != ref)))[0])
        return f"{name}: nan/inf differ at {at}: {g[at]} != {ref[at]}"
    finite = np.isfinite(ref)
    scale = max(1.0, float(np.max(np.abs(ref[finite]), initial=0.0)))
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf where both are inf
        err = np.abs(g - ref)
    bad = finite & (err > rtol * 4 * scale + rtol * np.abs(ref))
    if bad.any():
        at = tuple(np.argwhere(bad)[0])
        return (f"{name}: {np.count_nonzero(bad)} of {g.size} elements differ, first at {at}: "
                f"{g[at]!r} != {ref[at]!r} (rtol {rtol:g}, scale {scale:g})")
    return None


# -- the targets ----------------------------------------------------------------------------

def _aarch64_missing() -> str | None:
    for tool in ("aarch64-linux-gnu-gcc", "qemu-aarch64"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (make toolchains)"
    return None


def _triton_missing() -> str | None:
    if os.environ.get("TRITON_INTERPRET") != "1":
        return "TRITON_INTERPRET is not 1 (set before triton was imported): no GPU here"
    try:
        import torch  # noqa: F401
        import triton  # noqa: F401
    except ImportError as e:
        return f"triton not installed: {e}"
    return None


def _cuda_missing() -> str | None:
    return None if shutil.which("g++") else "g++ (CUDA emulation) not installed"


def compile_for(target: str, case: Case, kernel_ir=None):
    """(kernel, schedule json or None) for `target`: the kernel built as that target runs it."""
    src = case.source
    if target == "reference":
        return loopweave.compile(src, "cpu", schedule=loopweave.Schedule(), tuning_db=False), None
    if target == "cpu":
        return loopweave.compile(src, "cpu", tuning_db=False), None
    if target == "cpu-portable":
        return loopweave.compile(src, "cpu", cflags=["-O2"], tuning_db=False), None
    if target == "cpu-random":
        sched = loopweave.Schedule.from_json(with_schedule(target, case, kernel_ir).schedule_json)
        return loopweave.compile(src, "cpu", schedule=sched, tuning_db=False), sched.to_json()
    if target == "triton":
        return loopweave.compile(src, "triton", tuning_db=False), None
    if target == "cuda":
        return loopweave.compile(src, "cuda", emulate=True, tuning_db=False), None
    if target == "aarch64":
        return loopweave.compile(src, "aarch64", tuning_db=False), None
    raise ValueError(f"unknown target {target!r}; known: {', '.join(ALL_TARGETS)}")


def with_schedule(target: str, case: Case, kernel_ir=None) -> Case:
    """`case` with its cpu-random schedule drawn (from `case.schedule_seed`) when it has none,
    before anything compiles: a failure that kills the build or the process still names the
    schedule it ran (the shrinker keeps it fixed, the regression case records it)."""
    if target != "cpu-random" or case.schedule_json is not None:
        return case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kernel_ir = kernel_ir or front_end(case.source)
    sched = rs.random_schedule(kernel_ir, random.Random(case.schedule_seed))
    return replace(case, schedule_json=sched.to_json())


MISSING: dict[str, Callable[[], str | None]] = {
    "triton": _triton_missing, "cuda": _cuda_missing, "aarch64": _aarch64_missing}


def run_target(target: str, case: Case):
    """Compile and run `case` on `target` in this process: ("ok", results, schedule) or
    (status, message, schedule) for unsupported and crash."""
    schedule = case.schedule_json
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kernel_ir = front_end(case.source)
            case = with_schedule(target, case, kernel_ir)
            schedule = case.schedule_json
            kernel, schedule = compile_for(target, case, kernel_ir)
            args = make_inputs(kernel_ir, case)
            returned = kernel(*args)
        return "ok", results_of(kernel_ir, args, returned), schedule
    except CompileError as e:  # generated code the compiler rejects is a bug, not a limit
        return "crash", f"CompileError: {_first_lines(str(e))}", schedule
    except LoopweaveError as e:
        return "unsupported", f"{type(e).__name__}: {_first_lines(str(e), 1)}", schedule
    except Exception as e:  # noqa: BLE001 - every other exception is what the fuzzer looks for
        where = traceback.extract_tb(e.__traceback__)[-1]
        return ("crash", f"{type(e).__name__}: {_first_lines(str(e), 1)} "
                f"[{os.path.basename(where.filename)}:{where.lineno}]", schedule)


def _first_lines(text: str, n: int = 3) -> str:
    return " | ".join(text.strip().splitlines()[:n])[:400]


def run_isolated(target: str, case: Case, timeout: float = TIMEOUT_S):
    """`run_target` in a forked child: a crash or hang of the kernel is reported, not suffered."""
    try:
        case = with_schedule(target, case)
    except Exception:  # noqa: BLE001 - the child reports it, as a crash with its traceback
        pass
    status, message, schedule = run_isolated_call(lambda: run_target(target, case), timeout)
    return status, message, schedule if status == "ok" or schedule else case.schedule_json


def run_isolated_call(call: Callable[[], tuple], timeout: float):
    """`call()` (which returns a (status, payload, schedule) tuple) in a forked child; a child
    that dies or runs past `timeout` seconds gives ("crash", why, None)."""
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork of a threaded process
        child = ctx.Process(target=_child, args=(send, call), daemon=True)
        child.start()
    send.close()
    result, timed_out = None, not receive.poll(timeout)
    if not timed_out:
        try:
            result = receive.recv()
        except EOFError:  # the child died before it sent anything
            pass
    if timed_out:
        child.kill()
    child.join()
    receive.close()
    if result is not None:
        return result
    if timed_out:
        return "crash", f"timeout: no result within {timeout:g} s", None
    return "crash", f"the process died (exit code {child.exitcode})", None


def _child(send, call) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a segfault dumps no core: quick death
    _one_openmp_thread()
    try:
        send.send(call())
    finally:
        send.close()
        os._exit(0)  # no atexit handlers of the parent in the child


def _one_openmp_thread() -> None:
    """libgomp is not fork-safe: a child of a process whose OpenMP threads have run hangs in its
    first parallel region (the pool's threads are not in the child). One thread never uses the
    pool, so parallel kernels still run, serially (the parent may be a pytest worker that ran
    OpenMP kernels before)."""
    try:
        ctypes.CDLL("libgomp.so.1").omp_set_num_threads(1)
    except OSError:  # no libgomp here: nothing was forked with its threads either
        pass


# -- one kernel on every target ---------------------------------------------------------------

_WARM_UP_KERNEL = "kernel warm(X: f32[N]) -> Y: f32[N] { Y[i] = X[i] * 2.0 }"


@dataclass
class Runner:
    """Runs cases on targets against the reference; `isolate` forks a child per run."""

    targets: tuple[str, ...]
    isolate: bool = True
    timeout: float = TIMEOUT_S
    extra: dict = field(default_factory=dict)  # name -> run(case) for tests of the runner

    def __post_init__(self):
        if self.isolate:
            self.warm_up()

    def warm_up(self) -> None:
        """Import what each target's compile needs, here in the parent: a forked child then
        starts with the modules loaded (otherwise every child imports them again)."""
        from loopweave.driver import stages

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for target in ("reference", *self.targets):
                if target in self.extra or self.missing(target):
                    continue
                name = {"reference": "cpu", "cpu-random": "cpu", "cpu-portable": "cpu"}.get(
                    target, target)
                try:
                    stages(_WARM_UP_KERNEL, name)
                except Exception:  # noqa: BLE001 - only a warm-up: the runs report errors
                    pass
            if "triton" in self.targets and not self.missing("triton"):
                import triton  # noqa: F401
        from loopweave.toolchain import compiler_identity

        for cc in (os.environ.get("CC", "cc"), os.environ.get("CXX", "g++"),
                   "aarch64-linux-gnu-gcc"):
            if shutil.which(cc):
                compiler_identity(cc)  # cached: `cc --version` once, not in every child

    def missing(self, target: str) -> str | None:
        check = MISSING.get(target)
        return check() if check else None

    def run(self, target: str, case: Case):
        if target in self.extra:
            return self.extra[target](case)
        if self.isolate:
            return run_isolated(target, case, self.timeout)
        return run_target(target, case)

    def check(self, case: Case, targets: tuple[str, ...] | None = None) -> list[Outcome]:
        """The outcome of each target on `case` (the reference first, as target 'reference'
        when it is not ok)."""
        start = time.monotonic()
        status, ref, _ = self.run("reference", case)
        if status != "ok":
            return [Outcome("reference", status, ref, time.monotonic() - start)]
        dtypes = _result_dtypes(case.source)
        outcomes = []
        for target in targets or self.targets:
            start = time.monotonic()
            reason = self.missing(target)
            if reason:
                outcomes.append(Outcome(target, "skip", reason))
                continue
            status, got, schedule = self.run(target, case)
            if status == "ok":
                diff = compare(got, ref, dtypes)
                status, got = ("mismatch", diff) if diff else ("ok", "")
            outcomes.append(Outcome(target, status, got, time.monotonic() - start, schedule))
        return outcomes


def _result_dtypes(source: str) -> dict[str, str]:
    """The type whose tolerance each result gets: its own, or the least precise float type of
    the kernel's tensors where that is looser (an f64 output of an f32 temporary carries f32
    rounding: one ulp of an f32 `exp` differs between libm and numpy)."""
    with warnings.catch_warnings():  # each run reports the kernel's warnings, not this parse
        warnings.simplefilter("ignore")
        kernel_ir = front_end(source)
    tensors = [*kernel_ir.outputs, *(a for a in kernel_ir.args if not isinstance(a, ScalarArg))]
    floats = [t.dtype.name for t in kernel_ir.tensors.values() if t.dtype.name in RTOL]
    loosest = max(floats, key=RTOL.get, default=None)
    return {t.name: loosest if t.dtype.name in RTOL and RTOL[loosest] > RTOL[t.dtype.name]
            else t.dtype.name for t in tensors}


def case_of(spec: rk.KernelSpec, seed: int) -> Case:
    return Case(spec.source(), dict(spec.sizes), dict(spec.scalar_values), seed, seed)


@dataclass(frozen=True)
class Regression:
    """A minimal failing kernel, saved: tests/test_backend_fuzz_regressions.py."""

    target: str
    source: str
    sizes: dict
    scalars: dict = field(default_factory=dict)
    seed: int = 0  # of the inputs
    schedule: str | None = None  # cpu-random: the schedule, as Schedule.to_json()
    reason: str = ""  # the failure when it was found

    def case(self) -> Case:
        return Case(self.source, dict(self.sizes), dict(self.scalars), self.seed,
                    schedule_json=self.schedule)


def check_regression(r: Regression, runner: Runner | None = None) -> None:
    """Assert that `r.target` agrees with program order on `r`'s kernel (and skip where the
    target is not available)."""
    import pytest

    runner = runner or Runner((r.target,))
    outcomes = runner.check(r.case())
    for o in outcomes:
        if o.status == "skip":
            pytest.skip(o.message)
        assert not o.failed, f"{o.target} {o.status}: {o.message}"
        assert o.status == "ok", f"{o.target} {o.status}: {o.message}"


def regression_snippet(case: Case, failure: Outcome) -> str:
    """A case for tests/test_backend_fuzz_regressions.py."""
    lines = ["    Regression(", f'        "{failure.target}",']
    lines += [f"        {line!r}" for line in case.source.splitlines(keepends=True)]
    lines[-1] += ","
    lines.append(f"        sizes={case.sizes!r}, scalars={case.scalars!r}, seed={case.seed},")
    if failure.target == "cpu-random" and case.schedule_json:
        lines.append(f"        schedule={case.schedule_json!r},")
    lines.append(f"        reason={(failure.status + ': ' + failure.message)[:160]!r}),")
    return "\n".join(lines)


# -- a run over many seeds ----------------------------------------------------------------------

@dataclass
class Tally:
    """Counts per target: runs, each status, and unsupported/crash messages grouped."""

    runs: Counter = field(default_factory=Counter)
    status: Counter = field(default_factory=Counter)  # (target, status)
    messages: Counter = field(default_factory=Counter)  # (target, status, message key)
    failures: list = field(default_factory=list)  # (seed, Outcome)

    kernels: int = 0

    def add(self, seed: int, outcomes: list[Outcome]) -> None:
        self.kernels += 1
        for o in outcomes:
            self.runs[o.target] += 1
            self.status[o.target, o.status] += 1
            if o.status in ("unsupported", "crash", "skip", "mismatch"):
                self.messages[o.target, o.status, _message_key(o)] += 1
            if o.failed:
                self.failures.append((seed, o))

    def table(self) -> str:
        targets = sorted(self.runs, key=lambda t: (t != "reference", t))
        head = f"{'target':<14}{'runs':>7}{'ok':>7}{'mismatch':>10}{'crash':>7}" \
               f"{'unsupported':>13}{'skip':>6}"
        rows = [head]
        for t in targets:
            s = {k: self.status[t, k] for k in ("ok", "mismatch", "crash", "unsupported", "skip")}
            rows.append(f"{t:<14}{self.runs[t]:>7}{s['ok']:>7}{s['mismatch']:>10}"
                        f"{s['crash']:>7}{s['unsupported']:>13}{s['skip']:>6}")
        rows.append("")
        for (t, st, key), n in sorted(self.messages.items(), key=lambda kv: (-kv[1], kv[0])):
            rows.append(f"{n:>6}  {t:<13} {st:<12} {key}")
        return "\n".join(rows)


def _message_key(o: Outcome) -> str:
    """The message without the details that vary kernel to kernel (names, numbers)."""
    import re

    text = o.message
    if o.status == "mismatch":
        return "values differ"
    text = re.sub(r"line \d+, column \d+: ", "", text)
    text = re.sub(r"\b\d+\b", "#", text)
    text = re.sub(r"'[^']*'", "'_'", text)
    return text[:140]


#: The kernel generators `--generator` names: the general one, and row-wise normalizations.
GENERATORS = {"general": rk.generate, "rows": row_kernels.generate}


def fuzz(seeds: range, runner: Runner, log=print, shrink_budget_s: float = 0.0,
         generate: Callable[[int], rk.KernelSpec] = rk.generate) -> Tally:
    """Run the kernels `generate` makes of `seeds`; failures are shrunk (if given a budget)
    and printed."""
    tally = Tally()
    start = time.monotonic()
    try:
        _fuzz_seeds(seeds, runner, tally, log, shrink_budget_s, start, generate)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: stop, and keep what was counted
        log(f"interrupted after {tally.kernels} kernels")
    return tally


def _fuzz_seeds(seeds, runner, tally, log, shrink_budget_s, start, generate) -> None:
    for n, seed in enumerate(seeds, 1):
        spec = generate(seed)
        case = case_of(spec, seed)
        outcomes = runner.check(case)
        tally.add(seed, outcomes)
        for o in outcomes:
            if not o.failed:
                continue
            log(f"seed {seed}: {o.target} {o.status}: {o.message}")
            if shrink_budget_s > 0:
                small, small_case, small_o = shrink(spec, case, o, runner, shrink_budget_s)
                log(f"minimal kernel (seed {seed}, {o.target}):\n{small_case.source}"
                    f"sizes {small_case.sizes} scalars {small_case.scalars}\n"
                    f"{small_o.status}: {small_o.message}\n"
                    f"{regression_snippet(small_case, small_o)}\n")
        if log and n % 50 == 0:
            log(f"[{n} kernels, {time.monotonic() - start:.0f} s]\n{tally.table()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="how many kernels")
    parser.add_argument("--seed", type=int, default=0, help="the first seed")
    parser.add_argument("--targets", default="cpu,cpu-random,triton,cuda,aarch64",
                        help=f"comma-separated, of {', '.join(ALL_TARGETS)}")
    parser.add_argument("--shrink", type=float, default=120.0,
                        help="seconds to shrink each failure (0: do not shrink)")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S,
                        help="seconds per target run before it counts as a hang")
    parser.add_argument("--show", action="store_true", help="print each kernel's source")
    parser.add_argument("--generator", choices=sorted(GENERATORS), default="general",
                        help="general: tests/fuzz/random_kernels.py; rows: row-wise "
                        "normalizations, tests/fuzz/row_kernels.py")
    args = parser.parse_args(argv)
    targets = tuple(t.strip() for t in args.targets.split(",") if t.strip())
    unknown = [t for t in targets if t not in ALL_TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(ALL_TARGETS)}")
    created = None  # a private build cache, removed at the end
    if "LOOPWEAVE_CACHE_DIR" not in os.environ:
        created = os.environ["LOOPWEAVE_CACHE_DIR"] = tempfile.mkdtemp(
            prefix="loopweave-fuzz-cache-")
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        runner = Runner(targets, timeout=args.timeout)
        seeds = range(args.seed, args.seed + args.n)
        if args.show:
            for s in seeds:
                print(GENERATORS[args.generator](s).source())
        tally = fuzz(seeds, runner, shrink_budget_s=args.shrink,
                     generate=GENERATORS[args.generator])
        print(tally.table())
        return 1 if tally.failures else 0
    finally:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
