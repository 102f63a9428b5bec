"""B packed as BLIS micro-panels (`Schedule.cache_read(..., panel=NR)`, issue [x86-peak]): the
packed panel's last dimension cut into runs of NR columns, each stored with all of its rows,
so that a register tile reads its B contiguously along k. The default takes it for f64
contractions on the host (`TargetFacts.micro_panels`). Checked on the source (affine indices,
no division, in full and edge tiles alike) and numerically at odd sizes. The default's tests
build for AVX2 (`HOST_AVX2`): the AVX-512 default packs B row by row (micro-panels measured
even there, see passes/default.CPU_AVX512)."""

from __future__ import annotations

import platform
import re

import numpy as np
import pytest

import loopweave
from loopweave.errors import ScheduleError
from loopweave.ir.expr import to_str
from loopweave.ir.loops import For, Store, children, walk
from loopweave.ir.specialize import fix_sizes, stride_sizes
from loopweave.passes.default import CPU
from loopweave.passes.few_rows import (
    PANEL_COLUMNS,
    PANEL_MIN_ROWS,
    STREAM_MAX_ROWS,
    WIDE_PANEL_BYTES,
    WIDE_PANEL_MAX_ROWS,
    WIDE_PANEL_SPLITS,
    panel_rows,
)
from loopweave.passes.schedule import Schedule
from loopweave.passes.tile_recipes import KC, NC, contraction_steps
from loopweave.pipeline import Pipeline, front_end

#: Flags that make the host default the AVX2 one on any x86 machine (None elsewhere: the
#: compiler's own).
HOST_AVX2 = ["-O3", "-march=x86-64-v3"] if platform.machine() in ("x86_64", "AMD64") else None
ODD_SIZES = [(1, 1, 1), (7, 300, 13), (37, 19, 45), (61, 257, 263), (13, 520, 270)]


def matmul(dtype: str, transposed: bool = False) -> str:
    b_type, b_read = ("[N, K]", "B[j, k]") if transposed else ("[K, N]", "B[k, j]")
    return f"""kernel mm(A: {dtype}[M, K], B: {dtype}{b_type}) -> C: {dtype}[M, N] {{
    C[i, j] += A[i, k] * {b_read}
}}"""


def check(kernel, dtype: str, transposed: bool = False) -> None:
    rng = np.random.default_rng(11)
    np_type = {"f32": np.float32, "f64": np.float64}[dtype]
    for m, k, n in ODD_SIZES:
        a = rng.standard_normal((m, k)).astype(np_type)
        b = rng.standard_normal((n, k) if transposed else (k, n)).astype(np_type)
        want = a @ (b.T if transposed else b)
        got = kernel(a, b)
        tol = 1e-4 if dtype == "f32" else 1e-10
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * k, err_msg=f"{(m, k, n)}")


def paneled_schedule(source: str, panel: int) -> Schedule:
    """The default register tile with its B panel cut into runs of `panel`."""
    s = front_end(source).statements[-1]
    steps = contraction_steps(s, list(s.iterators), micro_panel=False)
    schedule = Schedule()
    for op, *args in steps:
        kwargs = args.pop() if args and isinstance(args[-1], dict) else {}
        if op == "cache_read":
            kwargs["panel"] = panel
        getattr(schedule, op)(*args, **kwargs)
    return schedule


def pack_reads(source: str) -> list[str]:
    return re.findall(r"B_pack\[[^\]]*\]", source)


@pytest.mark.parametrize("transposed", [False, True], ids=["B", "B^T"])
def test_the_f64_default_packs_micro_panels_and_computes_the_product(transposed):
    assert "f64" in CPU.micro_panels
    kernel = loopweave.compile(matmul("f64", transposed), tuning_db=False, cflags=HOST_AVX2)
    assert "_run" in kernel.source  # the copy walks the runs
    check(kernel, "f64", transposed)


