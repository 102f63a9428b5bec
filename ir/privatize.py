"""Parallel loops that carry a reduction, lowered to private partial results.

`Schedule.parallel` accepts a loop whose only carried dependence is a reduction's own chain
(`s[] += x[i]` with i, or its tile loop, parallel), as it accepts such a vector loop. Here each
iteration of that loop reduces into its own slot of a local array, starting from the
reduction's identity, and after the loop one thread combines the slots in loop order:

    for c0 (parallel): s[] += f(c0, c1 ...)
becomes
    local part[extent of c0]
    for c0 (parallel): part[c0 - start] = identity; ... part[c0 - start] += f(c0, c1 ...)
    for c0:            s[] += part[c0 - start]

The iterations, their slots and the order of the combination depend on the schedule only (the
tile size), never on the number of threads: results are the same, bit for bit, on one thread
or on many. The same rule on a GPU is ir/launches.ThreadReduce.
"""

from __future__ import annotations

from dataclasses import replace

import islpy as isl

from loopweave.errors import ScheduleError
from loopweave.ir import expr as ir
from loopweave.ir import isl_helpers
from loopweave.ir.dependences import carried
from loopweave.ir.kernel import KernelIR
from loopweave.ir.loops import (
    Block,
    Buffer,
    For,
    Node,
    Scope,
    Store,
    invariant_reductions,
    loop_end,
    map_stores,
    node_loads,
    walk,
)
from loopweave.ir.types import INDEX, identity


def reduced_across(kernel: KernelIR, band: isl.ScheduleNode) -> frozenset[str]:
    """The statements that write one element in different iterations of `band` (within one
    iteration of the loops outside it): on a legal parallel loop, the reductions whose chain
    it carries (a temporary private to each iteration included)."""
    writes = kernel.access_relations()[1]
    same_element = writes.apply_range(writes.reverse())
    pairs = carried(same_element, band.get_prefix_schedule_union_map(),
                    band.band_get_partial_schedule_union_map()).intersect_params(kernel.context)
    return frozenset(m.get_tuple_name(isl.dim_type.in_) for m in isl_helpers.maps_of(pairs))


def privatize(loop: For, statements: frozenset[str]) -> Node:
    """The parallel `loop` with the reductions of `statements` into elements it does not
    index lowered to partial results per iteration (see above); unchanged if there are none
    (the statements write only temporaries local to each iteration)."""
    private = {b.name for n in walk(loop) if isinstance(n, Scope) for b in n.buffers}
    shared = [st for st in walk(loop) if isinstance(st, Store) and st.stmt in statements
              and st.tensor not in private]
    reductions = invariant_reductions(loop)
    for st in shared:
        if st not in reductions:
            raise ScheduleError(f"parallel loop {loop.var} writes {_text(st)} ({st.stmt}) in "
                                f"several iterations, not as a reduction into one element "
                                f"that partial results per iteration could hold")
    if not shared:
        return loop
    elements = {_key(st): st for st in shared}
    for st in walk(loop):
        if isinstance(st, Store) and st.tensor in {t for t, _, _ in elements} \
                and _key(st) not in elements:
            raise ScheduleError(f"parallel loop {loop.var} reduces into {_text(st)}, which "
                                f"other iterations also write; it cannot be split per thread")
    read = {ld.tensor for n in walk(loop) for ld in node_loads(n)}
    end = loop_end(loop)
    if end is None or loop.step != 1 or read & {t for t, _, _ in elements}:
        first = shared[0]
        raise ScheduleError(f"parallel loop {loop.var} reduces into {_text(first)}; partial "
                            f"results per iteration need a loop of step 1 with an upper bound, "
                            f"whose body does not read {first.tensor}")
    extent = ir.Binary("-", end, loop.init, INDEX)
    slot = (ir.Binary("-", ir.Var(loop.var), loop.init, INDEX),)
    partials = {key: Buffer(f"lw_part{n}_{st.stmt}", st.value.dtype.compute, (extent,))
                for n, (key, st) in enumerate(elements.items())}

    def to_partial(st: Store) -> Store:
        buffer = partials.get(_key(st))
        if buffer is None:
            return st
        value = st.value.operand if st.value.dtype.is_storage_only else st.value
        return replace(st, tensor=buffer.name, indices=slot, value=value)

    starts = tuple(Store(b.name, slot, ir.Const(identity(st.reduce, b.dtype), b.dtype), None,
                         st.stmt) for st, b in zip(elements.values(), partials.values(),
                                                   strict=True))
    body = Block((*starts, map_stores(loop.body, to_partial)))
    combine = []
    for st, b in zip(elements.values(), partials.values(), strict=True):
        total: ir.Expr = ir.Load(b.name, slot, b.dtype)
        if st.value.dtype.is_storage_only:
            total = ir.Cast(st.value.dtype, total)
        combine.append(replace(st, value=total))
    combined = replace(loop, body=Block(tuple(combine)), kind="serial")
    return Scope(tuple(partials.values()), Block((replace(loop, body=body), combined)))


def _key(st: Store) -> tuple:
    return st.tensor, st.indices, st.reduce


def _text(st: Store) -> str:
    return f"{st.tensor}[{', '.join(ir.to_str(x) for x in st.indices)}]"
