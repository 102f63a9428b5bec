"""Autotuning: search spaces from the passes' knobs, a learned cost model, isolated
measurement, a SQLite database of every measurement, local or Ray executors.

    result = loopweave.tune(src, sizes={"M": 256, "K": 256, "N": 256}, trials=64)
    kernel = loopweave.compile(src)     # calls at those sizes use the best recorded schedule

See docs/tuning.md.
"""

from loopweave.autotune.database import Database, Record
from loopweave.autotune.search import TuneResult, tune

__all__ = ["Database", "Record", "TuneResult", "tune"]
