"""Targets as data: the target records and the table of target names (the bottom layer).

This module imports nothing of loopweave but `errors`: it names each target's backend module as
a string, and `loopweave.pipeline` (a layer above the backends) turns that name into the module.
Each backend is one module under `loopweave.backends` with the same shape:

    make_target(name, cc, cflags, options) -> Target   # validate options, pick the toolchain
    render(kernel_ir, loops, target) -> str            # the generated source
    load(kernel_ir, source, target) -> Invoker         # build it; a callable that runs it

An `Invoker` is called as `invoke(arrays, scalars, sizes)` with every tensor (inputs, outputs and
temporaries, already allocated by the runtime) by name; it runs the kernel and leaves the results
in the output arrays. `loopweave.runtime.Kernel` does the argument checking for every target.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from loopweave.errors import TargetError


@dataclass(frozen=True)
class Target:
    name: str
    backend: str  # module under loopweave.backends
    cc: str
    cflags: tuple[str, ...]
    description: str
    options: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class GpuFacts:
    """What a GPU target's renderer does with a schedule (passes/gpu_default reads it)."""

    shared_bytes: int | None  # shared memory a block may stage into (None: none to manage)
    dot_types: tuple[str, ...]  # tile types a `dot` loop multiplies as a matrix product
    #                              (empty: dot loops run as plain loops there)
    block_threads: int = 1024  # threads (CUDA) or lanes of a program's tiles (Triton) per block
    dot_tile: tuple[int, int, int] = (64, 64, 32)  # rows, columns and k step of a dot's tiles
    dot_min: int = 16  # the smallest side of a tile a dot multiplies
    #: Where `dot_types` depends on the architecture (CUDA's tensor cores): (first sm version,
    #: the tile types from that version on), ascending; `gpu_facts(backend, arch)` sets
    #: `dot_types` from it for the target's arch.
    arch_dot_types: tuple[tuple[int, tuple[str, ...]], ...] = ()
    dot_fragment: tuple[int, int, int] | None = None  # rows, columns, k of one warp's product
    #: The lanes (threadIdx points) a block's dot loops may span: a renderer that runs them by
    #: warps (CUDA's WMMA) launches fewer threads than lanes. 0: `block_threads`.
    dot_lanes: int = 0


#: The GPU targets: CUDA C stages tiles in statically declared `__shared__` memory (48 KiB on
#: every architecture) with at most 1024 threads a block, Triton keeps no addressable shared
#: memory but has `tl.dot`, and a program's "threads" are the lanes of its tiles, spread over
#: its warps by Triton: 64 x 64 output tiles with a k step of 32, as Triton's own matmul
#: tutorial starts from (tiles up to 128 x 128). CUDA's tensor cores (WMMA, 16 x 16 x 16
#: fragments) multiply f16 from sm_70, int8 from sm_72 (Turing: sm_75) and bf16 from sm_80, each
#: with f32 (int32) accumulation; its dot tiles stage A, B and the f32 accumulator tile in
#: shared memory (64 x 64 x 16: 20 KiB).
GPU_FACTS = {
    "cuda": GpuFacts(shared_bytes=48 * 1024, dot_types=(), dot_tile=(64, 64, 16),
                     arch_dot_types=((70, ("f16",)), (72, ("f16", "i8", "u8")),
                                     (80, ("f16", "bf16", "i8", "u8"))),
                     dot_fragment=(16, 16, 16), dot_lanes=128 * 128),
    "triton": GpuFacts(shared_bytes=None, dot_types=("f16", "bf16", "f32", "i8", "u8"),
                       block_threads=128 * 128),
}


def gpu_facts(backend: str, arch: str | None = None) -> GpuFacts:
    """The GPU facts of `backend` ("cuda", "triton") for `arch` (`sm_80`, `sm_90a`; None: the
    record as is): where the record has `arch_dot_types`, `dot_types` are those of the newest
    entry at or below the arch's version (none below the first)."""
    facts = GPU_FACTS[backend]
    if arch is None or not facts.arch_dot_types:
        return facts
    version = int(re.match(r"sm_(\d+)", arch).group(1))
    types: tuple[str, ...] = ()
    for first, found in facts.arch_dot_types:
        if version >= first:
            types = found
    return replace(facts, dot_types=types)


@dataclass(frozen=True, slots=True)
class TargetSpec:
    backend: str
    description: str


