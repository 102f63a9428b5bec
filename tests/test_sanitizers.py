"""Memory safety of generated C: every example kernel built with AddressSanitizer and
UndefinedBehaviorSanitizer, under the default schedule and random legal schedules, at odd sizes.

A sanitized library loaded by ctypes needs the ASan runtime first in the process, so the kernels
run in a subprocess (this file run as a script) with LD_PRELOAD=libasan.so; any report aborts it
(ASan halts on the first error; UBSan is built with -fno-sanitize-recover and halt_on_error=1).
The subprocess also compares each result with the numpy reference of examples/references/.

Also: sizes whose products pass 2^31 give 64-bit index arithmetic in the generated source.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from polybench_check import poly  # examples/polybench/references/
from test_kernels import refs  # examples/references/, loaded by path

import loopweave
from loopweave.driver import front_end, stages
from loopweave.errors import ScheduleError

SANITIZE = ["-O0", "-g", "-fsanitize=address,undefined", "-fno-omit-frame-pointer",
            "-fno-sanitize-recover=all"]




# -- the subprocess --------------------------------------------------------------------------------

def run_cases(cases: list[dict]) -> None:
    """Build each case sanitized, run it, compare with numpy; raises on a wrong result."""
    import numpy as np

    built: dict[tuple, loopweave.Kernel] = {}
    for n, c in enumerate(cases):
        suite, case = suite_case(c)
        key = (c["kernel"], c["schedule"])
        if key not in built:
            schedule = loopweave.Schedule.from_json(c["schedule"]) if c["schedule"] else None
            built[key] = loopweave.compile(case.source(), cflags=SANITIZE, schedule=schedule,
                                           tuning_db=False)
        k = built[key]
        try:
            args = case.make_inputs(c["sizes"], n)
        except (ValueError, OverflowError, ZeroDivisionError):
            if c.get("compare", True):
                raise
            # zero sizes the inputs cannot have (ell_spmv's column indices into N = 0
            # columns), as tests/test_call_checks skips them
            print("ok", c["kernel"], c["sizes"], "(no inputs at these sizes)", flush=True)
            continue
        if not c.get("compare", True):  # memory safety only (zero sizes: tests/test_call_checks)
            try:
                k(*args.values())
            except loopweave.ArgumentValueError as e:  # sizes that break an `assume`
                assert "assume" in str(e), e
            print("ok", c["kernel"], c["sizes"], flush=True)
            continue
        expected = case.expected(args)  # before the call updates the inout arrays
        outs = k(*args.values())
        outs = outs if isinstance(outs, tuple) else (outs,) if outs is not None else ()
        got = dict(zip(case.outputs, outs, strict=True))
        got.update({name: args[name] for name in case.inouts})
        for name, want in expected.items():
            err, ok = suite.compare(np.asarray(got[name]), want, tol_scale=case.tol_scale)
            assert ok, f"{c['kernel']} {c['sizes']} {c['schedule']}: {name} off by {err:g}"
        print("ok", c["kernel"], c["sizes"], flush=True)


def suite_case(c: dict):
    """(reference module, case) that a case names: an example kernel, or a PolyBench one where
    its "suite" is "polybench"."""
    if c.get("suite") == "polybench":
        return poly, poly.POLYBENCH[c["kernel"]]
    return refs, refs.KERNELS[c["kernel"]]


def preload() -> str:
    """LD_PRELOAD for a Python process that loads ASan-built libraries: the ASan runtime, and
    libstdc++ so that ASan can intercept C++ exceptions (islpy throws them), else it aborts."""
    libs = [subprocess.run(["gcc", f"-print-file-name={lib}"], capture_output=True,
                           text=True).stdout.strip() for lib in ("libasan.so", "libstdc++.so")]
    if not all(os.path.isabs(lib) and os.path.exists(lib) for lib in libs):
        pytest.skip("gcc's libasan.so (or libstdc++.so) is not installed")
    return " ".join(libs)


def sanitized_run(cases: list[dict], tmp_path: Path) -> subprocess.CompletedProcess:
    """Run `cases` in a subprocess with the ASan runtime preloaded."""
    spec = tmp_path / "cases.json"
    spec.write_text(json.dumps(cases))
    env = {**os.environ, "LD_PRELOAD": preload(),
           "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1:halt_on_error=1",
           "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
           "OMP_NUM_THREADS": "2",
           "LOOPWEAVE_CACHE_DIR": os.environ.get("LOOPWEAVE_CACHE_DIR", str(tmp_path))}
    return subprocess.run([sys.executable, __file__, str(spec)], env=env, capture_output=True,
                          text=True, timeout=600)


def assert_clean(result: subprocess.CompletedProcess, cases: list[dict]) -> None:
    reports = re.findall(r"ERROR: AddressSanitizer.*|runtime error:.*|SUMMARY: \w+Sanitizer.*",
                         result.stderr)
    assert not reports, "\n".join(reports) + "\n" + result.stderr[-4000:]
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert result.stdout.count("ok ") == len(cases), result.stdout


# -- schedules ------------------------------------------------------------------------------------

def odd_sizes(name: str) -> dict[str, int]:
    """The first size set of the kernel's case with an odd extent (every case has one)."""
    case = refs.KERNELS[name]
    return next((s for s in case.sizes if any(v % 2 for v in s.values())), case.sizes[0])


