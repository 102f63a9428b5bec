"""Tuning as users write it: the documented snippet run as a plain script (with and without a
main guard), the progress bar, `tune(report=DIR)` from the search's own records, and the
thread count a record is keyed with being the one it was measured with on every executor."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import types
from concurrent.futures.process import BrokenProcessPool

import pytest
from rich.console import Console

from loopweave.autotune import Database, executors, tune
from loopweave.autotune.executors import LocalExecutor, RayExecutor, check_main_guard
from loopweave.autotune.keys import kernel_key, openmp_threads
from loopweave.autotune.measure import Candidate, Outcome
from loopweave.autotune.report import ProgressBar
from loopweave.driver import front_end
from loopweave.errors import ArgumentValueError, LoopweaveError
from loopweave.examples import load_references
from loopweave.ir.specialize import check_assumptions
from loopweave.pipeline import get_target

MATMUL = """
kernel matmul(A: f32[M, K], B: f32[K, N]) -> C: f32[M, N] {
    C[i, j] += A[i, k] * B[k, j]
}"""
SIZES = {"M": 9, "K": 12, "N": 17}

# The snippet of docs/tuning.md with a tiny budget; {guard} is "" or a main guard.
SCRIPT = '''
import loopweave
src = """{src}"""
{guard}
    r = loopweave.tune(src, sizes={sizes}, target="cpu", trials=2, strategy="random",
                       batch=2, repeats=3, db={db!r}, workdir={workdir!r}, report={report!r})
    print("best", r.best_time, len(r.measured))
'''


def _script(tmp_path, guarded: bool):
    text = SCRIPT.format(src=MATMUL, sizes=SIZES, db=str(tmp_path / "t.sqlite"),
                         workdir=str(tmp_path), report=str(tmp_path / "report"),
                         guard='if __name__ == "__main__":' if guarded else "if True:")
    path = tmp_path / "tune_me.py"
    path.write_text(text)
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)


def test_a_script_without_a_main_guard_is_told_to_add_one(tmp_path):
    run = _script(tmp_path, guarded=False)
    assert run.returncode != 0
    assert "LoopweaveError" in run.stderr and 'if __name__ == "__main__":' in run.stderr
    assert "tune_me.py, line" in run.stderr  # where the unguarded call is
    assert "AttributeError" not in run.stderr and "BrokenProcessPool" not in run.stderr
    assert not (tmp_path / "t.sqlite").exists()  # it failed before doing anything


@pytest.mark.timeout(300)
def test_a_guarded_script_tunes_and_reports_from_its_own_records(tmp_path):
    run = _script(tmp_path, guarded=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("best ") and run.stdout.split()[-1] == "2"
    assert "\r" not in run.stderr and "━" not in run.stderr  # stderr is a pipe: no bar
    # The report is drawn from the one search: two trials, no second (random) search.
    with open(tmp_path / "report" / "tuning.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["trial"] for r in rows] == ["1", "2"]
    assert rows[0]["strategy"] == "default"
    assert (tmp_path / "report" / "tuning.png").stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.glob("*.sqlite")) == ["t.sqlite"]
    with Database(tmp_path / "t.sqlite") as db:
        assert db.count() == 2


def test_a_worker_running_the_main_script_again_gets_the_same_advice(monkeypatch):
    # What a spawned worker does with an unguarded script: run it as __mp_main__.
    monkeypatch.setattr(executors.multiprocessing, "parent_process", lambda: object())
    code = compile("check_main_guard()", "script.py", "exec")
    with pytest.raises(LoopweaveError, match="__main__"):
        exec(code, {"__name__": "__mp_main__", "check_main_guard": check_main_guard})


@pytest.mark.parametrize("body, guarded", [
    ("tune()", False),
    ("if __name__ == '__main__':\n    tune()", True),
    ("if '__main__' == __name__:\n    with open('x'):\n        tune()", True),
    ("if __name__ == '__main__':\n    pass\nelse:\n    tune()", False),
    ("if True:\n    tune()", False),
])
def test_the_guard_is_read_from_the_script(tmp_path, body, guarded):
    path = tmp_path / "s.py"
    path.write_text("import x\n" + body + "\n")
    line = len(path.read_text().splitlines())  # the call is on the last line
    assert executors._under_name_guard(str(path), line) is guarded


def test_a_broken_build_pool_gives_compile_errors_not_an_attribute_error():
    class DeadPool:  # every future fails as a pool whose worker died does
        def submit(self, fn, *args):
            future = types.SimpleNamespace()
            future.result = lambda: (_ for _ in ()).throw(BrokenProcessPool("worker died"))
            return future

        def shutdown(self, **_):
            pass

    executor = LocalExecutor()
    executor._pool = DeadPool()
    built = executor.build_all(None, [Candidate("[]")] * 3)
    assert [b.status for b in built] == ["compile_error"] * 3
    assert "worker died" in built[0].error and executor._pool is None


def test_the_progress_bar_shows_trials_and_the_best_so_far():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with ProgressBar("matmul", total=8, done=2, console=console) as bar:
        bar.update(3, None, None)
        bar.update(5, 1.5e-3, 12.25)
    text = out.getvalue()
    assert "tune matmul" in text and "5/8" in text
    assert "best 1.5 ms, 12.2 GFLOP/s" in text


def test_no_progress_bar_off_a_terminal(capsys):
    assert ProgressBar.on_terminal("matmul", 8, 0) is None  # pytest's stderr is captured


# -- threads: the key's count is the count measured -----------------------------------------------

class _FakeRay(types.ModuleType):
    """Just enough of `ray` for RayExecutor: tasks run nothing and report what they got."""

    class exceptions:  # noqa: N801 -- as ray spells it
        RayError = RuntimeError

    def __init__(self):
        super().__init__("ray")
        self.calls: list[dict] = []

    def is_initialized(self):
        return True

    def cluster_resources(self):
        return {"CPU": 2.0}

    def put(self, value):
        return "data"

    def get(self, ref):
        return ref

    def remote(self, **_):
        fake = self

        class Task:
            def __init__(self, fn, options=None):
                self.fn, self.opts = fn, options or {}

            def options(self, **opts):
                return Task(self.fn, opts)

            def remote(self, problem, data, candidate, threads):
                fake.calls.append({"threads": threads, **self.opts})
                return Outcome("ok", 1e-3, 0.0, (1e-3,) * 3, machine="ray-node")

        return Task


@pytest.mark.parametrize("setting", ["3", None])
def test_records_are_keyed_with_the_thread_count_they_are_measured_with(
        tmp_path, monkeypatch, setting):
    if setting is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", setting)
    fake = _FakeRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    result = tune(MATMUL, SIZES, trials=3, db=tmp_path / "t.sqlite", strategy="random",
                  executor=RayExecutor(), batch=3, progress=False, workdir=tmp_path)
    key = kernel_key(front_end(MATMUL), SIZES, get_target("cpu"))
    assert result.key == key.digest and key.threads == openmp_threads()
    assert [c["threads"] for c in fake.calls] == [key.threads] * 3
    assert {c["num_cpus"] for c in fake.calls} == {min(key.threads, 2)}


@pytest.mark.skipif(not os.path.exists("/proc/self/environ"), reason="reads /proc")
def test_a_ray_worker_measures_with_the_threads_it_is_given(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what Ray sets in a 1-CPU task's worker
    monkeypatch.setattr(executors, "_REMOTE_RUNNER", None)
    runner = executors._remote_runner(3)
    try:
        assert os.environ["OMP_NUM_THREADS"] == "3"
        assert executors._remote_runner(3) is runner
        runner._start()  # the measurement worker: a child started with this environment
        environ = open(f"/proc/{runner.pid}/environ", "rb").read().split(b"\0")
        assert b"OMP_NUM_THREADS=3" in environ
        other = executors._remote_runner(2)
        assert other is not runner and runner.pid is None  # replaced: its worker had 3
    finally:
        executors._REMOTE_RUNNER[1].close()
        runner.close()


def test_the_local_executor_refuses_a_thread_count_it_cannot_give(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    executor = LocalExecutor()
    with pytest.raises(LoopweaveError, match="OMP_NUM_THREADS=3"):
        next(executor.run(None, [], threads=3))


def test_the_documented_snippet_has_the_main_guard():
    docs = open(os.path.join(os.path.dirname(__file__), "..", "docs", "tuning.md"),
                encoding="utf-8").read()
    snippet = docs[docs.index("```python"):]
    snippet = snippet[:snippet.index("```", 3)]
    assert 'if __name__ == "__main__":' in snippet and "loopweave.tune(" in snippet


def test_sizes_that_break_an_assume_are_named_before_any_reference_runs(tmp_path):
    """matmul_int4 packs K in pairs (`assume K % 2 == 0`); an odd K used to reach its numpy
    reference and fail there with a gufunc shape error."""
    source = load_references().KERNELS["matmul_int4"].source()
    with pytest.raises(ArgumentValueError, match=r"assume K % 2 == 0.*K=9"):
        tune(source, {"M": 4, "K": 9, "N": 8}, trials=1, db=tmp_path / "t.sqlite",
             progress=False)


def test_an_assume_about_a_scalar_the_sizes_leave_out_is_not_checked_there():
    """A tuning run may leave an integer scalar to its inputs: its `assume` is checked where
    the value is known (the call), not raised as a KeyError from the sizes."""
    kernel = front_end("kernel f(A: f32[N], T: i32) -> B: f32[N] {\n    assume T >= 2\n"
                       "    assume N % 2 == 0\n    B[i] = A[i] * 2.0\n}\n")
    check_assumptions(kernel, {"N": 4})
    with pytest.raises(ArgumentValueError, match=r"assume T >= 2"):
        check_assumptions(kernel, {"N": 4, "T": 1})
