"""Edge tiles of an accumulator nest: cut into strips of constant width, or pulled back.

The partial-tile version of a cache_write (ir/localize.py) is the general nest

    for k ...:                            # reduction loops
      for x = x0 while x < min(.., x0 + R):     # rows: at most R
        for y = y0 while y < min(.., y0 + W):   # columns: at most W
          acc[x, y] += <loads>

where some edge makes fewer than R rows or W columns. Run as it is, it is scalar code; at an
output width that no tile size divides (conv2d's 56 columns in tiles of 32) that is a large
share of the work. Here the columns are cut into power-of-two strips (16, 8, 4 of the remaining
n < 32 columns, by the bits of n) plus a scalar rest, and each strip is a nest with constant
trip counts that backends/register_tile.py keeps in vector registers. Partial rows run one row
at a time (the rows loop moves outside the reduction loops: legal, since each accumulator
element is its own reduction and the loads do not read the accumulator).

Where computing an element twice gives the same value (`overlapped_tile`: the tile starts from
its fill and every element sums the same terms, `CacheSpec.overlap_from`), an edge tile runs
instead as a whole tile pulled back to end at the edge, and the strips serve only extents
below a tile's.
"""

from __future__ import annotations

import functools

from loopweave.ir import expr as ir
from loopweave.ir.affine import coefficient, simplify
from loopweave.ir.loops import (
    Block,
    For,
    If,
    Node,
    Store,
    accumulator_nest,
    full_extent,
    tile_extent,
    upper_bounds,
)
from loopweave.ir.types import BOOL, INDEX

#: The narrowest strip, in bytes (one 128-bit vector: SSE, NEON, MVE).
MIN_STRIP_BYTES = 16
STRIP_DTYPES = ("f32", "f64", "i32")


