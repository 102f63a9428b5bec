"""CUDA backend: a `.cu` file with `__global__` kernels and an `extern "C"` host launcher.

    compile(src, target="cuda", arch="sm_90", block_m=64, block_n=64, block_k=16,
            thread_m=4, thread_n=4, block_threads=128, emulate=None)

`cuda_lower` decides the kernels (blocks, threads, register tiles, shared memory, block
reductions), `cuda_render` and `cuda_tiles` write them. The launcher takes host arrays, copies
them to the device, launches the kernels in order and copies the results back:

    void lw_<kernel>(<tensors and scalars in parameter order>, <outputs>, <temporaries>,
                     int64_t <size>, ...);

Calling a Kernel runs it on a GPU through the CUDA runtime (the source built by nvcc into a
shared library, loaded with ctypes) when the machine has one. Without a GPU the call raises
`TargetError`, unless emulation is asked for (`emulate=True` or `LOOPWEAVE_CUDA_EMULATE=1`):
then the same source is built by the host C++ compiler against `cuda_emulation.HEADER` and runs
on the CPU with real barriers. `Kernel.resource_usage` runs `nvcc -cubin -Xptxas -v` (cached).
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import json
import os
import re
import subprocess
import tempfile
import warnings
from pathlib import Path

from loopweave.backends.c import DirectCall, SharedLibraryInvoker
from loopweave.backends.cuda_emulation import HEADER
from loopweave.backends.cuda_lower import Tiles, lower
from loopweave.backends.cuda_render import CudaRenderer
from loopweave.backends.cuda_scheduled import ScheduledCudaRenderer
from loopweave.errors import CompileError, ScheduleError, SequentialLoopWarning, TargetError
from loopweave.ir.kernel import KernelIR
from loopweave.ir.launches import has_gpu_binding, lower_launches
from loopweave.ir.loops import For, Node, walk
from loopweave.passes.gpu_default import default_gpu_schedule
from loopweave.passes.schedule import Schedule
from loopweave.targets import (
    GpuFacts,
    Target,
    check_choice,
    check_option_names,
    gpu_facts,
)
from loopweave.toolchain import build_once, build_shared_library, cache_dir, content_key, write_once

ARCHS = ("sm_75", "sm_80", "sm_86", "sm_87", "sm_89", "sm_90", "sm_90a", "sm_100", "sm_120")

#: Tile options, each with its allowed values; the first is the default.
TILE_VALUES: dict[str, tuple[int, ...]] = {
    "block_m": (64, 16, 32, 128),
    "block_n": (64, 16, 32, 128),
    "block_k": (16, 4, 8, 32),
    "thread_m": (4, 1, 2, 8),
    "thread_n": (4, 1, 2, 8),
    "block_threads": (128, 32, 64, 256, 512, 1024),
}
OPTIONS = ("arch", "emulate", *TILE_VALUES)


def tile_problem(tiles: dict[str, int]) -> str | None:
    """Why a combination of tile options is invalid, or None if it is valid."""
    for name, allowed in TILE_VALUES.items():
        value = tiles[name]
        if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
            return f"{name} must be one of {sorted(allowed)}, not {value!r}"
    threads = (tiles["block_m"] // tiles["thread_m"]) * (tiles["block_n"] // tiles["thread_n"])
    if not 32 <= threads <= 1024:
        return (f"block_m/thread_m x block_n/thread_n = {threads} threads per block; it must be "
                "between 32 and 1024")
    return None


def tuning_space(kernel: KernelIR) -> dict[str, list[int]]:
    """The options an autotuner may sweep (each list starts with the default); combinations
    that `tile_problem` rejects raise TargetError in `make_target`."""
    return {name: list(values) for name, values in TILE_VALUES.items()}


def make_target(name: str, cc: str | None, cflags: tuple[str, ...] | None,
                options: dict) -> Target:
    """CUDA for `arch`; `cc` names nvcc (default $NVCC or nvcc), `cflags` extra nvcc flags."""
    check_option_names(name, options, OPTIONS)
    arch = options.get("arch", "sm_90")
    check_choice(name, "arch", arch, ARCHS)
    emulate = options.get("emulate")
    check_choice(name, "emulate", emulate, (True, False, None))
    tiles = {k: options.get(k, values[0]) for k, values in TILE_VALUES.items()}
    problem = tile_problem(tiles)
    if problem:
        raise TargetError(f"target {name!r}: {problem}")
    nvcc = cc or os.environ.get("NVCC", "nvcc")
    return Target(name, "cuda", nvcc, tuple(cflags or ()), f"CUDA C for {arch}",
                  {"arch": arch, "emulate": emulate, **tiles})


def tiles_of(target: Target) -> Tiles:
    return Tiles(**{k: target.options[k] for k in TILE_VALUES})


def facts_for_arch(arch: str) -> GpuFacts:
    """CUDA's GPU facts for `arch` (`sm_80`, `sm_90a`): `dot_types` are the tensor-core tile
    types of the newest `arch_dot_types` entry at or below its version."""
    return gpu_facts("cuda", arch)


def default_schedule(kernel: KernelIR, target: Target) -> Schedule | None:
    """The schedule `compile()` uses without one: `passes/gpu_default`'s steps where they
    reproduce the planner's plan (WMMA for the contractions the arch's tensor cores take,
    FlashAttention-2 for attention), else None (the planner, `cuda_lower`, decides)."""
    return default_gpu_schedule(kernel, facts_for_arch(target.options["arch"]))


def render(kernel: KernelIR, loops: Node, target: Target) -> str:
    """The `.cu` source of `kernel`; warns about loops that stay sequential. A schedule that
    binds loops to GPU axes is rendered as written (`cuda_scheduled`); otherwise the planner
    (`cuda_lower`) chooses the kernels."""
    if has_gpu_binding(loops):
        facts = facts_for_arch(target.options["arch"])
        dots = any(isinstance(n, For) and n.kind == "dot" for n in walk(loops))
        scheduled = lower_launches(loops, kernel.name, facts.shared_bytes,
                                   facts.dot_lanes if dots else facts.block_threads)
        for message in scheduled.warnings:
            warnings.warn(message, SequentialLoopWarning, stacklevel=4)
        return ScheduledCudaRenderer(kernel, scheduled, target.options["arch"], facts).render()
    if kernel.locals:
        # Storage reduction shrank them to one iteration of a fused loop that the planner,
        # which chooses its own kernels and threads, would not keep as that loop.
        names = ", ".join(t.name for t in kernel.locals)
        raise ScheduleError(f"the schedule fuses statements so that temporaries ({names}) are "
                            f"local to a loop, but binds no loop to a GPU axis: CUDA's planner "
                            f"cannot keep them local; bind the fused loop (Schedule.bind) or "
                            f"leave the statements unfused")
    program = lower(kernel, tiles_of(target))
    for message in program.warnings:
        warnings.warn(message, SequentialLoopWarning, stacklevel=4)
    return CudaRenderer(kernel, program, tiles_of(target), target.options["arch"]).render()


# -- nvcc --------------------------------------------------------------------------------------

def _run_nvcc(nvcc: str, args: list[str], source: str, what: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(dir=cache_dir(), prefix="nvcc-") as tmp:
        src = Path(tmp) / "kernel.cu"
        src.write_text(source)
        cmd = [nvcc, *[a.replace("{dir}", tmp) for a in args], str(src)]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp)
        except FileNotFoundError:
            raise TargetError(f"nvcc ({nvcc!r}) is not installed; it is needed to {what}") \
                from None
        except (OSError, subprocess.TimeoutExpired) as e:
            raise TargetError(f"running {nvcc!r} failed: {e}") from None
        if result.returncode != 0:
            raise CompileError(f"nvcc failed to {what}:\n{_with_lines(result.stderr, source)}")
        result.files = {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p != src}
        return result


def _with_lines(stderr: str, source: str) -> str:
    """nvcc's message with the generated line it points at."""
    lines = source.splitlines()
    m = re.search(r"kernel\.cu\((\d+)\): error", stderr)
    if m and 1 <= int(m.group(1)) <= len(lines):
        return f"{stderr.strip()}\ngenerated line {m.group(1)}: {lines[int(m.group(1)) - 1]}"
    return stderr.strip()