def test_panel_reads_are_affine_in_full_and_edge_tiles():
    """The run index and the position in it without a division, also in the edge tiles
    whose column strips start at offsets computed at run time (the panel is read through its
    buffer before the strips rename the column loop)."""
    source = loopweave.compile(matmul("f64"), tuning_db=False, cflags=HOST_AVX2).source
    reads = pack_reads(source)
    assert reads and not [r for r in reads if "lw_div" in r], reads


@pytest.mark.parametrize("panel", [16, 5])
def test_an_explicit_panel_on_f32_computes_the_product(panel):
    """16: one register tile per run; 5: runs that do not match the tile (division)."""
    source = matmul("f32")
    kernel = loopweave.compile(source, schedule=paneled_schedule(source, panel),
                               tuning_db=False)
    assert "_run" in kernel.source
    check(kernel, "f32")


def test_a_paneled_step_survives_json():
    schedule = Schedule().cache_read("S0", "B", "i_o", panel=8)
    again = Schedule.from_json(schedule.to_json())
    assert again.steps == schedule.steps or again.to_json() == schedule.to_json()


@pytest.mark.parametrize("panel", [0, -3, True, 2.5])
def test_a_panel_must_be_a_positive_integer(panel):
    with pytest.raises(ScheduleError, match="panel"):
        Schedule().cache_read("S0", "B", "i_o", panel=panel)


def test_an_accumulator_buffer_takes_no_panel():
    source = """kernel acc(A: f32[M, K]) -> C: f32[M] {
    C[i] += A[i, k]
}"""
    schedule = Schedule().tile("S0", i=4).cache_read("S0", "C", "i_o", panel=2)
    with pytest.raises(ScheduleError):
        loopweave.compile(source, schedule=schedule, tuning_db=False)


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_micro_panels_only_from_panel_min_rows(dtype):
    """B's micro-panels pay only for enough rows of C (`PANEL_MIN_ROWS`): a skinny product
    packs B row by row (32 x 2048^2 f32: 0.71x with panels), chosen per call's sizes."""
    kernel = loopweave.compile(matmul(dtype), tuning_db=False, cflags=HOST_AVX2)
    rng = np.random.default_rng(12)
    np_type = {"f32": np.float32, "f64": np.float64}[dtype]
    for m, paneled in [(PANEL_MIN_ROWS - 1, False), (PANEL_MIN_ROWS, True), (5, False)]:
        a = rng.standard_normal((m, 37)).astype(np_type)
        b = rng.standard_normal((37, 19)).astype(np_type)
        np.testing.assert_allclose(kernel(a, b), a @ b, rtol=1e-4, atol=1e-4 * 37)
        assert ("_run" in kernel.source) == paneled, m
    assert panel_rows(front_end(matmul("i32"))) is None  # no panels for that type: no rule


