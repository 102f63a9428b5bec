"""Reductions across the lanes of a vector loop (backends/simd.py): `s[i] += e[i, j]` with j the
vector variable accumulates in vector registers (`simd.ACCUMULATORS` of them, dealt round-robin
by the unrolled loop) and is folded into its target after the loop: the accumulators pairwise
in a fixed order (`merge`), then the lanes by halves (`fold`), the order gcc and clang use.
`LaneReductions` is a part of the lowering's class, `simd._Lowering`: its methods use the
lowering's renderer (`r`), vector variable (`var`), `fresh`, `vtype` and `minmax`.
"""

from __future__ import annotations

from loopweave.backends.simd_arg import halves
from loopweave.backends.simd_isas import CannotLower, VectorType
from loopweave.ir import expr as ir
from loopweave.ir.loops import Block, For, If, Node, Store
from loopweave.ir.loops import walk as walk_loops


class LaneReductions:
    """The reductions across lanes of `simd._Lowering` (module docstring)."""

    def horizontal_stores(self, body: Node) -> dict[Store, tuple[str, VectorType]]:
        """Reductions directly in the loop body into a location invariant in the loop, each
        with the name of its vector accumulator."""
        stores = body.body if isinstance(body, Block) else (body,)
        found = {}
        for s in stores:
            if isinstance(s, Store) and s.reduce and \
                    not any(self.var in ir.variables(i) for i in s.indices):
                if s.reduce not in ("+=", "max=", "min=") or self.touches(body, s.tensor, s):
                    raise CannotLower("reduction")
                found[s] = (self.fresh("acc"), self.vtype(s.value.dtype))
        return found

    def touches(self, node: Node, tensor: str, skip: Store) -> bool:
        """Whether anything in `node` but `skip`'s own value reads or writes `tensor`. Loads of
        `tensor` in the reduction's value (`x[i] -= L[i, j] * x[j]`) read other elements: a
        vector mark on such a loop is legal only then (passes/legality.reduction_chains)."""
        for n in walk_loops(node):
            exprs: list[ir.Expr] = []
            if isinstance(n, Store) and n is not skip:
                if n.tensor == tensor:
                    return True
                exprs = [n.value, *n.indices]
            elif isinstance(n, Store):
                exprs = list(n.indices)
            elif isinstance(n, For):
                exprs = [n.init, n.cond]
            elif isinstance(n, If):
                exprs = [n.cond]
            if any(x.tensor == tensor for e in exprs for x in ir.loads(e)):
                return True
        return False

    def merge(self, store: Store, acc: str, parts: list[str], t: VectorType,
              indent: str) -> list[str]:
        """`acc` combined with the accumulators `parts`, pairwise in a fixed order."""
        lines: list[str] = []
        while len(parts) > 1:
            pairs = [self.pair(store.reduce, a, b, t, lines, indent)
                     for a, b in zip(parts[::2], parts[1::2], strict=True)]
            parts = pairs
        total = self.pair(store.reduce, acc, parts[0], t, lines, indent)
        return [*lines, f"{indent}{acc} = {total};"]

    def pair(self, op: str, a: str, b: str, t: VectorType, lines: list[str],
             indent: str) -> str:
        """The vector `a <op> b` of two partial results of a reduction."""
        if op == "+=":
            return t.op("add", a, b)
        return self.minmax("max" if op == "max=" else "min", a, b, t, lines, indent)

    def fold(self, store: Store, acc: str, t: VectorType, indent: str) -> list[str]:
        """After the vector loop: the accumulator's lanes reduced pairwise (halves, quarters,
        ...: a chain of log2(W) operations, not W), then into the target. A sum where the ISA
        has it in registers (AVX-512's `reduce_add`: the same halves, no trip through memory;
        CSR SpMV with 16 nonzeros a row 1.56 -> 1.45 ms)."""
        r, lanes = self.r, self.fresh("lanes")
        dtype = store.value.dtype
        target = f"{r.expr(ir.Load(store.tensor, store.indices, dtype))}"
        if store.reduce == "+=" and "sum" in t.ops:  # the same halving order, in registers
            return [f"{indent}{target} = {r.reduce('+=', target, t.op('sum', acc), dtype)};"]
        lines = [f"{indent}{{", f"{indent}  {r.ctype(dtype)} {lanes}[{t.lanes}];",
                 f"{indent}  {t.op('store', lanes, acc)};"]
        for half in halves(t.lanes):
            pair = r.reduce(store.reduce, f"{lanes}[lw_l]", f"{lanes}[lw_l + {half}]", dtype)
            lines.append(f"{indent}  for (int lw_l = 0; lw_l < {half}; lw_l++) "
                         f"{lanes}[lw_l] = {pair};")
        return [*lines,
                f"{indent}  {target} = {r.reduce(store.reduce, target, f'{lanes}[0]', dtype)};",
                f"{indent}}}"]
