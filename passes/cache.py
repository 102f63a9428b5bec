"""cache_read / cache_write: keep the part of a tensor that one loop touches in a local buffer.

    s.cache_write("C", at="k")          # C's tile accumulates in registers across the k loop
    s.cache_read("C", "B", at="i_o")    # B's panel is packed once per (j, k) block

The footprint of the tensor in the loop, as a function of the enclosing loops, is computed with
isl (every access of every statement under the loop) and must lie in a box of fixed size
(`get_range_simple_fixed_box_hull`); that box is the buffer. A written footprint must be the
whole box (inside the tensor), so that copying the buffer back writes nothing else. The loop
AST pass `ir/localize.py` inserts the copies and redirects the accesses.
"""

from __future__ import annotations

import functools
import math

import islpy as isl

from loopweave.errors import ScheduleError
from loopweave.ir import isl_helpers
from loopweave.ir.affine import aff_to_expr
from loopweave.ir.dependences import Dependences, restricted_to
from loopweave.ir.expr import Const, Expr, Var, variables
from loopweave.ir.kernel import CacheSpec, FoldedInit, KernelIR, Statement, Tensor
from loopweave.ir.loops import GPU_AXES
from loopweave.ir.types import DTYPES
from loopweave.passes.legality import marks

#: A buffer row whose byte size is a multiple of this gets padded: rows at a large power-of-two
#: stride would all map to the same L1 cache sets.
PAD_ALIGNMENT = 256
PAD_BYTES = 64


