"""Standalone C emission (`loopweave.emit_c`, `loopweave emit`): the files compile warning-free
with -Wall -Wextra -Werror -std=c99 -pedantic, a C main linked against them computes what numpy
does (fixed and generic sizes), foreign files are never overwritten, bad sizes and hostile names
are handled.

`run_emitted` (the C test main) is also used by tests/test_simd.py to run NEON code under
qemu-aarch64.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import loopweave
from loopweave.driver import front_end
from loopweave.emit import MARKER, EmittedC, OutputExistsError
from loopweave.examples import load_references
from loopweave.ir.expr import evaluate
from loopweave.pipeline import get_target

WARNINGS = ("-Wall", "-Wextra", "-Werror", "-std=c99")
M4_FLAGS = ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")

refs = load_references()
PROGRAM_ORDER = loopweave.Schedule()  # no steps: the kernel as written


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} not installed")
    return path


# -- the C test main ---------------------------------------------------------------------------

_MAIN = r"""#include <stdio.h>
#include <stdlib.h>
#include "{header}"

static void *lw_read(const char *path, size_t n) {{
  void *p = calloc(n ? n : 1, 1);
  FILE *f = fopen(path, "rb");
  if (!p || !f || fread(p, 1, n, f) != n) {{ fprintf(stderr, "cannot read %s\n", path); exit(2); }}
  fclose(f);
  return p;
}}

static void lw_write(const char *path, const void *p, size_t n) {{
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(p, 1, n, f) != n) {{ fprintf(stderr, "cannot write %s\n", path); exit(3); }}
  fclose(f);
}}

