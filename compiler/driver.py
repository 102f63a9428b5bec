"""`compile()`: DSL text -> callable `Kernel`, through `loopweave.pipeline.Pipeline`.

    parse -> check (builds the polyhedral IR) -> choose a schedule -> apply -> lower (isl AST)
    -> render -> build -> load

`compile(..., dump=True)` prints the result of each stage; `stages()` returns them for tests.
This module is the API layer: it composes the tuned-schedule lookup of the autotuner with the
pipeline, which sits below the autotuner and never imports it.
"""

from __future__ import annotations

import sys

from loopweave.autotune.dispatch import tuned_lookup
from loopweave.pipeline import Pipeline, Stages, compiler_flags, front_end, select_kernel
from loopweave.runtime import Kernel

# Re-exported: tests and benchmarks import them from here.
__all__ = ["Stages", "compile", "compiler_flags", "front_end", "select_kernel", "stages"]


def stages(source: str, target: str = "cpu", *, kernel: str | None = None,
           schedule=None, cc: str | None = None, cflags=None,
           options: dict | None = None) -> Stages:
    """Run every stage up to the generated source (no build): the given schedule, else the
    target's default."""
    return Pipeline(source, target, kernel=kernel, schedule=schedule, cc=cc, cflags=cflags,
                    options=options).stages()


def compile(source: str, target: str = "cpu", *, kernel: str | None = None, schedule=None,
            cc: str | None = None, cflags=None, dump: bool = False, tuning_db=None,
            **options) -> Kernel:  # noqa: A001
    """Compile DSL text into a callable `Kernel` for `target`.

    source:   DSL text with one or more `kernel` definitions.
    target:   "cpu" (the host, C99 built by the system compiler).
    kernel:   which kernel of the text, when it defines several.
    schedule: a function KernelIR -> KernelIR (or an object with `.apply`) run on the IR.
    cc, cflags: the C compiler and its optimisation flags (default: $CC or cc, -O3 -march=native;
              $LOOPWEAVE_CFLAGS overrides the flags).
    dump:     print the output of each stage to stderr.
    tuning_db: without a schedule, calls use the best record of this tuning database for their
              exact kernel, sizes, target and compiler (see docs/tuning.md); None: the default
              database, False: never. `Kernel.source` is the source of the last call's sizes.
    options:  target-specific keywords (e.g. `arch="sm_90"` for cuda), checked by the target.

    Every error about the kernel derives from `loopweave.LoopweaveError`.
    """
    pipeline = Pipeline(source, target, kernel=kernel, schedule=schedule, cc=cc, cflags=cflags,
                        options=options)
    if schedule is None:
        # After the pipeline has checked the target and the text: a bad kernel is reported
        # as such, whatever the tuning database holds.
        pipeline.lookup = tuned_lookup(tuning_db)
    result = pipeline.stages()
    if dump:
        for name, text in result.dumps:
            print(f"==== {name} ====\n{text}", file=sys.stderr)
    return pipeline.kernel(result)
