"""FlashAttention-2 on a GPU target as steps: the online-softmax rewrite (passes/online_softmax),
then a schedule that binds it, one launch with a block of query rows per program:

    for i_o (blockIdx.x):                                    rows i on threadIdx.y (BI of them)
      m = -inf; z = 0; O = 0                                 [i] [i] [i, v]
      for j_o:                                               key blocks of BJ, in order
        s = 0; for d_o: dot d: s += Q[i, d] K[j, d]          [i, j_in]   tl.dot
        m_old = m; for j_in: m max= s; alpha = ...           [i]
        z *= alpha; for v_o: O *= alpha                      [i] [i, v]
        e = exp(c (s - m)); for j_in: z += e                 [i, j_in] [i]
        for v_o: dot j_in: O += e[i, j_in] V[j, v]           [i, v]      tl.dot
      for v_o: O = O / z                                     [i, v]

([..]: the loops bound to threadIdx.y and threadIdx.x.) The value axis v is cut into tiles of BV
(`v_o` runs them in turn) and d into k steps of BD. `OnlineSchedule.apply` rewrites, then
applies the steps, so the steps name the rewritten kernel's statements; each is checked by
`Schedule.apply` like any other (dependences, loop kinds, binds).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace

from loopweave.errors import ScheduleError
from loopweave.ir import expr as ir
from loopweave.ir.kernel import KernelIR, Statement
from loopweave.passes import placement as pl
from loopweave.passes.online_softmax import OnlineRewrite, rewrite_online
from loopweave.passes.patterns import factors as product_factors
from loopweave.passes.schedule import REWRITES, Schedule, Step, target_statements


class OnlineSchedule(Schedule):
    """Steps for the kernel that `rewrite_online(kernel, block)` makes; `apply` rewrites first.
    Its JSON (what a tuning candidate and record hold) starts with the step
    `{"op": "online", "target": "*", "args": [block]}` naming the rewrite; `from_json` reads
    it back (a plain `Schedule.from_json` keeps that step, which names no statement)."""

    def __init__(self, block: int, steps=None):
        super().__init__(steps)
        self.block = block

    def to_json(self) -> str:
        """The rewrite step, then the steps."""
        return json.dumps([{"op": REWRITE_OP, "target": "*", "args": [self.block]},
                           *json.loads(super().to_json())])

    @classmethod
    def from_json(cls, text: str) -> OnlineSchedule:
        """The schedule `to_json` wrote; a ScheduleError for JSON without the rewrite step."""
        steps = [Step(d["op"], d["target"],
                      tuple(tuple(a) if isinstance(a, list) else a for a in d["args"]))
                 for d in json.loads(text)]
        return cls.from_steps(steps)

    @classmethod
    def from_steps(cls, steps: list[Step]) -> OnlineSchedule:
        """The schedule of `steps`, the first of which is the rewrite step of `to_json`."""
        if not steps or steps[0].op != REWRITE_OP or len(steps[0].args) != 1:
            raise ScheduleError(f"an online schedule starts with the step "
                                f"{{'op': '{REWRITE_OP}', 'args': [block]}}")
        _check_positive_block(steps[0].args[0])
        return cls(steps[0].args[0], steps[1:])

    def placed(self, kernel: KernelIR) -> tuple[KernelIR, dict[str, pl.Placement]]:
        """The kernel (with the pieces of `separate` steps) and the steps' placements. A `dot`
        step is checked here against the rewritten contractions, whose k block reads
        `K[block * j_o + j_in, d]` (the shared matcher, passes/patterns, takes plain variables
        only); it places like `vectorize`, which is legal under the same conditions, and then
        marks the loop `dot`."""
        plain = Schedule([replace(st, op="vector") if st.op == "dot" else st
                          for st in self.steps])
        kernel, placements = plain.placed(kernel)
        for st in self.steps:
            if st.op != "dot":
                continue
            for s in target_statements(kernel, st.target):
                found = _dot_loop(s, self.block_loop(kernel))
                if found != st.args[0]:
                    raise ScheduleError(f"dot on {s.name} (line {s.pos.line}): the statement is "
                                        f"no product of two tiles summed over {st.args[0]}")
                placements[s.name] = pl.set_kind(placements[s.name], st.args[0], "dot")
        return kernel, placements

    def block_loop(self, kernel: KernelIR) -> str:
        """The rewritten kernel's loop over blocks (its iterator `j_o`)."""
        return next((s.iterators[0] for s in kernel.statements if s.iterators
                     and s.iterators[0].endswith("_o")), "")

    def apply(self, kernel: KernelIR) -> KernelIR:
        """The rewritten `kernel` under the steps; ScheduleError where the rewrite does not
        apply (the steps name its statements)."""
        found = rewrite_online(kernel, self.block)
        if found is None:
            raise ScheduleError(f"kernel {kernel.name!r} has no max-exp-sum chain that may be "
                                f"computed online (passes/online_softmax.py)")
        return super().apply(found.kernel)


