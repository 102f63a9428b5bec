"""Normalization: the B operand of a contraction is copied once, before the loops, into the
[k, j] layout a register tile reads, where packing it in the loops cannot serve:

- an input read transposed by a contraction inside a DSL `for` loop, so that each step reads it
  untransposed:

    for t in 0:T {                                    S4_transpose: W_hh_t[j, g] = W_hh[g, j]
        z[b, g] += h[b, j] * W_hh[g, j]       ->      for t in 0:T {
        ...                                               z[b, g] += h[b, j] * W_hh_t[j, g]

  A step's contraction gets a register tile whose vectors run along B's rows (j here), which
  needs B[k, j]; packing B[j, k] into that layout in the loop would copy B in every step (an
  LSTM's W_hh, 1 MB, 64 times), where the copy before the loop costs one pass per call
  (`passes/default.step_contraction_steps`);
- an input that is both operands (syrk's `C[i, j] += A[i, k] * A[j, k]`, a product with its
  own transpose): packing copies every access of a tensor in the loop, and A's rows of the
  register tile and its columns of the packed panel are two footprints that make no box
  (passes/cache.py). The copy, `A_t[k, j] = A[j, k]`, leaves A to the rows alone.

Only an input no statement writes, indexed by the contraction's own two variables (B[j, k] or
B[k, j], no batch or enclosing-loop index), and an f32 or f64 statement; reads of B elsewhere
stay. The copy covers the elements the statement reads (its domain projected on j, k), so a
`for` loop that runs no step copies nothing.

This adds a statement and a temporary, so, like `passes/normalize.py`, it runs only where no
schedule names statements. Existing statements keep their names.
"""

from __future__ import annotations

from dataclasses import replace

import islpy as isl

from loopweave.ir import expr as ir
from loopweave.ir import isl_helpers
from loopweave.ir.kernel import KernelIR, Statement, Tensor
from loopweave.passes import placement as pl
from loopweave.passes.patterns import match_contraction


def hoist_transposed_operands(kernel: KernelIR) -> KernelIR:
    """`kernel` with each loop-invariant transposed B of a contraction in a `for` loop, and
    each B that is also the contraction's A, read from a copy in [k, j] layout made before the
    loops (module docstring); the same object when there is none."""
    written = {s.lhs.tensor for s in kernel.statements}
    statements, temporaries = list(kernel.statements), list(kernel.temporaries)
    placements = pl.initial_placements(kernel)
    copies: dict[tuple[str, bool], str] = {}  # (B, read transposed) -> its copy
    for s in kernel.statements:
        found = _operand_to_copy(kernel, s, written)
        if found is None:
            continue
        load, j, k, transposed = found
        source = kernel.tensors[load.tensor]
        if (source.name, transposed) not in copies:
            taken = set(kernel.tensors) | {t.name for t in temporaries}
            # Rows a line longer: an LSTM's 4H-long rows, 4 KiB, put every row of the
            # tile's column strip in the same L1 sets (5% of the whole kernel, H=256).
            shape = (source.shape[1], source.shape[0]) if transposed else source.shape
            copy = Tensor(pl.fresh_name(f"{source.name}_t" if transposed else
                                        f"{source.name}_copy", taken), source.dtype,
                          pl.line_padded(shape, source.dtype), "temp")
            temporaries.append(copy)
            copies[source.name, transposed] = copy.name
            transpose = _copy_statement(kernel, s, load, copy.name, j, k,
                                        {t.name for t in statements})
            pl.insert_before(placements, s.name, [transpose])
            first = next(n for n, t in enumerate(statements)
                         if placements[t.name].order[0] == placements[transpose.name].order[0] + 1)
            statements.insert(first, transpose)
        indices = (load.indices[1], load.indices[0]) if transposed else load.indices
        flipped = ir.Load(copies[source.name, transposed], indices, load.dtype)
        index = statements.index(s)
        statements[index] = replace(s, rhs=ir.rewrite(s.rhs, lambda e, old=load, new=flipped:
                                                      new if e == old else None))
    if not copies:
        return kernel
    result = replace(kernel, statements=tuple(statements), temporaries=tuple(temporaries))
    return result.with_schedule(pl.build_tree(result, placements))


