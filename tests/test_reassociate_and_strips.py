"""Reassociated reductions (`Schedule.reassociate`), the convolution micro-kernel of the default
schedule, and edge tiles cut into vector strips (ir/strips.py): legality errors, and numeric
checks against numpy at sizes that leave every strip width (and a scalar rest) at the edges."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import loopweave
from loopweave import Schedule, ScheduleError
from loopweave.driver import front_end
from loopweave.passes.default import default_schedule
from loopweave.passes.tile_recipes import convolution_steps

KERNELS = Path(__file__).resolve().parent.parent / "examples" / "kernels"
CONV = (KERNELS / "conv2d.lw").read_text()
MATMUL = (KERNELS / "matmul.lw").read_text()
rng = np.random.default_rng(7)


def _conv_reference(x, f):
    n, c, h, w = x.shape
    k, _, r, s = f.shape
    y = np.zeros((n, k, h - r + 1, w - s + 1))
    for dr in range(r):
        for ds in range(s):
            window = x[:, :, dr:dr + h - r + 1, ds:ds + w - s + 1].astype(np.float64)
            y += np.einsum("nchw,kc->nkhw", window, f[:, :, dr, ds].astype(np.float64))
    return y


def _conv_args(n=1, c=3, h=7, w=13, k=5, r=3, s=2):
    return (rng.standard_normal((n, c, h, w), dtype=np.float32),
            rng.standard_normal((k, c, r, s), dtype=np.float32))


def test_reduction_loops_reorder_only_after_reassociate():
    spatial_outside = ("n", "k", "y", "x", "r", "s", "c")
    with pytest.raises(ScheduleError, match="flow dependence on Y from S1 to S1"):
        loopweave.compile(CONV, schedule=Schedule().reorder("Y", *spatial_outside))
    kernel = loopweave.compile(CONV, schedule=Schedule().reassociate("Y")
                               .reorder("Y", *spatial_outside))
    x, f = _conv_args()
    np.testing.assert_allclose(kernel(x, f), _conv_reference(x, f), rtol=1e-4, atol=1e-4)


def test_reassociate_keeps_the_other_dependences():
    # A reassociated reduction still runs after its initialisation, and no loop of it may be
    # parallel where two iterations update one element that a loop inside it changes (r
    # outside y and x: tests/test_parallel_reductions.py has the loops that may).
    with pytest.raises(ScheduleError, match="loop c of S1 cannot be parallel"):
        loopweave.compile(CONV, schedule=Schedule().parallel("Y", "c"))
    inside = ("n", "k", "r", "y", "x", "s", "c")
    with pytest.raises(ScheduleError, match="loop r of S1 cannot be parallel"):
        loopweave.compile(CONV, schedule=Schedule().reassociate("Y").reorder("Y", *inside)
                          .parallel("Y", "r"))
    src = """
    kernel scan(X: f32[N]) -> Y: f32[N] {
        Y[i] = X[i]
        Y[i] += Y[i - 1] where i in 1:N
    }"""
    with pytest.raises(ScheduleError, match="reads Y, which it reduces into"):
        loopweave.compile(src, schedule=Schedule().reassociate("S1"))
    with pytest.raises(ScheduleError, match="S0 .line 3. is not a reduction"):
        loopweave.compile(src, schedule=Schedule().reassociate("S0"))


def test_default_schedule_gives_conv2d_a_register_tile_over_channels_and_columns():
    steps = convolution_steps(front_end(CONV).statement["S1"],
                              ["n", "k", "y", "x", "c", "r", "s"])
    assert steps[0] == ("reassociate", "S1")
    assert steps[2] == ("reorder", "S1", "n", "k_o", "y", "x_o", "r", "s", "c", "k", "x")
    kernel = loopweave.compile(CONV)
    assert "lw_r7_0" in kernel.source  # 8 output channels in vector registers
    for shape in [dict(c=3, h=7, w=13, k=5), dict(c=2, h=4, w=30, k=17, r=1, s=1),
                  dict(n=2, c=1, h=3, w=3, k=1, r=3, s=3)]:
        x, f = _conv_args(**shape)
        np.testing.assert_allclose(kernel(x, f), _conv_reference(x, f), rtol=1e-4, atol=1e-4)


def _conv_tile(vector_bytes: int) -> dict:
    steps = default_schedule(front_end(CONV), lambda: vector_bytes).steps
    return dict(next(step.args for step in steps if step.op == "tile"))


def test_avx512_convolution_tiles_are_32_columns_wide_and_exact():
    assert _conv_tile(32) == {"k": 8, "x": 8}   # AVX2
    assert _conv_tile(64) == {"k": 8, "x": 32}  # AVX-512: 16 zmm accumulators
    schedule = default_schedule(front_end(CONV), lambda: 64)
    kernel = loopweave.compile(CONV, schedule=schedule, tuning_db=False)
    # 56 columns: one full tile, then strips of 16 and 8; 45: strips 8 and 4 and a rest of 1
    for shape in [dict(c=5, h=6, w=58, k=11), dict(c=2, h=4, w=47, k=9, r=2, s=3)]:
        x, f = _conv_args(**shape)
        np.testing.assert_allclose(kernel(x, f), _conv_reference(x, f), rtol=1e-4, atol=1e-4)


def test_matmul_keeps_its_packed_micro_kernel():
    # A matmul is also a 1x1 convolution, but the packed BLIS-like nest comes first and
    # keeps the order of k.
    ops = [s.op for s in default_schedule(front_end(MATMUL)).steps]
    assert "cache_read" in ops and "reassociate" not in ops


@pytest.mark.parametrize("n", [1, 3, 4, 5, 8, 13, 16, 19, 28, 31, 32, 33])
def test_edge_columns_run_in_strips_of_every_width(n):
    # A 3 x 32 register tile: n % 32 remaining columns are 16-, 8- and 4-wide strips and a
    # scalar rest; 7 rows leave one edge row.
    s = (Schedule().tile("S1", i=3, j=32).reorder("S1", "i_o", "j_o", "k", "i", "j")
         .cache_write("S1", at="k"))
    kernel = loopweave.compile(MATMUL, schedule=s)
    assert "_edge" in kernel.source and kernel.source.count("lw_r0_0 +=") >= 8
    # the scalar rest runs only where there is one (its reduction loops cost even when empty)
    assert re.search(r"if \(lw_mod_i64\(.*, 4\) > 0\) \{\n\s*for", kernel.source)
    a = rng.standard_normal((7, 9), dtype=np.float32)
    b = rng.standard_normal((9, n), dtype=np.float32)
    np.testing.assert_allclose(kernel(a, b), a @ b, rtol=1e-5, atol=1e-5)


def test_strips_keep_f64_and_i32_exact():
    for dtype in ("f64", "i32"):
        src = MATMUL.replace("f32", dtype)
        s = (Schedule().tile("S1", i=2, j=8).reorder("S1", "i_o", "j_o", "k", "i", "j")
             .cache_write("S1", at="k"))
        kernel = loopweave.compile(src, schedule=s)
        np_type = np.float64 if dtype == "f64" else np.int32
        a = rng.integers(-50, 50, (5, 6)).astype(np_type)
        b = rng.integers(-50, 50, (6, 15)).astype(np_type)
        np.testing.assert_array_equal(kernel(a, b), a @ b)


def test_no_convolution_tile_where_a_factor_is_computed_per_output_element():
    # The int4 dequantization depends on the column: as a register tile it would be scalar.
    int4 = front_end((KERNELS / "matmul_int4_grouped.lw").read_text()).statement["S1"]
    assert convolution_steps(int4, ["i", "j", "k"]) is None


@pytest.mark.parametrize("shape", [(17, 3, 70), (16, 300, 64), (9, 1, 33)])
def test_full_tiles_keep_c_in_registers_without_a_buffer_whatever_the_depth(shape):
    # Only the tile loops need full extents: a reduction shorter than the k block (K=3) still
    # runs in registers that start from C's zero fill (or, where K takes several blocks, are
    # loaded from C) and are stored to C; the copies in and out serve edge tiles.
    kernel = loopweave.compile(MATMUL)
    full = kernel.source.split("C_acc")[0]  # (the full tiles come before the edge's buffer)
    assert "lw_r0_0 = ((lw_vec_f32_16){0} + 0.0f);" in full
    assert "__builtin_memcpy(&lw_r0_0, &C[" in full
    m, k, n = shape
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    np.testing.assert_allclose(kernel(a, b), a @ b, rtol=1e-5, atol=1e-5)


TRANSPOSED = """
kernel abt(A: f32[M, K], B: f32[N, K]) -> C: f32[M, N] {
    C[i, j] += A[i, k] * B[j, k]
}
kernel atb(A: f32[K, M], B: f32[K, N]) -> C: f32[M, N] {
    C[i, j] += A[k, i] * B[k, j]
}"""


@pytest.mark.parametrize("shape", [(37, 53, 29), (8, 300, 33), (1, 1, 1)])
def test_transposed_operands_get_the_packed_micro_kernel(shape):
    m, k, n = shape
    a, b = (rng.standard_normal(s, dtype=np.float32) for s in ((m, k), (n, k)))
    abt = loopweave.compile(TRANSPOSED, kernel="abt")
    # B[j, k] is packed transposed: the copy reads B along k and the tile reads it along j.
    assert "B_pack" in abt.source and "lw_r0_0" in abt.source
    np.testing.assert_allclose(abt(a, b), a @ b.T, rtol=1e-4, atol=1e-4)
    atb = loopweave.compile(TRANSPOSED, kernel="atb")
    a2, b2 = a.T.copy(), rng.standard_normal((k, n), dtype=np.float32)
    np.testing.assert_allclose(atb(a2, b2), a2.T @ b2, rtol=1e-4, atol=1e-4)


def test_cache_read_layout_round_trips_and_is_checked():
    tiled = ("j_o", "k_o", "i_o", "i", "j", "k")
    s = (Schedule().tile("S1", i=4, j=8, k=16).reorder("S1", *tiled)
         .cache_read("S1", "B", at="i_o", layout=(1, 0)))
    assert Schedule.from_json(s.to_json()).to_json() == s.to_json()
    kernel = loopweave.compile(TRANSPOSED, kernel="abt", schedule=Schedule.from_json(s.to_json()))
    a, b = (rng.standard_normal(sh, dtype=np.float32) for sh in ((9, 20), (11, 20)))
    np.testing.assert_allclose(kernel(a, b), a @ b.T, rtol=1e-4, atol=1e-4)
    with pytest.raises(ScheduleError, match="permutation"):
        Schedule().cache_read("S1", "B", at="i", layout=(0, 0))
    with pytest.raises(ScheduleError, match="has 2 dimensions"):
        loopweave.compile(TRANSPOSED, kernel="abt", schedule=Schedule()
                          .tile("S1", i=4, j=8, k=16).reorder("S1", *tiled)
                          .cache_read("S1", "B", at="i_o", layout=(2, 1, 0)))


def test_attention_runs_its_two_products_as_matmuls_around_fused_softmax_rows():
    src = (KERNELS / "attention.lw").read_text()
    ops = [(s.op, s.target) for s in default_schedule(front_end(src)).steps]
    cache_reads = [t for op, t in ops if op == "cache_read"]
    assert len(cache_reads) == 2 and ("fuse", "S1") not in ops  # Q @ K^T and P @ V packed
    assert any(op == "fuse" for op, _ in ops)  # the softmax rows between them



GEMM = (Path(__file__).resolve().parent.parent / "examples" / "polybench" / "gemm.lw").read_text()


def test_distribute_splits_a_loop_and_keeps_the_dependences():
    kernel = loopweave.compile(GEMM, schedule=Schedule().distribute("S1", "i"))
    assert kernel.source.count("for (int64_t c0 = 0; c0 < NI; c0 += 1)") == 2
    c, a, b = (rng.standard_normal(s) for s in ((7, 9), (7, 5), (5, 9)))
    want = 1.5 * a @ b + 0.5 * c
    kernel(1.5, 0.5, c, a, b)
    np.testing.assert_allclose(c, want, rtol=1e-12, atol=1e-12)
    chain = """
    kernel chain(A: inout f32[N]) -> B: f32[N] {
        for i in 0:N-1 {
            B[i] = A[i] * 2.0
            A[i + 1] = B[i] + 1.0
        }
    }"""
    with pytest.raises(ScheduleError, match="flow dependence on A from S1 to S0"):
        loopweave.compile(chain, schedule=Schedule().distribute("S1", "i"))


def test_default_schedule_gives_a_contraction_inside_a_loop_its_own_nest():
    ops = [(s.op, s.target) for s in default_schedule(front_end(GEMM)).steps]
    assert ("distribute", "S1") in ops and ("cache_read", "S1") in ops
    kernel = loopweave.compile(GEMM)
    c, a, b = (rng.standard_normal(s) for s in ((13, 37), (13, 11), (11, 37)))
    want = 0.7 * a @ b - 2.0 * c
    kernel(0.7, -2.0, c, a, b)
    np.testing.assert_allclose(c, want, rtol=1e-12, atol=1e-12)


def test_depthwise_convolution_tiles_output_rows_and_columns():
    src = (KERNELS / "depthwise_conv2d.lw").read_text()
    steps = convolution_steps(front_end(src).statement["S1"], ["n", "c", "y", "x", "r", "s"])
    assert steps[1] == ("tile", "S1", {"y": 4, "x": 32})
    kernel = loopweave.compile(src)
    assert "lw_r3_0" in kernel.source  # 4 output rows in vector registers
    for n, c, h, w, r, s in [(1, 3, 9, 45, 3, 3), (2, 2, 4, 5, 2, 1), (1, 1, 7, 70, 1, 5)]:
        x = rng.standard_normal((n, c, h, w), dtype=np.float32)
        f = rng.standard_normal((c, r, s), dtype=np.float32)
        want = np.zeros((n, c, h - r + 1, w - s + 1))
        for dr in range(r):
            for ds in range(s):
                window = x[:, :, dr:dr + h - r + 1, ds:ds + w - s + 1]
                want += window * f[None, :, dr, ds, None, None]
        np.testing.assert_allclose(kernel(x, f), want, rtol=1e-4, atol=1e-4)


def test_depthwise_convolution_runs_its_channels_in_parallel():
    # n is often 1 (inference): as the parallel loop it left every thread but one idle.
    src = (KERNELS / "depthwise_conv2d.lw").read_text()
    steps = default_schedule(front_end(src)).steps
    marks = [(st.op, st.target, tuple(st.args)) for st in steps]
    assert ("parallel", "S1", ("n",)) in marks and ("parallel", "S1", ("c",)) in marks
    assert "#pragma omp parallel for collapse(2)" in loopweave.compile(src).source
    kernel = loopweave.compile(src, tuning_db=False)
    x = rng.standard_normal((1, 5, 9, 37), dtype=np.float32)
    f = rng.standard_normal((5, 3, 3), dtype=np.float32)
    want = sum(x[:, :, dr:dr + 7, ds:ds + 35] * f[None, :, dr, ds, None, None]
               for dr in range(3) for ds in range(3))
    np.testing.assert_allclose(kernel(x, f), want, rtol=1e-4, atol=1e-4)


def test_attention_fused_by_hand_keeps_no_full_size_temporary():
    src = (KERNELS / "attention.lw").read_text()
    default = loopweave.compile(src)
    assert {t.name for t in default.ir.temporaries} == {"s", "p"}
    fused = loopweave.compile(src, schedule=Schedule().fuse("s", "m", "e", "z", "p", "O",
                                                            depth=1))
    assert not fused.ir.temporaries  # every intermediate is a row-sized local
    q, k, v = (rng.standard_normal(sh, dtype=np.float32) for sh in ((37, 16), (29, 16), (29, 8)))
    np.testing.assert_allclose(fused(q, k, v, 0.25), default(q, k, v, 0.25), rtol=1e-5,
                               atol=1e-6)
