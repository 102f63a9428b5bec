"""Text -> `frontend.ast` with lark (LALR), and lark's errors -> `DSLSyntaxError`."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import lark
from lark import Lark, Token, Transformer, v_args

from loopweave.errors import DSLSyntaxError, SourcePos
from loopweave.frontend import ast

_GRAMMAR = Path(__file__).with_name("grammar.lark")


@functools.cache
def _parser() -> Lark:
    return Lark(_GRAMMAR.read_text(), parser="lalr", propagate_positions=True,
                maybe_placeholders=True)


def _pos(meta_or_token) -> SourcePos:
    return SourcePos(meta_or_token.line, meta_or_token.column)


def _number(tok: Token) -> ast.Num:
    text = str(tok)
    if text[:2] in ("0x", "0X"):
        return ast.Num(int(text, 16), False, _pos(tok))
    if any(c in text for c in ".eE"):
        return ast.Num(float(text), True, _pos(tok))
    return ast.Num(int(text), False, _pos(tok))


class _Misuse(Exception):
    """Text that parses but that the grammar leaves to the transformer to reject."""

    def __init__(self, message: str, pos: SourcePos):
        super().__init__(message)
        self.message, self.pos = message, pos


@v_args(meta=True)
class _ToAst(Transformer):
    """Builds frozen AST nodes bottom-up; every node gets the position of its first token."""

    def start(self, meta, kernels):
        return tuple(kernels)

    def kernel(self, meta, c):
        name, *rest = c
        body = rest[-1]
        outputs = rest[-2] or ()
        params = tuple(p for p in rest[:-2] if p is not None)
        return ast.KernelDef(str(name), params, tuple(outputs), body, _pos(meta))

    def param(self, meta, c):
        name, inout, dtype, shape = c
        return ast.Param(str(name), str(dtype), shape, inout is not None, _pos(name), _pos(dtype))

    def output(self, meta, c):
        name, dtype, shape = c
        return ast.Param(str(name), str(dtype), shape, False, _pos(name), _pos(dtype))

    def outputs(self, meta, c):
        return tuple(c)

    def shape(self, meta, c):
        return tuple(x for x in c if x is not None)

    def body(self, meta, c):
        return tuple(x for x in c if x is not None)

    def empty(self, meta, c):
        return None

    def for_loop(self, meta, c):
        var, *order, (lo, hi), body = c
        if order and str(order[0]) != "reversed":
            raise _Misuse(f"unknown loop order '{order[0]}'; a `for` range is lo:hi (upwards) "
                          "or reversed(lo:hi) (downwards)", _pos(order[0]))
        return ast.ForLoop(str(var), lo, hi, body, _pos(meta), reverse=bool(order))

    def range(self, meta, c):
        return tuple(c)

    def assume(self, meta, c):
        return ast.Assume(tuple(c), _pos(meta))

    def statement(self, meta, c):
        lhs, op, rhs, where = c
        if isinstance(lhs, Token):  # `s = ...`: the 0-d tensor s, as `s[] = ...`
            lhs = ast.Access(str(lhs), (), _pos(lhs))
        return ast.Statement(lhs, op, rhs, where or (), _pos(meta))

    def assign_op(self, meta, c):
        return str(c[0])

    def cmp_op(self, meta, c):
        return str(c[0])

    def where(self, meta, c):
        return tuple(c)

    def where_range(self, meta, c):
        var, lo, hi = c
        return ast.WhereRange(str(var), lo, hi, _pos(meta))

    def where_cond(self, meta, c):
        return ast.WhereCond(c[0], _pos(meta))

    def access(self, meta, c):
        name, *indices = c
        return ast.Access(str(name), tuple(i for i in indices if i is not None), _pos(name))

    def call(self, meta, c):
        name, *args = c
        return ast.Call(str(name), tuple(a for a in args if a is not None), _pos(name))

    def number(self, meta, c):
        return _number(c[0])

    def name(self, meta, c):
        return ast.Name(str(c[0]), _pos(c[0]))

    def compare(self, meta, c):
        # a < b <= c  means  a < b and b <= c, as in Python.
        operands, ops = c[0::2], c[1::2]
        result = None
        for left, op, right in zip(operands, ops, operands[1:], strict=False):
            cmp = ast.Compare(op, left, right, left.pos)
            result = cmp if result is None else ast.Binary("and", result, cmp, result.pos)
        return result

    def _chain(op):  # noqa: N805 - a helper that builds methods
        def fold(self, meta, c):
            result = c[0]
            for operand in c[1:]:
                result = ast.Binary(op, result, operand, result.pos)
            return result
        return fold

    or_, and_ = _chain("or"), _chain("and")
    bin_or, bin_xor, bin_and = _chain("|"), _chain("^"), _chain("&")
    shl, shr = _chain("<<"), _chain(">>")
    add, sub, mul, div, mod = _chain("+"), _chain("-"), _chain("*"), _chain("/"), _chain("%")

    def neg(self, meta, c):
        return ast.Unary("-", c[0], _pos(meta))

    def invert(self, meta, c):
        return ast.Unary("~", c[0], _pos(meta))

    def not_(self, meta, c):
        return ast.Unary("not", c[0], _pos(meta))

    def factor(self, meta, c):  # unary plus
        return c[0]


_TOKEN_TEXT = {"NAME": "a name", "NUMBER": "a number", "INOUT": "'inout'", "$END": "end of input"}


def _describe_expected(expected: set[str]) -> str:
    parser = _parser()
    words = set()
    for name in expected:
        if name in _TOKEN_TEXT:
            words.add(_TOKEN_TEXT[name])
            continue
        try:
            pattern = parser.get_terminal(name).pattern
        except KeyError:
            words.add(name)
            continue
        words.add(f"'{pattern.value}'" if pattern.type == "str" else name.lower())
    return ", ".join(sorted(words))


def position_at(source: str, offset: int) -> SourcePos:
    """The line and column of character `offset`, counting lines as lark does (by "\\n" only)."""
    line_start = source.rfind("\n", 0, offset) + 1
    return SourcePos(source.count("\n", 0, offset) + 1, offset - line_start + 1)


def end_position(source: str) -> SourcePos:
    """Just after the last character that is not a line break: where "end of input" is shown."""
    return position_at(source, len(source.rstrip("\n")))


# Brackets, comments (skipped) and runs of two or more prefix operators.
_NESTING = re.compile(r"#[^\n]*|[(\[{]|[)\]}]|(?:(?:[-+~]|\bnot\b)\s*){2,}")


def nesting_position(source: str) -> SourcePos:
    """Where the text nests deepest (brackets, or a long run of prefix operators such as
    `- - - x`): the place to show when parsing or checking runs out of recursion depth."""
    depth = deepest = at = 0
    for m in _NESTING.finditer(source):
        text = m.group()
        if text[0] == "#":
            continue
        if text in ")]}":
            depth -= 1
            continue
        if text in "([{":
            depth += 1
            score = depth
        else:
            score = depth + len(re.findall(r"[-+~]|not", text))
        if score > deepest:
            deepest, at = score, m.start()
    return position_at(source, at)


def too_deep(source: str, what: str = "expression") -> DSLSyntaxError:
    """The error for text nested beyond Python's recursion limit, shown where it nests deepest."""
    return DSLSyntaxError(f"{what} nested too deeply", nesting_position(source), source)


