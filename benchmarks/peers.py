"""The implementations a loopweave kernel is measured against, and loopweave's own variants.

- `naive`: the kernel's loop nest in program order, exactly as written in the DSL, rendered by
  loopweave's C backend with an explicit identity schedule (so no default schedule applies) and
  built with `gcc -O3 -march=native`: the plain C loop nest a programmer would write.
- `loopweave`: `loopweave.compile(source)` with its default schedule, never a tuned one
  (`tuning_db=False` where compile() has a tuning database).
- `loopweave tuned`: `loopweave.compile(source)` consulting the default tuning database
  (docs/tuning.md); shown only where the database held a record for the benchmark's exact key.
- numpy and torch (CPU, eager) functions come with each kernel in suite.py; TVM is optional.
"""

from __future__ import annotations

import importlib.util
import inspect

import loopweave

NAIVE_CFLAGS = ("-O3", "-march=native")


def program_order(kernel_ir):
    """The identity schedule: statements in program order, each loop nest as written."""
    return kernel_ir


def compile_naive(source: str, kernel: str | None = None) -> loopweave.Kernel:
    """The kernel as a plain C loop nest (identity schedule) built with -O3 -march=native."""
    return loopweave.compile(source, kernel=kernel, schedule=program_order, cflags=NAIVE_CFLAGS)


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
