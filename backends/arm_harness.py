"""The harness that runs a cross-compiled kernel on a target, and the invoker that drives it.

The harness is a `main()` appended to the kernel's source. It reads `lw_in.bin`, lays every
tensor out in one arena, calls the kernel, and writes the bytes of the outputs and `inout`
tensors to `lw_out.bin`. The input file, all fields little-endian:

    u32 magic "LWIN", u32 tensors, u32 sizes, u32 scalars, u64 arena bytes
    per tensor: u64 offset in the arena, u64 bytes to read (inputs), u64 bytes to write back
    per size: i64;  per scalar: its C value in the first bytes of 8
    the bytes of every tensor read, in parameter order

The output file holds the written-back tensors in parameter order. Python plans the layout, so
the harness needs no shape arithmetic of its own; the arena is `malloc`ed on Linux and a fixed
region on a microcontroller (the kernel itself never allocates).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from loopweave.backends.c import c_params, function_name
from loopweave.backends.c_family import c_name
from loopweave.backends.runners import Runner
from loopweave.errors import ArgumentValueError, CompileError, TargetError
from loopweave.ir.kernel import KernelIR
from loopweave.toolchain import _error_with_source, cache_dir, cache_key

MAGIC = 0x4E49574C  # "LWIN"
ALIGN = 16
KERNEL_FILE = "kernel.c"

_HARNESS = r"""
/* ---- harness: lw_in.bin -> kernel -> lw_out.bin (see loopweave/backends/arm_harness.py) ---- */
#include <stdio.h>
#include <stdlib.h>

#define LW_TENSORS {n_tensors}
#define LW_SIZES {n_sizes}
#define LW_SCALARS {n_scalars}

{arena}

static int lw_read(void *dst, size_t bytes, FILE *f) {{
  return bytes == 0 || fread(dst, 1, bytes, f) == bytes;
}}

