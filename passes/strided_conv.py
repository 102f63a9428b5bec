"""Convolutions whose input is read at a stride along the output's columns (stride-2
downsampling, dilation): output channels as the vector dimension. (Unit-stride ones take the
same form where the host's size rule asks for it: many input channels, passes/conv_columns.py.)

    Y[n, k, y, x] += X[n, c, 2 * y + r - 1, 2 * x + s - 1] * F[k, c, r, s]
        where 0 <= 2 * y + r - 1 < H, 0 <= 2 * x + s - 1 < W

A register tile along x (the unit-stride convolution's, `passes/default.py`) would need X's
elements two apart in one vector. Along k instead, X is a broadcast and F a vector, as in a
matmul whose reduction is (c, r, s); the normalization here makes that possible: X is copied
channels last, `X_cl[n, a, b, c]`, and where the `where` only keeps X's indices inside X (zero
padding) the copy is padded, over a zeroed `X_cl`, and read at shifted indices: every tile of
the output then runs the whole reduction (a guard that depends on x would make the border
tiles partial, and the footprint of the output no box).

`channel_steps` is then the default's tile: `tile(x=MX, k=NR)`, the output-channel blocks
outside the rows, the reductions inside the tile loops with c innermost (the data copy and the
weights' pack are contiguous along c), the weights packed k last per block of output
channels, `F_pack[r][s][c][k]` (`cache_read` before the block's rows), and
`cache_write(at=<first reduction>, layout=k last)`: an accumulator tile acc[x][k] in
registers, copied back transposed. Stride-2 3x3 convs, one thread, Xeon VM, against torch in
the same run (`python -m benchmarks.conv_layers`; 2026-12-06): 64 -> 128 channels on 56x56
0.92x, 128 -> 256 on 28x28 1.04x, 256 -> 512 on 14x14 0.97x (one copy of all the weights per
call, `F_t[r, s, c, k]`, before: 0.87x, 0.93x, 0.76x: for large layers that copy went to
memory and back). The data copy's rows are a cache line longer than their elements
(`placement.line_padded`).

The padded sum adds 0 * F[...] where the guarded one skipped a term, which differs only where F
holds an infinity or NaN (as in torch, whose convolutions pad with zeros). Only for a
top-level f32 or f64 `+=` statement whose right side is the product of two input loads, the
data indexed by x at a stride other than 1 and not by k, the weights by k and reduction
variables only; the padding only where isl proves the domain is the box of the iterators'
extents cut by X's bounds. This adds statements and temporaries, so, like
`passes/normalize.py`, it runs only where no schedule names statements.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

import islpy as isl

from loopweave.ir import expr as ir
from loopweave.ir import isl_helpers
from loopweave.ir.affine import coefficient
from loopweave.ir.kernel import KernelIR, Statement, Tensor
from loopweave.passes import placement as pl
from loopweave.passes.patterns import Convolution, factors, match_convolution, product_operands

#: The most bytes of weights one block of output channels packs (`channel_steps`): a block
#: of input channels per pack where all of them would take more. In the L2 cache with the
#: data the tile reads; on the stack, as a GEMM's B panel.
WEIGHT_PACK_BYTES = 1 << 19
#: The spatial extent a pack holds where the sizes are not known (3 x 3 kernels in one).
SPATIAL_BLOCK = 3


def channel_steps(s: Statement, loops: list[str], rows: int, lanes: int,
                  extents: Mapping[str, int] | None = None,
                  pack_bytes: int = WEIGHT_PACK_BYTES) -> list[tuple] | None:
    """The register-tile steps of a convolution along its output channels
    (`match_convolution(.., along="channels")`; rows x lanes: x by k), or None. The weights
    are packed per block of `lanes` output channels, k last (`weights_layout`), before the
    block's loop over output rows: each pack is read from L2 by every tile of the block, where
    one copy of all of them (F_t[r, s, c, k] = F[k, c, r, s]) went to memory and back for
    large layers (256 -> 512 channels, stride 2, 14x14, its C in a C harness: the copy took
    0.70 of 1.7 ms, the packs take 0.55, and the tiles ran 0.95 -> 0.73 ms reading them). The
    pack's box must be fixed: the reductions it holds are tiled by their
    `extents` (by variable, where the sizes are known; else SPATIAL_BLOCK and as many input
    channels as `pack_bytes` allows), those block loops outermost. None without vectors
    (`lanes` 0: Cortex-M4's f32) or where the weights' indices are not plain variables."""
    c = match_convolution(s, loops, along="channels")
    if c is None or lanes < 1 or not all(isinstance(ix, ir.Var) for ix in c.weights.indices):
        return None
    dims = len(s.lhs.indices)
    layout = (*[d for d in range(dims) if d != c.k_dim], c.k_dim)
    pack = weights_layout(c)
    packed = [c.weights.indices[d].name for d in pack[:-1]]
    reductions = [*[v for v in c.reductions if v not in packed], *packed]
    blocks = _pack_blocks(c, packed, lanes * c.weights.dtype.bits // 8, extents or {},
                          pack_bytes)
    order = [*c.outer[:1], *[f"{v}_o" for v in blocks], f"{c.k}_o", *c.outer[1:],
             f"{c.x}_o", *reductions, c.x, c.k]
    at = order[order.index(f"{c.k}_o") + 1]
    return [("reassociate", s.name), ("tile", s.name, {c.x: rows, c.k: lanes, **blocks}),
            ("reorder", s.name, *order),
            ("cache_read", s.name, c.weights.tensor, at, {"layout": pack}),
            ("cache_write", s.name, reductions[0], layout)]


def pack_extents(kernel: KernelIR, sizes: Mapping[str, int]) -> tuple[tuple[str, str, int], ...]:
    """(statement, variable, extent) of each reduction that indexes the weights of a
    channels-last convolution of `kernel`, at `sizes` (those the sizes fix), for
    `channel_steps`' packs (`TargetFacts.conv_extents`)."""
    placements = pl.initial_placements(kernel)
    found = []
    for s in kernel.statements:
        c = match_convolution(s, placements[s.name].names(), along="channels")
        if c is None:
            continue
        shape = kernel.tensors[c.weights.tensor].shape
        for ix, dim in zip(c.weights.indices, shape, strict=True):
            if isinstance(ix, ir.Var) and ix.name != c.k:
                try:
                    found.append((s.name, ix.name, ir.evaluate(dim, sizes)))
                except (KeyError, ValueError):  # an extent the sizes do not fix
                    continue
    return tuple(found)


def weights_layout(c: Convolution) -> tuple[int, ...]:
    """The weights' dimensions in the pack's order: the spatial reductions, then the others
    (input channels, which also index the channels-last data directly), then k, so that the
    reduction loops in that order walk the pack and the data contiguously."""
    names = [ix.name for ix in c.weights.indices]
    dims = range(len(names))
    return (*[d for d in dims if names[d] in c.spatial],
            *[d for d in dims if names[d] not in c.spatial and names[d] != c.k],
            names.index(c.k))


def _pack_blocks(c: Convolution, packed: list[str], row_bytes: int,
                 extents: Mapping[str, int], pack_bytes: int) -> dict[str, int]:
    """The tile of each packed reduction (`channel_steps`): its extent where known (the
    spatial ones SPATIAL_BLOCK where not), the input channels split evenly into blocks of at
    most `pack_bytes` of pack."""
    extents = {v: max(1, n) for v, n in extents.items()}  # (a call with an empty dimension)
    spatial = [v for v in packed if v in c.spatial]
    blocks = {v: extents.get(v, SPATIAL_BLOCK) for v in spatial}
    per_channel = row_bytes * math.prod(blocks.values())
    channels = [v for v in packed if v not in c.spatial]
    budget = max(1, pack_bytes // (per_channel * max(1, len(channels))))
    for v in channels:
        if v in extents:
            parts = -(-extents[v] // budget)
            blocks[v] = -(-extents[v] // parts)
        else:
            blocks[v] = max(1, budget // 16 * 16 or budget)
    return blocks


def normalize_strided_convolutions(kernel: KernelIR, unit_stride: bool = False) -> KernelIR:
    """`kernel` with each strided convolution reading a channels-last copy of its data, padded
    where its `where` is zero padding (module docstring); the same object when there is none
    (the weights stay: `channel_steps` packs them). `unit_stride`: unit-stride convolutions
    of inputs too (the host's size rule does so where they have many input channels,
    passes/conv_columns.py)."""
    statements, temporaries = list(kernel.statements), list(kernel.temporaries)
    placements = pl.initial_placements(kernel)
    taken = set(kernel.tensors) | {t.name for t in statements}
    changed = False
    for s in kernel.statements:
        found = _strided(kernel, s, unit_stride)
        if found is None:
            continue
        data, weights = found
        outputs = {v.name for v in s.lhs.indices}
        channels = {i.name for i in weights.indices if i.name not in outputs}
        added: list[Statement] = []
        new_s = s
        padded = _padding(kernel, s, data)
        source = kernel.tensors[data.tensor]
        box, lows, highs = padded or (s.domain, [0] * len(data.indices), [0] * len(data.indices))
        last = [d for d, e in enumerate(data.indices) if isinstance(e, ir.Var)
                and e.name in channels]
        layout = (*[d for d in range(len(data.indices)) if d not in last], *last)
        if padded is not None or layout != tuple(range(len(layout))):
            shape = [ir.add(ir.add(d, ir.Const(lo)), ir.Const(hi))
                     for d, lo, hi in zip(source.shape, lows, highs, strict=True)]
            copy = Tensor(pl.fresh_name(f"{data.tensor}_cl", taken), source.dtype,
                          pl.line_padded(tuple(shape[d] for d in layout), source.dtype), "temp")
            temporaries.append(copy)
            added += _data_copy(kernel, s, source, copy, lows, layout, padded is not None,
                                taken, tuple(shape[d] for d in layout))
            shifted = [ir.add(e, ir.Const(lo)) if lo else e
                       for e, lo in zip(data.indices, lows, strict=True)]
            new_data = ir.Load(copy.name, tuple(shifted[d] for d in layout), data.dtype)
            new_s = replace(new_s, domain=box, rhs=_replace_load(new_s.rhs, data, new_data))
        if new_s is s:
            continue  # the data as they are: the weights alone need no form (they are packed)
        statements[statements.index(s)] = new_s
        first = statements.index(new_s)
        if first and statements[first - 1].is_init and \
                statements[first - 1].lhs.tensor == s.lhs.tensor:
            first -= 1  # before the output's initialisation: that runs right before the sum
        pl.insert_before(placements, statements[first].name, added)
        statements[first:first] = added
        changed = True
    if not changed:
        return kernel
    result = replace(kernel, statements=tuple(statements), temporaries=tuple(temporaries))
    return result.with_schedule(pl.build_tree(result, placements))


def unit_stride_channels(kernel: KernelIR, s: Statement) -> ir.Expr | None:
    """The input channels' extent where `s` is a unit-stride convolution that
    `normalize_strided_convolutions(unit_stride=True)` rewrites, else None."""
    found = _strided(kernel, s, True)
    if found is None or _strided(kernel, s) is not None:
        return None
    data, weights = found
    outputs = {v.name for v in s.lhs.indices}
    channels = {i.name for i in weights.indices if i.name not in outputs}
    extents = [kernel.tensors[data.tensor].shape[d] for d, e in enumerate(data.indices)
               if isinstance(e, ir.Var) and e.name in channels]
    return extents[0] if len(extents) == 1 else None


def _strided(kernel: KernelIR, s: Statement, unit_stride: bool = False
             ) -> tuple[ir.Load, ir.Load] | None:
    """(data, weights) where `s` is a convolution reading its data at a stride other than 1
    along x (any stride with `unit_stride`), with weights F[k, reductions..] of inputs; else
    None."""
    pair = product_operands(s)
    if pair is None:
        return None
    data, weights = pair
    if any(kernel.tensors[t.tensor].role != "in" for t in pair) or \
            not all(isinstance(i, ir.Var) for i in weights.indices):
        return None
    outputs = [v.name for v in s.lhs.indices]
    x = outputs[-1]
    ks = [i.name for i in weights.indices if i.name in outputs]
    if len(ks) != 1 or len({i.name for i in weights.indices}) != len(weights.indices) or \
            ks[0] in set().union(*(ir.variables(ix) for ix in data.indices)):
        return None
    strides = [coefficient(ix, x) for ix in data.indices if x in ir.variables(ix)]
    if len(strides) != 1 or strides[0] is None or strides[0] == 1 and not unit_stride or \
            data.indices[-1] is not next(ix for ix in data.indices if x in ir.variables(ix)):
        return None  # unit stride: the column tile of `match_convolution` takes it
    return data, weights


def _padding(kernel: KernelIR, s: Statement, data: ir.Load):
    """(the box domain, low pads, high pads) where `s`'s domain is the box of its variables'
    extents (each from a dimension it indexes directly, of the output or another factor) cut
    by the data's bounds, and padding makes the cut unnecessary; None where the domain is
    already the box, or is not such a cut."""
    extents: dict[str, ir.Expr] = {}
    for load in (s.lhs, *factors(s.rhs)):
        if load is data:
            continue
        for ix, dim in zip(load.indices, kernel.tensors[load.tensor].shape, strict=True):
            if isinstance(ix, ir.Var):
                extents.setdefault(ix.name, dim)
    if set(extents) != set(s.iterators):
        return None
    conds = [c for v in s.iterators for c in (ir.Binary("<=", ir.Const(0), ir.Var(v), ir.BOOL),
                                              ir.Binary("<", ir.Var(v), extents[v], ir.BOOL))]
    box = isl_helpers.make_set(kernel.params, s.name, s.iterators, conds).intersect_params(
        kernel.context)
    if box.is_subset(s.domain):
        return None  # no guard to remove
    shape = kernel.tensors[data.tensor].shape
    inside = [c for e, d in zip(data.indices, shape, strict=True)
              for c in (ir.Binary("<=", ir.Const(0), e, ir.BOOL), ir.Binary("<", e, d, ir.BOOL))]
    cut = box.intersect(isl_helpers.make_set(kernel.params, s.name, s.iterators, inside))
    if not cut.is_equal(s.domain.intersect_params(kernel.context)):
        return None
    lows, highs = [], []
    for e, d in zip(data.indices, shape, strict=True):
        low = _extreme(kernel, s, box, ir.Unary("neg", e, e.dtype))
        high = _extreme(kernel, s, box, ir.add(ir.Binary("-", e, d, e.dtype), ir.Const(1)))
        if low is None or high is None:
            return None
        lows.append(max(0, low))
        highs.append(max(0, high))
    return box, lows, highs


def _extreme(kernel: KernelIR, s: Statement, domain: isl.Set, e: ir.Expr) -> int | None:
    """The largest value of `e` over `domain` for any sizes, or None (unbounded)."""
    values = isl_helpers.make_map(kernel.params, s.name, s.iterators, "lw_v", (e,)) \
        .intersect_domain(domain).range()
    values = values.project_out(isl.dim_type.param, 0, values.dim(isl.dim_type.param))
    if values.is_empty():
        return 0
    largest = values.dim_max_val(0)
    return largest.to_python() if largest.is_int() else None


def _data_copy(kernel: KernelIR, s: Statement, source: Tensor, copy: Tensor, lows: list[int],
               layout: tuple[int, ...], padded: bool, taken: set[str],
               extents: tuple[ir.Expr, ...]) -> list[Statement]:
    """`copy[..] = 0` on the border where `padded` (the elements of its `extents`, in layout
    order, that the copy does not write; not the line padding, which nothing reads), then
    `copy[layout of (i + low)] = source[i]`. Zeroing the whole copy first wrote it twice: 3%
    of a stride-2 conv's time, 64 -> 128 channels on 56x56."""
    names = tuple(f"lw_p{d}" for d in range(len(source.shape)))

    def box(name: str, lows: list[int], dims: tuple[ir.Expr, ...]) -> isl.Set:
        conds = [c for v, lo, d in zip(names, lows, dims, strict=True)
                 for c in (ir.Binary("<=", ir.Const(lo), ir.Var(v), ir.BOOL),
                           ir.Binary("<", ir.Var(v), ir.add(d, ir.Const(lo)), ir.BOOL))]
        return isl_helpers.make_set(kernel.params, name, names, conds)

    statements = []
    for kind in ("zero", "copy") if padded else ("copy",):
        name = pl.fresh_name(f"{s.name}_{copy.name}_{kind}", taken)
        domain = box(name, [0] * len(names), source.shape)
        if kind == "zero":
            domain = box(name, [0] * len(names), extents).subtract(box(
                name, [lows[d] for d in layout], tuple(source.shape[d] for d in layout)))
            lhs = ir.Load(copy.name, tuple(ir.Var(v) for v in names), copy.dtype)
            rhs: ir.Expr = ir.Const(0.0, copy.dtype)
        else:
            at = [ir.add(ir.Var(v), ir.Const(lo)) if lo else ir.Var(v)
                  for v, lo in zip(names, lows, strict=True)]
            lhs = ir.Load(copy.name, tuple(at[d] for d in layout), copy.dtype)
            rhs = ir.Load(source.name, tuple(ir.Var(v) for v in names), source.dtype)
        statements.append(Statement(name, names, domain, lhs, "=", rhs, s.pos))
    return statements


def _replace_load(e: ir.Expr, old: ir.Load, new: ir.Load) -> ir.Expr:
    return ir.rewrite(e, lambda x: new if x == old else None)
