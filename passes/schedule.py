"""A user-facing schedule: a replayable list of steps applied to a kernel's loop placements.

    s = loopweave.Schedule()
    s.tile("C", i=32, j=32)           # every statement writing C: loops i, j in 32x32 tiles
    s.reorder("C", "i_o", "j_o", "i", "k", "j")
    s.parallel("C", "i_o")
    kernel = loopweave.compile(src, schedule=s)

Each statement has a placement (passes/placement.py): its loops from outer to inner, each an
affine function of its iterators (`i_o` = floor(i / 32), `i` itself), and its position among
its siblings. Steps edit placements; `apply()` builds the isl schedule tree from them, checks it
against every dependence, checks that loops marked parallel or vector carry none, and shrinks
temporaries that fusion made local (passes/storage.py). Steps are frozen records;
`to_json()`/`from_json()` round-trip them.

Before `s.tile("C", i=32)` on `C[i, j] += ...`:        after:
    for i: for j: for k: S1                           for i_o: for j: for k: for i: S1
(the point loop `i` keeps its place; reorder to put it elsewhere).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, replace

from loopweave.errors import ScheduleError
from loopweave.ir import data_ranges
from loopweave.ir import expr as ir
from loopweave.ir.kernel import KernelIR, Statement
from loopweave.ir.loops import GPU_AXES
from loopweave.ir.types import DTYPES
from loopweave.passes import cache
from loopweave.passes import placement as pl
from loopweave.passes.index_split import separate
from loopweave.passes.isl_scheduler import isl_schedule
from loopweave.passes.legality import REDUCTIONS, check_dependences, check_loop_kinds
from loopweave.passes.patterns import match_contraction
from loopweave.passes.placement import LOOP_KINDS, Placement
from loopweave.passes.storage import reduce_storage


@dataclass(frozen=True, slots=True)
class Step:
    """One scheduling decision: `op` on the statements that `target` names."""

    op: str  # "tile", "interleave", "reorder", "skew", "fuse", "bind" or one of LOOP_KINDS
    target: str  # a tensor (every statement writing it), a statement "S3", or several, "a,b"
    args: tuple  # tile: ((var, size), ...); reorder: loop names; kinds: (loop name,); ...


#: Steps on a tensor's array, not on statements: their target names a tensor that no
#: statement need write.
ARRAY_STEPS = ("align",)

#: Schedules of a rewritten kernel (passes/gpu_online.OnlineSchedule), by the op of the first
#: step of their JSON, which names the rewrite: `Schedule.from_json` hands such JSON to the
#: class's `from_steps`. Each class registers itself here (it imports this module).
REWRITES: dict[str, type] = {}


class Schedule:
    """Scheduling steps, applied in order by `apply(kernel)`."""

    def __init__(self, steps: list[Step] | None = None):
        self.steps: list[Step] = list(steps or [])

    def tile(self, target: str, **sizes: int) -> Schedule:
        """Split each named loop v into v_o = floor(v / size) (placed before the first tiled
        loop) and v (the point loop, which keeps its place)."""
        for var, size in sizes.items():
            _check_positive(f"tile size for {var}", size)
        self.steps.append(Step("tile", target, tuple(sizes.items())))
        return self

    def split(self, target: str, loop: str, factor: int) -> Schedule:
        """`tile` of one loop: `loop` becomes `loop_o` (outer) and `loop` (inner, < factor)."""
        return self.tile(target, **{loop: factor})

    def interleave(self, target: str, loop: str, lanes: int) -> Schedule:
        """Deal the iterations of `loop` round-robin over `lanes`: it becomes `loop_lane`
        (loop mod lanes, constant trip count) with `loop_round` (floor(loop / lanes)) inside.
        Bound to threadIdx.x, `loop_lane` gives each thread every lanes-th iteration, so
        neighbouring threads read neighbouring elements (a reduction over a row on a GPU).

        `s.interleave("S1", "j", 32)` on `s[i] += x[i, j]`:
            for j_lane in 0..31: for j_round: s[i] += x[i, 32 * j_round + j_lane]"""
        _check_positive(f"interleave lanes for {loop}", lanes)
        self.steps.append(Step("interleave", target, (loop, lanes)))
        return self

    def reorder(self, target: str, *loops: str) -> Schedule:
        """Put the named loops in this order, in the positions they occupy now."""
        self.steps.append(Step("reorder", target, loops))
        return self

    def skew(self, target: str, loop: str, by: str, factor: int = 1, offset: int = 0) -> Schedule:
        """Replace `loop` by `loop + factor * by + offset` (a wavefront; then the loops can be
        tiled: time tiling of stencils). `offset` aligns statements inside one time step."""
        for what, v in (("factor", factor), ("offset", offset)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise ScheduleError(f"skew {what} must be an integer, not {v!r}")
        self.steps.append(Step("skew", target, (loop, by, factor, offset)))
        return self

    def shift(self, target: str, loop: str, offset: int) -> Schedule:
        """Replace `loop` by `loop + offset`: the target's statements run `offset` iterations
        later in a loop they share with others (a `skew` by nothing: lu's division of A[i, j]
        at the end of iteration j - 1 of its row update's loop)."""
        return self.skew(target, loop, loop, 0, offset)

    def fuse(self, *targets: str, depth: int = 1) -> Schedule:
        """Run the statements of `targets` inside shared outer loops (their outermost `depth`
        loops, paired by position), in program order inside them."""
        _check_positive("fuse depth", depth)
        wrong = [t for t in targets if not isinstance(t, str)]
        if wrong:
            raise ScheduleError(f"fuse takes statement names, not {wrong[0]!r}; pass the depth "
                                f"by keyword: fuse('S0', 'S1', depth={wrong[0]!r})")
        if len(targets) < 2:
            raise ScheduleError("fuse needs at least two targets")
        self.steps.append(Step("fuse", ",".join(targets), (depth,)))
        return self

    def separate(self, target: str, loop: str, other: str) -> Schedule:
        """Index-set splitting: each statement of `target` becomes the pieces where its loop
        `loop` is less than, equal to and greater than its loop `other` (those that hold
        instances; passes/index_split.separate names them), each with the statement's loops:
        the first in its place, each other in a copy of loop `loop` right after it. The
        dependences stay those of the program. Later steps name the pieces. Blocked
        lu: after `tile(S, i=32, k=32)`, `separate(S, "i_o", "k_o")` gives the rows of the
        pivot block (`S`) and the rows below it (`S_i_o_after`), which then run in parallel."""
        self.steps.append(Step("separate", target, (loop, other)))
        return self

    def order(self, *targets: str) -> Schedule:
        """Run the statements of `targets`, siblings inside the loops they share, in this order
        (they keep their own sibling positions, permuted; other siblings stay where they are).
        Program order otherwise. Exo's `reorder_stmts`: blocked lu's panel before the trailing
        update that program order puts first (different elements, so the dependences allow it)."""
        if len(targets) < 2:
            raise ScheduleError("order needs at least two targets")
        self.steps.append(Step("order", ",".join(targets), tuple(targets)))
        return self

    def distribute(self, target: str, loop: str) -> Schedule:
        """Split `loop` before the statements of `target` (loop fission): they and the
        statements after them in that loop run in a second copy of it (gemm's `C *= beta` and
        `C += alpha * A @ B`, written in one `for i`, become two nests)."""
        self.steps.append(Step("distribute", target, (loop,)))
        return self

    def compute_at(self, producer: str, consumer: str, loop: str) -> Schedule:
        """Compute `producer` inside `consumer`'s loop `loop` (and every loop outside it)."""
        self.steps.append(Step("compute_at", f"{producer},{consumer}", (loop,)))
        return self

    def cache_write(self, target: str, at: str, layout: tuple[int, ...] | None = None
                    ) -> Schedule:
        """Keep the part of `target`'s tensor written inside loop `at` in a local buffer (an
        accumulator tile: registers, once the tile loops inside have constant extents).
        `layout` orders the buffer's dimensions by the tensor's, as in `cache_read` (`(1, 0)`:
        a tile of Y[k, x] accumulates as acc[x][k], vectors along k)."""
        self.steps.append(Step("cache_write", target,
                               (at,) if layout is None else (at, _layout(layout))))
        return self

    def cache_read(self, target: str, tensor: str, at: str,
                   layout: tuple[int, ...] | None = None, panel: int | None = None,
                   dtype: str | None = None) -> Schedule:
        """Copy the part of `tensor` that `target` reads inside loop `at` into a local buffer
        before the loop (packing), and read it from there. `layout` orders the buffer's
        dimensions by the tensor's (`(1, 0)`: the buffer is the transposed tile). `panel`
        cuts the buffer's last dimension into runs of `panel` elements stored one after the
        other, each with every other dimension (BLIS's micro-panels: B[k, j] of a KC x NC
        tile at buf[j // 8][k][j % 8], so that a register tile 8 columns wide reads its B
        contiguously along k). `dtype`: the buffer holds the elements converted to that type,
        once per copy, and the reads that convert them (`f32(B[k, j])` of an f16 B) read
        it instead; `target`'s statements must read `tensor` only so (f16 or bf16 weights
        packed as f32 for the f32 register tile)."""
        if layout is not None:
            layout = _layout(layout)
        if panel is not None and (isinstance(panel, bool) or not isinstance(panel, int)
                                  or panel < 1):
            raise ScheduleError(f"cache_read panel must be a positive integer, not {panel!r}")
        if dtype is not None and dtype not in DTYPES:
            raise ScheduleError(f"cache_read dtype: unknown type {dtype!r}; the types are "
                                f"{', '.join(DTYPES)}")
        args = (tensor, at, layout, panel, dtype)
        while len(args) > 2 and args[-1] is None:  # short records for the plain steps
            args = args[:-1]
        self.steps.append(Step("cache_read", target, args))
        return self

    def reassociate(self, target: str) -> Schedule:
        """Let the reductions of `target` combine their terms in any order, as TVM does: its
        reduction loops may then be interchanged (conv2d's c inside r, s). A float result
        changes by rounding, as a BLAS or numpy's pairwise sum would."""
        self.steps.append(Step("reassociate", target, ()))
        return self

    def parallel(self, target: str, loop: str) -> Schedule:
        """Run the iterations of `loop` in parallel: legal if it carries no dependence, or
        only the chain of a `reassociate`d reduction whose element no loop inside changes
        (each iteration then reduces into a partial result, combined in loop order after)."""
        self.steps.append(Step("parallel", target, (loop,)))
        return self

    def vectorize(self, target: str, loop: str) -> Schedule:
        """Mark `loop` for SIMD execution (legal only if it carries no dependence)."""
        self.steps.append(Step("vector", target, (loop,)))
        return self

    def unroll(self, target: str, loop: str) -> Schedule:
        """Ask the backend to unroll `loop`."""
        self.steps.append(Step("unroll", target, (loop,)))
        return self

    def dot(self, target: str, loop: str) -> Schedule:
        """Sum the products of a contraction `C[.., i, j] += A[.., i, k] * B[.., k, j]` over
        `loop` (its k, tiled to a constant trip count) as one matrix product of the tiles: on
        triton, `tl.dot` of the A tile (the threads' rows by `loop`) and the B tile (`loop` by
        their columns), inside loops bound to threadIdx.y (rows) and threadIdx.x (columns);
        on cuda, the same lanes run by warps as WMMA 16 x 16 x 16 fragment products of the A
        and B tiles staged in shared memory by `cache_read`, the C tile kept across the k steps
        by `cache_write` (backends/cuda_wmma.py: f16 from sm_70, int8 from sm_72, bf16 from
        sm_80; the renderer refuses tiles off the fragment shape or types the arch lacks);
        other targets run `loop` as a plain loop. Legal where `vectorize` would be (it carries
        only the reduction's own chain).

        `s.tile("S1", i=32, j=32, k=16).reorder("S1", "i_o", "j_o", "k_o", "i", "j", "k")`,
        the binds, then `s.dot("S1", "k")`:   acc += tl.dot(A[i, k], B[k, j]) per k_o"""
        self.steps.append(Step("dot", target, (loop,)))
        return self

    def bind(self, target: str, loop: str, axis: str) -> Schedule:
        """Run the iterations of `loop` on a GPU axis (cuda and triton targets): `blockIdx.x|y|z`
        spreads them over the blocks of a launch (Triton: its programs), `threadIdx.x|y|z` over
        the threads of a block (Triton: the lanes of the block's tensors; the loop needs a
        constant trip count, so tile it first). Legal only if `loop` carries no dependence.

        Before `s.tile("C", i=32).bind("C", "i_o", "blockIdx.x").bind("C", "i", "threadIdx.x")`
        on `C[i] = A[i] * 2`:   for i: S          after:   C[32*blockIdx.x + threadIdx.x] = ...
        """
        if axis not in GPU_AXES:
            raise ScheduleError(f"bind {target!r} loop {loop!r}: unknown GPU axis {axis!r}; the "
                                f"axes are {', '.join(GPU_AXES)}")
        self.steps.append(Step("bind", target, (loop, axis)))
        return self

    def align(self, tensor: str) -> Schedule:
        """Run the kernel on the argument `tensor`'s data on a 64-byte line (a cache line):
        where a call's array starts off one, the call copies it into a line-aligned buffer
        (kept per thread), runs on the copy and copies it back where the kernel writes it. A
        vector loop that re-reads rows off a line splits each 64-byte load over two lines
        (lu, cholesky: 1.45-1.6x). Halide's `set_host_alignment` asks the caller for it
        instead; so does `emit_c`'s function, which reads the pointers it is given. Outputs
        and temporaries need no step: loopweave allocates them on lines."""
        self.steps.append(Step("align", tensor, ()))
        return self

    def isl(self, tile: int | None = 32, rows: bool = False) -> Schedule:
        """The whole schedule from isl's own scheduler (passes/isl_scheduler.py), its permutable
        bands tiled by `tile` (None: not tiled); with `rows`, a 3-D stencil's statements keep
        whole innermost rows under tiles of the other loops. A schedule of this one step, so
        that tuning records can hold it."""
        self.steps.append(Step("isl", "*", (tile, rows) if rows else (tile,)))
        return self

    def to_json(self) -> str:
        return json.dumps([{"op": s.op, "target": s.target, "args": list(s.args)}
                           for s in self.steps])

    @classmethod
    def from_json(cls, text: str) -> Schedule:
        """The schedule `to_json` wrote; JSON that starts with a rewrite's step (`REWRITES`)
        is read back by the schedule class of that rewrite."""
        steps = []
        for d in json.loads(text):
            args = tuple(tuple(a) if isinstance(a, list) else a for a in d["args"])
            steps.append(Step(d["op"], d["target"], args))
        rewrite = REWRITES.get(steps[0].op) if steps and cls is Schedule else None
        return rewrite.from_steps(steps) if rewrite is not None else cls(steps)

    def __repr__(self) -> str:
        return f"Schedule({self.to_json()})"

    def placements(self, kernel: KernelIR) -> dict[str, Placement]:
        """Each statement's loops and position after the steps (no legality check)."""
        return self.placed(kernel)[1]

    def placed(self, kernel: KernelIR) -> tuple[KernelIR, dict[str, Placement]]:
        """`kernel` with the pieces of its `separate` steps (the same kernel without such
        steps), and each of its statements' loops and position after the steps (no legality
        check)."""
        placements = pl.initial_placements(kernel)
        for step in self.steps:
            if step.op == "separate":
                names = [s.name for s in target_statements(kernel, step.target)]
                kernel = separate(kernel, placements, names, *step.args)
            else:
                _apply_step(kernel, step, placements)
        return kernel, placements

    def apply(self, kernel: KernelIR) -> KernelIR:
        """`kernel` with this schedule; raises ScheduleError for a malformed or illegal step."""
        aligned = _aligned(kernel, self.steps)
        if any(step.op == "isl" for step in self.steps):
            if len(self.steps) > 1:
                raise ScheduleError("an isl step is a whole schedule: it takes no other steps")
            return isl_schedule(kernel, *self.steps[0].args)
        kernel, placements = self.placed(kernel)
        schedule = pl.build_tree(kernel, placements)
        reassociable = self._reassociable(kernel)
        check_dependences(kernel, schedule, reassociable=reassociable)
        check_loop_kinds(kernel, schedule, placements, reassociable)
        reduced, locals_at = reduce_storage(kernel, placements)
        caches_at, wanted = self._caches(kernel, placements)
        _check_caches_inside_locals(locals_at, caches_at, wanted)
        if locals_at or caches_at:
            schedule = pl.build_tree(reduced, placements, locals_at, caches_at)
        taken = set(reduced.tensors) | set(reduced.params)
        specs = tuple(cache.analyze(reduced, schedule, tag, tensor, copy_out, taken, layout,
                                    panel, dtype)
                      for tag, tensor, copy_out, layout, panel, dtype in wanted)
        # A contraction alone in its three loops, marked `dot`, may run as one GEMM call.
        calls = [s for s in reduced.statements if len(placements[s.name].loops) == 3 and
                 any(lp.kind == "dot" for lp in placements[s.name].loops)]
        folds = tuple(f for f in map(functools.partial(cache.folded_gemm_init, reduced), calls)
                      if f is not None)
        return replace(reduced, schedule=schedule, caches=specs, folded_inits=folds,
                       aligned=aligned)

    def _reassociable(self, kernel: KernelIR) -> frozenset[str]:
        """The statements whose reductions a `reassociate` step frees from their order."""
        names = set()
        for step in self.steps:
            if step.op != "reassociate":
                continue
            for s in target_statements(kernel, step.target):
                if s.is_init:
                    continue
                if s.op not in REDUCTIONS:
                    raise ScheduleError(f"reassociate {step.target!r}: {s.name} (line "
                                        f"{s.pos.line}) is not a reduction")
                if any(load.tensor == s.lhs.tensor for load in ir.loads(s.rhs)):
                    raise ScheduleError(f"reassociate {step.target!r}: {s.name} (line "
                                        f"{s.pos.line}) reads {s.lhs.tensor}, which it "
                                        f"reduces into, so its order matters")
                names.add(s.name)
        return frozenset(names)

    def _caches(self, kernel: KernelIR, placements: dict[str, Placement]):
        """Where each cache step's buffer goes: {loop prefix: [tag]}, and per step (tag,
        tensor, written, layout, panel)."""
        caches_at: dict[tuple[int, ...], list[str]] = {}
        wanted = []
        for step in self.steps:
            if step.op not in ("cache_read", "cache_write"):
                continue
            stmts = target_statements(kernel, step.target)
            if step.op == "cache_read":
                tensor, at, *rest = step.args
                layout, panel, dtype = (list(rest) + [None, None, None])[:3]
                if dtype is not None:
                    _check_converted_reads(stmts, tensor, dtype)
            else:
                (at, *rest), tensor, panel, dtype = step.args, stmts[0].lhs.tensor, None, None
                layout = rest[0] if rest else None
            _check_names_exist(step, [placements[s.name] for s in stmts], [at])
            tag = str(len(wanted))
            prefixes = {placements[s.name].order[:placements[s.name].names().index(at) + 1]
                        for s in stmts if at in placements[s.name].names()}
            for prefix in prefixes:
                caches_at.setdefault(prefix, []).append(tag)
            if len(prefixes) != 1:
                raise ScheduleError(f"{step.op} at {at}: the statements of {step.target!r} are "
                                    f"in {len(prefixes)} different loops {at}; fuse them first")
            wanted.append((tag, tensor, step.op == "cache_write",
                           tuple(layout) if layout is not None else None, panel, dtype))
        return caches_at, wanted


def _check_converted_reads(stmts: list[Statement], tensor: str, dtype: str) -> None:
    """A buffer of `tensor` converted to `dtype` serves only reads that convert so: a
    statement reading `tensor` otherwise would see other values than its own."""
    for s in stmts:
        converted = [e.operand for e in ir.walk(s.rhs) if isinstance(e, ir.Cast)
                     and e.dtype.name == dtype and isinstance(e.operand, ir.Load)]
        if any(ld.tensor == tensor and not any(ld is c for c in converted)
               for ld in ir.loads(s.rhs)):
            raise ScheduleError(f"cache_read of {tensor} as {dtype}: {s.name} (line "
                                f"{s.pos.line}) reads {tensor} without converting it to "
                                f"{dtype}")


def _layout(layout) -> tuple[int, ...]:
    """`layout` as a tuple, checked to be a permutation of 0..n-1."""
    layout = tuple(layout)
    if sorted(layout) != list(range(len(layout))) or not all(
            isinstance(d, int) and not isinstance(d, bool) for d in layout):
        raise ScheduleError(f"a cache layout must be a permutation of 0..n-1, not {layout!r}")
    return layout


def _check_caches_inside_locals(locals_at: dict, caches_at: dict, wanted: list) -> None:
    """A temporary made local to each iteration of a loop (fused producer and consumer) can
    be cached only inside that iteration: a cache around the loop would copy a buffer that
    does not exist there."""
    scope = {name: prefix for prefix, names in locals_at.items() for name in names}
    for prefix, tags in caches_at.items():
        for tag in tags:
            tensor = wanted[int(tag)][1]
            local = scope.get(tensor)
            if local is not None and local[:len(prefix)] == prefix:
                raise ScheduleError(
                    f"cannot cache {tensor} at a loop around the one whose iterations each "
                    f"keep their own {tensor} (its fused producer and consumer made it local "
                    f"there, at loop depth {len(local)}); cache it at a loop inside that one, "
                    f"or do not fuse them")


def argument_tensors(kernel: KernelIR) -> list[str]:
    """The names of the kernel's argument tensors (inputs and inouts), in call order: what
    an `align` step may name."""
    return [a.name for a in kernel.args if a.name in kernel.tensors]


def _aligned(kernel: KernelIR, steps: list[Step]) -> tuple[str, ...]:
    """The tensors of `steps`' `align` steps, each checked to be an argument tensor."""
    arguments = argument_tensors(kernel)
    aligned = []
    for step in steps:
        if step.op != "align":
            continue
        if step.target not in arguments:
            what = "is not a tensor of the kernel" if step.target not in kernel.tensors else \
                "is not an argument (loopweave allocates outputs and temporaries on lines)"
            raise ScheduleError(f"align {step.target!r}: it {what}; the argument tensors are "
                                f"{', '.join(arguments) or 'none'}")
        if step.target not in aligned:
            aligned.append(step.target)
    return tuple(aligned)


def _check_positive(what: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ScheduleError(f"{what} must be a positive integer, not {value!r}")


def target_statements(kernel: KernelIR, target: str) -> list[Statement]:
    """The statements a step's target names: statement names or tensors (every statement
    that writes it), comma-separated. An unknown name is a ScheduleError listing the known."""
    stmts = []
    for name in target.split(","):
        if name in kernel.statement:
            stmts.append(kernel.statement[name])
            continue
        found = [s for s in kernel.statements if s.lhs.tensor == name]
        if not found:
            raise ScheduleError(f"no statement writes {name!r}; name a tensor written by the "
                                f"kernel or a statement ({', '.join(kernel.statement)})")
        stmts += found
    return stmts


def _apply_step(kernel: KernelIR, step: Step, placements: dict[str, Placement]) -> None:
    if step.op in ARRAY_STEPS:
        return  # no loop changes (see `_aligned`)
    stmts = target_statements(kernel, step.target)
    if step.op == "fuse":
        pl.fuse(placements, [s.name for s in stmts], step.args[0])
        return
    if step.op in ("cache_read", "cache_write", "reassociate", "isl"):
        return  # applied after the loops are placed (see Schedule._caches, _reassociable)
    if step.op == "order":
        pl.order(placements, [[s.name for s in target_statements(kernel, t)] for t in step.args])
        return
    if step.op == "distribute":
        (loop,) = step.args
        _check_names_exist(step, [placements[s.name] for s in stmts], [loop])
        for s in stmts:
            if loop in placements[s.name].names():
                pl.distribute(placements, s.name, placements[s.name].names().index(loop))
        return
    if step.op == "compute_at":
        (loop,) = step.args
        consumers = target_statements(kernel, step.target.split(",")[1])
        _check_names_exist(step, [placements[s.name] for s in consumers], [loop])
        depth = 1 + min(placements[s.name].names().index(loop) for s in consumers
                        if loop in placements[s.name].names())
        pl.fuse(placements, [s.name for s in stmts], depth)
        return
    wanted = {"tile": lambda: [a[0] for a in step.args], "skew": lambda: list(step.args[:2]),
              "bind": lambda: [step.args[0]], "interleave": lambda: [step.args[0]]}
    _check_names_exist(step, [placements[s.name] for s in stmts],
                       wanted.get(step.op, lambda: list(step.args))())
    for s in stmts:
        p = placements[s.name]
        for loop in wanted.get(step.op, lambda: list(step.args))():
            data_ranges.check_step(s, step.op, loop)  # a range read from tensors: no tiles
        if step.op == "tile":
            placements[s.name] = pl.tile(p, dict(step.args))
        elif step.op == "reorder":
            placements[s.name] = pl.reorder(p, step.args)
        elif step.op == "interleave":
            placements[s.name] = pl.interleave(p, *step.args)
        elif step.op == "skew":
            placements[s.name] = pl.skew(p, *step.args)
        elif step.op in LOOP_KINDS:
            if step.op == "dot":
                _check_dot(s, step.args[0])
            placements[s.name] = pl.set_kind(p, step.args[0], step.op)
        elif step.op == "bind":
            placements[s.name] = pl.set_kind(p, *step.args)
        else:
            raise ScheduleError(f"unknown schedule step {step.op!r}")
        data_ranges.check_order(s, [(lp.name, lp.expr) for lp in placements[s.name].loops])


def _check_dot(s: Statement, loop: str) -> None:
    found = match_contraction(s)
    if found is None or found.k != loop:
        what = "is not a contraction C[.., i, j] += A[.., i, k] * B[.., k, j]" if found is None \
            else f"reduces over {found.k}, not {loop}"
        raise ScheduleError(f"dot on {s.name} (line {s.pos.line}): the statement {what}")


def _check_names_exist(step: Step, plans: list[Placement], wanted: list[str]) -> None:
    names = {n for p in plans for n in p.names()}
    missing = [n for n in wanted if n not in names]
    if missing:
        raise ScheduleError(f"{step.op} on {step.target!r}: no loop named {missing[0]!r}; "
                            f"its loops are {', '.join(sorted(names))}")


def without_steps_on(kernel: KernelIR, schedule: Schedule, names: set[str]) -> Schedule:
    """A copy of `schedule` without its steps on any statement of `names` (a pass that
    schedules those statements itself starts from the others' steps)."""
    return Schedule([step for step in schedule.steps if step.op in ARRAY_STEPS or not names & {
        s.name for s in target_statements(kernel, step.target)}])


def align_reads(kernel: KernelIR, schedule: Schedule, stmts: tuple[Statement, ...] | list
                ) -> Schedule:
    """`schedule` with an `align` step for each argument tensor that `stmts` read, in order
    of first read: the nests whose vector loops re-read rows of them (Schedule.align)."""
    arguments = set(argument_tensors(kernel))
    read = [load.tensor for s in stmts for load in ir.loads(s.rhs) if load.tensor in arguments]
    for tensor in dict.fromkeys(read):
        schedule.align(tensor)
    return schedule


def try_steps(kernel: KernelIR, schedule: Schedule, steps: list[tuple]) -> bool:
    """Append `steps` ((op, *args[, kwargs]) each: `("tile", "S0", {"i": 32})`) to
    `schedule` if it stays legal on `kernel`; otherwise leave it unchanged."""
    saved = list(schedule.steps)
    try:
        for op, *args in steps:
            kwargs = args.pop() if args and isinstance(args[-1], dict) else {}
            getattr(schedule, op)(*args, **kwargs)
        schedule.apply(kernel)
        return True
    except ScheduleError:
        schedule.steps = saved
        return False