def test_very_few_rows_pack_panels_as_wide_as_b(monkeypatch):
    """Up to WIDE_PANEL_MAX_ROWS rows of C, B's panels span all its columns (rounded up to
    PANEL_COLUMNS), WIDE_PANEL_BYTES deep in all, each row of B read whole as it is packed
    (16 x 1024^2 f32: 72 -> 90 GFLOP/s); more rows keep the target's panels. With threads,
    WIDE_PANEL_SPLITS panels across the columns, the loop over them the parallel one."""
    rule = panel_rows(front_end(matmul("f32")))

    def panels(**sizes):
        steps = rule.at(sizes).steps
        tiles = [dict(st.args) for st in steps if st.op == "tile"]
        parallel = [st.args for st in steps if st.op == "parallel" and st.target == "S1"]
        return tiles[0]["k"], tiles[0]["j"] * tiles[1]["j_o"], parallel[0][0]

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert panels(M=16, K=1000, N=333)[:2] == (256, 384)  # a shallow B: the host's KC
    whole = 2 * PANEL_COLUMNS  # (96: 4096 columns in panels of 4128)
    assert panels(M=WIDE_PANEL_MAX_ROWS, K=1000, N=4096) == (
        WIDE_PANEL_BYTES // (4 * 4096), -(-4096 // whole) * whole, "i_o")
    assert panels(M=WIDE_PANEL_MAX_ROWS + 1, K=1000, N=4096)[:2] == (KC, NC)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert WIDE_PANEL_SPLITS == 2
    assert panels(M=WIDE_PANEL_MAX_ROWS, K=1000, N=4096) == (
        WIDE_PANEL_BYTES // (4 * 2048), -(-2048 // whole) * whole, "j_o_o")
    assert panels(M=WIDE_PANEL_MAX_ROWS, K=1000, N=150)[2] == "i_o"  # too few columns to cut
    kernel = loopweave.compile(matmul("f32"), tuning_db=False)
    rng = np.random.default_rng(16)
    for m, k, n in [(16, 1000, 333), (WIDE_PANEL_MAX_ROWS, 70, 4100), (3, 300, 50), (1, 9, 7)]:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        np.testing.assert_allclose(kernel(a, b), a @ b, rtol=1e-4, atol=1e-4 * k)


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_a_tile_of_rows_streams_b_unpacked(dtype):
    """C with at most two tiles of rows (a GEMV, a decoding step) reads B where it lies: no
    pack (`stream_steps`), tiles of equal height, its columns in STREAM_SPLITS parallel
    blocks. The AVX2 tile has 6 rows: 7 rows are two tiles of 4, 13 rows pack B again, as
    do more than STREAM_MAX_ROWS. Numerics at odd sizes."""
    rng = np.random.default_rng(17)
    np_type = {"f32": np.float32, "f64": np.float64}[dtype]
    sizes = [(1, 300, 70), (3, 1000, 333), (6, 37, 4100), (7, 70, 45), (8, 33, 1),
             (13, 50, 60), (STREAM_MAX_ROWS + 1, 40, 50)]
    for flags, streamed in [(HOST_AVX2, {1, 3, 6, 7, 8}), (None, set())]:
        kernel = loopweave.compile(matmul(dtype), tuning_db=False, cflags=flags)
        for m, k, n in sizes:
            a = rng.standard_normal((m, k)).astype(np_type)
            b = rng.standard_normal((k, n)).astype(np_type)
            np.testing.assert_allclose(kernel(a, b), a @ b, rtol=1e-4, atol=1e-4 * k)
            if flags is not None and HOST_AVX2 is not None:
                assert ("B_pack" not in kernel.source) == (m in streamed), m


def test_a_converted_a_streams_b():
    """With few rows, an f16 A streams B as f32 does, A converted per row tile and chunk of k
    (`A_pack`, 32 deep: in-process, one thread, f16 A 16 x 4096^2 8.9 -> 7.5 ms, 5 x 333 x 1000
    0.100 -> 0.046, f32 0.037); an f16 B into one tile of rows (5 of AVX2's 6) too (the test
    below)."""
    rng = np.random.default_rng(18)
    for a_type, b_type, packs in [("f16", "f32", ["A_pack"]), ("f32", "f16", [])]:
        reads = [f"f32({x}[{ix}])" if t == "f16" else f"{x}[{ix}]"
                 for x, ix, t in (("A", "i, k", a_type), ("B", "k, j", b_type))]
        kernel = loopweave.compile(f"""kernel mm(A: {a_type}[M, K], B: {b_type}[K, N])
            -> C: f32[M, N] {{ C[i, j] += {reads[0]} * {reads[1]} }}""", tuning_db=False,
            cost_model=False, cflags=HOST_AVX2)
        a = rng.standard_normal((5, 300)).astype(np.float16 if a_type == "f16" else np.float32)
        b = rng.standard_normal((300, 77)).astype(np.float16 if b_type == "f16" else np.float32)
        want = a.astype(np.float64) @ b.astype(np.float64)
        np.testing.assert_allclose(kernel(a, b), want, rtol=1e-4, atol=1e-4 * 300)
        if HOST_AVX2 is not None:
            assert [p for p in ("A_pack", "B_pack") if f"float {p}[" in kernel.source] == packs


def test_few_rows_keep_the_register_tile_at_a_few_tiles_of_columns():
    """The wide panels and the streamed blocks hold at least two tiles of columns: with one
    (NC = NR), isl's AST dropped the column loop and the tile's mark with it, and products of
    32-64 columns ran untiled (f32 on AVX-512)."""
    kernel = loopweave.compile(matmul("f32"), tuning_db=False)
    rng = np.random.default_rng(19)
    for m, k, n in [(7, 70, 45), (12, 300, 50), (40, 64, 32), (64, 100, 32), (5, 64, 65)]:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        np.testing.assert_allclose(kernel(a, b), a @ b, rtol=1e-4, atol=1e-4 * k)
        assert "lw_r0_0" in kernel.source, (m, k, n)


def _size_parameters(source: str, function: str = "lw_mm") -> list[str]:
    """The size parameters of the generated kernel function's C signature."""
    signature = source.split(f"void {function}(")[1].split(")")[0]
    return re.findall(r"int64_t (\w+)", signature)


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_a_contraction_is_built_for_its_strides_and_any_rows(dtype):
    """The rule's build has K and N fixed (`PanelRows.specialize`: constant strides), M left a
    parameter: calls at other M reuse the build of their K and N; a new K gets its own."""
    kernel = loopweave.compile(matmul(dtype), tuning_db=False)
    assert _size_parameters(kernel.source) == ["M", "K", "N"]  # before a call: generic
    assert panel_rows(front_end(matmul(dtype))).specialize == ("K", "N")
    rng = np.random.default_rng(13)
    np_type = {"f32": np.float32, "f64": np.float64}[dtype]
    sources = {}
    for m, k, n in [(37, 19, 45), (61, 19, 45), (PANEL_MIN_ROWS + 3, 19, 45), (37, 23, 45)]:
        a = rng.standard_normal((m, k)).astype(np_type)
        b = rng.standard_normal((k, n)).astype(np_type)
        np.testing.assert_allclose(kernel(a, b), a @ b, rtol=1e-4, atol=1e-4 * k)
        assert _size_parameters(kernel.source) == ["M"]
        sources[m, k] = kernel.source
    assert sources[37, 19] == sources[61, 19] != sources[37, 23]  # one build per K and N
    assert sources[PANEL_MIN_ROWS + 3, 19] != sources[37, 19]  # the default's rows, not few


def test_a_contraction_at_many_rows_is_lowered_once_per_strides(monkeypatch):
    """Calls at new M reuse the build of their K and N without lowering again (`TunedInvoker`
    keys such builds by the fixed sizes): 70 ms of Python per new M otherwise."""
    kernel = loopweave.compile(matmul("f32"), tuning_db=False, cost_model=False)
    lowered = []
    run = Pipeline.run
    monkeypatch.setattr(Pipeline, "run", lambda self, *a, **kw: lowered.append(a[1]) or run(
        self, *a, **kw))
    rng = np.random.default_rng(14)
    b = rng.standard_normal((19, 45)).astype(np.float32)
    for m in (PANEL_MIN_ROWS, PANEL_MIN_ROWS + 1, PANEL_MIN_ROWS + 7, 37, 61):
        a = rng.standard_normal((m, 19)).astype(np.float32)
        np.testing.assert_allclose(kernel(a, b), a @ b, rtol=1e-4, atol=1e-4 * 19)
    assert [sizes["M"] for sizes in lowered] == [PANEL_MIN_ROWS, 37]  # default, few rows


@pytest.mark.parametrize("narrow", ["f16", "bf16"])
def test_a_converted_b_streams_into_one_tile_of_rows(narrow):
    """An f16 or bf16 B streams where C's rows fit one tile (AVX2: 6), each vector of B
    converted once in registers (vcvtph2ps; bf16 a shift), one row too (a tile of one row:
    isl drops its rows loop), and is packed converted with more rows (two tiles would
    convert it twice). Numerics at odd sizes."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    if HOST_AVX2 is None:
        pytest.skip("not an x86 host: no AVX2 flags to force")
    np_narrow = {"f16": np.float16, "bf16": ml_dtypes.bfloat16}[narrow]
    kernel = loopweave.compile(f"""kernel mm(A: f32[M, K], B: {narrow}[K, N]) -> C: f32[M, N] {{
        C[i, j] += A[i, k] * f32(B[k, j]) }}""", tuning_db=False, cost_model=False,
                               cflags=HOST_AVX2)
    rng = np.random.default_rng(19)
    streamed = {1, 2, 4, 6}
    for m, k, n in [(1, 300, 77), (2, 33, 100), (4, 70, 45), (6, 129, 40), (7, 50, 60),
                    (12, 40, 70)]:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np_narrow)
        want = a.astype(np.float64) @ b.astype(np.float64)
        np.testing.assert_allclose(kernel(a, b), want, rtol=1e-4, atol=1e-4 * k)
        assert ("float B_pack[" not in kernel.source) == (m in streamed), m
        if m in streamed:  # converted in the register tile
            assert ("lw_widen_f16_" if narrow == "f16" else "<< 16))") in kernel.source


#: (narrow type, operands cast, AVX2 flags); bf16 x bf16 without them may be AMX's
NARROW_CASES = [(t, cast, avx2) for t in ("f16", "bf16") for cast in ("A", "B", "AB")
                for avx2 in (False, True) if not (t == "bf16" and cast == "AB" and not avx2)]


@pytest.mark.parametrize("narrow,cast,avx2", NARROW_CASES)
def test_narrow_float_operands_take_the_register_tile_converted_once(narrow, cast, avx2):
    """`C[i, j] += f32(A[i, k]) * f32(B[k, j])` with A, B or both f16 or bf16 take the f32
    register tile, each cast operand converted once as it is packed (`A_pack`, `B_pack` of
    f32; the AVX2 host's B in micro-panels). Converted per use, f16 A ran 2.7x slower than f32
    and a cast B got no tile at all (8x; 512^3, one thread). bf16 on both sides is AMX's
    where the build has it (tests/test_x86_gemm.py), so it is built for AVX2 here. Numerics
    at odd sizes and beyond one panel of rows."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    if avx2 and HOST_AVX2 is None:
        pytest.skip("not an x86 host: no AVX2 flags to force")
    np_narrow = {"f16": np.float16, "bf16": ml_dtypes.bfloat16}[narrow]
    types = {x: narrow if x in cast else "f32" for x in "AB"}
    reads = {x: f"f32({x}[{ix}])" if x in cast else f"{x}[{ix}]"
             for x, ix in (("A", "i, k"), ("B", "k, j"))}
    kernel = loopweave.compile(f"""kernel mm(A: {types['A']}[M, K], B: {types['B']}[K, N])
        -> C: f32[M, N] {{ C[i, j] += {reads['A']} * {reads['B']} }}""", tuning_db=False,
        cost_model=False, cflags=HOST_AVX2 if avx2 else None)
    rng = np.random.default_rng(15)
    for m, k, n in [(37, 19, 45), (1, 1, 1), (61, 257, 263), (PANEL_MIN_ROWS + 3, 300, 40)]:
        a = rng.standard_normal((m, k)).astype(np_narrow if "A" in cast else np.float32)
        b = rng.standard_normal((k, n)).astype(np_narrow if "B" in cast else np.float32)
        want = a.astype(np.float64) @ b.astype(np.float64)
        np.testing.assert_allclose(kernel(a, b), want, rtol=1e-4, atol=1e-4 * k)
        assert "lw_r0_0" in kernel.source or m == 1  # the register tile (1 x 1 x 1: none)
        if m > STREAM_MAX_ROWS:  # (fewer rows may stream B: the tests below)
            for x in "AB":
                assert (f"float {x}_pack[" in kernel.source) == (x in cast or x == "B"), x
        if narrow == "f16" and HOST_AVX2 is not None:  # the packs convert 8 or 16 at a time
            assert "_cvtph_ps(" in kernel.source
        assert "lw_f16_to_f32(A[" not in kernel.source.split("A_pack")[-1]


def test_a_converting_pack_serves_only_converting_reads():
    """cache_read's dtype: a statement that reads the tensor other than converted to that type
    is refused, naming it and the line (f16 elements are computed in f32: `f32(A[i, k])`)."""
    source = """kernel copy(A: f16[M, K]) -> D: f16[M, K] {
    D[i, k] = A[i, k]
}"""
    schedule = Schedule().tile("S0", k=16).cache_read("S0", "A", "k", dtype="f64")
    with pytest.raises(ScheduleError, match=r"cache_read of A as f64: S0 \(line 2\) reads A "
                                            "without converting it to f64"):
        loopweave.compile(source, schedule=schedule, tuning_db=False, cost_model=False)
    with pytest.raises(ScheduleError, match="unknown type 'f17'"):
        Schedule().cache_read("S1", "A", "i_o", dtype="f17")


def test_stride_sizes_fix_the_inner_dimensions_only():
    bmm = front_end("""kernel bmm(A: f32[Bt, M, K], B: f32[Bt, K, N]) -> C: f32[Bt, M, N] {
    C[b, i, j] += A[b, i, k] * B[b, k, j]
}""")
    assert stride_sizes(bmm) == ("M", "K", "N")
    fixed = fix_sizes(bmm, {"M": 5, "K": 7, "N": 3})
    assert fixed.sizes == ("Bt",)  # the batch stays a parameter
    assert [to_str(d) for d in fixed.tensors["A"].shape] == ["Bt", "5", "7"]


def _pack_loop_kinds(kernel_source: str, schedule=None) -> list[str]:
    """The kinds of the outermost loops that only copy into a packed buffer (loop AST)."""
    found = []

    def visit(node):
        stores = [n for n in walk(node) if isinstance(n, Store)]
        if isinstance(node, For) and stores and all(n.tensor.endswith("_pack") for n in stores):
            found.append(node.kind)
            return
        for child in children(node):
            visit(child)

    visit(Pipeline(kernel_source, schedule=schedule).stages().loops)
    return found


def test_a_large_pack_before_a_parallel_loop_runs_in_parallel():
    """The default's B panel (256 x 256) feeds a parallel loop: its copy is parallel too (it
    ran on one thread while the other waited). Packs into small buffers, or before a serial
    loop, stay serial: a fork costs about what a 64 KB copy does."""
    source = matmul("f32")
    assert _pack_loop_kinds(source) == ["parallel"]
    serial = Schedule().tile("S1", i=8, j=32, k=256).tile("S1", j_o=8).reorder(
        "S1", "j_o_o", "k_o", "i_o", "j_o", "k", "i", "j").cache_read("S1", "B", "i_o")
    assert _pack_loop_kinds(source, serial) == ["serial"]
    small = Schedule().tile("S1", i=8, j=32, k=32).tile("S1", j_o=2).reorder(
        "S1", "j_o_o", "k_o", "i_o", "j_o", "k", "i", "j").cache_read("S1", "B", "i_o").parallel(
        "S1", "i_o")
    assert _pack_loop_kinds(source, small) == ["serial"]  # 32 x 64 floats
    assert _pack_loop_kinds(source, serial.parallel("S1", "i_o")) == ["parallel"]
    check(loopweave.compile(source, tuning_db=False), "f32")