int main(void) {{
  uint32_t head[4];
  uint64_t arena_bytes, table[3 * LW_TENSORS + 1];
  int64_t sizes[LW_SIZES + 1];
  uint64_t scalars[LW_SCALARS + 1];
  FILE *in = fopen("lw_in.bin", "rb");
  if (!in) return 2;
  if (!lw_read(head, sizeof head, in) || !lw_read(&arena_bytes, 8, in) || head[0] != 0x{magic:X}u
      || head[1] != LW_TENSORS || head[2] != LW_SIZES || head[3] != LW_SCALARS) return 3;
  if (!lw_read(table, 24 * LW_TENSORS, in) || !lw_read(sizes, 8 * LW_SIZES, in)
      || !lw_read(scalars, 8 * LW_SCALARS, in)) return 3;
  uint8_t *arena = lw_arena(arena_bytes);
  if (!arena) return 4;
  memset(arena, 0, (size_t)arena_bytes);
  for (int t = 0; t < LW_TENSORS; t++)
    if (!lw_read(arena + table[3 * t], (size_t)table[3 * t + 1], in)) return 3;
  fclose(in);
{unpack}
  {call}
  FILE *out = fopen("lw_out.bin", "wb");
  if (!out) return 5;
  for (int t = 0; t < LW_TENSORS; t++)
    if (table[3 * t + 2] && fwrite(arena + table[3 * t], 1, (size_t)table[3 * t + 2], out)
        != table[3 * t + 2]) return 5;
  return fclose(out) == 0 ? 0 : 5;
}}
"""

#: Arena allocators: `lw_arena(bytes)` returns zeroable memory for every tensor, or NULL.
MALLOC_ARENA = "static uint8_t *lw_arena(uint64_t bytes) { return (uint8_t *)malloc(bytes ? " \
               "(size_t)bytes : 1); }"


def static_arena(section: str, capacity: int) -> str:
    """An arena in a fixed memory region (a linker section), `capacity` bytes long."""
    return (f"static uint8_t lw_arena_mem[{capacity}] __attribute__((section(\"{section}\"), "
            f"aligned({ALIGN})));\n"
            f"static uint8_t *lw_arena(uint64_t bytes) {{ return bytes <= {capacity}u ? "
            f"lw_arena_mem : 0; }}")


def harness_source(kernel: KernelIR, index_type: str, arena: str) -> str:
    """The `main()` that runs `kernel` from `lw_in.bin` (appended to the kernel's source)."""
    params = c_params(kernel)
    unpack, args = [], []
    tensors = scalars = sizes = 0
    for p in params:
        name = f"lw_a_{c_name(p.name)}"
        if p.kind == "tensor":
            unpack.append(f"  {p.dtype.c_type} *{name} = ({p.dtype.c_type} *)"
                          f"(arena + table[{3 * tensors}]);")
            tensors += 1
        elif p.kind == "scalar":
            unpack.append(f"  {p.dtype.c_type} {name}; memcpy(&{name}, &scalars[{scalars}], "
                          f"sizeof {name});")
            scalars += 1
        else:
            unpack.append(f"  {index_type} {name} = ({index_type})sizes[{sizes}];")
            sizes += 1
        args.append(name)
    # Through a volatile pointer: the kernel stays a function of its own (never inlined into
    # main), so that tools can find it by its symbol (instruction counts, objdump).
    fn = function_name(kernel)
    call = f"__typeof__({fn}) *volatile lw_entry = {fn};\n  lw_entry({', '.join(args)});"
    return _HARNESS.format(n_tensors=tensors, n_sizes=sizes, n_scalars=scalars, magic=MAGIC,
                           arena=arena, unpack="\n".join(unpack), call=call)


def _aligned(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


class HarnessInvoker:
    """Runs a built harness program through a `Runner`; the `Kernel`'s invoker.

    `capacity` is the most arena bytes the target holds (None: no limit).
    """

    def __init__(self, kernel: KernelIR, program: Path, runner: Runner, target: str,
                 capacity: int | None = None):
        self.kernel, self.program, self.runner = kernel, program, runner
        self.target, self.capacity = target, capacity
        self.params = c_params(kernel)
        roles = {t.name: t.role for t in kernel.tensors.values()}
        self.written = {n for n, r in roles.items() if r in ("out", "inout")}
        self.read = {n for n, r in roles.items() if r in ("in", "inout")}

    def pack(self, arrays: dict, scalars: dict, sizes: dict) -> bytes:
        """The `lw_in.bin` image for one call."""
        table, data, offset = [], [], 0
        for p in self.params:
            if p.kind != "tensor":
                continue
            a = arrays[p.name]
            nin = a.nbytes if p.name in self.read else 0
            nout = a.nbytes if p.name in self.written else 0
            table += [offset, nin, nout]
            if nin:
                data.append(np.ascontiguousarray(a).tobytes())
            offset = _aligned(offset + a.nbytes)
        if self.capacity is not None and offset > self.capacity:
            raise ArgumentValueError(
                f"{self.kernel.name}: the tensors need {offset} bytes; target {self.target!r} "
                f"has {self.capacity} bytes for them (use smaller sizes)")
        size_values = [sizes[p.name] for p in self.params if p.kind == "size"]
        scalar_bytes = b"".join(
            np.array(scalars[p.name], dtype=p.dtype.bits_numpy if p.dtype.is_storage_only
                     else p.dtype.numpy).tobytes().ljust(8, b"\0")
            for p in self.params if p.kind == "scalar")
        head = np.array([MAGIC, len(table) // 3, len(size_values), len(scalar_bytes) // 8],
                        dtype="<u4").tobytes() + np.array([offset], dtype="<u8").tobytes()
        return b"".join([head, np.array(table, dtype="<u8").tobytes(),
                         np.array(size_values, dtype="<i8").tobytes(), scalar_bytes, *data])

    def __call__(self, arrays: dict, scalars: dict, sizes: dict) -> None:
        out = self.runner.run(self.program, self.pack(arrays, scalars, sizes))
        position = 0
        for p in self.params:
            if p.kind == "tensor" and p.name in self.written:
                a = arrays[p.name]
                chunk = out[position:position + a.nbytes]
                if len(chunk) != a.nbytes:
                    raise TargetError(f"{self.runner.name}: {self.program.name} wrote "
                                      f"{len(out)} bytes, fewer than the outputs need")
                a[...] = np.frombuffer(chunk, dtype=a.dtype).reshape(a.shape)
                position += a.nbytes


def build_program(kernel_source: str, support: dict[str, str], cc: str,
                  flags: tuple[str, ...], link_flags: tuple[str, ...] = ()) -> Path:
    """An executable built from `kernel_source` (kernel + harness) and `support` files
    (name -> text: a startup file, a linker script), cached on disk like host libraries."""
    files = {KERNEL_FILE: kernel_source, **support}
    key = cache_key("\0".join(f"{n}\0{t}" for n, t in sorted(files.items())), cc,
                    (*flags, "--link", *link_flags))
    directory = cache_dir()
    program = directory / f"{key}.elf"
    if program.exists():
        return program
    with tempfile.TemporaryDirectory(dir=directory, prefix="build-") as tmp:
        for name, text in files.items():
            (Path(tmp) / name).write_text(text)
        sources = [n for n in files if n.endswith(".c")]
        cmd = [cc, *flags, *sources, "-o", "prog.elf", *link_flags]
        try:
            result = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise TargetError(f"running {cc!r} failed: {e}") from None
        if result.returncode != 0:
            raise CompileError(f"{' '.join([cc, *flags])} failed:\n"
                               + _error_with_source(result.stderr, kernel_source, KERNEL_FILE))
        os.replace(Path(tmp) / KERNEL_FILE, directory / f"{key}.c")
        os.replace(Path(tmp) / "prog.elf", program)
    return program
