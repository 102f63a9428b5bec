"""The one exception hierarchy of loopweave.

Every error the compiler raises for a user's mistake derives from `LoopweaveError`. Errors raised
while checking call arguments also derive from the builtin `TypeError` or `ValueError`, so that
ordinary Python code can catch them the usual way.

This module imports nothing else from loopweave, so every layer (ir/ at the bottom included) may
import it without cycles.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SourcePos:
    """A position in DSL source text (1-based line and column)."""

    line: int
    column: int

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}"


class LoopweaveError(Exception):
    """Base class of every error loopweave raises on purpose."""


def located(message: str, pos: SourcePos | None, source: str | None) -> str:
    """`message` after its position, with the source line and a caret under the column."""
    if pos is None:
        return message
    text = f"{pos}: {message}"
    if source is not None:
        lines = source.split("\n")  # as the parser counts lines, not splitlines()
        if 1 <= pos.line <= len(lines):
            src_line = lines[pos.line - 1].expandtabs(1)
            caret = pos.column - 1
            # Show at most a window of the line, so that a huge line stays readable.
            start = max(0, min(caret - 60, len(src_line) - 100))
            shown = src_line[start:start + 100]
            text += f"\n    {shown}\n    {' ' * (caret - start)}^"
    return text


class _Located:
    """`line` and `column` of something with a `pos` in DSL source text."""

    pos: SourcePos | None

    @property
    def line(self) -> int | None:
        return None if self.pos is None else self.pos.line

    @property
    def column(self) -> int | None:
        return None if self.pos is None else self.pos.column


class DSLError(_Located, LoopweaveError):
    """An error located in DSL source text; the message shows the line and a caret."""

    def __init__(self, message: str, pos: SourcePos | None = None, source: str | None = None):
        self.message = message
        self.pos = pos
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        return located(self.message, self.pos, self.source)


class DSLSyntaxError(DSLError):
    """The text does not follow the DSL grammar."""


class DSLTypeError(DSLError):
    """The kernel parses but is not well formed: names, ranks, types, index ranges, shapes.

    When the checker finds several problems it raises one `DSLTypeError` whose `errors` lists them
    all (each itself a `DSLTypeError` with its own position).
    """

    def __init__(self, message: str, pos: SourcePos | None = None, source: str | None = None,
                 errors: list[DSLTypeError] | None = None):
        self.errors = errors or []
        super().__init__(message, pos, source)

    def _render(self) -> str:
        if len(self.errors) < 2:
            return super()._render()
        # Each error with its own source line and caret, in source order of discovery.
        first, *rest = self.errors
        return "\n".join([str(first), f"({len(rest)} more error(s) below)", *map(str, rest)])


class BoundsError(DSLTypeError):
    """An access may fall outside its tensor for some sizes allowed by the kernel's assumptions."""


class ScheduleError(LoopweaveError):
    """A requested transformation is malformed or would break a dependence."""


class TargetError(LoopweaveError):
    """An unknown target, or a target that cannot run here (missing tool or hardware)."""


class CompileError(LoopweaveError):
    """The generated source did not build; the message shows the line the compiler pointed at."""


class ArgumentTypeError(LoopweaveError, TypeError):
    """A call argument has the wrong kind or dtype."""


class ArgumentValueError(LoopweaveError, ValueError):
    """A call argument has a wrong shape or layout, or the sizes break an `assume`."""


class LoopweaveWarning(UserWarning):
    """Base class of every warning loopweave issues on purpose (filter them all with it)."""


class DSLWarning(_Located, LoopweaveWarning):
    """Something in DSL source text that is legal but probably not meant (a likely typo in an
    index name): `message`, `line`, `column`; the text shows the line and a caret."""

    def __init__(self, message: str, pos: SourcePos | None = None, source: str | None = None):
        self.message = message
        self.pos = pos
        self.source = source
        super().__init__(located(message, pos, source))


class SequentialLoopWarning(LoopweaveWarning):
    """A GPU kernel keeps a loop sequential (it carries a dependence, or no loop of a statement
    is bound to a GPU axis): it runs in one thread, or as one launch per host-loop iteration."""


class StridedCopyWarning(LoopweaveWarning):
    """A call copied a strided (non-contiguous) input into a contiguous array first: the result
    is right, but the copy costs time and memory on every call. Issued once per kernel and
    argument."""


__all__ = [
    "ArgumentTypeError",
    "ArgumentValueError",
    "BoundsError",
    "CompileError",
    "DSLError",
    "DSLSyntaxError",
    "DSLTypeError",
    "DSLWarning",
    "LoopweaveError",
    "LoopweaveWarning",
    "ScheduleError",
    "SequentialLoopWarning",
    "SourcePos",
    "StridedCopyWarning",
    "TargetError",
]
