"""Default schedules: what `compile()` uses when no schedule is given, for every CPU-like
target (the host `cpu` here; `aarch64`, `cortex-m4`, `cortex-m55` through
`passes/default_arm.py`), from one set of heuristics whose numbers come from a small
per-target record (`TargetFacts`).

The patterns (contraction, convolution) are `passes/patterns.py`'s. Each decision is tried on
the kernel and kept only if `Schedule.apply` accepts it (so the result is legal by
construction), in this order:

1. fusion: consecutive top-level statements are fused over their outer loop when that makes a
   temporary local (softmax, layernorm: no full-size intermediate), except contractions
   (attention's Q @ K^T and P @ V run as matmuls; its softmax rows are fused between them);
2. contractions `C[.., i, j] += A[.., i, k] * B[.., k, j]`: a BLIS-like nest — B packed per
   (KC-deep, NC-wide) panel where the target packs, an MR x NR accumulator tile in vector
   registers over k (8x48 for AVX-512, 6x16 for AVX2; per target in `FACTS` and
   `passes.default_arm.ARM_FACTS`); convolutions a rows x cols tile of (output channel,
   column); int8 contractions (operands cast to i32) only where the target has a tile for
   them; in the other statements, the loop that walks the most accesses with stride 1 goes
   innermost where that is legal;
3. the outermost loop of each nest is parallel (OpenMP) if it carries no dependence and the
   target has threads; an unbatched contraction's row-block loop instead (see
   `_row_block_loop`);
4. the innermost loop of each remaining statement is vectorized if it carries none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from loopweave.errors import ScheduleError
from loopweave.ir import expr as ir
from loopweave.ir.kernel import KernelIR, Statement
from loopweave.passes import placement as pl
from loopweave.passes.fission import (
    alone_below_batch,
    batch_prefix,
    distribute_before,
    first_after,
    group_size,
    stride_one_innermost,
)
from loopweave.passes.graph import consumed_temporaries, dataflow_graph
from loopweave.passes.isl_choice import isl_fallback
from loopweave.passes.legality import REDUCTIONS
from loopweave.passes.loop_kinds import fuse_step_statements, loop_marks
from loopweave.passes.patterns import match_contraction, match_convolution, match_gemm
from loopweave.passes.right_looking import right_looking
from loopweave.passes.row_blocks import row_blocks
from loopweave.passes.schedule import Schedule, try_steps
from loopweave.passes.split_sums import sum_terms
from loopweave.passes.strided_conv import WEIGHT_PACK_BYTES, channel_steps
from loopweave.passes.tile_recipes import (
    CONV_COLS,
    CONV_ROWS,
    DEPTHWISE_COLS,
    DEPTHWISE_ROWS,
    KC,
    MR,
    NC,
    NR,
    STREAM_DEPTH,
    STREAM_TILES,
    casts_beyond_float_tile,
    contraction_steps,
    convolution_steps,
    deep_panel,
    dot_steps,
    float_conversions,
    shared_by_batch,
    stream_steps,
)
from loopweave.passes.wavefront import latency_wavefront
from loopweave.targets import host_cache_bytes

#: Iterations of a full reduction's loop per partial result (see `full_reduction_steps`).
REDUCTION_CHUNK = 4096
#: The most bytes of a row of a tile that streams B (`_stream_steps`; f32: 32 columns): 8 x
#: 48 f32 tiles ran 7% slower than 8 x 32 there (8 x 4096^2, one thread: B read from memory,
#: not from a panel).
STREAM_ROW_BYTES = 128
#: The host's L2 cache (None where Linux does not report it): deep B panels take a share of it
#: (`TargetFacts.panel_cache_share`).
L2_BYTES = host_cache_bytes(2)
#: Fusion tries one `apply` per statement; beyond this many statements it is not attempted.
MAX_FUSION_STATEMENTS = 48


@dataclass(frozen=True, slots=True)
class TargetFacts:
    """What the default schedule needs to know of a target: data, not code.

    matmul_tile: f32 (rows, columns) of C kept in registers; panel: (KC, NC) of the packed B
    panel, None for no packing (a microcontroller's flat SRAM has no cache to block for, and the
    copy costs instructions); conv_tile / depthwise_tile: (rows, columns) of a convolution's
    output in registers; int8_tile: the same for contractions and convolutions whose operands
    are cast up (int8 -> int32), None to leave those to the renderer's MAC idiom in program
    order; int8_dot: (rows, columns, KC, NC) of an int8 contraction's tile as dot products
    along k (`dot_steps`: a core whose instructions reduce runs of k, like Helium's VMLADAV),
    used instead of int8_tile; parallel: whether an OpenMP loop means threads; f64_tile:
    (rows, columns) for f64 contractions where matmul_tile would not fit the register file
    (None: matmul_tile); micro_panels: the element types whose packed B panel is stored as
    BLIS micro-panels (`cache_read(panel=NR)`: each register tile reads its B columns
    contiguously along k) rather than row by row; gemm_kernels: the operand types of
    unbatched contractions (`C[i, j] += i32(A[i, k]) * i32(B[k, j])` for "i8",
    `f32(A[i, k]) * f32(B[k, j])` for "bf16", nothing else) that keep their loops, untiled, with
    the reduction loop marked `dot`, which the host's renderer runs as a GEMM micro-kernel
    (AMX tiles, AVX512-VNNI or AVX512-BF16: backends/x86_gemm.py) where the build has one.
    """

    name: str
    vector_bytes: int
    vector_registers: int
    parallel: bool
    matmul_tile: tuple[int, int]
    panel: tuple[int, int] | None
    conv_tile: tuple[int, int]
    depthwise_tile: tuple[int, int]
    int8_tile: tuple[int, int] | None = None
    int8_dot: tuple[int, int, int, int] | None = None
    f64_tile: tuple[int, int] | None = None
    micro_panels: tuple[str, ...] = ()
    gemm_kernels: tuple[str, ...] = ()
    # (rows, NC): C of a contraction has these rows in all, at most STREAM_TILES tiles': B
    # streamed unpacked (`stream_steps`; set per call's sizes by passes/few_rows.py `PanelRows`)
    stream: tuple[int, int] | None = None
    # the loop over B's panels runs in parallel (each thread packs panels of its own): B's
    # wide panels cut for the threads (passes/few_rows.py `WIDE_PANEL_SPLITS`)
    parallel_panels: bool = False
    # (output columns, vectors of output channels) of a strided convolution's tile
    # (`passes/strided_conv.py`), and a wider one for outputs with at least its columns
    # (`passes/conv_columns.py`; None: none)
    channel_conv_tile: tuple[int, int] = (4, 4)
    channel_conv_wide: tuple[int, int] | None = None
    # (statement, variable, extent) of the reductions a convolution's weight packs hold, where
    # the call's sizes are known (`strided_conv.pack_extents`, by `ChannelColumns`)
    conv_extents: tuple[tuple[str, str, int], ...] = ()
    # the share of the host's L2 cache a packed B panel may fill where the call's K is known
    # (`depths`: (statement, K), set per call's sizes by `PanelRows`): the panel then spans K as
    # deep as that holds (`tile_recipes.deep_panel`); None: always `panel`
    panel_cache_share: float | None = None
    depths: tuple[tuple[str, int], ...] = ()
    # the most bytes of a convolution's weight pack (`strided_conv.channel_steps`: a stack
    # buffer, so a microcontroller's is small)
    weight_pack_bytes: int = WEIGHT_PACK_BYTES


#: The host with AVX2-wide (32-byte) vectors; `CPU_AVX512` where the compiler targets AVX-512.
# f64: 6 x 16 would be 24 ymm accumulators in 16 registers (gcc spills 8 of them in the k
# loop); 6 x 8 is 12. PolyBench gemm f64 1000^3, one thread, Zen 3: 15.5 -> 18.4 GFLOP/s.
# B packed in micro-panels (a row-major panel row is 1-2 KB: a tile's 256 rows of B are 256
# strided lines), one thread, Zen 3, quiet: f64 1000^3 32 -> 39 GFLOP/s; f32 2048^3 75-79 ->
# 80-85, 1024^3 80 -> 86, 1000^3 even (73-78 both).
CPU = TargetFacts("cpu", 32, 16, True, (MR, NR), (KC, NC), (CONV_ROWS, CONV_COLS),
                  (DEPTHWISE_ROWS, DEPTHWISE_COLS), f64_tile=(MR, NR // 2),
                  micro_panels=("f32", "f64"), gemm_kernels=("i8", "bf16"),
                  channel_conv_tile=(3, 4))  # 12 ymm accumulators of 16 registers
# AVX-512: 8 x 48 tiles (24 zmm accumulators: 24 FMAs per 8 broadcasts of A and 3 loads of B;
# f64 8 x 24) in panels of 288 columns (six tiles; 256 left a strip of 16 columns a panel), no
# micro-panels (measured even). Against 14 x 32 (28 accumulators, 28 FMAs per 14 broadcasts
# and 2 loads: fewer loads, but 14 rows of A in L1 at once), in-process, builds back to back
# in shuffled rounds, speed of 8 x 48 over 14 x 32, Xeon VM: one thread while another tenant
# shared the core (the VM at half speed) f32 1024^3 1.16, 2048^3 1.13, 1000^3 1.01, f64 1024^3
# 1.14, 2000^3 1.06, 1000^3 1.05; two threads f32 1024^3 1.18, 2048^3 1.16, 1000^3 1.01, 4096
# x 256^2 1.02; one thread in a calmer spell (numpy 112 GFLOP/s) 1024^3 1.14, 2048^3
# 1.15, 512^3 1.08, 1000^3 1.00, 4096 x 256^2 0.98 (session 23, quieter, panels of 256: 0.97-
# 1.01, 4096 x 256^2 0.90). Rows of A 4 KB apart (K = 1024 f32) all fall
# in one L1 set, and 14 of them are more than its ways. Below PANEL_MIN_ROWS rows of C the
# same tiles (since session 23; in-process, ms 8 x 32 / 8 x 48: 128 x 1024^2 2.35 / 2.13, bmm
# 16 x 256^3 5.08 / 4.61, the suite's lstm 10.5 / 9.3; streamed B keeps 32 columns:
# `STREAM_ROW_BYTES`). Intel Xeon; the numbers in docs/scheduling.md.
# Convolutions: 8 x 32 (16 zmm accumulators). conv2d 64 -> 64 channels, 3x3, one thread: 56
# output columns 98-100 GFLOP/s (8 x 8, the AVX2 tile: 73; 8 x 16: 92; 4 x 64, 16 x 16, 12 x 32:
# 83-87), 48 columns 120 (8 x 16: 105).
# Strided convolutions: 7 columns x 32 channels. Stride-2 3x3 convs, one thread, GFLOP/s at
# 7x32 / 14x32 / 6x64 / 4x64: 64 -> 128 channels on 56x56 80 / 95 / 82 / 71; 128 -> 256 on
# 28x28 64 / 77 / 67 / 46; 256 -> 512 on 14x14 (7 output columns) 17 / 5 / 12 / 7. With at
# least 14 output columns 14 x 32, by the calls' sizes (2026-12-05, ms at 7x32 / 14x32: 56x56
# 1.14 / 0.99, 28x28 1.20 / 1.05; 14x14 2.6 / 6.1, where 7 columns use half the tile).
# Deep panels where K is known: 3/8 of L2 (768 KB of 2 MB: f32 1024 x 192, 2048 x 96; f64 1000
# x 96, 2000 x 48). Speed over the 256 x 288 panels, one thread, Xeon VM, in-process, shuffled
# rounds: f32 1024^3 1.05-1.06 (1024 x 144: 1.05-1.07; 1024 x 288, 1.2 MB: 0.98), 2048^3
# 1.07-1.08 (2048 x 192, 1.5 MB: 0.84), 1000^3 1.07; f64 1000^3 1.03, 2000^3 1.05; two threads
# f32 1024^3 1.06, 2048^3 1.08; 4096 x 256^2 (K one block already) 256 x 144: 0.94.
CPU_AVX512 = replace(CPU, vector_bytes=64, vector_registers=32, matmul_tile=(8, 48),
                     f64_tile=(8, 24), panel=(KC, 288), micro_panels=(), conv_tile=(8, 32),
                     channel_conv_tile=(7, 2), channel_conv_wide=(14, 2),
                     panel_cache_share=0.375)
#: The host's facts for contractions with fewer than PANEL_MIN_ROWS rows of C (`PanelRows`).
CPU_FEW_ROWS = replace(CPU, micro_panels=())
#: Per-target facts, by target name (see docs/scheduling.md for the measurements behind them).
FACTS: dict[str, TargetFacts] = {"cpu": CPU, "cpu-avx512": CPU_AVX512}


def default_schedule(kernel: KernelIR, vector_bytes: Callable[[], int] | None = None,
                     few_rows: bool = False,
                     gemm_kernel: Callable[[str], bool] | None = None,
                     wide_columns: bool = False, panel: tuple[int, int] | None = None,
                     stream: tuple[int, int] | None = None,
                     conv_extents: tuple[tuple[str, str, int], ...] = (),
                     depths: tuple[tuple[str, int], ...] = (),
                     parallel_panels: bool = False) -> Schedule:
    """The host's default schedule for `kernel`. `vector_bytes()` (asked only for a
    contraction: it may run the compiler) is the target's SIMD width: 64 (AVX-512) gets 8x48
    register tiles (f64: 8x24), narrower ones 6x16 (f64: 6x8). `few_rows`: the schedule for
    contractions with few rows of C (`PanelRows`): B packed row by row, not in micro-panels
    (AVX2; AVX-512 packs it so anyway). `gemm_kernel(operand type)`:
    whether the build has a GEMM micro-kernel for it (`TargetFacts.gemm_kernels`; None: none).
    `wide_columns`: strided convolutions take `TargetFacts.channel_conv_wide` (`ChannelColumns`).
    `panel`: (KC, NC) of the packed B panels instead of the target's (`PanelRows`: panels as
    wide as B for very few rows of C). `stream`: (rows, NC) where C has few enough rows to
    stream B (`TargetFacts.stream`). `conv_extents`: the extents of the reductions that
    channels-last convolutions pack their weights over (`TargetFacts.conv_extents`). `depths`:
    (statement, K) of contractions at the call's sizes (`TargetFacts.depths`: deep panels).
    `parallel_panels`: the loop over `panel`'s panels is the parallel one.

    Where the heuristics find nothing to run in parallel (every nest's loops carry
    dependences), an in-place elimination runs right-looking (`right_looking`: lu), and rows
    that each read every finished row run in blocks of rows (`row_blocks`: cholesky). Where
    they find no SIMD loop either (Gauss-Seidel sweeps), a recurrence along the innermost loop
    runs as a wavefront of many rows at once (`latency_wavefront`: seidel-2d); failing that,
    the kernel is isl's: its Pluto-style scheduler skews and tiles such nests and finds
    wavefronts (`isl_fallback`)."""
    host = CPU_FEW_ROWS if few_rows else CPU
    kinds = _gemm_kinds(kernel, gemm_kernel)
    host, wide = (replace(f, gemm_kernels=kinds, channel_conv_tile=f.channel_conv_wide
                          if wide_columns and f.channel_conv_wide else f.channel_conv_tile,
                          panel=panel if panel is not None and f.panel is not None
                          else f.panel, stream=stream if f.panel is not None else None,
                          conv_extents=conv_extents, depths=depths,
                          parallel_panels=parallel_panels and panel is not None)
                  for f in (host, CPU_AVX512))
    schedule = schedule_for(kernel, host, lambda: wide if vector_bytes is not None
                            and vector_bytes() >= 64 else host)
    return latency_wavefront(kernel, schedule) or right_looking(kernel, schedule) or \
        row_blocks(kernel, schedule) or isl_fallback(kernel, schedule) or schedule


def schedule_for(kernel: KernelIR, facts: TargetFacts,
                 refine: Callable[[], TargetFacts] | None = None) -> Schedule:
    """A legal schedule for `kernel` chosen by the heuristics above with `facts`' numbers.
    `refine()`, called at most once and only when a contraction or a convolution is found,
    may replace `facts` by a more precise record (the host asks its compiler for the vector
    width then)."""
    schedule = Schedule()
    for name in (n for terms in sum_terms(kernel) for n in terms):
        schedule.reassociate(name)  # one sum: its terms may leave their shared loops
    if len(kernel.statements) <= MAX_FUSION_STATEMENTS:
        _fuse_for_locality(kernel, schedule, facts)
        fuse_step_statements(kernel, schedule)
    placements = schedule.placements(kernel)
    for s in kernel.statements:
        if _isolate_contraction(kernel, schedule, s, placements, facts):
            placements = schedule.placements(kernel)
    tiled = set()
    parallel_loop: dict[str, str | tuple[str, ...]] = {}  # statement -> its parallel loop(s),
    # if not the outermost
    for s in kernel.statements:
        names = placements[s.name].names()
        alone = group_size(placements, s) == 1 or alone_below_batch(placements, s, names)
        if alone or s.enclosing:
            if refine is not None and (contraction_tile(s, names, facts) is not None
                                       or match_convolution(s, names) is not None
                                       or match_convolution(s, names, "channels") is not None):
                facts, refine = refine(), None
            steps = (tile_steps(s, names, facts) or transposition_steps(
                s, names, 64 * 8 // s.lhs.dtype.bits)) if alone else \
                step_contraction_steps(s, names, facts)
            if steps and try_steps(kernel, schedule, steps):
                tiled.add(s.name)
                rows = _row_block_loop(s, names, facts)
                if rows is not None:
                    parallel_loop[s.name] = rows
    if len(kernel.statements) <= MAX_FUSION_STATEMENTS:
        for s in kernel.statements:
            if s.name not in tiled:
                stride_one_innermost(kernel, schedule, s)
    if facts.parallel:
        placements = schedule.placements(kernel)
        for s in kernel.statements:
            steps = full_reduction_steps(s, placements[s.name].names())
            if steps and s.name not in tiled and group_size(placements, s) == 1 and \
                    try_steps(kernel, schedule, steps):
                tiled.add(s.name)
    for op, name, loop in loop_marks(kernel, schedule, facts.parallel, tiled, parallel_loop):
        getattr(schedule, op)(name, loop)
    if facts.gemm_kernels:
        _mark_gemm_calls(kernel, schedule, facts, tiled)
    schedule.apply(kernel)  # legal by construction; a ScheduleError here is a bug
    return schedule


def _mark_gemm_calls(kernel: KernelIR, schedule: Schedule, facts: TargetFacts,
                     tiled: set[str]) -> None:
    """Mark the reduction loop `dot` in each untiled statement that is a GEMM the target has
    a micro-kernel for (see `TargetFacts.gemm_kernels`)."""
    placements = schedule.placements(kernel)
    for s in kernel.statements:
        c = _gemm_call(s, placements[s.name].names(), facts) if s.name not in tiled \
            and group_size(placements, s) == 1 else None
        if c is not None:
            try_steps(kernel, schedule, [("dot", s.name, c.k)])


def full_reduction_steps(s: Statement, loops: list[str]) -> list[tuple]:
    """A reduction of all of its loops into one element (`s[] += x[i]`, a 0-d result),
    reassociated, in parallel and in SIMD: its outermost loop cut into REDUCTION_CHUNK
    iterations run in parallel, each into a partial result of its own (ir/privatize.py), the
    innermost loop vectorized. The chunks and the order that combines them do not depend on
    the thread count, so neither does the result. [] for any other statement."""
    if s.is_init or s.op not in REDUCTIONS or not loops or any(
            ld.tensor == s.lhs.tensor for ld in ir.loads(s.rhs)):
        return []
    own = set(s.iterators)
    if any(ir.variables(x) & own for x in s.lhs.indices):
        return []
    outer = loops[0]
    if len(loops) == 1:
        return [("reassociate", s.name), ("split", s.name, outer, REDUCTION_CHUNK),
                ("parallel", s.name, f"{outer}_o"), ("vectorize", s.name, outer)]
    return [("reassociate", s.name), ("parallel", s.name, outer),
            ("vectorize", s.name, loops[-1])]


def tile_steps(s: Statement, loops: list[str], facts: TargetFacts) -> list[tuple] | None:
    """The register-tile steps `facts` gives statement `s` (loops: its loop names, outermost
    first): a contraction's micro-kernel, a convolution's tile, or None."""
    tile = contraction_tile(s, loops, facts)
    if tile is not None:
        c = match_contraction(s, loops)
        if casts_beyond_float_tile(s, c) and facts.int8_dot is not None and not c.a_transposed:
            return dot_steps(s, loops, *facts.int8_dot)
        streamed = _stream_steps(s, loops, facts, tile)
        if streamed is not None:
            return streamed
        kc, nc = facts.panel or (None, None)
        depth = dict(facts.depths).get(s.name)
        if kc is not None and depth is not None and facts.panel_cache_share and L2_BYTES:
            kc, nc = deep_panel(kc, nc, depth, tile[1], s.lhs.dtype.bits // 8,
                                int(facts.panel_cache_share * L2_BYTES))
        return contraction_steps(s, loops, *tile, kc, nc, widening=True,
                                 micro_panel=s.lhs.dtype.name in facts.micro_panels)
    conv = match_convolution(s, loops)
    if conv is None:
        rows, lanes = facts.channel_conv_tile
        extents = {v: n for name, v, n in facts.conv_extents if name == s.name}
        return channel_steps(s, loops, rows, lanes * facts.vector_bytes // 4, extents,
                             facts.weight_pack_bytes)
    if conv.widening and facts.int8_tile is None:
        return None
    rows, cols = facts.depthwise_tile if conv.depthwise else facts.conv_tile
    if conv.widening:
        rows, cols = facts.int8_tile
    return convolution_steps(s, loops, rows, cols, widening=True)


def transposition_steps(s: Statement, loops: list[str], lanes: int) -> list[tuple] | None:
    """A copy that permutes its tensor's dimensions (`X_cl[n, a, b, c] = X[n, c, a, b]`,
    `W_hh_t[j, g] = W_hh[g, j]`: the normalizations' copies; written indices may be shifted,
    `X_cl[n, a + 1, b + 1, c]`, a padded copy's) blocked by `lanes` (a cache line) of the
    written tensor's last variable w and of the read tensor's last variable r: w's blocks
    outermost, then the other loops in the read tensor's order (r's blocks for r), then r in
    the block, then w as a vector loop. Each line read then serves the next `lanes`
    iterations, where the plain order reads a new line for every element, and each square
    block is transposed in registers (backends/transpose_tile.py); None for any other
    statement."""
    rhs = s.rhs
    if s.op != "=" or not isinstance(rhs, ir.Load) or rhs.dtype != s.lhs.dtype or any(
            not isinstance(i, ir.Var) for i in rhs.indices):
        return None
    written, read = [_shifted_var(i) for i in s.lhs.indices], [i.name for i in rhs.indices]
    if None in written or sorted(written) != sorted(read) or sorted(loops) != sorted(read) \
            or len(read) < 2 or written[-1] == read[-1]:
        return None
    w, r = written[-1], read[-1]
    order = [f"{w}_o", *[f"{v}_o" if v == r else v for v in read if v != w], r, w]
    return [("split", s.name, w, lanes), ("split", s.name, r, lanes),
            ("reorder", s.name, *order), ("vectorize", s.name, w)]


def _shifted_var(index: ir.Expr) -> str | None:
    """The variable v of an index `v` or `v + c` (a padded copy's), else None."""
    match index:
        case ir.Var(name=v):
            return v
        case ir.Binary(op="+", left=ir.Var(name=v), right=ir.Const(value=int())):
            return v
    return None


def _row_block_loop(s: Statement, loops: list[str], facts: TargetFacts
                    ) -> str | tuple[str, ...] | None:
    """The loop over MR-row blocks of a packed, unbatched contraction's tile (`i_o`), which
    is its parallel loop, as in BLIS: the outermost one walks N / NC panels, one or two at
    the sizes that fit in cache (256^3, 512^3), so it would leave threads idle, while the row
    blocks number M / MR. The threads share the packed B panel, filled before the loop.
    None for other statements (a batched contraction runs its batch loop in parallel)."""
    c = match_contraction(s, loops)
    if c is None:
        conv = match_convolution(s, loops, "channels")  # its output rows: n is often 1
        if conv is not None:
            return conv.outer[-1] if conv.outer else None
        return _depthwise_channels(s, loops)
    if facts.panel is None:
        return None
    if _streams(s, loops, facts) or facts.parallel_panels and len(loops) == 3:
        return f"{c.j}_o_o"
    batch = loops[s.enclosing:-3]
    if batch:  # threads share the packed panel where the batch does (`contraction_steps`)
        return batch[0] if shared_by_batch(c, batch) else None
    return f"{c.i}_o" if len(loops) == 3 else None


def _depthwise_channels(s: Statement, loops: list[str]) -> tuple[str, str] | None:
    """The outermost loop and the channel loop of a depthwise convolution (`Y[n, c, y, x] +=
    X[n, c, y + r, x + s] * F[c, r, s]`: the output loop that indexes both X and the weights),
    its parallel loops, run as one: n alone, the outermost, is often 1 (MobileNet's
    inference), which left one thread of two idle, and c alone, inside n, forked at every n
    (N 4, C 181: 4% slower on one thread and on two)."""
    conv = match_convolution(s, loops)
    if conv is None or not conv.depthwise:
        return None
    channels = [o for o in conv.outputs if o not in (conv.x, conv.k)
                and o in ir.variables(conv.weights) and o in ir.variables(conv.data)]
    return (loops[0], channels[0]) if len(channels) == 1 and channels[0] == loops[1] \
        else None


def _streams(s: Statement, loops: list[str], facts: TargetFacts) -> bool:
    """Whether `s` is a contraction whose B is streamed (`TargetFacts.stream`: C's rows fit
    in STREAM_TILES of its tiles)."""
    tile = contraction_tile(s, loops, facts)
    return tile is not None and _stream_steps(s, loops, facts, tile) is not None


def _stream_steps(s: Statement, loops: list[str], facts: TargetFacts, tile: tuple[int, int]
                  ) -> list[tuple] | None:
    """`stream_steps` for `s` with `facts.stream`, None without it or where its rows take
    more than STREAM_TILES tiles. A B converted from f16 or bf16 streams only into one tile
    of rows (each of its vectors converted once, in registers: with two tiles of 8 rows, f16
    16 x 4096^2 ran 1.4x slower than packed converted, vcvtph2ps sharing the FMA ports)."""
    if facts.stream is None:
        return None
    rows, nc = facts.stream
    tiles = -(-rows // tile[0])  # as few tiles as may hold the rows, all of the same height
    c = match_contraction(s, loops)
    if "B" in (float_conversions(s, c) or ()) and tiles > 1:
        return None
    if tiles > STREAM_TILES:
        return None
    columns = min(tile[1], STREAM_ROW_BYTES * 8 // s.lhs.dtype.bits)
    return stream_steps(s, loops, -(-rows // tiles), columns, STREAM_DEPTH, nc)


def _has_micro_kernel(s: Statement, loops: list[str], facts: TargetFacts) -> bool:
    """Would `s` get a register tile (`tile_steps`) or the int8 GEMM micro-kernel
    (`TargetFacts.gemm_kernels`) in a loop nest of its own?"""
    return tile_steps(s, loops, facts) is not None or _gemm_call(s, loops, facts) is not None


def _gemm_kinds(kernel: KernelIR, gemm_kernel: Callable[[str], bool] | None
                ) -> tuple[str, ...]:
    """The operand types of `kernel`'s GEMMs that the build has micro-kernels for (asked of
    `gemm_kernel` only for a kernel with such a GEMM: it may run the compiler)."""
    if gemm_kernel is None:
        return ()
    placements = pl.initial_placements(kernel)
    found = {c.a.dtype.name for s in kernel.statements
             if (c := _gemm_call(s, placements[s.name].names(), CPU)) is not None}
    return tuple(kind for kind in CPU.gemm_kernels if kind in found and gemm_kernel(kind))


def _gemm_call(s: Statement, loops: list[str], facts: TargetFacts):
    """The contraction of `s` if `facts` runs it as a GEMM micro-kernel
    (`patterns.match_gemm` of a type of `facts.gemm_kernels`), untiled; else None. A bf16
    GEMM whose C has fewer rows than one register tile (`facts.stream`) streams B instead,
    converted in the f32 tile: AMX packs all of B for those rows (one thread, K = N = 4096,
    ms AMX / streamed, in-process: 1 row 4.5 / 2.9, 4 rows 4.6 / 3.4, 7 rows 4.8 / 4.5; 8
    rows 4.4 / 4.6)."""
    if facts.int8_tile is not None:
        return None
    c = match_gemm(s, loops, facts.gemm_kernels)
    if c is not None and float_conversions(s, c) and facts.stream is not None \
            and facts.stream[0] < facts.matmul_tile[0]:
        return None
    return c


def contraction_tile(s: Statement, loops: list[str], facts: TargetFacts):
    """(MR, NR) for `s` if it is a contraction that `facts` tiles, else None (also where it
    runs as the build's GEMM micro-kernel: bf16 on AMX)."""
    c = match_contraction(s, loops)
    if c is None or _gemm_call(s, loops, facts) is not None:
        return None
    if casts_beyond_float_tile(s, c):
        return facts.int8_tile
    if facts.f64_tile is not None and s.lhs.dtype.compute.bits == 64:
        return facts.f64_tile
    return facts.matmul_tile


def _isolate_contraction(kernel: KernelIR, schedule: Schedule, s: Statement,
                         placements, facts: TargetFacts) -> bool:
    """A contraction written inside a loop with other statements (PolyBench's gemm: `C *= beta`
    and `C += alpha * A @ B` in one `for i`) gets a loop nest of its own by fission, where
    legal, so that the micro-kernel can take it: before the statements after it, or else after
    them. Returns whether the schedule changed."""
    names = placements[s.name].names()
    if group_size(placements, s) == 1 or (contraction_tile(s, names, facts) is None and
                                           _gemm_call(s, names, facts) is None):
        return False
    # The batch loops around the product stay shared (`fission.batch_prefix`): doitgen's per-(r, q)
    # temporary, expanded for the product (passes/expand_accumulators.py), then lives one r
    # at a time, a local of NQ x NP (179 KB at LARGE, not 27 MB of memory traffic).
    shared = batch_prefix(s, names)
    before = len(schedule.steps)
    if try_steps(kernel, schedule, distribute_before(s.name, names[shared:])):
        after = first_after(schedule.placements(kernel), s.name)
        if after is None or try_steps(kernel, schedule,
                                      distribute_before(after[0], after[1][shared:])):
            return True
        del schedule.steps[before:]  # the contraction would still share its loop
    # Else the contraction may run after the statements that follow it (symm's update of the
    # rows above row i, which row i's own statements must see first).
    after = first_after(placements, s.name)
    return after is not None and placements[s.name].order[-1] == 0 and try_steps(
        kernel, schedule, [*distribute_before(*after), ("order", after[0], s.name)])


def _fuse_for_locality(kernel: KernelIR, schedule: Schedule, facts: TargetFacts) -> None:
    """Greedily grow runs of consecutive statements fused at depth 1 while each step makes
    more temporaries local. A reduction's initialisation moves with it."""
    placements = schedule.placements(kernel)
    units: list[list[str]] = []
    pending: list[str] = []
    for s in kernel.statements:
        pending.append(s.name)
        if not s.is_init:
            units.append(pending)
            pending = []
    graph = dataflow_graph(kernel)
    run: list[str] = []
    best_locals = 0
    for unit in units:
        # A contraction or convolution stays on its own: its micro-kernel (compute-bound, near
        # peak) is worth more than the temporaries fusion would keep local (attention's Q @ K^T
        # and P @ V; a convolution into a temporary that a scaling statement reads).
        main = kernel.statement[unit[-1]]
        if any(not placements[n].loops for n in unit) or _has_micro_kernel(
                main, placements[main.name].names(), facts):
            run, best_locals = [], 0
            continue
        if not run:
            run = list(unit)
            continue
        trial = Schedule(list(schedule.steps))
        trial.fuse(*run, *unit, depth=1)
        try:
            locals_after = len(trial.apply(kernel).locals)
        except ScheduleError:
            locals_after = -1
        if locals_after > best_locals or (locals_after >= best_locals > -1 and
                                          consumed_temporaries(graph, run, unit)):
            schedule.steps = trial.steps
            best_locals = locals_after
            run += unit
        else:
            run, best_locals = list(unit), 0


def step_contraction_steps(s: Statement, loops: list[str], facts: TargetFacts
                           ) -> list[tuple] | None:
    """The register tile of a contraction inside a DSL `for` loop shared with other statements
    (a recurrence's step: an LSTM's `z[b, g] += h[b, j] * W[j, g]`), over its own three loops,
    without a packed panel: packing in every step would copy B every step. None where B is
    read transposed (normalize hoists a transposed copy of a loop-invariant B out of the
    loop), or the statement is no such contraction."""
    if s.enclosing == 0 or len(loops) != s.enclosing + 3:
        return None
    tile = contraction_tile(s, loops, facts)
    c = match_contraction(s, loops)
    if tile is None or casts_beyond_float_tile(s, c) or c.b_transposed:
        return None
    return contraction_steps(s, loops, *tile, None, None, widening=True)
