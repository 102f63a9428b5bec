"""Random valid loopweave kernels, built from the grammar (frontend/grammar.lark). Random
legal schedules for them: tests/fuzz/random_schedules.py.

`generate(seed)` returns a `KernelSpec`: the same seed always gives the same kernel. A spec is
structured (tensors, statements with their accesses, expression trees, `where` clauses, one
optional time loop), so that the shrinker (tests/fuzz/shrink.py) can drop and simplify
parts of it; `spec.source()` renders it as DSL text, `spec.sizes` and `spec.scalars` are the
values of its sizes and scalar parameters for a run.

What the kernels contain: 1-4 statements writing temporaries, outputs and `inout` tensors (in
place too), of ranks 0-4; affine accesses with offsets (`A[i - 1]`), strides (`A[2*i + 1]`),
reversals (`A[N - 1 - i]`), windows (`A[i + r]`) and literal indices; `=`, `+=`, `-=`, `max=`,
`min=`, `*=`; `where` ranges and triangles (`j <= i`, `0 <= i - j < 3`); `for t in 0:T` and
`reversed(0:T)` time loops; `assume` lines; every element type (int, f16, bf16, f32, f64) with
casts where types meet; producer-consumer chains through temporaries.

Why every kernel is valid (in bounds for every size the `assume` lines allow): an index
variable `v` of size `S` ranges over `lo : S - hi` (or `0 : S / a` when it is used with stride
`a`), so `v + c` with `-lo <= c <= hi`, `S - 1 - v`, and `a*v + c` with `0 <= c < a` stay inside
a dimension of extent `S`; a window variable `r in 0:w` indexes literal dimensions of extent `w`
or goes with a variable whose range leaves `w - 1` spare (`v + r`). A temporary's first write
covers its whole box, so nothing reads an element no write has reached. Numerics stay tame:
divisions are by `1.5 + abs(x)` or literals, `exp` of `-abs(x)`, no float-to-int casts, and
integer shifts are by small literals.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field, replace

FLOAT_TYPES = ("f32", "f64", "f16", "bf16")
INT_TYPES = ("i32", "i64", "i16", "i8", "u8")
SIZE_NAMES = ("N", "M", "K", "L")
VAR_NAMES = ("i", "j", "k", "l", "m", "n", "p", "q")
# Tiny sizes, mostly odd (partial vectors and tiles everywhere), a few past a vector or a tile.
SIZE_VALUES = (1, 2, 3, 3, 5, 5, 5, 7, 7, 9, 11, 13, 17, 33)
MAX_ITERATIONS = 6000  # per statement (times the time loop): keeps the interpreters quick


# -- the structure of a kernel ----------------------------------------------------------------

@dataclass(frozen=True)
class Node:
    """An expression: `fmt` with its children's text in place of {0}, {1}, ...; a leaf has no
    children (a literal, a load, an index or loop variable, a scalar parameter)."""

    fmt: str
    args: tuple[Node, ...] = ()
    load: Access | None = None  # set on a load leaf

    def render(self) -> str:
        if self.load is not None:
            return self.load.render()
        return self.fmt.format(*(a.render() for a in self.args))

    def walk(self):
        """Every node, this one first."""
        yield self
        for a in self.args:
            yield from a.walk()

    def loads(self) -> list[Access]:
        return [n.load for n in self.walk() if n.load is not None]


@dataclass(frozen=True)
class Access:
    tensor: str
    indices: tuple[str, ...]
    bare: bool = False  # a 0-d tensor written as its bare name rather than `x[]`

    def render(self) -> str:
        if not self.indices and self.bare:
            return self.tensor
        return f"{self.tensor}[{', '.join(self.indices)}]"


@dataclass(frozen=True)
class TensorDecl:
    name: str
    dtype: str
    dims: tuple[str, ...]  # size names or literals
    role: str  # "in", "inout", "out" or "temp" (temporaries are not declared)


@dataclass(frozen=True)
class Stmt:
    lhs: Access
    op: str
    rhs: Node
    where: tuple[str, ...]  # ranges and conditions
    in_loop: bool = False  # inside the kernel's time loop

    def render(self) -> str:
        text = f"{self.lhs.render()} {self.op} {self.rhs.render()}"
        return text + (f"  where {', '.join(self.where)}" if self.where else "")


@dataclass(frozen=True)
class KernelSpec:
    name: str
    tensors: tuple[TensorDecl, ...]  # creation order
    scalars: tuple[tuple[str, str], ...]  # (name, dtype)
    statements: tuple[Stmt, ...]
    loop: str = ""  # the time loop's header, e.g. "for t in 0:T", around the in_loop statements
    assumes: tuple[str, ...] = ()
    sizes: dict = field(default_factory=dict)  # size name -> value for a run
    scalar_values: dict = field(default_factory=dict)  # scalar name -> value for a run

    def source(self) -> str:
        """The DSL text: only what the statements still use is declared."""
        text = self._body_text()
        used = _names_in(text + " " + " ".join(self.assumes))
        params, outs = [], []
        for t in self.tensors:
            if t.name not in used or t.role == "temp":
                continue
            inout = "inout " if t.role == "inout" else ""
            decl = f"{t.name}: {inout}{t.dtype}[{', '.join(t.dims)}]"
            (outs if t.role == "out" else params).append(decl)
        params += [f"{n}: {ty}" for n, ty in self.scalars if n in used]
        head = f"kernel {self.name}({', '.join(params)})"
        if outs:
            head += f" -> ({', '.join(outs)})"
        lines = [head + " {"]
        # an assume about a size only a temporary had is dropped (seed 6415: `assume M >= 1`
        # with no declared M is an error)
        declared = _names_in(" ".join(params + outs))
        lines += [f"    assume {a}" for a in self.assumes if _names_in(a) <= declared]
        lines.append(text)
        lines.append("}")
        return "\n".join(line for line in lines if line) + "\n"

    def _body_text(self) -> str:
        lines, opened = [], False
        for s in self.statements:
            if s.in_loop and not opened:
                lines.append(f"    {self.loop} {{")
                opened = True
            if opened and not s.in_loop:
                lines.append("    }")
                opened = False
            lines.append(("        " if s.in_loop else "    ") + s.render())
        if opened:
            lines.append("    }")
        return "\n".join(lines)

    def tensor(self, name: str) -> TensorDecl:
        return next(t for t in self.tensors if t.name == name)

    def run_sizes(self) -> dict:
        """The sizes and integer scalars a run binds: what the shapes are evaluated with."""
        return {**self.sizes, **{n: v for n, v in self.scalar_values.items() if isinstance(v, int)}}


def _names_in(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_]\w*", text))


# -- index variables ----------------------------------------------------------------------

@dataclass(frozen=True)
class IndexVar:
    """An index variable of a statement: its size (or window literal) and range."""

    name: str
    size: str | None  # a size name; None for a window variable
    lo: int = 0
    hi: int = 0  # the range is lo : size - hi
    stride: int = 1  # > 1: the range is 0 : size / stride, used as stride*v + c
    window: int = 0  # a window variable: range 0 : window

    def range_text(self) -> str:
        if self.window:
            return f"{self.name} in 0:{self.window}"
        if self.stride > 1:
            return f"{self.name} in 0:{self.size} / {self.stride}"
        upper = f"{self.size} - {self.hi}" if self.hi else self.size
        return f"{self.name} in {self.lo}:{upper}"

    @property
    def needs_range(self) -> bool:
        return bool(self.window or self.stride > 1 or self.lo or self.hi)


def index_choices(v: IndexVar, dim: str) -> list[str]:
    """The indices of a dimension of extent `dim` that `v` may give, in bounds."""
    if v.window:
        return [v.name] if dim.isdigit() and int(dim) >= v.window else []
    if dim != v.size:
        return []
    if v.stride > 1:
        return [v.name] + [f"{v.stride}*{v.name} + {c}" if c else f"{v.stride}*{v.name}"
                           for c in range(v.stride)]
    out = [v.name]
    out += [f"{v.name} - {-c}" if c < 0 else f"{v.name} + {c}"
            for c in range(-v.lo, v.hi + 1) if c]
    out.append(f"{v.size} - 1 - {v.name}")
    return out


# -- the generator ----------------------------------------------------------------------------

class _Builder:
    """The state of one kernel being generated."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.seed = seed
        self.tensors: list[TensorDecl] = []
        self.scalars: list[tuple[str, str]] = []
        self.statements: list[Stmt] = []
        self.assumes: set[str] = set()
        self.written: list[str] = []  # tensors written so far, in order
        self.sizes: dict[str, int] = {}
        self.scalar_values: dict[str, object] = {}
        self.next_input = 0

    # sizes, names, types ----------------------------------------------------------------

    def pick_size(self) -> str:
        name = self.rng.choice(SIZE_NAMES[:self.n_sizes])
        if name not in self.sizes:
            self.sizes[name] = self.rng.choice(SIZE_VALUES)
        return name

    def new_name(self, prefix: str) -> str:
        taken = {t.name for t in self.tensors}
        n = 0
        while f"{prefix}{n}" in taken:
            n += 1
        return f"{prefix}{n}"

    def input_name(self) -> str:
        name = "ABCDEFGHPQRUVWXYZ"[self.next_input % 17] + ("" if self.next_input < 17 else "1")
        self.next_input += 1
        return name

    def pick_dtype(self) -> str:
        r = self.rng.random()
        if r < 0.45:
            return "f32"
        if r < 0.6:
            return "f64"
        if r < 0.7:
            return self.rng.choice(("f16", "bf16"))
        return self.rng.choice(INT_TYPES)

    # statements ----------------------------------------------------------------------------

    def kernel(self) -> KernelSpec:
        rng = self.rng
        self.n_sizes = rng.randint(1, 4)
        n = rng.randint(1, 4)
        loop_span = None
        loop = ""
        if rng.random() < 0.25:
            a = rng.randrange(n)
            loop_span = (a, rng.randint(a, n - 1))
            self.scalars.append(("T", "i32"))
            self.scalar_values["T"] = rng.choice((0, 1, 2, 3))
            loop = rng.choice(("for t in 0:T", "for t in reversed(0:T)", "for t in 1:T"))
        self.main_dtype = self.pick_dtype()
        for s in range(n):
            in_loop = loop_span is not None and loop_span[0] <= s <= loop_span[1]
            self.statement(last=s == n - 1, in_loop=in_loop)
        if self.sizes and rng.random() < 0.15:
            size = rng.choice(sorted(self.sizes))
            self.assumes.add(f"{size} >= 1")
        for a in self.assumes:  # sizes the run uses satisfy every assume
            size, _, bound = a.partition(" >= ")
            self.sizes[size] = max(self.sizes[size], int(bound))
        spec = KernelSpec(f"fz{self.seed}", tuple(self.tensors), tuple(self.scalars),
                          tuple(self.statements), loop, tuple(sorted(self.assumes)),
                          dict(sorted(self.sizes.items())), self.scalar_values)
        return _limit_work(spec)

    def statement(self, last: bool, in_loop: bool) -> None:
        rng = self.rng
        dtype = self.main_dtype if rng.random() < 0.75 else self.pick_dtype()
        target, fresh_temp = self.pick_target(dtype, last, in_loop)
        dtype = target.dtype
        lhs_vars = [self.lhs_var(VAR_NAMES[d], size, narrow=not fresh_temp)
                    for d, size in enumerate(target.dims)]
        lhs_idx = tuple(self.lhs_index(v) for v in lhs_vars)
        ops = ["="] * 5 + ["+="] * 3 + ["max=", "-=", "min="]
        if dtype in INT_TYPES or rng.random() < 0.2:
            ops.append("*=")
        op = rng.choice(ops)
        red_vars = []
        if op != "=":
            for d in range(rng.choice((0, 1, 1, 1, 2))):
                name = VAR_NAMES[len(lhs_vars) + d]
                if rng.random() < 0.2:
                    red_vars.append(IndexVar(name, None, window=rng.choice((2, 3))))
                else:
                    red_vars.append(self.lhs_var(name, self.pick_size(), narrow=True))
        if op == "*=":  # products of many terms overflow floats and wrap integers to 0
            red_vars = red_vars[:1]
        all_vars = lhs_vars + red_vars
        ctx = _ExprContext(self, dtype, all_vars, target.name, in_loop)
        rhs = ctx.expr(rng.choice((0, 1, 1, 2, 2, 3)))
        # Every reduced variable must appear on the right, and every size must be bound by
        # an input's shape: a load of a new input indexed by the variables that lack either.
        bound = {d for t in self.tensors if t.role in ("in", "inout") for d in t.dims}
        missing = [v for v in all_vars
                   if (v in red_vars and not ctx.uses(v)) or (v.size and v.size not in bound)]
        if not rhs.loads():
            rhs = Node("({0} + {1})", (rhs, ctx.load()))
        for at in range(0, len(missing), 4):  # a load has at most 4 dimensions
            rhs = Node("({0} + {1})", (rhs, ctx.load(need=missing[at:at + 4])))
        where = self.where_clauses(lhs_vars, red_vars, fresh_temp, lhs_idx, rhs)
        lhs = Access(target.name, lhs_idx, bare=rng.random() < 0.5)
        self.statements.append(Stmt(lhs, op, rhs, tuple(where), in_loop))
        if target.name not in self.written:
            self.written.append(target.name)

    def pick_target(self, dtype: str, last: bool, in_loop: bool) -> tuple[TensorDecl, bool]:
        """The tensor a statement writes, and whether it is a new temporary."""
        rng = self.rng
        updatable = [self.tensor(n) for n in self.written if self.tensor(n).role != "temp"
                     and all(not d.isdigit() for d in self.tensor(n).dims)]
        updatable += [t for t in self.tensors if t.role == "inout" and t not in updatable]
        r = rng.random()
        if updatable and (r < 0.2 or (in_loop and r < 0.5)):
            return rng.choice(updatable), False
        if not last and r < 0.65:
            return self.new_tensor("t", dtype, "temp"), True
        if r < 0.85:
            return self.new_tensor("O", dtype, "out"), False
        return self.new_tensor("Y", dtype, "inout", input_name=True), False

    def new_tensor(self, prefix: str, dtype: str, role: str, input_name: bool = False):
        rank = self.rng.choices((0, 1, 2, 3, 4), weights=(1, 3, 3, 1.5, 0.7))[0]
        dims = tuple(self.pick_size() for _ in range(rank))
        name = self.input_name() if input_name else self.new_name(prefix)
        t = TensorDecl(name, dtype, dims, role)
        self.tensors.append(t)
        return t

    def tensor(self, name: str) -> TensorDecl:
        return next(t for t in self.tensors if t.name == name)

    def lhs_var(self, name: str, size: str, narrow: bool) -> IndexVar:
        rng = self.rng
        if not narrow or rng.random() < 0.6:
            return IndexVar(name, size)
        if rng.random() < 0.25:
            return IndexVar(name, size, stride=rng.choice((2, 3)))
        return IndexVar(name, size, lo=rng.choice((0, 1, 1, 2)), hi=rng.choice((0, 1, 1, 2)))

    def lhs_index(self, v: IndexVar) -> str:
        if v.stride > 1 and self.rng.random() < 0.7:
            c = self.rng.randrange(v.stride)
            return f"{v.stride}*{v.name} + {c}" if c else f"{v.stride}*{v.name}"
        return v.name

    def where_clauses(self, lhs_vars, red_vars, fresh_temp, lhs_idx, rhs):
        """Ranges for variables that need them (or, at random, restate an implied one), and
        sometimes a triangle between two variables of the same size."""
        rng = self.rng
        where = []
        for v in lhs_vars + red_vars:
            # a temporary's own indices give no range: its shape comes from its writes
            bare = _is_bare_somewhere(v, () if fresh_temp else lhs_idx, rhs)
            if v.needs_range or not bare or rng.random() < 0.15:
                where.append(v.range_text())
        # A fresh temporary's first write `=` must cover its box; reductions start from the
        # identity over the whole range of the left side, so conditions that involve a
        # reduction variable are fine there, but one between two left-side variables (`i < j`)
        # leaves elements of the box unwritten (seed 6372 read one: unspecified).
        if fresh_temp and not red_vars:
            return where
        pairs = [(a, b) for a in lhs_vars + red_vars for b in lhs_vars + red_vars
                 if a.name < b.name and a.size and a.size == b.size and a.stride == b.stride]
        if pairs and rng.random() < 0.35:
            a, b = rng.choice(pairs)
            text = rng.choice((f"{b.name} <= {a.name}", f"{a.name} < {b.name}",
                               f"0 <= {a.name} - {b.name} < 3"))
            if not (fresh_temp and a in lhs_vars and b in lhs_vars):  # same draws either way
                where.append(text)
        return where


