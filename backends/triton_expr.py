"""Triton lowering, step 2a: expressions as Triton text over tiles.

A value is rendered for a *layout*: the ordered tile axes of the tensor it must have (e.g.
("i", "j", "k") in a reduction over k). A tiled variable `i` on axis `i` reads `i[:, None, None]`
there; a scalar variable reads as itself. Loads become named lines (`A = tl.load(...)`), emitted
into the current block and shared by later uses in the same block. f16/bf16 loads widen to f32,
as the DSL computes them; integer `/` and `%` are floor division and modulo (helpers).
"""

from __future__ import annotations

import functools
import keyword
import math

from loopweave.backends import triton_lowp
from loopweave.backends.triton_plan import Reduce
from loopweave.errors import TargetError
from loopweave.ir import expr as ir
from loopweave.ir.affine import row_major_offset
from loopweave.ir.types import BOOL, INDEX, DType

TL_TYPES = {"f16": "tl.float16", "bf16": "tl.bfloat16", "f32": "tl.float32",
            "f64": "tl.float64", "i8": "tl.int8", "u8": "tl.uint8", "i16": "tl.int16",
            "i32": "tl.int32", "i64": "tl.int64", "bool": "tl.int1"}

#: @triton.jit helpers, emitted into the module only when used (the 8-bit float conversions
#: of `triton_lowp` among them).
HELPERS = {
    **triton_lowp.SOURCES,
    "_lw_floordiv": '''@triton.jit
def _lw_floordiv(a, b):
    # floor division as numpy (0 for a zero divisor); the interpreter floors, a GPU truncates
    safe = tl.where(b == 0, 1, b)
    q = a // safe
    q = tl.where((a - q * safe != 0) & ((a - q * safe < 0) != (safe < 0)), q - 1, q)
    return tl.where(b == 0, 0, q)
''',
    "_lw_floormod": '''@triton.jit
def _lw_floormod(a, b):
    # modulo with the sign of the divisor, as numpy (0 for a zero divisor)
    safe = tl.where(b == 0, 1, b)
    r = a % safe
    r = tl.where((r != 0) & ((r < 0) != (safe < 0)), r + safe, r)
    return tl.where(b == 0, 0, r)
''',
    "_lw_fmod": '''@triton.jit
def _lw_fmod(a, b):
    r = a - b * tl.floor(a / b)
    return r
''',
    "_lw_tanh": '''@triton.jit
def _lw_tanh(x):
    e = tl.exp(-2.0 * tl.abs(x))
    t = (1.0 - e) / (1.0 + e)
    return tl.where(x < 0, -t, t)
''',
    "_lw_pow": '''@triton.jit
def _lw_pow(a, b):
    # a ** b as numpy: |a| ** b through exp2 and log2 (libdevice.pow returns None in the
    # interpreter); a negative base keeps its sign for an odd whole b and gives nan for a
    # fractional one; x ** 0 is 1. Both operands take one shape first: the interpreter types a
    # comparison of 0-d values as their operands' type, and broadcasting it then makes floats
    # of the booleans (`&` on f64), so every comparison here is between tiles of one shape.
    a, b = tl.broadcast(a, b)
    m = tl.exp2(b * tl.log2(tl.abs(a)))
    odd_or_fraction = tl.floor(b * 0.5) * 2.0 != b
    fraction = tl.floor(b) != b
    signed = tl.where(odd_or_fraction, -m, m)
    r = tl.where(a < 0, tl.where(fraction, float("nan"), signed), m)
    return tl.where(b == 0, 1.0, r)
''',
    "_lw_mul": '''@triton.jit
def _lw_mul(a, b):
    return a * b
''',
}

_COMBINE = {"+=": "{a} + {pb}", "*=": "{a} * {pb}",
            "max=": "tl.maximum({a}, {b}, propagate_nan=tl.PropagateNan.ALL)",
            "min=": "tl.minimum({a}, {b}, propagate_nan=tl.PropagateNan.ALL)"}
