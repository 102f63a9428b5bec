"""Fuzzing the front end: any text gives a KernelIR or raises a LoopweaveError, nothing else.

The inputs are the example kernels of examples/kernels/*.lw, mutated by tests/fuzz/mutations.py
(tokens inserted, deleted, swapped or duplicated, random Unicode, huge literals, deep nesting),
kernels generated from the grammar, and arbitrary text. Most examples go through `front_end()`
only (parse + check, no C build, so hundreds run in seconds); a few go through `compile()`.
A `DSLError` must carry a position inside the text (`mutations.check_error`).
tests/test_fuzz_mutations.py tries each kind of edit on its own and the later stages.
"""

from __future__ import annotations

from fuzz.mutations import EDITS, SOURCES, check_outcome, mutate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import loopweave
from loopweave.driver import front_end

SEMANTIC_EDITS = ("rename", "operator", "literal", "nest")  # mostly still parse


def mutated_source(edits: tuple[str, ...] = EDITS) -> st.SearchStrategy[str]:
    """An example kernel with a few random `edits` (hypothesis drives the random choices)."""
    return st.builds(lambda text, rng: mutate(text, rng, edits), st.sampled_from(SOURCES),
                     st.randoms(use_true_random=False))


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
