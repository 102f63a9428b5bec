"""loopweave: a tensor-kernel compiler.

    kernel = loopweave.compile('''
        kernel matmul(A: f32[M, K], B: f32[K, N]) -> C: f32[M, N] {
            C[i, j] += A[i, k] * B[k, j]
        }''')
    C = kernel(A, B)
"""

from loopweave.autotune.search import tune
from loopweave.driver import compile
from loopweave.emit import emit_c
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
from loopweave.passes.schedule import Schedule
from loopweave.runtime import Kernel

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
