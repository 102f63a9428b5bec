"""`compile()`: DSL text -> callable `Kernel`, as a flat list of named stages.

    parse -> check (builds the polyhedral IR) -> schedule -> lower (isl AST) -> render -> build
    -> load

`compile(..., dump=True)` prints the result of each stage; `stages()` returns them for tests.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field

from loopweave.errors import ArgumentTypeError, DSLError
from loopweave.frontend import ast
from loopweave.frontend.checker import check
from loopweave.frontend.parser import parse, too_deep
from loopweave.ir.codegen import loop_ast
from loopweave.ir.kernel import KernelIR
from loopweave.ir.loops import Node, to_text
from loopweave.runtime import Kernel
from loopweave.targets import Target, backend_module, get_target


@dataclass
class Stages:
    """What each stage produced (kept for `dump` and for tests)."""

    target: Target
    syntax: ast.KernelDef | None = None
    unscheduled: KernelIR | None = None  # the front end's IR (what tuning keys hash)
    ir: KernelIR | None = None
    loops: Node | None = None
    source: str = ""
    dumps: list[tuple[str, str]] = field(default_factory=list)


def select_kernel(kernels: tuple[ast.KernelDef, ...], name: str | None,
                  source: str) -> ast.KernelDef:
    """The kernel called `name`, or the only one in the text."""
    names = [k.name for k in kernels]
    if name is None:
        if len(kernels) == 1:
            return kernels[0]
        # Shown at the second definition: where the text stops being one kernel.
        raise DSLError(f"the source defines {len(kernels)} kernels ({', '.join(names)}); "
                       "choose one with compile(..., kernel='name')", kernels[1].pos, source)
    for k in kernels:
        if k.name == name:
            return k
    raise DSLError(f"no kernel named {name!r} in the source; it defines {', '.join(names)}",
                   kernels[0].pos, source)


def front_end(source: str, kernel: str | None = None) -> KernelIR:
    """Parse and check DSL text: the kernel's polyhedral IR."""
    if not isinstance(source, str):
        raise ArgumentTypeError(f"compile() takes DSL source text, not {type(source).__name__}")
    try:
        kdef = select_kernel(parse(source), kernel, source)
        return check(kdef, source)
    except RecursionError:
        raise too_deep(source, "the kernel is") from None


def compiler_flags(cflags) -> tuple[str, ...] | None:
    """`cflags` as a tuple of strings; one string is split as a shell would."""
    if cflags is None:
        return None
    if isinstance(cflags, str):  # tuple("-O2") would be ('-', 'O', '2')
        return tuple(shlex.split(cflags))
    flags = tuple(cflags) if isinstance(cflags, list | tuple) else None
    if flags is None or not all(isinstance(f, str) for f in flags):
        raise ArgumentTypeError(f"cflags must be a list of strings, not {cflags!r}")
    return flags


def stages(source: str, target: str = "cpu", *, kernel: str | None = None,
           schedule=None, cc: str | None = None, cflags=None,
           options: dict | None = None) -> Stages:
    """Run every stage up to the generated source (no build)."""
    result = Stages(get_target(target, cc, compiler_flags(cflags), options))
    result.ir = result.unscheduled = front_end(source, kernel)
    result.dumps.append(("ir", str(result.ir)))
    if schedule is None:  # the target's default (Schedule() keeps program order)
        default = getattr(backend_module(result.target), "default_schedule", None)
        schedule = default(result.ir, result.target) if default is not None else None
    if schedule is not None:
        result.ir = schedule.apply(result.ir) if hasattr(schedule, "apply") else schedule(result.ir)
        result.dumps.append(("schedule", str(result.ir.schedule)))
    result.loops = loop_ast(result.ir)
    result.dumps.append(("loops", to_text(result.loops)))
    result.source = backend_module(result.target).render(result.ir, result.loops, result.target)
    result.dumps.append(("source", result.source))
    return result


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
              database, False: never.
    options:  target-specific keywords (e.g. `arch="sm_90"` for cuda), checked by the target.

    Every error about the kernel derives from `loopweave.LoopweaveError`.
    """
    result = stages(source, target, kernel=kernel, schedule=schedule, cc=cc, cflags=cflags,
                    options=options)
    if dump:
        for name, text in result.dumps:
            print(f"==== {name} ====\n{text}", file=sys.stderr)
    invoke = backend_module(result.target).load(result.ir, result.source, result.target)
    if schedule is None and tuning_db is not False:
        from loopweave.autotune.dispatch import with_tuned_schedules

        invoke = with_tuned_schedules(invoke, result, source, kernel, cc, cflags, options,
                                      tuning_db)
    return Kernel(result.ir, result.source, result.target.name, invoke)
