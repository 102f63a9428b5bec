"""Executed instruction counts of int8 kernels on Cortex-M4 and Cortex-M55 under QEMU.

    .venv/bin/python -m benchmarks.arm_counts [--quick]

For int8 matmul, NCHW convolution and depthwise convolution, each built for the core at -O3 with
the same harness, counts the instructions executed inside the kernel function (a TCG plugin
counts instructions whose address lies in the function's symbol range; the count is the same on
every run and does not depend on the host's load):

- loopweave: the generated code with the core's MAC idiom (SMLAD on M4, Helium on M55), in
  program order (`schedule=Schedule()`: the idiom alone; `benchmarks.arm_schedules` measures
  the default schedules' register tiles against program order);
- loopweave plain: the same as plain C (`idioms=False`);
- naive: the textbook C loop nest (scalar accumulator), as one would write it by hand.

Every run's result is checked against numpy. Prints a table with the ratios naive / loopweave.
An instruction is counted once whatever its latency (an MVE instruction takes two beats on the
M55), so the ratios measure work issued, not cycles.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import loopweave
from loopweave.backends import cortex_m
from loopweave.backends.arm_baremetal import BOARDS
from loopweave.backends.runners import QemuSemihostingRunner, QemuUserRunner
from loopweave.driver import stages
from loopweave.runtime import Kernel
from loopweave.toolchain import cache_dir

PLUGIN = r"""/* Counts executed guest instructions at addresses in [lo, hi) (QEMU plugin API 1). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef struct qemu_info_t qemu_info_t;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t,
                                           void (*)(qemu_plugin_id_t, struct qemu_plugin_tb *));
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *, size_t);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *, enum qemu_plugin_op,
                                              void *, uint64_t);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, void (*)(qemu_plugin_id_t, void *),
                                    void *);
__attribute__((visibility("default"))) int qemu_plugin_version = 1;
static uint64_t lo, hi, count;
static char out[4096];
/* At translation, count a block's instructions in range; add that count each time it runs. */
static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
  uint64_t n = 0;
  for (size_t i = 0; i < qemu_plugin_tb_n_insns(tb); i++) {
    uint64_t a = qemu_plugin_insn_vaddr(qemu_plugin_tb_get_insn(tb, i));
    n += a >= lo && a < hi;
  }
  if (n) qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &count, n);
}
static void write_count(qemu_plugin_id_t id, void *p) {
  FILE *f = fopen(out, "w");
  if (f) { fprintf(f, "%llu\n", (unsigned long long)count); fclose(f); }
}
__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv) {
  for (int i = 0; i < argc; i++) {
    if (!strncmp(argv[i], "lo=", 3)) lo = strtoull(argv[i] + 3, 0, 0);
    else if (!strncmp(argv[i], "hi=", 3)) hi = strtoull(argv[i] + 3, 0, 0);
    else if (!strncmp(argv[i], "out=", 4)) snprintf(out, sizeof out, "%s", argv[i] + 4);
  }
  qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
  qemu_plugin_register_atexit_cb(id, write_count, 0);
  return 0;
}
"""


def build_plugin() -> Path:
    """The counting plugin, built once with the host compiler."""
    lib = cache_dir() / "lw_count_plugin.so"
    if not lib.exists():
        src = lib.with_suffix(".c")
        src.write_text(PLUGIN)
        subprocess.run(["gcc", "-shared", "-fPIC", "-O2", str(src), "-o", str(lib)], check=True)
    return lib


def symbol_range(program: Path, symbol: str, nm: str = "arm-none-eabi-nm") -> tuple[int, int]:
    """[start, end) of a function in an ELF (the Thumb bit cleared)."""
    out = subprocess.run([nm, "-S", str(program)], capture_output=True,
                         text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3] == symbol:
            start = int(parts[0], 16) & ~1
            return start, start + int(parts[1], 16)
    raise LookupError(f"{symbol} not in {program}")


class CountingRunner(QemuSemihostingRunner):
    """Runs like QEMU's semihosting runner and records the instructions executed in `symbol`."""

    def __init__(self, machine: str, symbol: str):
        super().__init__(machine)
        self.symbol, self.plugin, self.count = symbol, build_plugin(), None

    def run(self, program: Path, inputs: bytes, timeout: float = 600.0) -> bytes:
        lo, hi = symbol_range(program, self.symbol)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "count.txt"
            self.extra = ("-plugin", f"{self.plugin},lo={lo:#x},hi={hi:#x},out={out}")
            result = super().run(program, inputs, timeout)
            self.count = int(out.read_text())
        return result


class CountingUserRunner(QemuUserRunner):
    """Runs a static aarch64 binary under qemu-aarch64 (user mode also takes `-plugin`) and
    records the instructions executed in `symbol`."""

    def __init__(self, symbol: str, cpu: str | None = None):
        super().__init__(cpu=cpu)
        self.symbol, self.plugin, self.count, self.extra = symbol, build_plugin(), None, ()

    def command(self, program: Path) -> list[str]:
        return [self.qemu, *self.extra, *(["-cpu", self.cpu] if self.cpu else []), str(program)]

    def run(self, program: Path, inputs: bytes, timeout: float = 600.0) -> bytes:
        lo, hi = symbol_range(program, self.symbol, "aarch64-linux-gnu-nm")
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "count.txt"
            self.extra = ("-plugin", f"{self.plugin},lo={lo:#x},hi={hi:#x},out={out}")
            result = super().run(program, inputs, timeout)
            self.count = int(out.read_text())
        return result


def counting_runner(target: str, symbol: str):
    """A runner for `target` ("aarch64", "cortex-m4", "cortex-m55") that counts the
    instructions executed in the function `symbol` (`.count` after each run)."""
    if target == "aarch64":
        return CountingUserRunner(symbol)
    return CountingRunner(BOARDS[target].machine, symbol)