def analyze(kernel: KernelIR, schedule: isl.Schedule, tag: str, tensor: str,
            copy_out: bool, taken: set[str], layout: tuple[int, ...] | None = None,
            panel: int | None = None, dtype: str | None = None) -> CacheSpec:
    """The buffer for `tensor` in the loop marked "cache:<tag>" of `schedule`, its dimensions
    in the order `layout` gives (default: the tensor's), the last one cut into runs of
    `panel`, its elements converted to `dtype` (see `Schedule.cache_read`)."""
    mark = _find_mark(schedule, f"cache:{tag}")
    band = _band_under(mark)
    prefix = band.get_prefix_schedule_union_map().intersect_params(kernel.context)
    depth = band.get_schedule_depth()
    reads, writes = kernel.access_relations()
    read_fp = _footprint(prefix, reads, tensor)
    write_fp = _footprint(prefix, writes, tensor)
    if not copy_out and write_fp:
        raise ScheduleError(f"cache_read of {tensor}: the loop also writes {tensor}; use "
                            "cache_write")
    if not read_fp + write_fp:
        raise ScheduleError(f"the loop does not access {tensor}")
    footprint = functools.reduce(isl.Map.union, read_fp + write_fp).coalesce()
    names = [f"c{k}" for k in range(depth)]
    offsets, sizes = _box(*_without_fixed_loops(footprint, names), tensor)
    t = kernel.tensors[tensor]
    init, when = None, None
    if copy_out:
        written = functools.reduce(isl.Map.union, write_fp)
        if _check_exact(kernel, t, written, offsets, sizes, names, mark):
            init, when = _folded_init(kernel, mark.get_domain(), written,
                                      restricted_to(reads, tensor), restricted_to(writes, tensor))
    layout = layout or tuple(range(len(sizes)))
    if len(layout) != len(sizes):
        raise ScheduleError(f"cache layout {layout} of {tensor}: {tensor} has "
                            f"{len(sizes)} dimensions")
    shape = [sizes[d] for d in layout]
    if copy_out and dtype is not None:
        raise ScheduleError(f"cache_write of {tensor} takes no dtype")
    element = DTYPES[dtype] if dtype is not None else t.dtype
    if panel:
        if copy_out:
            raise ScheduleError(f"cache_write of {tensor} takes no panel")
        # Whole runs: the last run of a box that panel does not divide has its tail unused.
        shape = [-(-shape[-1] // panel), *shape[:-1], panel]
    elif len(shape) > 1 and (shape[-1] * element.bits // 8) % PAD_ALIGNMENT == 0:
        shape[-1] += PAD_BYTES * 8 // element.bits
    buffer = Tensor(_fresh_name(taken, f"{tensor}_{'acc' if copy_out else 'pack'}"), element,
                    tuple(Const(s) for s in shape), "local")
    overlap = _overlap_from(kernel, mark, tensor, offsets) if init else ()
    return CacheSpec(tag, tensor, buffer, offsets, sizes, depth, copy_in=True, copy_out=copy_out,
                     layout=layout, panel=panel or 0,
                     converted=element != t.dtype, fill=init.rhs if init else None,
                     folds=init.name if init else "", fill_when=when if init else None,
                     overlap_from=overlap)


def _overlap_from(kernel: KernelIR, mark: isl.ScheduleNode, tensor: str,
                  offsets: tuple[Expr, ...]) -> tuple[Expr | None, ...]:
    """`CacheSpec.overlap_from`: per dimension of `tensor`, its first element where an edge
    tile of the accumulator under `mark` may be pulled back over the tile before it (the
    overlapped elements computed again, to the same values), else None; () where no
    dimension may. It may where one reduction statement writes the tensor under the loop
    (its initialisation folded into the tile's fill), its domain a box of output elements
    times a reduction range that no output index bounds (a convolution's, a matmul's: every
    element sums the same terms in the same order, whichever tile computes it), the index
    along that dimension its own iterator, and no loop around that may run at once with
    another iteration steps along it (two threads would store the same element)."""
    under = mark.get_domain()
    writers = [s for s in kernel.statements if s.lhs.tensor == tensor
               and not isl.UnionSet.from_set(s.domain).intersect(under).is_empty()]
    if len(writers) != 1 or writers[0].op != "+=" or writers[0].data_ranges:
        return ()
    statement = writers[0]
    names = [i.name if isinstance(i, Var) else None for i in statement.lhs.indices]
    if None in names or len(set(names)) != len(names) \
            or not set(names) <= set(statement.iterators):
        return ()
    domain = statement.domain.intersect_params(kernel.context).coalesce()
    if domain.n_basic_set() != 1:
        return ()
    basic = domain.get_basic_sets()[0]
    outputs = {statement.iterators.index(n) for n in names}
    if basic.dim(isl.dim_type.div) or any(_mixes(c, outputs) for c in basic.get_constraints()):
        return ()
    concurrent = {f"c{depth + k}" for band, depth in _concurrent_loops(mark)
                  for k in range(band.band_n_member())}
    starts: list[Expr | None] = []
    for name, offset in zip(names, offsets, strict=True):
        first = domain.dim_min(statement.iterators.index(name))
        pieces = first.get_pieces()
        starts.append(aff_to_expr(pieces[0][1], []) if len(pieces) == 1 and not (
            variables(offset) & concurrent) else None)
    return tuple(starts) if any(x is not None for x in starts) else ()


def _mixes(constraint: isl.Constraint, outputs: set[int]) -> bool:
    """Whether `constraint` ties an output iterator to any other iterator."""
    used = {k for k in range(constraint.dim(isl.dim_type.set))
            if not constraint.get_coefficient_val(isl.dim_type.set, k).is_zero()}
    return bool(used & outputs) and len(used) > 1


def _box(footprint: isl.Map, names: list[str], tensor: str) -> tuple[tuple, tuple[int, ...]]:
    """Per dimension: the smallest element as an affine function of the outer loops, and the
    largest spread for any values of the outer loops and sizes (the buffer extent). Where the
    smallest element is a max of several (an upper triangle's tile starts at its column or at
    the diagonal), the one of them that bounds the elements by the least spread."""
    n = footprint.dim(isl.dim_type.out)
    offsets, sizes = [], []
    for d in range(n):
        m = footprint.project_out(isl.dim_type.out, d + 1, n - d - 1).project_out(
            isl.dim_type.out, 0, d)
        pieces = m.lexmin_pw_multi_aff().get_at(0).get_pieces()
        if len(pieces) == 1:
            spread = _without_params(m.reverse().apply_range(m).deltas())
            largest, offset = spread.dim_max_val(0), pieces[0][1]
        else:
            largest, offset = min(((_spread_above(m, aff), aff) for _, aff in pieces),
                                  key=lambda c: c[0].to_python() if c[0].is_int() else math.inf)
        if not largest.is_int():
            raise ScheduleError(f"the footprint of {tensor} in the loop is not a box of fixed "
                                f"size along dimension {d} ({m}); tile the loops that index it")
        try:
            offsets.append(aff_to_expr(offset, names))
        except ValueError:
            raise ScheduleError(f"the footprint of {tensor} has no affine offset") from None
        sizes.append(largest.to_python() + 1)
    return tuple(offsets), tuple(sizes)


def _spread_above(footprint: isl.Map, offset: isl.Aff) -> isl.Val:
    """The largest element of `footprint` minus `offset`, for any outer loops and sizes
    (infinity where `offset` is not below every element)."""
    above = _without_params(footprint.sum(isl.Map.from_aff(offset).neg()).range())
    if above.is_empty() or above.dim_min_val(0).is_neg():
        return isl.Val.infty(footprint.get_ctx())
    return above.dim_max_val(0)


def _without_params(s: isl.Set) -> isl.Set:
    return s.project_out(isl.dim_type.param, 0, s.dim(isl.dim_type.param))


def _without_fixed_loops(footprint: isl.Map, names: list[str]) -> tuple[isl.Map, list[str]]:
    """The footprint without the outer loops whose value the loops outside them fix (a tile
    loop of a loop already tiled by as much): isl's AST has no loop there, so no iterator for
    the offsets to name. Projecting such a loop out loses nothing: it is a function of the
    others."""
    domain = isl.Map.from_domain(footprint.domain())
    fixed = [k for k in range(len(names)) if domain.project_out(
        isl.dim_type.in_, k + 1, len(names) - k - 1).move_dims(
        isl.dim_type.out, 0, isl.dim_type.in_, k, 1).is_single_valued()]
    for k in reversed(fixed):
        footprint = footprint.project_out(isl.dim_type.in_, k, 1)
    return footprint, [n for k, n in enumerate(names) if k not in fixed]


def _find_mark(schedule: isl.Schedule, name: str) -> isl.ScheduleNode:
    for mark in marks(schedule.get_root()):
        if mark.mark_get_id().get_name() == name:
            return mark
    raise AssertionError(f"no mark {name}")


def _band_under(node: isl.ScheduleNode) -> isl.ScheduleNode:
    while node.get_type() != isl.schedule_node_type.band:
        node = node.child(0)
    return node


def _footprint(prefix: isl.UnionMap, access: isl.UnionMap, tensor: str) -> list[isl.Map]:
    """{ [outer loop values] -> tensor[element] } for the accesses under the loop."""
    return [m for m in isl_helpers.maps_of(prefix.reverse().apply_range(access))
            if m.get_tuple_name(isl.dim_type.out) == tensor and not m.is_empty()]


def _check_exact(kernel: KernelIR, t: Tensor, written: isl.Map, offsets, sizes, names,
                 mark: isl.ScheduleNode) -> bool:
    """Copying the buffer back must not overwrite what another statement instance wrote. The
    elements of the box the loop does not write go back as they were copied in, and between
    the two copies only the loop runs: they are safe unless an iteration of an enclosing
    parallel loop (a GPU axis, ...) other than the buffer's own writes them meanwhile
    (trmm's row tiles: a row with no term in one k chunk, updated in the next chunk, by the
    same row tile). Returns whether the loop writes the whole box (inside the tensor)."""
    idx = [f"e{d}" for d in range(len(sizes))]
    conds = []
    for d, (off, size, dim) in enumerate(zip(offsets, sizes, t.shape, strict=True)):
        o = isl_helpers.to_isl(off)
        conds.append(f"{o} <= {idx[d]} < {o} + {size}")
        try:  # an extent isl cannot say (a ceiling division) leaves the box larger: stricter
            conds.append(f"0 <= {idx[d]} < {isl_helpers.to_isl(dim)}")
        except ValueError:
            conds.append(f"0 <= {idx[d]}")
    text = (f"{isl_helpers.param_prefix(kernel.params)}{{ [{', '.join(names)}] -> "
            f"{t.name}[{', '.join(idx)}] : {' and '.join(conds)} }}")
    box = isl.Map(text).intersect_domain(written.domain()).intersect_params(kernel.context)
    unwritten = box.subtract(written)
    if unwritten.is_empty():
        return True
    writes = restricted_to(kernel.access_relations()[1], t.name)
    for band, depth in _concurrent_loops(mark):
        # [outer loops, this loop] -> the elements the loop's other iterations write
        others = _band_times(band).reverse().apply_range(writes)
        outer = [f"c{k}" for k in range(depth)]
        same_outer = isl.UnionMap(
            f"{isl_helpers.param_prefix(kernel.params)}{{ [{', '.join(outer + ['p'])}] -> "
            f"[{', '.join(outer + ['q'])}] : q != p }}").apply_range(others)
        here = unwritten.project_out(isl.dim_type.in_, depth + 1, len(names) - depth - 1)
        if not isl.UnionMap(here).intersect(same_outer).is_empty():
            raise ScheduleError(
                f"cache_write of {t.name}: the loop writes only part of the box around its "
                f"footprint ({written}), and another iteration of a parallel loop around it "
                "writes the rest; copying it back would overwrite that")
    return False


def _folded_init(kernel: KernelIR, under: isl.UnionSet, written: isl.Map, reads: isl.UnionMap,
                 writes: isl.UnionMap) -> tuple[Statement | None, Expr | None]:
    """(the statement whose constant the accumulator buffer of the loop running the
    instances `under` starts from, the condition on the sizes where it does: None for all),
    or (None, None). `written`: the loops around -> the elements the loop writes; `reads`,
    `writes`: every statement's accesses to the buffer's tensor. The cheap checks first."""
    init = _constant_init(kernel, under, writes, written.get_tuple_name(isl.dim_type.out))
    at = _fill_sizes(kernel, written, init, writes) if init else None
    if at is None or at.is_empty() or not _read_in_the_loop(kernel, under, init, reads, at):
        return None, None
    return init, _condition(kernel, at)


def folded_gemm_init(kernel: KernelIR, statement: Statement) -> FoldedInit | None:
    """The initialisation that a GEMM call running all of the reduction `statement` (no loop
    around its nest: one call writes every element) may start from, as an accumulator tile
    may (`_folded_init`: the same conditions), or None."""
    reads, writes = kernel.access_relations()
    tensor = statement.lhs.tensor
    own = writes.intersect_domain(isl.UnionSet.from_set(statement.domain))
    elements = isl.Set.from_union_set(own.range())
    init, when = _folded_init(kernel, isl.UnionSet.from_set(statement.domain),
                              isl.Map.from_range(elements), restricted_to(reads, tensor),
                              restricted_to(writes, tensor))
    return FoldedInit(statement.name, init.name, init.rhs, when) if init else None


def _constant_init(kernel: KernelIR, under: isl.UnionSet, writes: isl.UnionMap, tensor: str
                   ) -> Statement | None:
    """The statement storing a constant into `tensor` (`writes`: every write of it) that
    an accumulator buffer of the loop running `under` may start from instead of copying in,
    so that it need not run at all (`_fill_sizes` says at which sizes, `_read_in_the_loop`
    whether anything else reads it): a reduction's initialisation, `C[i, j] = 0` before
    `C[i, j] += A[i, k] * B[k, j]`, the only statement outside the loop that writes the
    tensor. Without it C is zeroed in a pass of its own, then read back into the registers
    (f32 1024^3, one thread: 3% of the time). None where there is no such statement."""
    inits = [s for s in kernel.statements if s.lhs.tensor == tensor and s.op == "=" and
             isinstance(s.rhs, Const)]
    if len(inits) != 1:
        return None
    own = isl.UnionSet.from_set(inits[0].domain)
    if not own.intersect(under).is_empty() or not writes.domain().is_subset(under.union(own)):
        return None
    return inits[0]


def _read_in_the_loop(kernel: KernelIR, under: isl.UnionSet, init: Statement,
                      reads: isl.UnionMap, sizes: isl.Set) -> bool:
    """Whether, at `sizes` (where the fold would apply), no read outside the loop running
    `under` sees `init`'s constant, and every value the loop reads (`reads`: every read of
    the tensor) was stored (by `init` or in the loop), none being the tensor's own (an
    argument's, or never written). (An epilogue reads the constant itself only where the
    reduction is empty, K = 0, where nothing folds.) The dependence query comes last: it is
    the costly one (attention's compile: 0.12 s of 0.66 with every tensor's dependences)."""
    flows = [(d.source, d.relation.intersect_params(sizes))
             for d in Dependences.of(kernel).flows_on(init.lhs.tensor)]
    if any(source == init.name and not isl.UnionSet.from_set(flow.range()).is_subset(under)
           for source, flow in flows):
        return False
    inside = reads.domain().intersect(under).intersect_params(sizes)
    sourced = functools.reduce(isl.UnionSet.union, (
        isl.UnionSet.from_set(flow.range()) for _, flow in flows), isl.UnionSet.empty(
            inside.get_space()))
    return inside.is_subset(sourced)


def _fill_sizes(kernel: KernelIR, written: isl.Map, init: Statement, writes: isl.UnionMap
                ) -> isl.Set:
    """The sizes (a set of the parameters, within the kernel's context) at which the buffer
    may start from `init`'s constant: one instance of the loops around the buffer's loop
    writes each element (`written`: those loops -> elements), so that the reduction runs in
    one block of them (K no deeper than a panel), and the loop writes every element `init`
    does (an empty reduction, K = 0, writes none; `writes`: every write of the tensor)."""
    pairs = written.apply_range(written.reverse())
    shared = pairs.subtract(isl.Map.identity(pairs.get_space())).params()
    stored = writes.intersect_domain(isl.UnionSet.from_set(init.domain)).range()
    missed = stored.subtract(isl.UnionSet.from_set(written.range())).params()
    fits = kernel.context.subtract(shared.union(missed).intersect(kernel.context))
    # (sizes where `init` stores nothing may go either way: the simpler condition)
    return fits.gist(init.domain.params().intersect(kernel.context)).intersect(
        kernel.context).coalesce()


def _condition(kernel: KernelIR, sizes: isl.Set) -> Expr | None:
    """`sizes` as a condition on the parameters (None: every size in the context)."""
    if sizes.is_equal(kernel.context):
        return None
    build = isl.AstBuild.from_context(kernel.context)
    return isl_helpers.from_ast_expr(build.expr_from_set(sizes), frozenset(kernel.params))


def _concurrent_loops(mark: isl.ScheduleNode) -> list[tuple[isl.ScheduleNode, int]]:
    """The bands of the loops around `mark` whose iterations may run at once (marked
    parallel, a GPU axis, ...), each with the number of loops outside it."""
    found = []
    node = mark
    while node.has_parent():
        node = node.parent()
        if node.get_type() == isl.schedule_node_type.mark and \
                node.mark_get_id().get_name().split(":")[0] in CONCURRENT_MARKS:
            band = _band_under(node)
            found.append((band, band.get_schedule_depth()))
    return found


#: Marks of loops whose iterations may run at the same time.
CONCURRENT_MARKS = ("parallel", "vector", "dot", *GPU_AXES)


def _band_times(band: isl.ScheduleNode) -> isl.UnionMap:
    """Statement instance -> [the loops outside `band`, its first loop]."""
    first = band.band_get_partial_schedule_union_map()
    n = band.band_n_member()
    if n > 1:
        first = functools.reduce(isl.UnionMap.union, (
            isl.UnionMap.from_map(m.project_out(isl.dim_type.out, 1, n - 1))
            for m in isl_helpers.maps_of(first)))
    return band.get_prefix_schedule_union_map().flat_range_product(first)


def _fresh_name(taken: set[str], base: str) -> str:
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}{n}"
    taken.add(name)
    return name
