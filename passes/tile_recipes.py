"""The register-tile recipes of the default schedules (passes/default.py) and the tuner's
micro-kernel knobs (autotune/space.py): the schedule steps that give a contraction its
BLIS-like nest (`contraction_steps`), its tile as dot products along k (`dot_steps`), and a
convolution its output tile (`convolution_steps`), with the tile sizes they default to."""

from __future__ import annotations

from loopweave.ir import expr as ir
from loopweave.ir.kernel import Statement
from loopweave.passes.patterns import Contraction, factors, match_contraction, match_convolution

#: The micro-kernel: MR rows x NR columns of C in registers; KC deep, NC wide packed B panels.
MR, NR, KC, NC = 6, 16, 256, 256
#: The convolution micro-kernel: CONV_ROWS output channels x CONV_COLS output columns; for a
#: depthwise convolution DEPTHWISE_ROWS output rows x DEPTHWISE_COLS columns.
CONV_ROWS, CONV_COLS = 8, 8
DEPTHWISE_ROWS, DEPTHWISE_COLS = 4, 32

#: The most bytes of a deep B panel (`deep_panel`): panels are stack buffers of the generated
#: function, and a thread's stack is 8 MiB on Linux by default.
DEEP_PANEL_MAX_BYTES = 1 << 20


