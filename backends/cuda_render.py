"""CUDA C text of a lowered kernel (`cuda_lower.Program`): `__global__` kernels and an
`extern "C"` host launcher that copies the arrays to the device, launches the kernels in order
and copies the results back.

The same text builds with nvcc for a GPU and, with `-DLW_CUDA_EMULATION`, with a host C++
compiler against `cuda_emulation.HEADER` (see there).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from loopweave.backends.c_family import PRELUDE, CFamilyRenderer, c_name, c_var
from loopweave.backends.cuda_lower import (
    Contraction,
    GridDim,
    KernelPlan,
    Launch,
    Program,
    Tiles,
    Work,
)
from loopweave.backends.cuda_raw import Raw
from loopweave.backends.cuda_tiles import contraction_body
from loopweave.ir import expr as ir
from loopweave.ir.kernel import KernelIR, Tensor
from loopweave.ir.loops import (
    Block,
    For,
    If,
    Node,
    Store,
    invariant_target,
    map_stores,
    rename_element,
)
from loopweave.ir.types import DTYPES, DType, identity

_CUDA_TYPES = {"f16": "__half", "bf16": "__nv_bfloat16"}
REDUCE_CODES = {"+=": 0, "*=": 1, "max=": 2, "min=": 3}
_GRID_LIMITS = ("2147483647", "65535", "65535")

#: Everything up to the f16 section of the C prelude, callable from host and device code.
_C_HELPERS = PRELUDE.split("/* f16 and bf16")[0].replace(
    "static inline", "__host__ __device__ inline")  # not static: unused ones would warn

CUDA_PRELUDE = r"""#ifndef LW_CUDA_PRELUDE
#define LW_CUDA_PRELUDE
#ifdef LW_CUDA_EMULATION
#include "lw_cuda_emulation.h"
#else
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#define LW_LAUNCH(kernel, grid, block, ...) kernel<<<grid, block>>>(__VA_ARGS__)
#endif
#include <stdio.h>
""" + _C_HELPERS + r"""
/* f16 and bf16 are loaded to f32, computed in f32 and rounded to nearest even when stored. */
__device__ __forceinline__ float lw_f16_to_f32(__half h) { return __half2float(h); }
__device__ __forceinline__ __half lw_f32_to_f16(float f) { return __float2half_rn(f); }
__device__ __forceinline__ float lw_bf16_to_f32(__nv_bfloat16 h) {
  return __bfloat162float(h); }
__device__ __forceinline__ __nv_bfloat16 lw_f32_to_bf16(float f) {
  return __float2bfloat16_rn(f); }

/* Reductions: 0 add, 1 multiply, 2 max, 3 min (NaN propagates, as numpy's). */
template <int OP, class T> __device__ __forceinline__ T lw_combine(T a, T b) {
  if (OP == 0) return (T)(a + b);
  if (OP == 1) return (T)(a * b);
  if (OP == 2) return (a > b || a != a) ? a : b;
  return (a < b || a != a) ? a : b;
}

/* Reduce over the block: shuffles within each warp, then shared memory between warps.
   Every thread of the block calls it and gets the result; blockDim.x is a multiple of 32. */
template <int OP, class T> __device__ T lw_block_reduce(T v, T *scratch) {
  for (int offset = 16; offset > 0; offset >>= 1)
    v = lw_combine<OP>(v, (T)__shfl_xor_sync(0xffffffffu, v, offset));
  const int warps = (int)(blockDim.x / 32);
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
  __syncthreads();
  v = scratch[0];
  for (int w = 1; w < warps; ++w) v = lw_combine<OP>(v, scratch[w]);
  __syncthreads();
  return v;
}

/* The same over a block of n threads that are not whole warps: one shared word per thread,
   combined in thread order by every thread. */
template <int OP, class T> __device__ T lw_block_reduce_n(T v, T *scratch, int n) {
  scratch[threadIdx.x] = v;
  __syncthreads();
  v = scratch[0];
  for (int t = 1; t < n; ++t) v = lw_combine<OP>(v, scratch[t]);
  __syncthreads();
  return v;
}

