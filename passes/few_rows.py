"""The host default's choice by sizes for register-tiled contractions with few rows of C
(`PanelRows`, asked by the host backend's size rule per call's sizes): the few-rows default
(`default_schedule(few_rows=True)`: B packed row by row, not in micro-panels, on AVX2; 8-row
tiles on AVX-512) below PANEL_MIN_ROWS rows."""

from __future__ import annotations

from collections.abc import Callable

from loopweave.ir import expr as ir
from loopweave.ir.kernel import KernelIR
from loopweave.passes import placement as pl
from loopweave.passes.default import CPU, contraction_tile, default_schedule
from loopweave.passes.patterns import match_contraction
from loopweave.passes.schedule import Schedule

#: Rows of C from which B's micro-panels pay: below, packing B in runs of NR columns costs more
#: than the register tiles' contiguous reads save. Panels over row-major panels, one thread,
#: Zen 3, quiet (`benchmarks.matmul_peak` sizes and skinny ones): f32 16 x 4096 x 4096 0.62x,
#: 32 x 2048^2 0.71x, 128 x 2048^2 0.83x, 512 x 2048^2 1.00x, 1024^3 1.04x, 2048^3 1.08x;
#: f64 32 x 2000^2 0.64x, 1000^3 1.14x, 2000^3 1.21x.
PANEL_MIN_ROWS = 512


class PanelRows:
    """The default's choice by sizes for register-tiled contractions: the few-rows schedule
    (`default_schedule(few_rows=True)`: no micro-panels on AVX2, 8-row tiles on AVX-512)
    where some contraction's C has fewer than PANEL_MIN_ROWS rows, else None (the
    default)."""

    why = "the few-rows default (too few rows of C for micro-panels or 14-row tiles)"

    def __init__(self, kernel: KernelIR, rows: list[ir.Expr], plain: Callable[[], Schedule]):
        self.rows, self._plain, self._schedule = rows, plain, None

    def at(self, sizes: dict[str, int]) -> Schedule | None:
        """The schedule for `sizes`, or None for the default's."""
        try:
            if min(ir.evaluate(r, sizes) for r in self.rows) >= PANEL_MIN_ROWS:
                return None
        except (KeyError, ValueError):  # sizes that do not fix the rows: the default
            return None
        if self._schedule is None:
            self._schedule = self._plain()
        return self._schedule


def panel_rows(kernel: KernelIR, vector_bytes: Callable[[], int] | None = None,
               gemm_kernel: Callable[[str], bool] | None = None) -> PanelRows | None:
    """A `PanelRows` for a kernel with a register-tiled contraction whose few-rows schedule
    differs (a type the AVX2 host packs in micro-panels, `CPU.micro_panels`, which are also
    AVX-512's tiled types), else None. The arguments are `default_schedule`'s."""
    placements = pl.initial_placements(kernel)
    rows = []
    for s in kernel.statements:
        names = placements[s.name].names()
        c = match_contraction(s, names)
        if c is not None and s.lhs.dtype.name in CPU.micro_panels and \
                contraction_tile(s, names, CPU) is not None:
            where = [k for k, x in enumerate(s.lhs.indices) if x == ir.Var(c.i)]
            if where:
                rows.append(kernel.tensors[s.lhs.tensor].shape[where[0]])
    return PanelRows(kernel, rows, lambda: default_schedule(
        kernel, vector_bytes, few_rows=True, gemm_kernel=gemm_kernel)) if rows else None
