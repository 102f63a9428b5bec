"""The host default's choice by sizes for strided convolutions (`ChannelColumns`, asked by the
host backend's size rule per call's sizes): the wide channel tile (`TargetFacts.
channel_conv_wide`, AVX-512: 14 output columns x 32 output channels, 28 accumulators) where
each such convolution's output has at least that many columns; below, the default's tile (7 x
32), since a 14-column tile over 7 columns computes half of its lanes for nothing.

One thread, Xeon VM, stride-2 3x3 convolutions (ms, 7 x 32 / 14 x 32): 64 -> 128 channels on
56x56 1.14 / 0.99, 128 -> 256 on 28x28 1.20 / 1.05, 256 -> 512 on 14x14 2.6 / 6.1.
"""

from __future__ import annotations

from collections.abc import Callable

from loopweave.ir import expr as ir
from loopweave.ir.kernel import KernelIR
from loopweave.passes import placement as pl
from loopweave.passes.default import CPU, CPU_AVX512, default_schedule
from loopweave.passes.patterns import match_convolution
from loopweave.passes.schedule import Schedule


class ChannelColumns:
    """The wide-tile schedule where every strided convolution's output has at least `columns`
    columns at the call's sizes, else None (the default)."""

    why = "the wide channel tile (strided convolutions with many output columns)"

    def __init__(self, widths: list[ir.Expr], columns: int, wide: Callable[[], Schedule]):
        self.widths, self.columns, self._wide, self._schedule = widths, columns, wide, None

    def at(self, sizes: dict[str, int]) -> Schedule | None:
        """The schedule for `sizes`, or None for the default's."""
        try:
            if min(ir.evaluate(w, sizes) for w in self.widths) < self.columns:
                return None
        except (KeyError, ValueError):  # sizes that do not fix the widths: the default
            return None
        if self._schedule is None:
            self._schedule = self._wide()
        return self._schedule


def channel_columns(kernel: KernelIR, vector_bytes: Callable[[], int] | None = None,
                    gemm_kernel: Callable[[str], bool] | None = None) -> ChannelColumns | None:
    """A `ChannelColumns` for a (normalized) kernel with a convolution along its output
    channels, where the host's facts have a wide tile for them; else None. The arguments are
    `default_schedule`'s."""
    placements = pl.initial_placements(kernel)
    widths = [kernel.tensors[s.lhs.tensor].shape[-1] for s in kernel.statements
              if match_convolution(s, placements[s.name].names(), along="channels")]
    if not widths:
        return None
    facts = CPU_AVX512 if vector_bytes is not None and vector_bytes() >= 64 else CPU
    if facts.channel_conv_wide is None:
        return None
    return ChannelColumns(widths, facts.channel_conv_wide[0], lambda: default_schedule(
        kernel, vector_bytes, gemm_kernel=gemm_kernel, wide_columns=True))
