"""Fixing a kernel's sizes: the IR and the loop AST with sizes replaced by their values.

    spec = fix_sizes(kernel, {"M": 64, "N": 64})      # constant shapes, no size parameters
    loops = substitute_sizes(loop_ast(kernel), values)  # the generic nest, sizes as constants

Used by the standalone C emitter (`loopweave.emit_c` with sizes), where every size is a compile
time constant and temporaries become static arrays, and by the default's choices by sizes that
build for the call's sizes: all of them, or only the `stride_sizes` (a GEMM's K and N, with M
left a parameter).
"""

from __future__ import annotations

import dataclasses

import islpy as isl

from loopweave.errors import ArgumentValueError
from loopweave.ir import expr as ir
from loopweave.ir.kernel import KernelIR, Tensor
from loopweave.ir.types import INDEX


def check_assumptions(kernel: KernelIR, values: dict[str, int]) -> None:
    """Raise `ArgumentValueError` naming the first `assume` line that `values` (the sizes and
    integer scalars of a call, a specialization or a tuning run) break; a line about a name
    `values` does not bind (a tuning run's scalar left to its inputs) is not checked here."""
    for cond in kernel.assumptions:
        if any(isinstance(x, ir.Param) and x.name not in values for x in ir.walk(cond)):
            continue
        if not ir.evaluate(cond, values):
            shown = ", ".join(f"{k}={v}" for k, v in values.items())
            raise ArgumentValueError(f"{kernel.name}: the sizes break `assume {ir.to_str(cond)}` "
                                     f"({shown})")


def fixed_context(kernel: KernelIR, values: dict[str, int]) -> isl.Set:
    """The kernel's context (what its sizes may be) with `values` fixed."""
    ctx = kernel.context
    for name, v in values.items():
        pos = ctx.find_dim_by_name(isl.dim_type.param, name)
        if pos >= 0:
            ctx = ctx.fix_val(isl.dim_type.param, pos, isl.Val.int_from_si(ctx.get_ctx(), v))
    return ctx


_FOLDED = frozenset({"+", "-", "*", "/", "%"})


def _param_values(values: dict[str, int]):
    def replace_param(e: ir.Expr) -> ir.Expr | None:
        if isinstance(e, ir.Param) and e.name in values:
            return ir.Const(values[e.name], e.dtype)
        # Index arithmetic of constants folded (bottom-up, so `M - 1` becomes `63`): the
        # bounds read as the numbers they are. Arithmetic on data (narrow
        # integers wrap in C) is left to the C compiler.
        if (isinstance(e, ir.Binary) and e.op in _FOLDED and e.dtype == INDEX
                and isinstance(e.left, ir.Const) and isinstance(e.right, ir.Const)
                and not (e.op in "/%" and e.right.value == 0)):
            return ir.Const(ir.evaluate(e, {}), e.dtype)
        return None
    return replace_param


def stride_sizes(kernel: KernelIR) -> tuple[str, ...]:
    """The sizes that set a stride of one of the kernel's tensors (in any dimension of its
    shape but the first), in the kernel's order: fixing them makes every address's arithmetic
    constant but for the leading indices (`A[M, K]`: K, not M)."""
    inner = set()
    for t in (*kernel.args, *kernel.outputs, *kernel.temporaries):
        if isinstance(t, Tensor):
            for d in t.shape[1:]:
                inner |= {e.name for e in ir.walk(d) if isinstance(e, ir.Param)}
    return tuple(s for s in kernel.sizes if s in inner)


def fix_sizes(kernel: KernelIR, values: dict[str, int]) -> KernelIR:
    """The kernel with the sizes in `values` fixed: constant shapes; the other sizes stay
    parameters."""
    fn = _param_values(values)

    def const_shape(t):
        if not isinstance(t, Tensor):
            return t
        return dataclasses.replace(t, shape=tuple(ir.rewrite(d, fn) for d in t.shape))

    return dataclasses.replace(
        kernel, args=tuple(const_shape(a) for a in kernel.args),
        outputs=tuple(const_shape(t) for t in kernel.outputs),
        temporaries=tuple(const_shape(t) for t in kernel.temporaries),
        sizes=tuple(s for s in kernel.sizes if s not in values),
        context=fixed_context(kernel, values))


def substitute_sizes(node, values: dict[str, int]):
    """`node` (a loop AST, any dataclass of it) with every size parameter replaced by its
    value."""
    return _map_exprs(node, _param_values(values))


def _map_exprs(node, fn):
    if isinstance(node, ir.Expr):
        return ir.rewrite(node, fn)
    if isinstance(node, tuple):
        return tuple(_map_exprs(x, fn) for x in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        changes = {f.name: _map_exprs(getattr(node, f.name), fn)
                   for f in dataclasses.fields(node)}
        return dataclasses.replace(node, **changes)
    return node
