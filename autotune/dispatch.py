"""Tuned schedules for the pipeline: a lookup in the tuning database, handed to
`loopweave.pipeline.Pipeline` by the API layer (`compile()`, `emit_c()`).

A kernel compiled without a schedule learns its sizes only when it is called; `emit_c` with
sizes knows them at once. Either way the pipeline asks `lookup(kernel_ir, sizes, target)` for
the best record of the exact key (normalized kernel hash, the sizes, dtypes, target, compiler
version): on a match, the pipeline builds the recorded schedule and options, otherwise the
target's default. A record is never applied for a key that differs in anything. That no record
matched is logged here at debug level on `loopweave.autotune`, which record was used by the
pipeline.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from loopweave.autotune.database import Database, DatabaseError, default_path
from loopweave.autotune.keys import kernel_key
from loopweave.errors import LoopweaveError
from loopweave.ir.kernel import KernelIR
from loopweave.passes.schedule import Schedule
from loopweave.pipeline import Lookup, Tuned
from loopweave.targets import Target

log = logging.getLogger("loopweave.autotune")


def tuned_lookup(db=None) -> Lookup | None:
    """The lookup of tuned schedules in database `db` (None: the default database), or None
    (nothing to look up) when `db` is False or the file does not exist."""
    if db is False:
        return None
    path = Path(db) if db else default_path()
    if not path.exists():
        return None

    def lookup(kernel: KernelIR, sizes: dict, target: Target) -> Tuned | None:
        # The key hashes the front end's IR, as tune() does: the default schedule's fusion and
        # storage reduction change the scheduled IR.
        key = kernel_key(kernel, sizes, target)
        try:
            with Database(path) as database:
                record = database.best(key.digest)
        except DatabaseError as e:
            log.debug("tuning database %s unreadable: %s", path, e)
            return None
        if record is None:
            log.debug("no tuning record in %s for %s sizes %s (key %s): default schedule",
                      path, kernel.name, key.sizes, key.digest)
            return None
        what = (f"tuning record {record.uid} ({record.median_s * 1e3:.4g} ms, measured on "
                f"{record.machine}) from {path}")
        if record.is_default:  # measured as compile() builds it: the pipeline does the same
            return Tuned(None, json.loads(record.options or "{}"),
                         f"{what}, the default schedule", record)
        try:
            schedule, options = Schedule.from_json(record.schedule), json.loads(record.options)
        except (LoopweaveError, ValueError, KeyError, TypeError) as e:
            log.debug("%s cannot be read (%s): default schedule", what, e)
            return None
        return Tuned(schedule, options, what, record)

    return lookup
