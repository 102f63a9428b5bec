"""The tuning database: every measurement, in SQLite (WAL), one commit per record.

    measurements: uid, key (digest of KernelKey), kernel_hash, kernel_name, sizes, dtypes,
                  target, compiler, machine, schedule (JSON), options (JSON), config (JSON),
                  features (JSON), feature_version, median_s, spread, times (JSON), status,
                  error, strategy, created
    models:       name, feature_version, text (a LightGBM model), records, created

`status` is one of STATUSES; "unmeasured" is a GPU candidate checked right under emulation or
an interpreter (no GPU here): it has features but no time, so `best` never returns it; "noisy"
is a right candidate whose timings spread too widely twice (autotune/measure.NOISY_SPREAD): its
time is kept for reading, but `best` and the cost model ignore it. Every
record is committed on its own, so a sweep killed at any point (kill -9 included) keeps every
finished record; WAL mode and a busy timeout let several sweeps write one file at once.
`export`/`import_records` move records as JSON lines; the uid makes importing the same file
twice harmless.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from loopweave.autotune.keys import KernelKey
from loopweave.errors import LoopweaveError
from loopweave.toolchain import cache_dir

STATUSES = ("ok", "crash", "timeout", "wrong", "compile_error", "unmeasured", "noisy")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS measurements (
    uid TEXT PRIMARY KEY, key TEXT NOT NULL, kernel_hash TEXT, kernel_name TEXT, sizes TEXT,
    dtypes TEXT, target TEXT, compiler TEXT, machine TEXT, schedule TEXT, options TEXT,
    config TEXT, features TEXT, feature_version INTEGER, median_s REAL, spread REAL,
    times TEXT, status TEXT NOT NULL, error TEXT, strategy TEXT, created REAL);
CREATE INDEX IF NOT EXISTS measurements_key ON measurements (key, status, median_s);
CREATE TABLE IF NOT EXISTS models (
    name TEXT PRIMARY KEY, feature_version INTEGER, text TEXT, records INTEGER, created REAL);
"""


def default_path() -> Path:
    """$LOOPWEAVE_TUNE_DB, else tuning.sqlite in the kernel cache directory."""
    return Path(os.environ.get("LOOPWEAVE_TUNE_DB") or cache_dir() / "tuning.sqlite")


class DatabaseError(LoopweaveError):
    """The tuning database cannot be opened or read."""


#: The configuration key of the target's default (autotune/space.SearchSpace.decode): its
#: record stands for what `compile()` builds without one, not for its `schedule` field.
DEFAULT_SCHEDULE = "default_schedule"


@dataclass
class Record:
    """One measured candidate."""

    key: str
    kernel_hash: str
    kernel_name: str
    sizes: str
    dtypes: str
    target: str
    compiler: str
    machine: str
    schedule: str
    options: str
    status: str
    config: str = "{}"
    features: str = "[]"
    feature_version: int = 0
    median_s: float | None = None
    spread: float | None = None
    times: str = "[]"
    error: str = ""
    strategy: str = ""
    created: float = field(default_factory=time.time)
    uid: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def is_default(self) -> bool:
        """Whether this is the record of the target's default (see DEFAULT_SCHEDULE)."""
        return bool(json.loads(self.config or "{}").get(DEFAULT_SCHEDULE))

    @classmethod
    def for_key(cls, key: KernelKey, kernel_name: str, **fields) -> Record:
        return cls(key=key.digest, kernel_hash=key.kernel_hash, kernel_name=kernel_name,
                   sizes=key.sizes, dtypes=key.dtypes, target=key.target,
                   compiler=key.compiler, **fields)


_COLUMNS = tuple(Record.__dataclass_fields__)