def nvcc_check(source: str, arch: str, nvcc: str = "nvcc", flags: tuple[str, ...] = ()) -> str:
    """Compile `source` to a cubin for `arch`; returns nvcc's and ptxas's messages (`-v`).
    Raises CompileError if nvcc rejects it."""
    result = _run_nvcc(nvcc, [f"-arch={arch}", "-cubin", "-Xptxas", "-v", *flags,
                              "-o", "{dir}/kernel.cubin"], source, f"compile for {arch}")
    return result.stderr


_PTXAS = re.compile(r"Compiling entry function '(\w+)' for '(\w+)'")


def parse_ptxas(text: str) -> dict[str, dict[str, int]]:
    """Per kernel: registers, spill stores/loads (bytes), shared memory (bytes per block),
    stack frame (bytes), from `ptxas -v` output."""
    usage: dict[str, dict[str, int]] = {}
    current = None
    for line in text.splitlines():
        m = _PTXAS.search(line)
        if m:
            current = usage.setdefault(m.group(1), {"registers": 0, "spill_stores": 0,
                                                    "spill_loads": 0, "shared_bytes": 0,
                                                    "stack_bytes": 0})
            continue
        if current is None:
            continue
        for pattern, key in ((r"(\d+) bytes stack frame", "stack_bytes"),
                             (r"(\d+) bytes spill stores", "spill_stores"),
                             (r"(\d+) bytes spill loads", "spill_loads"),
                             (r"Used (\d+) registers", "registers"),
                             (r"(\d+) bytes smem", "shared_bytes")):
            found = re.search(pattern, line)
            if found:
                current[key] = int(found.group(1))
    return usage


