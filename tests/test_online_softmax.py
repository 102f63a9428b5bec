"""The online-softmax rewrite (passes/online_softmax.py) and FlashAttention-2 as GPU steps
(passes/gpu_online.py): the rewritten kernel matches numpy on the host (program order, C) and in
Triton's interpreter (its steps rendered by backends/triton_scheduled) at odd sizes, with
partial key blocks, value tiles and k steps; kernels the rewrite would change are left alone.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported: no GPU here

import subprocess  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from test_kernels import refs  # noqa: E402
from test_normalize import ATTENTION_INSIDE, ATTENTION_OUTSIDE

import loopweave  # noqa: E402
from loopweave.errors import ScheduleError  # noqa: E402
from loopweave.passes.gpu_online import OnlineSchedule, online_gpu_schedule  # noqa: E402
from loopweave.passes.normalize import normalize  # noqa: E402
from loopweave.passes.online_softmax import online_softmax, rewrite_online  # noqa: E402
from loopweave.pipeline import front_end  # noqa: E402

ATTENTION = refs.KERNELS["attention"]
ROOT = Path(__file__).resolve().parent.parent

# The scale inside the scores, the division inside the second product (passes/normalize moves
# both out of the sums), and the division after a temporary sum: test_normalize's spellings.
INSIDE, OUTSIDE = ATTENTION_INSIDE, ATTENTION_OUTSIDE

ODD = {"LQ": 45, "LK": 70, "D": 33, "DV": 17}


def _check(kernel, sizes: dict, seed: int = 3) -> None:
    args = ATTENTION.make_inputs(sizes, seed)
    want = ATTENTION.expected(args)["O"]
    got = refs.results_of(ATTENTION, args, kernel(*args.values()))["O"]
    err, ok = refs.compare(got, want)
    assert ok, f"O differs from numpy by {err:g} at sizes {sizes}"


def test_attention_rewrites_to_blocks_with_a_running_maximum():
    found = rewrite_online(front_end(ATTENTION.source()), 16)
    k = found.kernel
    assert (found.block_loop, found.inner) == ("j_o", "j_in")
    assert "p" not in k.tensors  # the division moved after the loop, onto O
    assert k.tensors["s"].shape[1].value == 16 and k.tensors["e"].shape[1].value == 16
    text = {s.name: str(s) for s in k.statements}
    assert "m_alpha[i] = select(m_old[i] == m[i], 1.0, exp(scale * (m_old[i] - m[i])))" in \
        text["S3_alpha"]
    assert "O[i, v] *= m_alpha[i]" in text["S9_rescale"]
    assert "O[i, v] = O[i, v] / z[i]" in text["S9_scale"]
    assert found.before == ("S2", "S5", "S8") and found.after == ("S9_scale",)
    assert found.blocked[:3] == ("S0", "S1", "S3_old")


@pytest.mark.parametrize(("sizes", "block"), [
    (ODD, 16), ({"LQ": 5, "LK": 7, "D": 3, "DV": 2}, 64),
    ({"LQ": 9, "LK": 64, "D": 8, "DV": 5}, 16), ({"LQ": 3, "LK": 1, "D": 1, "DV": 1}, 4)])
def test_rewritten_attention_matches_numpy_on_the_host(sizes, block):
    kernel = loopweave.compile(ATTENTION.source(), schedule=lambda k: online_softmax(k, block))
    _check(kernel, sizes)


@pytest.mark.parametrize("src", [INSIDE, OUTSIDE], ids=["inside", "outside"])
def test_other_spellings_rewrite_after_normalization(src):
    assert rewrite_online(normalize(front_end(src)), 8) is not None
    kernel = loopweave.compile(src, schedule=lambda k: online_softmax(normalize(k), 8))
    _check(kernel, {"LQ": 6, "LK": 19, "D": 5, "DV": 3})


LEFT_ALONE = {
    "softmax": refs.KERNELS["softmax"].source(),  # the exponentials' reader is an output
    "max is an output": """