TARGETS: dict[str, TargetSpec] = {
    "cpu": TargetSpec("c", "host CPU: C99 with SIMD, built by the system compiler"),
    "aarch64": TargetSpec("neon", "64-bit Arm with NEON, run under qemu-aarch64"),
    "cortex-m4": TargetSpec("cortex_m", "Arm Cortex-M4 (DSP, FPv4), run under qemu-system-arm"),
    "cortex-m55": TargetSpec("cortex_m", "Arm Cortex-M55 (Helium/MVE), run under qemu-system-arm"),
    "triton": TargetSpec("triton", "Triton (GPU, or the CPU with TRITON_INTERPRET=1)"),
    "cuda": TargetSpec("cuda", "CUDA C (a GPU, or CPU emulation with LOOPWEAVE_CUDA_EMULATE=1)"),
}
ALIASES = {"host": "cpu", "c": "cpu"}


def host_cc() -> str:
    """The host C compiler: $CC, else `cc`."""
    return os.environ.get("CC", "cc")


def host_cflags(cflags: tuple[str, ...] | None) -> tuple[str, ...]:
    """The optimisation flags for host builds: given ones, else $LOOPWEAVE_CFLAGS, else -O3."""
    if cflags is not None:
        return cflags
    return tuple(shlex.split(os.environ.get("LOOPWEAVE_CFLAGS", "-O3 -march=native")))


def host_cache_bytes(level: int, cpu_root: str = "/sys/devices/system/cpu/cpu0/cache"
                     ) -> int | None:
    """The size of the host's data or unified cache at `level` (1, 2, 3) as Linux reports it
    in sysfs, or None where it does not (another OS, a container that hides it)."""
    try:
        entries = sorted(os.listdir(cpu_root))
    except OSError:
        return None
    for entry in entries:
        try:
            with open(os.path.join(cpu_root, entry, "level")) as f:
                found = int(f.read())
            with open(os.path.join(cpu_root, entry, "type")) as f:
                kind = f.read().strip()
            with open(os.path.join(cpu_root, entry, "size")) as f:
                size = f.read().strip()
        except (OSError, ValueError):
            continue
        if found == level and kind in ("Data", "Unified"):
            units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
            return int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)
    return None


def openmp_threads() -> int:
    """The threads an OpenMP parallel loop gets in this process: OMP_NUM_THREADS (its first
    level), else the CPUs this process may run on."""
    setting = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if setting.isdigit() and int(setting) > 0:
        return int(setting)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def target_spec(name: str) -> tuple[str, TargetSpec]:
    """The canonical name of target `name` (aliases resolved) and its record; raises
    `TargetError` listing the known targets otherwise."""
    if not isinstance(name, str) or ALIASES.get(name, name) not in TARGETS:
        known = ", ".join(f"'{k}' ({v.description})" for k, v in TARGETS.items())
        raise TargetError(f"unknown target {name!r}; known targets: {known}")
    name = ALIASES.get(name, name)
    return name, TARGETS[name]


def check_option_names(target: str, options: Mapping, allowed: Iterable[str]) -> None:
    """Raise `TargetError` when `options` holds a name target `target` does not take: every
    backend's `make_target` says it in these words, with the options it does take and the
    closest one to each misspelling."""
    allowed = tuple(allowed)
    unknown = sorted(set(options) - set(allowed), key=str)
    if not unknown:
        return
    noun = "option" if len(unknown) == 1 else "options"
    hints = [f"{name!r} -> {close[0]!r}" for name in unknown
             if (close := difflib.get_close_matches(str(name), allowed, n=1))]
    raise TargetError(f"target {target!r} has no {noun} {', '.join(map(repr, unknown))}; its "
                      f"options are {', '.join(allowed) or 'none'}"
                      + (f" (did you mean {', '.join(hints)}?)" if hints else ""))


def check_choice(target: str, option: str, value, choices: Iterable) -> None:
    """Raise `TargetError` unless `value` of option `option` is one of `choices` (compared by
    identity for True, False and None, so 1 is not True)."""
    choices = tuple(choices)
    found = any(value is c if c is None or isinstance(c, bool) else
                (value == c and not isinstance(value, bool)) for c in choices)
    if not found:
        raise TargetError(f"target {target!r}: option {option} must be one of "
                          f"{', '.join(map(str, choices))}, not {value!r}")
