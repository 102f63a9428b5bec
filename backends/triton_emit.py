"""Triton lowering, step 2b: one @triton.jit function per launch of the plan.

    grid variables      -> tl.program_id, tiled with tl.arange (the last two), masked at the edges
    sequential vars     -> scalar `for` loops inside the program, in program order
    reduction vars      -> a `for` loop over blocks with an accumulator (f32 for f16/bf16),
                           tl.dot for contractions, tl.sum / tl.max / tl.min over a block axis;
                           none (`y[i] += x[i]`): each element combined once, no loop
    row-state temps     -> registers; a max-reduction and the sums stabilised by it share one
                           loop (online softmax, see triton_online.py)
    fallback            -> every loop scalar, one program, in program order
"""

from __future__ import annotations

from loopweave.backends import triton_lowp
from loopweave.backends.triton_domains import bounds, extra_condition, pid_condition
from loopweave.backends.triton_domains import project_onto as _project
from loopweave.backends.triton_expr import (
    REDUCE_OVER_AXIS,
    TL_TYPES,
    ExprWriter,
    Layout,
    combine,
    conjoin,
    conjuncts,
    count_product,
    extent,
    loads,
    lt,
    offset,
    py_name,
    show,
    simplify,
    var_names,
)
from loopweave.backends.triton_online import online_pass, passes, split_factors
from loopweave.backends.triton_plan import Launch, Plan, Reduce, Section
from loopweave.ir import expr as ir
from loopweave.ir.types import BOOL, F32, INDEX, identity


