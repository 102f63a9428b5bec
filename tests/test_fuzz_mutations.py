"""Each kind of hostile edit on its own, through every stage up to C source; a sample through gcc;
and the regressions the fuzzer found.

The edits are those of tests/fuzz/mutations.py (the long-running fuzzer,
tests/fuzz/atheris_frontend.py, uses the same ones). Every outcome is a result or a
`LoopweaveError` whose position lies in the text (`mutations.check_error`), within a time limit.
"""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
from fuzz.mutations import (
    EDITS,
    HOSTILE_CHARS,
    HUGE_LITERALS,
    SOURCES,
    check_error,
    check_outcome,
    mutate,
    tokens,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import loopweave
from loopweave import DSLSyntaxError, DSLTypeError, LoopweaveError
from loopweave.driver import front_end, stages

COPY = "kernel copy(A: f32[N]) -> B: f32[N] {\n    B[i] = A[i]\n}\n"
def fuzz_settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))


def error_of(text: str, run=front_end) -> LoopweaveError:
    """The error `run(text)` raises, checked by the fuzzing rule."""
    with pytest.raises(LoopweaveError) as info:
        run(text)
    check_error(info.value, text)
    return info.value


@pytest.mark.parametrize("edit", EDITS)
@fuzz_settings(25)
@given(text=st.sampled_from(SOURCES), rng=st.randoms(use_true_random=False))
def test_each_edit_gives_source_or_a_located_error(edit, text, rng):
    check_outcome(mutate(text, rng, (edit,)), stages)


# Edits that mostly keep a kernel well formed, so that many reach the C compiler.
MILD_EDITS = ("rename", "operator", "literal", "long_name", "unicode", "duplicate")


@pytest.mark.slow
@fuzz_settings(20)
@given(text=st.sampled_from(SOURCES), rng=st.randoms(use_true_random=False))
def test_a_sample_builds_with_gcc(text, rng):
    check_outcome(mutate(text, rng, MILD_EDITS),
                  lambda t: loopweave.compile(t, cflags="-O0"), seconds=120)


# -- hostile characters ----------------------------------------------------------------------------

@pytest.mark.parametrize("char", HOSTILE_CHARS, ids=ascii)
def test_hostile_characters_in_a_comment_change_nothing(char):
    # A comment ends at "\n" only: the other line breaks, bidi overrides and NUL stay inside.
    text = COPY.replace("B[i] = A[i]", f"B[i] = A[i]  # {char} \u202e}}{{ {char}")
    assert stages(text).source == stages(COPY).source


@pytest.mark.parametrize("char", [c for c in HOSTILE_CHARS  # not whitespace, not an operator
                                  if not c.isspace() and c[0] not in "*/#"], ids=ascii)
def test_hostile_characters_in_a_name_are_a_syntax_error_at_them(char):
    text = COPY.replace("B[i] = A[i]", f"B[i] = A{char}x[i]")
    e = error_of(text)
    assert isinstance(e, DSLSyntaxError) and (e.line, e.column) == (2, 13), str(e)


def test_non_ascii_digits_are_not_numbers():
    # `\d` of Python's re matches them; int() would accept them too.
    for digits in ("\u0663", "\uff11", "\U0001d7d8"):
        e = error_of(COPY.replace("A[i]", f"A[i] * {digits}"))
        assert isinstance(e, DSLSyntaxError), e


# -- literals, names, nesting --------------------------------------------------------------------

@pytest.mark.parametrize("literal", HUGE_LITERALS, ids=lambda s: s[:24])
def test_huge_literals(literal):
    src = f"kernel k(A: f64[N]) -> B: f64[N] {{\n    B[i] = A[i] + {literal}\n}}\n"
    result = check_outcome(src, stages)
    if not isinstance(result, Exception):
        code = re.sub(r"/\*.*?\*/", "", result.source, flags=re.S)  # the prelude's comments
        assert not re.search(r"\binf\b", code.replace("INFINITY", "")), result.source


@pytest.mark.slow
def test_a_kernel_with_very_long_names_builds_and_runs():
    long = "x" * 100_000
    src = (f"kernel k{long}(A{long}: f32[N{long}]) -> B: f32[N{long}] {{\n"
           f"    B[i{long}] = A{long}[i{long}] * 2.0\n}}\n")
    k = loopweave.compile(src, cflags="-O0")
    a = np.arange(7, dtype=np.float32)
    np.testing.assert_array_equal(k(a), 2 * a)


def test_deep_parentheses_are_fine():
    text = COPY.replace("A[i]", "A[i] + " + "(" * 20_000 + "A[i]" + ")" * 20_000)
    assert "B[c0] = A[c0] + A[c0];" in stages(text).source


def test_deep_brackets_point_at_the_deepest_place():
    text = COPY.replace("A[i]", "A[i] + " + "A[" * 20_000 + "i" + "]" * 20_000)
    e = error_of(text)
    assert isinstance(e, DSLSyntaxError) and "nested too deeply" in e.message
    line = text.split("\n")[1]
    assert e.line == 2 and e.column == line.rindex("[") + 1  # the innermost bracket


def test_a_long_run_of_prefix_operators_points_at_its_start():
    text = COPY.replace("A[i]", "A[i] * " + "- " * 5000 + "A[i]")
    e = error_of(text)
    assert "nested too deeply" in e.message and (e.line, e.column) == (2, 19)