REDUCE_OVER_AXIS = {"+=": "tl.sum({v}, axis={a})", "*=": "tl.reduce({v}, {a}, _lw_mul)",
           "max=": "tl.max({v}, axis={a})", "min=": "tl.min({v}, axis={a})"}


def combine(op: str, a: str, b: str, dtype) -> str:
    """`a op= b` as Triton text (`op` one of += *= max= min=)."""
    text = _COMBINE[op].format(a=a, b=b, pb=b if b.isidentifier() else f"({b})")  # a*(b+i)
    if dtype.is_int:
        text = text.replace(", propagate_nan=tl.PropagateNan.ALL", "")
    return text


def extent(lo: ir.Expr, hi: ir.Expr) -> ir.Expr:
    """The number of integers in [lo, hi]."""
    return simplify(ir.add(ir.Binary("-", hi, lo, INDEX), ir.Const(1)))


def count_product(counts: list[ir.Expr]) -> ir.Expr:
    """The product of loop counts, each clamped at 0: two empty ranges (L - 4 and M - 4 for
    L = M = 1) must not multiply into a positive count."""
    return functools.reduce(ir.mul, [c if isinstance(c, ir.Const) and c.value >= 0 else
                                     ir.Call("max", (c, ir.Const(0)), INDEX) for c in counts])


_RESERVED = frozenset({"tl", "triton", "range", "float", "int", "min", "max", "abs", "len",
                       "print", "pid", "acc"})


def py_name(name: str) -> str:
    """A DSL name as a Python identifier that cannot clash with the generated code's own."""
    if keyword.iskeyword(name) or name in _RESERVED or name.startswith("_lw"):
        return f"{name}_"
    return name


class Layout(tuple):
    """Ordered tile axes."""

    def index(self, axes) -> str:  # noqa: D102 - `[:, None]` placing `axes` in this layout
        if len(self) <= 1:
            return ""
        parts = [":" if a in axes else "None" for a in self]
        return "" if all(p == ":" for p in parts) else f"[{', '.join(parts)}]"


