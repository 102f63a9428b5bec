"""loopweave: a tensor-kernel compiler.

    kernel = loopweave.compile('''
        kernel matmul(A: f32[M, K], B: f32[K, N]) -> C: f32[M, N] {
            C[i, j] += A[i, k] * B[k, j]
        }''')
    C = kernel(A, B)

The names below are imported on first use (PEP 562), so `import loopweave.errors` (or any
module of the lower layers) does not load the compiler, the backends and the autotuner.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from loopweave.errors import (
    ArgumentTypeError,
    ArgumentValueError,
    BoundsError,
    CompileError,
    DSLError,
    DSLSyntaxError,
    DSLTypeError,
    LoopweaveError,
    ScheduleError,
    SourcePos,
    TargetError,
)

if TYPE_CHECKING:  # for type checkers and editors; at run time __getattr__ imports them
    from loopweave.autotune.search import tune
    from loopweave.driver import compile
    from loopweave.emit import emit_c
    from loopweave.passes.schedule import Schedule
    from loopweave.runtime import Kernel

# name -> the module that defines it
_LAZY = {
    "compile": "loopweave.driver",
    "emit_c": "loopweave.emit",
    "tune": "loopweave.autotune.search",
    "Schedule": "loopweave.passes.schedule",
    "Kernel": "loopweave.runtime",
}


def __getattr__(name: str):
    """The public names of `_LAZY`, imported when first used."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loopweave' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later uses skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "ArgumentTypeError",
    "ArgumentValueError",
    "BoundsError",
    "CompileError",
    "DSLError",
    "DSLSyntaxError",
    "DSLTypeError",
    "Kernel",
    "LoopweaveError",
    "Schedule",
    "ScheduleError",
    "SourcePos",
    "TargetError",
    "compile",
    "tune",
    "emit_c",
]