def online_gpu_schedule(kernel: KernelIR, *, rows: int = 64, block: int = 32,
                        cols: int = 64, depth: int = 32, dot: bool = True,
                        stage: bool = False,
                        sizes: Mapping[str, int] | None = None) -> OnlineSchedule | None:
    """The schedule of the module docstring for `kernel` (BI = rows, BJ = block, BV = cols,
    BD = depth; `sizes`, by the kernel's loop names, replace them: Triton's `block` option),
    or None where the rewrite does not apply. Row loops outside the last (batches, heads: at
    most two) go to blockIdx.y and blockIdx.z. Every tile side is at least 16 (tl.dot's
    smallest). Without `dot` (a target whose tiles of these types are no matrix product:
    CUDA's f32) the two products and the row statistics are plain loops inside each thread:
    the scores' k steps and the value product's key block walked by the lane that owns the
    element, the row maximum and sum by the row's thread; with `stage` (a target with shared
    memory), the products' input tiles are staged there for each step by the block's
    threads (`cache_read` at the rows' point loop; the scores' k steps move outside the
    lanes, so that each step's Q and K tiles are copied once for the block):

        for j_o: for d_o: [Q tile, K tile: shared]  for i, j_in: for d: s += Q * K
                 for v_o: [V tile: shared]  for i, v: for j_in: O += e * V"""
    sizes = dict(sizes or {})
    found = rewrite_online(kernel, 64)
    if found is None or len(found.rows) > 3:
        return None
    block = max(MIN_SIDE, sizes.get(found.reduced, block))
    found = rewrite_online(kernel, block)
    steps = _steps(found, max(MIN_SIDE, sizes.get(found.rows[0], rows)), cols, depth, sizes,
                   stage and not dot)
    if steps is None:
        return None
    if not dot:  # the same nest, its dot (and the statistics' block-as-an-axis) loops serial
        steps.steps = [st for st in steps.steps if st.op not in ("dot", "vector")]
    return OnlineSchedule(block, steps.steps)


#: The op of the first step of an OnlineSchedule's JSON: the rewrite, with its block size.
REWRITE_OP = "online"


REWRITES[REWRITE_OP] = OnlineSchedule  # Schedule.from_json reads its JSON back


def _check_positive_block(block) -> None:
    if not isinstance(block, int) or isinstance(block, bool) or block < 1:
        raise ScheduleError(f"an online schedule's block is a positive integer, not {block!r}")


#: tl.dot's smallest tile side (loopweave.targets.GPU_FACTS["triton"].dot_min).
MIN_SIDE = 16


