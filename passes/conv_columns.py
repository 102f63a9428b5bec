"""The host default's choice by sizes for convolutions (`ChannelColumns`, asked by the host
backend's size rule per call's sizes):

- unit-stride convolutions with at least UNIT_MIN_CHANNELS input channels take the strided
  ones' form (passes/strided_conv.py: channels-last copies, a register tile of output columns
  x output channels, vectors along the channels) instead of the default's column tile, whose
  vectors run along the output's rows: few columns leave those vectors short, and many
  channels make the channels-last form's reduction long;
- a convolution in that form takes the wide tile (`TargetFacts.channel_conv_wide`, AVX-512: 14
  columns x 32 channels, 28 accumulators) where its output has at least 14 columns; below, 7 x
  32, since 14 columns over 7 would compute half of the lanes for nothing;
- every other convolution (the column tile, depthwise ones) keeps the default's tile, chosen by
  sizes all the same, so that each call's sizes get a build with the sizes fixed
  (`ChannelColumns.specialize`).

One thread, Xeon VM (Sapphire Rapids class), ms, 2026-12-05. 3x3 unit stride, C -> K on the
output's side, column tile / channels 7 x 32 / channels 14 x 32 / torch: 64 -> 64 on 56 1.81 /
1.75 / 1.61 / 1.35; 128 -> 128 on 28 3.58 / 1.69 / 1.48 / 1.35; 256 -> 256 on 14 12.7 / 1.87 /
2.40 / 1.66; 512 -> 512 on 7 24.8 / 8.0 / 6.8 / 3.5; 64 -> 32 on 56 1.17 / 0.93 / 1.10; and with
few input channels the column tile: 32 -> 32 on 112 1.73 / 2.35 / 2.16; 16 -> 64 on 112 1.99 /
2.56 / 2.60; 3 -> 64 on 224 2.46 / 6.57 / 5.67; 32 -> 64 on 56 1.03 / 1.11 / 1.10. Stride 2,
7 x 32 / 14 x 32: 64 -> 128 on 56 -> 28 1.14 / 0.99, 128 -> 256 on 28 -> 14 1.20 / 1.05,
256 -> 512 on 14 -> 7 2.6 / 6.1. Only where the target's facts have the wide tile (AVX-512):
on AVX2 neither choice has been measured, and the default stands.
"""

from __future__ import annotations

from collections.abc import Callable

from loopweave.ir import expr as ir
from loopweave.ir.kernel import KernelIR
from loopweave.passes import placement as pl
from loopweave.passes.default import CPU, CPU_AVX512, default_schedule
from loopweave.passes.patterns import match_convolution
from loopweave.passes.schedule import Schedule
from loopweave.passes.strided_conv import (
    normalize_strided_convolutions,
    pack_extents,
    unit_stride_channels,
)

#: Input channels from which a unit-stride convolution takes the channels-last form.
UNIT_MIN_CHANNELS = 64


class ChannelColumns:
    """The default's choice by sizes for a kernel's convolutions (module docstring): a
    schedule, or for unit-stride ones in the channels-last form a function of the normalized
    IR that rewrites and schedules it, or the default's own tile (chosen by sizes too, so
    that it is built for them); None for sizes that leave the extents open."""

    why = "the convolutions' tiles by sizes (channels-last for many channels or columns)"
    #: Built for each call's sizes, with the sizes fixed (loopweave.pipeline `Tuned`): with
    #: constant strides gcc addresses the tile's 7 or 14 data rows from one register, where
    #: symbolic ones took a register each and reloads from the stack in the inner loop. ResNet
    #: 3x3 convolutions, one thread, Xeon VM, ms symbolic / fixed / torch: stride 2 64 -> 128
    #: on 56x56 1.14 / 0.95 / 0.89; 256 -> 512 on 14x14 2.25 / 1.87 / 1.44; 512 -> 512 on 9x9
    #: 4.24 / 3.97 / 2.71; 64 -> 64 on 58x58 1.52 / 1.49 / 1.47; depthwise 3x3, 256 channels on
    #: 56x56: 0.57 / 0.44 (torch 0.83). A build per distinct sizes (a network has a few shapes
    #: of convolution; a GEMM's rule, called at many M, has none).
    specialize = True

    def __init__(self, kernel: KernelIR, strided: list[ir.Expr], unit: list[tuple],
                 columns: int, schedule: Callable[[KernelIR, bool, tuple], Schedule]):
        self.kernel, self.strided, self.unit, self.columns = kernel, strided, unit, columns
        self._schedule, self._made, self._forms = schedule, {}, {}

    def at(self, sizes: dict[str, int]):
        """The choice for `sizes`, or None for the default's."""
        try:
            rewrite = bool(self.unit) and min(
                ir.evaluate(c, sizes) for c, _ in self.unit) >= UNIT_MIN_CHANNELS
            widths = [*self.strided, *(w for _, w in self.unit if rewrite)]
            wide = bool(widths) and min(
                ir.evaluate(w, sizes) for w in widths) >= self.columns
        except (KeyError, ValueError):  # sizes that do not fix them: the default
            return None
        # Every convolution takes its default's tile where neither form applies, as a choice
        # by sizes, so that it is built for them (`specialize`).
        if rewrite not in self._forms:
            self._forms[rewrite] = normalize_strided_convolutions(self.kernel, True) \
                if rewrite else self.kernel
        kernel = self._forms[rewrite]
        extents = pack_extents(kernel, sizes)  # the weight packs hold whole kernels
        if (rewrite, wide, extents) not in self._made:
            schedule = self._schedule(kernel, wide, extents)
            self._made[rewrite, wide, extents] = (lambda k, s=schedule: s.apply(
                normalize_strided_convolutions(k, True))) if rewrite else schedule
        return self._made[rewrite, wide, extents]


def channel_columns(kernel: KernelIR, vector_bytes: Callable[[], int] | None = None,
                    gemm_kernel: Callable[[str], bool] | None = None) -> ChannelColumns | None:
    """A `ChannelColumns` for a (normalized) kernel with a convolution (in the channels-last
    form, a unit-stride one that could take it, any other, depthwise ones included); else
    None. The arguments are `default_schedule`'s."""
    placements = pl.initial_placements(kernel)
    strided = [kernel.tensors[s.lhs.tensor].shape[-1] for s in kernel.statements
               if match_convolution(s, placements[s.name].names(), along="channels")]
    unit = [(c, kernel.tensors[s.lhs.tensor].shape[-1]) for s in kernel.statements
            if (c := unit_stride_channels(kernel, s)) is not None]
    others = any(match_convolution(s, placements[s.name].names()) for s in kernel.statements)
    if not strided and not unit and not others:
        return None
    facts = CPU_AVX512 if vector_bytes is not None and vector_bytes() >= 64 else CPU
    if facts.channel_conv_wide is None:  # AVX2: unmeasured there, the default's tiles stay
        return None
    columns = facts.channel_conv_wide[0]
    return ChannelColumns(
        kernel, strided, unit, columns, lambda k, wide, extents: default_schedule(
            k, vector_bytes, gemm_kernel=gemm_kernel, wide_columns=wide, conv_extents=extents))
