"""Fuzzing the front end: any text gives a KernelIR or raises a LoopweaveError, nothing else.

The inputs are the example kernels of examples/kernels/*.lw, mutated: tokens inserted, deleted,
swapped or duplicated, random characters (Unicode included) spliced in, huge integer literals,
deeply nested parentheses. Most examples go through `front_end()` only (parse + check, no C
build, so hundreds run in seconds); a few go through the whole `compile()`.
A `DSLError` that carries a position must point inside the text.
"""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import loopweave
from loopweave.driver import front_end
from loopweave.errors import DSLError, LoopweaveError
from loopweave.ir.kernel import KernelIR

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples" / "kernels").glob("*.lw"))
SOURCES = [p.read_text() for p in EXAMPLES]

# Tokens of the DSL (and a few that are not), to insert or to split a text into.
_TOKEN_RE = re.compile(r"max=|min=|[A-Za-z_]\w*|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\+=|\*=|<=|>=|==|"
                       r"!=|<<|>>|->|\S")
_NAME_RE = re.compile(r"[A-Za-z_]\w*")
OPERATORS = ["+", "-", "*", "/", "%", "<<", ">>", "&", "|", "^", "<", "<=", "==", "!=", "and",
             "or", "=", "+=", "*=", "max=", "min=", ",", ":"]
VOCABULARY = ["kernel", "for", "in", "where", "assume", "inout", "and", "or", "not", "->", "{",
              "}", "(", ")", "[", "]", ",", ":", ";", "=", "+=", "*=", "max=", "min=", "+", "-",
              "*", "/", "%", "<<", ">>", "&", "|", "^", "~", "<", "<=", "==", "!=", ">", ">=",
              "i", "j", "k", "N", "M", "A", "B", "C", "x", "f32", "f64", "i8", "i32", "u8", "f16",
              "bf16", "exp", "select", "max", "pow", "0", "1", "-1", "2.5", "1e400", "0x10",
              str(10**40), str(-(10**40)), str(2**63), "#", "\n", "\t", "é", "∑", "\x00"]


def tokens(text: str) -> list[str]:
    """The DSL tokens of `text`, comments dropped (a `#` would hide the rest of a joined line)."""
    return _TOKEN_RE.findall(re.sub(r"#[^\n]*", "", text))


SYNTAX_EDITS = ("insert", "delete", "swap", "replace", "duplicate", "char", "bigint", "nest")
SEMANTIC_EDITS = ("rename", "operator", "bigint", "nest")  # mostly still parse


@st.composite
def mutated_source(draw, edits=SYNTAX_EDITS + SEMANTIC_EDITS) -> str:
    """An example kernel with a few random `edits`, joined back into text."""
    toks = tokens(draw(st.sampled_from(SOURCES)))
    for _ in range(draw(st.integers(1, 4))):
        if not toks:
            break
        at = draw(st.integers(0, len(toks) - 1))
        edit = draw(st.sampled_from(edits))
        names = [t for t in toks if _NAME_RE.fullmatch(t)]
        if edit == "rename":  # another name of the kernel: mostly well-formed, often ill-typed
            toks[at] = draw(st.sampled_from(names)) if _NAME_RE.fullmatch(toks[at]) else toks[at]
        elif edit == "operator":
            if toks[at] in OPERATORS:
                toks[at] = draw(st.sampled_from(OPERATORS))
        elif edit == "insert":
            toks.insert(at, draw(st.sampled_from(VOCABULARY)))
        elif edit == "delete":
            del toks[at]
        elif edit == "swap":
            other = draw(st.integers(0, len(toks) - 1))
            toks[at], toks[other] = toks[other], toks[at]
        elif edit == "replace":
            toks[at] = draw(st.sampled_from(VOCABULARY))
        elif edit == "duplicate":
            toks.insert(at, toks[at])
        elif edit == "char":
            toks.insert(at, draw(st.text(min_size=1, max_size=3)))
        elif edit == "bigint":
            big = str(draw(st.sampled_from([10**40, 2**63, 2**64, 2**31, -(2**63)])))
            if toks[at].isdigit():
                toks[at] = big
            else:
                toks.insert(at, big)
        else:  # wrap one token in deep parentheses
            depth = draw(st.sampled_from([1, 50, 2000]))
            toks[at] = "(" * depth + toks[at] + ")" * depth
    sep = draw(st.sampled_from([" ", "\n", " \n "]))
    return sep.join(toks)


