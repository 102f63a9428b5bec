"""The implementations a loopweave kernel is measured against, and loopweave's own variants.

- `naive`: the kernel's loop nest in program order, exactly as written in the DSL, rendered by
  loopweave's C backend with an explicit identity schedule (so no default schedule applies) and
  built with `gcc -O3 -march=native`: the plain C loop nest a programmer would write.
- `loopweave`: `loopweave.compile(source)` with its default schedule, never a tuned one
  (`tuning_db=False` where compile() has a tuning database).
- `loopweave tuned`: `loopweave.compile(source)` consulting the default tuning database
  (docs/tuning.md); shown only where the database held a record for the benchmark's exact key.
- `polly`: the same program order built by clang-19 with LLVM's polyhedral optimizer Polly
  (`-O3 -march=native -mllvm -polly`; with threads, `-mllvm -polly-parallel` and OpenMP), the
  PolyBench peer a polyhedral compiler is measured against. `clang`: the same without Polly, to
  tell Polly's part from clang's. Both only where `polly_status()` finds clang-19 with Polly
  (`make bench-tools` installs it).
- numpy and torch (CPU, eager) functions come with each kernel in suite.py; TVM is optional.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import shutil
import subprocess
import tempfile
from pathlib import Path

import loopweave

NAIVE_CFLAGS = ("-O3", "-march=native")


def program_order(kernel_ir):
    """The identity schedule: statements in program order, each loop nest as written."""
    return kernel_ir


def compile_naive(source: str, kernel: str | None = None) -> loopweave.Kernel:
    """The kernel as a plain C loop nest (identity schedule) built with -O3 -march=native."""
    return loopweave.compile(source, kernel=kernel, schedule=program_order, cflags=NAIVE_CFLAGS)


#: The compiler with Polly built in (Debian's clang-19; `.ci/install-bench-tools` installs it).
POLLY_CC = "clang-19"
CLANG_CFLAGS = ("-O3", "-march=native")
POLLY_CFLAGS = (*CLANG_CFLAGS, "-mllvm", "-polly")
# Polly's parallel code calls libgomp's GOMP_* entry points. Linking gcc's libgomp (not clang's
# default libomp, which only emulates them) keeps one OpenMP runtime in the benchmark process:
# the gcc-built variants use libgomp, and an idle libomp pool spinning next to them (200 ms
# after each parallel region by default) would slow the variants timed after Polly's.
POLLY_PARALLEL_CFLAGS = ("-mllvm", "-polly-parallel", "-fopenmp=libgomp")


def polly_cflags(threads: int) -> tuple[str, ...]:
    """clang-19's flags for the Polly peer: Polly, and its OpenMP code when threads > 1."""
    return POLLY_CFLAGS + (POLLY_PARALLEL_CFLAGS if threads > 1 else ())


def compile_clang(source: str, kernel: str | None = None) -> loopweave.Kernel:
    """The program-order loop nest built by clang-19 -O3 -march=native without Polly (the
    control: what clang alone makes of the loop nest)."""
    return loopweave.compile(source, kernel=kernel, schedule=program_order, cc=POLLY_CC,
                             cflags=CLANG_CFLAGS)


def compile_polly(source: str, threads: int = 1, kernel: str | None = None) -> loopweave.Kernel:
    """The program-order loop nest built by clang-19 with Polly; with threads > 1, Polly also
    makes its parallel loops OpenMP loops (they run on OMP_NUM_THREADS threads)."""
    return loopweave.compile(source, kernel=kernel, schedule=program_order, cc=POLLY_CC,
                             cflags=polly_cflags(threads))


# A loop nest Polly takes as a SCoP; the probe builds it as the peer's kernels are built.
_PROBE = ("void probe(long n, double *restrict a, const double *restrict b) {\n"
          "  for (long i = 1; i < n; i++)\n    for (long j = 0; j < n; j++)\n"
          "      a[i * n + j] = a[(i - 1) * n + j] + b[j];\n}\n")


@functools.cache
def polly_status(threads: int = 1) -> str | None:
    """None where the Polly peer can be built with `threads`; otherwise why not, as a note for
    the tables (clang-19 not found, or a probe build with Polly's flags fails)."""
    if shutil.which(POLLY_CC) is None:
        return (f"Polly: {POLLY_CC} not found (`make bench-tools` installs clang-19 and "
                "libomp-19-dev); column omitted")
    flags = polly_cflags(threads)
    with tempfile.TemporaryDirectory(prefix="lw-polly-probe-") as tmp:
        src = Path(tmp) / "probe.c"
        src.write_text(_PROBE)
        cmd = [POLLY_CC, *flags, "-shared", "-fPIC", "-o", str(Path(tmp) / "probe.so"), str(src)]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"Polly: `{' '.join(cmd[:1 + len(flags)])}` could not run ({e}); column omitted"
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines() or ["no message"]
        first = next((line for line in lines if "error" in line.lower()), lines[0])
        return (f"Polly: a probe build with `{POLLY_CC} {' '.join(flags)}` failed "
                f"({first.strip()}); column omitted")
    return None


def _has_tuning_db() -> bool:
    return "tuning_db" in inspect.signature(loopweave.compile).parameters


def compile_default(source: str, kernel: str | None = None) -> loopweave.Kernel:
    """The kernel as `compile()` builds it without a schedule: the default schedule, with any
    tuning database switched off."""
    extra = {"tuning_db": False} if _has_tuning_db() else {}
    return loopweave.compile(source, kernel=kernel, **extra)


def compile_tuned(source: str, kernel: str | None = None) -> loopweave.Kernel | None:
    """`compile()` consulting the default tuning database; None where compile() has none."""
    return loopweave.compile(source, kernel=kernel) if _has_tuning_db() else None


def loopweave_variants(source: str) -> dict[str, loopweave.Kernel]:
    """name -> kernel: the default schedule, the naive loop nest, and the tuned candidate (keep
    it only if `used_tuning_record` says so after a call)."""
    variants = {"loopweave": compile_default(source), "naive C": compile_naive(source)}
    tuned = compile_tuned(source)
    if tuned is not None:
        variants["loopweave tuned"] = tuned
    return variants


def used_tuning_record(kernel: loopweave.Kernel) -> bool:
    """Whether a call of `kernel` ran a schedule from the tuning database (autotune.dispatch
    keeps the record used per call sizes in `records`)."""
    records = getattr(kernel.invoke, "records", None)
    return bool(records) and any(r is not None for r in records.values())


NO_TUNING_RECORD = ("loopweave tuned: no record in the tuning database for this kernel and "
                    "size (tune it with the autotuner, see docs/tuning.md); column omitted")


def torch_module(threads: int):
    """torch limited to `threads` intra-op threads, or None where torch is not installed."""
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    torch.set_num_threads(threads)
    return torch


def tvm_status() -> str:
    """Why the TVM peer is absent (it is optional and only measured where installed)."""
    if importlib.util.find_spec("tvm") is None:
        return "TVM: not installed (apache-tvm is an optional peer), skipped"
    return ("TVM: installed; its default schedule and MetaSchedule are measured by "
            "benchmarks/tvm_peer.py (benchmarks/results_tuning.md), not by this suite")