class ExprWriter:
    """Renders expressions; `owner` gives the tile state (see `KernelWriter`)."""

    def __init__(self, owner):
        self.k = owner
        self.layouts: set[tuple[str, ...]] = set()  # every layout a value was rendered in

    # -- shapes -------------------------------------------------------------------------------

    def axes(self, e) -> set[str]:
        """The tile axes a value depends on."""
        k = self.k
        if isinstance(e, Reduce):
            return self.axes(e.body) - set(e.names)
        match e:
            case ir.Var(name=n):
                return {k.axis_of[n]} if n in k.axis_of else set()
            case ir.Load(tensor=t, indices=ix):
                if t in k.register_axes:
                    return set(k.register_axes[t])
                return set().union(*(self.axes(i) for i in ix)) if ix else set()
        return set().union(*(self.axes(c) for c in ir.children(e))) if ir.children(e) else set()

    # -- values -------------------------------------------------------------------------------

    def const(self, value, dtype: DType) -> str:
        if dtype.is_float:
            if math.isinf(value):
                return 'float("inf")' if value > 0 else 'float("-inf")'
            if math.isnan(value):
                return 'float("nan")'
            return repr(float(value))
        if dtype == BOOL:
            return "True" if value else "False"
        if dtype.kind == "uint":  # a Python int is int32 to Triton: `u8 % 3` mixes signedness
            return f"tl.full((), {int(value)}, dtype={TL_TYPES[dtype.name]})"
        return str(int(value))

    def render(self, e, layout: Layout, prec: int = 0) -> str:
        """Triton text of `e` as a tile in `layout` (broadcast where it lacks axes)."""
        k = self.k
        self.layouts.add(tuple(layout))
        if isinstance(e, Reduce):
            return k.reduce_value(e, layout)
        match e:
            case ir.Const(value=v, dtype=t):
                text = self.const(v, t)
                return text if not (t.is_float and t.name == "f64") else \
                    f"tl.full([], {text}, tl.float64)"
            case ir.Var(name=n):
                if n in k.axis_of:
                    return k.tile_name[n] + layout.index({k.axis_of[n]})
                return py_name(n)
            case ir.Param(name=n, dtype=t):
                return py_name(n) if t.is_int else f"tl.cast({py_name(n)}, {TL_TYPES[t.name]})"
            case ir.Scalar(name=n, dtype=t):
                if t.name in ("f32", "f16", "bf16", "f64", "i32", "i64", *triton_lowp.TYPES):
                    return py_name(n)  # storage types arrive as f32 values
                return f"tl.cast({py_name(n)}, {TL_TYPES[t.name]})"
            case ir.Load():
                return k.load(e, layout)
            case ir.Cast(dtype=t, operand=x):
                if t.name in triton_lowp.TYPES:  # rounded to the 8-bit type, kept in f32
                    return triton_lowp.round_trip(self.render(x, layout), t, self.k.use)
                if t.is_storage_only and x.dtype != t:  # f16, bf16: rounded, kept in f32
                    stored = triton_lowp.stored(self.render(x, layout), t, TL_TYPES, self.k.use)
                    return triton_lowp.widen(stored, t, self.k.use)
                if x.dtype.compute == t.compute:
                    return self.render(x, layout, prec)
                return f"tl.cast({self.render(x, layout)}, {TL_TYPES[t.compute.name]})"
            case ir.Unary(op=op, operand=x, dtype=t):
                inner = self.render(x, layout, 14)
                text = {"neg": f"-{inner}", "not": f"~{inner}", "invert": f"~{inner}"}[op]
                return self.narrow(text, t) if op != "not" else text
            case ir.Binary(op=op, left=a, right=b, dtype=t):
                return self.binary(op, a, b, t, layout, prec)
            case ir.Call(func=f, args=args, dtype=t):
                return self.call(f, args, t, layout)
        raise TargetError(f"the Triton target cannot write a {type(e).__name__} expression")

    def narrow(self, text: str, dtype: DType) -> str:
        return text

    _PREC = {"*": 12, "/": 12, "%": 12, "cdiv": 12, "crem": 12, "+": 11, "-": 11, "<<": 10,
             ">>": 10, "&": 9, "^": 8, "|": 7, "<": 6, "<=": 6, ">": 6, ">=": 6, "==": 6, "!=": 6,
             "and": 9, "or": 7}
    _TEXT = {"and": "&", "or": "|", "cdiv": "//", "crem": "%"}

    def binary(self, op, a, b, dtype, layout, prec) -> str:
        operand = a.dtype
        if op in ("/", "%") and operand.is_int:
            helper = "_lw_floordiv" if op == "/" else "_lw_floormod"
            self.k.use(helper)
            # a literal in the other operand's type: a Python int is i32 to Triton, and
            # `u8 % i32` is refused (different signedness)
            x, y = (self.const(a.value, b.dtype) if isinstance(a, ir.Const) else
                    self.render(a, layout),
                    self.const(b.value, a.dtype) if isinstance(b, ir.Const) else
                    self.render(b, layout))
            # in the operands' type: the helper's literals make an i8 result i32 (no wrap)
            return f"tl.cast({helper}({x}, {y}), {TL_TYPES[dtype.name]})"
        if op == "%":
            self.k.use("_lw_fmod")
            return f"_lw_fmod({self.render(a, layout)}, {self.render(b, layout)})"
        p = self._PREC[op]
        if op in ("and", "or", "<", "<=", ">", ">=", "==", "!="):
            # & and | bind tighter than comparisons in Python: parenthesize inside them
            inner = 14 if op in ("and", "or") else 6
            x, y = self.render(a, layout, inner), self.render(b, layout, inner)
            text = f"{x} {self._TEXT.get(op, op)} {y}"
            return f"({text})" if prec > 0 else text
        x, y = self.render(a, layout, p), self.render(b, layout, p + 1)
        text = f"{x} {self._TEXT.get(op, op)} {y}"
        return f"({text})" if p < prec else text

    def call(self, f, args, dtype, layout) -> str:
        xs = [self.render(a, layout) for a in args]
        if f == "bitcast":
            bits = triton_lowp.bits_of(xs[0], args[0].dtype, TL_TYPES, self.k.use)
            return triton_lowp.from_bits(bits, dtype, TL_TYPES, self.k.use)
        if f == "ldexp" and dtype.name == "f32":
            return triton_lowp.ldexp(xs[0], xs[1], self.k.use)
        if f == "select":
            return f"tl.where({xs[0]}, {xs[1]}, {xs[2]})"
        if f in ("min", "max"):
            func = "tl.minimum" if f == "min" else "tl.maximum"
            if dtype.is_float:
                return f"{func}({xs[0]}, {xs[1]}, propagate_nan=tl.PropagateNan.ALL)"
            return f"{func}({xs[0]}, {xs[1]})"
        if f == "abs":
            return f"tl.abs({xs[0]})"
        if f == "sigmoid":
            return f"(1.0 / (1.0 + tl.exp(-({xs[0]}))))"  # -(a + b), not -a + b
        if f == "tanh":
            self.k.use("_lw_tanh")
            return f"_lw_tanh({xs[0]})"
        if f == "pow":  # libdevice.pow returns None in the interpreter
            self.k.use("_lw_pow")
            # a literal as a 0-d tile of its type: the helper calls tl functions on both
            xs = [f"tl.full([], {x}, {TL_TYPES[a.dtype.compute.name]})"
                  if isinstance(a, ir.Const) and not x.startswith("tl.full") else x
                  for a, x in zip(args, xs, strict=True)]
            return f"_lw_pow({xs[0]}, {xs[1]})"
        if f in ("exp", "exp2", "log", "sqrt", "erf"):
            return f"tl.{f}({xs[0]})"
        call = ir.to_str(ir.Call(f, tuple(args), dtype))
        raise TargetError(f"the Triton target has no function {f!r} (in {call})")


