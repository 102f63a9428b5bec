"""Triton module of a schedule that binds loops to GPU axes (`Schedule.bind`), as `ir/launches`
lowered it. Like `cuda_scheduled`, it only translates:

    a blockIdx.x loop   -> for c0 in range(init + tl.program_id(0) * step, end, num_programs * step)
    threadIdx loops     -> lanes: c2 = init + tl.arange(0, P)[:, None] (P: the trip count rounded
                           up to a power of two), the loop's condition a mask on every access
    serial loops inside -> scalar `for` loops over the lanes (bounds that differ per lane: the
                           range of all lanes, masked); an element a loop accumulates into stays
                           in a register tensor while it runs
    Barrier             -> tl.debug_barrier()
    block-level code    -> scalar code of the program

`run(tensors, scalars, sizes)` is the launcher: host loops in Python, one launch per `Launch`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from loopweave.backends import triton_lowp
from loopweave.backends.triton_dot import dot_update
from loopweave.backends.triton_expr import (
    HELPERS,
    REDUCE_OVER_AXIS,
    TL_TYPES,
    ExprWriter,
    Layout,
    combine,
    conjuncts,
    py_name,
    python_expr,
)
from loopweave.backends.triton_registers import (
    arranged,
    declare,
    register_tiles,
    rename_vars,
    scalar_loop_vars,
    vector_loop,
)
from loopweave.errors import ScheduleError
from loopweave.ir import expr as ir
from loopweave.ir.affine import row_major_offset
from loopweave.ir.kernel import KernelIR, ScalarArg
from loopweave.ir.launches import Barrier, GpuProgram, Launch, OneThread, Spread, ThreadReduce
from loopweave.ir.loops import (
    THREAD_AXES,
    Block,
    For,
    If,
    Node,
    Scope,
    Store,
    full_extent,
    invariant_target,
    only_upper_bounds,
    rename_element,
    upper_bound,
)
from loopweave.ir.types import BOOL, DType, identity

_NO_LAYOUT = Layout(())
_TORCH_TYPES = {"f16": "float16", "bf16": "bfloat16", "f32": "float32", "f64": "float64",
                "i8": "int8", "u8": "uint8", "i16": "int16", "i32": "int32", "i64": "int64",
                "bool": "bool", **dict.fromkeys(triton_lowp.TYPES, "uint8")}
_GRID_LIMITS = {"blockIdx.x": 2**31 - 1, "blockIdx.y": 65535, "blockIdx.z": 65535}


@dataclass(frozen=True)
class Lanes:
    """The lanes of a thread region: its shape, the mask of the lanes that run, and the loop
    variable of each dimension (outer first)."""

    shape: tuple[int, ...]
    mask: str
    vars: tuple[str, ...]
    zeros: str = "lw_lanes"  # the name of a zero index tensor of this shape


class _LaunchWriter:
    """Writes one @triton.jit function; also the `owner` that `ExprWriter` asks about loads."""

    axis_of: dict = {}  # ExprWriter's tile axes: none, lane variables are tensors already
    tile_name: dict = {}
    register_axes: dict = {}

    def __init__(self, module: ModuleWriter, launch: Launch):
        self.module = module
        self.kernel = module.kernel
        self.launch = launch
        self.lines: list[str] = []
        self.expr = ExprWriter(self)
        self.lanes: Lanes | None = None
        self.lane_vars: set[str] = set()  # variables that are tensors over the lanes
        self.registers: dict[str, str] = {}  # register or local scalar -> Python name
        # accumulator register -> (the mask it began in, its type)
        self.created_under: dict[str, tuple[str, DType]] = {}
        self.counter = 0
        self.tiles: dict = {}  # temporaries kept in registers (triton_registers)
        self.shapes: dict[str, tuple] = {}  # lane tensor name -> its shape (lane_name)

    # -- what ExprWriter asks --------------------------------------------------------------------

    def use(self, helper: str) -> None:
        self.module.helpers.add(helper)

    def load(self, load: ir.Load, layout: Layout, raw: bool = False) -> str:
        if load.tensor in self.tiles and self.lanes is not None:
            return arranged(self.tiles[load.tensor], load, self.lanes.vars)
        if load.tensor in self.registers:
            return self.registers[load.tensor]
        tensor = self.kernel.tensors[load.tensor]
        pointer = self.pointer(load.tensor, load.indices)
        value = f"tl.load({pointer})" if self.lanes is None else \
            f"tl.load({pointer}, mask={self.lanes.mask}, other=0)"
        if tensor.dtype.is_storage_only:
            value = triton_lowp.widen(value, tensor.dtype, self.use)
        return value

    # -- pieces ----------------------------------------------------------------------------------

    def fresh(self, base: str) -> str:
        self.counter += 1
        return f"{base}_{self.counter}"

    def emit(self, line: str, depth: int) -> None:
        self.lines.append("    " * depth + line)

    def text(self, e: ir.Expr) -> str:
        return self.expr.render(e, _NO_LAYOUT)

    def pointer(self, tensor: str, indices: tuple[ir.Expr, ...]) -> str:
        off = row_major_offset(self.module.shape_of(tensor), indices)
        text = f"{py_name(tensor)}_ptr"
        if off != ir.Const(0):
            text += f" + {self.expr.render(off, _NO_LAYOUT, 11)}"
        if self.lanes is not None:  # every lane its own pointer, even where the offset is not
            text += f" + {self.lanes.zeros}"
        return text

    def cast(self, value: str, dtype) -> str:
        if dtype.name in ("f32", "bool"):
            return value
        return triton_lowp.stored(value, dtype, TL_TYPES, self.use)  # also for a literal

    def varies(self, e: ir.Expr) -> bool:
        return bool(ir.variables(e) & self.lane_vars)

    def narrowed(self, mask: str, conds: list[ir.Expr]) -> str:
        """`mask` (over the lanes) and each of `conds`. A condition the same for every lane
        selects the mask with tl.where rather than `&`: Triton's interpreter types a
        comparison of scalars as its operands (i64), and `&` broadcasting it to the lanes
        gives an integer mask that tl.load refuses ("mask has unsupported dtype")."""
        text = mask
        for c in (x for cond in conds for x in conjuncts(cond)):
            if self.varies(c):
                text = f"{text} & ({self.text(c)})"
        for c in (x for cond in conds for x in conjuncts(cond)):
            if not self.varies(c):
                text = f"tl.where({self.text(c)}, {text}, False)"
        return text

    # -- the function ----------------------------------------------------------------------------

    def write(self) -> list[str]:
        depth = 1
        for loop in self.launch.blocks:
            pid = "xyz".index(loop.kind[-1])
            start = f"({self.text(loop.init)}) + tl.program_id({pid}).to(tl.int64) * {loop.step}"
            stride = f"tl.num_programs({pid}).to(tl.int64) * {loop.step}"
            depth = self.loop_head(loop, start, stride, depth)
        self.tiles = declare(self, register_tiles(self.kernel, self.module.program.launches,
                                                  self.launch), depth)
        self.shapes = {py_name(v): () for v in scalar_loop_vars(self.launch.body)}
        self.node(self.launch.body, depth)
        return self.lines

    def loop_head(self, loop: For, start: str, stride: str, depth: int) -> int:
        """`for var in range(start, end, stride)` up to the loop's upper bounds, with the rest of
        its condition tested inside (returns the depth of the body)."""
        end = upper_bound(loop.cond, loop.var)
        if end is None:
            raise ScheduleError(f"loop {loop.var}: no upper bound in {ir.to_str(loop.cond)}")
        self.emit(f"for {py_name(loop.var)} in range({start}, {self.text(end)}, {stride}):",
                  depth)
        if only_upper_bounds(loop.cond, loop.var):
            return depth + 1
        self.emit(f"if {self.text(loop.cond)}:", depth + 1)
        return depth + 2

    def node(self, node, depth: int) -> None:
        match node:
            case Barrier():
                self.emit("tl.debug_barrier()", depth)
            case OneThread(body=b) | Spread(nest=b):
                self.node(b, depth)
            case Block(body=body):
                skip = False
                for b, after in zip(body, (*body[1:], None), strict=True):
                    if not skip:
                        skip = self.initialised_loop(b, after, depth)
                        if not skip:
                            self.node(b, depth)
                    else:
                        skip = False
            case ThreadReduce():
                self.thread_reduce(node, depth)
            case For(kind=kind) if kind in THREAD_AXES:
                self.thread_region(node, depth)
            case For(kind="dot"):
                dot_update(self, node, depth)
            case For(kind="vector") if vector_loop(self, node, depth):
                pass  # a tensor axis (triton_registers)
            case For():
                self.serial_loop(node, depth)
            case If(cond=c, then=t, orelse=e):
                self.branch(c, t, e, depth)
            case Scope(buffers=bufs, body=b):
                self.scope(bufs, b, depth)
            case Store():
                self.store(node, depth)
            case _:
                raise AssertionError(type(node).__name__)

    def lane_name(self, base: str, shape: tuple) -> str:
        """`base` for a tensor of `shape`, or a name of its own where `base` already names a
        tensor of another shape in this launch (a loop around both regions would carry the
        variable with two types, which Triton's compiler refuses)."""
        first = self.shapes.setdefault(base, shape)
        return base if first == shape else f"{base}_{'_'.join(map(str, shape))}"

    def thread_region(self, loop: For, depth: int) -> None:
        chain, body = _thread_chain(loop)
        shape = tuple(_next_power_of_two(full_extent(x)) for x in chain)
        conds, names = [], {}
        for n, x in enumerate(chain):
            index = "" if len(chain) == 1 else \
                "[" + ", ".join(":" if m == n else "None" for m in range(len(chain))) + "]"
            lanes = f"tl.arange(0, {shape[n]}).to(tl.int64){index}"
            own = tuple(p if m == n else 1 for m, p in enumerate(shape))
            names[x.var] = self.lane_name(py_name(x.var), own)
            self.emit(f"{names[x.var]} = {self.text(x.init)} + {lanes} * {x.step}", depth)
            conds.append(x.cond)
        renamed = {v: ir.Var(n) for v, n in names.items() if n != py_name(v)}
        if renamed:
            body = rename_vars(body, renamed)
            conds = [ir.substitute(c, renamed) for c in conds]
        lane_vars = {renamed[x.var].name if x.var in renamed else x.var for x in chain}
        self.lane_vars |= lane_vars
        zeros = self.lane_name("lw_lanes", shape)
        self.emit(f"{zeros} = tl.zeros([{', '.join(map(str, shape))}], dtype=tl.int64)", depth)
        mask = self.fresh("lw_mask")
        self.emit(f"{mask} = ({') & ('.join(self.text(c) for c in conds)}) & ({zeros} == 0)",
                  depth)
        self.lanes = Lanes(shape, mask, tuple(
            renamed[x.var].name if x.var in renamed else x.var for x in chain), zeros)
        self.node(body, depth)
        self.lanes = None
        self.lane_vars -= lane_vars

    def thread_reduce(self, node: ThreadReduce, depth: int) -> None:
        """A register tensor over the lanes holds each lane's partial result; reduced over the
        lanes (tl.sum, tl.max, ...) it updates the element once."""
        acc, op = node.partial.dtype, node.update.reduce
        lanes = _next_power_of_two(full_extent(node.loop))
        part = self.fresh("lw_part")
        start = self.expr.const(identity(op, acc), acc)
        self.emit(f"{part} = tl.full([{lanes}], {start}, dtype={TL_TYPES[acc.name]})", depth)
        self.registers[node.partial.name] = part
        self.thread_region(node.loop, depth)
        if op == "*=":
            self.use("_lw_mul")
        total = self.fresh("lw_total")
        self.emit(f"{total} = {REDUCE_OVER_AXIS[op].format(v=part, a=0)}", depth)
        self.registers[node.partial.name] = total
        self.store(node.update, depth)
        del self.registers[node.partial.name]

    def initialised_loop(self, first, then, depth: int) -> bool:
        """Write `first` and `then` as one, if `first` sets the element that the serial loop
        `then` accumulates in a register (matmul's `C = 0` before its k loop): the register
        starts from the value, stored once after the loop. False (nothing written) otherwise."""
        if self.lanes is not None and isinstance(first, Store) and isinstance(then, For) \
                and then.kind == "dot":
            return self.initialised_dot(first, then, depth)
        if self.lanes is None or not isinstance(first, Store) or first.reduce is not None \
                or not isinstance(then, For) or then.kind in THREAD_AXES or then.kind == "dot":
            return False
        hoisted = invariant_target(then)
        if hoisted != (first.tensor, first.indices) or first.tensor in self.registers or any(
                ld.tensor == first.tensor for ld in ir.loads(first.value)):
            return False
        self.serial_loop(then, depth, start=first.value)
        return True

    def initialised_dot(self, first: Store, loop: For, depth: int) -> bool:
        """`first` (`C = x` or `C *= x`: FlashAttention's rescaled accumulator) and the dot
        loop that adds into the same element as one: the register starts from its value and
        tl.dot adds into it, stored once. False (nothing written) otherwise."""
        body = loop.body
        dtype = self.kernel.tensors[first.tensor].dtype if first.tensor in \
            self.kernel.tensors else None
        if first.reduce not in (None, "*=") or not isinstance(body, Store) or \
                body.reduce != "+=" or (body.tensor, body.indices) != (first.tensor,
                                                                       first.indices) \
                or first.tensor in self.registers or dtype is None or dtype.name != "f32" \
                or any(ld.tensor == first.tensor for ld in ir.loads(first.value)):
            return False
        value = self.text(first.value)
        if first.reduce is not None:
            current = self.load(ir.Load(first.tensor, first.indices, dtype), _NO_LAYOUT)
            value = combine(first.reduce, current, value, dtype)
        reg = self.fresh("lw_acc")
        shape = ", ".join(map(str, self.lanes.shape))
        self.emit(f"{reg} = tl.zeros([{shape}], dtype=tl.float32) + {value}", depth)
        self.created_under[reg] = (self.lanes.mask, dtype)
        self.registers[first.tensor] = reg
        dot_update(self, loop, depth)
        del self.registers[first.tensor]
        self.write_store(first.tensor, first.indices, reg, depth)
        return True

    def serial_loop(self, loop: For, depth: int, start: ir.Expr | None = None) -> None:
        """A loop over the lanes' own iterations; `start`: the value of the element it
        accumulates into, known before it (else loaded)."""
        hoisted = invariant_target(loop) if self.lanes is not None else None
        if hoisted is not None and hoisted[0] in self.registers:
            hoisted = None  # already a variable (an outer loop's accumulator, a local scalar)
        reg = None
        if hoisted is not None:
            tensor, indices = hoisted
            reg = self.fresh("lw_acc")
            dtype = self.kernel.tensors[tensor].dtype
            if start is None:
                value = self.load(ir.Load(tensor, indices, dtype), _NO_LAYOUT)
            else:
                shape = ", ".join(map(str, self.lanes.shape))
                kind = TL_TYPES[dtype.compute.name]
                value = f"tl.zeros([{shape}], dtype={kind})"
                if not (isinstance(start, ir.Const) and start.value == 0):
                    value += f" + {self.cast(self.text(start), dtype.compute)}"
            self.emit(f"{reg} = {value}", depth)
            self.created_under[reg] = (self.lanes.mask, dtype.compute)
            loop = rename_element(loop, tensor, indices, reg)
            self.registers[reg] = reg
        v = py_name(loop.var)
        end = upper_bound(loop.cond, loop.var)
        per_lane = self.varies(loop.init) or end is not None and self.varies(end)
        if not per_lane:
            body_depth = self.loop_head(loop, self.text(loop.init), str(loop.step), depth)
            self.node(loop.body, body_depth)
        else:  # bounds that differ per lane: the loop covers every lane's range, masked
            mask = self.lanes.mask
            lo = f"tl.min(tl.where({mask}, {self.text(loop.init)} + {self.lanes.zeros}, 2**62))"
            hi = f"tl.max(tl.where({mask}, {self.text(end)} + {self.lanes.zeros}, -2**62))"
            self.emit(f"for {v} in range({lo}, {hi}, {loop.step}):", depth)
            inner = self.fresh("lw_mask")
            start = ir.Binary(">=", ir.Var(loop.var), loop.init, BOOL)
            self.emit(f"{inner} = {self.narrowed(mask, [loop.cond, start])}", depth + 1)
            outer, self.lanes = self.lanes, replace(self.lanes, mask=inner)
            self.node(loop.body, depth + 1)
            self.lanes = outer
        if hoisted is not None:
            tensor, indices = hoisted
            del self.registers[reg]
            self.write_store(tensor, indices, reg, depth)

    def branch(self, cond: ir.Expr, then: Node, orelse: Node | None, depth: int) -> None:
        if self.lanes is None:  # block level: the same for every lane, a plain `if`
            self.emit(f"if {self.text(cond)}:", depth)
            self.node(then, depth + 1)
            if orelse is not None:
                self.emit("else:", depth)
                self.node(orelse, depth + 1)
            return
        outer = self.lanes
        for part, c in ((then, cond), (orelse, ir.Unary("not", cond, BOOL))):
            if part is None:
                continue
            mask = self.fresh("lw_mask")
            self.emit(f"{mask} = {self.narrowed(outer.mask, [c])}", depth)
            self.lanes = replace(outer, mask=mask)
            self.node(part, depth)
        self.lanes = outer

    def scope(self, buffers, body: Node, depth: int) -> None:
        for b in buffers:
            if b.shape:
                where = "a block" if self.lanes is None else "a lane"
                raise ScheduleError(
                    f"buffer {b.name} [{', '.join(map(ir.to_str, b.shape))}] is local to {where}; "
                    f"the triton target keeps only scalars per lane (no shared or local arrays)")
            name = self.fresh(py_name(b.name))
            shape = "" if self.lanes is None else ", ".join(map(str, self.lanes.shape))
            self.emit(f"{name} = tl.zeros([{shape}], dtype={TL_TYPES[b.dtype.compute.name]})",
                      depth)
            self.registers[b.name] = name
        self.node(body, depth)
        for b in buffers:
            del self.registers[b.name]

    def store(self, node: Store, depth: int, value: str | None = None) -> None:
        """`node`, its value rendered here unless given as text (a dot's result)."""
        value = self.text(node.value) if value is None else value
        if node.tensor in self.registers:
            name = self.registers[node.tensor]
            if node.reduce is not None:
                value = combine(node.reduce, name, value, node.value.dtype.compute)
            if self.lanes is not None:  # lanes outside the loop's range keep their value
                value = f"tl.where({self.lanes.mask}, {value}, {name})"
            self.emit(f"{name} = {value}", depth)
            return
        if node.reduce is not None:
            current = self.load(ir.Load(node.tensor, node.indices,
                                        self.kernel.tensors[node.tensor].dtype), _NO_LAYOUT)
            value = combine(node.reduce, current, value, node.value.dtype.compute)
        self.write_store(node.tensor, node.indices, value, depth)

    def write_store(self, tensor: str, indices, value: str, depth: int) -> None:
        dtype = self.kernel.tensors[tensor].dtype
        pointer = self.pointer(tensor, indices)
        mask = "" if self.lanes is None else f", mask={self.lanes.mask}"
        self.emit(f"tl.store({pointer}, {self.cast(value, dtype)}{mask})", depth)


class ModuleWriter:
    """The whole module: helpers, one @triton.jit function per launch, and `run`."""

    def __init__(self, kernel: KernelIR, program: GpuProgram, options: dict):
        self.kernel = kernel
        self.program = program
        self.options = options
        self.helpers: set[str] = set()
        self.tensors = [t.name for t in (*kernel.args, *kernel.outputs, *kernel.temporaries)
                        if t.name in kernel.tensors]
        self.device_locals = {b.name: b for b in program.device_buffers}
        self.in_registers: dict[str, set[str]] = {}  # launch -> temporaries in its registers
        self.tensors += list(self.device_locals)

    def shape_of(self, tensor: str) -> tuple[ir.Expr, ...]:
        """A tensor's shape; a device buffer's own (storage reduction may have cut it)."""
        local = self.device_locals.get(tensor)
        return local.shape if local is not None else self.kernel.tensors[tensor].shape

    def scalars(self) -> list[ScalarArg]:
        return [a for a in self.kernel.args if isinstance(a, ScalarArg)
                and a.name not in self.kernel.params]

    def write(self) -> str:
        kernels = [self.function(launch) for launch in self.program.launches]
        head = [f'"""Generated by loopweave from kernel \'{self.kernel.name}\' for Triton, '
                'lowered from its schedule."""', "import triton", "import triton.language as tl"]
        if self.device_locals:
            head.insert(1, "import torch")
        helpers = [HELPERS[h] for h in sorted(self.helpers)]
        return "\n".join(head) + "\n\n\n" + "\n\n".join([*helpers, *kernels, self.launcher()])

    def parameters(self, launch: Launch) -> tuple[list[str], list[str]]:
        """The function's parameters and the lines that read f64 scalars (passed by pointer)."""
        kept = self.in_registers.get(launch.name, ())  # no memory: no pointer
        params = [f"{py_name(t)}_ptr" for t in self.tensors if t not in kept]
        params += [py_name(p) for p in self.kernel.params]
        prologue = []
        for a in self.scalars():
            if a.dtype.name == "f64":
                params.append(f"{py_name(a.name)}_ptr")
                prologue.append(f"    {py_name(a.name)} = tl.load({py_name(a.name)}_ptr)")
            else:
                params.append(py_name(a.name))
        params += [py_name(v) for v in launch.host_vars]
        return params, prologue

    def function(self, launch: Launch) -> str:
        writer = _LaunchWriter(self, launch)
        body = writer.write()
        self.in_registers[launch.name] = set(writer.tiles)
        params, prologue = self.parameters(launch)
        return "\n".join(["@triton.jit", f"def {launch.name}({', '.join(params)}):",
                          *prologue, *body]) + "\n"

    def launcher(self) -> str:
        k = self.kernel
        lines = ["def run(tensors, scalars, sizes):",
                 f'    """Launch the kernels of \'{k.name}\' on torch tensors."""']
        lines += [f"    {py_name(t)} = tensors[{t!r}]" for t in self.tensors
                  if t not in self.device_locals]
        for p in k.params:
            source = "sizes" if p in k.sizes else "scalars"
            lines.append(f"    {py_name(p)} = {source}[{p!r}]")
        for a in self.scalars():
            lines.append(f"    {py_name(a.name)} = scalars[{a.name!r}]")
        if self.device_locals:  # used by several launches or blocks: the launcher's own
            # (a stand-in without a device, as gpu_resources passes for warmups: the default)
            lines.append("    lw_device = getattr(next(iter(tensors.values())), 'device', None)")
        registers = set().union(*self.in_registers.values())
        for b in self.device_locals.values():
            if b.name in registers:
                continue  # one launch keeps it in registers (triton_registers)
            size = " * ".join(f"({python_expr(d)})" for d in b.shape) or "1"
            lines.append(f"    {py_name(b.name)} = torch.empty(max({size}, 1), dtype=torch."
                         f"{_TORCH_TYPES[b.dtype.name]}, device=lw_device)")
        lines += self.host(self.program.host, 1)
        return "\n".join(lines) + "\n"

    def host(self, node: Node, depth: int) -> list[str]:
        pad = "    " * depth
        match node:
            case Launch():
                return self.launch_lines(node, pad)
            case Block(body=body):
                return [line for b in body for line in self.host(b, depth)]
            case For(var=v, init=init, cond=cond, step=step):
                v = py_name(v)
                return [f"{pad}{v} = {python_expr(init)}", f"{pad}while {python_expr(cond)}:",
                        *self.host(node.body, depth + 1), f"{pad}    {v} += {step}"]
            case If(cond=c, then=t, orelse=e):
                lines = [f"{pad}if {python_expr(c)}:", *self.host(t, depth + 1)]
                if e is not None:
                    lines += [f"{pad}else:", *self.host(e, depth + 1)]
                return lines
        raise AssertionError(type(node).__name__)

    def launch_lines(self, launch: Launch, pad: str) -> list[str]:
        grid = {"blockIdx.x": "1", "blockIdx.y": "1", "blockIdx.z": "1"}
        for loop, extent in zip(launch.blocks, launch.grid_extents, strict=True):
            grid[loop.kind] = f"min({python_expr(extent)}, {_GRID_LIMITS[loop.kind]})"
        # The target's num_warps and num_stages where given; else Triton's defaults (4 warps,
        # 2 stages), 8 warps for programs of over 2048 lanes (64 x 64 dot tiles: with 4, the
        # 64-bit index tensors spill on sm_90, benchmarks/gpu_resources.py).
        threads = 1
        for _, n in launch.threads:
            threads *= n
        warps = self.options.get("num_warps") or (8 if threads > 2048 else 4)
        stages = self.options.get("num_stages", 2)
        args, _ = self.parameters(launch)
        args = [a.removesuffix("_ptr") for a in args]
        return [f"{pad}grid = ({', '.join(grid.values())},)",
                f"{pad}if min(grid) > 0:",
                f"{pad}    {launch.name}[grid]({', '.join(args)}, num_warps={warps}, "
                f"num_stages={stages})"]


def render_module(kernel: KernelIR, program: GpuProgram, options: dict) -> str:
    """The Triton module (kernels and `run`) of a kernel lowered by `ir.launches`."""
    return ModuleWriter(kernel, program, options).write()


def _thread_chain(loop: For) -> tuple[list[For], Node]:
    """The directly nested thread loops from `loop` (guards between them folded into the
    innermost condition) and the body inside the innermost."""
    chain = [loop]
    body = loop.body
    guards = []
    while True:
        inner = body
        local_guards = []
        while isinstance(inner, If | Block) and not isinstance(inner, For):
            if isinstance(inner, If) and inner.orelse is None:
                local_guards.append(inner.cond)
                inner = inner.then
            elif isinstance(inner, Block) and len(inner.body) == 1:
                inner = inner.body[0]
            else:
                break
        if isinstance(inner, For) and inner.kind in THREAD_AXES:
            guards += local_guards
            chain.append(inner)
            body = inner.body
            continue
        break
    for g in guards:  # a guard between two thread loops masks the lanes inside
        body = If(g, body)
    return chain, body


def _next_power_of_two(n: int) -> int:
    return 1 << (n - 1).bit_length()
