"""loopweave: a tensor-kernel compiler.

    kernel = loopweave.compile('''
        kernel matmul(A: f32[M, K], B: f32[K, N]) -> C: f32[M, N] {
            C[i, j] += A[i, k] * B[k, j]
        }''')
    C = kernel(A, B)

The names below are imported on first use (PEP 562), so `import loopweave.errors` (or any
module of the lower layers) does not load the compiler, the backends and the autotuner;
`__version__` is read from the package metadata on first use too.
"""

from __future__ import annotations

import importlib
import re
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from loopweave.errors import (
    ArgumentTypeError,
    ArgumentValueError,
    BoundsError,
    CompileError,
    DSLError,
    DSLSyntaxError,
    DSLTypeError,
    DSLWarning,
    LoopweaveError,
    LoopweaveWarning,
    ScheduleError,
    SequentialLoopWarning,
    SourcePos,
    StridedCopyWarning,
    TargetError,
)

if TYPE_CHECKING:  # for type checkers and editors; at run time __getattr__ imports them
    __version__: str
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
    """The public names of `_LAZY` and `__version__`, computed when first used."""
    if name == "__version__":
        value = _version()
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'loopweave' has no attribute {name!r}")
    globals()[name] = value  # later uses skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, "__version__"})


def _version() -> str:
    """The installed distribution's version; in a source tree that is not installed, the
    version in pyproject.toml next to it."""
    try:
        return metadata.version("loopweave")
    except metadata.PackageNotFoundError:
        pass
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        found = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(encoding="utf-8"),
                          re.MULTILINE)
    except OSError:
        found = None
    return found.group(1) if found else "0+unknown"


__all__ = [
    "__version__",
    "ArgumentTypeError",
    "ArgumentValueError",
    "BoundsError",
    "CompileError",
    "DSLError",
    "DSLSyntaxError",
    "DSLTypeError",
    "DSLWarning",
    "Kernel",
    "LoopweaveError",
    "LoopweaveWarning",
    "Schedule",
    "ScheduleError",
    "SequentialLoopWarning",
    "SourcePos",
    "StridedCopyWarning",
    "TargetError",
    "compile",
    "tune",
    "emit_c",
]
