"""Argument arrays moved onto 64-byte lines for a call: what a schedule's `align` steps ask.

A vector loop that re-reads the rows of an array whose data starts off a cache line splits
every 64-byte load over two lines: lu, ludcmp and cholesky (PolyBench LARGE, one thread, Xeon)
ran 1.45-1.6x slower on arrays 16, 32 or 48 bytes into a line, where numpy puts its large
ones, than on line-aligned ones. Where a call's array of such a tensor starts off a line, the
call runs on a copy in a line-aligned buffer and copies it back where the kernel writes the
tensor: two passes over the array against the nest's passes over it per block of rows. The
buffers are kept per thread from call to call (fresh pages cost a fault each: 32 MB, 8000).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

#: Bytes per cache line: the alignment the copies get.
LINE = 64


class LineCopies:
    """The argument arrays at `positions` of a call's values (with `written`: copied back
    after the call) moved onto lines where they are not, `address` giving an array's
    address."""

    def __init__(self, positions: tuple[int, ...], written: tuple[bool, ...],
                 address: Callable[[np.ndarray], int]):
        self.positions = positions
        self.written = written
        self.address = address
        self._scratch = threading.local()

    def wrap(self, function: Callable, arrays: tuple[bool, ...],
             address: Callable[[np.ndarray], int] | None) -> Callable:
        """`function` called with the arrays flagged in `arrays` as `address(array)` (as the
        arrays themselves where `address` is None), those at `positions` on lines: a function
        of the values as arrays."""
        def call(*values) -> None:
            values = list(values)
            back = self.move(values)
            if address is not None:
                for pos, array in enumerate(arrays):
                    if array:
                        values[pos] = address(values[pos])
            function(*values)
            for given, copy in back:
                np.copyto(given, copy)
        return call

    def move(self, values: list) -> list[tuple[np.ndarray, np.ndarray]]:
        """Replace the arrays of `values` at `positions` that start off a line by copies on
        lines, in place; (given array, copy) for each copy the kernel writes."""
        back = []
        for slot, (pos, written) in enumerate(zip(self.positions, self.written, strict=True)):
            given = values[pos]
            if given.size == 0 or self.address(given) % LINE == 0:
                continue
            copy = self._buffer(slot, given)
            np.copyto(copy, given)
            values[pos] = copy
            if written:
                back.append((given, copy))
        return back

    def _buffer(self, slot: int, like: np.ndarray) -> np.ndarray:
        """This thread's line-aligned buffer `slot`, shaped as `like`: the one of the last call
        where it is large enough."""
        kept = getattr(self._scratch, "buffers", None)
        if kept is None:
            kept = self._scratch.buffers = {}
        raw = kept.get(slot)
        if raw is None or raw.nbytes < like.nbytes + LINE:
            raw = kept[slot] = np.empty(like.nbytes + LINE, np.uint8)
        start = -self.address(raw) % LINE
        return np.ndarray(like.shape, like.dtype, raw, start)