def _is_bare_somewhere(v: IndexVar, lhs_idx, rhs: Node) -> bool:
    """Whether `v` indexes some dimension directly, so that its range is implied."""
    if v.window:
        return False
    if v.name in lhs_idx:
        return True
    for acc in rhs.loads():
        if v.name in acc.indices:
            return True
    return False


class _ExprContext:
    """Builds the right side of one statement of type `dtype` over its index variables."""

    def __init__(self, b: _Builder, dtype: str, variables: list[IndexVar], target: str,
                 in_loop: bool):
        self.b, self.rng, self.dtype = b, b.rng, dtype
        self.vars, self.target, self.in_loop = variables, target, in_loop
        self.is_int = dtype in INT_TYPES
        self.used: set[str] = set()

    def uses(self, v: IndexVar) -> bool:
        return v.name in self.used

    def expr(self, depth: int) -> Node:
        if depth <= 0:
            return self.leaf()
        ops = self.int_ops() if self.is_int else self.float_ops()
        fmt, arity = self.rng.choice(ops)
        return Node(fmt, tuple(self.expr(depth - 1 - self.rng.randrange(2)) for _ in range(arity)))

    def float_ops(self):
        return [("({0} + {1})", 2), ("({0} - {1})", 2), ("({0} * {1})", 2), ("max({0}, {1})", 2),
                ("min({0}, {1})", 2), ("abs({0})", 1), ("(-{0})", 1), ("({0} / 3.0)", 1),
                ("({0} / (1.5 + abs({1})))", 2), ("exp(-abs({0}))", 1), ("tanh({0})", 1),
                ("sigmoid({0})", 1), ("sqrt(abs({0}))", 1), ("log(1.0 + abs({0}))", 1),
                ("erf({0})", 1), ("select({0} > {1}, {0}, {1})", 2),
                ("pow(abs({0}) + 0.5, 1.5)", 1), ("({0} * 0.5 + 0.25)", 1)]

    def int_ops(self):
        ops = [("({0} + {1})", 2), ("({0} - {1})", 2), ("({0} * {1})", 2), ("max({0}, {1})", 2),
               ("min({0}, {1})", 2), ("({0} / 3)", 1), ("({0} % 3)", 1), ("({0} & {1})", 2),
               ("({0} | {1})", 2), ("({0} ^ {1})", 2), ("({0} >> 1)", 1),
               ("select({0} < {1}, {0}, {1})", 2), ("({0} + 3)", 1)]
        if self.dtype != "u8":
            ops += [("abs({0})", 1), ("(-{0})", 1)]
        return ops

    def leaf(self) -> Node:
        r = self.rng.random()
        if r < 0.72:
            return self.load()
        if r < 0.82:
            return Node(self.literal())
        if r < 0.9 and self.dtype in ("f32", "f64", "i32", "i64"):
            name = "a" if self.dtype not in INT_TYPES else "c"
            name += self.dtype[1:]
            if (name, self.dtype) not in self.b.scalars:
                self.b.scalars.append((name, self.dtype))
                self.b.scalar_values[name] = (self.rng.choice((1, 2, 3, -2)) if self.is_int
                                              else self.rng.choice((0.5, 1.25, -0.75, 2.0)))
            return Node(name)
        # an index (or loop) variable used as a value, next to a typed operand
        names = [v.name for v in self.vars if not v.window] + (["t"] if self.in_loop else [])
        if not names:
            return self.load()
        return Node("({0} + " + self.rng.choice(names) + ")", (self.load(),))

    def literal(self) -> str:
        if self.is_int:
            return str(self.rng.choice((1, 2, 3, 5)))
        return self.rng.choice(("0.5", "1.0", "2.0", "0.25", "1.5"))

    def load(self, need: list[IndexVar] = ()) -> Node:
        """A load, cast to the statement's type where needed, using at least `need`."""
        rng = self.rng
        candidates = [] if need else self.existing()
        if candidates and rng.random() < 0.55:
            tensor, idx = rng.choice(candidates)
        else:
            tensor, idx = self.new_input(need)
        for i in idx:
            self.used.update(v.name for v in self.vars if _mentions(i, v.name))
        node = Node("", load=Access(tensor.name, idx, bare=rng.random() < 0.5))
        if tensor.dtype != self.dtype:
            node = Node(f"{self.dtype}({{0}})", (node,))
        return node

    def castable(self, dtype: str) -> bool:
        """A load of `dtype` can be cast to the statement's type (no float -> int casts)."""
        return dtype == self.dtype or not (self.is_int and dtype in FLOAT_TYPES)

    def existing(self) -> list[tuple[TensorDecl, tuple[str, ...]]]:
        """Readable tensors (inputs, and what earlier statements or this one wrote) that the
        variables can index in bounds, each with random indices."""
        out = []
        for t in self.b.tensors:
            if t.role == "out" and t.name not in self.b.written and t.name != self.target:
                continue
            if t.role == "temp" and t.name not in self.b.written:
                continue
            if not self.castable(t.dtype):
                continue
            idx = []
            for d in t.dims:
                choices = [c for v in self.vars for c in index_choices(v, d)]
                if not choices:
                    break
                idx.append(self.rng.choice(choices))
            else:
                out.append((t, tuple(idx)))
        return out

    def new_input(self, need: list[IndexVar]) -> tuple[TensorDecl, tuple[str, ...]]:
        """A new input tensor, its dimensions following the variables that index it."""
        rng = self.rng
        extra = rng.choices((0, 1, 2, 3), weights=(1, 3, 2, 1))[0]
        pool = [v for v in self.vars if v not in need]
        rng.shuffle(pool)
        chosen = list(need) + pool[:max(0, min(extra, 4 - len(need)))]
        rng.shuffle(chosen)
        dims, idx = [], []
        for v in chosen:
            sums = [w for w in self.vars if w.window and not v.window and v.stride == 1
                    and v.hi >= w.window - 1]
            if sums and rng.random() < 0.5:  # a window: v + r
                w = rng.choice(sums)
                dims.append(v.size)
                idx.append(f"{v.name} + {w.name}")
                self.used.add(w.name)
                continue
            dim = str(v.window) if v.window else v.size
            dims.append(dim)
            idx.append(rng.choice(index_choices(v, dim)))
        if len(dims) < 4 and rng.random() < 0.1:  # a literal index into a dimension of its own
            size = self.b.pick_size()
            self.b.assumes.add(f"{size} >= 1")
            at = rng.randrange(len(dims) + 1)
            dims.insert(at, size)
            idx.insert(at, "0")
        dtype = self.dtype if rng.random() < 0.8 else self.b.pick_dtype()
        if not self.castable(dtype):
            dtype = self.dtype
        t = TensorDecl(self.b.input_name(), dtype, tuple(dims), "in")
        self.b.tensors.append(t)
        return t, tuple(idx)


