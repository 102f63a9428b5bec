"""Numeric harness: every example kernel, compiled for the host CPU, against its numpy reference.

The inputs, references and tolerances live in examples/references/ (loaded by path with
loopweave.examples.load_references: examples/ is not an installed package). Each kernel is
compiled once per test session and called at several size sets, odd and round. Also checked:
outputs' shape and dtype, `inout` arrays updated in place, read-only inputs left alone, and that
every `.lw` file under examples/ and every ```lw block under docs/ compiles.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import loopweave
from loopweave.examples import load_references

ROOT = Path(__file__).resolve().parent.parent


refs = load_references()

_KERNEL_RE = re.compile(r"^\s*kernel\s+([A-Za-z_]\w*)", re.MULTILINE)
_FENCE_RE = re.compile(r"^[ \t]*```lw[ \t]*\n(.*?)^[ \t]*```", re.MULTILINE | re.DOTALL)

# (source text, kernel name) -> compiled kernel, or the exception compiling it raised
_compiled: dict[tuple[str, str], object] = {}


def compile_kernel(source: str, name: str):
    """Compile `name` from `source` for the CPU once per session; re-raise a cached failure."""
    key = (source, name)
    if key not in _compiled:
        try:
            _compiled[key] = loopweave.compile(source, target="cpu", kernel=name)
        except Exception as e:  # cached, and re-raised in every test that needs it
            _compiled[key] = e
    result = _compiled[key]
    if isinstance(result, Exception):
        raise result
    return result


def example_kernel(name: str):
    """The compiled kernel of examples/kernels/<name>.lw."""
    return compile_kernel(refs.KERNELS[name].source(), name)


def _copy_args(args: dict) -> dict:
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in args.items()}


def run_and_check(name: str, args: dict) -> None:
    """Call the compiled kernel on `args` and check every result against the reference."""
    case = refs.KERNELS[name]
    kernel = example_kernel(name)
    expected = case.expected(args)
    originals = _copy_args(args)
    inout_arrays = {k: args[k] for k in case.inouts}

    ret = kernel(*args.values())

    got = refs.results_of(case, args, ret)
    sizes = {k: v.shape for k, v in originals.items() if isinstance(v, np.ndarray)}
    for out, want in expected.items():
        value = got[out]
        assert isinstance(value, np.ndarray), f"{name}: {out} is {type(value).__name__}"
        assert value.shape == want.shape, f"{name}: {out} shape {value.shape}, want {want.shape}"
        assert value.dtype == want.dtype, f"{name}: {out} dtype {value.dtype}, want {want.dtype}"
        err, ok = refs.compare(value, want, case.tol_scale)
        assert ok, f"{name}: {out} differs from the reference by {err:g} (arg shapes {sizes})"
    for k, arr in inout_arrays.items():  # updated in place: the very object passed in
        assert args[k] is arr
    for k, v in originals.items():
        if k not in case.inouts and isinstance(v, np.ndarray):
            np.testing.assert_array_equal(args[k], v, err_msg=f"{name}: input {k} was modified")


CASES = [pytest.param(name, i, id=f"{name}-" + "-".join(f"{k}{v}" for k, v in sizes.items()))
         for name, case in refs.KERNELS.items() for i, sizes in enumerate(case.sizes)]


@pytest.mark.parametrize(("name", "size_index"), CASES)
def test_kernel_matches_reference(name, size_index):
    case = refs.KERNELS[name]
    run_and_check(name, case.make_inputs(case.sizes[size_index], 1000 + size_index))


@pytest.mark.parametrize("name", sorted(refs.KERNELS))
def test_kernel_is_reusable_across_calls(name):
    """The same compiled kernel, called again with other data, gives fresh correct results."""
    case = refs.KERNELS[name]
    for seed in (1, 2):
        run_and_check(name, case.make_inputs(case.sizes[0], seed))


def test_python_scalars_are_accepted():
    """Scalar parameters take plain Python numbers as well as numpy scalars."""
    args = refs.KERNELS["gemm"].make_inputs({"M": 5, "K": 6, "N": 7}, 3)
    args["alpha"], args["beta"] = 1.5, -0.75
    run_and_check("gemm", args)
    args = refs.KERNELS["jacobi_1d"].make_inputs({"N": 9, "T": 2}, 3)
    args["T"] = 2
    run_and_check("jacobi_1d", args)


def _lw_sources() -> list[tuple[str, str, str]]:
    """(label, source, kernel name) of every kernel in examples/**/*.lw and in docs' lw blocks."""
    found = []
    for path in sorted((ROOT / "examples").rglob("*.lw")):
        text = path.read_text()
        for kname in _KERNEL_RE.findall(text):
            found.append((f"{path.relative_to(ROOT)}:{kname}", text, kname))
    docs = ROOT / "docs"
    if docs.is_dir():
        for path in sorted(docs.rglob("*.md")):
            for n, match in enumerate(_FENCE_RE.finditer(path.read_text()), start=1):
                block = match.group(1)
                for kname in _KERNEL_RE.findall(block):
                    found.append((f"{path.relative_to(ROOT)}#block{n}:{kname}", block, kname))
    return found


_SOURCES = _lw_sources()


@pytest.mark.parametrize(("source", "kname"), [pytest.param(s, k, id=label)
                                               for label, s, k in _SOURCES])
def test_example_and_doc_kernels_compile(source, kname):
    kernel = compile_kernel(source, kname)
    assert kernel.source  # the generated C


def test_examples_were_found():
    assert len([s for s in _SOURCES if s[0].startswith("examples")]) >= len(refs.KERNELS)


def test_reduction_whose_left_range_depends_on_the_reduction_variable():
    # `i in 0:k`: the initialisation of s covers all of s (s[N-1] sums nothing: 0; the max of
    # nothing is -inf), not an unbounded range.
    total = loopweave.compile("kernel t(A: f32[N, N]) -> s: f32[N] "
                              "{ s[i] += A[k, i] where k in 0:N, i in 0:k }")
    top = loopweave.compile("kernel t(A: f32[N, N]) -> s: f32[N] "
                            "{ s[i] max= A[k, i] where k in 0:N, i in 0:k }")
    a = np.random.default_rng(0).standard_normal((5, 5), dtype=np.float32)
    np.testing.assert_allclose(total(a), np.tril(a, -1).sum(axis=0), rtol=1e-6, atol=1e-6)
    want = [a[i + 1:, i].max() for i in range(4)] + [-np.inf]
    np.testing.assert_array_equal(top(a), np.array(want, dtype=np.float32))


def test_reduction_inside_a_for_loop_restarts_each_iteration():
    src = """
    kernel last_row(A: f32[R, N]) -> y: f32[N] {
        for r in 0:R {
            y[j] += A[r, j] * 2.0
        }
    }"""
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(loopweave.compile(src)(a), 2 * a[-1])