def strip_partial_tiles(node: Node, outer: set[str]) -> Node:
    """`node` (the partial-tile nest) with its edge rows and columns in constant-width strips,
    or unchanged when it is not an accumulator nest of that shape. `outer` are the variables
    of the enclosing loops, the only ones the row and column bounds may use."""
    shape = _accumulator_nest(node, outer, rows_in_columns=True)
    if shape is None:
        return node
    reductions, rows, cols, store = shape
    row_lo, row_hi, max_rows = _range(rows)
    col_lo, col_hi, max_cols = _range(cols, {rows.var})
    # Columns bounded by the row (syrk's diagonal tiles, `y <= x`): one row at a time.
    by_row = rows.var in ir.variables(cols.init) | ir.variables(cols.cond)
    min_width = max(1, MIN_STRIP_BYTES * 8 // store.value.dtype.bits)
    if max_cols < min_width:
        return node

    def nest(row: ir.Expr, nrows: int, col: ir.Expr, ncols: int | None) -> Node:
        return _nest(shape, row, nrows, col, ncols)

    def column_strips(row: ir.Expr, nrows: int) -> Node:
        lo, hi = (simplify(ir.substitute(b, {rows.var: row})) for b in (col_lo, col_hi))
        n = simplify(ir.Binary("-", hi, lo, INDEX))
        if by_row:  # a row past the triangle has no columns (isl's bounds leave none so)
            n = ir.Call("max", (n, ir.Const(0)), INDEX)
        parts: list[Node] = []
        width = 1 << (max_cols.bit_length() - 1)
        while width >= min_width:
            # The strip of this width exists when bit `width` of n is set; the wider strips
            # (the bits above) come before it.
            below = ir.Binary("%", n, ir.Const(2 * width), INDEX)
            start = simplify(ir.Binary("-", ir.add(lo, n), below, INDEX))
            parts.append(If(ir.Binary(">=", below, ir.Const(width), BOOL),
                            nest(row, nrows, start, width)))
            width //= 2
        rest = ir.Binary("%", n, ir.Const(min_width), INDEX)
        # Guarded: an empty scalar rest would still run every reduction loop around it (conv2d's
        # 56 columns in strips of 16 and 8: the empty rest cost more than the strips).
        parts.append(If(ir.Binary(">", rest, ir.Const(0), BOOL),
                        nest(row, nrows, simplify(ir.Binary("-", hi, rest, INDEX)), None)))
        return Block(tuple(parts))

    one_row = f"{rows.var}_edge"
    rows_one_by_one = For(one_row, row_lo, _less(ir.Var(one_row), row_hi), 1,
                          column_strips(ir.Var(one_row), 1))
    if by_row:
        return rows_one_by_one
    full_rows = ir.Binary("==", simplify(ir.Binary("-", row_hi, row_lo, INDEX)),
                          ir.Const(max_rows), BOOL)
    return If(full_rows, column_strips(row_lo, max_rows), rows_one_by_one)


def overlapped_tile(node: Node, outer: set[str], firsts: tuple[ir.Expr | None, ...],
                    boxed: frozenset[str] | set[str] = frozenset()
                    ) -> tuple[Node, ir.Expr] | None:
    """The partial-tile nest `node` run as a whole tile pulled back to end at the edge (the
    rows or columns it runs again belong to the tile before it, whose sums it computes again
    to the same values: the caller's promise, `CacheSpec.overlap_from`), and the condition
    under which that tile lies inside the tensor: its first row and column at or after
    `firsts` (per tensor dimension, the first element; None where the tile may not move
    along it, and must be full there; also where a read of a `boxed` tensor, one read
    through a buffer of a fixed box, uses the loop). XNNPACK's and oneDNN's kernels end rows
    so; the edge strips cost 70% of depthwise conv2d's time at 79 x 79 outputs in 4 x 32
    tiles. None where `node` is not an accumulator nest of that shape."""
    shape = _accumulator_nest(node, outer)
    if shape is None:
        return None
    _, rows, cols, store = shape
    starts, conds, moved = [], [], False
    for loop in (rows, cols):
        lo, hi, size = _range(loop)
        dims = [d for d, i in enumerate(store.indices) if loop.var in ir.variables(i)]
        if not dims:  # a GEMV's row made up by accumulator_nest: always whole
            starts.append(lo)
            continue
        index = store.indices[dims[0]]
        if len(dims) > 1 or coefficient(index, loop.var) != 1 or firsts[dims[0]] is None \
                or any(ld.tensor in boxed and loop.var in ir.variables(i)
                       for ld in ir.loads(store.value) for i in ld.indices):
            starts.append(lo)
            conds.append(ir.Binary("==", simplify(ir.Binary("-", hi, lo, INDEX)),
                                   ir.Const(size), BOOL))
            continue
        start = ir.Call("min", (lo, simplify(ir.Binary("-", hi, ir.Const(size), INDEX))), INDEX)
        starts.append(start)
        conds.append(ir.Binary(">=", simplify(ir.substitute(index, {loop.var: start})),
                               firsts[dims[0]], BOOL))
        moved = True
    if not moved:
        return None  # nothing may move: the whole tiles are the full ones
    tile = _nest(shape, starts[0], full_extent(rows), starts[1], full_extent(cols))
    return tile, functools.reduce(lambda a, b: ir.Binary("and", a, b, BOOL), conds)


def _nest(shape, row: ir.Expr, nrows: int, col: ir.Expr, ncols: int | None) -> Node:
    """The reductions of accumulator nest `shape` around rows [row, row + nrows) and columns
    [col, col + ncols) (to the columns' end when ncols is None), counting from 0 where the
    extent is constant."""
    reductions, rows, cols, store = shape
    x, y = ir.Var(rows.var), ir.Var(cols.var)
    body: Node = _substitute_store(store, {rows.var: _plus(row, x),
                                           cols.var: y if ncols is None else _plus(col, y)})
    body = (For(cols.var, col, ir.substitute(cols.cond, {rows.var: row}), 1, body)
            if ncols is None else
            For(cols.var, ir.Const(0), _less(y, ir.Const(ncols)), 1, body))
    body = For(rows.var, ir.Const(0), _less(x, ir.Const(nrows)), 1, body)
    for loop in reversed(reductions):
        body = For(loop.var, loop.init, loop.cond, loop.step, body, loop.kind)
    return body


def is_accumulator_nest(node: Node, outer: set[str]) -> bool:
    """Whether `node` is `for k.. for x for y: acc[x, y] += e` with e not reading acc and the
    x and y bounds given by `outer` variables (the shape register tiles take)."""
    return _accumulator_nest(node, outer) is not None


def _accumulator_nest(node: Node, outer: set[str], rows_in_columns: bool = False):
    """(reduction loops, rows loop, columns loop, store) of an accumulator nest `for k.. for x
    for y: acc[x, y] += e` whose rows and columns are bounded by `outer` variables (and, with
    `rows_in_columns`, the columns by the row too), or None."""
    shape = accumulator_nest(node)
    if shape is None:
        return None
    reductions, rows, cols, store = shape
    if store.reduce != "+=" or store.value.dtype.name not in STRIP_DTYPES:
        return None
    loops = [*reductions, rows, cols]
    if any(loop.step != 1 for loop in loops) or None in (
            full_extent(rows), tile_extent(cols, {rows.var} if rows_in_columns else set())):
        return None
    bounds = [rows.init, rows.cond, cols.init, cols.cond]
    if any(ir.variables(b) - {rows.var, cols.var} - outer for b in bounds) \
            or not rows_in_columns and rows.var in ir.variables(cols.init) | ir.variables(
                cols.cond) \
            or any((ir.variables(loop.init) | ir.variables(loop.cond)) & {rows.var, cols.var}
                   for loop in reductions):
        return None
    return shape


def _range(loop: For, inner: set[str] = frozenset()) -> tuple[ir.Expr, ir.Expr, int]:
    """(first, end (exclusive), largest trip count) of `for v = a while v < min(.., a + E)`
    (`a` may be a max with terms of the `inner` variables: `tile_extent`)."""
    bounds = [simplify(b) for b in upper_bounds(loop.cond, loop.var)]
    end = bounds[0]
    for b in bounds[1:]:
        end = ir.Call("min", (end, b), INDEX)
    return loop.init, end, tile_extent(loop, inner)


def _plus(a: ir.Expr, b: ir.Expr) -> ir.Expr:
    return simplify(ir.Binary("+", a, b, INDEX))


def _less(a: ir.Expr, b: ir.Expr) -> ir.Expr:
    return ir.Binary("<", a, b, BOOL)


def _substitute_store(store: Store, mapping: dict[str, ir.Expr]) -> Store:
    def indices(e: ir.Expr) -> ir.Expr | None:
        if isinstance(e, ir.Load):
            return ir.Load(e.tensor, tuple(simplify(i) for i in e.indices), e.dtype)
        return None

    return Store(store.tensor, tuple(simplify(ir.substitute(i, mapping)) for i in store.indices),
                 ir.rewrite(ir.substitute(store.value, mapping), indices), store.reduce,
                 store.stmt)