def resource_usage(source: str, target: Target) -> dict[str, dict[str, int]]:
    """`parse_ptxas` of the source built for the target's arch, cached next to the builds."""
    arch = target.options["arch"]
    key = content_key(source, arch, target.cc, *target.cflags)
    path = write_once(cache_dir("cuda") / f"{key}.resources.json", lambda: json.dumps(
        parse_ptxas(nvcc_check(source, arch, target.cc, target.cflags)), indent=1))
    return json.loads(path.read_text())


def build_gpu_library(source: str, target: Target) -> Path:
    """nvcc -shared: the launcher and kernels in one library (cached)."""
    arch = target.options["arch"]

    def build(tmp: Path) -> Path:
        result = _run_nvcc(target.cc, [f"-arch={arch}", "-O3", "-shared", "-Xcompiler",
                                       "-fPIC", *target.cflags, "-o", "{dir}/kernel.so"],
                           source, "build the kernel library")
        (tmp / "kernel.so").write_bytes(result.files["kernel.so"])
        return tmp / "kernel.so"

    key = content_key(source, arch, target.cc, *target.cflags)
    return build_once(cache_dir("cuda") / f"{key}.so", build)


# -- running -----------------------------------------------------------------------------------

@functools.cache
def gpu_missing() -> str | None:
    """Why kernels cannot run on a GPU here (no driver, no device), or None if they can."""
    try:
        driver = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return "this machine has no CUDA driver (libcuda.so.1 cannot be loaded)"
    if driver.cuInit(0) != 0:
        return "the CUDA driver found no usable GPU (cuInit failed)"
    count = ctypes.c_int(0)
    if driver.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
        return "the CUDA driver reports no GPU"
    return None


def emulating(target: Target) -> bool:
    choice = target.options.get("emulate")
    if choice is not None:
        return choice
    return os.environ.get("LOOPWEAVE_CUDA_EMULATE", "") not in ("", "0")


def emulation_include_dir() -> Path:
    """A folder holding lw_cuda_emulation.h (named by its hash, so builds see header changes)."""
    directory = cache_dir(f"cuda-emulation-{content_key(HEADER, length=16)}")
    write_once(directory / "lw_cuda_emulation.h", lambda: HEADER)
    return directory


def build_emulation_library(source: str) -> Path:
    """The `.cu` text built as C++ for the CPU against the emulation header (cached)."""
    cxx = os.environ.get("CXX", "g++")
    flags = ("-x", "c++", "-std=c++17", "-O1", "-fwrapv", "-DLW_CUDA_EMULATION",
             f"-I{emulation_include_dir()}")
    return build_shared_library(source, cxx, flags)


class CudaInvoker(SharedLibraryInvoker):
    """Calls the launcher; a CUDA error it reports becomes a TargetError."""

    def __init__(self, kernel: KernelIR, library: Path, usage):
        super().__init__(kernel, library)
        self._error = self._lib.lw_cuda_error
        self._error.restype = ctypes.c_char_p
        self.resource_usage = usage

    def __call__(self, arrays: dict, scalars: dict, sizes: dict) -> None:
        super().__call__(arrays, scalars, sizes)
        self._raise_error()

    def direct(self, sizes: dict[str, int]) -> DirectCall:
        """As `SharedLibraryInvoker.direct`, with the launcher's error check after."""
        return dataclasses.replace(super().direct(sizes), after=self._raise_error)

    def _raise_error(self) -> None:
        message = self._error()
        if message:
            raise TargetError(f"CUDA error: {message.decode(errors='replace')}")


class NoGpuInvoker:
    """Stands in for the launcher on a machine without a GPU: calling it raises TargetError."""

    def __init__(self, reason: str, usage):
        self.reason = reason
        self.resource_usage = usage

    def __call__(self, arrays: dict, scalars: dict, sizes: dict) -> None:
        raise TargetError(f"cannot run a cuda kernel: {self.reason}. Pass emulate=True to "
                          "compile() or set LOOPWEAVE_CUDA_EMULATE=1 to run it on the CPU")


def load(kernel: KernelIR, source: str, target: Target):
    """Build for the GPU (or for emulation when asked); without a GPU, an invoker that raises."""
    usage = functools.partial(resource_usage, source, target)
    if emulating(target):
        return CudaInvoker(kernel, build_emulation_library(source), usage)
    reason = gpu_missing()
    if reason is not None:
        return NoGpuInvoker(reason, usage)
    return CudaInvoker(kernel, build_gpu_library(source, target), usage)