int main(void) {{
{body}
  return 0;
}}
"""


def _c_literal(value, dtype) -> str:
    if dtype.is_float:
        return f"(({dtype.c_type}){float(value).hex()})"
    return f"(({dtype.c_type}){int(value)})"


def run_emitted(result: EmittedC, source: str, args: dict, sizes: dict, workdir: Path, *,
                cc: str = "gcc", cflags=("-O2",), runner: tuple[str, ...] = (),
                kernel: str | None = None) -> dict[str, np.ndarray]:
    """Build a main that calls the emitted function on `args` (inputs in files), run it (under
    `runner`, e.g. qemu-aarch64) and return the outputs and inout arrays by name."""
    kir = front_end(source, kernel)
    scalars = {a.name: a for a in kir.args if not hasattr(a, "shape")}
    tensors = kir.tensors
    body, call, results = [], [], []
    for i, name in enumerate(result.arguments):
        var = f"arg{i}"  # DSL names may be anything, C keywords included
        if name == "lw_scratch":
            size_args = ", ".join(str(sizes[s]) for s in kir.sizes)
            body.append(f"  void *lw_scratch = malloc({result.scratch_function}({size_args}));")
            call.append("lw_scratch")
        elif name in scalars:
            call.append(_c_literal(args[name], scalars[name].dtype))
        elif name in tensors:
            t = tensors[name]
            shape = tuple(evaluate(d, {**sizes, **{
                k: int(v) for k, v in args.items() if k in scalars}}) for d in t.shape)
            nbytes = int(np.prod(shape)) * t.dtype.numpy.itemsize
            if name in args:
                np.ascontiguousarray(args[name]).tofile(workdir / f"{name}.in")
                body.append(f"  {t.dtype.c_type} *{var} = lw_read(\"{name}.in\", {nbytes});")
            else:
                body.append(f"  {t.dtype.c_type} *{var} = calloc({nbytes} + 1, 1);")
            if t.role != "in":
                results.append((name, var, shape, t.dtype.numpy, nbytes))
            call.append(var)
        else:  # a size parameter
            call.append(f"(int64_t){sizes[name]}")
    body.append(f"  {result.function}({', '.join(call)});")
    body += [f'  lw_write("{n}.out", {v}, {nb});' for n, v, _, _, nb in results]
    main = workdir / "main.c"
    main.write_text(_MAIN.format(header=result.header.name, body="\n".join(body)))
    exe = workdir / "prog"
    static = ("-static",) if runner else ()
    build = [cc, *cflags, *static, "-std=c99", f"-I{result.header.parent}", str(main),
             str(result.source), "-o", str(exe), "-lm"]
    done = subprocess.run(build, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    ran = subprocess.run([*runner, str(exe)], cwd=workdir, capture_output=True, text=True,
                         timeout=120)
    assert ran.returncode == 0, ran.stderr
    return {n: np.fromfile(workdir / f"{n}.out", dtype=dt).reshape(shape)
            for n, _, shape, dt, _ in results}


def check_against_numpy(case, args: dict, got: dict[str, np.ndarray], what: str) -> None:
    expected = case.expected(args)
    for out, want in expected.items():
        err, ok = refs.compare(got[out], want, tol_scale=case.tol_scale)
        assert ok, f"{what}: {case.name}[{out}] differs from numpy by {err:g}"


def compile_warning_free(path: Path, cc: str = "gcc", flags=("-pedantic",)) -> None:
    done = subprocess.run([cc, *WARNINGS, *flags, "-O2", "-c", str(path), "-o", os.devnull],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{cc} {' '.join(flags)}:\n{done.stderr}"


# -- numbers: fixed and generic sizes -----------------------------------------------------------

EMIT_CASES = ["matmul", "softmax", "gemm", "jacobi_1d", "conv2d", "linear_f16", "qmm",
              "matmul_int4", "layernorm"]


@pytest.mark.parametrize("fixed", [True, False], ids=["fixed", "generic"])
@pytest.mark.parametrize("name", EMIT_CASES)
def test_emitted_c_matches_numpy(name, fixed, tmp_path):
    case = refs.KERNELS[name]
    sizes = dict(case.sizes[0])
    src = case.source()
    kir = front_end(src)
    kernel_sizes = {k: v for k, v in sizes.items() if k in kir.sizes}
    result = loopweave.emit_c(src, kernel_sizes if fixed else None, out_dir=tmp_path / "out")
    compile_warning_free(result.source)
    args = case.make_inputs(sizes, 11)
    got = run_emitted(result, src, args, kernel_sizes, tmp_path)
    check_against_numpy(case, args, got, f"emitted ({'fixed' if fixed else 'generic'})")


def test_fixed_sizes_are_constants_and_temporaries_static(tmp_path):
    src = refs.KERNELS["softmax"].source()
    # Program order keeps the temporaries (the default schedule fuses them away).
    result = loopweave.emit_c(src, {"N": 5, "D": 7}, out_dir=tmp_path, schedule=PROGRAM_ORDER)
    header, source = result.header.read_text(), result.source.read_text()
    assert result.prototype == "void lw_softmax(const float *X, float *Y)"
    assert "#define LW_softmax_N 5" in header and "#define LW_softmax_D 7" in header
    # m and s: 5 floats each, e: 35 floats
    assert result.static_bytes == (5 + 35 + 5) * 4
    assert f"#define LW_softmax_STATIC_BYTES {result.static_bytes}" in header
    assert "static float lw_t_e[35];" in source
    assert "int64_t N" not in source and "malloc" not in source
    assert "c1 < 7;" in source  # loop bounds are constants


def test_generic_header_documents_the_prototype_and_scratch(tmp_path):
    src = refs.KERNELS["softmax"].source()
    result = loopweave.emit_c(src, out_dir=tmp_path, schedule=PROGRAM_ORDER)  # temporaries kept
    header = result.header.read_text()
    proto = "void lw_softmax(const float *X, float *Y, void *lw_scratch, int64_t N, int64_t D);"
    assert proto in header
    assert "size_t lw_softmax_scratch_bytes(int64_t N, int64_t D);" in header
    assert "X: input f32[N, D], row-major" in header and "Y: out f32[N, D]" in header
    assert "Sizes must satisfy: N >= 0, D >= 0." in header
    assert result.arguments == ("X", "Y", "lw_scratch", "N", "D")
    # The header alone is valid C99 and C++.
    (tmp_path / "use.c").write_text(f'#include "{result.header.name}"\nint lw_use;\n')
    compile_warning_free(tmp_path / "use.c")
    if shutil.which("g++"):
        (tmp_path / "use.cc").write_text(f'#include "{result.header.name}"\nint lw_use;\n')
        done = subprocess.run(["g++", "-Wall", "-Wextra", "-Werror", "-c", str(tmp_path /
                               "use.cc"), "-o", os.devnull], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def test_emitted_c_has_no_loopweave_dependency(tmp_path):
    result = loopweave.emit_c(refs.KERNELS["layernorm"].source(), out_dir=tmp_path)
    includes = {line.split()[1] for line in result.source.read_text().splitlines()
                if line.startswith("#include")}
    # <stdlib.h>: malloc for a local row too large for the stack (layernorm's, past 1 MB)
    assert includes <= {"<stdint.h>", "<string.h>", "<math.h>", "<immintrin.h>",
                        "<stdlib.h>", f'"{result.header.name}"'}


def test_vectorized_schedule_emits_portable_c(tmp_path):
    """Intrinsics are guarded: the file builds with and without the instruction set."""
    s = loopweave.Schedule().vectorize("C", "j").parallel("C", "i")
    result = loopweave.emit_c(refs.KERNELS["matmul"].source(), {"M": 7, "K": 13, "N": 33},
                              out_dir=tmp_path, schedule=s)
    compile_warning_free(result.source)  # plain x86-64: the #else branch
    compile_warning_free(result.source, flags=("-pedantic", "-mavx2", "-mfma", "-fopenmp"))
    compile_warning_free(result.source, flags=("-pedantic", "-mavx512f"))


# -- microcontrollers ------------------------------------------------------------------------------

@pytest.mark.parametrize("fixed", [True, False], ids=["fixed", "generic"])
def test_portable_c_builds_for_cortex_m4(fixed, tmp_path):
    cc = need("arm-none-eabi-gcc")
    for name in ("matmul", "softmax", "qmm", "conv2d"):
        case = refs.KERNELS[name]
        kir = front_end(case.source())
        sizes = {k: v for k, v in case.sizes[0].items() if k in kir.sizes} if fixed else None
        result = loopweave.emit_c(case.source(), sizes, out_dir=tmp_path / name)
        compile_warning_free(result.source, cc, ("-pedantic", *M4_FLAGS))


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m55"])
def test_emit_for_cortex_m_targets(target, tmp_path):
    cc = need("arm-none-eabi-gcc")
    try:
        get_target(target)
    except loopweave.TargetError as e:
        pytest.skip(f"target {target} unavailable here: {e}")
    flags = M4_FLAGS if target == "cortex-m4" else ("-mcpu=cortex-m55", "-mthumb",
                                                    "-mfloat-abi=hard")
    for name in ("matmul", "qmm", "softmax"):
        case = refs.KERNELS[name]
        kir = front_end(case.source())
        sizes = {k: v for k, v in case.sizes[0].items() if k in kir.sizes}
        for fixed in (sizes, None):
            out = tmp_path / f"{name}-{fixed is None}"
            result = loopweave.emit_c(case.source(), fixed, target=target, out_dir=out)
            compile_warning_free(result.source, cc, flags)


# -- files -------------------------------------------------------------------------------------

MATMUL = refs.KERNELS["matmul"].source() if "matmul" in refs.KERNELS else ""


def test_refuses_to_overwrite_foreign_files(tmp_path):
    mine = tmp_path / "matmul.c"
    mine.write_text("/* my own firmware file */\nint keep_me;\n")
    with pytest.raises(OutputExistsError, match="not written by loopweave"):
        loopweave.emit_c(MATMUL, out_dir=tmp_path)
    assert mine.read_text() == "/* my own firmware file */\nint keep_me;\n"
    assert not (tmp_path / "matmul.h").exists()  # nothing written when one file is refused
    assert isinstance(OutputExistsError("x"), loopweave.LoopweaveError)
    result = loopweave.emit_c(MATMUL, out_dir=tmp_path, overwrite=True)
    assert result.source.read_text().startswith(MARKER + "\n")
    # Its own files it replaces without being asked.
    loopweave.emit_c(MATMUL, {"M": 2, "K": 3, "N": 4}, out_dir=tmp_path)
    assert "#define LW_matmul_K 3" in result.header.read_text()


def test_writes_atomically(tmp_path, monkeypatch):
    first = loopweave.emit_c(MATMUL, out_dir=tmp_path)
    before = first.source.read_text()

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        loopweave.emit_c(MATMUL, {"M": 2, "K": 3, "N": 4}, out_dir=tmp_path)
    monkeypatch.undo()
    assert first.source.read_text() == before  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["matmul.c", "matmul.h"]  # no temps


# -- sizes ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kernel", "sizes", "error", "match"), [
    ("matmul", {"M": 4, "K": 4}, loopweave.ArgumentValueError, "lacks N"),
    ("matmul", {"M": 4, "K": 4, "N": 4, "Q": 1}, loopweave.ArgumentValueError, "no size 'Q'"),
    ("matmul", {"M": 4, "K": -1, "N": 4}, loopweave.ArgumentValueError, "out of range"),
    ("matmul", {"M": 4, "K": True, "N": 4}, loopweave.ArgumentTypeError, "must be an int"),
    ("matmul", {"M": 4, "K": 2.0, "N": 4}, loopweave.ArgumentTypeError, "must be an int"),
    ("matmul", [("M", 4)], loopweave.ArgumentTypeError, "dict"),
    ("matmul_int4", {"M": 2, "K": 7, "N": 3}, loopweave.ArgumentValueError, "K % 2 == 0"),
    ("conv2d", {"N": 1, "C": 1, "H": 2, "W": 5, "K": 1, "R": 3, "S": 3},
     loopweave.ArgumentValueError, "H >= R"),
    ("matmul", {"M": 2**40, "K": 2**40, "N": 1}, loopweave.ArgumentValueError, "2 GiB"),
])
def test_sizes_are_checked(kernel, sizes, error, match, tmp_path):
    with pytest.raises(error, match=match):
        loopweave.emit_c(refs.KERNELS[kernel].source(), sizes, out_dir=tmp_path)
    assert not list(tmp_path.iterdir())


# -- hostile names -------------------------------------------------------------------------------

HOSTILE = """
kernel main(int: f32[restrict, c0], __x: f32[c0], expf: f32, lw_t_m: f32[c0])
        -> (int64_t: f32[restrict, c0], M_PI: f32[restrict]) {
    _Y[j] = __x[j] * expf + lw_t_m[j]
    int64_t[i, j] = exp(int[i, j] * expf) + _Y[j]
    M_PI[i] += int[i, j] * _Y[j]
}
"""


def _hostile_reference(args):
    x, xs, e, t = (np.asarray(args[k], dtype=np.float64) for k in ("int", "__x", "expf",
                                                                   "lw_t_m"))
    y = xs * e + t
    return {"int64_t": (np.exp(x * e) + y).astype(np.float32),
            "M_PI": (x @ y).astype(np.float32)}


def _hostile_args(rows: int, cols: int) -> dict:
    r = np.random.default_rng(3)
    return {"int": r.uniform(-1, 1, (rows, cols)).astype(np.float32),
            "__x": r.uniform(-1, 1, cols).astype(np.float32), "expf": np.float32(0.5),
            "lw_t_m": r.uniform(-1, 1, cols).astype(np.float32)}


@pytest.mark.parametrize("fixed", [True, False], ids=["fixed", "generic"])
def test_hostile_names_cannot_reach_the_c_text(fixed, tmp_path):
    """C keywords, reserved identifiers, libm and stdint names, isl's loop names, our own
    prefixes: all mangled, so the kernel builds and computes the right numbers."""
    args = _hostile_args(5, 3)
    want = _hostile_reference(args)
    k = loopweave.compile(HOSTILE)
    for name, got in zip(("int64_t", "M_PI"), k(*args.values()), strict=True):
        np.testing.assert_allclose(got, want[name], rtol=1e-5, atol=1e-5)
    sizes = {"restrict": 5, "c0": 3}
    result = loopweave.emit_c(HOSTILE, sizes if fixed else None, out_dir=tmp_path / "out")
    assert result.source.name == "main.c" and result.function == "lw_main"
    compile_warning_free(result.source)
    text = result.source.read_text()
    for bad in ("float *restrict int,", "int64_t int64_t", "float *restrict __x",
                "float *restrict lw_t_m", "c0[", "float expf"):
        assert bad not in text
    got = run_emitted(result, HOSTILE, args, sizes, tmp_path)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5)


# -- the command line ----------------------------------------------------------------------------

def test_cli_emit(tmp_path, capsys):
    from loopweave.cli import main

    kernel_file = refs.KERNELS["matmul"].path
    out = tmp_path / "build"
    assert main(["emit", str(kernel_file), "--size", "M=8", "--size", "K=4", "--size", "N=6",
                 "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert "#define LW_matmul_N 6" in (out / "matmul.h").read_text()
    compile_warning_free(out / "matmul.c")
    schedule = loopweave.Schedule().vectorize("C", "j").to_json()
    assert main(["emit", str(kernel_file), "--schedule", schedule, "-o", str(out)]) == 0
    assert "lw_scratch" not in (out / "matmul.h").read_text()
    assert main(["emit", str(kernel_file), "--size", "M=x", "-o", str(out)]) == 2  # a bad argument
    assert "NAME=INTEGER" in capsys.readouterr().err
    (out / "matmul.c").write_text("int mine;\n")
    assert main(["emit", str(kernel_file), "-o", str(out)]) == 1
    assert "overwrite" in capsys.readouterr().err
    assert main(["emit", str(kernel_file), "-o", str(out), "--overwrite"]) == 0
