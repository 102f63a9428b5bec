"""The tuner on cuda and triton: one space (the planner's options, or passes/gpu_default's bound
schedule with its block shape and staging), candidates checked numerically under CUDA emulation
and Triton's interpreter, their compile statistics (registers, spills, shared memory, occupancy)
as features, and records marked "unmeasured" (no GPU here: no time, never a best record).
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported: no GPU here

import json  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import warnings  # noqa: E402

import pytest  # noqa: E402
from test_kernels import refs  # noqa: E402

import loopweave  # noqa: E402
from loopweave.autotune.database import Database  # noqa: E402
from loopweave.autotune.features import features  # noqa: E402
from loopweave.autotune.gpu_features import GPU_FEATURES, occupancy  # noqa: E402
from loopweave.autotune.space import SearchSpace  # noqa: E402
from loopweave.pipeline import front_end, get_target  # noqa: E402

MATMUL = refs.KERNELS["matmul"].source()
SIZES = {"M": 19, "K": 7, "N": 21}
needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
needs_triton = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET") != "1" or not all(
        __import__("importlib").util.find_spec(p) for p in ("triton", "torch")),
    reason="triton and torch (with TRITON_INTERPRET=1) are needed")


def space_for(target: str, **options) -> SearchSpace:
    return SearchSpace(front_end(MATMUL), SIZES, get_target(target, options=options),
                       base_options=options)


def test_the_cuda_space_holds_the_planner_and_bound_schedules():
    space = space_for("cuda", emulate=True)
    names = {k.name for k in space.knobs}
    assert {"gpu.schedule", "gpu.threads_x", "gpu.threads_y", "gpu.stage"} <= names
    assert any(n.startswith("option.") for n in names)  # the planner's tile sizes
    planner, options = space.decode(space.default())
    assert not planner.steps and options["block_m"] == 64
    steps, options = space.decode({**space.default(), "gpu.schedule": "steps",
                                   "gpu.stage": True, "option.block_m": 32})
    assert any(s.op == "bind" for s in steps.steps)
    assert [s.args[0] for s in steps.steps if s.op == "cache_read"] == ["A", "B"]
    assert options == {"emulate": True}  # the planner's options go with the planner
    assert space.is_legal({**space.default(), "gpu.schedule": "steps", "gpu.threads_x": 256,
                           "gpu.threads_y": 16})  # too many threads: a 1-D block instead


@needs_triton
def test_the_triton_space_never_stages():
    space = space_for("triton")
    assert "gpu.stage" not in {k.name for k in space.knobs}
    steps, _ = space.decode({**space.default(), "gpu.schedule": "steps"})
    assert not [s for s in steps.steps if s.op == "cache_read"]


def test_occupancy_is_limited_by_registers_shared_memory_and_warps():
    assert occupancy(32, 256, 0) == (1.0, "warps+regs")
    assert occupancy(128, 256, 0) == (0.25, "regs")  # 65536 / (128 * 256): two blocks of 8 warps
    assert occupancy(16, 128, 100 * 1024)[0] == 0.125  # two blocks of 100 KiB fit in 228 KiB


@pytest.mark.parametrize("target", [pytest.param("cuda", marks=needs_nvcc),
                                    pytest.param("triton", marks=needs_triton)])
def test_a_sweep_checks_each_candidate_and_records_it_unmeasured(target, tmp_path):
    db = tmp_path / "tune.sqlite"
    options = {"emulate": True} if target == "cuda" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = loopweave.tune(MATMUL, SIZES, target=target, trials=3, db=db,
                                options=options, progress=False, timeout_s=60)
    assert result.best is None and len(result.measured) == 3
    statuses = {r.status for r in result.measured}
    assert statuses == {"unmeasured"}, [r.error for r in result.measured]
    bound = [r for r in result.measured if '"bind"' in r.schedule]
    assert bound, "the seeds include the schedule written as steps"
    scheduled = front_end(MATMUL)
    base = len(features(scheduled, loopweave.pipeline.loop_ast(scheduled), SIZES))
    for record in result.measured:
        row = json.loads(record.features)
        assert len(row) == base + len(GPU_FEATURES)
        registers, spills, _, threads, occupied, kernels = row[base:]
        assert registers > 0 and spills == 0 and threads >= 32 and 0 < occupied <= 1
        assert kernels >= 1
    with Database(db) as database:
        assert database.best(result.key) is None  # compile() never dispatches to it


@needs_nvcc
def test_ranking_sees_the_features_the_records_keep(tmp_path):
    """The search ranks candidates on the features `build` records for them (compile
    statistics included), so a model fitted on GPU records can rank new GPU candidates."""
    from loopweave.autotune.measure import Candidate, build, make_problem
    from loopweave.autotune.search import _features_of

    space = space_for("cuda", emulate=True)
    schedule, options = space.decode({**space.default(), "gpu.schedule": "steps"})
    problem = make_problem(MATMUL, SIZES, "cuda", tmp_path)
    candidate = Candidate(schedule.to_json(), options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        built = build(problem, candidate)
        ranked = _features_of(problem, candidate)
    assert built.status == "ok" and list(built.features) == ranked


def test_a_model_fits_rows_of_gpu_width():
    from loopweave.autotune.database import Record
    from loopweave.autotune.features import FEATURE_NAMES, FEATURE_VERSION
    from loopweave.autotune.model import CostModel

    width = len(FEATURE_NAMES) + len(GPU_FEATURES)
    rng = random.Random(3)
    records = []
    for n in range(40):
        row = [rng.random() for _ in range(width)]
        records.append(Record("key", "h", "matmul", "{}", "f32", "cuda", "nvcc", "gpu", "[]",
                              "{}", "ok", features=json.dumps(row),
                              feature_version=FEATURE_VERSION, median_s=1.0 + row[-2],
                              uid=str(n)))
    model = CostModel.fit(records, width)
    assert model.trained and model.records == 40
    assert CostModel.fit(records).records == 0  # CPU-width rows only: none of these
    assert len(model.predict([[0.5] * width] * 3, [0.25] * width)) == 3


@pytest.mark.parametrize("name", ["matmul", "softmax", "attention", "jacobi_1d", "lu", "trmm"])
def test_the_planner_candidates_are_the_planner_default(name, monkeypatch):
    """The tuner hands the planner an explicit program-order schedule (one band per loop); the
    CUDA planner must still see the statements' own loops as such and give the source it gives
    the unscheduled kernel (it took every single-loop band for a host loop). The backends'
    step-written defaults are switched off here, so `compile()` without a schedule plans."""
    from loopweave.backends import cuda, triton
    from loopweave.driver import stages

    for backend in (cuda, triton):
        monkeypatch.setattr(backend, "default_schedule", lambda kernel, target: None)
    source = refs.KERNELS[name].source()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for target in ("cuda", "triton") if name != "lu" else ("cuda",):
            default = stages(source, target).source
            assert stages(source, target, schedule=loopweave.Schedule()).source == default
