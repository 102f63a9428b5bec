"""Where candidates are built and measured: a local process pool, or a Ray cluster.

    for candidate, outcome in executor.run(problem, candidates): ...   (as each one finishes)

`LocalExecutor` builds a round's candidates in parallel in a process pool, then measures them
one at a time in an isolated worker process (measurements do not compete for the cores).
`RayExecutor` sends each candidate to a Ray task that builds it and measures it in an isolated
worker on whichever node runs the task, so the outcome carries that node's machine fingerprint.

Both measure with the OpenMP thread count the records are keyed with (`run(..., threads=)`,
`keys.openmp_threads()` of the process that tunes): a record keyed "2 threads" was timed on 2.

Worker processes start with multiprocessing's "spawn" method, which runs the main script again
in each worker; `check_main_guard()` turns a tuning call that the workers would repeat (one at
the top level of a script, without `if __name__ == "__main__":`) into a clear error up front.
"""

from __future__ import annotations

import ast
import multiprocessing
import os
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path
from types import FrameType

from loopweave.autotune.keys import openmp_threads
from loopweave.autotune.measure import Built, Candidate, IsolatedRunner, Outcome, Problem, build
from loopweave.errors import LoopweaveError

# -- the main script and spawned workers ----------------------------------------------------------

_GUARD_ADVICE = ("put the code that tunes under `if __name__ == \"__main__\":` (loopweave's "
                 "worker processes start with multiprocessing's 'spawn' method, which runs the "
                 "main script again in each worker; see docs/tuning.md)")


def main_reruns_in_workers() -> bool:
    """Whether a "spawn" worker runs the main module again (as `__mp_main__`) before its work,
    as `multiprocessing.spawn` does for `python script.py` and `python -m module`, but not for
    a package's `__main__.py`, `python -c` or an interactive session."""
    main = sys.modules.get("__main__")
    module_name = getattr(getattr(main, "__spec__", None), "name", None)
    if module_name is not None:
        return module_name != "__main__" and not module_name.endswith(".__main__")
    return getattr(main, "__file__", None) is not None


def check_main_guard() -> None:
    """Raise a LoopweaveError that says to add `if __name__ == "__main__":` where the tuning
    call would run again in every worker process: before any worker starts, when the call
    comes from the main script's top-level code outside such a block; and inside a worker
    that is running the main script again (where the static check could not tell)."""
    if _inside_main_rerun():
        raise LoopweaveError(f"tune() was called while a worker process ran the main script "
                             f"again: {_GUARD_ADVICE}")
    if not main_reruns_in_workers():
        return
    frame = _main_script_frame()
    if frame is not None and not _under_name_guard(frame.f_code.co_filename, frame.f_lineno):
        raise LoopweaveError(f"{frame.f_code.co_filename}, line {frame.f_lineno}: tune() is "
                             f"called at the top level of the main script: {_GUARD_ADVICE}")


def _inside_main_rerun() -> bool:
    """Whether this process is a spawned worker running the main script again."""
    if multiprocessing.parent_process() is None:
        return False
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == "__mp_main__":
            return True
        frame = frame.f_back
    return False


def _main_script_frame() -> FrameType | None:
    """The frame of the main module's top-level code on the current call stack, if any."""
    main_globals = vars(sys.modules["__main__"])
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_globals is main_globals and frame.f_code.co_name == "<module>":
            return frame
        frame = frame.f_back
    return None


def _under_name_guard(path: str, line: int) -> bool:
    """Whether `line` of the file lies in the body of an `if` that tests `__name__`; True where
    the file cannot be read or parsed (no error is better than a wrong one)."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return True
    statements = tree.body
    while statements:
        around = [s for s in statements if s.lineno <= line <= (s.end_lineno or s.lineno)]
        if not around:
            return False
        node = around[0]
        if isinstance(node, ast.If) and _tests_name(node.test):
            in_body = node.body[0].lineno <= line <= (node.body[-1].end_lineno or line)
            if in_body:
                return True
        statements = [child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt)]
    return False


def _tests_name(test: ast.expr) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "__name__" for n in ast.walk(test))


# -- executors ------------------------------------------------------------------------------------


class LocalExecutor:
    """Parallel builds in a process pool; measurements in one isolated worker at a time."""

    def __init__(self, build_workers: int | None = None):
        self.build_workers = build_workers or max(1, min(os.cpu_count() or 1, 8))
        self._pool: ProcessPoolExecutor | None = None
        self.runner = IsolatedRunner()
        self._worker_threads: int | None = None  # the thread count the runner's worker has

    def build_all(self, problem: Problem, candidates: list[Candidate]) -> list[Built]:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.build_workers, mp_context=get_context("spawn"))
        futures = [self._pool.submit(build, problem, c) for c in candidates]
        built = []
        for f in futures:
            try:
                built.append(f.result())
            except Exception as e:  # build() never raises: a build worker died, the pool broke
                built.append(Built("compile_error", error=f"the build worker died: {e}"))
                self._discard_pool()
        return built

    def _discard_pool(self) -> None:
        """Drop a broken pool (its other futures fail too); the next round starts another."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def run(self, problem: Problem, candidates: list[Candidate], threads: int | None = None):
        """Yields (candidate, outcome) as each measurement finishes.

        threads: the OpenMP thread count the records are keyed with. The measurement worker
        is a child of this process and inherits its environment, so this must be
        `openmp_threads()` here (the default)."""
        here = openmp_threads()
        if threads is not None and threads != here:
            raise LoopweaveError(f"the local executor measures with this process's {here} "
                                 f"OpenMP threads, not {threads}: set OMP_NUM_THREADS={threads}")
        if self._worker_threads != here:  # OMP_NUM_THREADS changed: a worker that has it
            self.runner.close()
            self._worker_threads = here
        built = self.build_all(problem, candidates)
        for c, b in zip(candidates, built, strict=True):
            yield c, self.runner.measure(problem, c, b)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self.runner.close()


