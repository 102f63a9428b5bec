"""Features of a scheduled kernel for the cost model, read off its loop AST at given sizes.

Per statement (each `Store` with the loops around it, outer to inner):
    work: log2 of the iterations; loops: how many; ops per instance; element bytes
    innermost loop: extent, the share of accesses with stride 0, stride 1 and larger strides
    vector/parallel/unroll: the extent of the marked loop (0 if none), stride-1 share under it
    per loop level, from the innermost outwards (LEVELS of them): the bytes the accesses inside
        that loop touch (all arrays, and the largest single array), the cache level they fit in,
        reuse (iterations per element touched) and arithmetic intensity (ops per byte)
    fused: how many statements share the statement's outermost loop; guards: `if`s around it
A kernel's vector is the work-weighted mean of its statements' vectors, then the vector of its
heaviest statement, then the statement count and total work. Extents are taken with every
outer loop at its first iteration (a full tile); bounds that cannot be evaluated count as 1.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import islpy as isl

from loopweave.autotune.space import loop_extents
from loopweave.ir import expr as ir
from loopweave.ir.kernel import KernelIR
from loopweave.ir.loops import Block, For, If, Node, Store

FEATURE_VERSION = 1
LEVELS = 6
_STMT_NAMES = (
    ["work", "loops", "ops", "elem_bytes", "inner_extent", "inner_stride0", "inner_stride1",
     "inner_strided", "vector_extent", "vector_stride1", "parallel_extent", "unroll_extent",
     "fused", "guards"]
    + [f"L{lv}_{what}" for lv in range(LEVELS)
       for what in ("bytes", "max_array_bytes", "cache_level", "reuse", "intensity")])
FEATURE_NAMES = ([f"mean_{n}" for n in _STMT_NAMES] + [f"top_{n}" for n in _STMT_NAMES]
                 + ["statements", "total_work"])


@functools.cache
def cache_sizes() -> tuple[int, ...]:
    """Data cache sizes in bytes, L1 first (from sysfs; typical values where it is absent)."""
    sizes = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            if (index / "type").read_text().strip() == "Instruction":
                continue
            level = int((index / "level").read_text())
            text = (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        scale = {"K": 1024, "M": 1024 ** 2}.get(text[-1:], 1)
        sizes[level] = int(text.rstrip("KM")) * scale
    return tuple(sizes[k] for k in sorted(sizes)) or (32 * 1024, 1024 ** 2, 32 * 1024 ** 2)


@dataclass(frozen=True, slots=True)
class _Loop:
    var: str
    extent: int
    kind: str


def _log2(x: float) -> float:
    return math.log2(x + 1.0)


def _bound(loop: For, env: dict[str, int]) -> tuple[int, int]:
    """(first value, extent) of a loop, outer loops at their first iteration."""
    try:
        lo = ir.evaluate(loop.init, env)
        cond = loop.cond
        if isinstance(cond, ir.Binary) and cond.op in ("<", "<="):
            hi = ir.evaluate(cond.right, env) - (1 if cond.op == "<" else 0)
            return lo, max(0, (hi - lo) // max(loop.step, 1) + 1)
        return lo, 1
    except (ValueError, KeyError, ZeroDivisionError):
        return 0, 1


def _ops(e: ir.Expr) -> int:
    return sum(1 for x in ir.walk(e) if isinstance(x, ir.Binary | ir.Call | ir.Unary))


class _Extractor:
    def __init__(self, kernel: KernelIR, sizes: dict[str, int]):
        self.kernel = kernel
        self.env = {k: int(v) for k, v in sizes.items()}
        self.shapes = {}
        for name, t in kernel.tensors.items():
            try:
                self.shapes[name] = [ir.evaluate(d, self.env) for d in t.shape]
            except (ValueError, KeyError):
                self.shapes[name] = [1 for _ in t.shape]
        self.caches = cache_sizes()
        self.rows: list[list[float]] = []
        self.works: list[float] = []

    def walk(self, node: Node, loops: list[_Loop], env: dict[str, int], guards: int,
             top: list) -> None:
        match node:
            case For():
                lo, extent = _bound(node, env)
                inner = [*loops, _Loop(node.var, extent, node.kind)]
                if not loops:
                    top = [0]  # statements under this outermost loop
                self.walk(node.body, inner, {**env, node.var: lo}, guards, top)
                if not loops:
                    for row in self.rows[len(self.rows) - top[0]:]:
                        row[_STMT_NAMES.index("fused")] = top[0]
            case If(then=t, orelse=e):
                self.walk(t, loops, env, guards + 1, top)
                if e is not None:
                    self.walk(e, loops, env, guards + 1, top)
            case Block(body=body):
                for b in body:
                    self.walk(b, loops, env, guards, top)
            case Store():
                self.rows.append(self.statement(node, loops, env, guards))
                top[0] += 1

    def coefficient(self, access: ir.Load | Store, var: str, env: dict[str, int]) -> int:
        """How far the access moves in memory (elements) when `var` grows by one."""
        name = access.tensor
        shape = self.shapes.get(name, [])

        def linear(e):
            try:
                idx = [ir.evaluate(x, e) for x in access.indices]
            except (ValueError, KeyError):
                return 0
            flat = 0
            for i, n in zip(idx, shape, strict=False):
                flat = flat * max(n, 1) + i
            return flat

        return linear({**env, var: env.get(var, 0) + 1}) - linear(env)

    def footprint(self, access, loops: list[_Loop], env) -> int:
        """Elements an access touches while `loops` run (a box estimate per dimension)."""
        shape = self.shapes.get(access.tensor, [])
        elements = 1
        for d, index in enumerate(access.indices):
            span = 1
            for lp in loops:
                try:
                    step = abs(ir.evaluate(index, {**env, lp.var: env.get(lp.var, 0) + 1})
                               - ir.evaluate(index, env))
                except (ValueError, KeyError):
                    step = 0
                span += step * max(lp.extent - 1, 0)
            elements *= min(span, shape[d]) if d < len(shape) and shape[d] > 0 else span
        return max(elements, 1)

    def statement(self, store: Store, loops: list[_Loop], env, guards: int) -> list[float]:
        accesses = [store, *ir.loads(store.value)]  # a reduction reads what it stores
        tensor = self.kernel.tensors.get(store.tensor)
        elem = tensor.dtype.bits // 8 if tensor else 4
        ops = _ops(store.value) + (1 if store.reduce else 0) or 1
        work = math.prod(lp.extent for lp in loops) if loops else 1
        self.works.append(work)

        def strides(var):
            return [abs(self.coefficient(a, var, env)) for a in accesses]

        inner = strides(loops[-1].var) if loops else [0]
        row = [_log2(work), len(loops), ops, elem,
               _log2(loops[-1].extent) if loops else 0,
               sum(s == 0 for s in inner) / len(inner), sum(s == 1 for s in inner) / len(inner),
               sum(s > 1 for s in inner) / len(inner)]
        marked = {k: next((lp for lp in loops if lp.kind == k), None)
                  for k in ("vector", "parallel", "unroll")}
        vec = marked["vector"]
        row += [_log2(vec.extent) if vec else 0,
                (sum(s == 1 for s in strides(vec.var)) / len(accesses)) if vec else 0,
                _log2(marked["parallel"].extent) if marked["parallel"] else 0,
                _log2(marked["unroll"].extent) if marked["unroll"] else 0,
                1, guards]
        for level in range(LEVELS):
            inside = loops[max(len(loops) - 1 - level, 0):] if loops else []
            per_array: dict[str, int] = {}
            for a in accesses:
                f = self.footprint(a, inside, env)
                per_array[a.tensor] = max(per_array.get(a.tensor, 0), f)
            total = sum(per_array.values()) * elem
            iterations = math.prod(lp.extent for lp in inside) if inside else 1
            fits = next((i for i, c in enumerate(self.caches) if total <= c), len(self.caches))
            row += [_log2(total), _log2(max(per_array.values(), default=0) * elem), fits,
                    _log2(iterations * len(accesses) / max(sum(per_array.values()), 1)),
                    _log2(iterations * ops / max(total, 1))]
        return row


def features(kernel: KernelIR, loops: Node, sizes: dict[str, int]) -> list[float]:
    """The feature vector of a scheduled kernel (its loop AST) at `sizes`."""
    ex = _Extractor(kernel, sizes)
    ex.walk(loops, [], dict(ex.env), 0, [0])
    if not ex.rows:
        return [0.0] * len(FEATURE_NAMES)
    total = sum(ex.works) or 1
    mean = [sum(w * r[i] for w, r in zip(ex.works, ex.rows, strict=True)) / total
            for i in range(len(_STMT_NAMES))]
    heaviest = ex.rows[max(range(len(ex.rows)), key=lambda i: ex.works[i])]
    return [float(x) for x in (*mean, *heaviest, len(ex.rows), _log2(total))]


def flop_count(kernel: KernelIR, sizes: dict[str, int]) -> float:
    """Arithmetic operations of one call at `sizes`: per statement, its instances (counted by
    isl for small domains, the bounding box for large ones) times the operations per instance."""
    extents = loop_extents(kernel, sizes)
    total = 0.0
    for s in kernel.statements:
        box = math.prod(extents[s.name].values()) if extents[s.name] else 1
        points = box
        if box <= 200_000:
            dom = s.domain
            for name, value in sizes.items():
                pos = dom.find_dim_by_name(isl.dim_type.param, name)
                if pos >= 0:
                    dom = dom.fix_val(isl.dim_type.param, pos, isl.Val(int(value)))
            try:
                points = dom.count_val().to_python()
            except (isl.Error, TypeError, ValueError):
                points = box
        total += points * (_ops(s.rhs) + (1 if s.op != "=" else 0))
    return float(total)