def deep_panel(kc: int, nc: int, depth: int, nr: int, element_bytes: int, budget: int
               ) -> tuple[int, int]:
    """(KC, NC) of the packed B panels of a contraction reducing over `depth` (its K at the
    call) with `budget` bytes of panel: as deep as the budget holds two tiles' columns (`nr`
    each; in blocks of equal depth where K needs several), as wide as the rest of the budget
    allows, up to `nc`. Fewer passes over C: each block of K loads and stores C's tiles once.
    (kc, nc) itself where K fits one block of `kc` or the budget gives no deeper panel."""
    deepest = min(budget, DEEP_PANEL_MAX_BYTES) // (2 * nr * element_bytes)
    if depth <= kc or deepest <= kc:
        return kc, nc
    blocks = -(-depth // deepest)
    deep = -(-depth // blocks)
    return deep, min(nc, min(budget, DEEP_PANEL_MAX_BYTES) // (deep * element_bytes) // nr * nr)


def float_conversions(s: Statement, c: Contraction) -> tuple[str, ...] | None:
    """Which operands ("A", "B") contraction `c` of `s` converts from another float type to its
    result's (`C[i, j] += f32(A[i, k]) * f32(B[k, j])`, A and B f16 or bf16): () where it casts
    none, None where it casts otherwise (integer operands widened to i32)."""
    if not c.widening:
        return ()
    casts = [f for f in factors(s.rhs) if isinstance(f, ir.Cast) and f.operand in (c.a, c.b)]
    if not s.lhs.dtype.is_float or any(f.dtype != s.lhs.dtype or not f.operand.dtype.is_float
                                       for f in casts):
        return None
    return tuple(name for name, x in (("A", c.a), ("B", c.b))
                 if any(f.operand == x for f in casts))


def casts_beyond_float_tile(s: Statement, c: Contraction) -> bool:
    """Whether contraction `c` of `s` casts an operand other than from float to its result's
    float type, which the float register tile takes converted (`contraction_steps`)."""
    return float_conversions(s, c) is None


def contraction_steps(s: Statement, loops: list[str], mr: int = MR, nr: int = NR,
                      kc: int | None = KC, nc: int | None = NC, *, widening: bool = False,
                      micro_panel: bool = False) -> list[tuple] | None:
    """The micro-kernel steps for `s` if it is `C[.., i, j] += A[.., i, k] * B[.., k, j]`
    (`patterns.match_contraction`; with cast operands only if `widening`) with its loops ending
    in i, j, k (any order), else None. `kc=None` (and `nc=None`): no packed B panel, k is not
    tiled. `micro_panel`: the packed panel is stored in runs of `nr` columns.

    Operands converted from a narrower float type (`float_conversions`: f16 or bf16 weights
    and activations, f32 arithmetic) are converted once as they are packed: B into its panel,
    A into an MR x KC block per row block (before the tile's column loop,
    which reuses it NC / NR times). Converted at every use instead, in the tile's inner loop,
    A ran 2.7x slower than f32 (512^3, one thread, Xeon VM: 4.6 ms against 1.7); without a
    panel (`kc=None`) A still is, and a converted B gets no tile."""
    c = match_contraction(s, loops)
    if c is None or (c.widening and not widening):
        return None
    converted = float_conversions(s, c) or ()
    i, j, k = c.i, c.j, c.k
    if kc is None:
        if "B" in converted:
            return None
        order = [*loops[:-3], f"{i}_o", f"{j}_o", k, i, j]
        return [("tile", s.name, {i: mr, j: nr}),
                ("reorder", s.name, *order),
                ("cache_write", s.name, k)]
    outer, batch = loops[:s.enclosing], loops[s.enclosing:-3]
    if batch and shared_by_batch(c, batch):
        # B the same for every batch element (x[s, b, i] @ W^T for every step s): the batch loops
        # run inside the panel loops, so that each panel is packed once for all of them
        order = [*outer, f"{j}_o_o", f"{k}_o", *batch, f"{i}_o", f"{j}_o", k, i, j]
        pack_at = batch[0]
    else:
        order = [*loops[:-3], f"{j}_o_o", f"{k}_o", f"{i}_o", f"{j}_o", k, i, j]
        pack_at = f"{i}_o"
    # B[.., j, k] (A @ B^T, attention's Q @ K^T) is packed transposed: rows along k.
    n = len(c.b.indices)
    packing = {"layout": (*range(n - 2), n - 1, n - 2)} if c.b_transposed else {}
    if micro_panel:
        packing["panel"] = nr
    dtype = s.lhs.dtype.name
    if "B" in converted:
        packing["dtype"] = dtype
    layout = (packing,) if packing else ()
    steps = [("tile", s.name, {i: mr, j: nr, k: kc}),
             ("tile", s.name, {f"{j}_o": max(1, nc // nr)}),
             ("reorder", s.name, *order),
             ("cache_read", s.name, c.b.tensor, pack_at, *layout)]
    if "A" in converted:  # (in A's own layout: transposed as A_pack[k][i], 1.9-2.0 ms
        # against 1.65-1.7 at 512^3, the copy's strided writes)
        steps.append(("cache_read", s.name, c.a.tensor, f"{j}_o", {"dtype": dtype}))
    return [*steps, ("cache_write", s.name, k)]


def stream_steps(s: Statement, loops: list[str], rows: int, nr: int, kc: int, nc: int
                 ) -> list[tuple] | None:
    """The register tiles (`rows` x `nr`) of an unbatched contraction whose C has at most
    STREAM_TILES tiles of rows (a GEMV, a decoding step's GEMM), B read where it lies, not
    packed (each of its elements serves only those rows: a pack would copy all of B for a use
    or two), NC-wide column blocks outermost (the parallel loop) and KC-deep chunks of k
    next, so that the KC rows of B are read along their columns, each a stream of its own,
    and every row tile uses a chunk while it is in L1:

        for j_o_o, k_o: for j_o: for i_o: for k < kc: for i < rows: for j < nr:
            C[i, j] += A[i, k] * B[k, j]

    An A converted from f16 or bf16 (`float_conversions`) is packed converted per row tile
    and chunk (`cache_read` at k: rows x KC elements, converted once per column tile, a few
    percent of the tile's work; in-process, one thread, f16 A 16 x 4096^2 8.9 -> 7.5 ms, f32
    6.8; 5 x 333 x 1000 0.100 -> 0.046 ms against the packed panels). A converted B is read
    in place and converted in registers, once per row tile (`backends/register_tile.py`;
    passes/default.py streams it into one tile of rows only). None for a contraction that
    casts to an integer, or a batched or enclosed one."""
    c = match_contraction(s, loops)
    if c is None or len(loops) != 3 or s.enclosing:
        return None
    converted = float_conversions(s, c)
    if converted is None:
        return None
    i, j, k = c.i, c.j, c.k
    steps = [("tile", s.name, {i: rows, j: nr, k: kc}),
             ("tile", s.name, {f"{j}_o": max(1, nc // nr)}),
             ("reorder", s.name, f"{j}_o_o", f"{k}_o", f"{j}_o", f"{i}_o", k, i, j)]
    if "A" in converted:
        steps.append(("cache_read", s.name, c.a.tensor, k, {"dtype": s.lhs.dtype.name}))
    return [*steps, ("cache_write", s.name, k)]


#: Tiles of rows up to which `stream_steps` applies (passes/default.py), and the k chunks'
#: depth. f32, one thread, Xeon VM, GFLOP/s at depth 32 / 64 / 128 (one depth for one and
#: two tiles): 1 x 4096^2 13.1 / 11.5 / 10.9, 8 x 4096^2 84 / 43 / 38, 12 x 1024^2 91 / 89 /
#: 82, 16 x 4096^2 89 / 91 / 84; 64 rows of B at 16 KB from each other share L1 sets. Depth
#: 16 / 32 (session 23, the VM slower that day; in-process, shuffled rounds): 1 x 4096^2 7.6 /
#: 7.3, 8 x 4096^2 54 / 44, 16 x 4096^2 75 / 69, 12 x 1024^2 63 / 54, 5 x 333 x 1000 24 /
#: 23, 2 x 2048^2 14.1 / 12.9; AVX2 flags 6 x 4096^2 38 / 33, 12 x 4096^2 55 / 47; f16 B
#: 1 x 4096^2 2.37 / 2.76 ms; two threads within 5% either way. 8 was mixed (16 x 4096^2
#: 52: C's tile reloaded every 8 rows of B).
STREAM_TILES = 2
STREAM_DEPTH = 16


def shared_by_batch(c, batch: list[str]) -> bool:
    """Whether the contraction's B operand is indexed by none of the `batch` loops."""
    return not any(ir.variables(x) & set(batch) for x in c.b.indices)


def dot_steps(s: Statement, loops: list[str], mr: int, nr: int, kc: int, nc: int
              ) -> list[tuple] | None:
    """A contraction's tile as mr x nr dot products along k: B packed per (kc, nc) panel with
    k innermost (transposed: B[k, j] is stored [j][k]), and the reduction innermost in the
    tile, so that both operands run contiguously along k:

        for j_o_o, k_o: pack B[k_o block, j_o_o block] as [j][k]
          for i_o, j_o: for i < mr: for j < nr: for k: C[i, j] += A[i, k] * B_pack[j, k]

    None if `s` is not a contraction with its loops ending in i, j, k."""
    c = match_contraction(s, loops)
    if c is None:
        return None
    i, j, k = c.i, c.j, c.k
    n = len(c.b.indices)
    layout = () if c.b_transposed else ({"layout": (*range(n - 2), n - 1, n - 2)},)
    return [("tile", s.name, {i: mr, j: nr, k: kc}),
            ("tile", s.name, {f"{j}_o": max(1, nc // nr)}),
            ("reorder", s.name, *loops[:-3], f"{j}_o_o", f"{k}_o", f"{i}_o", f"{j}_o", i, j, k),
            ("cache_read", s.name, c.b.tensor, f"{i}_o", *layout),
            ("cache_write", s.name, i)]


def convolution_steps(s: Statement, loops: list[str], rows: int | None = None,
                      cols: int | None = None, *, widening: bool = False
                      ) -> list[tuple] | None:
    """The micro-kernel steps for a convolution-like `Y[.., k, .., x] += X[.., x + s] *
    F[.., k, ..]` (`patterns.match_convolution`; with cast operands only if `widening`): a
    rows x cols tile of Y over (k, x) in vector registers while all of the reduction runs, its
    loops reassociated so that the plain ones (conv2d's channels c) go innermost (the spatial
    ones, r and s, stay outside). A depthwise convolution's tile rows are output rows y. None
    if `s` is not of that shape."""
    conv = match_convolution(s, loops)
    if conv is None or (conv.widening and not widening):
        return None
    default = (DEPTHWISE_ROWS, DEPTHWISE_COLS) if conv.depthwise else (CONV_ROWS, CONV_COLS)
    shape = (rows or default[0], cols or default[1])
    k, x, outputs, spatial = conv.k, conv.x, conv.outputs, conv.spatial
    order = [f"{v}_o" if v in (k, x) else v for v in loops if v in outputs]
    order += [*spatial, *[v for v in conv.reductions if v not in spatial], k, x]
    return [("reassociate", s.name),
            ("tile", s.name, {k: shape[0], x: shape[1]}),
            ("reorder", s.name, *order),
            ("cache_write", s.name, order[len(outputs)])]