# -- kernels built from the grammar: they parse, so they exercise the checker ----------------------

SIGNATURE = "kernel g(A: f32[N], B: f64[N, M], I: i32[M], s: f32, n: i32) -> C: f32[N]"
LEAVES = ["A[i]", "B[i, j]", "I[j]", "s", "n", "i", "j", "N", "M", "k", "1", "2.5", "-3", "0x7f",
          str(10**40), "1e400", "C[i]", "A", "t[i]", "q"]
BINARY = ["+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>", "<", "<=", "==", "!=", "and", "or"]
CALLS = ["exp", "max", "select", "f32", "i32", "f64", "abs", "pow", "nope"]


def expressions(leaves=LEAVES) -> st.SearchStrategy[str]:
    """Random DSL expressions: operators, calls, accesses with expressions as indices."""
    def extend(inner):
        return st.one_of(
            st.tuples(inner, st.sampled_from(BINARY), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(st.sampled_from(["-", "~", "not "]), inner).map("".join),
            st.tuples(st.sampled_from(CALLS), st.lists(inner, min_size=0, max_size=3)).map(
                lambda t: f"{t[0]}({', '.join(t[1])})"),
            st.tuples(st.sampled_from(["A", "B", "I", "t"]), st.lists(inner, min_size=1,
                                                                       max_size=2)).map(
                lambda t: f"{t[0]}[{', '.join(t[1])}]"))
    return st.recursive(st.sampled_from(leaves), extend, max_leaves=8)


@st.composite
def generated_kernel(draw) -> str:
    """A kernel whose statements are random (well-formed) expressions over a fixed signature."""
    lines = [SIGNATURE + " {"]
    if draw(st.booleans()):
        lines.append(f"    assume {draw(expressions(['N', 'M', 'n', '1', str(2**70), 'i']))}")
    for _ in range(draw(st.integers(1, 3))):
        lhs = draw(st.sampled_from(["C[i]", "C[i + 1]", "t[i]", "t[i, j]", "A[i]", "C[j]", "s[i]",
                                    "C[I[i]]", "C[2 * i]"]))
        op = draw(st.sampled_from(["=", "+=", "max=", "*="]))
        where = draw(st.sampled_from(["", " where j in 0:M", " where i in 0:N",
                                      " where i in 0:N, j in i:M"]))
        if draw(st.booleans()):
            where += f"{' and' if where else ' where'} {draw(expressions())}"
        lines.append(f"    {lhs} {op} {draw(expressions())}{where}")
    lines.append("    C[i] = A[i]")
    return "\n".join(lines) + "\n}"


def check_outcome(text: str, run) -> None:
    """`run(text)` returns normally or raises a LoopweaveError whose position lies in `text`."""
    try:
        result = run(text)
    except LoopweaveError as e:
        if isinstance(e, DSLError) and e.pos is not None:
            n_lines = len(text.splitlines())
            assert 1 <= e.line <= n_lines + 1, (e.line, n_lines, str(e))
            assert e.column >= 1, (e.column, str(e))
        str(e)  # rendering the message must not fail either
        return
    assert isinstance(result, KernelIR | loopweave.Kernel)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_source())
def test_front_end_never_leaks_an_internal_error(text):
    check_outcome(text, lambda t: front_end(t))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_source(SEMANTIC_EDITS))
def test_checker_never_leaks_an_internal_error(text):
    check_outcome(text, lambda t: front_end(t))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated_kernel())
def test_checker_on_generated_kernels(text):
    check_outcome(text, lambda t: front_end(t))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_front_end_on_arbitrary_text(text):
    check_outcome(text, lambda t: front_end(t))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_source())
def test_compile_never_leaks_an_internal_error(text):
    check_outcome(text, lambda t: loopweave.compile(t, target="cpu"))
