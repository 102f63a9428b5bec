"""The polyhedral kernel IR: tensors, statements with isl domains and accesses, a schedule tree.

    KernelIR := name, args (call order), tensors, params, statements, schedule, context
    Tensor   := name, dtype, shape (index expressions in the parameters), role
    Statement:= name, iterators, domain (isl set), lhs (a Load used as a store target), op, rhs
    IndexCheck:= an indirect index's values, checked at call time against the tensor it indexes
    DataRange:= a variable's range read from tensors (`where p in row_ptr[i]:row_ptr[i + 1]`)

A statement `S` with iterators (t, i, k) and domain `[N] -> { S[t, i, k] : ... }` assigns
`lhs := rhs` (op "=") or `lhs := lhs <op> rhs` (a reduction op: "+=", "*=", "max=", "min=") once
per point of its domain. Parameters are the size symbols and integer scalar arguments.
The schedule (an isl schedule tree) orders all statement instances; it starts in program order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import islpy as isl

from loopweave.errors import SourcePos
from loopweave.ir import isl_helpers
from loopweave.ir.expr import Binary, Const, Expr, Load, Var, evaluate, is_indirect, loads, to_str
from loopweave.ir.types import BOOL, DType

ROLES = ("in", "inout", "out", "temp", "local")  # local: declared inside a loop body


@dataclass(frozen=True, slots=True)
class Tensor:
    name: str
    dtype: DType
    shape: tuple[Expr, ...]
    role: str  # one of ROLES

    def __str__(self) -> str:
        dims = ", ".join(to_str(d) for d in self.shape)
        return f"{self.name}: {self.role} {self.dtype}[{dims}]"


@dataclass(frozen=True, slots=True)
class ScalarArg:
    name: str
    dtype: DType

    def __str__(self) -> str:
        return f"{self.name}: {self.dtype}"


@dataclass(frozen=True, slots=True)
class DataRange:
    """`where var in lo:hi` with a bound read from an integer input tensor (`row_ptr[i]`, as
    an i64 expression of the outer iterators); None for a side that is affine (that one is in
    the statement's domain). The domain bounds `var` by the extent of what it indexes, so
    dependences hold for any values; the call checks the values against that extent."""

    var: str
    lo: Expr | None
    hi: Expr | None
    text: str  # the clause as the DSL wrote it, for messages
    tensor: str  # var indexes dimension `dim` of `tensor` directly: its extent bounds var
    dim: int  # ("" and -1: it indexes none; `assume` lines bound the values read instead)
    # tensor -> (low, high): the values an `assume` declared for the bound tensors
    declared: tuple[tuple[str, Expr, Expr], ...] = ()

    def guard(self) -> Expr:
        """`lo <= var and var < hi` (the sides read from tensors)."""
        conds = []
        if self.lo is not None:
            conds.append(Binary("<=", self.lo, Var(self.var), BOOL))
        if self.hi is not None:
            conds.append(Binary("<", Var(self.var), self.hi, BOOL))
        return conds[0] if len(conds) == 1 else Binary("and", conds[0], conds[1], BOOL)


@dataclass(frozen=True, eq=False)
class Statement:
    name: str
    iterators: tuple[str, ...]
    domain: isl.Set
    lhs: Load
    op: str  # "=" or a reduction "+=", "*=", "max=", "min="
    rhs: Expr
    pos: SourcePos
    is_init: bool = False  # the identity initialisation in front of a reduction
    enclosing: int = 0  # how many of the iterators (the first) are enclosing DSL `for` loops
    # Ranges read from tensors: the domain holds a bound from the tensors the variable
    # indexes (an over-approximation); each instance runs only inside its DataRange.
    data_ranges: tuple[DataRange, ...] = ()

    def __str__(self) -> str:
        its = ", ".join(self.iterators)
        note = "  (init)" if self.is_init else f"  (line {self.pos.line})"
        return f"{self.name}[{its}]: {to_str(self.lhs)} {self.op} {to_str(self.rhs)}{note}"

    @property
    def reads(self) -> list[Load]:
        """Every load of the right side, plus the left side itself for a reduction."""
        found = loads(self.rhs)
        return found + [self.lhs] if self.op != "=" else found

    def access_map(self, params: tuple[str, ...], access: Load,
                   shape: tuple[Expr, ...] | None = None) -> isl.Map:
        """`{ S[iterators] -> tensor[indices] }` restricted to the statement's domain.

        An indirect index (one that reads a tensor: `table[ids[i], d]`) is an unknown: its
        dimension is unconstrained, or within 0 .. extent - 1 given the tensor's `shape`, so
        the relation holds every element the access may read. Dependences through it are
        conservative, hence sound; that the values lie inside the tensor is checked at call
        time (`KernelIR.index_checks`)."""
        indirect = [k for k, x in enumerate(access.indices) if is_indirect(x)]
        indices = tuple(Const(0) if k in indirect else x for k, x in enumerate(access.indices))
        m = isl_helpers.make_map(params, self.name, self.iterators, access.tensor, indices)
        for k in indirect:
            m = m.drop_constraints_involving_dims(isl.dim_type.out, k, 1)
        if indirect and shape is not None:
            m = m.intersect_range(_inside_along(params, access.tensor, shape, indirect))
        return m.intersect_domain(self.domain)


def _inside_along(params: tuple[str, ...], tensor: str, shape: tuple[Expr, ...],
                  dims: list[int]) -> isl.Set:
    """`{ tensor[e] : 0 <= e_k < shape[k] for k in dims }` (the other dimensions free)."""
    names = tuple(f"lw_e{k}" for k in range(len(shape)))
    conds: list[Expr] = []
    for k in dims:
        conds.append(Binary("<=", Const(0), Var(names[k]), BOOL))
        try:
            isl_helpers.to_isl(shape[k])
        except ValueError:  # a temporary's extent with a case split: bounded below only
            continue
        conds.append(Binary("<", Var(names[k]), shape[k], BOOL))
    return isl_helpers.make_set(params, tensor, names, conds)


@dataclass(frozen=True, slots=True)
class CacheSpec:
    """A tensor's footprint in one loop, kept in a local buffer (cache_read / cache_write).

    The loop at schedule depth `depth` (marked "cache:<tag>") gets the buffer; element e of the
    tensor lives at buffer[e - offsets], the offsets being affine in the enclosing loop
    iterators c0 .. c<depth-1> (isl's names), and the buffer's dimensions in the order `layout`
    gives (a transposed pack). `copy_in` fills the buffer before the loop,
    `copy_out` writes it back after.
    """

    tag: str
    tensor: str
    buffer: Tensor  # role "local"; shape: the box sizes (the last one maybe padded)
    offsets: tuple[Expr, ...]
    sizes: tuple[int, ...]
    depth: int
    copy_in: bool
    copy_out: bool
    layout: tuple[int, ...] = ()  # buffer dimension k holds tensor dimension layout[k]
    panel: int = 0  # > 0: the last buffer dimension x is cut, buf[x // panel][..][x % panel]
    #: the buffer holds the elements converted to its type (cache_read's dtype), read in
    #: place of the loop's conversions of the tensor's elements to that type
    converted: bool = False
    #: an accumulator that starts from this constant instead of the tensor's elements: the
    #: statement `folds` (a reduction's initialisation) stored it and nothing else reads it,
    #: so that statement need not run (passes/cache.py `_constant_init`)
    fill: Expr | None = None
    folds: str = ""
    #: the sizes at which the buffer may start from `fill` (None: all): where the reduction
    #: runs in several blocks of the loops around, `folds` runs and the buffer copies in
    fill_when: Expr | None = None
    #: per tensor dimension, its first element where an edge tile may run as a whole tile
    #: pulled back to end at the edge, recomputing elements of the tile before it (the same
    #: sums: passes/cache.py `_overlap_from`); None where it may not; () for none
    overlap_from: tuple[Expr | None, ...] = ()


@dataclass(frozen=True, slots=True)
class FoldedInit:
    """A reduction's constant initialisation folded into the GEMM call that runs the
    reduction (`statement`, a contraction alone in its three loops, the reduction marked
    `dot`): the call writes `fill` + the products where `when` holds (None: always), so that
    the statement `init` need not store the constant first (passes/cache.py
    `folded_gemm_init`; backends/x86_gemm.py)."""

    statement: str
    init: str
    fill: Expr
    when: Expr | None = None


@dataclass(frozen=True, slots=True)
class IndexCheck:
    """What a call checks before it runs, for one indirect index (`table[ids[i], d]`): every
    element of the input `index` in the box `lo` <= e < `hi` (per dimension, in the
    parameters: the elements the kernel reads) lies in 0 .. extent - 1 of dimension `dim` of
    `tensor` (0 .. extent for a `bound` of a range read from tensors, whose variable indexes
    that dimension). `access` is the DSL text of the read, `line` its source line."""

    index: str
    lo: tuple[Expr, ...]
    hi: tuple[Expr, ...]
    tensor: str
    dim: int
    access: str
    line: int
    bound: bool = False  # a range bound (`row_ptr` in `p in row_ptr[i]:...`): may equal extent
    # The values allowed, low .. high inclusive, when given: what an `assume` declared (no
    # `tensor`: ""), or a range bound's 0 .. extent fixed when the kernel was checked (a
    # temporary's shape may shrink in a schedule: storage reduction).
    low: Expr | None = None
    high: Expr | None = None


def allowed_values(kernel: KernelIR, c: IndexCheck, env: dict[str, int]) -> tuple[int, int]:
    """The values check `c` allows at the sizes `env`, first .. last inclusive: 0 .. extent - 1
    for a gather's index, 0 .. extent for a range bound (`row_ptr` in `where p in
    row_ptr[i]:row_ptr[i + 1]`: an exclusive end), or what an `assume` declared."""
    if c.low is not None and c.high is not None:
        return evaluate(c.low, env), evaluate(c.high, env)
    return 0, evaluate(kernel.tensors[c.tensor].shape[c.dim], env) - 1 + c.bound


def type_keeps_within(kernel: KernelIR, c: IndexCheck, first: int, last: int) -> bool:
    """Whether every value of the index tensor's type lies in first .. last: a u8 index into
    a dimension of 256 needs no check (a LUT GEMM's table; the check cost more than the
    kernel)."""
    dtype = kernel.tensors[c.index].dtype
    if not dtype.is_int:
        return False
    signed = dtype.kind == "int"
    low, high = (-(1 << (dtype.bits - 1)), (1 << (dtype.bits - 1)) - 1) if signed else \
        (0, (1 << dtype.bits) - 1)
    return first <= low and high <= last


@dataclass(frozen=True, eq=False)
class KernelIR:
    name: str
    args: tuple[Tensor | ScalarArg, ...]  # in call order: inputs, inouts and scalars
    outputs: tuple[Tensor, ...]
    temporaries: tuple[Tensor, ...]
    params: tuple[str, ...]  # isl parameters: sizes, then integer scalars
    sizes: tuple[str, ...]  # size symbols bound from argument shapes
    assumptions: tuple[Expr, ...]  # conditions on parameters (`assume` lines)
    context: isl.Set  # what the parameters satisfy: sizes >= 0 and the assumptions
    statements: tuple[Statement, ...]
    schedule: isl.Schedule
    source: str = ""
    locals: tuple[Tensor, ...] = ()  # temporaries shrunk to a loop body by storage reduction
    caches: tuple[CacheSpec, ...] = ()
    index_checks: tuple[IndexCheck, ...] = ()  # indirect indices, checked at call time
    folded_inits: tuple[FoldedInit, ...] = ()  # initialisations GEMM calls may fold
    aligned: tuple[str, ...] = ()  # argument tensors a call runs on 64-byte lines (`align`)

    @cached_property
    def tensors(self) -> dict[str, Tensor]:
        ts = [a for a in self.args if isinstance(a, Tensor)]
        return {t.name: t for t in (*ts, *self.outputs, *self.temporaries, *self.locals)}

    @cached_property
    def statement(self) -> dict[str, Statement]:
        return {s.name: s for s in self.statements}

    def with_schedule(self, schedule: isl.Schedule) -> KernelIR:
        """The same kernel under another schedule (what every pass returns)."""
        return replace(self, schedule=schedule)

    def domains(self) -> isl.UnionSet:
        result = isl.UnionSet.empty(self.context.get_space())
        for s in self.statements:
            result = result.union(isl.UnionSet.from_set(s.domain))
        return result

    def access_relations(self) -> tuple[isl.UnionMap, isl.UnionMap]:
        """(reads, writes) of all statements, as union maps statement instance -> element."""
        empty = isl.UnionMap.empty(self.context.get_space())
        reads, writes = empty, empty
        for s in self.statements:
            for access in s.reads:
                shape = self.tensors[access.tensor].shape
                reads = reads.union(isl.UnionMap.from_map(s.access_map(self.params, access,
                                                                       shape)))
            writes = writes.union(isl.UnionMap.from_map(s.access_map(self.params, s.lhs)))
        return reads, writes

    def __str__(self) -> str:
        lines = [f"kernel {self.name}"]
        lines += [f"  arg {a}" for a in self.args]
        lines += [f"  out {t}" for t in self.outputs]
        lines += [f"  tmp {t}" for t in self.temporaries]
        lines += [f"  local {t}" for t in self.locals]
        if self.assumptions:
            lines.append("  assume " + " and ".join(to_str(a) for a in self.assumptions))
        for s in self.statements:
            lines.append(f"  {s}")
            lines.append(f"      domain {s.domain}")
        lines.append(f"  schedule {self.schedule}")
        return "\n".join(lines)
