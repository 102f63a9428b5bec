"""`compile()` with tuned schedules: calls use the best record for their exact key.

A kernel compiled without a schedule learns its sizes only when it is called. The invoker made
here looks the call's key (normalized kernel hash, the sizes of the call, dtypes, target,
compiler version) up in the tuning database once per distinct sizes; on an exact match it
compiles the recorded schedule and options and runs that, otherwise the default build. Which
record was used (or that none matched) is logged at debug level on `loopweave.autotune`.
A record is never applied for a key that differs in anything.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from loopweave.autotune.database import Database, DatabaseError, default_path
from loopweave.autotune.keys import kernel_key
from loopweave.errors import LoopweaveError

log = logging.getLogger("loopweave.autotune")


class TunedDispatch:
    """An invoker that runs the best recorded schedule for each call's sizes."""

    def __init__(self, default, stages, source, kernel, cc, cflags, options, db_path: Path):
        self.default = default
        # The key hashes the front end's IR, as tune() does: the default schedule's fusion and
        # storage reduction change the scheduled IR.
        self.ir = stages.unscheduled or stages.ir
        self.target = stages.target
        self.db_path = db_path
        self._compile_args = dict(target=stages.target.name, kernel=kernel, cc=cc,
                                  cflags=cflags, **options)
        self._source = source
        self._chosen: dict[tuple, object] = {}
        self.records: dict[tuple, object] = {}  # sizes -> the Record used (for inspection)

    def __getattr__(self, name):  # behave like the default invoker otherwise
        return getattr(self.default, name)

    def _lookup(self, sizes: dict):
        from loopweave.driver import compile
        from loopweave.passes.schedule import Schedule

        key = kernel_key(self.ir, sizes, self.target)
        try:
            with Database(self.db_path) as db:
                record = db.best(key.digest)
        except DatabaseError as e:
            log.debug("tuning database %s unreadable: %s", self.db_path, e)
            return self.default, None
        if record is None:
            log.debug("no tuning record in %s for %s sizes %s (key %s): default schedule",
                      self.db_path, self.ir.name, key.sizes, key.digest)
            return self.default, None
        args = {**self._compile_args, **json.loads(record.options)}
        try:
            tuned = compile(self._source, schedule=Schedule.from_json(record.schedule),
                            tuning_db=False, **args)
        except LoopweaveError as e:
            log.debug("tuning record %s of %s no longer compiles (%s): default schedule",
                      record.uid, self.ir.name, e)
            return self.default, None
        log.debug("using tuning record %s (%.4g ms, measured on %s) from %s for %s sizes %s",
                  record.uid, record.median_s * 1e3, record.machine, self.db_path,
                  self.ir.name, key.sizes)
        return tuned.invoke, record

    def __call__(self, arrays: dict, scalars: dict, sizes: dict) -> None:
        which = tuple(sorted(sizes.items()))
        if which not in self._chosen:
            self._chosen[which], self.records[which] = self._lookup(sizes)
        self._chosen[which](arrays, scalars, sizes)


def with_tuned_schedules(invoke, stages, source, kernel, cc, cflags, options, db):
    """`invoke`, or a dispatcher to tuned schedules if the tuning database exists."""
    path = Path(db) if db else default_path()
    if not path.exists():
        return invoke
    return TunedDispatch(invoke, stages, source, kernel, cc, cflags, dict(options), path)
