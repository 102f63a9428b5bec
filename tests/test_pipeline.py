"""One pipeline: `compile()`, `emit_c()`, `loopweave emit` and the tuner's measurement give the
same kernel function for the same schedule: the given one, a tuning record for the sizes, or the
target's default. `Kernel.source` is the source that ran for the last call's sizes. And the
layering: `import loopweave.errors` loads a handful of modules, not the compiler."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
from test_emit import compile_warning_free, run_emitted

import loopweave
from loopweave.autotune import Database
from loopweave.autotune.database import DEFAULT_SCHEDULE, Record
from loopweave.autotune.dispatch import tuned_lookup
from loopweave.autotune.keys import kernel_key
from loopweave.autotune.measure import Candidate, build, make_problem
from loopweave.cli import main
from loopweave.passes.schedule import Schedule
from loopweave.pipeline import Pipeline, default_schedule, front_end, get_target

MATMUL = """
kernel matmul(A: f32[M, K], B: f32[K, N]) -> C: f32[M, N] {
    C[i, j] += A[i, k] * B[k, j]
}"""
# At least PANEL_MIN_ROWS rows of C: the host default packs B in micro-panels at both sizes
# (below, its size rule packs row by row), so the default is the same for both.
SIZES = {"M": 513, "K": 12, "N": 17}
OTHER_SIZES = {"M": 514, "K": 12, "N": 17}
# A legal schedule unlike cpu's default (which register-tiles the contraction).
TUNED = Schedule().tile("C", i=4, j=8).parallel("C", "i")


def kernel_function(text: str, name: str = "lw_matmul") -> str:
    """The C function `name` of a generated source (compile()'s or an emitted .c), as
    compile() renders it: emit_c's `static`, `_impl` suffix and pragma guards removed."""
    text = text.replace(f"{name}_impl(", f"{name}(")
    match = re.search(rf"^(static )?void {name}\(.*?^}}$", text, re.MULTILINE | re.DOTALL)
    assert match is not None, f"no function {name} in\n{text}"
    guards = {"#ifdef _OPENMP", "#if defined(__GNUC__)", "#endif"}
    lines = [ln for ln in match.group(0).removeprefix("static ").splitlines()
             if ln.strip() not in guards]
    return "\n".join(lines)


def emitted(tmp_path, sizes, **kw) -> str:
    """The kernel function of emit_c's .c for MATMUL on cpu."""
    out = tmp_path / f"emit{len(list(tmp_path.iterdir()))}"
    return kernel_function(loopweave.emit_c(MATMUL, sizes, out_dir=out, **kw).source.read_text())


def record_source(sizes=SIZES) -> str:
    """What compile() builds for the record TUNED at `sizes`: its schedule with the sizes
    fixed that the default's rule fixes (`Pipeline.fixed_for_choices`), as the tuner measured
    it."""
    pipeline = Pipeline(MATMUL, schedule=TUNED)
    return pipeline.stages(sizes, specialize=pipeline.fixed_for_choices()).source


@pytest.fixture
def tuned_db(tmp_path):
    """A tuning database with one record: TUNED for MATMUL at SIZES on cpu."""
    path = tmp_path / "tune.sqlite"
    key = kernel_key(front_end(MATMUL), SIZES, get_target("cpu"))
    with Database(path) as db:
        db.add(Record.for_key(key, "matmul", machine="test", schedule=TUNED.to_json(),
                              options="{}", status="ok", median_s=1e-6))
    return path


# -- the default schedule -----------------------------------------------------------------------

def test_emit_c_is_compile_source_with_the_default_schedule(tmp_path):
    compiled = loopweave.compile(MATMUL, tuning_db=False).source
    assert "lw_vec_f32" in compiled  # the default schedule's register tile, not program order
    assert emitted(tmp_path, None) == kernel_function(compiled)


def test_emit_c_with_sizes_applies_the_default_schedule(tmp_path):
    default = default_schedule(front_end(MATMUL), get_target("cpu"))
    with_sizes = emitted(tmp_path, SIZES)
    assert with_sizes == emitted(tmp_path, SIZES, schedule=default)
    assert with_sizes != emitted(tmp_path, SIZES, schedule=Schedule())  # not program order
    assert "lw_vec_f32" in with_sizes


@pytest.mark.parametrize("flags", [("-O2",), ("-O2", "-march=native", "-fopenmp")],
                         ids=["portable", "native-openmp"])
def test_default_scheduled_emission_builds_and_matches_numpy(flags, tmp_path):
    """The default schedule's register tiles and parallel loops in standalone C: warning-free,
    and right at sizes that leave partial tiles, with and without the instruction sets."""
    sizes = {"M": 37, "K": 19, "N": 45}
    result = loopweave.emit_c(MATMUL, sizes, out_dir=tmp_path / "out")
    compile_warning_free(result.source, flags=("-pedantic", *flags[1:]))
    rng = np.random.default_rng(3)
    args = {"A": rng.random((37, 19), dtype=np.float32),
            "B": rng.random((19, 45), dtype=np.float32)}
    got = run_emitted(result, MATMUL, args, sizes, tmp_path, cflags=flags)
    np.testing.assert_allclose(got["C"], args["A"] @ args["B"], rtol=1e-5, atol=1e-5)


def test_cli_emit_is_compile_source(tmp_path, capsys):
    src = tmp_path / "matmul.lw"
    src.write_text(MATMUL)
    assert main(["emit", str(src), "-o", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "matmul.c").read_text()
    assert kernel_function(text) == kernel_function(loopweave.compile(MATMUL).source)


def test_tuner_measurement_builds_what_compile_builds(tmp_path):
    problem = make_problem(MATMUL, SIZES, "cpu", tmp_path / "data")
    built = build(problem, Candidate(TUNED.to_json()))
    assert built.status == "ok", built.error
    assert built.source == record_source()  # built for SIZES' strides, as the default is
    assert Pipeline(MATMUL, schedule=TUNED).fixed_for_choices() == ("K", "N")
    assert built.source != loopweave.compile(MATMUL, schedule=TUNED).source  # not generic


FLOYD = """
kernel floyd_warshall(path: inout i32[N, N]) {
    for k in 0:N {
        path[i, j] min= path[i, k] + path[k, j]
    }
}
"""


def test_the_tuners_default_is_what_compile_builds_at_the_sizes(tmp_path):
    # compile() normalizes the kernel before its default schedule (floyd-warshall's statement
    # is split where j == k and i == k) and asks the default's choice by sizes; the tuner
    # built the default schedule of the front end's IR instead, 8x slower at N=500, so a
    # sweep's "best" could be slower than compile() without tuning.
    sizes = {"N": 37}
    kernel = loopweave.compile(FLOYD, tuning_db=False, cost_model=False)
    path = np.random.default_rng(0).integers(0, 9, (37, 37)).astype(np.int32)
    kernel(path)
    problem = make_problem(FLOYD, sizes, "cpu", tmp_path / "data")
    symbolic = default_schedule(front_end(FLOYD), get_target("cpu"))
    built = build(problem, Candidate(symbolic.to_json(), {}, {DEFAULT_SCHEDULE: True}))
    assert built.status == "ok", built.error
    assert built.source == kernel.source
    assert built.source != loopweave.compile(FLOYD, schedule=symbolic).source


def test_a_record_of_the_default_builds_the_default(tmp_path):
    path = tmp_path / "tune.sqlite"
    sizes = {"N": 37}
    key = kernel_key(front_end(FLOYD), sizes, get_target("cpu"))
    symbolic = default_schedule(front_end(FLOYD), get_target("cpu"))
    with Database(path) as db:
        db.add(Record.for_key(key, "floyd_warshall", machine="test", schedule=symbolic.to_json(),
                              options="{}", status="ok", median_s=1e-6,
                              config=json.dumps({DEFAULT_SCHEDULE: True})))
    tuned = loopweave.compile(FLOYD, tuning_db=path, cost_model=False)
    default = loopweave.compile(FLOYD, tuning_db=False, cost_model=False)
    a = np.random.default_rng(1).integers(0, 9, (37, 37)).astype(np.int32)
    b = a.copy()
    tuned(a)
    default(b)
    np.testing.assert_array_equal(a, b)
    assert tuned.source == default.source
    assert tuned.invoke.records[(("N", 37),)].is_default


# -- a tuning record ----------------------------------------------------------------------------

def test_emit_c_and_compile_use_the_tuning_record_for_the_sizes(tmp_path, tuned_db):
    kernel = loopweave.compile(MATMUL, tuning_db=tuned_db)
    default = loopweave.compile(MATMUL, tuning_db=False).source
    tuned = record_source()
    assert tuned != default
    a = np.ones((SIZES["M"], SIZES["K"]), np.float32)
    b = np.ones((SIZES["K"], SIZES["N"]), np.float32)
    np.testing.assert_allclose(kernel(a, b), a @ b)
    assert kernel.source == tuned  # compiled for SIZES: the record's schedule
    # emit_c at SIZES: the record's schedule, as compile() ran it at SIZES.
    emitted_tuned = emitted(tmp_path, SIZES, tuning_db=tuned_db)
    assert emitted_tuned == emitted(tmp_path, SIZES, schedule=TUNED)
    assert emitted_tuned != emitted(tmp_path, SIZES, tuning_db=False)
    # The same schedule without sizes: exactly the function compile() builds for it.
    assert emitted(tmp_path, None, schedule=TUNED) == \
        kernel_function(loopweave.compile(MATMUL, schedule=TUNED).source)
    # `loopweave emit --size ... --db ...` too.
    lw = tmp_path / "matmul.lw"
    lw.write_text(MATMUL)
    sizes = [f"--size={k}={v}" for k, v in SIZES.items()]
    assert main(["emit", str(lw), *sizes, "--db", str(tuned_db), "-o", str(tmp_path / "cli")]) == 0
    assert kernel_function((tmp_path / "cli" / "matmul.c").read_text()) == emitted_tuned
    # No record for other sizes: the default, in both.
    assert emitted(tmp_path, OTHER_SIZES, tuning_db=tuned_db) == \
        emitted(tmp_path, OTHER_SIZES, tuning_db=False)


def test_kernel_source_is_what_ran_for_the_last_call(tuned_db):
    kernel = loopweave.compile(MATMUL, tuning_db=tuned_db)
    plain = loopweave.compile(MATMUL, tuning_db=False)
    tuned = record_source()
    assert kernel.source == plain.source  # before any call: the default, generic
    b = np.ones((12, 17), np.float32)
    kernel(np.ones((513, 12), np.float32), b)
    assert kernel.source == tuned
    kernel(np.ones((514, 12), np.float32), b)  # no record for M=514
    plain(np.ones((514, 12), np.float32), b)
    assert kernel.source == plain.source  # the default's build for them (strides fixed)
    kernel(np.ones((513, 12), np.float32), b)  # built once per sizes, chosen again
    assert kernel.source == tuned
    assert [r.schedule if r else None for r in kernel.invoke.records.values()] == \
        [TUNED.to_json(), None]


def test_kernel_source_follows_calls_that_take_no_plan(tuned_db):
    """A repeated call runs its plan's direct call, which notes its source only when calls
    switch plans; a call in between that takes the full path without leaving a plan (a
    copied argument) must not leave the other sizes' source behind."""
    kernel = loopweave.compile(MATMUL, tuning_db=tuned_db)
    plain = loopweave.compile(MATMUL, tuning_db=False)
    plain(np.ones((514, 12), np.float32), np.ones((12, 17), np.float32))
    default = plain.source  # the default's build for M=514
    tuned = record_source()
    a, b = np.ones((513, 12), np.float32), np.ones((12, 17), np.float32)
    for _ in range(2):
        np.testing.assert_allclose(kernel(a, b), a @ b)
        assert kernel.source == tuned
        strided = np.ones((514, 12), np.float32, order="F")  # copied: no plan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", loopweave.errors.StridedCopyWarning)
            np.testing.assert_allclose(kernel(strided, b), strided @ b)
        assert kernel.source == default
        assert len(kernel._plans) == 1


def test_a_record_that_no_longer_applies_falls_back_to_the_default(tmp_path):
    path = tmp_path / "tune.sqlite"
    key = kernel_key(front_end(MATMUL), SIZES, get_target("cpu"))
    illegal = Schedule().parallel("C", "k")  # k carries the sum: refused when applied
    with Database(path) as db:
        db.add(Record.for_key(key, "matmul", machine="test", schedule=illegal.to_json(),
                              options="{}", status="ok", median_s=1e-6))
    kernel = loopweave.compile(MATMUL, tuning_db=path)
    a, b = np.ones((513, 12), np.float32), np.ones((12, 17), np.float32)
    np.testing.assert_allclose(kernel(a, b), a @ b)
    assert kernel.source == loopweave.compile(MATMUL, tuning_db=False).source
    assert emitted(tmp_path, SIZES, tuning_db=path) == emitted(tmp_path, SIZES, tuning_db=False)


def test_pipeline_stages_choose_explicit_then_tuned_then_default(tuned_db):
    lookup = tuned_lookup(tuned_db)
    assert Pipeline(MATMUL, lookup=lookup).stages(SIZES).tuned.record.schedule == TUNED.to_json()
    other = Pipeline(MATMUL, lookup=lookup).stages(OTHER_SIZES).tuned  # no record: the
    assert other.record is None and other.normalized  # default's choice by sizes
    assert Pipeline(MATMUL, lookup=lookup).stages().tuned is None  # no sizes: nothing to look up
    explicit = Pipeline(MATMUL, schedule=Schedule(), lookup=lookup).stages(SIZES)
    assert explicit.tuned is None and explicit.schedule.to_json() == "[]"
    assert tuned_lookup(False) is None
    assert tuned_lookup(tuned_db.parent / "absent.sqlite") is None


# -- layering -----------------------------------------------------------------------------------

def _modules_after(statement: str) -> list[str]:
    code = (f"import sys\n{statement}\n"
            "print('\\n'.join(m for m in sys.modules if m.split('.')[0] == 'loopweave'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    return done.stdout.split()


def test_importing_the_errors_loads_a_handful_of_modules():
    loaded = _modules_after("import loopweave.errors")
    assert sorted(loaded) == ["loopweave", "loopweave.errors"]


def test_the_package_imports_its_api_on_first_use():
    loaded = _modules_after("import loopweave")
    assert "loopweave.driver" not in loaded and "loopweave.autotune" not in loaded
    loaded = _modules_after("import loopweave; loopweave.compile")
    assert "loopweave.driver" in loaded and "loopweave.autotune.search" not in loaded
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        loopweave.nonexistent  # noqa: B018
    assert {"compile", "emit_c", "tune", "Schedule", "Kernel"} <= set(dir(loopweave))


SOFTMAX = """
kernel softmax(X: f32[N, D]) -> Y: f32[N, D] {
    m[i] max= X[i, j]
    e[i, j] = exp(X[i, j] - m[i])
    s[i] += e[i, j]
    Y[i, j] = e[i, j] / s[i]
}"""


def test_a_record_keeps_the_temporaries_its_schedule_needs(tmp_path):
    """The default schedule shrinks softmax's temporaries (a row of e, a scalar m); a
    program-order record keeps them whole: the call allocates the record's, not the
    default build's (a record's build once failed with KeyError 'm')."""
    sizes = {"N": 5, "D": 7}
    path = tmp_path / "tune.sqlite"
    key = kernel_key(front_end(SOFTMAX), sizes, get_target("cpu"))
    with Database(path) as db:
        db.add(Record.for_key(key, "softmax", machine="test", schedule=Schedule().to_json(),
                              options="{}", status="ok", median_s=1e-6))
    kernel = loopweave.compile(SOFTMAX, tuning_db=path)
    x = np.random.default_rng(0).standard_normal((5, 7)).astype(np.float32)
    want = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(kernel(x), want / want.sum(axis=1, keepdims=True), rtol=1e-5)
    assert kernel.source == loopweave.compile(SOFTMAX, schedule=Schedule()).source