class KernelWriter:
    """Writes the @triton.jit function of one launch."""

    def __init__(self, plan: Plan, launch: Launch, options: dict, module):
        self.plan = plan
        self.kernel = plan.kernel
        self.launch = launch
        self.options = options
        self.module = module
        self.lines: list[str] = []
        self.depth = 1
        self.axis_of: dict[str, str] = {}
        self.tile_name: dict[str, str] = {}
        self.register_axes: dict[str, tuple[str, ...]] = {}
        self.register_name: dict[str, str] = {}  # a register read under another name
        self.scalars: set[str] = set(launch.host)
        self.blocks: dict[str, str] = {}  # axis -> constexpr name
        self.full_blocks: dict[str, tuple[ir.Expr, ir.Expr, int]] = {}  # constexpr -> lo, hi, min
        self.dot_axes: set[str] = set()
        self.scope: dict = {}
        self.used_names: set[str] = set()
        self.ranges: dict[str, list[ir.Expr]] = {}
        self.conj: list[ir.Expr] = []
        self.expr = ExprWriter(self)
        self.grid_bounds: dict[str, tuple[ir.Expr, ir.Expr]] = {}
        self.tiled: tuple[str, ...] = ()

    # -- small utilities ----------------------------------------------------------------------

    def use(self, helper: str) -> None:
        self.module.helpers.add(helper)

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.depth + line)

    def fresh(self, base: str) -> str:
        name, n = base, 1
        while name in self.used_names:
            n += 1
            name = f"{base}_{n}"
        self.used_names.add(name)
        return name

    def block(self, axis: str, *, full: tuple[ir.Expr, ir.Expr] | None = None,
              dot: bool = False) -> str:
        if axis not in self.blocks:
            self.blocks[axis] = f"BLOCK_{axis.upper()}"
        name = self.blocks[axis]
        if full is not None:
            self.full_blocks[name] = (full[0], full[1], 16 if dot else 1)
        if dot:
            self.dot_axes.add(axis)
        return name

    def bounds(self, stmt, var, scalars=None):
        return bounds(stmt.domain, stmt.iterators, var, self.scalars if scalars is None
                      else scalars, self.kernel.context, self.kernel.params)

    def stop(self, hi: ir.Expr) -> str:
        """The exclusive end of a loop whose last value is `hi`."""
        return self.text(ir.add(hi, ir.Const(1)))

    def note_layout(self, layout) -> None:
        """Record that a tensor over the tile axes `layout` is made (see `block_groups`)."""
        self.expr.layouts.add(tuple(layout))

    def block_groups(self) -> list[tuple[str, ...]]:
        """The block constants of each tensor shape the kernel makes: their products must stay
        within Triton's limit on the elements of a tensor."""
        groups = {tuple(dict.fromkeys(self.blocks[a] for a in layout if a in self.blocks))
                  for layout in self.expr.layouts}
        # a group inside another never has more elements than it
        return sorted(g for g in groups if g and not any(
            set(g) < set(other) for other in groups))

    def tile(self, var: str, start: str, block: str) -> None:
        self.note_layout((var,))
        name = py_name(var)
        start = "" if start == "0" else f"{start} + "
        self.emit(f"{name} = {start}tl.arange(0, {block})")
        self.axis_of[var] = var
        self.tile_name[var] = name

    def text(self, e: ir.Expr, layout=()) -> str:
        return self.expr.render(simplify(e), Layout(layout))

    # -- loads ---------------------------------------------------------------------------------

    def load_mask(self, load: ir.Load, layout) -> ir.Expr | None:
        tiled = {v for v in var_names(load) if v in self.axis_of}
        axes = sorted({self.axis_of[v] for v in tiled})
        parts = [c for a in axes for c in self.ranges.get(a, [])]
        known = tiled | self.scalars
        leftover = False
        for c in self.conj:
            if var_names(c) <= known:
                parts.append(c)
            else:
                leftover = True
        if leftover:  # the tile reaches points outside the domain: keep the load in bounds
            shape = self.kernel.tensors[load.tensor].shape
            for index, dim in zip(load.indices, shape, strict=True):
                if var_names(index) & tiled:
                    parts.append(ir.Binary(">=", index, ir.Const(0), BOOL))
                    parts.append(ir.Binary("<", index, dim, BOOL))
        return conjoin(parts)

    def load(self, load: ir.Load, layout: Layout, raw: bool = False) -> str:
        if load.tensor in self.register_axes:
            name = self.register_name.get(load.tensor, py_name(load.tensor))
            return name + layout.index(set(self.register_axes[load.tensor]))
        key = ("load", load, layout, raw)
        if key in self.scope:
            return self.scope[key]
        tensor = self.kernel.tensors[load.tensor]
        ptr = f"{py_name(load.tensor)}_ptr"
        off = offset(tensor.shape, load.indices)
        mask = self.load_mask(load, layout)
        args = f"{ptr} + {self.expr.render(off, layout, 11)}" if off != ir.Const(0) else ptr
        if mask is not None:
            args += f", mask={self.text(mask, layout)}, other=0"
        value = f"tl.load({args})"
        if tensor.dtype.is_storage_only and not raw:
            value = triton_lowp.widen(value, tensor.dtype, self.use)
        name = self.fresh(py_name(load.tensor))
        self.emit(f"{name} = {value}")
        self.scope[key] = name
        return name

    # -- the function --------------------------------------------------------------------------

    def write(self) -> list[str]:
        launch = self.launch
        k = self.kernel
        self.used_names |= {py_name(n) for n in (*launch.registers, *k.params)} | {
            py_name(a.name) for a in k.args} | {
            py_name(v) for s in k.statements for v in s.iterators}
        self.setup_grid()
        stored: set[str] = set()
        for group in passes(self, launch.sections):
            reads = {ld.tensor for sec in group for ld in loads(sec.stmt.rhs)}
            if reads & stored:  # written by other threads of this program: wait for them
                self.emit("tl.debug_barrier()")
            stored |= {sec.tensor for sec in group if not sec.register}
            if len(group) == 1:
                self.section(group[0])
            else:
                online_pass(self, group)
        return self.lines

    def setup_grid(self) -> None:
        grid = self.launch.grid
        self.tiled = grid[-2:] if not self.launch.sequential else ()
        for g in grid:
            los, his = zip(*(self.bounds(sec.stmt, g, set(self.launch.host))
                             for sec in self.launch.sections), strict=True)
            lo, hi = los[0], his[0]
            for x, y in zip(los[1:], his[1:], strict=True):
                lo = lo if x == lo else ir.Call("min", (lo, x), INDEX)
                hi = hi if y == hi else ir.Call("max", (hi, y), INDEX)
            self.grid_bounds[g] = (lo, hi)
        n = len(grid)
        flat = max(0, n - 2) if n > 3 else 0
        if flat:
            self.emit("pid = tl.program_id(0)")
            for g in reversed(grid[:flat]):
                lo, hi = self.grid_bounds[g]
                count = self.expr.render(extent(lo, hi), Layout(()), 13)
                start = "" if self.text(lo) == "0" else f"{self.text(lo)} + "
                self.emit(f"{py_name(g)} = {start}pid % {count}")
                if g != grid[0]:
                    self.emit(f"pid = pid // {count}")
                self.scalars.add(g)
        for a, g in enumerate(grid[flat:]):
            axis = a + (1 if flat else 0)
            lo, _ = self.grid_bounds[g]
            start = self.text(lo)
            pid = f"tl.program_id({axis})"
            if g in self.tiled:
                block = self.block(g)
                start = f"{pid} * {block}" if start == "0" else f"{start} + {pid} * {block}"
                self.tile(g, start, block)
            else:
                self.emit(f"{py_name(g)} = {pid}" if start == "0" else
                          f"{py_name(g)} = {start} + {pid}")
                self.scalars.add(g)
        for t in self.launch.registers:
            self.register_axes[t] = tuple(g for g in grid if g in self.tiled)

    # -- sections ------------------------------------------------------------------------------

    def open_loop(self, header: str) -> None:
        self.emit(header)
        self.depth += 1
        self.scope = {}

    def close_loop(self) -> None:
        self.depth -= 1
        self.scope = {}

    def grid_ranges(self, stmt) -> None:
        """Tile ranges in every scalar known here, as `extra_condition` assumes (j > i, i a pid)"""
        for g in self.tiled:
            (lo, hi), glo = self.bounds(stmt, g), self.grid_bounds[g][0]
            self.ranges[g] = [lt(g, hi)] + ([ir.Binary(">=", ir.Var(g), lo, BOOL)]
                                            if lo != glo else [])

    def grid_guard(self, s) -> None:
        """`if` the program ids' condition, where the grid's box does not imply it"""
        pids = tuple(g for g in self.launch.grid if g not in self.tiled and g in s.iterators)
        host, known = set(self.launch.host), self.kernel.params
        whole = pid_condition(s.domain, s.iterators, pids, host, known) if pids else None
        if whole is not None and (any(self.bounds(s, g, host) != self.grid_bounds[g] for g in pids)
                                  or pid_condition(s.domain, s.iterators, pids, host, known, True)):
            self.open_loop(f"if {self.text(whole)}:")

    def section(self, sec: Section) -> None:
        s = sec.stmt
        if self.launch.sequential and sec.init is not None:
            self.section(Section(sec.init, None, (), tuple(
                v for v in sec.init.iterators if v not in self.launch.host), (), ()))
            sec = Section(s, None, (), sec.seq, (), ())
        self.scope = {}
        self.emit(f"# {ir.to_str(s.lhs)} {s.op} {show(s.rhs)}"[:98])
        saved = (set(self.scalars), dict(self.axis_of), self.depth)
        for v in sec.seq:
            lo, hi = self.bounds(s, v)
            self.open_loop(f"for {py_name(v)} in range({self.text(lo)}, {self.stop(hi)}):")
            self.scalars.add(v)
        self.grid_ranges(s)
        if not self.launch.sequential:
            self.grid_guard(sec.init or s)
        layout = [g for g in self.tiled]
        for v in sec.inner:
            self.open_block_loop(s, v)
            layout.append(v)
        if self.launch.sequential:
            cond = extra_condition(s.domain, s.iterators, self.scalars, self.kernel.context,
                                   self.kernel.params)
            if cond is not None:
                self.open_loop(f"if {self.text(cond)}:")
            self.conj = []
            self.scalar_update(s)
        elif s.op == "=":
            self.conj = conjuncts(extra_condition(s.domain, s.iterators, self.scalars,
                                                  self.kernel.context, self.kernel.params))
            value = self.expr.render(s.rhs, Layout(layout))
            self.finish(sec, value, Layout(layout), folded=True, assign=True)
        else:
            self.reduction(sec, Layout(layout))
        self.scalars, self.axis_of, self.depth = saved
        self.scope = {}

    def scalar_update(self, s) -> None:
        tensor = self.kernel.tensors[s.lhs.tensor]
        ptr = f"{py_name(s.lhs.tensor)}_ptr + {self.text(offset(tensor.shape, s.lhs.indices))}"
        value = self.text(s.rhs)
        if s.op != "=":
            current = self.load(s.lhs, Layout(()))
            value = combine(s.op, current, value, tensor.dtype.compute)
        self.emit(f"tl.store({ptr}, {self.cast(value, tensor.dtype)})")

    def cast(self, value: str, dtype) -> str:
        """`value` converted to the stored type `dtype` (tl.cast: `value` may be a Python
        literal, which has no `.to`)."""
        if dtype.name == "f32":
            return value
        return triton_lowp.stored(value, dtype, TL_TYPES, self.use)

    def store_mask(self, sec: Section, layout) -> ir.Expr | None:
        s = sec.stmt
        if sec.init is not None:
            cond = extra_condition(sec.init.domain, sec.init.iterators, self.scalars,
                                   self.kernel.context, self.kernel.params)
        else:
            keep = tuple(v for v in s.iterators if v not in sec.reduce)
            dom, its = _project(s.domain, s.iterators, keep)
            cond = extra_condition(dom, its, self.scalars, self.kernel.context,
                                   self.kernel.params)
        parts = [c for v in layout for c in self.ranges.get(v, [])]
        return conjoin(parts + conjuncts(cond))

    def finish(self, sec: Section, value: str, layout: Layout, *, folded: bool,
               assign: bool = False, op: str = "=") -> None:
        """Store a section's result (or keep it in its register)."""
        s = sec.stmt
        tensor = self.kernel.tensors[s.lhs.tensor]
        if sec.register:
            if value != py_name(tensor.name):
                self.emit(f"{py_name(tensor.name)} = {value}")
            return
        off = self.expr.render(offset(tensor.shape, s.lhs.indices), layout, 11)
        mask = self.store_mask(sec, layout) if not assign else conjoin(
            [c for v in layout for c in self.ranges.get(v, [])] + self.conj)
        mask_text = f", mask={self.text(mask, layout)}" if mask is not None else ""
        if not folded:
            current = self.load(s.lhs, layout) if mask is None else self.current(s.lhs, mask,
                                                                                  layout)
            value = combine(op, current, value, tensor.dtype.compute)
        ptr = f"{py_name(tensor.name)}_ptr"
        ptr = f"{ptr} + {off}" if off != "0" else ptr
        self.emit(f"tl.store({ptr}, {self.cast(value, tensor.dtype)}{mask_text})")

    def current(self, lhs: ir.Load, mask: ir.Expr, layout) -> str:
        tensor = self.kernel.tensors[lhs.tensor]
        off = self.expr.render(offset(tensor.shape, lhs.indices), layout, 11)
        name = self.fresh(f"{py_name(lhs.tensor)}_old")
        value = f"tl.load({py_name(lhs.tensor)}_ptr + {off}, mask={self.text(mask, layout)})"
        if tensor.dtype.is_storage_only:
            value = triton_lowp.widen(value, tensor.dtype, self.use)
        self.emit(f"{name} = {value}")
        return name

    # -- reductions ----------------------------------------------------------------------------

    def shape(self, layout) -> str:
        self.note_layout(layout)
        return "[" + ", ".join(self.blocks[a] for a in layout) + "]"

    def accumulator(self, sec: Section, layout: Layout) -> tuple[str, bool]:
        s = sec.stmt
        dtype = s.lhs.dtype.compute
        if sec.register:
            name = py_name(s.lhs.tensor)
            if sec.init is not None:
                self.emit(f"{name} = {self.filled(layout, s.op, dtype)}")
            return name, True
        name = self.fresh("acc")
        self.emit(f"{name} = {self.filled(layout, s.op, dtype)}")
        return name, sec.init is not None

    def filled(self, layout, op, dtype) -> str:
        ident = self.expr.const(identity(op, dtype), dtype)
        if identity(op, dtype) == 0:
            return f"tl.zeros({self.shape(layout)}, dtype={TL_TYPES[dtype.name]})"
        return f"tl.full({self.shape(layout)}, {ident}, {TL_TYPES[dtype.name]})"

    def open_block_loop(self, s, v) -> None:
        """`for v0 in range(lo, hi, BLOCK)`: v becomes the tile of BLOCK indices from v0."""
        lo, hi = self.bounds(s, v)
        block = self.block(v)
        start = self.fresh(f"{py_name(v)}0")
        self.open_loop(f"for {start} in range({self.text(lo)}, {self.stop(hi)}, {block}):")
        self.tile(v, start, block)
        self.ranges[v] = [lt(v, hi)]

    def reduction_axis(self, s, rvars) -> tuple[str, list[str]]:
        """Open the loop over reduction blocks; returns its axis."""
        if len(rvars) == 1:
            v = rvars[0]
            self.open_block_loop(s, v)
            return v, [v]
        axis = "_".join(rvars)
        extents = []
        los = []
        for v in rvars:
            lo, hi = self.bounds(s, v)
            los.append(lo)
            extents.append(extent(lo, hi))
        total = count_product(extents)
        block = self.block(axis)
        start = self.fresh(f"{axis}0")
        self.open_loop(f"for {start} in range(0, {self.text(total)}, {block}):")
        flat = py_name(axis)
        self.emit(f"{flat} = {start} + tl.arange(0, {block})")
        stride: ir.Expr = ir.Const(1)
        for v, ext, lo in reversed(list(zip(rvars, extents, los, strict=True))):
            q = f"{flat} // {self.expr.render(stride, Layout(()), 13)}" if stride != ir.Const(1) \
                else flat
            idx = f"{q} % {self.expr.render(ext, Layout(()), 13)}" if v != rvars[0] else q
            start_text = self.text(lo)
            self.emit(f"{py_name(v)} = {idx}" if start_text == "0" else
                      f"{py_name(v)} = {start_text} + {idx}")
            self.axis_of[v] = axis
            self.tile_name[v] = py_name(v)
            stride = ir.mul(stride, ext)
        self.axis_of[axis] = axis
        self.ranges[axis] = [ir.Binary("<", ir.Var(axis), total, BOOL)]
        self.tile_name[axis] = flat
        return axis, [axis]

    def elementwise_update(self, sec: Section, layout: Layout) -> None:
        """`y[i] op= f(i)`: a reduction with no variable of its own (an update in place, or
        one term inside a host loop) combines each element once, without a loop."""
        s = sec.stmt
        self.conj = conjuncts(extra_condition(s.domain, s.iterators, self.scalars,
                                              self.kernel.context, self.kernel.params))
        value = self.expr.render(s.rhs, layout)
        folded = sec.init is not None  # combined with the identity: the value itself
        if sec.register and not folded:
            value = combine(s.op, py_name(s.lhs.tensor), value, s.lhs.dtype.compute)
        self.finish(sec, value, layout, folded=folded or sec.register, op=s.op)

    def reduction(self, sec: Section, layout: Layout) -> None:
        s = sec.stmt
        if not sec.reduce:
            self.elementwise_update(sec, layout)
            return
        acc, folded = self.accumulator(sec, layout)
        outer_depth = self.depth
        raxis, _ = self.reduction_axis(s, sec.reduce)
        self.conj = conjuncts(extra_condition(s.domain, s.iterators, self.scalars,
                                              self.kernel.context, self.kernel.params))
        full = Layout((*layout, raxis))
        dot = self.dot_operands(s, layout, raxis, sec.reduce)
        pulled = []
        if dot is not None:
            a, b, pulled = dot
            self.emit(f"{acc} = tl.dot({a}, {b}, {acc}{self.precision(a)})")
        else:
            value = self.expr.render(s.rhs, full)
            mask = conjoin([c for v in full for c in self.ranges.get(v, [])] + self.conj)
            if mask is not None:
                ident = self.expr.const(identity(s.op, s.lhs.dtype.compute),
                                        s.lhs.dtype.compute)
                value = f"tl.where({self.text(mask, full)}, {value}, {ident})"
            if s.op == "*=":
                self.use("_lw_mul")
            part = REDUCE_OVER_AXIS[s.op].format(v=value, a=len(full) - 1)
            new = combine(s.op, acc, part, s.lhs.dtype.compute)
            if s.lhs.dtype.compute.is_int and s.lhs.dtype.bits < 32:
                new = self.cast(new, s.lhs.dtype)
            self.emit(f"{acc} = {new}")
        while self.depth > outer_depth:
            self.close_loop()
        for v in sec.reduce:
            self.axis_of.pop(v, None)
        result = acc
        for factor, divide in pulled:
            result = f"{result} {'/' if divide else '*'} {self.expr.render(factor, layout, 13)}"
        if sec.register:
            if result != acc:
                self.emit(f"{acc} = {result}")
            return
        self.finish(sec, result, layout, folded=folded, op=s.op)

    def precision(self, a_name: str) -> str:
        p = self.options.get("input_precision", "ieee")
        return f', input_precision="{p}"' if self.dot_is_f32 else ""

    def dot_operands(self, s, layout: Layout, raxis: str, rvars):
        """(A, B, pulled factors) when the reduction is a contraction tl.dot can do."""
        if s.op != "+=" or len(layout) != 2 or len(rvars) != 1 or \
                s.lhs.dtype.compute != F32:
            return None
        return self.dot_of(s.rhs, layout, raxis)

    def dot_of(self, body, layout, raxis):
        a0, a1 = layout
        factors = split_factors(body)
        ta, tb, pulled = [], [], []
        for f, divide in factors:
            axes = self.expr.axes(f)
            if raxis not in axes:
                pulled.append((f, divide))
            elif divide:
                return None
            elif axes <= {a0, raxis}:
                ta.append(f)
            elif axes <= {raxis, a1}:
                tb.append(f)
            else:
                return None
        if not ta or not tb:
            return None
        mask_a, mask_b = [], []
        for c in self.conj:
            axes = {self.axis_of[v] for v in var_names(c) if v in self.axis_of}
            if raxis not in axes:
                continue
            if axes <= {a0, raxis}:
                mask_a.append(c)
            elif axes <= {raxis, a1}:
                mask_b.append(c)
            else:
                return None
        self.block(a0, dot=True)
        self.block(a1, dot=True)
        self.block(raxis, dot=True)
        # tl.dot needs operands of one type: f16/bf16 loads stay narrow only when both are
        raw_a, raw_b = _narrow_load(ta), _narrow_load(tb)
        raw = raw_a is not None and raw_a == raw_b
        self.dot_is_f32 = not raw
        a = self.operand(ta, Layout((a0, raxis)), mask_a, raw)
        b = self.operand(tb, Layout((raxis, a1)), mask_b, raw)
        return a, b, pulled

    def operand(self, factors, layout: Layout, extra, raw: bool) -> str:
        """One tl.dot operand: the product of `factors` over `layout`, masked; `raw`: the one
        factor is an f16/bf16 load, left in its storage type."""
        saved = self.conj
        self.conj = [c for c in saved if c in extra or not (var_names(c) - self.scalars)]
        if raw:
            text = self.load(factors[0].operand, layout, raw=True)
        else:
            text = " * ".join(self.expr.render(f, layout, 12) for f in factors)
            if not (len(factors) == 1 and isinstance(factors[0], ir.Load)):
                mask = conjoin([c for a in layout for c in self.ranges.get(a, [])] + extra)
                if mask is not None:
                    text = f"tl.where({self.text(mask, layout)}, {text}, 0.0)"
                name = self.fresh("lhs" if layout[0] != layout[-1] else "x")
                self.emit(f"{name} = {text}")
                text = name
        self.conj = saved
        return text

    # -- inline reductions (score matrices) ----------------------------------------------------

    def reduce_value(self, e: Reduce, layout: Layout) -> str:
        key = ("reduce", e, layout)
        if key in self.scope:
            return self.scope[key]
        for name, lo, hi in zip(e.names, e.lower, e.upper, strict=True):
            block = self.block(name, full=(lo, hi))
            if name not in self.axis_of:
                self.tile(name, self.text(lo), block)
            self.ranges[name] = [lt(name, hi)]
        dot = None
        if len(e.names) == 1 and len(layout) == 2 and e.op == "+=" and e.dtype.compute == F32:
            for name, lo, hi in zip(e.names, e.lower, e.upper, strict=True):
                self.block(name, full=(lo, hi), dot=True)
            dot = self.dot_of(e.body, layout, e.names[0])
        result = self.fresh(py_name(e.tensor))
        if dot is not None:
            a, b, pulled = dot
            text = f"tl.dot({a}, {b}{self.precision(a)})"
            for factor, divide in pulled:
                text = f"{text} {'/' if divide else '*'} {self.expr.render(factor, layout, 13)}"
        else:
            full = Layout((*layout, *e.names))
            value = self.expr.render(e.body, full)
            mask = conjoin([c for n in e.names for c in self.ranges[n]])
            ident = self.expr.const(identity(e.op, e.dtype.compute), e.dtype.compute)
            value = f"tl.where({self.text(mask, full)}, {value}, {ident})"
            text = value
            if e.op == "*=":
                self.use("_lw_mul")
            for n in reversed(range(len(layout), len(full))):
                text = REDUCE_OVER_AXIS[e.op].format(v=text, a=n)
        self.emit(f"{result} = {text}")
        self.scope[key] = result
        return result


def _narrow_load(factors) -> str | None:
    """The storage type (f16, bf16) of a dot operand that is one widened load of it, else None."""
    if len(factors) != 1:
        return None
    f = factors[0]
    if isinstance(f, ir.Cast) and isinstance(f.operand, ir.Load) and \
            f.operand.dtype.is_storage_only and f.operand.dtype.name in TL_TYPES:
        return f.operand.dtype.name
    return None
