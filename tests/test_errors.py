"""Every kind of user mistake gives a loopweave exception whose message says what and where.

Front-end errors are checked through `front_end()` (parse + check, no C build); build, target and
call-time errors through `compile()` and calls of the compiled kernel.
"""

from __future__ import annotations

import numpy as np
import pytest

import loopweave
from loopweave import (
    ArgumentTypeError,
    ArgumentValueError,
    BoundsError,
    CompileError,
    DSLError,
    DSLSyntaxError,
    DSLTypeError,
    LoopweaveError,
    TargetError,
)
from loopweave.driver import front_end

COPY = "kernel copy(A: f32[N]) -> B: f32[N] {\n    B[i] = A[i]\n}\n"


def kernel(body: str, signature: str = "A: f32[N]", outputs: str = "-> B: f32[N]") -> str:
    """A kernel `k` with one body line per line of `body` (the body starts on line 2)."""
    lines = "\n".join(f"    {line}" for line in body.splitlines())
    return f"kernel k({signature}) {outputs} {{\n{lines}\n}}\n"


def error_of(source: str, cls: type[LoopweaveError], kernel_name: str | None = None):
    """The exception `front_end(source)` raises; it must be exactly of class `cls`."""
    with pytest.raises(cls) as info:
        front_end(source, kernel_name)
    assert type(info.value) is cls, f"{type(info.value).__name__}: {info.value}"
    return info.value


# -- syntax ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("source, line, column, found, expected", [
    pytest.param(kernel("B[i] = A[i]")[:-2], 2, 16, "unexpected end of input", "'}'",
                 id="missing-brace"),
    pytest.param(kernel("B[i] = A[i] $ 2"), 2, 17, "unexpected character '$'", "'+'",
                 id="bad-character"),
    pytest.param(kernel("B[i] = A[i] \u00e9"), 2, 17, "unexpected character '\u00e9'", "'*'",
                 id="unicode-character"),
    pytest.param("kernel k(A: f32[N]) -> B: f32[N] {\n    B[i] = ", 2, 12,
                 "unexpected end of input", "a name", id="end-of-input"),
    pytest.param(kernel("B[i] /= A[i]"), 2, 10, "unexpected '/'", "'-='", id="bad-assign-op"),
    pytest.param(kernel("B[i] := A[i]"), 2, 10, "unexpected ':'", "'max='", id="walrus"),
    pytest.param("", 1, 1, "unexpected end of input", "'kernel'", id="empty"),
])
def test_syntax_error(source, line, column, found, expected):
    e = error_of(source, DSLSyntaxError)
    assert (e.line, e.column) == (line, column)
    assert found in e.message and "expected" in e.message and expected in e.message
    # The offending line and a caret under the column.
    text = str(e)
    assert text.startswith(f"line {line}, column {column}:")
    if source:
        shown, caret = text.splitlines()[-2:]
        src_line = source.splitlines()[line - 1]
        # Both lines are indented alike; at the end of the input the caret is past the text.
        assert (shown + " ")[caret.index("^")] == (src_line + " ")[column - 1]


def test_caret_points_at_the_column():
    e = error_of(kernel("B[i] = A[i] $ 2"), DSLSyntaxError)
    shown, caret = str(e).splitlines()[-2:]
    assert shown[caret.index("^")] == "$"


def test_deep_nesting_is_a_syntax_error_or_fine():
    deep = kernel("B[i] = " + "-" * 5000 + "A[i]")
    e = error_of(deep, DSLSyntaxError)
    assert "nested too deeply" in e.message
    assert front_end(kernel("B[i] = " + "(" * 2000 + "A[i]" + ")" * 2000)) is not None


# -- signature -------------------------------------------------------------------------------------

def test_unknown_dtype():
    e = error_of(kernel("B[i] = A[i]", "A: f33[N]"), DSLTypeError)
    assert (e.line, e.column) == (1, 13)
    assert "unknown type 'f33'" in e.message and "'A'" in e.message and "f32" in e.message


def test_duplicate_parameter():
    e = error_of(kernel("B[i] = A[i]", "A: f32[N], A: f32[N]"), DSLTypeError)
    assert (e.line, e.column) == (1, 21)
    assert "'A' is declared twice" in e.message and "line 1, column 10" in e.message