def parse(source: str) -> tuple[ast.KernelDef, ...]:
    """Parse DSL text into kernel definitions.

    Raises `DSLSyntaxError` with a position if the text is malformed."""
    try:
        tree = _parser().parse(source)
        return _ToAst().transform(tree)
    except lark.exceptions.UnexpectedCharacters as e:
        char = source[e.pos_in_stream] if e.pos_in_stream < len(source) else "end of input"
        msg = f"unexpected character {char!r}"
        if e.allowed:
            msg += f"; expected {_describe_expected(e.allowed)}"
        raise DSLSyntaxError(msg, SourcePos(e.line, e.column), source) from None
    except lark.exceptions.UnexpectedEOF as e:
        pos = end_position(source)
        msg = f"unexpected end of input; expected {_describe_expected(set(e.expected))}"
        raise DSLSyntaxError(msg, pos, source) from None
    except lark.exceptions.UnexpectedToken as e:
        if e.token.type == "$END":
            pos = end_position(source)
            found = "end of input"
        else:
            pos = SourcePos(e.line, e.column)
            found = repr(str(e.token))
        msg = f"unexpected {found}; expected {_describe_expected(set(e.expected))}"
        raise DSLSyntaxError(msg, pos, source) from None
    except lark.exceptions.VisitError as e:
        if isinstance(e.orig_exc, _Misuse):
            raise DSLSyntaxError(e.orig_exc.message, e.orig_exc.pos, source) from None
        if isinstance(e.orig_exc, RecursionError):
            raise too_deep(source) from None
        raise
    except RecursionError:
        raise too_deep(source) from None
