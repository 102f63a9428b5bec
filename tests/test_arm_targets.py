"""The Arm targets against numpy: aarch64 under qemu-aarch64, cortex-m4 / cortex-m55 bare-metal
under qemu-system-arm with semihosting.

Every example kernel (examples/references/) runs on every target at its first size set (odd
sizes) and, for the int8 kernels that use the cores' MAC idioms, at more odd and round sizes.
objdump shows that the idioms' instructions are there (SMLAD/SXTB16 on M4, MVE VMLA/VLDRB on
M55, SMLAL on aarch64). Also: the firmware example, the instruction-count benchmark's smoke run,
runners as a pluggable interface, and clear errors. Each test skips with a reason where the cross
compiler or QEMU is not installed (`make toolchains` installs them).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_kernels import ROOT, refs  # the example kernels' references (tests/ is on sys.path)

import loopweave
from loopweave.backends import c as c_backend
from loopweave.backends import cortex_m
from loopweave.backends.runners import QemuSemihostingRunner, QemuUserRunner, RunError, Runner
from loopweave.driver import front_end, stages

TOOLS = {"aarch64": ("aarch64-linux-gnu-gcc", "qemu-aarch64"),
         "cortex-m4": ("arm-none-eabi-gcc", "qemu-system-arm"),
         "cortex-m55": ("arm-none-eabi-gcc", "qemu-system-arm")}
TARGETS = tuple(TOOLS)
OBJDUMP = {"aarch64": ["aarch64-linux-gnu-objdump", "-d"],
           "cortex-m4": ["arm-none-eabi-objdump", "-d"],
           "cortex-m55": ["arm-none-eabi-objdump", "-d", "-marmv8.1-m.main"]}
#: Instructions the int8 MAC idiom must produce in the kernel function, per target.
IDIOM_INSTRUCTIONS = {"aarch64": ("smlal", "smlal2", "sxtl"), "cortex-m4": ("smlad", "sxtb16"),
                      "cortex-m55": ("vmla.s32", "vldrb", "vctp.32")}  # vldrbt: predicated


def needs(target: str) -> None:
    """Skip unless the target's cross compiler and emulator are installed."""
    for tool in TOOLS[target]:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (make toolchains)")


_compiled: dict[tuple, object] = {}


def compiled(source: str, target: str, kernel: str | None = None, **options):
    """Compile once per session (a failure is cached and re-raised)."""
    key = (source, target, kernel, tuple(sorted((k, repr(v)) for k, v in options.items())))
    if key not in _compiled:
        try:
            _compiled[key] = loopweave.compile(source, target=target, kernel=kernel, **options)
        except Exception as e:
            _compiled[key] = e
    if isinstance(_compiled[key], Exception):
        raise _compiled[key]
    return _compiled[key]


def check_case(name: str, target: str, sizes: dict, seed: int = 5, **options) -> None:
    case = refs.KERNELS[name]
    kernel = compiled(case.source(), target, **options)
    args = case.make_inputs(sizes, seed)
    expected = case.expected(args)
    got = refs.results_of(case, args, kernel(*args.values()))
    for out, want in expected.items():
        assert got[out].dtype == want.dtype and got[out].shape == want.shape
        err, ok = refs.compare(got[out], want, case.tol_scale)
        assert ok, f"{name} on {target} at {sizes}: {out} differs from numpy by {err:g}"


# -- the example kernel set -------------------------------------------------------------------

@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", sorted(refs.KERNELS))
def test_example_kernel(name, target):
    needs(target)
    check_case(name, target, refs.KERNELS[name].sizes[0])


INT8_SIZES = [{"M": 1, "K": 1, "N": 1}, {"M": 3, "K": 5, "N": 7}, {"M": 5, "K": 17, "N": 19},
              {"M": 8, "K": 32, "N": 16}]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", ["qmm", "qmm_requant"])
def test_int8_matmuls_odd_sizes_with_and_without_idioms(name, target):
    needs(target)
    for i, sizes in enumerate(INT8_SIZES):
        check_case(name, target, sizes, seed=i)
        check_case(name, target, sizes, seed=i, idioms=False)


QCONV = """
kernel qconv(X: i8[N, C, H, W], F: i8[K, C, R, S]) -> Y: i32[N, K, H - R + 1, W - S + 1] {
    assume H >= R
    assume W >= S
    Y[n, k, y, x] += i32(X[n, c, y + r, x + s]) * i32(F[k, c, r, s])
}
kernel qdepthwise(X: i8[C, H, W], F: i8[C, R, S]) -> Y: i32[C, H - R + 1, W - S + 1] {
    assume H >= R
    assume W >= S
    Y[c, y, x] += i32(X[c, y + r, x + s]) * i32(F[c, r, s])
}
"""


def _windows(x: np.ndarray, r: int, s: int) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(x.astype(np.int64), (r, s), axis=(-2, -1))