def _steps(r: OnlineRewrite, rows: int, cols: int, depth: int,
           chosen: dict[str, int], stage: bool = False) -> Schedule | None:
    k = r.kernel
    *outer, i = r.rows
    jo, jin = r.block_loop, r.inner
    place = pl.initial_placements(k)
    chain = [*r.before, *r.blocked, *r.after]
    s = Schedule()
    dots: dict[str, str] = {}  # statement -> its dot loop
    for name in chain:
        loops = place[name].names()
        sizes = {i: rows}
        other = [v for v in loops if v not in (*r.rows, jo, jin)]
        dot = _dot_loop(k.statement[name], jo)
        if dot is not None and dot in other:  # the scores: k steps of `depth` for a dot
            sizes[dot] = max(MIN_SIDE, chosen.get(dot, depth))
            dots[name] = dot
            other.remove(dot)
        elif dot is not None and dot == jin:
            dots[name] = jin
        if len(other) > 1:
            return None
        lanes = other[0] if other else (jin if jin in loops and name not in _serial(r) else None)
        if other:
            sizes[other[0]] = max(MIN_SIDE, chosen.get(other[0], cols))
        s.tile(name, **sizes)
        # the rows' tiles outermost: storage reduction declares the temporaries local to
        # the innermost shared loop, which must be a block loop too (one launch grid)
        order = [f"{i}_o", *outer]
        if name in r.blocked:
            order.append(jo)
        if other:
            order.append(f"{other[0]}_o")
        order.append(i)
        if lanes is not None:
            order.append(lanes)
        if name in dots and dots[name] != jin and stage:  # the k steps at block level
            order[order.index(i):order.index(i)] = [f"{dots[name]}_o"]
            order.append(dots[name])
        elif name in dots and dots[name] != jin:
            order += [f"{dots[name]}_o", dots[name]]
        elif jin in loops and jin != lanes:
            order.append(jin)
        s.reorder(name, *order)
        s.bind(name, i, "threadIdx.y")
        if lanes is not None:
            s.bind(name, lanes, "threadIdx.x")
        if name in dots and stage:
            for tensor, transposed in _staged(k, k.statement[name], lanes):
                s.cache_read(name, tensor, i, layout=(1, 0) if transposed else None)
        elif name in dots:
            s.dot(name, dots[name])
        elif jin in loops and jin != lanes:  # a row's maximum or sum: the block as an axis
            s.vectorize(name, jin)
    grid = len(outer) + 1  # the loops every statement of the chain shares: rows' blocks
    s.fuse(*r.blocked, depth=grid + 1)
    for name in r.blocked:
        stmt = k.statement[name]
        if stmt.is_init and name in r.blocked:
            later = r.blocked[r.blocked.index(name) + 1]
            if later in dots and k.statement[later].lhs == stmt.lhs and not stage:
                # the scores start from 0 in the dot's register
                s.fuse(name, later, depth=grid + 3)
    for name in r.blocked:  # a sum's rescaling in the sum's own loops: one read and write
        if name.endswith("_rescale") and name.removesuffix("_rescale") in dots:
            later = name.removesuffix("_rescale")
            s.fuse(name, later, depth=len(place[name].names()) + 2)  # and i_o, v_o
    s.fuse(*chain, depth=grid)
    everything = ",".join(chain)
    for v, axis in zip(reversed(outer), ("blockIdx.y", "blockIdx.z"), strict=False):
        s.bind(everything, v, axis)
    s.bind(everything, f"{i}_o", "blockIdx.x")
    return s


def _dot_loop(s: Statement, block_loop: str) -> str | None:
    """k where `s` is `C[..] += A[.., k ..] * B[.., k ..]` (two loads, times nothing else)
    summed over k alone besides the block loop: a matrix product of tiles; else None."""
    if s.op != "+=":
        return None
    factors = product_factors(s.rhs)
    written = set().union(*(ir.variables(x) for x in s.lhs.indices))
    reduced = set(s.iterators) - written - {block_loop}
    if len(factors) != 2 or len(reduced) != 1 or not all(
            isinstance(f.operand if isinstance(f, ir.Cast) else f, ir.Load) for f in factors):
        return None
    k = reduced.pop()
    return k if all(k in ir.variables(f) for f in factors) else None


def _staged(k: KernelIR, s: Statement, lanes: str | None) -> list[tuple[str, bool]]:
    """The kernel inputs `s` multiplies (a temporary operand, the exponentials, is the
    block's own already: backends/cuda_private), each with whether to stage it transposed:
    a 2-D tile that the column lanes index outside its last dimension (K[j, d] with j on
    threadIdx.x), so that neighbouring lanes read neighbouring words of shared memory."""
    out = []
    for f in product_factors(s.rhs):
        load = f.operand if isinstance(f, ir.Cast) else f
        if not isinstance(load, ir.Load) or k.tensors[load.tensor].role != "in":
            continue
        uses = [lanes is not None and lanes in ir.variables(x) for x in load.indices]
        out.append((load.tensor, len(uses) == 2 and uses[0] and not uses[1]))
    return out


def _serial(r: OnlineRewrite) -> set[str]:
    """The blocked statements that reduce over the block's loop into one element per row
    (the row maximum and sum): each row's lane walks the block in a loop of its own."""
    k = r.kernel
    out = set()
    for n in r.blocked:
        s = k.statement[n]
        written = set().union(*(ir.variables(x) for x in s.lhs.indices))
        if s.op in ("max=", "+=") and r.inner in s.iterators and r.inner not in written:
            out.add(n)
    return out