def test_scalar_cannot_be_inout():
    e = error_of(kernel("B[i] = A[i]", "a: inout f32, A: f32[N]"), DSLTypeError)
    assert (e.line, e.column) == (1, 10) and "scalar 'a' cannot be inout" in e.message


# -- names, ranks, writes --------------------------------------------------------------------------

@pytest.mark.parametrize("body, signature, line, column, words", [
    pytest.param("B[i] = Q[i]", "A: f32[N]", 2, 12, ["unknown tensor 'Q'"], id="unknown-tensor"),
    pytest.param("B[i] = A[i] * alpha", "A: f32[N]", 2, 19, ["unknown name 'alpha'"],
                 id="unknown-name"),
    pytest.param("B[i] = A", "A: f32[N]", 2, 12, ["tensor 'A' is used without indices"],
                 id="tensor-without-indices"),
    pytest.param("B[i] = A[i, i]", "A: f32[N]", 2, 12, ["'A' has rank 1", "2 index(es)"],
                 id="rank-on-read"),
    pytest.param("B[i, i] = A[i]", "A: f32[N]", 2, 5, ["'B' has rank 1", "written with 2"],
                 id="rank-on-write"),
    pytest.param("A[i] = 1.0\nB[i] = A[i]", "A: f32[N]", 2, 5,
                 ["cannot write input 'A'", "inout"], id="write-input"),
    pytest.param("a[i] = A[i]\nB[i] = A[i]", "a: f32, A: f32[N]", 2, 5,
                 ["cannot assign to 'a'", "scalar parameter"], id="write-scalar"),
])
def test_names_ranks_and_writes(body, signature, line, column, words):
    e = error_of(kernel(body, signature), DSLTypeError)
    assert (e.line, e.column) == (line, column)
    for w in words:
        assert w in e.message


def test_inout_may_be_written():
    assert front_end(kernel("A[i] = 2.0 * A[i]", "A: inout f32[N]", "")) is not None


# -- value types -----------------------------------------------------------------------------------

@pytest.mark.parametrize("rhs, column, words", [
    pytest.param("A[i] + D[i]", 12, ["'+'", "f32 and f64", "f32(...)"], id="f32-plus-f64"),
    pytest.param("A[i] & A[i]", 12, ["'&' needs integer operands", "f32"], id="bit-op-on-float"),
    pytest.param("~A[i]", 12, ["'~' needs an integer"], id="invert-float"),
    pytest.param("foo(A[i])", 12, ["unknown function 'foo'", "exp", "select"],
                 id="unknown-function"),
    pytest.param("exp(A[i], A[i])", 12, ["exp() takes 1 argument(s), not 2"], id="arity"),
    pytest.param("select(A[i] > 0, 1.0)", 12, ["select() takes 3"], id="select-arity"),
    pytest.param("f32()", 12, ["cast f32(x) takes one argument, not 0"], id="cast-arity"),
    pytest.param("A[i] < 2.0", 12, ["the right side is a condition", "select"], id="bool-value"),
    pytest.param("select(1 < (A[i] < 2.0), 1.0, 0.0)", 19,
                 ["a number where a bool is needed"], id="number-compared-with-bool"),
    pytest.param("A[i] + 100000000000000000000", 19, ["integer literal", "64 bits"],
                 id="huge-literal"),
    pytest.param("A[i] * 1e400", 19, ["float literal out of range"], id="huge-float"),
])
def test_value_type_errors(rhs, column, words):
    e = error_of(kernel(f"B[i] = {rhs}", "A: f32[N], D: f64[N]"), DSLTypeError)
    assert (e.line, e.column) == (2, column)
    for w in words:
        assert w in e.message


def test_cast_resolves_the_type_mismatch():
    assert front_end(kernel("B[i] = A[i] + f32(D[i])", "A: f32[N], D: f64[N]")) is not None


def test_literal_that_does_not_fit_the_target_type():
    e = error_of(kernel("B[i] = A[i] + 300", "A: i8[N]", "-> B: i8[N]"), DSLTypeError)
    assert "literal 300 does not fit in i8" in e.message


# -- indices and ranges ----------------------------------------------------------------------------

