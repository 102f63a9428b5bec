"""CUDA tensor cores for a schedule's `dot` loops: WMMA fragments, run by the block's warps.

A `dot` on cuda (`Schedule.dot`, the steps of passes/gpu_default._wmma_tiles) is a nest of
*lanes*: the output tile's rows on threadIdx.y (Ty of them) and columns on threadIdx.x (Tx),
each lane's element kept across the k steps in a register tile (`cache_write`, ir/fragments),
the A and B tiles of each k step staged in shared memory (`cache_read`):

    for k_o:  A_pack, B_pack = tiles (Spread)     for ty < Ty, tx < Tx:  for k (dot):
                                                     acc[..] += A_pack[ty, k] * B_pack[k, tx]

The renderer launches 32 x W threads instead of Ty x Tx: the W warps split the Ty/16 x Tx/16
fragments of the tile, several per warp (`WmmaPlan`), and each k step becomes
`load_matrix_sync` of A and B fragments from shared memory and one `mma_sync` per fragment.
The accumulator fragments live in registers across the k loop; around it they go through a
shared `Ty x Tx` tile (f32 or i32), which is also where every other lane loop of the launch
(the accumulator's fill from C, its write-back, an epilogue) reads and writes the lane's
element: those loops run over the Ty x Tx lanes, strided by the block's threads.

Edge tiles: the staged tiles are filled whole, with zeros outside the operands' ranges, so a
fragment product over a partial tile adds zeros; the write-back's own guards keep the lanes
outside C's ranges from being stored.

Legality (a ScheduleError naming the statement): tile sizes multiples of the 16 x 16 x 16
fragment, operand types among the arch's `dot_types` (loopweave.targets.GpuFacts), both
operands of one type, an f32 (f16, bf16) or i32 (i8, u8) accumulator tile, the operands staged
in shared memory, fragments 32-byte aligned there (int8: tiles staged k-fastest).
"""

from __future__ import annotations

from dataclasses import dataclass

from loopweave.errors import ScheduleError
from loopweave.ir import expr as ir
from loopweave.ir.affine import coefficient, constant_value, simplify
from loopweave.ir.kernel import KernelIR
from loopweave.ir.launch_nodes import Launch, walk_kernel
from loopweave.ir.loops import THREAD_AXES, Block, For, If, Node, Store, walk
from loopweave.targets import GpuFacts

#: WMMA's element types by loopweave type, and the accumulator each sums into.
WMMA_TYPES = {"f16": "__half", "bf16": "__nv_bfloat16", "i8": "signed char",
              "u8": "unsigned char"}
ACCUMULATORS = {"f16": "f32", "bf16": "f32", "i8": "i32", "u8": "i32"}
_ACC_C = {"f32": "float", "i32": "int"}
NS = "nvcuda::wmma"


@dataclass(frozen=True, slots=True)
class Operand:
    """A staged tile a dot reads: `buffer` (shared, 2-D in its last two dimensions) and
    whether its k index is the first of them (A: col_major; B: row_major)."""

    buffer: str
    k_first: bool


@dataclass(frozen=True, slots=True)
class DotNest:
    """One dot nest: the lane loops (rows, columns), the dot loop and its update."""

    rows: For
    cols: For
    k: For
    update: Store
    a: Operand
    b: Operand


@dataclass(frozen=True, slots=True)
class WmmaPlan:
    """How a launch with dot loops runs on warps: Ty x Tx lanes, W = warps_m x warps_n warps,
    each with frags_m x frags_n accumulator fragments; `acc` the lanes' register tile (now a
    shared tile of `acc_cols` columns), `kind` its element type, `k_frags` fragments per k
    step, `operands` the staged tiles that are padded with zeros."""

    rows: int
    cols: int
    warps_m: int
    warps_n: int
    frags_m: int
    frags_n: int
    k_frags: int
    acc: str
    acc_type: str  # f32 | i32
    elem: str  # f16 | bf16 | i8 | u8
    operands: frozenset[str]

    @property
    def threads(self) -> int:
        return 32 * self.warps_m * self.warps_n

    @property
    def frags(self) -> int:
        return self.frags_m * self.frags_n


def has_dot(node) -> bool:
    return any(isinstance(n, For) and n.kind == "dot" for n in walk_kernel(node))


