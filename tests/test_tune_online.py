"""The tuner's knobs for FlashAttention-2 as steps (autotune/space_online.py): on cuda and triton,
attention's search space offers the online schedule's block sizes (query rows, keys, value
columns, k steps), its default as a seed; candidates apply, differ and match numpy (CUDA
emulation, Triton's interpreter) at odd sizes; a tiny sweep records them (unmeasured: no GPU).
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported: no GPU here

import importlib.util  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import warnings  # noqa: E402

import pytest  # noqa: E402
from test_kernels import refs  # noqa: E402

import loopweave  # noqa: E402
from loopweave.autotune.space import SearchSpace  # noqa: E402
from loopweave.errors import ScheduleError  # noqa: E402
from loopweave.passes import schedule as schedule_module  # noqa: E402
from loopweave.passes.gpu_online import OnlineSchedule  # noqa: E402
from loopweave.pipeline import default_schedule, front_end, get_target  # noqa: E402

ATTENTION = refs.KERNELS["attention"]
SIZES = {"LQ": 45, "LK": 70, "D": 33, "DV": 33}
MATMUL = refs.KERNELS["matmul"].source()
OPTIONS = {"cuda": {"emulate": True}, "triton": {}}

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
needs_triton = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET") != "1" or not all(
        importlib.util.find_spec(p) for p in ("triton", "torch")),
    reason="triton and torch (with TRITON_INTERPRET=1) are needed")
GPU_TARGETS = [pytest.param("cuda", marks=needs_gxx), pytest.param("triton", marks=needs_triton)]


def space_for(target: str, source: str = ATTENTION.source(), sizes=None) -> SearchSpace:
    options = OPTIONS.get(target, {})
    return SearchSpace(front_end(source), sizes or SIZES, get_target(target, options=options),
                       base_options=options)


def online_knobs(space: SearchSpace) -> dict[str, tuple]:
    return {k.name: k.values for k in space.knobs if k.name.startswith("online.")}


@pytest.mark.parametrize("target", ["cuda", "triton"])
def test_attention_on_a_gpu_offers_the_online_block_sizes(target):
    knobs = online_knobs(space_for(target))
    assert set(knobs) == {"online.on", "online.rows", "online.block", "online.cols",
                          "online.depth"}
    defaults = {"cuda": (16, 32, 32, 32), "triton": (64, 32, 64, 32)}[target]
    for name, default in zip(("rows", "block", "cols", "depth"), defaults, strict=True):
        values = knobs[f"online.{name}"]
        assert values[0] == default and len(values) > 1
        assert all(v >= 16 and v & (v - 1) == 0 for v in values)  # powers of two, >= 16
    # no side past the extent's power of two (LK = 70: 128 keys; LQ = 45: 64 rows) ...
    assert max(knobs["online.rows"]) == 64
    # ... nor past what one tile of it may take: 1024 CUDA threads, 16 lanes of the other side
    assert max(knobs["online.block"]) == (64 if target == "cuda" else 128)


@pytest.mark.parametrize("target", ["cuda", "triton"])
def test_the_seed_is_the_default_schedule(target):
    space = space_for(target)
    seed = next(c for c in space.seeds() if c.get("online.on"))
    schedule, options = space.decode(seed)
    default = default_schedule(front_end(ATTENTION.source()), space.ctx.target)
    assert isinstance(schedule, OnlineSchedule) and isinstance(default, OnlineSchedule)
    assert schedule.to_json() == default.to_json()
    assert options == OPTIONS[target]  # the planner's options go


@pytest.mark.parametrize("target", ["cpu", "cuda", "triton"])
def test_no_online_knobs_without_the_rewrite_or_off_the_gpu(target):
    assert not online_knobs(space_for(target, MATMUL, {"M": 19, "K": 7, "N": 21}))
    if target == "cpu":
        assert not online_knobs(space_for(target))


def test_too_many_threads_for_cuda_is_illegal():
    space = space_for("cuda")
    base = {**space.default(), "online.on": True}
    assert space.is_legal({**base, "online.rows": 32, "online.block": 32, "online.cols": 32})
    # 64 rows x 64 lanes: 4096 threads a block, past CUDA's 1024
    assert not space.is_legal({**base, "online.rows": 64, "online.block": 64, "online.cols": 64})


def test_the_json_of_an_online_schedule_names_its_rewrite():
    schedule = space_for("triton").decode({**space_for("triton").default(),
                                           "online.on": True, "online.block": 16})[0]
    steps = json.loads(schedule.to_json())
    assert steps[0] == {"op": "online", "target": "*", "args": [16]}
    again = OnlineSchedule.from_json(schedule.to_json())
    assert again.block == 16 and again.steps == schedule.steps
    with pytest.raises(ScheduleError, match="starts with the step"):
        OnlineSchedule.from_json(json.dumps(steps[1:]))


def _two_online_candidates(space: SearchSpace) -> list[OnlineSchedule]:
    """Two legal sampled configurations with the online schedule and different sizes."""
    rng, found = random.Random(7), {}
    while len(found) < 2:
        config = space.random_legal(rng)
        if config.get("online.on"):
            schedule, _ = space.decode(config)
            found.setdefault(schedule.to_json(), schedule)
    return list(found.values())


def _check(kernel, sizes: dict) -> None:
    args = ATTENTION.make_inputs(sizes, 5)
    want = ATTENTION.expected(args)["O"]
    got = refs.results_of(ATTENTION, args, kernel(*args.values()))["O"]
    err, ok = refs.compare(got, want)
    assert ok, f"O differs from numpy by {err:g} at sizes {sizes}"


@pytest.mark.parametrize("target", GPU_TARGETS)
def test_two_sampled_candidates_differ_and_match_numpy(target):
    space = space_for(target)
    sources = []
    for schedule in _two_online_candidates(space):
        replayed = OnlineSchedule.from_json(schedule.to_json())  # as a record holds it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kernel = loopweave.compile(ATTENTION.source(), target=target, schedule=replayed,
                                       **OPTIONS[target])
        _check(kernel, SIZES)
        sources.append(kernel.source)
    assert sources[0] != sources[1]


@needs_triton
@pytest.mark.xfail(not hasattr(schedule_module, "REWRITES"), strict=True,
                   reason="Schedule.from_json does not read an online schedule's JSON back yet")
def test_a_tiny_sweep_records_online_candidates(tmp_path):
    db = tmp_path / "tune.sqlite"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = loopweave.tune(ATTENTION.source(), SIZES, target="triton", trials=3, db=db,
                                progress=False, timeout_s=120)
    assert len(result.measured) == 3 and result.best is None  # no GPU: nothing timed
    online = [r for r in result.measured if json.loads(r.schedule)[:1]
              and json.loads(r.schedule)[0]["op"] == "online"]
    assert online, [r.schedule[:80] for r in result.measured]
    assert {r.status for r in online} == {"unmeasured"}, [r.error for r in online]