# -- the kernels: DSL, numpy reference, naive C body -----------------------------------------

KERNELS = {
    "int8 matmul": dict(
        dsl="""kernel qmm(A: i8[M, K], B: i8[K, N]) -> C: i32[M, N] {
                   C[i, j] += i32(A[i, k]) * i32(B[k, j]) }""",
        shapes=lambda s: {"A": (s["M"], s["K"]), "B": (s["K"], s["N"])},
        sizes={"M": 32, "K": 64, "N": 32}, quick={"M": 8, "K": 16, "N": 9},
        reference=lambda A, B: A.astype(np.int32) @ B.astype(np.int32),
        naive="""
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      int32_t acc = 0;
      for (int k = 0; k < K; k++) acc += A[i * K + k] * B[k * N + j];
      C[i * N + j] = acc;
    }"""),
    "int8 conv 3x3": dict(
        dsl="""kernel qconv(X: i8[C, H, W], F: i8[K, C, R, S]) -> Y: i32[K, H - R + 1, W - S + 1]
               { assume H >= R  assume W >= S
                 Y[k, y, x] += i32(X[c, y + r, x + s]) * i32(F[k, c, r, s]) }""",
        shapes=lambda s: {"X": (s["C"], s["H"], s["W"]), "F": (s["K"], s["C"], 3, 3)},
        sizes={"C": 8, "H": 18, "W": 18, "K": 8}, quick={"C": 2, "H": 6, "W": 9, "K": 3},
        reference=lambda X, F: np.einsum(
            "cyxrs,kcrs->kyx", np.lib.stride_tricks.sliding_window_view(
                X.astype(np.int64), (3, 3), axis=(1, 2)), F.astype(np.int64)).astype(np.int32),
        naive="""
  const int HO = H - R + 1, WO = W - S + 1;
  for (int k = 0; k < K; k++)
    for (int y = 0; y < HO; y++)
      for (int x = 0; x < WO; x++) {
        int32_t acc = 0;
        for (int c = 0; c < C; c++)
          for (int r = 0; r < R; r++)
            for (int s = 0; s < S; s++)
              acc += X[(c * H + y + r) * W + x + s] * F[((k * C + c) * R + r) * S + s];
        Y[(k * HO + y) * WO + x] = acc;
      }"""),
    "int8 depthwise 3x3": dict(
        dsl="""kernel qdw(X: i8[C, H, W], F: i8[C, R, S]) -> Y: i32[C, H - R + 1, W - S + 1]
               { assume H >= R  assume W >= S
                 Y[c, y, x] += i32(X[c, y + r, x + s]) * i32(F[c, r, s]) }""",
        shapes=lambda s: {"X": (s["C"], s["H"], s["W"]), "F": (s["C"], 3, 3)},
        sizes={"C": 16, "H": 18, "W": 18}, quick={"C": 3, "H": 6, "W": 9},
        reference=lambda X, F: np.einsum(
            "cyxrs,crs->cyx", np.lib.stride_tricks.sliding_window_view(
                X.astype(np.int64), (3, 3), axis=(1, 2)), F.astype(np.int64)).astype(np.int32),
        naive="""
  const int HO = H - R + 1, WO = W - S + 1;
  for (int c = 0; c < C; c++)
    for (int y = 0; y < HO; y++)
      for (int x = 0; x < WO; x++) {
        int32_t acc = 0;
        for (int r = 0; r < R; r++)
          for (int s = 0; s < S; s++)
            acc += X[(c * H + y + r) * W + x + s] * F[(c * R + r) * S + s];
        Y[(c * HO + y) * WO + x] = acc;
      }"""),
}


def inputs(spec: dict, sizes: dict, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, size=shape, dtype=np.int8)
            for shape in spec["shapes"](sizes).values()]


def count(spec: dict, core: str, variant: str, args: list[np.ndarray]) -> int:
    """Instructions executed in the kernel function for one call; checks the result."""
    first = stages(spec["dsl"], core, options={"idioms": variant == "loopweave"})
    runner = CountingRunner(BOARDS[core].machine, f"lw_{first.ir.name}")
    if variant == "naive":
        backend = cortex_m.CortexMBackend(first.ir, core, idioms=False)
        source = (backend.header() + "#include <stdint.h>\n" + backend.signature() + " {"
                  + spec["naive"] + "\n}\n")
        target = cortex_m.make_target(core, None, None, {"runner": runner})
        kernel = Kernel(first.ir, source, core, cortex_m.load(first.ir, source, target))
    else:
        kernel = loopweave.compile(spec["dsl"], target=core, runner=runner,
                                   schedule=loopweave.Schedule(), tuning_db=False,
                                   idioms=variant == "loopweave")
    got = kernel(*args)
    want = spec["reference"](*args)
    if not np.array_equal(got, want):
        raise AssertionError(f"{core} {variant}: wrong result")
    return runner.count


def main(argv: list[str] | None = None) -> int:
    """Print the instruction-count table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    args = parser.parse_args(argv)
    header = ("kernel", "sizes", "core", "naive -O3", "loopweave plain", "loopweave",
              "naive/loopweave")
    rows = []
    for name, spec in KERNELS.items():
        sizes = spec["quick"] if args.quick else spec["sizes"]
        data = inputs(spec, sizes)
        for core in BOARDS:
            counts = {v: count(spec, core, v, data) for v in ("naive", "plain", "loopweave")}
            rows.append((name, " ".join(f"{k}={v}" for k, v in sizes.items()), core,
                         str(counts["naive"]), str(counts["plain"]), str(counts["loopweave"]),
                         f"{counts['naive'] / counts['loopweave']:.2f}x"))
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, tuple("-" * w for w in widths), *rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
