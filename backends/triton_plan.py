"""Triton lowering, step 1: decide what runs where, from the polyhedral IR and its dependences.

    plan(kernel) -> Plan := host loops and launches, in program order
    Launch := one @triton.jit kernel: a group of statements sharing a launch grid

A statement's iterators split into host-loop variables (a DSL `for` around several statements:
the launcher loops, one launch sequence per iteration), grid variables (a left-side index no
dependence is carried by: program ids and tl.arange tiles), sequential variables (a left-side
index a dependence is carried by: a scalar `for` inside each program) and reduction variables
(on the right side only: a loop over blocks with an accumulator). A statement whose reduction
cannot be blocked (its right side reads what it writes) runs all its loops in one program.

Before grouping, element-wise temporaries (`e[i, j] = exp(...)`) are inlined into their readers,
and score matrices that feed a max-reduction (attention's `s = Q @ K^T`) become `Reduce` values
computed where they are used, so they are never written to memory.
Consecutive statements that read a temporary the group writes, and whose dependences all stay
within one grid point, fuse into one kernel; temporaries indexed by the grid alone then live in
registers (softmax's row max and sum).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import islpy as isl

from loopweave.backends.triton_domains import bounds, extra_condition, project_onto
from loopweave.backends.triton_units import Unit, fold_inits
from loopweave.ir import expr as ir
from loopweave.ir import isl_helpers
from loopweave.ir.dependences import (
    Dependences,
    carried_between_elements,
    carries,
    iteration_map,
    same_time,
    within_one_iteration,
)
from loopweave.ir.kernel import KernelIR, Statement

#: Tensors the kernel allocates for itself: temporaries, and the locals a schedule's storage
#: reduction made of fused temporaries (the launcher allocates those, see triton_module).
SCRATCH_ROLES = ("temp", "local")


def scratch_tensors(kernel: KernelIR) -> tuple:
    """The kernel's temporaries and locals (see SCRATCH_ROLES)."""
    return (*kernel.temporaries, *kernel.locals)


@dataclass(frozen=True)
class Reduce:
    """A reduction computed where it is used: `op` over `body` for `names` in [lower, upper]."""

    op: str
    body: ir.Expr
    names: tuple[str, ...]
    lower: tuple[ir.Expr, ...]
    upper: tuple[ir.Expr, ...]  # inclusive
    dtype: object
    tensor: str  # the temporary it replaces (for names in the source)


@dataclass
class Section:
    """One statement inside a launch, with its iterators classified."""

    stmt: Statement
    init: Statement | None  # a folded identity initialisation
    grid: tuple[str, ...]
    seq: tuple[str, ...]
    inner: tuple[str, ...]  # tiled left-side variables that are not grid variables
    reduce: tuple[str, ...]
    register: bool = False  # the result stays in registers (a row-state temporary)

    @property
    def tensor(self) -> str:
        return self.stmt.lhs.tensor


@dataclass
class Launch:
    name: str
    sections: list[Section]
    grid: tuple[str, ...]
    host: tuple[str, ...]
    registers: frozenset[str] = frozenset()
    sequential: bool = False  # the fallback: every loop scalar, in program order


@dataclass
class HostLoop:
    var: str
    lower: ir.Expr
    upper: ir.Expr  # inclusive
    body: list
    carried: str | None = None


@dataclass
class Plan:
    kernel: KernelIR  # after inlining
    body: list  # HostLoop | Launch
    warnings: list[str] = field(default_factory=list)

    def launches(self) -> list[Launch]:
        found, todo = [], list(self.body)
        while todo:
            item = todo.pop(0)
            if isinstance(item, HostLoop):
                todo = list(item.body) + todo
            else:
                found.append(item)
        return found


# -- the plan ------------------------------------------------------------------------------------