def plan_launch(kernel: KernelIR, launch: Launch, facts: GpuFacts, arch: str) -> WmmaPlan | None:
    """The warps of `launch` if it has dot loops (None otherwise), after checking that CUDA's
    tensor cores can run them (module docstring); ScheduleError if they cannot."""
    nests = [dot_nest(kernel, n) for n in walk_kernel(launch.body)
             if isinstance(n, For) and n.kind == "threadIdx.y" and has_dot(n)]
    if not nests:
        if has_dot(launch.body):
            loop = next(n for n in walk_kernel(launch.body) if isinstance(n, For) and
                        n.kind == "dot")
            raise ScheduleError(f"dot on {_stmt_of(loop)}: on cuda its loop must be inside "
                                "loops bound to threadIdx.y (rows) and threadIdx.x (columns)")
        return None
    threads = dict(launch.threads)
    rows, cols = threads.get("threadIdx.y", 1), threads.get("threadIdx.x", 1)
    first = nests[0]
    what = _what(kernel, first.update)
    if "threadIdx.z" in threads:
        raise ScheduleError(f"dot on {what}: its launch binds threadIdx.z; WMMA runs a 2-D "
                            "tile of lanes (threadIdx.y rows, threadIdx.x columns)")
    a_shape = _shape(launch, first.a.buffer)
    depth = a_shape[-2] if first.a.k_first else a_shape[-1]
    fm, fn, fk = facts.dot_fragment or (16, 16, 16)
    if rows % fm or cols % fn or depth % fk:
        raise ScheduleError(f"dot on {what}: its tile is {rows} x {cols} x {depth} (rows x "
                            f"columns x k); CUDA's WMMA multiplies {fm} x {fn} x {fk} "
                            f"fragments, so each must be a multiple of them (tile the loops "
                            f"by multiples of 16)")
    types = set()
    for nest in nests:
        for operand in (nest.a, nest.b):
            types.add(_buffer(launch, operand.buffer).dtype.name)
    elem = sorted(types)[0]
    if len(types) > 1:
        raise ScheduleError(f"dot on {what}: its operands are {' and '.join(sorted(types))}; "
                            "WMMA multiplies two tiles of one type")
    if elem not in facts.dot_types:
        have = ", ".join(facts.dot_types) or "no types"
        raise ScheduleError(f"dot on {what}: CUDA {arch}'s tensor cores multiply {have}, not "
                            f"{elem} (f16 from sm_70, i8/u8 from sm_72, bf16 from sm_80)")
    acc = nests[0].update.tensor
    acc_buffer = next((b for b in launch.registers if b.name == acc), None)
    if acc_buffer is None or any(n.update.tensor != acc for n in nests):
        raise ScheduleError(f"dot on {what}: WMMA keeps the output tile in fragments across "
                            f"the k steps; cache it around the k loop first "
                            f"(Schedule.cache_write at the loop outside the dot's lanes)")
    if len(acc_buffer.shape) < 2 or any(constant_value(d) != 1 for d in acc_buffer.shape[:-2]):
        raise ScheduleError(f"dot on {what}: its output tile must be 2-D (rows x columns, "
                            f"a batch of one in front)")
    if acc_buffer.dtype.name != ACCUMULATORS[elem]:
        raise ScheduleError(f"dot on {what}: WMMA sums {elem} products in "
                            f"{ACCUMULATORS[elem]}, not {acc_buffer.dtype.name}")
    for nest in nests:
        _check_aligned(kernel, launch, nest, elem, depth)
    frags_m, frags_n = rows // fm, cols // fn
    warps_m = 2 if frags_m % 2 == 0 else 1
    warps_n = 2 if frags_n % 2 == 0 else 1
    while (frags_m // warps_m) * (frags_n // warps_n) > 8 and warps_m * warps_n < 8:
        if frags_m // warps_m % 2 == 0:  # over 8 fragments a warp: more warps
            warps_m *= 2
        elif frags_n // warps_n % 2 == 0:
            warps_n *= 2
        else:
            break
    return WmmaPlan(rows, cols, warps_m, warps_n, frags_m // warps_m, frags_n // warps_n,
                    depth // fk, acc, acc_buffer.dtype.name, elem,
                    frozenset(o.buffer for n in nests for o in (n.a, n.b)))


def dot_nest(kernel: KernelIR, rows: For) -> DotNest:
    """The dot nest under the threadIdx.y loop `rows` (a threadIdx.x loop inside it, the dot
    loop inside that, guards allowed around each); ScheduleError for another shape."""
    cols = _only_child(rows)
    k = _only_child(cols) if isinstance(cols, For) else None
    update = _only_child(k) if isinstance(k, For) else None
    if not (isinstance(cols, For) and cols.kind == "threadIdx.x" and isinstance(k, For)
            and k.kind == "dot" and isinstance(update, Store) and update.reduce == "+="):
        loop = next(n for n in walk(rows) if isinstance(n, For) and n.kind == "dot")
        raise ScheduleError(f"dot on {_stmt_of(loop)}: on cuda it needs the nest `for rows "
                            "(threadIdx.y): for columns (threadIdx.x): for k (dot): C += A * B`"
                            " and nothing else inside the row loop")
    what = _what(kernel, update)
    value = update.value
    if not (isinstance(value, ir.Binary) and value.op == "*"):
        raise ScheduleError(f"dot on {what}: WMMA sums products of two tiles, not "
                            f"{ir.to_str(value)}")
    loads = [_under_cast(x) for x in (value.left, value.right)]
    if not all(isinstance(x, ir.Load) and len(x.indices) >= 2 for x in loads):
        raise ScheduleError(f"dot on {what}: WMMA reads both operands as 2-D tiles staged in "
                            "shared memory; stage them with Schedule.cache_read at the row "
                            "loop")
    by_role = {}
    for load in loads:
        uses = {v: [coefficient(ix, v) for ix in load.indices] for v in (rows.var, cols.var)}
        role = "a" if any(uses[rows.var]) else "b"
        other = rows.var if role == "a" else cols.var
        place = [coefficient(ix, k.var) for ix in load.indices]
        lane = [coefficient(ix, other) for ix in load.indices]
        # a 2-D tile in the last two dimensions (a batch of one in front)
        if any(place[:-2]) or any(lane[:-2]) or sorted(place[-2:]) != [0, 1] or sorted(
                lane[-2:]) != [0, 1] or place == lane or (role == "a") == any(
                coefficient(ix, cols.var) for ix in load.indices):
            raise ScheduleError(f"dot on {what}: WMMA reads {load.tensor} as a tile indexed "
                                f"by the lane and k, not {ir.to_str(load)}")
        origin = {rows.var: rows.init, cols.var: cols.init, k.var: k.init}
        if any(constant_value(simplify(ir.substitute(ix, origin))) != 0 for ix in load.indices):
            raise ScheduleError(f"dot on {what}: the tile {load.tensor} must start at the "
                                f"dot's first lane and k (a cache_read at the row loop)")
        by_role[role] = (load.tensor, place[-2] == 1)
    if set(by_role) != {"a", "b"}:
        raise ScheduleError(f"dot on {what}: one operand must follow the rows (threadIdx.y), "
                            "the other the columns (threadIdx.x)")
    ops = {r: Operand(t, kf) for r, (t, kf) in by_role.items()}
    return DotNest(rows, cols, k, update, ops["a"], ops["b"])


def _check_aligned(kernel, launch, nest: DotNest, elem: str, depth: int) -> None:
    """WMMA loads need 32-byte aligned fragments and rows of a multiple of 16 bytes."""
    size = 2 if elem in ("f16", "bf16") else 1
    for operand in (nest.a, nest.b):
        shape = _shape(launch, operand.buffer)
        ldm = shape[-1]
        # steps between fragments, in elements: along the lanes and along k
        lane_step, k_step = (16, 16 * ldm) if operand.k_first else (16 * ldm, 16)
        if (ldm * size) % 16 or (lane_step * size) % 32 or (depth > 16 and (k_step * size) % 32):
            raise ScheduleError(
                f"dot on {_what(kernel, nest.update)}: the staged tile {operand.buffer} "
                f"({' x '.join(map(str, shape))} {elem}) puts WMMA fragments off 32-byte "
                f"boundaries; stage it with the k index fastest (Schedule.cache_read(..., "
                f"layout=(1, 0)) where k comes first)")


def operand_ldm(launch: Launch, operand: Operand) -> int:
    return _shape(launch, operand.buffer)[-1]


def fragment_decls(plan: WmmaPlan) -> list[str]:
    """The warp's position in the tile and its accumulator fragments (kernel top)."""
    acc = _ACC_C[plan.acc_type]
    return ["  const int lw_warp = (int)(threadIdx.x / 32);",
            f"  const int lw_wm = lw_warp / {plan.warps_n}, lw_wn = lw_warp % {plan.warps_n};",
            f"  {NS}::fragment<{NS}::accumulator, 16, 16, 16, {acc}> lw_acc[{plan.frags}];"]


def acc_transfer(plan: WmmaPlan, load: bool, indent: str) -> list[str]:
    """The warp's accumulator fragments from (`load`) or to the shared lane tile."""
    tile = f"{plan.acc}"
    lines = []
    for p in range(plan.frags_m):
        for q in range(plan.frags_n):
            f = p * plan.frags_n + q
            at = (f"{tile} + (lw_wm * {plan.frags_m} + {p}) * {16 * plan.cols} + "
                  f"(lw_wn * {plan.frags_n} + {q}) * 16")
            if load:
                lines.append(f"{indent}{NS}::load_matrix_sync(lw_acc[{f}], {at}, {plan.cols}, "
                             f"{NS}::mem_row_major);")
            else:
                lines.append(f"{indent}{NS}::store_matrix_sync({at}, lw_acc[{f}], {plan.cols}, "
                             f"{NS}::mem_row_major);")
    return lines


def mma_lines(plan: WmmaPlan, nest: DotNest, launch: Launch, indent: str) -> list[str]:
    """One k step of the dot nest: each warp's A and B fragments loaded from the staged
    tiles, one mma_sync per accumulator fragment."""
    t = WMMA_TYPES[plan.elem]
    lines = [f"{indent}{{"]
    inner = indent + "  "
    sides = (("a", nest.a, plan.frags_m, "lw_wm"), ("b", nest.b, plan.frags_n, "lw_wn"))
    for name, operand, count, _ in sides:
        use = "matrix_a" if name == "a" else "matrix_b"
        layout = "col_major" if operand.k_first == (name == "a") else "row_major"
        lines.append(f"{inner}{NS}::fragment<{NS}::{use}, 16, 16, 16, {t}, {NS}::{layout}> "
                     f"lw_f{name}[{count}];")
    for kk in range(plan.k_frags):
        for name, operand, count, warp in sides:
            ldm = operand_ldm(launch, operand)
            for p in range(count):
                lane = f"({warp} * {count} + {p}) * 16"
                if operand.k_first:  # [k][lane]
                    at = f"{kk * 16 * ldm} + {lane}"
                else:  # [lane][k]
                    at = f"{lane} * {ldm} + {kk * 16}"
                lines.append(f"{inner}{NS}::load_matrix_sync(lw_f{name}[{p}], "
                             f"(const {t} *){operand.buffer} + {at}, {ldm});")
        for p in range(plan.frags_m):
            for q in range(plan.frags_n):
                f = p * plan.frags_n + q
                lines.append(f"{inner}{NS}::mma_sync(lw_acc[{f}], lw_fa[{p}], lw_fb[{q}], "
                             f"lw_acc[{f}]);")
    return [*lines, f"{indent}}}"]


def touches(node, tensor: str) -> bool:
    """Does `node` read or write `tensor` outside its dot loops?"""
    inside = {id(m) for n in walk_kernel(node) if isinstance(n, For) and n.kind == "dot"
              for m in walk(n)}
    return any(isinstance(n, Store) and id(n) not in inside and (
        n.tensor == tensor or any(ld.tensor == tensor for ld in ir.loads(n.value)))
        for n in walk_kernel(node))


def _only_child(node: For) -> Node | None:
    """The body of `node` under guards (If without else) and one-element blocks."""
    body = node.body
    while True:
        if isinstance(body, If) and body.orelse is None:
            body = body.then
        elif isinstance(body, Block) and len(body.body) == 1:
            body = body.body[0]
        else:
            return body


def _under_cast(e: ir.Expr) -> ir.Expr:
    return e.operand if isinstance(e, ir.Cast) else e


def _buffer(launch: Launch, name: str):
    found = next((b for b in launch.shared if b.name == name), None)
    if found is None:
        raise ScheduleError(f"the dot reads {name}, which is not staged in shared memory; "
                            f"stage it with Schedule.cache_read at the dot's row loop")
    return found


def _shape(launch: Launch, name: str) -> tuple[int, ...]:
    return tuple(constant_value(d) for d in _buffer(launch, name).shape)


def _what(kernel: KernelIR, update: Store) -> str:
    s = kernel.statement.get(update.stmt)
    return f"{update.stmt} (line {s.pos.line})" if s is not None else update.stmt


def _stmt_of(loop: For) -> str:
    store = next((n for n in walk(loop) if isinstance(n, Store)), None)
    return store.stmt if store is not None else loop.var


__all__ = ["THREAD_AXES", "WmmaPlan", "acc_transfer", "dot_nest", "fragment_decls", "has_dot",
           "mma_lines", "plan_launch", "touches"]
