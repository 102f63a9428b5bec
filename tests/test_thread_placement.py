"""Kernels' OpenMP threads placed one per core for the call (backends/c_threads.py).

Each case runs in a fresh process: the placement acts on libgomp's pool, which lives as long as
the process, and on the environment that process starts with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loopweave.backends.c_threads import placed_source, places_threads

ROOT = Path(__file__).resolve().parents[1]

#: Runs a 2-thread-or-more matmul and reports the masks of the process's threads after it.
PROBE = r"""
import glob, json, os, sys
import numpy as np
import loopweave
kernel = loopweave.compile('''kernel mm(A: f32[M, K], B: f32[K, N]) -> C: f32[M, N] {
  C[i, j] += A[i, k] * B[k, j]
}''', target="cpu", tuning_db=False)
rng = np.random.default_rng(0)
a, b = rng.random((67, 45), dtype=np.float32), rng.random((45, 131), dtype=np.float32)
before = sorted(os.sched_getaffinity(0))
ok = all(np.allclose(kernel(a, b), a @ b, rtol=1e-4) for _ in range(3))
masks = {}
for status in glob.glob("/proc/self/task/*/status"):
    fields = dict(line.split(":\t", 1) for line in open(status).read().splitlines()
                  if ":\t" in line)
    masks[status.split("/")[4]] = fields["Cpus_allowed_list"]
print(json.dumps({"ok": ok, "before": before, "after": sorted(os.sched_getaffinity(0)),
                  "main": masks.pop(str(os.getpid())), "others": sorted(masks.values())}))
"""


def _probe(**env: str) -> dict:
    settings = {k: v for k, v in os.environ.items()
                if k not in ("OMP_PROC_BIND", "OMP_PLACES", "GOMP_CPU_AFFINITY",
                             "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "LOOPWEAVE_PIN_THREADS")}
    settings.update(env)
    done = subprocess.run([sys.executable, "-c", PROBE], env=settings, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


needs_cores = pytest.mark.skipif(
    not sys.platform.startswith("linux") or _cpus() < 2,
    reason="thread placement acts on Linux with at least 2 CPUs in the process's mask")


def _single_cpus(masks: list[str]) -> list[str]:
    return [m for m in masks if m.isdigit()]


@needs_cores
def test_workers_are_pinned_one_per_core_and_the_caller_gets_its_mask_back():
    """Threads as many as the CPUs: each libgomp worker holds one CPU of its own, none of them
    the CPU the calling thread ran on, and the calling thread leaves with the mask it had."""
    report = _probe(OMP_NUM_THREADS=str(_cpus()))
    assert report["ok"]
    assert report["after"] == report["before"]
    pinned = _single_cpus(report["others"])
    assert len(pinned) == _cpus() - 1
    assert len(set(pinned)) == len(pinned)
    assert all(int(cpu) in report["before"] for cpu in pinned)


@needs_cores
@pytest.mark.parametrize("env", [
    {"LOOPWEAVE_PIN_THREADS": "0"},
    {"OMP_WAIT_POLICY": "passive"},
    {"GOMP_SPINCOUNT": "0"},
], ids=["switched-off", "passive-wait", "no-spin"])
def test_threads_stay_with_the_scheduler_where_the_user_says_so(env):
    report = _probe(OMP_NUM_THREADS=str(_cpus()), **env)
    assert report["ok"]
    assert report["after"] == report["before"]
    assert _single_cpus(report["others"]) == []


@needs_cores
def test_more_threads_than_cores_are_left_to_the_scheduler():
    """Threads that share cores anyway are not pinned (nor are fewer threads than cores, which
    would put every process's workers on the same first cores: the same rule, threads == CPUs)."""
    report = _probe(OMP_NUM_THREADS=str(_cpus() + 1))
    assert report["ok"]
    assert _single_cpus(report["others"]) == []


def test_only_sources_with_threads_get_the_placement():
    serial = "void lw_k(float *x) { x[0] = 1; }\n"
    threaded = ("void lw_k(float *x) {\n#pragma omp parallel for\n"
                "for (int i = 0; i < 4; i++) x[i] = 1;\n}\n")
    assert placed_source(serial) == serial and not places_threads(serial)
    placed = placed_source(threaded)
    assert places_threads(placed)
    assert placed.startswith("#define _GNU_SOURCE\n")  # before any header
