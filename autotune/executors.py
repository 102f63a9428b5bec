"""Where candidates are built and measured: a local process pool, or a Ray cluster.

    for candidate, outcome in executor.run(problem, candidates): ...   (as each one finishes)

`LocalExecutor` builds a round's candidates in parallel in a process pool, then measures them
one at a time in an isolated worker process (measurements do not compete for the cores).
`RayExecutor` sends each candidate to a Ray task that builds it and measures it in an isolated
worker on whichever node runs the task, so the outcome carries that node's machine fingerprint.
"""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

from loopweave.autotune.measure import Built, Candidate, IsolatedRunner, Outcome, Problem, build
from loopweave.errors import LoopweaveError


class LocalExecutor:
    """Parallel builds in a process pool; measurements in one isolated worker at a time."""

    def __init__(self, build_workers: int | None = None):
        self.build_workers = build_workers or max(1, min(os.cpu_count() or 1, 8))
        self._pool = None
        self.runner = IsolatedRunner()

    def build_all(self, problem: Problem, candidates: list[Candidate]) -> list[Built]:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.build_workers, mp_context=get_context("spawn"))
        futures = [self._pool.submit(build, problem, c) for c in candidates]
        built = []
        for f in futures:
            try:
                built.append(f.result())
            except Exception as e:  # a build worker died: the pool is broken, start another
                built.append(Built("compile_error", error=f"the build worker died: {e}"))
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
        return built

    def run(self, problem: Problem, candidates: list[Candidate]):
        """Yields (candidate, outcome) as each measurement finishes."""
        built = self.build_all(problem, candidates)
        for c, b in zip(candidates, built, strict=True):
            yield c, self.runner.measure(problem, c, b)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self.runner.close()


_REMOTE_RUNNER: IsolatedRunner | None = None


def _remote_build_and_measure(problem: Problem, data: bytes, candidate: Candidate) -> Outcome:
    """Runs inside a Ray worker: the problem's data lands in a local file once per node."""
    global _REMOTE_RUNNER
    path = Path(tempfile.gettempdir()) / "loopweave-tune" / f"problem-{problem.data_digest}.npz"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    problem = replace(problem, data_path=str(path))
    if _REMOTE_RUNNER is None:
        _REMOTE_RUNNER = IsolatedRunner()
    return _REMOTE_RUNNER.measure(problem, candidate, build(problem, candidate))


class RayExecutor:
    """Builds and measures each candidate in a Ray task (a local cluster if no address)."""

    def __init__(self, address: str | None = None, cpus_per_task: float = 1, **init_options):
        try:
            import ray
        except ImportError:
            raise LoopweaveError("executor='ray' needs the Python package 'ray' "
                                 "(pip install 'loopweave[tune]')") from None
        self.ray = ray
        self._started_here = not ray.is_initialized()
        if self._started_here:
            if address:
                ray.init(address=address, **init_options)
            else:
                ray.init(**{"num_cpus": 2, "include_dashboard": False,
                            "object_store_memory": 200 * 1024 ** 2, **init_options})
        self._task = ray.remote(num_cpus=cpus_per_task, max_retries=0)(_remote_build_and_measure)
        self._data: dict[str, object] = {}

    def run(self, problem: Problem, candidates: list[Candidate]):
        """Yields (candidate, outcome) as each measurement finishes."""
        if problem.data_digest not in self._data:
            self._data = {problem.data_digest: self.ray.put(Path(problem.data_path).read_bytes())}
        data = self._data[problem.data_digest]
        refs = [self._task.remote(problem, data, c) for c in candidates]
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