def _operand_to_copy(kernel: KernelIR, s: Statement, written: set[str]
                     ) -> tuple[ir.Load, str, str, bool] | None:
    """(B's load, j, k, whether B is read transposed) where `s` is a contraction
    `C[.., i, j] += A * B` whose 2-D B is A's tensor too, written (if at all) before the loop
    of `s`; or an input no statement writes, read transposed inside a `for` loop; or the
    tensor `s` updates, read only where no write has reached yet; else None."""
    if not s.lhs.dtype.is_float or s.lhs.dtype.is_storage_only:
        return None
    c = match_contraction(s)
    if c is None or c.widening:
        return None
    names = [x.name if isinstance(x, ir.Var) else None for x in c.b.indices]
    if names != ([c.j, c.k] if c.b_transposed else [c.k, c.j]):
        return None
    if c.b.tensor == s.lhs.tensor:
        return (c.b, c.j, c.k, c.b_transposed) if _reads_entry_values(kernel, s, c.b) else None
    if c.a.tensor == c.b.tensor and _written_before(kernel, s, c.b.tensor):
        return c.b, c.j, c.k, c.b_transposed
    if c.b.tensor in written or kernel.tensors[c.b.tensor].role != "in":
        return None
    if s.enclosing == 0 or not c.b_transposed or \
            c.j in s.iterators[:s.enclosing] or c.k in s.iterators[:s.enclosing]:
        return None
    return c.b, c.j, c.k, True


def _written_before(kernel: KernelIR, s: Statement, tensor: str) -> bool:
    """Whether every statement that writes `tensor` runs before the top-level loop of `s`
    (covariance's centred data `d`, read as `d[k, i] * d[k, j]`), so that a copy made right
    before that loop holds what `s` reads."""
    order = {name: p.order[0] for name, p in pl.initial_placements(kernel).items()}
    return all(order[w.name] < order[s.name] for w in kernel.statements
               if w.lhs.tensor == tensor)


def _reads_entry_values(kernel: KernelIR, s: Statement, load: ir.Load) -> bool:
    """Whether every element `s` reads through `load` still holds its value from the kernel's
    start: no write of it by any statement comes before the read in program order (trmm's
    `B[i, j] += A[k, i] * B[k, j]` over k > i reads rows that later rows' steps update)."""
    shape = kernel.tensors[load.tensor].shape
    reads = s.access_map(kernel.params, load, shape)
    times = {m.get_tuple_name(isl.dim_type.in_): m for m in isl_helpers.maps_of(
        kernel.schedule.get_map().intersect_params(kernel.context))}
    for w in kernel.statements:
        if w.lhs.tensor != load.tensor:
            continue
        meets = w.access_map(kernel.params, w.lhs).apply_range(reads.reverse())
        if not meets.intersect(times[w.name].lex_lt_map(times[s.name])).is_empty():
            return False
    return True


def _copy_statement(kernel: KernelIR, s: Statement, load: ir.Load, copy: str, j: str, k: str,
                    taken: set[str]) -> Statement:
    """`copy[k, j] = B[j, k]` (or `B[k, j]`) over the (j, k) that `s` reads, outside every
    loop."""
    transposed = load.indices[0] == ir.Var(j)
    name = pl.fresh_name(f"{s.name}_{'transpose' if transposed else 'copy'}", taken)
    domain = s.domain
    for p in reversed(range(len(s.iterators))):
        if s.iterators[p] not in (j, k):
            domain = domain.project_out(isl.dim_type.set, p, 1)
    iterators = tuple(v for v in s.iterators if v in (j, k))
    lhs = ir.Load(copy, (ir.Var(k), ir.Var(j)), load.dtype)
    return Statement(name, iterators, domain.set_tuple_name(name), lhs, "=", load, s.pos)
