"""What the benchmarks ran on, and the machine's measured physical limits.

The limits are measured here, not looked up: a C loop of independent fused multiply-adds on full
SIMD registers (peak FLOP/s of the cores in use) and a streaming copy of arrays far larger than
the caches (memory bandwidth). Both are built with the same `gcc -O3 -march=native` the naive
peer uses.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import Limits

# Twelve independent accumulators hide the FMA latency (4-5 cycles) on two FMA pipes. The vector
# width follows the widest SIMD the compiler targets; a*b+c contracts to one FMA at -O3.
FMA_PEAK_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#if defined(__AVX512F__)
#define WIDTH 16
#elif defined(__AVX__)
#define WIDTH 8
#else
#define WIDTH 4
#endif
typedef float vec __attribute__((vector_size(WIDTH * 4)));
#define CHAINS 12
static double now(void) {
  struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec;
}
int main(int argc, char **argv) {
  long iters = argc > 1 ? atol(argv[1]) : 100000000L;
  double best = 0.0;
  for (int rep = 0; rep < 5; rep++) {
    vec acc[CHAINS], a, b;
    for (int i = 0; i < WIDTH; i++) { a[i] = 0.999999f; b[i] = 1e-7f; }
    for (int c = 0; c < CHAINS; c++) for (int i = 0; i < WIDTH; i++) acc[c][i] = c + i;
    double t0 = now();
    for (long it = 0; it < iters; it++) {
      __asm__ volatile("" : "+x"(a));  /* keeps the loop from being folded */
      for (int c = 0; c < CHAINS; c++) acc[c] = acc[c] * a + b;
    }
    double t = now() - t0;
    float sink = 0.0f;
    for (int c = 0; c < CHAINS; c++) for (int i = 0; i < WIDTH; i++) sink += acc[c][i];
    double flops = 2.0 * WIDTH * CHAINS * (double)iters / t;
    if (flops > best) best = flops;
    if (sink == 12345.0f) printf("#");
  }
  printf("%d %.6e\n", WIDTH, best);
  return 0;
}
"""

STREAM_COPY_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) {
  struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec;
}
int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : (32L << 20);
  float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
  for (long i = 0; i < n; i++) { a[i] = (float)i; b[i] = 0.0f; }
  double best = 0.0;
  for (int rep = 0; rep < 7; rep++) {
    double t0 = now();
    for (long i = 0; i < n; i++) b[i] = a[i];
    double t = now() - t0;
    double bw = 2.0 * n * sizeof *a / t;  /* bytes read + bytes written, as STREAM counts */
    if (bw > best) best = bw;
  }
  printf("%.6e %f\n", best, b[n / 2]);
  free(a); free(b);
  return 0;
}
"""


def _build_and_run(source: str, name: str, args: list[str], cc: str = "gcc") -> str:
    with tempfile.TemporaryDirectory(prefix="lw-bench-") as tmp:
        src, exe = Path(tmp) / f"{name}.c", Path(tmp) / name
        src.write_text(source)
        subprocess.run([cc, "-O3", "-march=native", "-o", str(exe), str(src)], check=True,
                       capture_output=True, text=True)
        return subprocess.run([str(exe), *args], check=True, capture_output=True,
                              text=True).stdout


def measure_peak_flops(iters: int = 20_000_000) -> tuple[float, int]:
    """(fp32 FLOP/s of one core from an FMA loop, SIMD width in floats)."""
    width, flops = _build_and_run(FMA_PEAK_C, "fma_peak", [str(iters)]).split()
    return float(flops), int(width)


def measure_bandwidth(floats: int = 32 << 20) -> float:
    """Bytes per second of one thread copying `floats` floats (128 MiB) between two arrays."""
    return float(_build_and_run(STREAM_COPY_C, "stream_copy", [str(floats)]).split()[0])


@dataclass(frozen=True)
class Machine:
    """Facts about the host and the software the peers use, for the results' header."""

    cpu: str
    cores: int
    threads: int
    compiler: str
    numpy: str
    blas: str
    torch: str
    python: str
    peak_flops_core: float
    simd_width: int
    bandwidth: float

    @property
    def limits(self) -> Limits:
        """Limits for the threads in use (peak scales with cores; bandwidth is one thread's)."""
        return Limits(self.peak_flops_core * self.threads, self.bandwidth)

    def describe(self) -> str:
        """Markdown bullet lines."""
        return "\n".join([
            f"- CPU: {self.cpu}, {self.cores} logical cores, {self.threads} thread(s) used",
            f"- C compiler: {self.compiler} (`-O3 -march=native`)",
            f"- numpy {self.numpy}; BLAS: {self.blas}",
            f"- torch: {self.torch}",
            f"- Python {self.python}",
            f"- measured peak: {self.peak_flops_core / 1e9:.1f} GFLOP/s fp32 per core "
            f"(FMA loop, {self.simd_width}-wide SIMD); "
            f"memory bandwidth {self.bandwidth / 1e9:.1f} GB/s (one-thread stream copy)",
        ])


def cpu_flags() -> set[str]:
    """The flags of /proc/cpuinfo (empty where there is none)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {w for line in info.splitlines() if line.startswith("flags") for w in line.split()}


def cpu_model() -> str:
    """The CPU's model name and its widest SIMD extensions."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    model = re.search(r"^model name\s*:\s*(.*)$", info, re.MULTILINE)
    flags = re.search(r"^flags\s*:\s*(.*)$", info, re.MULTILINE)
    simd = [f for f in ("avx512f", "avx2", "fma", "neon") if flags and f in flags.group(1).split()]
    return f"{model.group(1) if model else platform.machine()} ({', '.join(simd) or 'no AVX'})"


def blas_info() -> str:
    """numpy's BLAS library, the kernel it dispatched to and its thread count (threadpoolctl)."""
    import numpy  # noqa: F401 - threadpoolctl only sees libraries already loaded

    try:
        import threadpoolctl
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    for lib in threadpoolctl.threadpool_info():
        if lib["user_api"] == "blas" and "numpy" in lib["filepath"]:
            return (f"{lib['internal_api']} {lib['version']}, kernel {lib.get('architecture')}, "
                    f"{lib['num_threads']} thread(s)")
    return "not found by threadpoolctl"


def torch_info() -> str:
    try:
        import torch
    except ImportError:
        return "not installed"
    return f"{torch.__version__}, {torch.get_num_threads()} thread(s)"


def compiler_version(cc: str = "gcc") -> str:
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return f"{cc} (not found)"
    return out.stdout.splitlines()[0]


def load_average() -> str:
    """The 1-minute load average ("unknown" where the OS does not report one)."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"


def describe_machine(threads: int, quick: bool = False) -> Machine:
    """Gather the header facts and measure the limits (shorter loops with `quick`)."""
    import numpy as np

    peak, width = measure_peak_flops(2_000_000 if quick else 20_000_000)
    bandwidth = measure_bandwidth(4 << 20 if quick else 32 << 20)
    return Machine(cpu=cpu_model(), cores=os.cpu_count() or 1, threads=threads,
                   compiler=compiler_version(), numpy=np.__version__, blas=blas_info(),
                   torch=torch_info(), python=platform.python_version(),
                   peak_flops_core=peak, simd_width=width, bandwidth=bandwidth)