kernel a(S: f32[N, M]) -> m: f32[N], z: f32[N] {
    m[i] max= S[i, j]
    z[i] += exp(S[i, j] - m[i])
}""",
    "exp(m - s)": """
kernel a(S: f32[N, M]) -> z: f32[N] {
    m[i] max= S[i, j]
    e[i, j] = exp(m[i] - S[i, j])
    z[i] += e[i, j]
}""",
    "a read of the exponentials that is no sum": """
kernel a(S: f32[N, M]) -> z: f32[N], Y: f32[N, M] {
    m[i] max= S[i, j]
    e[i, j] = exp(S[i, j] - m[i])
    z[i] += e[i, j]
    Y[i, j] = e[i, j] * 2.0
}""",
    "a sum over a triangle": """
kernel a(S: f32[N, N]) -> z: f32[N] {
    m[i] max= S[i, j]
    e[i, j] = exp(S[i, j] - m[i])
    z[i] += e[i, j] where j in 0:i + 1
}""",
}


@pytest.mark.parametrize("name", sorted(LEFT_ALONE))
def test_kernels_the_rewrite_would_change_are_left_alone(name):
    assert online_softmax(front_end(LEFT_ALONE[name]), 4) is None


def test_bad_block_is_a_schedule_error():
    with pytest.raises(ScheduleError, match="positive integer"):
        rewrite_online(front_end(ATTENTION.source()), 0)


# -- FlashAttention-2 as steps on Triton --------------------------------------------------------

def _triton(src: str, schedule):
    pytest.importorskip("triton", reason="triton not installed")
    pytest.importorskip("torch", reason="torch not installed")
    if os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("TRITON_INTERPRET was set to something else before the tests")
    with warnings.catch_warnings():
        warnings.simplefilter("error", loopweave.SequentialLoopWarning)
        if schedule is None:
            return loopweave.compile(src, target="triton", tuning_db=False)
        return loopweave.compile(src, target="triton", schedule=schedule)


SMALL = {"rows": 16, "block": 16, "cols": 16, "depth": 16}


@pytest.mark.parametrize(("sizes", "tiles"), [
    (ODD, SMALL), ({"LQ": 7, "LK": 13, "D": 8, "DV": 5}, {}),
    ({"LQ": 32, "LK": 64, "D": 16, "DV": 16}, SMALL), ({"LQ": 19, "LK": 45, "D": 8, "DV": 5},
                                                       {"rows": 16, "block": 32})],
    ids=["45x70x33x17", "7x13x8x5", "32x64x16x16", "19x45x8x5"])
def test_flash_attention_steps_match_numpy_in_the_interpreter(sizes, tiles):
    schedule = online_gpu_schedule(front_end(ATTENTION.source()), **tiles)
    kernel = _triton(ATTENTION.source(), schedule)
    assert kernel.source.count("[grid](") == 1 and kernel.source.count("tl.dot(") == 2
    _check(kernel, sizes)


def test_flash_attention_steps_are_checked_like_any_schedule():
    schedule = online_gpu_schedule(front_end(ATTENTION.source()), **SMALL)
    schedule.bind("S3", "j_o", "blockIdx.y")  # the running maximum's blocks are in order
    with pytest.raises(ScheduleError, match="j_o"):
        schedule.apply(front_end(ATTENTION.source()))


def test_flash_attention_steps_need_the_chain():
    schedule = online_gpu_schedule(front_end(ATTENTION.source()))
    with pytest.raises(ScheduleError, match="no max-exp-sum chain"):
        schedule.apply(front_end(refs.KERNELS["softmax"].source()))


def test_two_tile_shapes_give_two_sources():
    a = _triton(ATTENTION.source(), online_gpu_schedule(front_end(ATTENTION.source()), **SMALL))
    b = _triton(ATTENTION.source(), online_gpu_schedule(front_end(ATTENTION.source())))
    assert a.source != b.source
    args = ATTENTION.make_inputs({"LQ": 20, "LK": 33, "D": 4, "DV": 3}, 1)
    ra = refs.results_of(ATTENTION, args, a(*args.values()))["O"]
    rb = refs.results_of(ATTENTION, args, b(*args.values()))["O"]
    np.testing.assert_allclose(ra, rb, rtol=1e-5, atol=1e-6)


# Batches and heads: their loops go to blockIdx.z and blockIdx.y, the division by the sum,
# which passes/normalize moves after the product, joins the rewritten nest.
MHA = """
kernel mha(Q: f32[B, H, LQ, D], K: f32[B, H, LK, D], V: f32[B, H, LK, DV], scale: f32)
        -> O: f32[B, H, LQ, DV] {
    s[b, h, i, j] += Q[b, h, i, d] * K[b, h, j, d]
    m[b, h, i] max= s[b, h, i, j]
    e[b, h, i, j] = exp(scale * (s[b, h, i, j] - m[b, h, i]))
    z[b, h, i] += e[b, h, i, j]
    O[b, h, i, v] += e[b, h, i, j] * V[b, h, j, v] / z[b, h, i]
}
"""


def _mha_case(b, h, lq, lk, d, dv):
    r = np.random.default_rng(7)
    q = r.uniform(-2, 2, (b, h, lq, d)).astype(np.float32)
    k = r.uniform(-2, 2, (b, h, lk, d)).astype(np.float32)
    v = r.uniform(-1, 1, (b, h, lk, dv)).astype(np.float32)
    scale = np.float32(1 / np.sqrt(d))
    s = float(scale) * np.einsum("bhid,bhjd->bhij", q.astype(np.float64), k.astype(np.float64))
    p = np.exp(s - s.max(-1, keepdims=True))
    want = np.einsum("bhij,bhjv->bhiv", p / p.sum(-1, keepdims=True), v.astype(np.float64))
    return (q, k, v, scale), want


def test_batched_heads_are_one_launch_on_the_grid():
    kernel = _triton(MHA, None)  # the default
    source = kernel.source
    assert "lowered from its schedule" in source and source.count("[grid](") == 1
    assert "torch.empty" not in source  # no per-block copies of the scores: registers
    grid = source[source.index("grid = ("):].splitlines()[0]
    assert "(LQ - 1) // 64" in grid and "H," in grid and "B," in grid
    args, want = _mha_case(2, 3, 19, 37, 9, 5)
    err, ok = refs.compare(kernel(*args), want.astype(np.float32))
    assert ok, err


AOT = """
import sys
from loopweave.backends.triton import aot_compile
from loopweave.driver import stages
st = stages(sys.argv[1], target="triton")
for fn, ptx in aot_compile(st.ir, st.source, arch=90).items():
    assert ".target sm_90" in ptx and ".entry " + fn in ptx, fn
    print(fn)
"""


def test_batched_heads_compile_for_a_real_gpu():
    """Triton's own compiler (no interpreter) accepts the generated module for sm_90."""
    pytest.importorskip("triton", reason="triton not installed")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, "-c", AOT, MHA], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "lw_mha_k0" in result.stdout


def test_a_temporary_a_lane_walks_in_a_loop_stays_in_memory():
    """Without `vectorize` the row maximum and sum walk the key block in a loop per lane,
    reading the scores one column at a time: those stay in device memory
    (backends/triton_registers keeps only lane-indexed temporaries), and the result is the
    same."""
    schedule = online_gpu_schedule(front_end(ATTENTION.source()), **SMALL)
    serial = OnlineSchedule(schedule.block, [st for st in schedule.steps if st.op != "vector"])
    kernel = _triton(ATTENTION.source(), serial)
    assert "s_ptr" in kernel.source and "e_ptr" in kernel.source
    assert "m_reg" in kernel.source  # the row statistics are still lane-indexed everywhere
    _check(kernel, {"LQ": 21, "LK": 40, "D": 7, "DV": 6})
