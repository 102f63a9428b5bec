"""isl's scheduler with a wall-clock deadline.

isl's scheduler (`isl_schedule_constraints_compute_schedule`) usually answers in well under a
second, but on some kernels it runs for minutes: Farkas' lemma over dependences with integer
divisions and reversed indices (`O0[N - 1 - i, 3*n]`) makes Fourier-Motzkin elimination
explode (fuzz seed 10193: over 10 minutes). isl's own operation quota does not bound the time:
one counted operation (a tableau pivot) costs 100x more on such a kernel than on adi.

isl stops at its next counted operation once `isl_ctx_abort` is called, but islpy holds
Python's GIL for the whole call, so nothing in Python can call it meanwhile. So the scheduler
runs here through ctypes (which releases the GIL during a foreign call) in a private isl
context of the same library that islpy loaded, and a timer thread aborts that context at the
deadline. The constraints go in, and the schedule comes back, as isl's own text, read into the
caller's context.
"""

from __future__ import annotations

import ctypes
import threading

import islpy as isl
from islpy import _isl

#: isl's `on_error` value that returns NULL without printing (isl_options.h).
_ISL_ON_ERROR_CONTINUE = 1


def _library() -> ctypes.CDLL:
    lib = ctypes.CDLL(_isl.__file__)  # the library islpy already loaded: same isl build
    lib.isl_ctx_alloc.restype = ctypes.c_void_p
    lib.isl_ctx_free.argtypes = [ctypes.c_void_p]
    lib.isl_ctx_abort.argtypes = [ctypes.c_void_p]
    lib.isl_ctx_last_error_msg.argtypes = [ctypes.c_void_p]
    lib.isl_ctx_last_error_msg.restype = ctypes.c_char_p
    lib.isl_schedule_constraints_read_from_str.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.isl_schedule_constraints_read_from_str.restype = ctypes.c_void_p
    lib.isl_schedule_constraints_compute_schedule.argtypes = [ctypes.c_void_p]
    lib.isl_schedule_constraints_compute_schedule.restype = ctypes.c_void_p
    lib.isl_schedule_to_str.argtypes = [ctypes.c_void_p]
    lib.isl_schedule_to_str.restype = ctypes.c_void_p  # a malloc'ed char *: freed below
    lib.isl_schedule_free.argtypes = [ctypes.c_void_p]
    return lib


_LIB = _library()
_LIBC = ctypes.CDLL(None)
_LIBC.free.argtypes = [ctypes.c_void_p]


class SchedulerTimeout(Exception):
    """isl's scheduler did not finish before the deadline."""


class SchedulerFailed(Exception):
    """isl's scheduler failed (its message is the exception's)."""


def compute_schedule(constraints: isl.ScheduleConstraints, options: dict[str, int],
                     seconds: float) -> isl.Schedule:
    """`constraints.compute_schedule()` with isl's `options` (by isl's option names, e.g.
    `schedule_outer_coincidence`), in `constraints`' context; `SchedulerTimeout` if it takes
    longer than `seconds`, `SchedulerFailed` if isl fails."""
    text = constraints.to_str().encode()
    ctx = _LIB.isl_ctx_alloc()
    if not ctx:
        raise SchedulerFailed("isl_ctx_alloc failed")
    timer = threading.Timer(seconds, _LIB.isl_ctx_abort, args=(ctx,))
    try:
        _LIB.isl_options_set_on_error(ctypes.c_void_p(ctx), _ISL_ON_ERROR_CONTINUE)
        for name, value in options.items():
            getattr(_LIB, f"isl_options_set_{name}")(ctypes.c_void_p(ctx), int(value))
        timer.start()
        # Takes the constraints (freed by isl); NULL on failure or abort.
        schedule = _LIB.isl_schedule_constraints_compute_schedule(
            _LIB.isl_schedule_constraints_read_from_str(ctx, text))
        timer.cancel()
        timer.join()  # the abort, if it fired, has returned: the context is ours to free
        if not schedule:
            if _LIB.isl_ctx_aborted(ctypes.c_void_p(ctx)):
                raise SchedulerTimeout(f"isl's scheduler took over {seconds:g} s")
            message = _LIB.isl_ctx_last_error_msg(ctx)
            raise SchedulerFailed(message.decode() if message else "no schedule")
        raw = _LIB.isl_schedule_to_str(schedule)
        _LIB.isl_schedule_free(schedule)
        result = ctypes.string_at(raw).decode()
        _LIBC.free(raw)
    finally:
        timer.cancel()
        if timer.is_alive():
            timer.join()
        _LIB.isl_ctx_free(ctx)
    return isl.Schedule.read_from_str(constraints.get_ctx(), result)
