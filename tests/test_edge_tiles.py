"""Edge tiles pulled back over the tile before them (ir/strips.py `overlapped_tile`,
passes/cache.py `_overlap_from`): where a reduction's output tile starts from its fill and
every output element sums the same terms, the last tile along a dimension runs as a whole
register tile ending at the edge, computing some elements again to the same values; where
that is not safe (tiles that run in parallel, a triangular domain, a reduction in several
blocks, an extent below the tile's) the edge keeps its buffer and strips. Numeric checks at
sizes that leave every kind of edge, against numpy."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import loopweave
from loopweave import Schedule
from loopweave.ir import expr as ir
from loopweave.ir.loops import Store, walk
from loopweave.pipeline import Pipeline

KERNELS = Path(__file__).resolve().parent.parent / "examples" / "kernels"
DEPTHWISE = (KERNELS / "depthwise_conv2d.lw").read_text()
MATMUL = (KERNELS / "matmul.lw").read_text()
rng = np.random.default_rng(11)


def _pulled_back(loops, tensor: str, dims: tuple[int, ...] | None = None) -> bool:
    """Whether a store into `tensor` itself (not its edge buffer) starts at a min along one
    of `dims` (default: any): a tile pulled back to end at the edge."""
    return any(isinstance(n, Store) and n.tensor == tensor and any(
        isinstance(e, ir.Call) and e.func == "min"
        for d, i in enumerate(n.indices) if dims is None or d in dims for e in ir.walk(i))
        for n in walk(loops))


def _loops(src: str, schedule: Schedule | None = None):
    """The loop AST compile() builds for `src` at sizes not known until the call."""
    return Pipeline(src, "cpu", schedule=schedule).stages().loops


def _depthwise_reference(x, f):
    n, c, h, w = x.shape
    _, r, s = f.shape
    want = np.zeros((n, c, h - r + 1, w - s + 1))
    for dr in range(r):
        for ds in range(s):
            want += x[:, :, dr:dr + h - r + 1, ds:ds + w - s + 1] * f[None, :, dr, ds, None, None]
    return want


def _depthwise_args(n, c, h, w, r, s):
    return (rng.standard_normal((n, c, h, w), dtype=np.float32),
            rng.standard_normal((c, r, s), dtype=np.float32))


# Output rows x columns in the default's 4 x 32 tiles (AVX-512; 4 x 8 on AVX2): a last tile
# pulled back in both dimensions, in one, exact tiles, and extents below a tile (the buffer).
SHAPES = [(1, 2, 82, 82, 4, 4), (2, 3, 9, 45, 3, 3), (1, 1, 7, 67, 4, 4), (1, 2, 4, 5, 2, 1),
          (1, 1, 11, 34, 1, 3), (1, 3, 3, 40, 1, 1)]


@pytest.mark.parametrize("shape", SHAPES)
def test_depthwise_edge_tiles_are_pulled_back_and_exact(shape):
    kernel = loopweave.compile(DEPTHWISE, tuning_db=False)
    assert _pulled_back(_loops(DEPTHWISE), "Y")
    x, f = _depthwise_args(*shape)
    np.testing.assert_allclose(kernel(x, f), _depthwise_reference(x, f), rtol=1e-4, atol=1e-4)


CROSS = {"aarch64": ("aarch64-linux-gnu-gcc", "qemu-aarch64"),
         "cortex-m4": ("arm-none-eabi-gcc", "qemu-system-arm")}


@pytest.mark.parametrize("target", sorted(CROSS))
def test_pulled_back_tiles_are_exact_on_the_arm_targets(target):
    # NEON register tiles that start from the fill (aarch64); the Cortex-M's scalar tiles,
    # which keep the fill's stores and load them.
    for tool in CROSS[target]:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (make toolchains)")
    assert _pulled_back(Pipeline(DEPTHWISE, target).stages().loops, "Y")
    kernel = loopweave.compile(DEPTHWISE, target=target, tuning_db=False)
    x, f = _depthwise_args(1, 2, 7, 23, 3, 2)
    np.testing.assert_allclose(kernel(x, f), _depthwise_reference(x, f), rtol=1e-4, atol=1e-4)


def test_sizes_fixed_pull_back_the_last_tile_and_keep_no_strips():
    n, c, h, w, r, s = 1, 3, 82, 82, 4, 4
    stages = Pipeline(DEPTHWISE, "cpu").default_stages(dict(N=n, C=c, H=h, W=w, R=r, S=s))
    assert _pulled_back(stages.loops, "Y")
    # the pulled-back tile's registers start from the fill: no zero stored and loaded back
    assert "lw_r0_0 = ((lw_vec_f32_16){0} + 0.0f);" in stages.source or \
        "lw_r0_0 = ((lw_vec_f32_8){0} + 0.0f);" in stages.source


def _tiled(parallel: str | None = None) -> Schedule:
    s = (Schedule().reassociate("S1").tile("S1", y=4, x=16)
         .reorder("S1", "n", "c", "y_o", "x_o", "r", "s", "y", "x").cache_write("S1", at="r"))
    return s.parallel("S1", parallel) if parallel else s


@pytest.mark.parametrize("parallel, pulled", [(None, True), ("y_o", False)])
def test_no_tile_is_pulled_back_over_one_another_thread_runs(parallel, pulled):
    # Along y the tiles of a parallel y_o loop would store the same elements from two threads;
    # x (serial inside) still may.
    kernel = loopweave.compile(DEPTHWISE, schedule=_tiled(parallel), tuning_db=False)
    loops = _loops(DEPTHWISE, _tiled(parallel))
    assert _pulled_back(loops, "Y", dims=(2,)) == pulled
    assert _pulled_back(loops, "Y", dims=(3,))
    for shape in [(1, 2, 13, 37, 3, 3), (2, 1, 6, 20, 2, 2)]:
        x, f = _depthwise_args(*shape)
        np.testing.assert_allclose(kernel(x, f), _depthwise_reference(x, f), rtol=1e-4,
                                   atol=1e-4)


@pytest.mark.parametrize("k", [5, 8, 9, 30])
def test_a_reduction_in_several_blocks_pulls_back_only_where_one_block_holds_it(k):
    # k in blocks of 8 outside the tile: past K = 8 the tile adds to what earlier blocks
    # stored, and computing an element twice would add its block twice.
    s = (Schedule().tile("S1", i=4, j=16, k=8).reorder("S1", "i_o", "j_o", "k_o", "k", "i", "j")
         .cache_write("S1", at="k"))
    kernel = loopweave.compile(MATMUL, schedule=s, tuning_db=False)
    assert _pulled_back(_loops(MATMUL, s), "C")
    a = rng.standard_normal((11, k), dtype=np.float32)
    b = rng.standard_normal((k, 37), dtype=np.float32)
    np.testing.assert_allclose(kernel(a, b), a @ b, rtol=1e-5, atol=1e-5)


TRIANGLE = """
kernel lower(A: f32[N, K]) -> C: f32[N, N] {
    C[i, j] += A[i, k] * A[j, k] where j <= i
}"""
BAND = """
kernel band(A: f32[M, K], B: f32[K, N]) -> C: f32[M, N] {
    C[i, j] += A[i, k] * B[k, j] where k <= i + 2
}"""
TILED = (Schedule().tile("S1", i=4, j=16).reorder("S1", "i_o", "j_o", "k", "i", "j")
         .cache_write("S1", at="k"))


def _overlap_from(src: str) -> tuple:
    (spec,) = Pipeline(src, "cpu", schedule=TILED).stages().ir.caches
    return spec.overlap_from


def test_only_a_box_of_outputs_times_one_reduction_range_may_be_pulled_back():
    assert _overlap_from(MATMUL) == (ir.Const(0), ir.Const(0))
    assert _overlap_from(TRIANGLE) == ()  # the columns end at the row
    assert _overlap_from(BAND) == ()  # each row sums its own range of k


@pytest.mark.parametrize("src", [TRIANGLE, BAND])
def test_no_tile_is_pulled_back_where_the_domain_is_not_a_box(src):
    kernel = loopweave.compile(src, schedule=TILED, tuning_db=False)
    assert not _pulled_back(_loops(src, TILED), "C")
    a = rng.standard_normal((37, 5), dtype=np.float32)
    if src is TRIANGLE:
        want = np.tril(a @ a.T)
        got = kernel(a)
    else:
        b = rng.standard_normal((5, 19), dtype=np.float32)
        want = (a * (np.arange(5)[None, :] <= np.arange(37)[:, None] + 2)) @ b
        got = kernel(a, b)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_a_pulled_back_tile_moves_no_read_of_a_packed_buffer():
    # B's pack holds this column block's 16 columns: the columns stay, the rows (A, read in
    # place) are pulled back (where K is one block of 8: 5, 7 and 2 here, 13 not).
    s = (Schedule().tile("S1", i=4, j=16, k=8).reorder("S1", "j_o", "k_o", "i_o", "k", "i", "j")
         .cache_read("S1", "B", at="i_o").cache_write("S1", at="k"))
    loops = _loops(MATMUL, s)
    assert _pulled_back(loops, "C", dims=(0,)) and not _pulled_back(loops, "C", dims=(1,))
    kernel = loopweave.compile(MATMUL, schedule=s, tuning_db=False)
    for m, k, n in [(11, 5, 37), (3, 7, 16), (9, 2, 50), (13, 13, 20)]:
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        np.testing.assert_allclose(kernel(a, b), a @ b, rtol=1e-5, atol=1e-5)
