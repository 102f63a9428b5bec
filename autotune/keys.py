"""Identities of what a measurement is about: the kernel, the compiler and the machine.

The lookup key of a tuning record is (normalized kernel hash, sizes, dtypes, target, compiler
version, OpenMP thread count). The kernel hash is taken over the checked IR printed without
source positions, so whitespace, comments and blank lines do not change it, while any change to
the computation does.
The candidate list never enters the key: widening the search space keeps old records usable.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
from dataclasses import dataclass
from importlib import metadata

from loopweave.ir.expr import to_str
from loopweave.ir.isl_helpers import stable_text
from loopweave.ir.kernel import KernelIR
from loopweave.pipeline import backend_module
from loopweave.targets import openmp_threads
from loopweave.toolchain import compiler_identity


def normalized_text(kernel: KernelIR) -> str:
    """The kernel's computation as text, free of source positions and formatting."""
    lines = [f"kernel {kernel.name}"]
    lines += [f"arg {a}" for a in kernel.args]
    lines += [f"out {t}" for t in kernel.outputs]
    lines += [f"tmp {t}" for t in kernel.temporaries]
    lines += [f"assume {to_str(a)}" for a in kernel.assumptions]
    for s in kernel.statements:
        lines.append(f"{s.name}[{', '.join(s.iterators)}] {to_str(s.lhs)} {s.op} "
                     f"{to_str(s.rhs)} init={s.is_init} domain={stable_text(s.domain)}")
    return "\n".join(lines)


def kernel_hash(kernel: KernelIR) -> str:
    """A hash of the kernel's normalized text (whitespace- and comment-insensitive)."""
    return hashlib.sha256(normalized_text(kernel).encode()).hexdigest()[:24]


def dtypes_of(kernel: KernelIR) -> str:
    """The element types of every tensor and scalar argument, e.g. "A:f32,B:f32,C:f32"."""
    items = [*kernel.args, *kernel.outputs]
    return ",".join(f"{a.name}:{a.dtype}" for a in items)


def key_sizes(kernel: KernelIR, sizes: dict[str, int]) -> dict[str, int]:
    """The part of `sizes` that enters the key: the size symbols bound from argument shapes
    (what a call knows); integer scalar arguments do not."""
    return {p: int(sizes[p]) for p in kernel.sizes if p in sizes}


@functools.cache
def loopweave_version() -> str:
    try:
        return metadata.version("loopweave")
    except metadata.PackageNotFoundError:
        return "unknown"


def compiler_version(target) -> str:
    """What builds the kernel for `target`: the backend's own tool versions, loopweave's version.

    A backend module may define `compiler_version(target) -> str`; targets with a compiler are
    identified by its `--version` line and flags, others by their backend package's version.
    """
    module = backend_module(target)
    if hasattr(module, "compiler_version"):
        tool = module.compiler_version(target)
    elif target.cc:
        tool = f"{compiler_identity(target.cc)} {' '.join(target.cflags)}"
    else:  # a backend without a C compiler (Triton): the package it generates code for
        try:
            tool = f"{target.backend} {metadata.version(target.backend)}"
        except metadata.PackageNotFoundError:
            tool = target.backend
    return f"loopweave {loopweave_version()}; {target.backend}: {tool}"


@dataclass(frozen=True, slots=True)
class KernelKey:
    """The exact lookup key of tuning records."""

    kernel_hash: str
    sizes: str  # canonical JSON of the sizes
    dtypes: str
    target: str
    compiler: str
    threads: int

    @property
    def digest(self) -> str:
        parts = (self.kernel_hash, self.sizes, self.dtypes, self.target, self.compiler,
                 f"threads={self.threads}")
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def kernel_key(kernel: KernelIR, sizes: dict[str, int], target) -> KernelKey:
    """The record key of `kernel` at `sizes` for a `loopweave.targets.Target`, with the
    number of threads its parallel loops get here (the best schedule depends on it)."""
    return KernelKey(kernel_hash(kernel), json.dumps(key_sizes(kernel, sizes), sort_keys=True),
                     dtypes_of(kernel), target.name, compiler_version(target), openmp_threads())


@functools.cache
def machine_fingerprint() -> str:
    """This machine: host name, CPU model, core count, OS and architecture."""
    model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{platform.node()}|{model}|{os.cpu_count()} cpus|{platform.system()} "
            f"{platform.machine()}")
