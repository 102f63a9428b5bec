"""The nodes of a lowered GPU program (`ir/launches` builds them, the GPU renderers read them):
launches with their block loops and block shape, the host code around them, and the block-level
nodes a loop AST does not have (barriers, one-thread parts, spread copies, reductions across a
block's threads)."""

from __future__ import annotations

from dataclasses import dataclass

from loopweave.ir import expr as ir
from loopweave.ir.loops import Buffer, For, Node, Store, children, walk


@dataclass(frozen=True, slots=True)
class Barrier:
    """Every thread of the block waits here (CUDA `__syncthreads`, Triton `debug_barrier`)."""


@dataclass(frozen=True, slots=True)
class OneThread:
    """Block-level work outside every thread loop: one thread of the block runs it."""

    body: Node


@dataclass(frozen=True, slots=True)
class Spread:
    """A copy into a block's shared buffer, its iterations spread over all threads of the
    block: `nest` (perfectly nested loops around one store) has independent iterations (each
    writes its own element and reads only other tensors), `extents` are the trip counts of its
    loops, none depending on another loop of the nest."""

    nest: For
    extents: tuple[ir.Expr, ...]


@dataclass(frozen=True, slots=True)
class ThreadReduce:
    """A threadIdx.x loop that reduces into one element shared by every thread. Each thread
    combines its iterations into the register `partial` (`loop`'s stores are rewritten to it,
    so `loop` starts from the reduction's identity); then the threads of the block combine
    their registers, and one thread applies `update` (`element op= partial`). Every thread of
    the block reaches it (it is at block level), so a renderer may synchronise inside."""

    loop: For
    partial: Buffer  # a scalar of the reduction's compute type
    update: Store


@dataclass(frozen=True, slots=True)
class Launch:
    """One kernel launch: `blocks` spread over the grid, `body` run by every block."""

    name: str
    blocks: tuple[For, ...]  # loops bound to blockIdx.*, outer first (their bodies: see body)
    grid_extents: tuple[ir.Expr, ...]  # host expressions: the trip count of each block loop
    threads: tuple[tuple[str, int], ...]  # (threadIdx axis, threads) of the block shape
    body: Node
    shared: tuple[Buffer, ...]  # block-level buffers (shared by the block's threads)
    host_vars: tuple[str, ...]  # variables of host loops the launch reads
    registers: tuple[Buffer, ...] = ()  # per-thread arrays for the whole launch (ir/fragments)


@dataclass(frozen=True, slots=True)
class GpuProgram:
    """The host code with its launches, and why some code runs on one thread."""

    host: Node
    launches: tuple[Launch, ...]
    warnings: tuple[str, ...]
    device_buffers: tuple[Buffer, ...] = ()  # local buffers of the host code: device memory


KernelNode = Node | Barrier | OneThread | Spread | ThreadReduce


def kernel_children(node: KernelNode) -> tuple:
    if isinstance(node, ThreadReduce):
        return (node.loop,)
    if isinstance(node, OneThread):
        return (node.body,)
    if isinstance(node, Spread):
        return (node.nest,)
    return children(node)


def walk_kernel(node: KernelNode):
    """All nodes of a launch body, parents first (Barrier and OneThread included)."""
    return walk(node, kernel_children)