class Database:
    """A tuning database file; safe to share between processes.

    `create=False` opens an existing file read-only (what `loopweave db best` and `db export`
    do): a missing file is a `DatabaseError`, and nothing is created next to it.
    """

    def __init__(self, path: str | Path, create: bool = True):
        self.path = Path(path)
        if create:
            self._conn = self._open_for_writing()
        else:
            self._conn = self._open_read_only()

    def _open_for_writing(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Switching to WAL and creating the schema can fail with "database is locked"
            # without waiting for the busy timeout when two processes open a new file at
            # once, so the set-up is serialized by a lock file next to the database.
            with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                conn = sqlite3.connect(str(self.path), timeout=60, isolation_level=None,
                                       check_same_thread=False)
                conn.execute("PRAGMA busy_timeout = 60000")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.executescript(_SCHEMA)
                return conn
        except (sqlite3.Error, OSError) as e:
            raise DatabaseError(f"cannot open the tuning database {self.path}: {e}") from None

    def _open_read_only(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise DatabaseError(f"no tuning database at {self.path}")
        conn = None
        try:
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                   timeout=60, isolation_level=None, check_same_thread=False)
            conn.execute("SELECT COUNT(*) FROM measurements").fetchone()  # a tuning database?
            return conn
        except sqlite3.Error as e:
            if conn is not None:
                conn.close()
            raise DatabaseError(f"cannot read the tuning database {self.path}: {e}") from None

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add(self, record: Record) -> None:
        """Insert and commit one record (ignored if a record with its uid exists)."""
        if record.status not in STATUSES:
            raise ValueError(f"unknown status {record.status!r}")
        row = asdict(record)
        sql = (f"INSERT OR IGNORE INTO measurements ({', '.join(_COLUMNS)}) "
               f"VALUES ({', '.join('?' for _ in _COLUMNS)})")
        self._conn.execute(sql, [row[c] for c in _COLUMNS])

    def _select(self, where: str = "", args: tuple = (), order: str = "created") -> list[Record]:
        sql = f"SELECT {', '.join(_COLUMNS)} FROM measurements {where} ORDER BY {order}"
        try:
            rows = self._conn.execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise DatabaseError(f"reading {self.path}: {e}") from None
        return [Record(**dict(zip(_COLUMNS, r, strict=True))) for r in rows]

    def records(self, key: str | None = None, status: str | None = None,
                machine: str | None = None) -> list[Record]:
        """Records, oldest first, optionally of one key digest, status and machine."""
        clauses, args = [], []
        for column, value in (("key", key), ("status", status), ("machine", machine)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        return self._select("WHERE " + " AND ".join(clauses) if clauses else "", tuple(args))

    def best(self, key: str, machine: str | None = None) -> Record | None:
        """The fastest correct record of a key digest (of one machine, if given)."""
        where, args = "WHERE key = ? AND status = 'ok' AND median_s IS NOT NULL", [key]
        if machine is not None:
            where += " AND machine = ?"
            args.append(machine)
        rows = self._select(where, tuple(args), order="median_s LIMIT 1")
        return rows[0] if rows else None

    def keys(self) -> list[tuple[str, str, str, str, int]]:
        """(key digest, kernel name, sizes, target, number of records) for every key."""
        return self._conn.execute(
            "SELECT key, kernel_name, sizes, target, COUNT(*) FROM measurements "
            "GROUP BY key ORDER BY kernel_name, sizes").fetchall()

    def count(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]

    def export(self, path: str | Path, key: str | None = None) -> int:
        """Write records as JSON lines; returns how many."""
        records = self.records(key)
        with open(path, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(asdict(r), sort_keys=True) + "\n")
        return len(records)

    def import_records(self, path: str | Path) -> int:
        """Add the records of a JSON-lines export; returns how many were new."""
        before = self.count()
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                    self.add(Record(**{c: data[c] for c in _COLUMNS if c in data}))
                except (json.JSONDecodeError, TypeError, ValueError) as e:
                    raise DatabaseError(f"{path}:{n}: not a tuning record: {e}") from None
        return self.count() - before

    def save_model(self, name: str, text: str, feature_version: int, records: int) -> None:
        self._conn.execute("INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?, ?)",
                           (name, feature_version, text, records, time.time()))

    def load_model(self, name: str) -> tuple[str, int, int] | None:
        """(model text, feature version, records it was trained on), or None."""
        row = self._conn.execute("SELECT text, feature_version, records FROM models "
                                 "WHERE name = ?", (name,)).fetchone()
        return tuple(row) if row else None
