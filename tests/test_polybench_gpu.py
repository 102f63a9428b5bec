"""PolyBench/C 4.2 on the GPU targets at the MINI dataset, against numpy.

- cuda (CPU emulation, real barriers): every kernel with the planner's default and with the
  schedule written as steps (passes/gpu_default: parallel loops bound to blocks and threads,
  contractions staged in shared memory);
- triton (interpreter): every kernel whose step-written schedule binds a loop. A kernel with
  nothing to bind goes to the Triton planner, whose PolyBench failures belong to the
  [backend-fuzz] issue; four bound kernels take long in the interpreter (skipped, named).
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported: no GPU here

import importlib.util  # noqa: E402
import warnings  # noqa: E402

import pytest  # noqa: E402
from test_gpu_schedule import assert_matches_reference  # noqa: E402

import loopweave  # noqa: E402
from loopweave.examples import load_polybench_references  # noqa: E402
from loopweave.passes.gpu_default import GpuTiles, gpu_schedule  # noqa: E402
from loopweave.pipeline import front_end  # noqa: E402
from loopweave.targets import GPU_FACTS  # noqa: E402

poly = load_polybench_references()
needs_triton = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET") != "1"
    or not all(importlib.util.find_spec(p) for p in ("triton", "torch")),
    reason="triton and torch (with TRITON_INTERPRET=1) are needed")
#: Bound kernels whose MINI run takes half a minute or more in Triton's interpreter (many
#: launches, or long per-lane loops); the cuda tests run them.
SLOW_IN_THE_INTERPRETER = {"adi", "deriche", "lu", "ludcmp"}
TILES = GpuTiles(threads_y=16, stage=True)


def steps(name: str, target: str) -> loopweave.Schedule:
    return gpu_schedule(front_end(poly.POLYBENCH[name].source()), TILES, GPU_FACTS[target])


def check(name: str, target: str, schedule) -> None:
    case = poly.POLYBENCH[name]
    options = {"emulate": True} if target == "cuda" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # loops that carry dependences run sequentially
        kernel = loopweave.compile(case.source(), target, schedule=schedule, tuning_db=False,
                                   **options)
    assert_matches_reference(poly, case, case.sizes[0], 100, kernel, f"{name} on {target}")


@pytest.mark.parametrize("name", sorted(poly.POLYBENCH))
@pytest.mark.parametrize("how", ["planner", "steps"])
def test_polybench_on_cuda(name, how):
    check(name, "cuda", None if how == "planner" else steps(name, "cuda"))


@needs_triton
@pytest.mark.parametrize("name", sorted(poly.POLYBENCH))
def test_polybench_on_triton_with_bound_schedules(name):
    schedule = steps(name, "triton")
    if not any(s.op == "bind" for s in schedule.steps):
        pytest.skip(f"{name}: no loop can be bound (each carries a dependence); the Triton "
                    "planner runs it")
    if name in SLOW_IN_THE_INTERPRETER:
        pytest.skip(f"{name}: minutes in Triton's interpreter at MINI")
    check(name, "triton", schedule)
