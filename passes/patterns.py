"""Pattern matchers on statements: the one library every default schedule is built from.

A matcher reads one `Statement` of the front end's IR (and, where it matters, the names of its
loops outermost first) and returns a small frozen record naming the loops and operands of the
pattern, or None. It decides nothing about tile sizes or targets: `passes/default.py` turns a
match into schedule steps with a target's numbers.

- `match_contraction`: `C[.., i, j] += A[.., i, k] * B[.., k, j]` (matmul, batched matmul,
  attention's Q @ K^T with a transposed operand, gemm with a scalar factor, int8 matmul with its
  operands widened by casts);
- `match_convolution`: `Y[.., k, .., x] += X[.., x + s] * F[.., k, ..]` (conv2d) and its
  depthwise form `Y[c, y, x] += X[c, y + r, x + s] * F[c, r, s]`, vectorized along the output
  columns x; with `along="channels"`, `Y[.., k, .., x] += D[..] * W[.., k, ..]` (weights
  k-last, or channels-last data: a strided convolution after passes/strided_conv.py; data at
  any stride in x), vectorized along the output channels k;
- `walk`: how a loop walks an access (invariant, stride 1, strided), which the stride-1
  heuristic and the matchers share.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from loopweave.ir import expr as ir
from loopweave.ir.affine import coefficient
from loopweave.ir.kernel import Statement


@dataclass(frozen=True, slots=True)
class Contraction:
    """A matched `C[.., i, j] += A[.., i, k] * B[.., k, j]` (times `others`).

    i, j, k: the loop variables (rows, columns, reduction). `a` and `b` are the operand loads
    (under their casts when `widening`); `a_transposed` means A[.., k, i], `b_transposed`
    B[.., j, k]. `others` are the remaining factors (they use none of i, j, k, like gemm's alpha).
    """

    statement: str
    i: str
    j: str
    k: str
    out: ir.Load
    a: ir.Load
    b: ir.Load
    a_transposed: bool
    b_transposed: bool
    widening: bool  # operands are cast to a wider type (int8 -> int32 accumulation)
    others: tuple[ir.Expr, ...]


@dataclass(frozen=True, slots=True)
class Convolution:
    """A matched convolution-like reduction `Y[.., k, .., x] += X[.., x + s] * F[.., k, ..]`.

    x: the output column (stride 1 in Y and in the data X); k: the output loop that indexes the
    weights F but not X (an output channel), or for a depthwise convolution an output row that
    slides over input rows (`depthwise`); spatial: the reduction loops that shift X's indices
    (r, s); reductions: every reduction loop, in loop order; outputs: the loops indexing Y;
    along: the vector dimension, "columns" (x) or "channels" (k, the weights' last index).
    """

    statement: str
    x: str
    k: str
    data: ir.Load
    weights: ir.Load
    outputs: tuple[str, ...]
    reductions: tuple[str, ...]
    spatial: tuple[str, ...]
    depthwise: bool
    widening: bool
    along: str = "columns"

    @property
    def outer(self) -> tuple[str, ...]:
        """The output loops other than x and k (batch, output rows)."""
        return tuple(v for v in self.outputs if v not in (self.x, self.k))

    @property
    def k_dim(self) -> int:
        """The dimension of Y that k indexes."""
        return self.outputs.index(self.k)


def factors(e: ir.Expr) -> list[ir.Expr]:
    """The factors of a product, flattened (`a * (b * c)` -> [a, b, c]); [e] otherwise."""
    if isinstance(e, ir.Binary) and e.op == "*":
        return factors(e.left) + factors(e.right)
    return [e]


def operand(e: ir.Expr) -> ir.Load | None:
    """The load of a factor that is a load or a cast of one (`i32(A[i, k])`), else None."""
    if isinstance(e, ir.Cast):
        e = e.operand
    return e if isinstance(e, ir.Load) else None


def _operand_pairs(fs: list[ir.Expr]):
    """Ordered pairs of distinct factors with their loads: plain loads first (so a plain match
    is found where one exists, as before casts were seen through), then casts of loads."""
    plain = [(f, f) for f in fs if isinstance(f, ir.Load)]
    yield from itertools.permutations(plain, 2)
    cast = [(f, operand(f)) for f in fs if operand(f) is not None]
    for p, q in itertools.permutations(cast, 2):
        if p[0] is not p[1] or q[0] is not q[1]:
            yield p, q


def walk(access: ir.Load, var: str) -> str:
    """How a loop over `var` walks `access`: "invariant", "unit" (stride 1) or "strided"."""
    if not any(var in ir.variables(x) for x in access.indices):
        return "invariant"
    last = access.indices[-1]
    if coefficient(last, var) == 1 and not any(var in ir.variables(x)
                                               for x in access.indices[:-1]):
        return "unit"
    return "strided"


def last_two(e: ir.Expr) -> tuple[str, str] | None:
    """The variables indexing the last two dimensions of a load, if both are plain variables."""
    if not isinstance(e, ir.Load) or len(e.indices) < 2:
        return None
    x, y = e.indices[-2:]
    if isinstance(x, ir.Var) and isinstance(y, ir.Var):
        return x.name, y.name
    return None


def match_contraction(s: Statement, loops: list[str] | None = None) -> Contraction | None:
    """`s` as `C[.., i, j] += A[.., i, k] * B[.., k, j]`, or None.

    A and B may be transposed (A[.., k, i], B[.., j, k]) and cast (`i32(A[i, k])`: `widening`);
    other factors may use none of i, j, k. With `loops` (the statement's loop names, outermost
    first), they must end in i, j, k in some order, as a micro-kernel's tiling needs.
    """
    ij = last_two(s.lhs)
    if s.op != "+=" or ij is None:
        return None
    fs = factors(s.rhs)
    for (fa, a), (fb, b) in _operand_pairs(fs):
        ik, kj = last_two(a), last_two(b)
        if None in (ik, kj):
            continue
        (i, j), k = ij, (set(kj) - {ij[1]} or {""}).pop()
        others = tuple(f for f in fs if f is not fa and f is not fb)
        if set(ik) == {i, k} and kj in ((k, j), (j, k)) and len({i, j, k}) == 3 \
                and (loops is None or sorted(loops[-3:]) == sorted([i, j, k])) \
                and not any(ir.variables(f) & {i, j, k} for f in others):
            return Contraction(s.name, i, j, k, s.lhs, a, b, ik == (k, i), kj == (j, k),
                               a is not fa or b is not fb, others)
    return None


#: The result type of a GEMM of each operand type with a micro-kernel on some target.
GEMM_RESULTS = {"i8": "i32", "bf16": "f32"}


def match_gemm(s: Statement, loops: list[str], operand_types) -> Contraction | None:
    """`s` as an unbatched GEMM `C[i, j] += T(A[i, k]) * T(B[k, j])` (`loops`: its three loops)
    with A and B of one of `operand_types` cast up to its result type T (`GEMM_RESULTS`), no
    other factor; or None."""
    c = match_contraction(s, loops) if len(loops) == 3 and operand_types else None
    if c is None or not c.widening or c.others or len(s.lhs.indices) != 2:
        return None
    operands = {ld.dtype.name for ld in (c.a, c.b)}
    kind = operands.pop() if len(operands) == 1 else None
    if kind not in operand_types or s.lhs.dtype.name != GEMM_RESULTS[kind]:
        return None
    return c


def match_convolution(s: Statement, loops: list[str], along: str = "columns"
                      ) -> Convolution | None:
    """`s` as a convolution-like `Y[.., k, .., x] += X[.., x + s] * F[.., k, ..]`, or None.

    x indexes the last dimension of Y and, with stride 1, of X; k indexes F but not X. Without
    such a k (depthwise: `Y[c, y, x] += X[c, y + r, x + s] * F[c, r, s]`) k is an output row y
    that slides over X's rows. Every loop of `loops` must index Y or be a reduction; a factor
    other than X and F must not depend on the outputs (int4 dequantization per element does).
    `along="channels"`: `_channel_convolution`'s form instead.
    """
    if along == "channels":
        return _channel_convolution(s, loops)
    if s.op != "+=" or not s.lhs.indices or not isinstance(s.lhs.indices[-1], ir.Var):
        return None
    x = s.lhs.indices[-1].name
    outputs = [ix.name for ix in s.lhs.indices if isinstance(ix, ir.Var)]
    fs = factors(s.rhs)
    for (fd, data), (fw, weights) in _operand_pairs(fs):
        if walk(data, x) != "unit" or walk(weights, x) != "invariant":
            continue
        reductions = [v for v in loops if v not in outputs]
        spatial = [v for v in reductions if any(
            v in ir.variables(ix) and len(ir.variables(ix)) > 1 for ix in data.indices)]
        kernels = [k for k in outputs if k != x and walk(data, k) == "invariant"
                   and walk(weights, k) != "invariant"]
        depthwise = not kernels
        if depthwise:  # rows of the output that slide over rows of the input
            kernels = [y for y in outputs if y != x and walk(weights, y) == "invariant"
                       and any(y in ir.variables(ix) and ir.variables(ix) & set(spatial)
                               for ix in data.indices)]
        others = [f for f in fs if f is not fd and f is not fw]
        if any(ir.variables(f) & set(outputs) for f in others):
            continue  # a factor computed per output element (int4 dequantization) stays
        if not kernels or not reductions or sorted(loops) != sorted({*outputs, *reductions}):
            continue
        return Convolution(s.name, x, kernels[-1], data, weights, tuple(outputs),
                           tuple(reductions), tuple(spatial), depthwise,
                           data is not fd or weights is not fw)
    return None


def product_operands(s: Statement) -> tuple[ir.Load, ir.Load] | None:
    """(data, weights) of `Y[vars] += D * W`, a float reduction of distinct plain variables
    into Y times the product of two loads of Y's type, data the one that reads Y's last
    variable x. None for any other shape."""
    if s.op != "+=" or s.enclosing or not s.lhs.indices or not all(
            isinstance(v, ir.Var) for v in s.lhs.indices) or not s.lhs.dtype.is_float or \
            s.lhs.dtype.is_storage_only or len({v.name for v in s.lhs.indices}) != len(
            s.lhs.indices):
        return None
    fs = factors(s.rhs)
    if len(fs) != 2 or not all(isinstance(f, ir.Load) and f.dtype == s.lhs.dtype for f in fs):
        return None
    x = s.lhs.indices[-1].name
    uses_x = [x in set().union(*(ir.variables(ix) for ix in f.indices)) for f in fs]
    if uses_x.count(True) != 1:
        return None
    return (fs[0], fs[1]) if uses_x[0] else (fs[1], fs[0])


def _channel_convolution(s: Statement, loops: list[str]) -> Convolution | None:
    """`Y[.., k, .., x] += D[..] * W[..]`: D reads x (at any stride) and not k, W is indexed
    by k once and otherwise by reductions only; every loop indexes Y or reduces. k is W's last
    index (its elements along k contiguous), or D is channels-last (its last index a plain
    reduction variable that W shares: the weights are then packed k-last per block,
    `strided_conv.channel_steps`)."""
    pair = product_operands(s)
    if pair is None:
        return None
    data, weights = pair
    outputs = [v.name for v in s.lhs.indices]
    x = outputs[-1]
    ks = [ix.name for ix in weights.indices if isinstance(ix, ir.Var) and ix.name in outputs]
    if len(ks) != 1 or ks[0] == x:
        return None
    k = ks[0]
    read = set().union(*(ir.variables(ix) for ix in data.indices))
    reductions = tuple(v for v in loops if v not in outputs)
    others = [ix for ix in weights.indices if ix != ir.Var(k)]
    channels_last = isinstance(data.indices[-1], ir.Var) and \
        data.indices[-1].name in reductions and data.indices[-1] in weights.indices
    if any(ir.variables(ix) & set(outputs) for ix in others) or k in read or \
            x not in read or not reductions or sorted(loops) != sorted({*outputs, *reductions}) \
            or not (weights.indices[-1] == ir.Var(k) or channels_last):
        return None
    spatial = tuple(v for v in reductions if any(
        v in ir.variables(ix) and len(ir.variables(ix)) > 1 for ix in data.indices))
    return Convolution(s.name, x, k, data, weights, tuple(outputs), reductions, spatial,
                       depthwise=False, widening=False, along="channels")
