"""Targets as data: which backend renders the kernel, and how its source is built and run."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass

from loopweave.errors import TargetError


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    backend: str  # module under loopweave.backends
    cc: str
    cflags: tuple[str, ...]
    description: str


def _host_cc() -> str:
    return os.environ.get("CC", "cc")


def host_target(cc: str | None = None, cflags: tuple[str, ...] | None = None) -> Target:
    """The machine Python runs on: portable C built by the system compiler."""
    flags = cflags if cflags is not None else tuple(shlex.split(
        os.environ.get("LOOPWEAVE_CFLAGS", "-O3 -march=native")))
    # -fwrapv: integer overflow wraps, as numpy's does; -fPIC -shared: loaded through ctypes.
    return Target("cpu", "c", cc or _host_cc(), (*flags, "-std=c99", "-fwrapv"),
                  "host CPU, C99 built with the system C compiler")


TARGETS = {"cpu": "host CPU (C99, system compiler)"}


def get_target(name: str, cc: str | None = None, cflags: tuple[str, ...] | None = None) -> Target:
    """The target called `name`; raises `TargetError` listing the known ones otherwise."""
    if name in ("cpu", "host", "c"):
        return host_target(cc, cflags)
    known = ", ".join(f"'{k}' ({v})" for k, v in TARGETS.items())
    raise TargetError(f"unknown target {name!r}; known targets: {known}")