@pytest.mark.parametrize("target", TARGETS)
def test_register_tiles_and_their_edge_strips(target):
    # A cache_write tile in GCC vector registers (NEON, MVE; scalar code on M4): full tiles in
    # place, edge rows one at a time, edge columns in 8- and 4-wide strips and a scalar rest.
    needs(target)
    s = (loopweave.Schedule().tile("S1", i=3, j=16).reorder("S1", "i_o", "j_o", "k", "i", "j")
         .cache_write("S1", at="k"))
    kernel = compiled(refs.KERNELS["matmul"].source(), target, schedule=s)
    rng = np.random.default_rng(4)
    for m, k, n in [(7, 5, 31), (3, 2, 16), (4, 3, 13)]:
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        np.testing.assert_allclose(kernel(a, b), a @ b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("target", TARGETS)
def test_int8_convolutions(target):
    needs(target)
    rng = np.random.default_rng(3)
    conv, dw = compiled(QCONV, target, "qconv"), compiled(QCONV, target, "qdepthwise")
    shapes = [(1, 3, 7, 11, 5, 3, 3), (2, 2, 5, 6, 3, 2, 3), (1, 1, 4, 9, 1, 4, 1)]
    for n, c, h, w, k, r, s in shapes:
        X = rng.integers(-128, 128, size=(n, c, h, w), dtype=np.int8)
        F = rng.integers(-128, 128, size=(k, c, r, s), dtype=np.int8)
        want = np.einsum("ncyxrs,kcrs->nkyx", _windows(X, r, s), F.astype(np.int64))
        np.testing.assert_array_equal(conv(X, F), want.astype(np.int32))
        Fd = rng.integers(-128, 128, size=(c, r, s), dtype=np.int8)
        want = np.einsum("cyxrs,crs->cyx", _windows(X[0], r, s), Fd.astype(np.int64))
        np.testing.assert_array_equal(dw(X[0], Fd), want.astype(np.int32))


@pytest.mark.parametrize("target", TARGETS)
def test_idiom_instructions_in_the_binary(target):
    """objdump of the built program: the kernel function holds the core's MAC instructions,
    and the plain-C build (idioms=False) does not."""
    needs(target)
    for tool in OBJDUMP[target][:1]:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")
    source = refs.KERNELS["qmm"].source()
    program_order = loopweave.Schedule()  # the lane idiom; the default's tiles: test_arm_defaults

    def kernel_disassembly(**options) -> str:
        program = compiled(source, target, **options).invoke.program
        text = subprocess.run([*OBJDUMP[target], str(program)], capture_output=True, text=True,
                              check=True).stdout
        match = re.search(r"<lw_qmm>:\n(.*?)\n\n", text, re.DOTALL)
        assert match, "lw_qmm not found in the disassembly"
        return match.group(1)

    with_idioms = kernel_disassembly(schedule=program_order)
    plain = kernel_disassembly(schedule=program_order, idioms=False)
    for insn in IDIOM_INSTRUCTIONS[target]:
        assert re.search(rf"\s{re.escape(insn)}", with_idioms), f"no {insn} in lw_qmm"
    assert not re.search(rf"\s{re.escape(IDIOM_INSTRUCTIONS[target][0])}", plain)


# -- generated source, scratch, errors, runners -----------------------------------------------

def test_cortex_m_source_reports_buffers_and_uses_32_bit_sizes():
    case = refs.KERNELS["softmax"]
    # Program order: the default fuses softmax's rows, and its temporaries become locals.
    result = stages(case.source(), "cortex-m4", schedule=loopweave.Schedule())
    assert "void lw_softmax(const float *restrict X, float *restrict Y, float *restrict m, " \
           "float *restrict e, float *restrict s, int32_t N, int32_t D)" in result.source
    assert "scratch   e: f32[N, D] = 4 * (N) * (D)" in result.source
    assert "malloc" not in result.source
    assert cortex_m.scratch_bytes(result.ir, {"N": 3, "D": 5}) == 4 * 3 + 4 * 15 + 4 * 3


def test_render_needs_no_cross_tools():
    """Rendering (what `emit` uses) works without the toolchain; the idioms are in the source:
    the lane idiom in program order, the default schedule's register tiles otherwise."""
    source = refs.KERNELS["qmm_requant"].source()

    def render(target: str, **options) -> str:
        return stages(source, target, **options).source

    order = loopweave.Schedule()
    assert "lw_smlad(" in render("cortex-m4", schedule=order)
    assert "vmlaq_n_s32(" in render("cortex-m55", schedule=order)
    assert "vmlal_n_s16(" in render("aarch64", schedule=order)
    assert "lw_smlad(lw_a0_l0" in render("cortex-m4")  # dot products along k, pairs of k
    assert "vmladavaq_s8(lw_t0_0" in render("cortex-m55")
    assert "vmlal_laneq_s16(lw_t0_0" in render("aarch64")
    plain = render("cortex-m4", schedule=order, options={"idioms": False})
    assert "lw_smlad(" not in plain


def test_m4_idiom_source_is_portable_c():
    """Without the DSP extension the M4 helpers are plain C: the host builds and runs the same
    source (sizes are int32_t there; ctypes passes them in 64-bit registers on x86-64)."""
    case = refs.KERNELS["qmm"]
    source = stages(case.source(), "cortex-m4", schedule=loopweave.Schedule()).source
    assert "lw_smlad(" in source
    ir = front_end(case.source())
    invoker = c_backend.load(ir, source, c_backend.make_target("cpu", None, None, {}))
    args = case.make_inputs({"M": 5, "K": 17, "N": 19}, 0)
    got = loopweave.Kernel(ir, source, "cpu", invoker)(*args.values())
    np.testing.assert_array_equal(got, case.expected(args)["C"])


def test_bad_options_and_runner():
    with pytest.raises(loopweave.TargetError, match="options"):
        loopweave.compile(refs.KERNELS["qmm"].source(), target="cortex-m4", speed=3)
    with pytest.raises(loopweave.TargetError, match="runner"):
        loopweave.compile(refs.KERNELS["qmm"].source(), target="aarch64", runner="ssh")
    missing = QemuSemihostingRunner("mps2-an386", qemu="qemu-system-lw-missing")
    with pytest.raises(loopweave.TargetError, match="not installed"):
        loopweave.compile(refs.KERNELS["qmm"].source(), target="cortex-m4", runner=missing)


def test_tensors_larger_than_the_board():
    needs("cortex-m4")
    kernel = compiled(refs.KERNELS["qmm"].source(), "cortex-m4")
    big = np.zeros((1024, 1024), dtype=np.int8)
    with pytest.raises(loopweave.ArgumentValueError, match="bytes"):
        kernel(big, big)


def test_a_runner_is_pluggable():
    """Any Runner can take QEMU's place: here one that records the calls, then delegates."""
    needs("aarch64")

    class Recording(Runner):
        name = "recording"

        def __init__(self):
            self.calls, self.inner = [], QemuUserRunner()

        def run(self, program: Path, inputs: bytes, timeout: float = 120.0) -> bytes:
            self.calls.append(len(inputs))
            return self.inner.run(program, inputs, timeout)

    runner = Recording()
    kernel = loopweave.compile(refs.KERNELS["qmm"].source(), target="aarch64", runner=runner)
    a = np.arange(6, dtype=np.int8).reshape(2, 3)
    np.testing.assert_array_equal(kernel(a, a.T.copy()), a.astype(np.int32) @ a.T)
    assert len(runner.calls) == 1


def test_a_failing_program_is_a_run_error():
    """The harness checks its input file; a program that exits non-zero is a RunError that
    gives the exit status (here: a runner that truncates the input)."""
    needs("aarch64")

    class Truncating(QemuUserRunner):
        def run(self, program: Path, inputs: bytes, timeout: float = 120.0) -> bytes:
            return super().run(program, inputs[:10], timeout)

    kernel = loopweave.compile(refs.KERNELS["qmm"].source(), target="aarch64",
                               runner=Truncating())
    a = np.ones((2, 2), dtype=np.int8)
    with pytest.raises(RunError, match="exit status 3"):
        kernel(a, a)


# -- firmware example and benchmark ------------------------------------------------------------

def _lcg_int8(count: int, state: int = 12345) -> tuple[np.ndarray, int]:
    out = np.empty(count, dtype=np.int8)
    for i in range(count):
        state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
        out[i] = np.uint8(state >> 24).view(np.int8)
    return out, state


@pytest.mark.slow
def test_firmware_example_builds_and_runs(tmp_path):
    needs("cortex-m4")
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    firmware = ROOT / "examples" / "firmware"
    build = tmp_path / "build"
    done = subprocess.run(["make", "-s", "run", f"B={build}", f"ROOT={ROOT}"], cwd=firmware,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    start = lines.index("int8 layer output (4 x 16):")
    printed = np.array([[int(v) for v in line.split()] for line in lines[start + 1:start + 5]])
    a, state = _lcg_int8(4 * 32)
    b, state = _lcg_int8(32 * 16, state)
    bias, _ = _lcg_int8(16, state)
    want = refs.qmm_requant_ref(a.reshape(4, 32), b.reshape(32, 16),
                                16 * bias.astype(np.int32), np.int32(2796203), np.int32(31),
                                np.int32(-3))["C"]
    np.testing.assert_array_equal(printed, want)
    assert "lw_smlad(" in (build / "qmm_requant.c").read_text()


@pytest.mark.slow
def test_instruction_count_benchmark_quick(capsys):
    needs("cortex-m4")
    needs("cortex-m55")
    if shutil.which("gcc") is None:
        pytest.skip("gcc (for the QEMU plugin) not installed")
    from benchmarks import arm_counts

    assert arm_counts.main(["--quick"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    assert len(rows) == 6
    for row in rows:
        naive, plain, idiom = int(row[-4]), int(row[-3]), int(row[-2])
        assert min(naive, plain, idiom) > 0
        assert idiom < naive, row  # the MAC idiom executes fewer instructions than naive C