def test_too_many_nested_loops_is_an_error_not_a_long_wait():
    depth = 40  # isl alone would need seconds per statement, growing steeply
    loops = "".join(f"for t{d} in 0:2 {{ " for d in range(depth))
    text = f"kernel k(A: inout f32[N]) {{ {loops} A[i] += 1.0 {'}' * depth} }}"
    e = error_of(text)
    assert isinstance(e, DSLTypeError) and "41 nested loops" in e.message
    assert "at most 32" in e.message and e.column == text.index("A[i] +=") + 1


def test_loops_nested_to_the_limit_still_compile():
    loops = "".join(f"for t{d} in 0:2 {{ " for d in range(30))
    text = f"kernel k(A: inout f32[N]) {{ {loops} A[i] += 1.0 {'}' * 30} }}"
    assert front_end(text).name == "k"


@pytest.mark.parametrize("depth", [400, 3000])
def test_deeply_nested_loops_beyond_the_recursion_limit(depth):
    loops = "".join(f"for t{d} in 0:2 {{ " for d in range(depth))
    check_outcome(f"kernel k(A: inout f32[N]) {{ {loops} A[i] += 1.0 {'}' * depth} }}", stages)


# -- regressions ----------------------------------------------------------------------------------

def test_a_range_that_refers_to_its_own_variable_is_reported():
    # Found by the fuzzer: the domain had no lower bound and isl's code generator failed.
    text = ("kernel m(X: f32[C, H, W]) -> O: f32[C, H / 2, W / 2] {\n"
            "    O[c, y, x] max= X[c, 2 * y + dy, 2 * x] where dy in 0:2, dx in dx:2\n}\n")
    e = error_of(text)
    assert isinstance(e, DSLTypeError) and "range of 'dx' has no finite bounds" in e.message
    assert (e.line, e.column) == (2, 62)


def test_ranges_that_bound_each_other_only_are_reported():
    text = COPY.replace("B[i] = A[i]", "B[i] += A[i] where j in k:N, k in j:N")
    e = error_of(text)
    assert "no finite bounds" in e.message and e.line == 2


def test_several_kernels_without_a_choice_points_at_the_second():
    text = COPY + COPY.replace("copy", "copy2")
    e = error_of(text)
    assert "defines 2 kernels" in e.message and (e.line, e.column) == (4, 1)
    e = error_of(text, lambda t: front_end(t, "nope"))
    assert "no kernel named 'nope'" in e.message and (e.line, e.column) == (1, 1)


def test_lines_are_counted_as_the_parser_counts_them():
    # U+2028 and \x0c break lines for str.splitlines(), not for the parser: an error after them
    # must name the parser's line and show that line.
    text = "kernel k(A: f32[N]) -> B: f32[N] {  # \u2028 \x0c\n    B[i] = A[i]\n"
    e = error_of(text)  # the closing brace is missing
    assert (e.line, e.column) == (2, 16) and "end of input" in e.message
    assert str(e).split("\n")[1].strip() == "B[i] = A[i]"
    e = error_of(text.replace("A[i]\n", "A[i] $\n}"))
    assert (e.line, e.column) == (2, 17) and str(e).split("\n")[1].strip() == "B[i] = A[i] $"


def test_many_statements():
    body = "\n".join(f"    t{n}[i] = A[i] + {n}.0" for n in range(300))
    text = f"kernel k(A: f32[N]) -> B: f32[N] {{\n{body}\n    B[i] = t299[i]\n}}\n"
    check_outcome(text, front_end)
    # The default schedule is skipped: its fusion search takes minutes on 300 statements.
    check_outcome(text, lambda t: stages(t, schedule=loopweave.Schedule()))


def test_contradictory_assumptions_do_not_break_the_statements_after_them():
    # Found by the fuzzer: with the context empty, a temporary's shape had no expression and
    # isl's AST builder failed ("cannot handle void expression").
    text = ("kernel k(X: f32[K], W: u8[K / 2, N], s: f32[N]) -> Y: f32[K, N] {\n"
            "    assume 2 == 0\n"
            "    Wd[k, j] = f32(W[k / 2, j]) * s[j] where k in 0:K\n    Y[k, j] = Wd[k, j]\n}\n")
    e = error_of(text)
    assert "assumptions contradict" in e.message and (e.line, e.column) == (2, 5)


def test_random_mutations_are_reproducible():
    text = SOURCES[0]
    assert mutate(text, random.Random(5)) == mutate(text, random.Random(5))
    assert tokens("a+=b # c") == ["a", "+=", "b"]


def test_a_kernel_whose_statements_run_no_instance_compiles_and_runs():
    """A deletion left seidel-2d's sweep an empty range (`i in 1:1`): the loop nest has no
    statement, and the C renderer's block of nothing raised ValueError from zip."""
    source = ("kernel k(A: inout f32[N, N], T: i32) {\n    for t in 0:T {\n"
              "        A[i, j] = A[i, j] / 9.0  where i in 1:1, j in 1:N-1\n    }\n}\n")
    kernel = loopweave.compile(source, tuning_db=False, cost_model=False)
    a = np.arange(16, dtype=np.float32).reshape(4, 4)
    kernel(a, 3)
    np.testing.assert_array_equal(a, np.arange(16, dtype=np.float32).reshape(4, 4))