def _mentions(index: str, name: str) -> bool:
    return name in _names_in(index)


def _limit_work(spec: KernelSpec) -> KernelSpec:
    """Shrink the largest sizes until no statement runs more than MAX_ITERATIONS times."""
    sizes = dict(spec.sizes)
    loop = max(1, int(spec.scalar_values.get("T", 1))) if spec.loop else 1
    while True:
        worst = max((_iterations(s, spec, sizes) * (loop if s.in_loop else 1)
                     for s in spec.statements), default=0)
        big = max(sizes, key=lambda n: sizes[n], default=None)
        if worst <= MAX_ITERATIONS or big is None or sizes[big] <= 3:
            return replace(spec, sizes=sizes)
        sizes[big] = 3 if sizes[big] > 5 else sizes[big] - 1


def _iterations(s: Stmt, spec: KernelSpec, sizes: dict) -> int:
    """A rough upper bound of the statement's instances: the elements of the tensor it writes
    times those of the largest tensor it reads (its reduction is at most that)."""
    def elements(name: str) -> int:
        n = 1
        for d in spec.tensor(name).dims:
            n *= int(d) if d.isdigit() else max(sizes[d], 1)
        return n

    return elements(s.lhs.tensor) * max((elements(a.tensor) for a in s.rhs.loads()), default=1)


def generate(seed: int) -> KernelSpec:
    """The random kernel of `seed` (deterministic)."""
    return _Builder(seed).kernel()