class Planner:
    def __init__(self, kernel: KernelIR):
        self.kernel = kernel
        self.warnings: list[str] = []
        self.counter = 0

    # iterators by role ----------------------------------------------------------------------

    def lhs_vars(self, s: Statement) -> tuple[str, ...]:
        used = {x.name for ix in s.lhs.indices for x in ir.walk(ix) if isinstance(x, ir.Var)}
        return tuple(v for v in s.iterators if v in used)

    def carried(self, s: Statement, host: tuple[str, ...], candidates) -> dict[str, str]:
        """The variables in `candidates` a dependence of `s` on itself is carried by (with the
        tensor), for fixed host-loop variables."""
        found: dict[str, str] = {}
        for d in self.deps.all:
            if d.source != s.name or d.sink != s.name:
                continue
            rel = within_one_iteration(self.kernel, d, host)
            if rel.is_empty():
                continue
            for v in candidates:
                if v not in found and carries(self.kernel, rel, [v], host):
                    found[v] = d.tensor
        return found

    def blockable(self, s: Statement, host, lhs_vars) -> bool:
        """A reduction can be computed in blocks unless its right side reads an element that
        another instance for the same output element writes."""
        if s.op == "=":
            return True
        write = s.access_map(self.kernel.params, s.lhs)
        for load in ir.loads(s.rhs):
            if load.tensor != s.lhs.tensor:
                continue
            read = s.access_map(self.kernel.params, load)
            pairs = write.apply_range(read.reverse())  # x writes what y reads
            keep = same_time(iteration_map(self.kernel, {s.name: (*host, *lhs_vars)}))
            others = isl.UnionMap.from_map(pairs.subtract(isl.Map.identity(pairs.get_space())))
            if not others.intersect(keep).is_empty():
                return False
        return True

    # the host structure ---------------------------------------------------------------------

    def host_structure(self) -> list:
        """[(host var, [items])] nesting from the schedule tree: bands shared by statements."""
        root = self.kernel.schedule.get_root()
        return self._walk(root, ())

    def _walk(self, node, host) -> list:
        kind = node.get_type()
        t = isl.schedule_node_type
        if kind in (t.domain, t.filter, t.mark):
            return self._walk(node.get_child(0), host) if node.n_children() else []
        if kind in (t.sequence, t.set):
            out = []
            for i in range(node.n_children()):
                out += self._walk(node.get_child(i), host)
            return out
        stmts = self._statements_under(node)
        if kind == t.band and len(stmts) > 1:
            var = stmts[0].iterators[len(host)]
            return [("loop", var, self._walk(node.get_child(0), (*host, var)), stmts)]
        return [("stmt", s, host) for s in stmts]

    def _statements_under(self, node) -> list[Statement]:
        names = set()
        dom = node.get_domain()
        for m in isl_helpers.maps_of(isl.UnionMap.from_domain(dom)):
            names.add(m.get_tuple_name(isl.dim_type.in_))
        return [s for s in self.kernel.statements if s.name in names]

    # inlining --------------------------------------------------------------------------------

    def inline(self, structure) -> None:
        """Inline element-wise temporaries and score matrices into their readers (in place in
        `self.kernel`)."""
        for body in self._bodies(structure):
            self._inline_body(body)

    def _bodies(self, structure):
        flat = [x for x in structure if x[0] == "stmt"]
        yield [x[1].name for x in flat]
        for x in structure:
            if x[0] == "loop":
                yield from self._bodies(x[2])

    def _inline_body(self, names: list[str]) -> None:
        k = self.kernel
        for pos, name in enumerate(names):
            if name not in self.current:
                continue
            s = self.current[name]
            t = k.tensors[s.lhs.tensor]
            if t.role not in SCRATCH_ROLES or s.is_init:
                continue
            writers = [n for n in names if n in self.current
                       and self.current[n].lhs.tensor == t.name]
            readers = [n for n in self.current if n != name and any(
                ld.tensor == t.name for ld in ir.loads(self.current[n].rhs))]
            if not readers or any(n not in names[pos + 1:] for n in readers):
                continue
            if s.op == "=" and writers == [name]:
                value = self._elementwise(s)
            elif s.op != "=" and len(writers) == 2 and self.current[writers[0]].is_init \
                    and names.index(writers[0]) == pos - 1 and self._feeds_max(t.name, readers):
                value = self._reduction(s)
            else:
                continue
            if value is None or not self._inputs_stable(s, names, pos, readers):
                continue
            first = self.current[writers[0]]  # the identity initialisation writes everything
            if not all(self._covered(first, self.current[r], t.name) for r in readers):
                continue
            for r in readers:
                rs = self.current[r]
                self.current[r] = replace(rs, rhs=ir.rewrite(rs.rhs, value))
            for w in writers:
                del self.current[w]
            self.inlined.add(t.name)

    def _elementwise(self, s: Statement):
        lhs = s.lhs.indices
        if not all(isinstance(x, ir.Var) for x in lhs) or len({x.name for x in lhs}) != len(lhs):
            return None
        own = {x.name for x in lhs}
        if any(v not in own and v not in self.host_of[s.name] for v in s.iterators):
            return None

        def value(e):
            if isinstance(e, ir.Load) and e.tensor == s.lhs.tensor:
                mapping = {x.name: i for x, i in zip(lhs, e.indices, strict=True)}
                return ir.substitute(s.rhs, mapping)
            return None
        return value

    def _reduction(self, s: Statement):
        lhs = s.lhs.indices
        if not all(isinstance(x, ir.Var) for x in lhs) or self.host_of[s.name]:
            return None
        own = [x.name for x in lhs]
        rvars = tuple(v for v in s.iterators if v not in own)
        # computed where used, so only from inputs nothing in the kernel writes
        if not rvars or any(self.kernel.tensors[ld.tensor].role != "in" for ld in ir.loads(s.rhs)):
            return None
        if extra_condition(s.domain, s.iterators, (), self.kernel.context, ()) is not None:
            return None
        lo_hi = [bounds(s.domain, s.iterators, v, (), self.kernel.context, self.kernel.params)
                 for v in rvars]
        fresh = {v: ir.Var(f"{v}_{s.lhs.tensor}") for v in rvars}

        def value(e):
            if isinstance(e, ir.Load) and e.tensor == s.lhs.tensor:
                mapping = {x: i for x, i in zip(own, e.indices, strict=True)} | fresh
                return Reduce(s.op, ir.substitute(s.rhs, mapping),
                              tuple(f.name for f in fresh.values()),
                              tuple(lo for lo, _ in lo_hi), tuple(hi for _, hi in lo_hi),
                              s.lhs.dtype, s.lhs.tensor)
            return None
        return value

    def _feeds_max(self, tensor: str, readers: list[str]) -> bool:
        return any(self.current[r].op in ("max=", "min=") for r in readers)

    def _inputs_stable(self, s: Statement, names, pos, readers) -> bool:
        reads = {ld.tensor for ld in ir.loads(s.rhs)}
        last = max(names.index(r) for r in readers)
        return not any(n in self.current and self.current[n].lhs.tensor in reads
                       for n in names[pos + 1:last + 1])

    def _covered(self, s: Statement, reader: Statement, tensor: str) -> bool:
        params = self.kernel.params
        written = s.access_map(params, s.lhs).range()
        for ld in ir.loads(reader.rhs):
            if ld.tensor == tensor and not reader.access_map(params, ld).range().is_subset(written):
                return False
        return True

    # grouping --------------------------------------------------------------------------------

    def classify(self, unit: Unit, host) -> tuple[tuple[str, ...], dict[str, str], bool]:
        """(left-side variables, carried ones with their tensor, blockable)."""
        s = unit.stmt
        lhs = tuple(v for v in self.lhs_vars(s) if v not in host)
        carried = self.carried(s, host, lhs)
        if s.op == "=":  # repeated assignments: variables not on the left stay in order
            for v in s.iterators:
                if v not in host and v not in lhs:
                    carried.setdefault(v, s.lhs.tensor)
        # a time loop around an in-place update stays outside the left side's loops
        outer = [v for v in s.iterators[:min((s.iterators.index(v) for v in lhs),
                                             default=0)] if v not in host]
        if s.op != "=":
            for v in carried_between_elements(self.kernel, self.deps.all, s, outer, host):
                carried.setdefault(v, s.lhs.tensor)
        return lhs, carried, self.blockable(s, host, lhs)

    def section(self, unit: Unit, host, grid) -> Section:
        s = unit.stmt
        lhs, carried, _ = self.classify(unit, host)
        seq = tuple(v for v in s.iterators if v not in host and (v in carried or (
            s.op == "=" and v not in lhs)))
        inner = tuple(v for v in lhs if v not in grid and v not in seq)
        red = tuple(v for v in s.iterators if v not in host and v not in lhs and v not in seq) \
            if s.op != "=" else ()
        return Section(s, unit.init, grid, seq, inner, red)

    def fusable(self, group: list[Unit], cand: Unit, host) -> tuple[str, ...] | None:
        written = {u.stmt.lhs.tensor for u in group}
        temps = {t.name for t in scratch_tensors(self.kernel)}
        if not any(ld.tensor in written & temps for ld in ir.loads(cand.stmt.rhs)):
            return None
        members = [*group, cand]
        prefixes = []
        for u in members:
            lhs, carried, ok = self.classify(u, host)
            if not ok:
                return None
            names = []
            for x in u.stmt.lhs.indices:
                if isinstance(x, ir.Var) and x.name in lhs and x.name not in carried:
                    names.append(x.name)
                else:
                    break
            prefixes.append(names)
        r = 0
        while all(len(p) > r for p in prefixes) and len({p[r] for p in prefixes}) == 1:
            r += 1
        if r == 0:
            return None
        grid = tuple(prefixes[0][:r])
        stmts = [s for u in members for s in u.stmts]
        names = {s.name for s in stmts}
        for d in self.deps.all:
            if d.source not in names or d.sink not in names:
                continue
            if any(carries(self.kernel, d, [g], host) for g in grid):
                return None
        return grid

    def launch_for(self, group: list[Unit], host, grid) -> Launch:
        self.counter += 1
        sections = [self.section(u, host, grid) for u in group]
        name = f"{self.kernel.name}_{self.counter}"
        launch = Launch(name, sections, grid, host)
        s0 = group[0].stmt
        lhs, carried, ok = self.classify(group[0], host)
        if len(group) == 1 and not ok:
            launch.sequential = True
            sec = sections[0]
            sec.grid, sec.seq, sec.inner, sec.reduce = (), tuple(
                v for v in s0.iterators if v not in host), (), ()
            launch.grid = ()
            self.warn(s0, sec.seq, f"its right side reads {s0.lhs.tensor}, which it updates",
                      "inside one program")
        elif len(group) == 1:
            sec = sections[0]
            seq = sec.seq
            if seq:
                why = ", ".join(sorted({carried.get(v, s0.lhs.tensor) for v in seq}))
                where = "inside each program" if sec.grid else "inside one program"
                self.warn(s0, seq, f"a dependence on {why} is carried", where)
        # row-state temporaries written and read only here, indexed by the grid alone
        regs = set()
        written = {u.stmt.lhs.tensor for u in group}
        for t in scratch_tensors(self.kernel):
            if t.name not in written or len(grid) == 0:
                continue
            uses = [(s, ld) for s in self.current.values() for ld in
                    ([s.lhs] + ir.loads(s.rhs)) if ld.tensor == t.name]
            inside = {s.name for u in group for s in u.stmts}
            if all(s.name in inside and _is_grid_index(ld, grid) for s, ld in uses):
                regs.add(t.name)
        for sec in sections:
            sec.register = sec.tensor in regs
        launch.registers = frozenset(regs)
        return launch

    def warn(self, s: Statement, loops, why: str, where: str) -> None:
        names = ", ".join(loops)
        loop, verb = ("loops", "run") if len(loops) > 1 else ("loop", "runs")
        self.warnings.append(f"kernel '{self.kernel.name}', line {s.pos.line}: {loop} {names} "
                             f"of `{s.lhs.tensor}[...] {s.op} ...` {verb} sequentially {where} "
                             f"({why})")

    def same_box(self, init: Statement, update: Statement, host) -> bool:
        """Whether the update's grid (its left side's ranges) covers the initialisation's."""
        names = {x.name for ix in init.lhs.indices for x in ir.walk(ix) if isinstance(x, ir.Var)
                 } & set(init.iterators) & set(update.iterators) - set(host)
        k = self.kernel
        return all(bounds(init.domain, init.iterators, v, set(host), k.context, k.params) ==
                   bounds(update.domain, update.iterators, v, set(host), k.context, k.params)
                   for v in sorted(names))

    def groups(self, stmts: list[Statement], host) -> list[Launch]:
        units = fold_inits(stmts, lambda a, b: self.same_box(a, b, host), self.kernel.params)
        launches = []
        i = 0
        while i < len(units):
            group = [units[i]]
            lhs, carried, _ = self.classify(units[i], host)
            grid = tuple(v for v in lhs if v not in carried)
            i += 1
            while i < len(units):
                g = self.fusable(group, units[i], host)
                if g is None:
                    break
                group.append(units[i])
                grid = g
                i += 1
            launches.append(self.launch_for(group, host, grid))
        return launches

    def body(self, structure, host) -> list:
        out: list = []
        pending: list[Statement] = []
        for item in structure:
            if item[0] == "stmt":
                if item[1].name in self.current:
                    pending.append(self.current[item[1].name])
                continue
            out += self.groups(pending, host)
            pending = []
            _, var, inner, stmts = item
            lo, hi = self.host_loop_bounds(stmts, host, var)
            loop = HostLoop(var, lo, hi, self.body(inner, (*host, var)))
            loop.carried = self.host_carried(stmts, host, var)
            if loop.carried:
                self.warnings.append(f"kernel '{self.kernel.name}': loop {var} runs as a "
                                     f"sequence of launches ({loop.carried})")
            out.append(loop)
        return out + self.groups(pending, host)

    def host_loop_bounds(self, stmts, host, var) -> tuple[ir.Expr, ir.Expr]:
        """Inclusive bounds of host loop `var` over every statement it holds (not only the
        first: cholesky's `A[i, j] -= ... where k in 0:j` starts at i = 2, its `sqrt` at
        i = 0); each launch inside masks its own statement's domain."""
        keep = (*host, var)
        union = None
        for s in stmts:
            if var not in s.iterators:
                continue
            projected, _ = project_onto(s.domain, s.iterators, keep)
            projected = projected.reset_tuple_id().align_params(self.kernel.context.get_space())
            union = projected if union is None else union.union(projected)
        return bounds(union.coalesce(), keep, var, host, self.kernel.context,
                      self.kernel.params)

    def host_carried(self, stmts, host, var) -> str | None:
        names = {s.name for s in stmts}
        for d in self.deps.all:
            if d.source in names and d.sink in names and carries(self.kernel, d, [var], host):
                return f"a dependence on {d.tensor} is carried by {var}"
        return None

    def run(self) -> Plan:
        structure = self.host_structure()
        self.current = {s.name: s for s in self.kernel.statements}
        self.host_of = {}
        self._record_host(structure, ())
        self.inlined: set[str] = set()
        self.inline(structure)
        kept = [self.current[s.name] for s in self.kernel.statements if s.name in self.current]
        domains = isl.UnionSet.empty(self.kernel.context.get_space())
        for s in kept:
            domains = domains.union(isl.UnionSet.from_set(s.domain))
        self.kernel = replace(self.kernel, statements=tuple(kept),
                              schedule=self.kernel.schedule.intersect_domain(domains))
        self.deps = Dependences(self.kernel)
        body = self.body(structure, ())
        return Plan(self.kernel, body, self.warnings)

    def _record_host(self, structure, host) -> None:
        for item in structure:
            if item[0] == "stmt":
                self.host_of[item[1].name] = host
            else:
                self._record_host(item[2], (*host, item[1]))


def _is_grid_index(load: ir.Load, grid) -> bool:
    return len(load.indices) == len(grid) and all(
        isinstance(x, ir.Var) and x.name == g for x, g in zip(load.indices, grid, strict=True))


def plan(kernel: KernelIR) -> Plan:
    """Where each statement of `kernel` runs (see the module docstring)."""
    return Planner(kernel).run()