_REMOTE_RUNNER: tuple[int, IsolatedRunner] | None = None  # (its worker's threads, runner)


def _remote_runner(threads: int) -> IsolatedRunner:
    """This Ray worker's measurement runner, whose worker process has `threads` OpenMP threads.

    Ray sets OMP_NUM_THREADS in its workers to the task's CPU count; the measurement worker
    inherits this process's environment when it starts, so it is set here first, and a runner
    started with another count is replaced."""
    global _REMOTE_RUNNER
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if _REMOTE_RUNNER is not None and _REMOTE_RUNNER[0] != threads:
        _REMOTE_RUNNER[1].close()
        _REMOTE_RUNNER = None
    if _REMOTE_RUNNER is None:
        _REMOTE_RUNNER = (threads, IsolatedRunner())
    return _REMOTE_RUNNER[1]


def _remote_build_and_measure(problem: Problem, data: bytes, candidate: Candidate,
                              threads: int) -> Outcome:
    """Runs inside a Ray worker: the problem's data lands in a local file once per node; the
    candidate is measured with `threads` OpenMP threads (the count its record is keyed with)."""
    path = Path(tempfile.gettempdir()) / "loopweave-tune" / f"problem-{problem.data_digest}.npz"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    problem = replace(problem, data_path=str(path))
    return _remote_runner(threads).measure(problem, candidate, build(problem, candidate))


class RayExecutor:
    """Builds and measures each candidate in a Ray task (a local cluster if no address).

    cpus_per_task: the CPUs a task reserves; default: the measurement's thread count, at most
    the cluster's CPUs (so concurrent measurements do not share cores)."""

    def __init__(self, address: str | None = None, cpus_per_task: float | None = None,
                 **init_options):
        try:
            import ray
        except ImportError:
            raise LoopweaveError("executor='ray' needs the Python package 'ray' "
                                 "(pip install 'loopweave[tune]')") from None
        self.ray = ray
        self.cpus_per_task = cpus_per_task
        self._started_here = not ray.is_initialized()
        if self._started_here:
            if address:
                ray.init(address=address, **init_options)
            else:
                ray.init(**{"num_cpus": 2, "include_dashboard": False,
                            "object_store_memory": 200 * 1024 ** 2, **init_options})
        self._task = ray.remote(max_retries=0)(_remote_build_and_measure)
        self._data: dict[str, object] = {}

    def _task_cpus(self, threads: int) -> float:
        if self.cpus_per_task is not None:
            return self.cpus_per_task
        cluster = self.ray.cluster_resources().get("CPU", 1)
        return max(1, min(threads, int(cluster)))

    def run(self, problem: Problem, candidates: list[Candidate], threads: int | None = None):
        """Yields (candidate, outcome) as each measurement finishes.

        threads: the OpenMP thread count the records are keyed with (default: this process's
        `openmp_threads()`); each task's measurement worker runs with exactly that many."""
        threads = threads or openmp_threads()
        if problem.data_digest not in self._data:
            self._data = {problem.data_digest: self.ray.put(Path(problem.data_path).read_bytes())}
        data = self._data[problem.data_digest]
        task = self._task.options(num_cpus=self._task_cpus(threads))
        refs = [task.remote(problem, data, c, threads) for c in candidates]
        for c, ref in zip(candidates, refs, strict=True):
            try:
                yield c, self.ray.get(ref)
            except self.ray.exceptions.RayError as e:  # the Ray worker itself died
                yield c, Outcome("crash", error=f"the Ray task failed: {e}"[:2000])

    def close(self) -> None:
        if self._started_here:
            self.ray.shutdown()


def make_executor(executor) -> LocalExecutor | RayExecutor:
    """"local" (default), "ray" (a local Ray cluster), a Ray address ("ray://host:10001",
    "host:6379"), or an executor object."""
    if executor is None or executor == "local":
        return LocalExecutor()
    if isinstance(executor, str):
        return RayExecutor(address=None if executor == "ray" else executor)
    return executor