def random_schedule(name: str, rng: random.Random) -> loopweave.Schedule | None:
    """A random schedule of the kernel: tiles, a reorder, a parallel and a vector loop, local
    copies of read tensors and accumulator tiles, on random statements; None if the one drawn
    is illegal (ScheduleError)."""
    ir = front_end(refs.KERNELS[name].source())
    statements = [s for s in ir.statements if s.iterators]
    s = loopweave.Schedule()
    try:
        for stmt in rng.sample(statements, k=min(2, len(statements))):
            loops = list(stmt.iterators)
            tiled = rng.sample(loops, k=rng.randint(1, min(2, len(loops))))
            s.tile(stmt.name, **{v: rng.choice([2, 3, 4, 5, 8]) for v in tiled})
            names = s.placements(ir)[stmt.name].names()
            if rng.random() < 0.6:
                s.reorder(stmt.name, *rng.sample(names, k=len(names)))
                names = s.placements(ir)[stmt.name].names()
            if rng.random() < 0.5:
                s.parallel(stmt.name, names[0])
            if rng.random() < 0.5:
                s.vectorize(stmt.name, names[-1])
            reads = sorted({load.tensor for load in stmt.reads})
            if reads and rng.random() < 0.4:  # packing: a local copy of what a loop reads
                s.cache_read(stmt.name, rng.choice(reads), at=rng.choice(names))
            if rng.random() < 0.3:  # an accumulator tile
                s.cache_write(stmt.name, at=rng.choice(names))
        s.apply(ir)
    except ScheduleError:
        return None
    return s


def legal_schedules(count: int, seed: int) -> list[dict]:
    """`count` random legal schedules over random kernels, with odd sizes."""
    rng = random.Random(seed)
    found: list[dict] = []
    names = sorted(refs.KERNELS)
    while len(found) < count:
        name = rng.choice(names)
        s = random_schedule(name, rng)
        if s is not None and s.steps:
            found.append({"kernel": name, "sizes": odd_sizes(name), "schedule": s.to_json()})
    return found


# -- tests ----------------------------------------------------------------------------------------

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")


@needs_gcc
@pytest.mark.slow
def test_every_example_kernel_is_clean_under_asan_and_ubsan(tmp_path):
    cases = [{"kernel": name, "sizes": odd_sizes(name), "schedule": None}
             for name in sorted(refs.KERNELS)]
    assert_clean(sanitized_run(cases, tmp_path), cases)


@needs_gcc
def test_a_few_random_legal_schedules_are_clean(tmp_path):
    cases = legal_schedules(4, seed=1)
    assert_clean(sanitized_run(cases, tmp_path), cases)


@needs_gcc
@pytest.mark.slow
def test_random_legal_schedules_are_clean(tmp_path):
    cases = legal_schedules(24, seed=2)
    assert_clean(sanitized_run(cases, tmp_path), cases)


