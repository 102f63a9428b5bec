"""Autotuning: search spaces from the passes' knobs, a learned cost model, isolated
measurement, a SQLite database of every measurement, local or Ray executors.

    result = loopweave.tune(src, sizes={"M": 256, "K": 256, "N": 256}, trials=64)
    kernel = loopweave.compile(src)     # calls at those sizes use the best recorded schedule

See docs/tuning.md. The names below are imported on first use (PEP 562): `compile()` needs only
`loopweave.autotune.dispatch`, not the search and its cost model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for type checkers and editors; at run time __getattr__ imports them
    from loopweave.autotune.database import Database, Record
    from loopweave.autotune.search import TuneResult, tune

# name -> the module that defines it
_LAZY = {
    "Database": "loopweave.autotune.database",
    "Record": "loopweave.autotune.database",
    "TuneResult": "loopweave.autotune.search",
    "tune": "loopweave.autotune.search",
}


def __getattr__(name: str):
    """The public names of `_LAZY`, imported when first used."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loopweave.autotune' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later uses skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = ["Database", "Record", "TuneResult", "tune"]