@pytest.mark.parametrize("body, signature, outputs, line, column, words", [
    pytest.param("B[i, j] = A[i * j]", "A: f32[N]", "-> B: f32[N, N]", 2, 17,
                 ["index 0 of 'A' is not affine", "product of two variables"],
                 id="product-of-indices"),
    pytest.param("B[i] = A[I[i] + 1]", "A: f32[N], I: i32[N]", "-> B: f32[N]", 2, 14,
                 ["index 0 of 'A' is not affine", "tensor value (I[...]) may only be a whole"],
                 id="tensor-value-inside-an-index"),
    pytest.param("B[i] = A[i / 0]", "A: f32[N]", "-> B: f32[N]", 2, 14,
                 ["'/' needs a positive integer constant"], id="division-by-zero"),
    pytest.param("B[i] = A[i, j]", "A: f32[N, M]", "-> B: f32[N]", 2, 17,
                 ["index 'j' is free on the right of '='", "reduction"], id="free-index"),
    pytest.param("B[i] = A[i + j]", "A: f32[N]", "-> B: f32[N]", 2, 18,
                 ["cannot infer the range of index 'j'", "where j in lo:hi"],
                 id="range-not-inferable"),
    pytest.param("B[i] = A[i] where i + 1", "A: f32[N]", "-> B: f32[N]", 2, 23,
                 ["`where` condition", "comparison"], id="where-not-a-condition"),
    pytest.param("B[i] = A[i] where i in (i < 2):N", "A: f32[N]", "-> B: f32[N]", 2, 29,
                 ["lower bound of 'i'", "condition is not an integer"],
                 id="condition-as-bound"),
    pytest.param("assume N\nB[i] = A[i]", "A: f32[N]", "-> B: f32[N]", 2, 12,
                 ["'assume' needs", "comparison"], id="assume-not-a-condition"),
    pytest.param("assume N < 0\nB[i] = A[i]", "A: f32[N]", "-> B: f32[N]", 2, 5,
                 ["assumptions contradict"], id="contradictory-assume"),
    pytest.param("for t in 0:1.5 {\n    B[i] = A[i]\n}", "A: f32[N]", "-> B: f32[N]", 2, 5,
                 ["bounds of loop 't'", "float"], id="float-loop-bound"),
])
def test_index_errors(body, signature, outputs, line, column, words):
    e = error_of(kernel(body, signature, outputs), DSLTypeError)
    assert (e.line, e.column) == (line, column)
    for w in words:
        assert w in e.message


def test_extents_that_disagree():
    e = error_of(kernel("C[i] = A[i] + B[i]", "A: f32[N], B: f32[M]", "-> C: f32[N]"),
                 DSLTypeError)
    assert (e.line, e.column) == (2, 21)  # the `i` of B[i]
    for w in ("index 'i'", "'C' (extent N)", "'B' (extent M)", "where i in lo:hi", "assume"):
        assert w in e.message


def test_assume_makes_extents_agree():
    source = kernel("assume N == M\nC[i] = A[i] + B[i]", "A: f32[N], B: f32[M]", "-> C: f32[N]")
    assert front_end(source) is not None


def test_explicit_range_then_needs_bounds_for_the_other_tensor():
    e = error_of(kernel("C[i] = A[i] + B[i] where i in 0:N", "A: f32[N], B: f32[M]",
                        "-> C: f32[N]"), BoundsError)
    assert "B[i]" in e.message and "out of bounds" in e.message and "M=0" in e.message
    fixed = kernel("assume M >= N\nC[i] = A[i] + B[i] where i in 0:N", "A: f32[N], B: f32[M]",
                   "-> C: f32[N]")
    assert front_end(fixed) is not None


# -- bounds ----------------------------------------------------------------------------------------

def test_out_of_bounds_with_counterexample():
    e = error_of(kernel("B[i] = A[i + 1]"), BoundsError)
    assert isinstance(e, DSLTypeError)
    assert (e.line, e.column) == (2, 5)
    # The counterexample: sizes, the iteration, the element read.
    for w in ("A[i + 1] may be out of bounds", "N=1", "(i=0)", "reads A[1]", "f32[N]"):
        assert w in e.message


def test_out_of_bounds_write():
    e = error_of(kernel("B[i + 1] = A[i] where i in 0:N"), BoundsError)
    assert "writes B[" in e.message