def conjuncts(e: ir.Expr | None) -> list[ir.Expr]:
    """The top-level `and` operands of a condition."""
    if e is None:
        return []
    if isinstance(e, ir.Binary) and e.op == "and":
        return conjuncts(e.left) + conjuncts(e.right)
    return [e]


def var_names(e) -> set[str]:
    """The variables `e` reads (those bound by its inline reductions left out)."""
    if isinstance(e, Reduce):
        return var_names(e.body) - set(e.names)
    return {x.name for x in ir.walk(e) if isinstance(x, ir.Var)} | set().union(
        *(var_names(c) for c in ir.children(e) if isinstance(c, Reduce)))


def walk(e):
    """`e` and its subexpressions, an inline reduction standing for the terms of its body."""
    if isinstance(e, Reduce):
        yield from walk(e.body)
        return
    yield e
    for c in ir.children(e):
        yield from walk(c)


def loads(e) -> list[ir.Load]:
    """The loads in `e`, those inside inline reductions included."""
    return [x for x in walk(e) if isinstance(x, ir.Load)]


def lt(var: str, hi: ir.Expr) -> ir.Expr:
    """`var <= hi` as `var < hi + 1` (reads like `i < M`)."""
    return ir.Binary("<", ir.Var(var), simplify(ir.add(hi, ir.Const(1))), BOOL)


def conjoin(parts: list[ir.Expr]) -> ir.Expr | None:
    """`parts` joined with `and` (None for none)."""
    result = None
    for p in parts:
        result = p if result is None else ir.Binary("and", result, p, BOOL)
    return result


#: The row-major offset (`ir.affine.row_major_offset`), under the name the Triton modules use.
offset = row_major_offset


