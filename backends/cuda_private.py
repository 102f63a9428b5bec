"""Temporaries private to a CUDA block: kept in `__shared__` memory instead of device memory.

A temporary of the kernel (the scores, the running maximum and sum of FlashAttention-2's steps,
passes/gpu_online) that only one launch reads and writes, a launch outside every host loop
(shared memory does not outlive it), where each dimension is either of
constant size or indexed by the variable of a thread loop whose first point depends only on
the launch's block loops, holds in each iteration of the block loops the elements of that
iteration alone: the block loops' iterations are independent (`Schedule.bind` checked them),
so no value of it flows from one iteration to another, and the elements one iteration uses
lie in a box of constant size at the thread loops' origin:

    for c0 (blockIdx.x):                               __shared__ float m[16];
      for c1 = 16 c0 + threadIdx.y (16 points):   ->   m[c1 - 16 c0]
        m[c1] = ...

The renderer (backends/cuda_scheduled) declares such a temporary `__shared__` in the launch
(while the launches' total stays within the block's shared memory), indexes it from the
origin, and leaves its device array out of the launch's arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

from loopweave.ir import expr as ir
from loopweave.ir.affine import constant_value, simplify
from loopweave.ir.kernel import KernelIR
from loopweave.ir.launch_nodes import GpuProgram, Launch, ThreadReduce, walk_kernel
from loopweave.ir.loops import THREAD_AXES, For, Store, children, full_extent, node_loads


@dataclass(frozen=True, slots=True)
class Private:
    """A temporary kept in shared memory by one launch: its shape there and, per dimension,
    the origin each thread loop variable indexing it is counted from (None: as it is)."""

    name: str
    shape: tuple[int, ...]
    origins: tuple[dict[str, ir.Expr] | None, ...]

    def index(self, indices: tuple[ir.Expr, ...]) -> tuple[ir.Expr, ...]:
        """The indices of an access into the shared copy."""
        out = []
        for x, origin in zip(indices, self.origins, strict=True):
            if origin is not None and isinstance(x, ir.Var):
                x = simplify(ir.add(x, ir.mul(ir.Const(-1, x.dtype), origin[x.name])))
            out.append(x)
        return tuple(out)


def block_private(kernel: KernelIR, program: GpuProgram, launch: Launch,
                  budget: int | None) -> dict[str, Private]:
    """The temporaries of `kernel` that `launch` may keep in shared memory (module
    docstring), within `budget` bytes besides its own shared buffers (None: no budget)."""
    if _in_host_loop(program.host, launch):
        return {}  # run once per host iteration: a temporary may carry values between them
    blocks = {b.var for b in launch.blocks}
    threads: dict[str, tuple[ir.Expr, int]] = {}  # thread variable -> origin, points spanned
    for n in walk_kernel(launch.body):
        if isinstance(n, For) and n.kind in THREAD_AXES:
            extent = full_extent(n)
            if extent is not None and ir.variables(n.init) <= blocks:
                threads[n.var] = (n.init, (extent - 1) * n.step + 1)
    elsewhere = _accessed(program.host) | {
        t for other in program.launches if other is not launch for t in _accessed(other.body)}
    accesses = _accesses(launch)
    left = None if budget is None else budget - sum(
        b.dtype.bits // 8 * _size(tuple(constant_value(d) for d in b.shape))
        for b in launch.shared)
    found = {}
    for t in kernel.temporaries:
        if t.name in elsewhere or t.name not in accesses or t.role != "temp":
            continue
        private = _private(t, accesses[t.name], threads)
        if private is None:
            continue
        size = t.dtype.bits // 8 * _size(private.shape)
        if left is not None and size > left:
            continue
        left = None if left is None else left - size
        found[t.name] = private
    return found


def _in_host_loop(node, launch: Launch, inside: bool = False) -> bool:
    """Is `launch` inside a loop of the host code `node`?"""
    if node is launch:
        return inside
    inside = inside or isinstance(node, For)
    return any(_in_host_loop(c, launch, inside) for c in children(node))


def _private(t, indices: list[tuple[ir.Expr, ...]], threads) -> Private | None:
    shape, origins = [], []
    for d, dim in enumerate(t.shape):
        size = constant_value(dim)
        if size is not None:  # in bounds as it is (the front end proved it)
            shape.append(size)
            origins.append(None)
            continue
        names = {ix[d].name if isinstance(ix[d], ir.Var) else None for ix in indices}
        if None in names or not names <= threads.keys():
            return None
        origin = {threads[v][0] for v in names}
        if len(origin) != 1:
            return None
        shape.append(max(threads[v][1] for v in names))
        origins.append({v: threads[v][0] for v in names})
    return Private(t.name, tuple(shape), tuple(origins))


def _accesses(launch: Launch) -> dict[str, list[tuple[ir.Expr, ...]]]:
    out: dict[str, list[tuple[ir.Expr, ...]]] = {}
    for n in walk_kernel(launch.body):
        n = n.update if isinstance(n, ThreadReduce) else n  # its loop is walked on its own
        if isinstance(n, Store):
            out.setdefault(n.tensor, []).append(n.indices)
        for ld in node_loads(n):
            out.setdefault(ld.tensor, []).append(ld.indices)
    return out


def _accessed(node) -> set[str]:
    names = set()
    for n in walk_kernel(node) if node is not None else ():
        n = n.update if isinstance(n, ThreadReduce) else n
        if isinstance(n, Store):
            names.add(n.tensor)
        names |= {ld.tensor for ld in node_loads(n)}
    return names


def _size(shape: tuple[int, ...]) -> int:
    size = 1
    for n in shape:
        size *= n
    return max(size, 1)


__all__ = ["Private", "block_private"]
