"""Strided convolutions with output channels as the vector dimension (passes/strided_conv.py):
the normalization (k-last weights, zero-padded data where the `where` is padding), its limits,
the default's tile, numerics at odd sizes and strides against numpy and program order, and
the `cache_write` layout it needs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import loopweave
from loopweave.driver import stages
from loopweave.ir.expr import to_str
from loopweave.passes.conv_columns import UNIT_MIN_CHANNELS, channel_columns
from loopweave.passes.normalize import normalize
from loopweave.passes.strided_conv import (
    SPATIAL_BLOCK,
    WEIGHT_PACK_BYTES,
    normalize_strided_convolutions,
)
from loopweave.pipeline import front_end

ROOT = Path(__file__).resolve().parent.parent
S2 = (ROOT / "examples/kernels/conv2d_s2.lw").read_text()
S = loopweave.Schedule

# stride 3 and dilation 2 along x, no padding; rows stride 1
STRIDE3 = """
kernel c3(X: f32[N, C, H, W], F: f32[K, C, R, S]) -> Y: f32[N, K, H - R + 1, (W - 2 * S) / 3 + 1] {
    assume H >= R
    assume W >= 2 * S
    Y[n, k, y, x] += X[n, c, y + r, 3 * x + 2 * s] * F[k, c, r, s]
}
"""


def conv_numpy(x, f, stride, pad, dilation=1):
    x64, f64 = x.astype(np.float64), f.astype(np.float64)
    n, c, h, w = x.shape
    k, _, r, s = f.shape
    xp = np.pad(x64, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    oh = (h + 2 * pad[0] - r) // stride[0] + 1
    ow = (w + 2 * pad[1] - dilation * (s - 1) - 1) // stride[1] + 1
    y = np.zeros((n, k, oh, ow))
    for i in range(r):
        for j in range(s):
            rows = xp[:, :, i:i + stride[0] * oh:stride[0], :]
            cols = rows[:, :, :, dilation * j:dilation * j + stride[1] * ow:stride[1]]
            y += np.einsum("ncyx,kc->nkyx", cols[:, :, :oh, :ow], f64[:, :, i, j])
    return y


def test_normalization_pads_the_data_and_keeps_the_weights():
    kernel = normalize_strided_convolutions(front_end(S2, None))
    data = kernel.tensors["X_cl"]
    # rows a cache line longer than their elements (`_line_padded`)
    assert [to_str(d) for d in data.shape] == ["N", "H + 1 + 1", "W + 1 + 1", "C + 16"]
    conv = kernel.statements[-1]
    assert "X_cl[n, 2 * y + r - 1 + 1, 2 * x + s - 1 + 1, c]" in to_str(conv.rhs)
    assert "F[k, c, r, s]" in to_str(conv.rhs)  # packed per block by the schedule
    assert set(kernel.tensors) == {"X", "F", "Y", "X_cl"}
    # the padded copy runs before the output's initialisation
    names = [s.name for s in kernel.statements]
    assert names.index("S1_X_cl_zero") < names.index("S1_X_cl_copy") < names.index("S0")


@pytest.mark.parametrize("source", [
    # unit stride: the column tile of match_convolution takes it
    """kernel k(X: f32[C, H, W], F: f32[K, C, R, S]) -> Y: f32[K, H - R + 1, W - S + 1] {
        assume H >= R
        assume W >= S
        Y[k, y, x] += X[c, y + r, x + s] * F[k, c, r, s] }""",
    # a guard that is not padding (it cuts the output too)
    """kernel k(X: f32[C, H, W], F: f32[K, C, S]) -> Y: f32[K, H, W / 2] {
        Y[k, y, x] += X[c, y, 2 * x + s] * F[k, c, s] where 2 * x + s < W, x < 3 }""",
    # three factors
    """kernel k(X: f32[C, W], F: f32[K, C, S], g: f32[K]) -> Y: f32[K, W / 2] {
        Y[k, x] += X[c, 2 * x + s] * F[k, c, s] * g[k] where 2 * x + s < W }""",
], ids=["unit-stride", "not-padding", "three-factors"])
def test_what_stays_untouched(source):
    kernel = front_end(source, None)
    result = normalize_strided_convolutions(kernel)
    if "x < 3" in source:  # copies, but the guard stays: no padding
        assert [to_str(d) for d in result.tensors["X_cl"].shape] == ["H", "W", "C + 16"]
    else:
        assert result is kernel


def test_the_default_tiles_output_channels():
    st = stages(S2)
    steps = [(step.op, step.target, step.args) for step in st.schedule.steps]
    tile = next(args for op, target, args in steps if op == "tile" and target == "S1")
    assert dict(tile)["x"] in (3, 7)
    # without sizes, a pack holds 3 x 3 kernels and as many input channels as fit
    assert dict(tile)["r"] == dict(tile)["s"] == SPATIAL_BLOCK
    assert 9 * dict(tile)["c"] * dict(tile)["k"] * 4 <= WEIGHT_PACK_BYTES
    order = next(args for op, target, args in steps if op == "reorder" and target == "S1")
    assert list(order) == ["n", "r_o", "s_o", "c_o", "k_o", "y", "x_o", "r", "s", "c", "x", "k"]
    write = next(args for op, target, args in steps if op == "cache_write")
    assert write[0] == "r" and tuple(write[1]) == (0, 2, 3, 1)
    # the weights packed per block of output channels, k last, before its rows
    pack = next(args for op, target, args in steps if op == "cache_read")
    assert pack[:2] == ("F", "y") and tuple(pack[2]) == (2, 3, 1, 0)


@pytest.mark.parametrize("shape", [(1, 3, 9, 11, 5, 3, 3), (2, 4, 16, 15, 70, 3, 2),
                                   (1, 5, 8, 8, 33, 1, 1), (1, 16, 13, 17, 130, 3, 3)])
def test_stride_two_matches_numpy_and_program_order(shape):
    n, c, h, w, k, r, s = shape
    rng = np.random.default_rng(sum(shape))
    x = rng.uniform(-1, 1, (n, c, h, w)).astype(np.float32)
    f = rng.uniform(-1, 1, (k, c, r, s)).astype(np.float32)
    want = conv_numpy(x, f, (2, 2), (1, 1))
    for kernel in (loopweave.compile(S2, tuning_db=False, cost_model=False),
                   loopweave.compile(S2, schedule=S(), tuning_db=False, cost_model=False)):
        np.testing.assert_allclose(kernel(x, f), want, rtol=1e-4, atol=1e-4)


def test_stride_three_with_dilation_and_no_padding():
    kernel = loopweave.compile(STRIDE3, tuning_db=False, cost_model=False)
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, (2, 6, 7, 29)).astype(np.float32)
    f = rng.uniform(-1, 1, (19, 6, 2, 3)).astype(np.float32)
    y = kernel(x, f)
    assert "F_pack" in kernel.source and "X_cl" in kernel.source
    want = conv_numpy(x, f, (1, 3), (0, 0), dilation=2)
    np.testing.assert_allclose(y, want[:, :, :, :y.shape[3]], rtol=1e-4, atol=1e-4)


def test_cache_write_layout_is_checked():
    with pytest.raises(loopweave.ScheduleError, match="permutation"):
        S().cache_write("S1", "c", layout=(0, 0, 1))


def _tile_of(schedule) -> dict:
    return dict(next(step.args for step in schedule.steps
                     if step.op == "tile" and step.target == "S1"))


def test_the_wide_tile_by_output_columns():
    """`ChannelColumns` (the host's size rule): 14 x 32 from 14 output columns on, else the
    default's 7 x 32 (chosen by sizes too: built for them); sizes that leave the width open
    keep the default."""
    kernel = normalize_strided_convolutions(front_end(S2, None))
    rule = channel_columns(kernel, lambda: 64)
    at = {"N": 1, "C": 8, "H": 27, "W": 27, "K": 40, "R": 3, "S": 3}  # (27 + 2 - 3) / 2 + 1
    assert rule.at(at) is not None and _tile_of(rule.at(at))["x"] == 14
    assert _tile_of(rule.at({**at, "W": 25}))["x"] == 7  # 13 columns
    assert rule.at({"N": 1}) is None
    assert _tile_of(stages(S2).schedule)["x"] == 7 or not _host_is_avx512()
    assert channel_columns(kernel, lambda: 32) is None  # AVX2's facts have no wide tile
    assert channel_columns(front_end(S2, None), lambda: 64) is None  # not normalized: no match


def _host_is_avx512() -> bool:
    return "avx512f" in Path("/proc/cpuinfo").read_text().split()


@pytest.mark.parametrize("width", [25, 27, 29, 56])
def test_both_sides_of_the_wide_tile_match_numpy(width):
    """Output widths 13, 14, 15 and 28 through `compile` (the host's rule picks the tile per
    call): the same numbers as numpy either way."""
    kernel = loopweave.compile(S2, tuning_db=False, cost_model=False)
    rng = np.random.default_rng(width)
    x = rng.uniform(-1, 1, (1, 5, 9, width)).astype(np.float32)
    f = rng.uniform(-1, 1, (37, 5, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(kernel(x, f), conv_numpy(x, f, (2, 2), (1, 1)), rtol=1e-4,
                               atol=1e-4)
    if "lw_vec_f32_16" in kernel.source:  # an AVX-512 build: 14 x 32 or 7 x 32 accumulators
        wide = (width + 2 - 3) // 2 + 1 >= 14
        assert f"Y_acc[{448 if wide else 224}]" in kernel.source


CONV = (ROOT / "examples/kernels/conv2d.lw").read_text()


def test_unit_stride_convolutions_with_many_channels_take_the_channels_last_form():
    """The host's size rule rewrites a unit-stride convolution with at least UNIT_MIN_CHANNELS
    input channels into the strided form (a function of the normalized IR), and gives one with
    fewer the default's column tile (built for the sizes); sizes that leave C open keep the
    default."""
    kernel = normalize(front_end(CONV, None))
    assert "X_cl" not in kernel.tensors  # the default keeps the column tile
    rule = channel_columns(kernel, lambda: 64)
    at = {"N": 1, "C": UNIT_MIN_CHANNELS, "H": 12, "W": 12, "K": 40, "R": 3, "S": 3}
    choice = rule.at(at)
    assert callable(choice) and not isinstance(choice, S)
    scheduled = choice(kernel)
    assert "X_cl" in scheduled.tensors and "F_t" not in scheduled.tensors
    few = rule.at({**at, "C": UNIT_MIN_CHANNELS - 1})  # the column tile, built for the sizes
    assert isinstance(few, S) and "X_cl" not in few.apply(kernel).tensors
    assert rule.at({"N": 1}) is None
    assert channel_columns(kernel, lambda: 32) is None  # AVX2: unmeasured, the default stays


@pytest.mark.parametrize(("c", "w"), [(UNIT_MIN_CHANNELS - 1, 17), (UNIT_MIN_CHANNELS, 17),
                                      (UNIT_MIN_CHANNELS + 3, 9), (UNIT_MIN_CHANNELS, 30)])
def test_unit_stride_forms_match_numpy(c, w):
    """Either side of the channel bound, 7 to 28 output columns: the numbers of numpy, and
    the form the rule picked in the source that ran."""
    kernel = loopweave.compile(CONV, tuning_db=False, cost_model=False)
    rng = np.random.default_rng(c + w)
    x = rng.uniform(-1, 1, (1, c, 5, w)).astype(np.float32)
    f = rng.uniform(-1, 1, (19, c, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(kernel(x, f), conv_numpy(x, f, (1, 1), (0, 0)), rtol=1e-4,
                               atol=1e-4)
    if "lw_vec_f32_16" in kernel.source or "X_cl" in kernel.source:  # an AVX-512 build
        assert ("X_cl" in kernel.source) == (c >= UNIT_MIN_CHANNELS)


def test_the_channels_last_tile_reads_packed_weights_without_prefetches():
    """The channels-last tile's weights come from a pack per block of output channels (a
    local buffer, rows of the tile's lanes, contiguous), so its nest has no software
    prefetches; nor has the column tile, whose input X stays with the hardware's prefetchers
    (backends/register_tile.py prefetches only single-reduction tiles' rows read in place)."""
    strided = loopweave.compile(S2, tuning_db=False).source
    assert "F_pack" in strided and "__builtin_prefetch" not in strided
    column_tile = loopweave.compile((ROOT / "examples/kernels/conv2d.lw").read_text(),
                                    tuning_db=False).source
    assert "lw_r0_0" in column_tile and "__builtin_prefetch" not in column_tile


def test_a_strided_convolution_is_built_for_each_calls_sizes():
    """The channels-last tile is a choice by sizes at every width (`ChannelColumns`), so each
    call's sizes get a build with the sizes fixed (`ChannelColumns.specialize`):
    `source` shows no size parameter and the constants; its temporaries are kept from call to
    call (the same arrays); odd sizes on both sides of the wide tile match numpy."""
    kernel = loopweave.compile(S2, tuning_db=False, cost_model=False)
    rng = np.random.default_rng(7)
    sources = []
    for shape in [(1, 5, 9, 11, 19), (1, 5, 9, 11, 19), (2, 3, 30, 29, 33)]:
        n, c, h, w, k = shape
        x = rng.uniform(-1, 1, (n, c, h, w)).astype(np.float32)
        f = rng.uniform(-1, 1, (k, c, 3, 3)).astype(np.float32)
        np.testing.assert_allclose(kernel(x, f), conv_numpy(x, f, (2, 2), (1, 1)),
                                   rtol=1e-4, atol=1e-4)
        signature = next(line for line in kernel.source.splitlines()
                         if line.startswith("void lw_conv2d_s2("))
        # the pack holds whole 3 x 3 kernels of all c input channels: built for the sizes
        assert "int64_t" not in signature and f"F_pack[{9 * c * 32}]" in kernel.source
        kept = kernel.invoke._scratch.temporaries
        sources.append((kernel.source, [id(a) for a in kept[1]]))
    assert sources[0] == sources[1] and sources[1][0] != sources[2][0]


def test_a_depthwise_convolution_is_built_for_each_calls_sizes():
    """Depthwise convolutions keep the default's tile, chosen by sizes too: each call's sizes
    get a build with them fixed, and odd sizes match numpy."""
    kernel = loopweave.compile((ROOT / "examples/kernels/depthwise_conv2d.lw").read_text(),
                               tuning_db=False, cost_model=False)
    rng = np.random.default_rng(3)
    for n, c, h, w in [(1, 5, 9, 13), (2, 17, 12, 7)]:
        x = rng.uniform(-1, 1, (n, c, h, w)).astype(np.float32)
        f = rng.uniform(-1, 1, (c, 3, 3)).astype(np.float32)
        want = sum(x[:, :, r:h - 2 + r, s:w - 2 + s] * f[None, :, r, s, None, None]
                   for r in range(3) for s in range(3))
        np.testing.assert_allclose(kernel(x, f), want, rtol=1e-5, atol=1e-5)
        signature = next(line for line in kernel.source.splitlines()
                         if line.startswith("void lw_depthwise_conv2d("))
        assert "int64_t" not in signature


def test_weights_of_many_input_channels_are_packed_in_even_blocks():
    """Where a block's whole kernels would exceed WEIGHT_PACK_BYTES, the input channels split
    into even blocks (600 at 3 x 3: two of 300), each packed in turn, the output tile
    accumulating over them; the pack's copy runs c, then k, then r and s innermost (reads of
    F's rows and writes of the pack's a few lines at a time), transposed in registers where
    the machine has vectors (the loops stay for a block cut by the edge). The numbers of
    numpy."""
    kernel = loopweave.compile(S2, tuning_db=False, cost_model=False)
    rng = np.random.default_rng(11)
    x = rng.uniform(-1, 1, (1, 600, 7, 9)).astype(np.float32)
    f = rng.uniform(-1, 1, (40, 600, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(kernel(x, f), conv_numpy(x, f, (2, 2), (1, 1)), rtol=1e-4,
                               atol=1e-3)
    if "int64_t" in next(line for line in kernel.source.splitlines()
                         if line.startswith("void lw_conv2d_s2(")):
        pytest.skip("no size rule for channels-last convolutions here (AVX2 host)")
    assert f"F_pack[{9 * 300 * 32}]" in kernel.source
    lines = kernel.source.splitlines()
    # with vectors, each (c, 16 k) block is 16 rows of F's 9 taps, transposed in registers
    # (backends/transpose_tile.py: r and s walk F and the pack as one run of 9)
    assert any("lw_transpose_f32_" in line and "_r9c16(&F[" in line and "&F_pack[" in line
               for line in lines)
    store = next(n for n, line in enumerate(lines) if line.strip().startswith("F_pack["))
    loops = [line.split("int64_t ")[1].split(" ")[0] for line in lines[store - 8:store]
             if line.strip().startswith("for (int64_t c")]
    assert [v.split("_")[1] for v in loops] == ["1", "0", "2", "3"]  # c, k, r, s