@needs_gcc
@pytest.mark.slow
def test_zero_size_dimensions_are_clean(tmp_path):
    cases = [{"kernel": name, "sizes": {**case.sizes[0], size: 0}, "schedule": None,
              "compare": False}
             for name, case in sorted(refs.KERNELS.items()) for size in case.sizes[0]
             if not (name, size) == ("qmm_requant", "K")]  # its inputs divide by sqrt(K)
    assert_clean(sanitized_run(cases, tmp_path), cases)


@needs_gcc
def test_triangular_pieces_are_clean(tmp_path):
    """trmm's and symm's register tiles run the part of a diagonal tile's reduction that every
    row reaches, the rest as written (ir/localize.triangle_split); a tile of rows past M, whose
    reduction range was empty, once ran its registers there (M 263: rows 256-263). cholesky
    runs in blocks of rows, the last one partial (passes/row_blocks.py)."""
    cases = [{"suite": "polybench", "kernel": name, "sizes": sizes, "schedule": None}
             for name in ("trmm", "symm")
             for sizes in ({"M": 263, "N": 301}, {"M": 9, "N": 5}, {"M": 41, "N": 50})]
    cases += [{"suite": "polybench", "kernel": "cholesky", "sizes": {"N": n}, "schedule": None}
              for n in (37, 16, 1)]
    assert_clean(sanitized_run(cases, tmp_path), cases)


@needs_gcc
def test_the_sanitizers_do_catch_an_out_of_bounds_access(tmp_path):
    """The harness itself: a C kernel that reads one element past its input is reported."""
    case = {"kernel": "gelu", "sizes": {"N": 13}, "schedule": None}
    source = refs.KERNELS["gelu"].source()
    real = stages(source).source
    broken = re.sub(r"X\[(c\d+)\]", r"X[\1 + 1]", real, count=1)
    assert broken != real
    from loopweave import toolchain

    lib = toolchain.build_shared_library(broken, "gcc", (*SANITIZE, "-std=c99"))
    probe = tmp_path / "probe.py"
    probe.write_text("import ctypes, sys, numpy as np\n"
                     f"f = getattr(ctypes.CDLL({str(lib)!r}), 'lw_gelu')\n"
                     "x = np.ones(13, np.float32); y = np.zeros(13, np.float32)\n"
                     "f(ctypes.c_void_p(x.ctypes.data), ctypes.c_void_p(y.ctypes.data), "
                     "ctypes.c_int64(13))\n")
    result = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True,
                            env={**os.environ, "LD_PRELOAD": preload(),
                                 "ASAN_OPTIONS": "detect_leaks=0"}, timeout=300)
    assert result.returncode != 0 and "heap-buffer-overflow" in result.stderr, (
        case, result.stderr[-2000:])


# -- 64-bit index arithmetic ----------------------------------------------------------------------

def test_index_arithmetic_is_64_bit_for_sizes_past_2_to_the_31():
    """Sizes are int64_t parameters and every loop counter is int64_t, so offsets such as
    i * N + j of an N x N array with N = 50000 (2.5e9 elements) cannot wrap; no `int` index."""
    src = ("kernel big(A: f32[M, N], B: f32[N, K]) -> C: f32[M, K] {\n"
           "    assume M >= 50000, N >= 50000, K >= 50000\n"
           "    C[i, j] += A[i, k] * B[k, j]\n}\n")
    for schedule in (None, loopweave.Schedule().tile("C", i=32, j=32)):
        text = stages(src, schedule=schedule).source
        body = text[text.index("void lw_big("):]
        assert re.search(r"int64_t M\b", body) and re.search(r"int64_t N\b", body)
        counters = re.findall(r"for \((\w+) (\w+) =", body)
        assert counters and all(t == "int64_t" for t, _ in counters), counters
        # no 32-bit integer type anywhere in the kernel's arithmetic
        assert not re.search(r"\b(int|int32_t|unsigned|uint32_t|long)\b(?! \*)", body), body


if __name__ == "__main__":
    run_cases(json.loads(Path(sys.argv[1]).read_text()))
