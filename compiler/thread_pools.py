"""Loading kernels so that their OpenMP threads share the cores with other thread pools.

A Python process that runs loopweave kernels usually runs numpy too, and numpy's OpenBLAS keeps
a pool of its own: after each BLAS call its worker threads spin for about 0.1 s before they
sleep (measured here: 11 of 30 ticks of CPU in the 300 ms after a 300x300 matmul). libgomp's
default is to spin as well, 300,000 `pause`s (several ms) at every barrier and between parallel
regions. On a machine with as many cores as OpenMP threads, the spinners of both pools stay
runnable, the scheduler shares a core between a kernel thread and an OpenBLAS thread in slices
of milliseconds, and every barrier waits for the descheduled thread: a 0.4 ms kernel took
5-15 ms right after a numpy matmul (issue 17's stall).

A waiting thread must leave its core soon, so the idle core takes over the runnable threads,
but not at once: a stencil in a time loop opens a parallel region every few microseconds, and a
fully passive wait (futex sleep at every barrier) made jacobi-2d at MEDIUM 2-4x slower. libgomp
reads its spin count once, when it is loaded, from GOMP_SPINCOUNT. `load_library()` therefore
sets `SPIN_COUNT` in the environment while it loads the first kernel (and with it libgomp), and
restores the environment at once: libraries loaded later (torch's own libgomp, for one) keep
their defaults. Where the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT, or where libgomp was
already loaded by another library (its settings then hold for the whole process), nothing is
changed; `openmp_wait()` says which setting the kernels run with. Which cores the threads run
on during a call is the kernels' own entries' business (backends/c_threads.py).
"""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path

#: libgomp's spin count for loopweave's kernels: about 0.2 ms of `pause` on Zen 3 before a
#: waiting thread sleeps. Measured with benchmarks/thread_pools.py (see docs/performance.md):
#: it keeps time-loop stencils at the speed of the default spin and removes the stall after
#: numpy calls, where 0 (passive) slows the stencils and 30,000 or more keeps the stall.
SPIN_COUNT = 10_000

_USER_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
_lock = threading.Lock()
_wait: str | None = None  # what the first load decided, reported by openmp_wait()


def loaded_libraries() -> list[str]:
    """Paths of the shared libraries mapped into this process (Linux; empty elsewhere)."""
    try:
        with open("/proc/self/maps") as maps:
            return sorted({line.split()[-1] for line in maps if ".so" in line})
    except OSError:
        return []


def _libgomp_loaded() -> bool:
    return any(Path(path).name.startswith("libgomp.so") for path in loaded_libraries())


def _decide() -> dict[str, str]:
    """The environment to load the first kernel with, and the wait setting it gives."""
    global _wait
    user = {name: os.environ[name] for name in _USER_SETTINGS if name in os.environ}
    if user:
        _wait = ", ".join(f"{k}={v}" for k, v in user.items()) + " (the user's)"
        return {}
    if _libgomp_loaded():
        _wait = "libgomp's default (it was loaded before loopweave's first kernel)"
        return {}
    _wait = f"GOMP_SPINCOUNT={SPIN_COUNT} (loopweave's)"
    return {"GOMP_SPINCOUNT": str(SPIN_COUNT)}


def load_library(path: Path | str) -> ctypes.CDLL:
    """`ctypes.CDLL(path)`; the first library that brings libgomp in is loaded with loopweave's
    spin count (see the module docstring). Raises OSError as ctypes does."""
    global _wait
    with _lock:
        if _wait is not None:
            return ctypes.CDLL(str(path))
        settings = _decide()
        saved = {name: os.environ.get(name) for name in settings}
        os.environ.update(settings)
        try:
            library = ctypes.CDLL(str(path))
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        if settings and not _libgomp_loaded():
            _wait = None  # a kernel without OpenMP: decide again at the next load
        return library


def openmp_wait() -> str | None:
    """How the kernels' OpenMP threads wait, as decided when the first kernel was loaded (None
    before that)."""
    return _wait