static char lw_error_text[512];
extern "C" const char *lw_cuda_error(void) { return lw_error_text[0] ? lw_error_text : 0; }
static cudaError_t lw_fail(cudaError_t err, const char *what) {
  snprintf(lw_error_text, sizeof lw_error_text, "%s: %s", what, cudaGetErrorString(err));
  return err;
}
#define LW_TRY(call) do { cudaError_t lw_e = (call); \
  if (lw_e != cudaSuccess) return lw_fail(lw_e, #call); } while (0)
#endif
"""


@dataclass(frozen=True)
class Hoist:
    """`loop`, with `tensor[indices]` kept in the register `reg` while it runs."""

    tensor: str
    indices: tuple[ir.Expr, ...]
    reg: str
    loop: For


class CudaRenderer(CFamilyRenderer):
    index_type = "int64_t"

    def __init__(self, kernel: KernelIR, program: Program, tiles: Tiles, arch: str):
        super().__init__({t.name: t.shape for t in kernel.tensors.values()})
        self.kernel = kernel
        self.program = program
        self.tiles = tiles
        self.arch = arch
        self.registers: dict[str, str] = {}  # tensor name of a register -> its C name
        self.split_loop: str | None = None  # the loop spread over the block's threads
        self.counter = 0

    # -- types, expressions, statements -----------------------------------------------------------

    def ctype(self, dtype: DType) -> str:
        return _CUDA_TYPES.get(dtype.name, dtype.c_type)

    def expr(self, e, parent_prec: int = 0) -> str:
        if isinstance(e, Raw):
            return e.text
        if isinstance(e, ir.Load) and e.tensor in self.registers:
            return self.registers[e.tensor]
        return super().expr(e, parent_prec)

    def store(self, node: Store) -> str:
        if node.tensor not in self.registers:
            return super().store(node)
        # The C renderer's store into a placeholder target, then the register's name put in.
        text = super().store(replace(node, tensor="@", indices=()))
        return text.replace("@[0]", self.registers[node.tensor])

    def stmt(self, node, indent: str) -> list[str]:
        if isinstance(node, Hoist):
            return self.render_hoist(node, indent)
        return super().stmt(node, indent)

    def render_for(self, node: For, indent: str) -> list[str]:
        if node.var != self.split_loop:
            return self.render_plain_for(node, indent)
        v = c_var(node.var)
        return [f"{indent}for (int64_t {v} = {self.expr(node.init)} + (int64_t)threadIdx.x * "
                f"{node.step}; {self.expr(node.cond)}; {v} += (int64_t)blockDim.x * "
                f"{node.step}) {{",
                *self.stmt(node.body, indent + "  "), f"{indent}}}"]

    def render_hoist(self, node: Hoist, indent: str) -> list[str]:
        loop = node.loop
        first = ir.substitute(loop.cond, {loop.var: loop.init})
        dtype = self.kernel.tensors[node.tensor].dtype
        target = f"{c_name(node.tensor)}[{self.linear_index(node.tensor, node.indices)}]"
        self.registers[node.reg] = node.reg
        body = self.stmt(loop, indent + "  ")
        del self.registers[node.reg]
        return [f"{indent}if ({self.expr(first)}) {{",
                f"{indent}  {self.ctype(dtype)} {node.reg} = {target};", *body,
                f"{indent}  {target} = {node.reg};", f"{indent}}}"]

    # -- register promotion ---------------------------------------------------------------------

    def promote(self, node: Node) -> Node:
        """Keep an element that a loop updates at a fixed index in a register during the loop."""
        match node:
            case Block(body=body):
                return Block(tuple(self.promote(b) for b in body))
            case If(cond=c, then=t, orelse=e):
                return If(c, self.promote(t), None if e is None else self.promote(e))
            case For():
                target = invariant_target(node)
                if target is None or target[0] in self.registers:  # a register already
                    return replace(node, body=self.promote(node.body))
                tensor, indices = target
                reg = f"lw_r{self.counter}"
                self.counter += 1
                loop = rename_element(node, tensor, indices, reg)
                return Hoist(tensor, indices, reg, loop)
        return node

    # -- the file ---------------------------------------------------------------------------------

    def render(self) -> str:
        head = (f"/* Generated by loopweave from kernel '{self.kernel.name}' for CUDA "
                f"({self.arch}). */\n")
        kernels = [self.render_kernel(p) for p in self.program.kernels]
        return "\n".join([head + CUDA_PRELUDE, *kernels, self.render_launcher()])

    def tensor_params(self, host: bool) -> list[str]:
        parts = []
        for t in (*self.kernel.args, *self.kernel.outputs, *self.kernel.temporaries):
            if isinstance(t, Tensor):
                const = "const " if t.role == "in" else ""
                name = f"lw_h_{t.name}" if host else c_name(t.name)
                qual = "" if host else "__restrict__ "
                parts.append(f"{const}{self.ctype(t.dtype)} *{qual}{name}")
            else:
                parts.append(f"{self.ctype(t.dtype)} {c_name(t.name)}")
        return parts + [f"int64_t {c_name(s)}" for s in self.kernel.sizes]

    def call_args(self) -> list[str]:
        names = [t.name for t in (*self.kernel.args, *self.kernel.outputs,
                                  *self.kernel.temporaries)]
        return [c_name(n) for n in names] + [c_name(s) for s in self.kernel.sizes]

    def kernel_head(self, plan: KernelPlan, threads: int) -> list[str]:
        params = self.tensor_params(host=False)
        params += [f"int64_t {c_name(v)}" for v in plan.outer]
        for d in range(len(plan.dims)):
            params += [f"int64_t lw_lo{d}", f"int64_t lw_n{d}"]
        return [f'extern "C" __global__ void __launch_bounds__({threads})',
                f"{plan.name}({', '.join(params)}) {{"]

    def block_shape(self, plan: KernelPlan) -> tuple[int, int, int]:
        t = self.tiles
        if plan.kind == "contraction":
            return t.block_n // t.thread_n, t.block_m // t.thread_m, 1
        if plan.kind == "rows":
            return t.block_threads, 1, 1
        if not plan.dims:
            return 1, 1, 1
        if len(plan.dims) == 1:
            return t.block_threads, 1, 1
        return 32, t.block_threads // 32, 1

    def render_kernel(self, plan: KernelPlan) -> str:
        bx, by, bz = self.block_shape(plan)
        lines = self.kernel_head(plan, bx * by * bz)
        if plan.kind == "contraction":
            lines += contraction_body(self, plan)
        elif plan.kind == "rows":
            lines += self.rows_body(plan)
        else:
            lines += self.pointwise_body(plan)
        return "\n".join([*lines, "}"]) + "\n"

    def decode(self, dims: tuple[GridDim, ...], first: int, flat: str, indent: str) -> list[str]:
        """Declare dims[first:] from the flat index `flat` (the last one varies fastest)."""
        names = list(range(first, len(dims)))
        if not names:
            return []
        lines = [f"{indent}int64_t lw_rest = {flat};"]
        for d in reversed(names):
            if d == names[0]:
                lines.append(f"{indent}const int64_t {c_name(dims[d].name)} = lw_lo{d} + lw_rest;")
            else:
                lines += [f"{indent}const int64_t {c_name(dims[d].name)} = lw_lo{d} + "
                          f"lw_rest % lw_n{d};", f"{indent}lw_rest /= lw_n{d};"]
        return lines

    def flat_extent(self, count: int, first: int = 0) -> str:
        return " * ".join(f"lw_n{d}" for d in range(first, count)) or "1"

    def pointwise_body(self, plan: KernelPlan) -> list[str]:
        code = self.promote(plan.works[0].code)
        n = len(plan.dims)
        if n == 0:
            return ["  if (blockIdx.x == 0 && threadIdx.x == 0) {", *self.stmt(code, "    "),
                    "  }"]
        lines, indent = [], "  "
        if n > 2:
            lines += [f"{indent}for (int64_t lw_z = blockIdx.z; lw_z < "
                      f"{self.flat_extent(n - 2)}; lw_z += gridDim.z) {{"]
            indent += "  "
            lines += self.decode(plan.dims[:n - 2], 0, "lw_z", indent)
        for axis, d in (("y", n - 2), ("x", n - 1)):
            if d < 0:
                continue
            lines += [f"{indent}for (int64_t lw_{axis} = blockIdx.{axis} * (int64_t)blockDim.{axis}"
                      f" + threadIdx.{axis}; lw_{axis} < lw_n{d}; lw_{axis} += (int64_t)gridDim."
                      f"{axis} * blockDim.{axis}) {{",
                      f"{indent}  const int64_t {c_name(plan.dims[d].name)} = lw_lo{d} + "
                      f"lw_{axis};"]
            indent += "  "
        lines += self.stmt(code, indent)
        while indent != "  ":
            indent = indent[:-2]
            lines.append(f"{indent}}}")
        return lines

    def rows_body(self, plan: KernelPlan) -> list[str]:
        scratch = sorted({self.acc_type(w.stmt).name for w in plan.works if w.mode == "reduce"})
        lines = [f"  __shared__ {self.ctype(DTYPES[s])} lw_red_{s}[32];" for s in scratch]
        n = len(plan.dims)
        lines.append(f"  for (int64_t lw_q = blockIdx.x; lw_q < {self.flat_extent(n)}; "
                     "lw_q += gridDim.x) {")
        lines += self.decode(plan.dims, 0, "lw_q", "    ")
        for work in plan.works:
            if work.barrier_before:
                lines.append("    __syncthreads();")
            lines += self.render_work(work, "    ")
        return [*lines, "  }"]

    def acc_type(self, stmt) -> DType:
        return stmt.rhs.dtype.compute

    def render_work(self, work: Work, indent: str) -> list[str]:
        self.split_loop = work.loop if work.mode in ("split", "reduce") else None
        try:
            if work.mode == "split":
                return [f"{indent}{{", *self.stmt(self.promote(work.code), indent + "  "),
                        f"{indent}}}"]
            if work.mode == "single":
                return [f"{indent}if (threadIdx.x == 0) {{",
                        *self.stmt(self.promote(work.code), indent + "  "), f"{indent}}}"]
            return self.render_reduce(work, indent)
        finally:
            self.split_loop = None

    def render_reduce(self, work: Work, indent: str) -> list[str]:
        s = work.stmt
        acc = self.acc_type(s)
        value = s.rhs
        init = self.const(identity(s.op, acc), acc)
        partial = map_stores(work.code, lambda st: replace(
            st, tensor="@acc", indices=(),
            value=st.value.operand if st.value.dtype.is_storage_only else st.value))
        self.registers["@acc"] = "lw_acc"
        body = self.stmt(partial, indent + "    ")
        del self.registers["@acc"]
        if work.loop is None:  # nothing to spread: thread 0 does it all
            body = [f"{indent}  if (threadIdx.x == 0) {{", *body, f"{indent}  }}"]
        else:
            body = [f"{indent}  {{", *body, f"{indent}  }}"]
        total = Raw("lw_acc", acc)
        final = Store(s.lhs.tensor, s.lhs.indices,
                      ir.Cast(value.dtype, total) if value.dtype.is_storage_only else total,
                      s.op, s.name)
        return [f"{indent}{{", f"{indent}  {self.ctype(acc)} lw_acc = {init};", *body,
                f"{indent}  lw_acc = lw_block_reduce<{REDUCE_CODES[s.op]}>(lw_acc, "
                f"lw_red_{acc.name});",
                f"{indent}  if (threadIdx.x == 0 && ({self.expr(work.guard)})) {{",
                f"{indent}    {self.store(final)}", f"{indent}  }}", f"{indent}}}"]

    # -- the host launcher ------------------------------------------------------------------------

    def grid(self, plan: KernelPlan) -> tuple[str, str, str]:
        t = self.tiles
        n = len(plan.dims)
        if plan.kind == "contraction":
            counts = [f"(lw_n{n - 1} + {t.block_n - 1}) / {t.block_n}",
                      f"(lw_n{n - 2} + {t.block_m - 1}) / {t.block_m}",
                      self.flat_extent(n - 2)]
        elif plan.kind == "rows":
            counts = [self.flat_extent(n), "1", "1"]
        else:
            bx, by, _ = self.block_shape(plan)
            counts = ["1", "1", "1"]
            if n >= 1:
                counts[0] = f"(lw_n{n - 1} + {bx - 1}) / {bx}"
            if n >= 2:
                counts[1] = f"(lw_n{n - 2} + {by - 1}) / {by}"
            if n >= 3:
                counts[2] = self.flat_extent(n - 2)
        return tuple(c if c == "1" else f"(unsigned)lw_min_i64({c}, {limit})"
                     for c, limit in zip(counts, _GRID_LIMITS, strict=True))

    def render_launch(self, node: Launch, indent: str) -> list[str]:
        plan = self.program.kernels[node.kernel]
        lines = [f"{indent}{{"]
        inner = indent + "  "
        for var, value in zip(plan.outer, node.args, strict=True):
            lines.append(f"{inner}const int64_t {c_name(var)} = {self.expr(value)};")
        for d, dim in enumerate(plan.dims):
            lines += [f"{inner}const int64_t lw_lo{d} = {self.expr(dim.lo)};",
                      f"{inner}const int64_t lw_n{d} = {self.expr(dim.hi)} - lw_lo{d} + 1;"]
        nonempty = " && ".join(f"lw_n{d} > 0" for d in range(len(plan.dims))) or "1"
        args = self.call_args() + [c_name(v) for v in plan.outer]
        args += [x for d in range(len(plan.dims)) for x in (f"lw_lo{d}", f"lw_n{d}")]
        block = ", ".join(map(str, self.block_shape(plan)))
        lines += [f"{inner}if ({nonempty}) {{",
                  f"{inner}  LW_LAUNCH({plan.name}, dim3({', '.join(self.grid(plan))}), "
                  f"dim3({block}), {', '.join(args)});",
                  f"{inner}  LW_TRY(cudaGetLastError());", f"{inner}}}", f"{indent}}}"]
        return lines

    def host_stmt(self, node: Node, indent: str) -> list[str]:
        match node:
            case Launch():
                return self.render_launch(node, indent)
            case Block(body=body):
                return [line for b in body for line in self.host_stmt(b, indent)]
            case For(var=v):
                return [f"{indent}for (int64_t {c_var(v)} = {self.expr(node.init)}; "
                        f"{self.expr(node.cond)}; {c_var(v)} += {node.step}) {{",
                        *self.host_stmt(node.body, indent + "  "), f"{indent}}}"]
            case If(cond=c, then=t, orelse=e):
                lines = [f"{indent}if ({self.expr(c)}) {{", *self.host_stmt(t, indent + "  ")]
                if e is not None:
                    lines += [f"{indent}}} else {{", *self.host_stmt(e, indent + "  ")]
                return [*lines, f"{indent}}}"]
        raise AssertionError(type(node).__name__)

    def device_locals(self) -> list[Tensor]:
        """Local buffers that live in device memory between launches (allocated and freed by
        the launcher, never copied): none for the planner's kernels."""
        return []

    def render_launcher(self) -> str:
        k = self.kernel
        tensors = [t for t in (*k.args, *k.outputs, *k.temporaries) if isinstance(t, Tensor)]
        tensors += self.device_locals()
        lines = [f'extern "C" void lw_{k.name}({", ".join(self.tensor_params(host=True))}) {{',
                 "  lw_error_text[0] = 0;"]
        for t in tensors:
            size = ir.Const(1)
            for d in t.shape:
                size = ir.mul(size, d)
            lines += [f"  {self.ctype(t.dtype)} *{c_name(t.name)} = 0;",
                      f"  const size_t lw_bytes_{t.name} = (size_t)lw_max_i64({self.expr(size)}"
                      f", 1) * sizeof({self.ctype(t.dtype)});"]
        lines.append("  auto lw_run = [&]() -> cudaError_t {")
        for t in tensors:
            name = c_name(t.name)
            lines.append(f"    LW_TRY(cudaMalloc((void **)&{name}, lw_bytes_{t.name}));")
            if t.role in ("in", "inout"):
                lines.append(f"    LW_TRY(cudaMemcpy({name}, lw_h_{t.name}, lw_bytes_{t.name}, "
                             "cudaMemcpyHostToDevice));")
            else:
                lines.append(f"    LW_TRY(cudaMemset({name}, 0, lw_bytes_{t.name}));")
        lines += self.host_stmt(self.program.host, "    ")
        lines.append("    LW_TRY(cudaDeviceSynchronize());")
        for t in tensors:
            if t.role in ("inout", "out"):
                lines.append(f"    LW_TRY(cudaMemcpy(lw_h_{t.name}, {c_name(t.name)}, "
                             f"lw_bytes_{t.name}, cudaMemcpyDeviceToHost));")
        lines += ["    return cudaSuccess;", "  };", "  lw_run();"]
        lines += [f"  cudaFree({c_name(t.name)});" for t in tensors]
        return "\n".join([*lines, "}"]) + "\n"


__all__ = ["CUDA_PRELUDE", "Contraction", "CudaRenderer", "Raw", "Tiles"]