def python_expr(e: ir.Expr) -> str:
    """An integer index expression as plain Python (for the launcher)."""
    match e:
        case ir.Const(value=v):
            return str(int(v))
        case ir.Var(name=n) | ir.Param(name=n) | ir.Scalar(name=n):
            return py_name(n)
        case ir.Unary(op="neg", operand=x):
            return f"(-({python_expr(x)}))"
        case ir.Binary(op=op, left=a, right=b) if e != simplify(e):
            return python_expr(simplify(e))
        case ir.Binary(op=op, left=a, right=b):
            text = {"/": "//", "cdiv": "//", "crem": "%", "and": "and", "or": "or"}.get(op, op)
            x, y = python_expr(a), python_expr(b)
            y = y if op in ("+",) or y.isidentifier() or y.isdigit() else f"({y})"
            if op in ("*", "/", "cdiv", "%", "crem") and not (x.isidentifier() or x.isdigit()):
                x = f"({x})"
            return f"{x} {text} {y}"
        case ir.Call(func=f, args=args) if f in ("min", "max"):
            return f"{f}({', '.join(python_expr(a) for a in args)})"
        case ir.Call(func="select", args=(c, a, b)):
            return f"({python_expr(a)} if {python_expr(c)} else {python_expr(b)})"
    raise TargetError(f"the Triton launcher cannot compute {ir.to_str(e)} on the host: not an "
                      "index expression of sizes and loop variables")


def _linear(e: ir.Expr) -> dict | None:
    """{name or None (constant): coefficient} of an affine index expression, or None."""
    match e:
        case ir.Const(value=v) if e.dtype.is_int:  # a float 2.0 stays a float (sqrt(2.0))
            return {None: int(v)}
        case ir.Var(name=n) | ir.Param(name=n) if e.dtype.is_int:
            return {(type(e).__name__, n): 1}
        case ir.Unary(op="neg", operand=x):
            inner = _linear(x)
            return None if inner is None else {k: -c for k, c in inner.items()}
        case ir.Binary(op=op, left=a, right=b) if op in ("+", "-"):
            la, lb = _linear(a), _linear(b)
            if la is None or lb is None:
                return None
            out = dict(la)
            for k, c in lb.items():
                out[k] = out.get(k, 0) + (c if op == "+" else -c)
            return out
        case ir.Binary(op="*", left=a, right=b):
            la, lb = _linear(a), _linear(b)
            if la is None or lb is None:
                return None
            if set(la) == {None}:
                return {k: c * la[None] for k, c in lb.items()}
            if set(lb) == {None}:
                return {k: c * lb[None] for k, c in la.items()}
    return None


def simplify(e: ir.Expr) -> ir.Expr:
    """Fold the constants of affine index arithmetic: `(M - 1) + 1` -> `M`.

    Not `ir.affine.simplify`: this one keeps the terms in the order they first appear, writes
    negative coefficients as subtractions, and simplifies inside a non-affine expression
    instead of keeping it whole; the Triton sources (and their golden files) are written in
    this form."""
    lin = _linear(e)
    if lin is None:
        kids = tuple(simplify(c) for c in ir.children(e))
        return ir.with_children(e, kids) if kids else e
    result: ir.Expr | None = None
    for key, c in lin.items():
        if key is None or c == 0:
            continue
        kind, name = key
        term = ir.Var(name) if kind == "Var" else ir.Param(name)
        if result is None:
            result = term if c == 1 else ir.Binary("*", ir.Const(c), term, INDEX) if c != -1 \
                else ir.Unary("neg", term, INDEX)
        elif c > 0:
            result = ir.Binary("+", result, term if c == 1 else ir.Binary(
                "*", ir.Const(c), term, INDEX), INDEX)
        else:
            result = ir.Binary("-", result, term if c == -1 else ir.Binary(
                "*", ir.Const(-c), term, INDEX), INDEX)
    const = lin.get(None, 0)
    if result is None:
        return ir.Const(const)
    if const:
        result = ir.Binary("+" if const > 0 else "-", result, ir.Const(abs(const)), INDEX)
    return result


def show(e) -> str:
    """DSL-like text of an expression that may hold inline reductions (for comments)."""
    def fold(x):
        if isinstance(x, Reduce):
            func = {"+=": "sum", "*=": "prod", "max=": "max", "min=": "min"}[x.op]
            return ir.Call(f"{func}_{'_'.join(x.names)}", (fold_all(x.body),), x.dtype)
        return None

    def fold_all(x):
        return ir.rewrite(x, fold)
    return ir.to_str(fold_all(e))
