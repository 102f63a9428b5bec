"""The host default's choice by sizes for register-tiled contractions (`PanelRows`, asked by
the host backend's size rule per call's sizes): built with the tensors' strides fixed, and
below PANEL_MIN_ROWS rows of C the few-rows default (`default_schedule(few_rows=True)`: B
packed row by row, not in micro-panels, on AVX2, as AVX-512 packs it anyway); up to
WIDE_PANEL_MAX_ROWS rows B's panels as wide as B, and up to two tiles of rows B not packed at
all (streamed: `tile_recipes.stream_steps`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from loopweave.ir import expr as ir
from loopweave.ir.kernel import KernelIR
from loopweave.ir.specialize import stride_sizes
from loopweave.passes import placement as pl
from loopweave.passes.default import CPU, contraction_tile, default_schedule
from loopweave.passes.patterns import match_contraction
from loopweave.passes.schedule import Schedule
from loopweave.passes.tile_recipes import KC
from loopweave.targets import openmp_threads

#: Rows of C from which B's micro-panels pay: below, packing B in runs of NR columns costs more
#: than the register tiles' contiguous reads save. Panels over row-major panels, one thread,
#: Zen 3, quiet (`benchmarks.matmul_peak` sizes and skinny ones): f32 16 x 4096 x 4096 0.62x,
#: 32 x 2048^2 0.71x, 128 x 2048^2 0.83x, 512 x 2048^2 1.00x, 1024^3 1.04x, 2048^3 1.08x;
#: f64 32 x 2000^2 0.64x, 1000^3 1.14x, 2000^3 1.21x.
PANEL_MIN_ROWS = 512
#: Rows of C up to which B's panels span all of its columns (`wide_panel`): each row of B is
#: then read whole as the panel is packed, where narrower panels read 1-2 KB of each of KC rows
#: 4-16 KB apart (the AMX path's few-rows packing found the same: backends/x86_gemm.py). f32,
#: one thread, Xeon VM (AVX-512), GFLOP/s default / wide (panels of `WIDE_PANEL_BYTES`),
#: medians of rounds in shuffled order: 16 x 1024^2 72 / 90, 16 x 4096^2 63 / 71, 32 x 2048^2
#: 103 / 120, 48 x 2048^2 109 / 121, 64 x 1024^2 128 / 136, 96 x 1024^2 142 / 142, 128 x
#: 2048^2 148 / 146, 256 x 1024^2 151 / 146.
WIDE_PANEL_MAX_ROWS = 64
#: A wide panel's bytes (its depth KC follows): 128 KB measured 20-25% slower at 4096 columns
#: and 128 rows, 256 KB 5-7% at 2048 columns and 32 rows.
WIDE_PANEL_BYTES = 512 * 1024
#: NC of a wide panel is a multiple of 2 x PANEL_COLUMNS, at least two of every few-rows
#: tile's columns (16 on AVX2, 48 on AVX-512; 32 where B streams): a panel of one tile's
#: columns lost its register tile (`PanelRows.at`).
PANEL_COLUMNS = 48
#: Rows of C up to which B may be streamed unpacked (`tile_recipes.stream_steps`: where they
#: fit in STREAM_TILES of the few-rows tiles, 8 rows each on AVX-512, 6 on AVX2), its columns
#: in STREAM_SPLITS blocks (the parallel loop). f32, Xeon VM (AVX-512), GFLOP/s packed (wide
#: panels) / streamed / torch.mm, medians of shuffled rounds, one thread: 1 x 4096^2 10.3 /
#: 13.1 / 13.8, 4 x 1024^2 28 / 47 / 51, 8 x 4096^2 58 / 84 / 60, 12 x 1024^2 54 / 91 / 85,
#: 16 x 4096^2 72 / 89 / 66, 5 x 333 x 1000 36 / 98 / 125; two threads: 4 x 4096^2 24 / 58 /
#: 40, 8 x 1024^2 38 / 132 / 139. One block of columns measured 5-20% faster on one thread,
#: and left the second idle. From 32 rows on, the wide panels are faster (32 x 1024^2: 105
#: against 88-102).
STREAM_MAX_ROWS = 16
STREAM_SPLITS = 2
#: With threads, wide panels are cut into this many across B's columns, each WIDE_PANEL_BYTES,
#: and the loop over them is the parallel one: with one panel the threads shared its 4 row
#: blocks in each of 32 k blocks, 64 parallel regions of about 25 us a call. Xeon VM, f32,
#: `benchmarks.revisions`, two threads: 32 x 2048^2 2.23x, 64 x 1024^2 1.81x, 48 x 2048^2
#: 1.97x, 32 x 4096^2 2.10x; on one thread the cut ran 0.92x-0.99x (4096 columns 1.21x), so
#: one thread keeps one panel.
WIDE_PANEL_SPLITS = 2


class PanelRows:
    """The default's choice by sizes for register-tiled contractions, built for the call's
    strides (`specialize`): the few-rows schedule (`default_schedule(few_rows=True)`: no
    micro-panels on AVX2) where some contraction's C has fewer than
    PANEL_MIN_ROWS rows, with panels as wide as B up to WIDE_PANEL_MAX_ROWS rows and B
    streamed where every C has at most STREAM_MAX_ROWS; else the default's (None where no
    size sets a stride: the default build already has constant strides)."""

    why = "the contraction's default built for its strides (few rows of C: the few-rows tiles)"

    def __init__(self, kernel: KernelIR, rows: list[ir.Expr], plain: Callable[[], Schedule],
                 few: Callable[..., Schedule], panels: list[tuple[ir.Expr, int]] = (),
                 streamed_only: bool = False, depths: list[tuple[str, ir.Expr]] = ()):
        self.rows, self._made = rows, {}
        #: (statement, K) of each contraction: from PANEL_MIN_ROWS rows of C, those deeper than
        #: one panel's KC get panels as deep as the host's cache allows (`TargetFacts.depths`)
        self.depths = list(depths)
        #: Every contraction is the build's GEMM micro-kernel (bf16 on AMX): only sizes that
        #: stream B (`_gemm_call`) need a build of their own.
        self.streamed_only = streamed_only
        self._make = {False: lambda _panel, _stream, depths, _split: plain(depths),
                      True: lambda panel, stream, _depths, split: few(panel, stream, split)}
        #: (columns, element bytes) of each contraction's B, for `wide_panel`
        self.panels = list(panels)
        #: The sizes fixed in the build (loopweave.pipeline `Tuned`): the tensors' strides
        #: (`A[M, K] x B[K, N]`: K and N). With a symbolic K gcc gives each of a 14-row tile's
        #: rows of A its own register and reloads some from the stack in the k loop; with K
        #: fixed they are one register and constant offsets. One thread, Xeon VM (AVX-512),
        #: GFLOP/s symbolic / K and N fixed, medians of rounds in shuffled order: f32 matmul
        #: 1024^3 160 / 168, 2048^3 163 / 172, 1000^3 168 / 170, 256^3 162 / 163; bmm 16 x
        #: 256^3 139 / 147. M stays a parameter: a GEMM is called at many M (a batch, a
        #: sequence length), and with its weights' K and N fixed, one build per layer serves
        #: them all.
        self.specialize = stride_sizes(kernel)

    def at(self, sizes: dict[str, int]) -> Schedule | None:
        """The schedule for `sizes`, or None for the default's."""
        try:
            each = [ir.evaluate(r, sizes) for r in self.rows]
            columns = [(ir.evaluate(n, sizes), size) for n, size in self.panels]
        except (KeyError, ValueError):  # sizes that do not fix the rows: the default
            return None
        rows = min(each)
        splits = WIDE_PANEL_SPLITS if openmp_threads() > 1 else 1
        panel = wide_panel(columns, splits) if rows <= WIDE_PANEL_MAX_ROWS else None
        stream = None
        if 0 < max(each) <= STREAM_MAX_ROWS and columns:  # (every C in at most two tiles)
            stream = (max(each), _whole_tiles(-(-max(columns)[0] // STREAM_SPLITS)))
        few = rows < PANEL_MIN_ROWS
        depths = () if few else self._deep(sizes)
        if not few and not self.specialize and not depths or \
                self.streamed_only and stream is None:
            return None
        split = panel is not None and stream is None and panel[1] < max(columns)[0]
        key = (few, panel, stream, depths, split)
        if key not in self._made:
            self._made[key] = self._make[few](panel, stream, depths, split)
        return self._made[key]

    def _deep(self, sizes: dict[str, int]) -> tuple[tuple[str, int], ...]:
        """(statement, K at `sizes`) of the contractions deeper than one panel (KC)."""
        try:
            each = [(name, ir.evaluate(depth, sizes)) for name, depth in self.depths]
        except (KeyError, ValueError):
            return ()
        return tuple((name, k) for name, k in each if k > KC)


def wide_panel(columns: list[tuple[int, int]], splits: int = 1) -> tuple[int, int] | None:
    """(KC, NC) of B panels spanning all the columns of the widest B (`columns`: its columns
    and element bytes per contraction), or a `splits`-th of them where each part still has
    two tiles' columns; WIDE_PANEL_BYTES each (KC from 8 to the host's KC); None without
    columns."""
    if not columns:
        return None
    n, size = max(columns)
    if splits > 1 and n >= splits * 2 * PANEL_COLUMNS:
        n = -(-n // splits)
    depth = max(8, min(KC, WIDE_PANEL_BYTES // (max(n, 1) * size) // 8 * 8))
    return depth, _whole_tiles(n)


def _whole_tiles(columns: int) -> int:
    """`columns` rounded up to a multiple of two tiles' (`PANEL_COLUMNS`): a block of one
    tile's columns made isl drop the tiled column loop, and the register tile with it."""
    return -(-columns // (2 * PANEL_COLUMNS)) * 2 * PANEL_COLUMNS


#: The host's facts as if it had no GEMM micro-kernel: the contractions `panel_rows` counts
#: include bf16 GEMMs (AMX), which stream instead where C has one tile of rows (`_gemm_call`).
TILED = replace(CPU, gemm_kernels=())


def panel_rows(kernel: KernelIR, vector_bytes: Callable[[], int] | None = None,
               gemm_kernel: Callable[[str], bool] | None = None) -> PanelRows | None:
    """A `PanelRows` for a kernel with a register-tiled contraction whose few-rows schedule
    differs (a type the AVX2 host packs in micro-panels, `CPU.micro_panels`, which are also
    AVX-512's tiled types), else None. The arguments are `default_schedule`'s."""
    placements = pl.initial_placements(kernel)
    rows, panels, batched, calls, depths = [], [], False, [], []
    for s in kernel.statements:
        names = placements[s.name].names()
        c = match_contraction(s, names)
        if c is not None and s.lhs.dtype.name in CPU.micro_panels and \
                contraction_tile(s, names, TILED) is not None:
            calls.append(contraction_tile(s, names, CPU) is None and gemm_kernel is not None
                         and gemm_kernel(c.a.dtype.name))
            shape = kernel.tensors[s.lhs.tensor].shape
            where = [k for k, x in enumerate(s.lhs.indices) if x == ir.Var(c.i)]
            if where:
                rows.append(shape[where[0]])
            across = [k for k, x in enumerate(s.lhs.indices) if x == ir.Var(c.j)]
            if across:
                panels.append((shape[across[0]], s.lhs.dtype.bits // 8))
            batched = batched or len(names) != 3
            deep = [k for k, x in enumerate(c.a.indices) if x == ir.Var(c.k)]
            if deep:
                depths.append((s.name, kernel.tensors[c.a.tensor].shape[deep[0]]))
    if not rows:
        return None
    if batched:  # a panel may serve all of a batch's rows (LSTM's input projection: 16 rows
        panels = []  # by 64 steps, 3% slower in wide panels): the target's panels
    return PanelRows(kernel, rows,
                     lambda depths: default_schedule(kernel, vector_bytes,
                                                     gemm_kernel=gemm_kernel, depths=depths),
                     lambda panel, stream, split: default_schedule(
                         kernel, vector_bytes, few_rows=True, gemm_kernel=gemm_kernel,
                         panel=panel, stream=stream, parallel_panels=split),
                     panels, streamed_only=all(calls), depths=depths)
