"""A GPU schedule written as steps: every statement's parallel loops bound to blocks and threads.

For each statement, in program order (its loops outermost first):

1. its parallel loops: those `Schedule.parallel` accepts (they carry no dependence);
2. the innermost parallel loop `x` is tiled by `threads_x` and the next parallel loop out `y` by
   `threads_y` (when > 1): the point loops go to `threadIdx.x` / `threadIdx.y`, the tile loops
   to `blockIdx.x` / `blockIdx.y`, and the innermost remaining parallel loop outside them to
   `blockIdx.z`. Loops that carry a dependence stay where they are: outside the launch (a host
   loop: the time loop of a stencil) or inside each thread (a reduction's loop);
3. a contraction `C[.., i, j] += A[.., i, k] * B[.., k, j]` with a 2-D thread tile walks k in
   steps of `depth`:
   - where the target multiplies tiles (`dot_types`: Triton's `tl.dot`) and `dot` is set,
     inside each thread, one `dot` per step (C's element stays in a register across the steps);
   - else, with `stage` set and shared memory to stage into (cuda), before each step the tiles
     of A and B it reads are copied to shared memory (`cache_read` at the first point loop) by
     all threads of the block.

Each statement's steps are kept only if `Schedule.apply` accepts them, so the result is legal by
construction; a statement with no parallel loop runs on one thread (and `render` warns).

Row kernels come first: when the statements can be fused in their outermost loop, none is a
contraction and one of them reduces a row into one element (softmax's `m[i] max= X[i, j]`,
layernorm's mean), all statements are fused into that loop, bound to blockIdx.x (a row per
block), each statement's row dealt round-robin over `threads_x * threads_y` threads
(`interleave`); a row reduction becomes partial results per thread combined across the block
(ir/launches.ThreadReduce):

    for i (blockIdx.x): m[i] = -inf
                        for j_lane (threadIdx.x): for j_round: m[i] max= X[i, 256 j_round + j_lane]
                        for j_lane (threadIdx.x): for j_round: e[i, ..] = exp(X[i, ..] - m[i])
                        ...

    C[i, j] += A[i, k] * B[k, j], threads 16 x 8:
        for i_o (blockIdx.y): for j_o (blockIdx.x): for i (threadIdx.y): for j (threadIdx.x):
            for k: C[i, j] += A[i, k] * B[k, j]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from loopweave.errors import ScheduleError
from loopweave.ir import expr as ir
from loopweave.ir.codegen import loop_ast
from loopweave.ir.kernel import KernelIR, Statement
from loopweave.ir.launches import lower_launches
from loopweave.passes import placement as pl
from loopweave.passes.gpu_online import online_gpu_schedule
from loopweave.passes.legality import REDUCTIONS
from loopweave.passes.patterns import Contraction, match_contraction
from loopweave.passes.schedule import Schedule, target_statements
from loopweave.targets import GpuFacts


@dataclass(frozen=True)
class GpuTiles:
    """The knobs of the GPU schedule (the tuner's space sweeps them)."""

    threads_x: int = 32  # points of the innermost parallel loop per block
    threads_y: int = 8  # of the next parallel loop out (1: a 1-D block)
    stage: bool = False  # contractions: operand tiles staged in shared memory
    depth: int = 16  # contractions: the k step when staging or multiplying tiles
    dot: bool = True  # contractions: tiles multiplied as matrices where the target can
    micro: int = 1  # staged contractions: each thread's outputs, micro x micro (registers)


#: Contractions on a target with shared memory and no `dot` (CUDA), as its planner tiles them:
#: 64 x 64 outputs per block of 16 x 16 threads, 4 x 4 per thread, k steps of 16 staged.
STAGED_TILES = GpuTiles(threads_x=16, threads_y=16, stage=True, depth=16, dot=False, micro=4)


def gpu_schedule(kernel: KernelIR, tiles: GpuTiles, facts: GpuFacts) -> Schedule:
    """A legal schedule of `kernel` that binds each statement's parallel loops (see above), for
    a target that can do what `facts` say (loopweave.targets.GPU_FACTS)."""
    shared_limit = facts.shared_bytes
    if shared_limit is None:
        tiles = replace(tiles, stage=False)
    placements = pl.initial_placements(kernel)
    rows = row_schedule(kernel, placements, tiles, facts)
    if rows is not None:
        return rows
    schedule = Schedule()
    bound: set[str] = set()
    inits, epilogues = _init_twins(kernel, placements), _epilogues(kernel, placements)
    twins = {*inits.values(), *epilogues.values()}
    for s in (*(t for t in kernel.statements if t.name not in twins),
              *(t for t in kernel.statements if t.name in twins)):
        if s.name in bound:
            continue
        for group in _groups(kernel, placements, s, bound):
            steps = _binding(kernel, schedule, s, group, placements[s.name].names(), tiles,
                             facts)
            for twin, before in ((inits.get(s.name), True), (epilogues.get(s.name), False)):
                if steps is not None and twin is not None and twin not in bound:
                    fused = _with_twin(steps, twin, s.name, placements, before)
                    if _accepts(kernel, schedule, fused, facts):
                        steps, group = fused, [*group, twin]
            if steps is not None:
                schedule.steps += steps.steps
                bound.update(group)
                break
        else:
            steps = _full_reduction_steps(s, placements[s.name].names(), tiles)
            if steps is not None and _accepts(kernel, schedule, steps, facts):
                schedule.steps += steps.steps
                bound.add(s.name)
    return schedule


def _init_twins(kernel: KernelIR, placements) -> dict[str, str]:
    """{contraction: the statement just before it that initialises its element} (matmul's
    `C[i, j] = 0` in front of `C[i, j] += A[i, k] * B[k, j]`): they share a launch, so the
    element is set in the accumulator and stored once."""
    twins = {}
    for before, s in zip(kernel.statements, kernel.statements[1:], strict=False):
        if before.is_init and before.lhs == s.lhs and match_contraction(
                s, placements[s.name].names()):
            twins[s.name] = before.name
    return twins


def _epilogues(kernel: KernelIR, placements) -> dict[str, str]:
    """{contraction: the statement just after it that uses its result element by element}
    (linear's `Y[i, j] = f16(acc[i, j] + b[j])`, requantization): in the same tiles and
    launch, the result is read back where it was just written."""
    twins = {}
    for s, after in zip(kernel.statements, kernel.statements[1:], strict=False):
        c = match_contraction(s, placements[s.name].names())
        uses = [ld for ld in ir.loads(after.rhs) if ld.tensor == s.lhs.tensor]
        if c is not None and after.op == "=" and not after.is_init and uses and all(
                ld == s.lhs for ld in uses) and placements[after.name].names() == [
                v for v in placements[s.name].names() if v != c.k]:
            twins[s.name] = after.name
    return twins


def _with_twin(steps: Schedule, twin: str, name: str, placements, before: bool) -> Schedule:
    """`steps` of the contraction `name` with `twin` (its initialisation just `before` it, or
    its epilogue just after) given the same tiles: each tile, interleave and reorder step of
    the contraction also applied to `twin` for the loops it has, the two fused in the outer
    loops their orders share, each bind applied to both where `twin` has the loop (the
    caches, the dot and the other binds stay the contraction's)."""
    names = list(placements[twin].names())
    out = Schedule()
    order: list[str] = []
    for st in steps.steps:
        mirrored = st.target == name  # the contraction's own tiles (not an earlier twin's)
        if st.op == "tile" and mirrored:
            sizes = {v: n for v, n in st.args if v in names}
            if sizes:
                out.tile(twin, **sizes)
                first = min(names.index(v) for v in sizes)
                names[first:first] = [f"{v}_o" for v in names if v in sizes]
        elif st.op == "interleave" and mirrored and st.args[0] in names:
            v = st.args[0]
            out.interleave(twin, v, st.args[1])
            names[names.index(v):names.index(v) + 1] = [f"{v}_lane", f"{v}_round"]
        elif st.op == "reorder" and mirrored:
            mine = [v for v in st.args if v in names]
            out.reorder(twin, *mine)
            names = [*mine, *(v for v in names if v not in mine)]
            order = list(st.args)
        both = f"{twin},{st.target}" if before else f"{st.target},{twin}"
        out.steps.append(replace(st, target=both) if st.op == "bind" and st.args[0] in names
                         else st)
        if st.op == "reorder" and mirrored:
            depth = 0
            while depth < min(len(order), len(names)) and order[depth] == names[depth]:
                depth += 1
            if depth:
                out.fuse(*((twin, name) if before else (name, twin)), depth=depth)
    return out


def _full_reduction_steps(s: Statement, loops: list[str], tiles: GpuTiles) -> Schedule | None:
    """A reduction of one loop into one element (`s[] += x[i]`, no parallel loop): its loop
    dealt over the threads of one block, which combine their partial results
    (ir/launches.ThreadReduce). None for any other statement."""
    if len(loops) != 1 or s.is_init or s.op not in REDUCTIONS or not _reassociable(s) or any(
            ir.variables(x) for x in s.lhs.indices):
        return None
    lanes = max(32, min(1024, tiles.threads_x * tiles.threads_y))
    return Schedule().reassociate(s.name).interleave(s.name, loops[0], lanes).bind(
        s.name, f"{loops[0]}_lane", "threadIdx.x")


def default_gpu_schedule(kernel: KernelIR, facts: GpuFacts,
                         sizes: Mapping[str, int] | None = None) -> Schedule | None:
    """The schedule `compile()` uses on a GPU target without one, where the steps reproduce the
    planner's plan: a row kernel, element-wise statements, or contractions on a target that
    multiplies tiles (Triton: `dot` tiles of `facts.dot_tile`, the initialisation in the
    accumulator; CUDA: WMMA on the arch's `dot_types`, f16 from sm_70, int8 from sm_72, bf16
    from sm_80, with f32/i32 sums, tiles staged in shared memory), every statement bound to
    the GPU. None (the planner decides) where some statement would run on one thread, for
    int8 and f16 contractions that CUDA's tensor cores cannot take (an arch without the type,
    an f16 or i16 accumulator: the planner's dp4a and half2), and for other contractions next
    to row reductions. Attention gets FlashAttention-2 as steps on its online-softmax rewrite
    (passes/gpu_online.py, `_online`), or the planner where the rewrite does not apply.
    `sizes`: tile sizes by loop name that replace the default dot tile of the contraction's
    rows, columns and k (Triton's `block` option); a kernel without a contraction gets the
    planner when there are any."""
    placements = pl.initial_placements(kernel)
    sizes = dict(sizes or {})
    contractions = [s for s in kernel.statements
                    if match_contraction(s, placements[s.name].names())]
    tiles = GpuTiles()
    if contractions:  # attention: FlashAttention-2 (passes/gpu_online)
        online = _online(kernel, facts, sizes)
        if online is not None:
            return online
    if contractions:
        rows = [s for s in kernel.statements
                if s not in contractions and _reduces_a_row(s, placements[s.name].names())]
        if rows:
            return None
        c = match_contraction(contractions[0], placements[contractions[0].name].names())
        if facts.dot_types and (facts.shared_bytes is None or all(
                _tensor_cores_take(s, match_contraction(s, placements[s.name].names()), facts)
                for s in contractions)):
            rows_, cols, depth = facts.dot_tile
            tiles = GpuTiles(threads_x=sizes.get(c.j, cols), threads_y=sizes.get(c.i, rows_),
                             depth=max(facts.dot_min, sizes.get(c.k, depth)), dot=True)
        elif facts.shared_bytes is not None and all(
                _dot_types(match_contraction(s, placements[s.name].names())) <= {"f32", "f64"}
                for s in contractions):
            tiles = STAGED_TILES
        else:
            return None  # int8 and f16 contractions: the planner's dp4a and half2
    elif sizes:
        return None
    schedule = gpu_schedule(kernel, tiles, facts)
    bound = {s.name for step in schedule.steps if step.op == "bind"
             for s in target_statements(kernel, step.target)}
    loopless = {s.name for s in kernel.statements if not placements[s.name].loops}
    if bound | loopless != {s.name for s in kernel.statements}:
        return None
    if contractions and _one_block_strides(kernel, schedule, facts):
        return None  # a triangle (syrk): the planners launch its tiles as a full grid
    return schedule


#: FlashAttention-2's tiles on a target with shared memory and no `dot` for the kernel's types
#: (CUDA): 16 query rows a block on threadIdx.y, key blocks and value tiles of 32 on
#: threadIdx.x (512 threads), k steps of 32; staged Q, K and V tiles take 10 KiB of shared
#: memory, the block's scores, exponentials and row statistics 4.25 KiB.
ONLINE_TILES = {"rows": 16, "block": 32, "cols": 32, "depth": 32}


def _online(kernel: KernelIR, facts: GpuFacts, sizes: dict[str, int]) -> Schedule | None:
    """FlashAttention-2 as steps (passes/gpu_online) where the kernel has a max-exp-sum chain
    and the steps lower on the target: on Triton with `tl.dot` for both products; on CUDA
    with plain loops inside the threads over operand tiles staged in shared memory (its
    tensor cores would need the products' accumulators as WMMA fragments, which the steps do
    not write yet)."""
    if facts.shared_bytes is None:
        if not facts.dot_types:
            return None
        online = online_gpu_schedule(kernel, sizes=sizes)
    else:
        online = online_gpu_schedule(kernel, dot=False, stage=True, sizes=sizes,
                                     **ONLINE_TILES)
    return online if online is not None and _lowers(kernel, online, facts) else None


def _one_block_strides(kernel: KernelIR, schedule: Schedule, facts: GpuFacts) -> bool:
    """Does a launch of `schedule` have a block loop whose bounds depend on another block
    loop (a triangle of tiles), which one block then strides over alone?"""
    program = lower_launches(loop_ast(schedule.apply(kernel)), kernel.name, facts.shared_bytes,
                             thread_limit(facts, schedule))
    for launch in program.launches:
        names = {b.var for b in launch.blocks}
        if any((ir.variables(b.init) | ir.variables(b.cond)) & (names - {b.var})
               for b in launch.blocks):
            return True
    return False


def row_schedule(kernel: KernelIR, placements, tiles: GpuTiles,
                 facts: GpuFacts) -> Schedule | None:
    """The row kernel of the module docstring, or None where it does not apply or is refused."""
    stmts = kernel.statements
    if not stmts or any(not placements[s.name].loops for s in stmts):
        return None
    if not any(_reduces_a_row(s, placements[s.name].names()) for s in stmts) or any(
            match_contraction(s, placements[s.name].names()) for s in stmts):
        return None  # a contraction's tiles (dot, staging) are the statement steps' job
    lanes = max(32, min(1024, tiles.threads_x * tiles.threads_y))
    steps = Schedule()
    if len(stmts) > 1:
        steps.fuse(*(s.name for s in stmts), depth=1)
    for s in stmts:
        loops = placements[s.name].names()
        steps.bind(s.name, loops[0], "blockIdx.x")
        steps.steps += _row_steps(s, loops, lanes).steps
    return steps if _accepts(kernel, Schedule(), steps, facts) else None


def _reduces_a_row(s: Statement, loops: list[str]) -> bool:
    """Does `s` reduce over every loop inside its outermost one (into one element per row)?"""
    if s.is_init or s.op not in REDUCTIONS or len(loops) < 2:
        return False
    indexed = set().union(*(ir.variables(x) for x in s.lhs.indices))
    return not indexed & set(loops[1:])


def _row_steps(s: Statement, loops: list[str], lanes: int) -> Schedule:
    """The steps of one statement inside its row: its innermost loop that writes distinct
    elements, or else its one reduction loop, dealt over the block's threads."""
    steps = Schedule()
    inner = loops[1:]
    indexed = set().union(*(ir.variables(x) for x in s.lhs.indices))
    spread = [v for v in inner if v in indexed]
    if spread:
        v = spread[-1]
    elif len(inner) == 1 and _reduces_a_row(s, loops) and _reassociable(s):
        v = inner[0]
        steps.reassociate(s.name)
    else:
        return steps  # block-level work: one thread of the block runs it
    steps.interleave(s.name, v, lanes)
    rest = [w for w in inner if w != v]
    if rest and inner[0] != v:
        steps.reorder(s.name, f"{v}_lane", *rest, f"{v}_round")
    return steps.bind(s.name, f"{v}_lane", "threadIdx.x")


def _reassociable(s: Statement) -> bool:
    """May `s`'s terms be combined in any order (it reads nothing of what it reduces into)?"""
    return all(load.tensor != s.lhs.tensor for load in ir.loads(s.rhs))


def _groups(kernel: KernelIR, placements, s: Statement, bound: set[str]):
    """`[s]`, then s with the statements not yet `bound` that share its outermost loop (trmm's
    update and scaling in one `for j`: binding one alone would split the loop they share)."""
    yield [s.name]
    mine = placements[s.name]
    sharing = [t.name for t in kernel.statements if t.name != s.name and t.name not in bound
               and len(placements[t.name].loops) and len(mine.loops)
               and placements[t.name].order[:2] == mine.order[:2]]
    if sharing:
        yield [s.name, *sharing]


def _binding(kernel: KernelIR, schedule: Schedule, s: Statement, group: list[str],
             loops: list[str], tiles: GpuTiles, facts: GpuFacts) -> Schedule | None:
    """The first accepted binding of the statements `group` (led by `s`, whose loops are
    `loops`): parallel loops moved first where the dependences allow it, a 2-D block before
    a 1-D one."""
    target = ",".join(group)
    parallel = [v for v in loops if _applies(kernel, schedule, Schedule().parallel(target, v))]
    hoisted = parallel + [v for v in loops if v not in parallel]
    for order in dict.fromkeys((tuple(hoisted), tuple(loops))):
        for two_d in (True, False):
            steps = statement_steps(s, list(order), parallel, tiles, two_d, facts, target)
            if order != tuple(loops) and steps is not None:
                steps = Schedule([*Schedule().reorder(target, *order).steps, *steps.steps])
            if steps is not None and _accepts(kernel, schedule, steps, facts):
                return steps
    return None


def statement_steps(s: Statement, loops: list[str], parallel: list[str], tiles: GpuTiles,
                    two_d: bool, facts: GpuFacts, target: str | None = None) -> Schedule | None:
    """The binding steps of one statement whose loops (outer first) are `loops`, of which
    `parallel` carry no dependence; None if it has no parallel loop. A 2-D block (`two_d`)
    needs the loop just outside the innermost parallel one to be parallel too; a `dot` needs
    the operands' types among `facts.dot_types` and tiles of at least `facts.dot_min` on each
    side. `target`: the
    statements the steps name (default `s` alone; contractions are matched only then)."""
    target = target or s.name
    if not parallel:
        return None
    steps = Schedule()
    x = parallel[-1]
    outside = loops[loops.index(x) - 1] if loops.index(x) > 0 else None
    y = outside if two_d and tiles.threads_y > 1 and outside in parallel else None
    if two_d and y is None:
        return None
    sizes = {x: tiles.threads_x} | ({y: tiles.threads_y} if y else {})
    contraction = match_contraction(s, loops) if y and target == s.name else None
    if contraction is not None and {contraction.i, contraction.j} != {x, y}:
        contraction = None
    dot = contraction is not None and tiles.dot and _dot_types(contraction) <= set(
        facts.dot_types) and min(tiles.threads_x, tiles.threads_y, tiles.depth) >= facts.dot_min
    if dot and facts.dot_fragment is not None:  # CUDA's WMMA: whole fragments, f32/i32 sums
        dot = _tensor_cores_take(s, contraction, facts) and all(
            n % f == 0 for n, f in zip((tiles.threads_y, tiles.threads_x, tiles.depth),
                                       facts.dot_fragment, strict=True))
    staged = tiles.stage and contraction is not None and not dot
    first = min(loops.index(v) for v in sizes)
    outer = loops[:first]
    if staged and tiles.micro > 1:
        z = outer[-1] if outer and outer[-1] in parallel else None
        return _register_tiles(target, contraction, outer, x, y, z, tiles)
    if staged or dot:
        sizes[contraction.k] = tiles.depth
    steps.tile(target, **sizes)
    if dot and facts.shared_bytes is not None:
        return _wmma_tiles(steps, target, contraction, outer, x, y, parallel)
    if staged:
        steps.reorder(target, *outer, f"{y}_o", f"{x}_o", f"{contraction.k}_o", y, x,
                      contraction.k)
    elif dot:  # the k steps inside the threads: C's element stays in a register
        steps.reorder(target, *outer, f"{y}_o", f"{x}_o", y, x, f"{contraction.k}_o",
                      contraction.k)
        steps.dot(target, contraction.k)
    steps.bind(target, f"{x}_o", "blockIdx.x").bind(target, x, "threadIdx.x")
    if y:
        steps.bind(target, f"{y}_o", "blockIdx.y").bind(target, y, "threadIdx.y")
    if outer and outer[-1] in parallel:  # directly outside the tiles: the third grid axis
        steps.bind(target, outer[-1], "blockIdx.z")
    if staged:
        steps.cache_read(target, contraction.a.tensor, y)
        steps.cache_read(target, contraction.b.tensor, y)
    return steps


def _wmma_tiles(steps: Schedule, target: str, c: Contraction, outer: list[str], x: str, y: str,
                parallel: list[str]) -> Schedule:
    """A contraction on tensor cores with shared memory (CUDA's WMMA, backends/cuda_wmma.py):
    the k steps at block level, the A and B tiles of each step staged in shared memory, the
    output tile kept across the steps (`cache_write`), and the tile's points on threadIdx.y
    (rows) and threadIdx.x (columns) as the lanes of the `dot`, which the block's warps run
    as 16 x 16 x 16 fragment products. int8 tiles are staged k-fastest (`layout`), as WMMA
    wants 32-byte aligned fragments:

        for y_o (blockIdx.y), x_o (blockIdx.x): [C tile]
          for k_o: [A, B tiles: shared]  for y (threadIdx.y), x (threadIdx.x): for k (dot): ..."""
    k = c.k
    steps.reorder(target, *outer, f"{y}_o", f"{x}_o", f"{k}_o", y, x, k)
    steps.dot(target, k)
    steps.bind(target, f"{x}_o", "blockIdx.x").bind(target, x, "threadIdx.x")
    steps.bind(target, f"{y}_o", "blockIdx.y").bind(target, y, "threadIdx.y")
    if outer and outer[-1] in parallel:  # directly outside the tiles (a batch): blockIdx.z
        steps.bind(target, outer[-1], "blockIdx.z")
    steps.cache_write(target, f"{k}_o")
    narrow = _dot_types(c) <= {"i8", "u8"}
    for load, k_first in ((c.a, c.a_transposed), (c.b, not c.b_transposed)):
        tensor = (load.operand if isinstance(load, ir.Cast) else load).tensor
        if narrow and k_first and len(load.indices if isinstance(load, ir.Load)
                                      else load.operand.indices) == 2:
            steps.cache_read(target, tensor, y, layout=(1, 0))
        else:
            steps.cache_read(target, tensor, y)
    return steps


def _register_tiles(target: str, c: Contraction, outer: list[str], x: str, y: str,
                    z: str | None, tiles: GpuTiles) -> Schedule:
    """A contraction as the blocks of threads of CUDA's classic GEMM: a tile of
    (threads * micro)^2 outputs per block, its operands' k slices staged in shared memory by
    all threads, each thread's micro x micro outputs (every threads-th row and column, so that
    neighbouring threads read neighbouring elements) kept across the k steps in a tile that
    ir/fragments puts in its registers:

        for y_o (blockIdx.y), x_o (blockIdx.x): [C tile]
          for k_o: [A, B slices: shared]  for y_lane (threadIdx.y), x_lane (threadIdx.x):
            for k, y_round, x_round: C[y_o, x_o][y_lane + T y_round, x_lane + T x_round] += ..."""
    k = c.k
    steps = Schedule().tile(target, **{x: tiles.threads_x * tiles.micro,
                                       y: tiles.threads_y * tiles.micro, k: tiles.depth})
    steps.interleave(target, y, tiles.threads_y).interleave(target, x, tiles.threads_x)
    steps.reorder(target, *outer, f"{y}_o", f"{x}_o", f"{k}_o", f"{y}_lane", f"{x}_lane", k,
                  f"{y}_round", f"{x}_round")
    steps.bind(target, f"{x}_o", "blockIdx.x").bind(target, f"{x}_lane", "threadIdx.x")
    steps.bind(target, f"{y}_o", "blockIdx.y").bind(target, f"{y}_lane", "threadIdx.y")
    if z is not None:  # directly outside the tiles (a batch): the third grid axis
        steps.bind(target, z, "blockIdx.z")
    steps.cache_write(target, f"{k}_o")
    steps.cache_read(target, c.a.tensor, f"{y}_lane")
    return steps.cache_read(target, c.b.tensor, f"{y}_lane")


def thread_limit(facts: GpuFacts, schedule: Schedule) -> int:
    """The threadIdx points a block of `schedule` may have: a target's `dot_lanes` where the
    schedule has a dot (its renderer runs the dot's lanes by warps), else `block_threads`."""
    if facts.dot_lanes and any(step.op == "dot" for step in schedule.steps):
        return facts.dot_lanes
    return facts.block_threads


def _tensor_cores_take(s: Statement, c: Contraction, facts: GpuFacts) -> bool:
    """Can the target's dot multiply `s`'s tiles: operand types among `dot_types` and, where it
    multiplies fragments (CUDA's WMMA), an f32 or i32 accumulator?"""
    return _dot_types(c) <= set(facts.dot_types) and (
        facts.dot_fragment is None or s.lhs.dtype.name in ("f32", "i32"))


def _dot_types(c: Contraction) -> set[str]:
    """The storage types of a contraction's operands (under their widening casts)."""
    return {(x.operand if isinstance(x, ir.Cast) else x).dtype.name for x in (c.a, c.b)}


def _lowers(kernel: KernelIR, schedule: Schedule, facts: GpuFacts) -> bool:
    """Does `schedule` apply to `kernel` and lower to launches on a target like `facts`?"""
    try:
        lower_launches(loop_ast(schedule.apply(kernel)), kernel.name, facts.shared_bytes,
                       thread_limit(facts, schedule))
    except ScheduleError:
        return False
    return True


def _applies(kernel: KernelIR, schedule: Schedule, more: Schedule) -> bool:
    try:
        Schedule(schedule.steps + more.steps).apply(kernel)
    except ScheduleError:
        return False
    return True


def _accepts(kernel: KernelIR, schedule: Schedule, more: Schedule, facts: GpuFacts) -> bool:
    """Do the steps apply, and can the result run as launches (ir/launches) on a target that
    can do what `facts` say?"""
    try:
        steps = Schedule(schedule.steps + more.steps)
        lower_launches(loop_ast(steps.apply(kernel)), kernel.name, facts.shared_bytes,
                       thread_limit(facts, steps))
    except ScheduleError:
        return False
    return True
