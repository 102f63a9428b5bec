"""executor="ray": builds and measurements run as Ray tasks on a local cluster started here."""

from __future__ import annotations

import shutil
import tempfile

import pytest

MATMUL = """
kernel matmul(A: f32[M, K], B: f32[K, N]) -> C: f32[M, N] {
    C[i, j] += A[i, k] * B[k, j]
}"""


@pytest.mark.slow
def test_tune_on_a_local_ray_cluster(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray", reason="ray not installed")
    from loopweave.autotune import Database, tune
    from loopweave.autotune.executors import RayExecutor

    # Ray's socket paths must stay short: a temp dir of its own directly under /tmp.
    ray_tmp = tempfile.mkdtemp(prefix="lwray", dir="/tmp")
    monkeypatch.setenv("RAY_TMPDIR", ray_tmp)
    executor = RayExecutor(_temp_dir=ray_tmp)
    try:
        assert ray.is_initialized()
        result = tune(MATMUL, {"M": 9, "K": 12, "N": 17}, trials=4, db=tmp_path / "t.sqlite",
                      strategy="random", executor=executor, batch=4, pool_size=8, repeats=3,
                      progress=False, workdir=tmp_path)
        workers = ray.get(ray.remote(lambda: __import__(
            "loopweave.autotune.keys", fromlist=["machine_fingerprint"]).machine_fingerprint())
            .remote())
    finally:
        executor.close()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    with Database(tmp_path / "t.sqlite") as db:
        records = db.records(result.key)
    assert len(records) == 4
    # "noisy": measured, but its samples spread too far (a loaded CI machine); still a result
    assert {r.status for r in records} <= {"ok", "noisy", "wrong", "compile_error"}
    measured = [r for r in records if r.status in ("ok", "noisy")]
    assert measured and all(r.median_s > 0 for r in measured)
    # the best is an "ok" record's: none where every timing spread (a CI run saw all four noisy)
    assert (result.best is not None) == any(r.status == "ok" for r in records)
    assert all(r.machine == workers for r in records)  # measured and fingerprinted by a worker
