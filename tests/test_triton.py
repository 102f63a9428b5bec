"""The Triton backend, run on the CPU through Triton's interpreter (TRITON_INTERPRET=1).

Every example kernel is compiled for target "triton" and checked against its numpy reference
on odd sizes; small blocks force several programs, reduction blocks and online-softmax
rescaling; golden files pin the generated source of matmul, softmax and attention; an
ahead-of-time compile to PTX (in a subprocess whose Triton does not interpret) shows the code
is valid for a real GPU. GPU runs themselves are not covered here.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported: no GPU here

import subprocess  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import loopweave  # noqa: E402

pytest.importorskip("triton", reason="triton not installed")
torch = pytest.importorskip("torch", reason="torch not installed")

from test_kernels import refs  # noqa: E402

from loopweave.backends.triton import SequentialLoopWarning  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"

if os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("TRITON_INTERPRET was set to something else before the tests",
                allow_module_level=True)

_compiled: dict = {}


def triton_kernel(name: str, **options):
    key = (name, repr(sorted(options.items())))
    if key not in _compiled:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SequentialLoopWarning)
            _compiled[key] = loopweave.compile(refs.KERNELS[name].source(), target="triton",
                                               **options)
    return _compiled[key]


def check(name: str, sizes: dict, seed: int = 5, **options) -> None:
    case = refs.KERNELS[name]
    args = case.make_inputs(sizes, seed)
    expected = case.expected(args)
    got = refs.results_of(case, args, triton_kernel(name, **options)(*args.values()))
    for out, want in expected.items():
        assert got[out].dtype == want.dtype and got[out].shape == want.shape, (name, out)
        err, ok = refs.compare(got[out], want, case.tol_scale)
        assert ok, f"{name}: {out} differs from numpy by {err:g} at sizes {sizes}"


@pytest.mark.parametrize("name", sorted(refs.KERNELS))
def test_kernel_matches_numpy(name):
    check(name, refs.KERNELS[name].sizes[0])


# Blocks smaller than the sizes: several programs, partial edge tiles, several reduction blocks.
SMALL_BLOCKS = [
    ("matmul", {"M": 33, "K": 40, "N": 17}, {"i": 16, "j": 16, "k": 16}),
    ("bmm", {"NB": 2, "M": 17, "K": 19, "N": 18}, {"i": 16, "j": 16, "k": 16}),
    ("softmax", {"N": 5, "D": 37}, {"i": 2, "j": 8}),
    ("layernorm", {"N": 5, "D": 37}, {"i": 4, "j": 16}),
    ("attention", {"LQ": 19, "LK": 45, "D": 8, "DV": 5}, {"i": 16, "j": 16}),
    ("conv2d", {"N": 1, "C": 3, "H": 7, "W": 9, "K": 2, "R": 3, "S": 2},
     {"y": 4, "x": 4, "c_r_s": 4}),
    ("trmm", {"M": 9, "N": 7}, {"j": 4, "k": 4}),
    ("syrk", {"N": 9, "M": 5}, {"i": 16, "j": 16, "k": 16}),
    ("linear_f16", {"M": 17, "K": 33, "N": 18}, {"i": 16, "j": 16, "k": 16}),
]


@pytest.mark.parametrize(("name", "sizes", "block"), SMALL_BLOCKS,
                         ids=[c[0] for c in SMALL_BLOCKS])
def test_small_blocks_odd_sizes(name, sizes, block):
    check(name, sizes, block=block)


def test_attention_is_one_online_softmax_kernel():
    """FlashAttention-2 as steps (passes/gpu_online): one launch, both products tl.dot, the
    scores, exponentials and row statistics in registers (backends/triton_registers)."""
    source = triton_kernel("attention").source
    assert "lowered from its schedule" in source and source.count("[grid](") == 1
    for scratch in ("s", "e", "p", "m", "z", "m_old", "m_alpha"):  # never in memory
        assert f" {scratch}_ptr" not in source and f"({scratch}_ptr" not in source, scratch
    assert source.count("tl.dot(") == 2 and "m_alpha_reg" in source  # rescaled as m grows


def test_softmax_and_layernorm_keep_rows_in_registers():
    for name in ("softmax", "layernorm"):
        source = triton_kernel(name).source
        assert source.count("@triton.jit") == 1, name
        assert "m_ptr" not in source and "mean_ptr" not in source


def test_contractions_use_tl_dot():
    for name in ("matmul", "bmm", "gemm", "linear_f16", "matmul_int4"):
        assert "tl.dot(" in triton_kernel(name).source, name


@pytest.mark.parametrize("name", ["matmul", "softmax", "attention"])
def test_golden_source(name, update_golden):
    source = triton_kernel(name).source
    path = GOLDEN / f"triton_{name}.py.txt"  # .txt: generated code, not linted
    if update_golden:
        path.write_text(source)
    assert path.exists(), f"{path} missing; run pytest --update-golden"
    assert source == path.read_text()


def test_sequential_loops_warn():
    # seidel's `for t` holds one statement: t is one more loop of it, all in one program
    with pytest.warns(SequentialLoopWarning, match=r"loops t, i, j .*inside one program"):
        loopweave.compile(refs.KERNELS["seidel_2d"].source(), target="triton")
    with pytest.warns(SequentialLoopWarning, match="loop t runs as a sequence of launches"):
        loopweave.compile(refs.KERNELS["jacobi_1d"].source(), target="triton",
                          schedule=loopweave.Schedule())  # the planner's words
    with pytest.warns(SequentialLoopWarning, match="host loop .* one launch per iteration"):
        loopweave.compile(refs.KERNELS["jacobi_1d"].source(), target="triton")
    with pytest.warns(SequentialLoopWarning, match="loop i .*inside each program"):
        loopweave.compile(refs.KERNELS["trmm"].source(), target="triton",
                          schedule=loopweave.Schedule())  # the planner's; the default binds it
    with warnings.catch_warnings():
        warnings.simplefilter("error", SequentialLoopWarning)
        loopweave.compile(refs.KERNELS["matmul"].source(), target="triton")


def test_torch_tensors_in_torch_tensors_out():
    k = triton_kernel("matmul")
    a, b = torch.rand(5, 7), torch.rand(7, 3)
    c = k(a, b)
    assert isinstance(c, torch.Tensor) and c.dtype == torch.float32
    torch.testing.assert_close(c, a @ b, rtol=1e-5, atol=1e-5)
    gemm = triton_kernel("gemm")
    cc, a, b = torch.rand(4, 6), torch.rand(4, 5), torch.rand(5, 6)
    want = 1.5 * (a @ b) + 0.5 * cc
    assert gemm(1.5, 0.5, cc, a, b) is None
    torch.testing.assert_close(cc, want, rtol=1e-5, atol=1e-5)  # updated in place
    out = k(np.ones((2, 3), np.float32), np.ones((3, 4), np.float32))
    assert isinstance(out, np.ndarray)  # numpy in, numpy out


def test_torch_argument_errors():
    k = triton_kernel("matmul")
    with pytest.raises(loopweave.ArgumentTypeError, match="dtype"):
        k(torch.rand(2, 3, dtype=torch.float64), torch.rand(3, 2))
    with pytest.raises(loopweave.ArgumentValueError, match="shape"):
        k(torch.rand(2, 3), torch.rand(4, 2))


@pytest.mark.parametrize(("options", "message"), [
    ({"blok": {}}, "no option 'blok'"),
    ({"block": {"i": 48}}, "power of two"),
    ({"block": {"i": 0}}, "power of two"),
    ({"block": [64]}, "dict"),
    ({"block": {"q": 64}}, "not loops of kernel 'matmul'"),
    ({"num_warps": 3}, "num_warps"),
    ({"num_stages": 0}, "num_stages"),
    ({"input_precision": "fp8"}, "input_precision"),
    ({"cflags": "-O2"}, "C compiler"),
])
def test_bad_options(options, message):
    with pytest.raises(loopweave.TargetError, match=message):
        loopweave.compile(refs.KERNELS["matmul"].source(), target="triton", **options)


def test_options_reach_the_launch():
    """`block` sizes the dot tiles of the default schedule (rows i, columns j, step k), as
    they size the planner's blocks."""
    kernel = triton_kernel("matmul", block={"i": 32, "k": 64}, num_warps=8, num_stages=3)
    assert "lowered from its schedule" in kernel.source
    assert "tl.arange(0, 32).to(tl.int64)[:, None]" in kernel.source  # rows
    assert "tl.arange(0, 64).to(tl.int64)[None, :]" in kernel.source  # columns, k of A's tile
    assert "tl.arange(0, 64).to(tl.int64)[:, None]" in kernel.source  # k of B's tile
    assert "num_warps=8, num_stages=3" in kernel.source
    a, b = np.random.rand(45, 70).astype(np.float32), np.random.rand(70, 33).astype(np.float32)
    np.testing.assert_allclose(kernel(a, b), a @ b, rtol=1e-5, atol=1e-5)
    small = triton_kernel("matmul", block={"k": 8}).source
    assert "tl.arange(0, 16).to(tl.int64)[:, None]" in small  # tl.dot's smallest tile
    planner = loopweave.compile(refs.KERNELS["matmul"].source(), target="triton",
                                schedule=loopweave.Schedule(), block={"i": 32, "k": 64},
                                num_warps=8, num_stages=3).source
    assert "BLOCK_I=32, BLOCK_J=64, BLOCK_K=64, num_warps=8, num_stages=3" in planner


def test_tuning_space_names_the_blocks():
    from loopweave.backends.triton import tuning_space
    from loopweave.driver import front_end

    space = tuning_space(front_end(refs.KERNELS["matmul"].source()))
    assert set(space["block"]) == {"i", "j", "k"} and min(space["block"]["k"]) == 16
    assert space["num_warps"] and space["num_stages"]


AOT = """
import sys
from loopweave.backends.triton import aot_compile
from loopweave.driver import stages
for name in sys.argv[1:]:
    st = stages(open(f"examples/kernels/{name}.lw").read(), target="triton")
    for fn, ptx in aot_compile(st.ir, st.source, arch=90).items():
        assert ".target sm_90" in ptx and ".entry " + fn in ptx, fn
        print(name, fn, len(ptx))
"""


def test_ptx_for_a_real_gpu_ahead_of_time():
    """Triton's own compiler (no GPU needed) accepts the generated code for sm_90."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, "-c", AOT, "matmul", "attention", "seidel_2d"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "attention lw_attention_k0" in result.stdout