def test_assume_fixes_the_bounds():
    source = kernel("B[i] = A[i + 1] where i in 0:N - 1", "A: f32[N]", "-> B: f32[N]")
    assert front_end(source) is not None
    source = kernel("assume M < N\nB[i] = A[i + 1]", "A: f32[N], Z: f32[M]", "-> B: f32[M]")
    assert front_end(source) is not None


# -- several errors --------------------------------------------------------------------------------

def test_several_errors_are_reported_together():
    source = kernel("B[i] = Q[i]\nB[i] = A[i] * zz\nB[i] = foo(A[i])")
    e = error_of(source, DSLTypeError)
    assert [(x.line, x.column) for x in e.errors] == [(2, 12), (3, 19), (4, 12)]
    assert [type(x) for x in e.errors] == [DSLTypeError] * 3
    assert (e.line, e.column) == (2, 12) and e.message == "unknown tensor 'Q'"
    text = str(e)
    assert "(2 more error(s) below)" in text
    # Each error shows its own line and caret, in order.
    positions = [text.index(w) for w in ("'Q'", "Q[i]", "more error", "'zz'", "'foo'")]
    assert positions == sorted(positions)


def test_several_bounds_errors_keep_their_class():
    e = error_of(kernel("B[i] = A[i + 1]\nB[i] = A[i + 2]"), BoundsError)
    assert len(e.errors) == 2 and all(isinstance(x, BoundsError) for x in e.errors)


# -- kernel selection ------------------------------------------------------------------------------

TWO = COPY + COPY.replace("copy", "copy2")


def test_several_kernels_need_a_name():
    e = error_of(TWO, DSLError)
    assert "2 kernels" in str(e) and "copy, copy2" in str(e) and "kernel=" in str(e)
    assert front_end(TWO, "copy2").name == "copy2"


def test_wrong_kernel_name():
    e = error_of(TWO, DSLError, "copy3")
    assert "no kernel named 'copy3'" in str(e) and "copy, copy2" in str(e)


def test_source_must_be_text():
    with pytest.raises(ArgumentTypeError, match="DSL source text, not bytes"):
        loopweave.compile(COPY.encode())


# -- target and toolchain --------------------------------------------------------------------------

def test_unknown_target():
    with pytest.raises(TargetError, match="unknown target 'tpu'.*'cpu'"):
        loopweave.compile(COPY, target="tpu")


def test_c_compiler_failure_is_a_compile_error():
    with pytest.raises(CompileError, match="-fno-such-flag"):
        loopweave.compile(COPY, cflags=["-O1", "-fno-such-flag"])


def test_source_broken_by_a_macro_is_a_compile_error():
    # Every kernel computes sizes in int64_t: redefining it breaks the generated source.
    with pytest.raises(CompileError, match="error"):
        loopweave.compile(COPY, cflags=["-Dint64_t=(", "-O0"])


def test_c_compiler_that_cannot_run_is_a_target_error():
    with pytest.raises(TargetError, match="'false'"):
        loopweave.compile(COPY, cc="false")
    with pytest.raises(TargetError, match="cannot be run"):
        loopweave.compile(COPY, cc="/nonexistent/cc")


def test_cflags_as_one_string_or_bad_type():
    assert loopweave.compile(COPY, cflags="-O1") is not None
    with pytest.raises(ArgumentTypeError, match="cflags must be a list of strings"):
        loopweave.compile(COPY, cflags=[1, 2])


# -- call time -------------------------------------------------------------------------------------

CALLED = ("kernel k(A: f32[N], B: f32[N], n: i8, C: inout f32[N]) -> D: f32[N] {\n"
          "    assume N >= 2\n"
          "    D[i] = A[i] + B[i] + f32(n) + C[i]\n"
          "}\n")


@pytest.fixture(scope="module")
def called():
    return loopweave.compile(CALLED)


def ones(n: int = 4, dtype=np.float32) -> np.ndarray:
    return np.ones(n, dtype)


def test_a_good_call(called):
    out = called(ones(), ones(), 3, ones())
    assert np.array_equal(out, np.full(4, 6, np.float32))


def read_only() -> np.ndarray:
    a = ones()
    a.flags.writeable = False
    return a


def shared_memory():
    big = ones(8)
    return (big[:4], ones(), 1, big[2:6])


@pytest.mark.parametrize("make_args, cls, words", [
    pytest.param(lambda: (ones(), ones()), ArgumentTypeError,
                 ["k() takes 4 argument(s) (A, B, n, C), got 2"], id="argument-count"),
    pytest.param(lambda: (ones(dtype=np.float64), ones(), 1, ones()), ArgumentTypeError,
                 ["argument 'A'", "float32", "not float64"], id="dtype"),
    pytest.param(lambda: (ones().reshape(2, 2), ones(), 1, ones()), ArgumentValueError,
                 ["argument 'A' must have 1 dimension(s), not 2"], id="rank"),
    pytest.param(lambda: (ones(), ones(5), 1, ones()), ArgumentValueError,
                 ["argument 'B'", "shape (5,)", "dimension 0 must be N = 4"], id="sizes"),
    pytest.param(lambda: (ones(), ones(), 1, ones(8)[::2]), ArgumentValueError,
                 ["argument 'C' is inout but not C-contiguous", "ascontiguousarray"],
                 id="non-contiguous-inout"),
    pytest.param(lambda: (ones(), ones(), 1, read_only()), ArgumentValueError,
                 ["argument 'C' is inout but read-only"], id="read-only-inout"),
    pytest.param(lambda: ([1.0] * 4, ones(), 1, ones()), ArgumentTypeError,
                 ["argument 'A' must be a numpy array", "f32[N]", "not list"], id="not-an-array"),
    pytest.param(lambda: (ones(), ones(), 300, ones()), ArgumentValueError,
                 ["argument 'n' = 300 does not fit in i8"], id="scalar-out-of-range"),
    pytest.param(lambda: (ones(), ones(), 1.5, ones()), ArgumentTypeError,
                 ["argument 'n' must be an integer (i8)"], id="scalar-not-integer"),
    pytest.param(lambda: (ones(), ones(), "1", ones()), ArgumentTypeError,
                 ["argument 'n'", "i8", "not str"], id="scalar-wrong-kind"),
    pytest.param(lambda: (ones(1), ones(1), 1, ones(1)), ArgumentValueError,
                 ["the sizes break `assume N >= 2`", "N=1"], id="assume-broken"),
    pytest.param(lambda: (ones(), ones(), 1, None), ArgumentTypeError,
                 ["argument 'C' must be a numpy array"], id="none-array"),
    pytest.param(shared_memory, ArgumentValueError,
                 ["argument 'A' overlaps inout argument 'C'"], id="overlapping-memory"),
])
def test_call_errors(called, make_args, cls, words):
    with pytest.raises(cls) as info:
        called(*make_args())
    assert type(info.value) is cls
    for w in words:
        assert w in str(info.value)


def test_call_errors_are_builtin_type_and_value_errors(called):
    with pytest.raises(TypeError):
        called(ones())
    with pytest.raises(ValueError):
        called(ones(), ones(5), 1, ones())


def test_same_array_as_input_and_inout_overlaps(called):
    a = ones()
    with pytest.raises(ArgumentValueError, match="argument 'A' overlaps inout argument 'C'"):
        called(a, ones(), 1, a)


def test_float_scalar_out_of_range():
    k = loopweave.compile(kernel("B[i] = A[i] * x", "A: f32[N], x: f32"))
    with pytest.raises(ArgumentValueError, match="argument 'x'.*does not fit in f32"):
        k(ones(), 10**400)


def test_output_too_large_to_allocate():
    k = loopweave.compile(kernel("B[i] = 1.0 where i in 0:M", "A: f32[N], M: i64",
                                 "-> B: f32[M]"))
    with pytest.raises(ArgumentValueError, match="cannot allocate B"):
        k(ones(), 2**62)
    with pytest.raises(ArgumentValueError, match="negative shape"):
        k(ones(), -3)


def test_keywords_are_reserved_so_the_error_points_at_the_keyword():
    source = "kernel k(A: f32[N]) -> B: f32[N] { B[i] = A[i] where not i }"
    with pytest.raises(loopweave.DSLSyntaxError) as e:
        loopweave.compile(source)
    assert (e.value.line, e.value.column) == (1, source.index("not") + 1)
