"""Normalization before the default schedule (passes/normalize.py).

Two spellings of attention, of a convolution with a per-channel scale and of an int8 matmul with
its requantization multiplier give the same innermost loops in the generated C (the
contraction's micro-kernel and its edge loops); each spelling matches numpy at odd sizes on the
host, and the spellings normalization rewrites also on every other target whose tools are here
(aarch64 and cortex-m4 under QEMU, Triton's interpreter, CUDA's CPU emulation), skipping with
the reason where they are not. The cases
normalization must leave alone (an `inout` or already-written accumulator, a factor that varies
with the reduction, an integer division, max=) are left alone, and a user schedule sees the
front end's statements.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported: no GPU here

import importlib.util  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import loopweave  # noqa: E402
from loopweave.driver import stages  # noqa: E402
from loopweave.passes.normalize import normalize  # noqa: E402
from loopweave.pipeline import (  # noqa: E402
    apply_schedule,
    default_schedule,
    front_end,
    get_target,
)

ATTENTION_INSIDE = """
kernel attention(Q: f32[LQ, D], K: f32[LK, D], V: f32[LK, DV], scale: f32) -> O: f32[LQ, DV] {
    P[l, s] += Q[l, e] * K[s, e] * scale
    m[l] max= P[l, s]
    W[l, s] = exp(P[l, s] - m[l])
    z[l] += W[l, s]
    O[l, e] += W[l, s] * V[s, e] / z[l]
}
"""
ATTENTION_OUTSIDE = """
kernel attention(Q: f32[LQ, D], K: f32[LK, D], V: f32[LK, DV], scale: f32) -> O: f32[LQ, DV] {
    P[l, s] += Q[l, e] * K[s, e]
    m[l] max= P[l, s]
    W[l, s] = exp(scale * (P[l, s] - m[l]))
    z[l] += W[l, s]
    U[l, e] += W[l, s] * V[s, e]
    O[l, e] = U[l, e] / z[l]
}
"""
# A convolution with a per-output-channel scale (a folded batch norm), inside and after.
CONV_INSIDE = """
kernel conv(X: f32[N, C, H, W], F: f32[K, C, R, S], g: f32[K])
        -> Y: f32[N, K, H - R + 1, W - S + 1] {
    assume H >= R
    assume W >= S
    Y[n, k, y, x] += X[n, c, y + r, x + s] * F[k, c, r, s] * g[k]
}
"""
CONV_OUTSIDE = """
kernel conv(X: f32[N, C, H, W], F: f32[K, C, R, S], g: f32[K])
        -> Y: f32[N, K, H - R + 1, W - S + 1] {
    assume H >= R
    assume W >= S
    Y[n, k, y, x] += X[n, c, y + r, x + s] * F[k, c, r, s]
    Y[n, k, y, x] = Y[n, k, y, x] * g[k]
}
"""
# The same through a temporary: the default fuses the sum with the scaling (making T local) and
# so loses the convolution's register tile (passes/default.py's fusion spares contractions only).
CONV_TEMPORARY = """
kernel conv(X: f32[N, C, H, W], F: f32[K, C, R, S], g: f32[K])
        -> Y: f32[N, K, H - R + 1, W - S + 1] {
    assume H >= R
    assume W >= S
    T[n, k, y, x] += X[n, c, y + r, x + s] * F[k, c, r, s]   where y in 0:H - R + 1,
                                                               x in 0:W - S + 1
    Y[n, k, y, x] = T[n, k, y, x] * g[k]
}
"""
# int8 x int8 in int32 with the requantization multiplier inside the sum or applied after it:
# equal in wrapping int32 arithmetic, so the normalized form is exact.
REQUANT_INSIDE = """
kernel requant(A: i8[M, K], B: i8[K, N], multiplier: i32, shift: i32) -> C: i8[M, N] {
    acc[i, j] += i32(A[i, k]) * i32(B[k, j]) * multiplier
    C[i, j] = i8(min(127, max(-128, (acc[i, j] + (1 << (shift - 1))) >> shift)))
}
"""
REQUANT_OUTSIDE = """
kernel requant(A: i8[M, K], B: i8[K, N], multiplier: i32, shift: i32) -> C: i8[M, N] {
    acc[i, j] += i32(A[i, k]) * i32(B[k, j])
    C[i, j] = i8(min(127, max(-128, (acc[i, j] * multiplier + (1 << (shift - 1))) >> shift)))
}
"""
# Reductions inside a `for` loop: the scaling statements go inside it, after each reduction.
IN_A_LOOP = """
kernel steps(A: f32[T, N, K], B: f32[K, M], w: f32[T, N]) -> C: f32[T, N, M], r: f32[T, N] {
    for t in 0:T {
        C[t, i, j] += A[t, i, k] * B[k, j] * w[t, i]
        r[t, i] += C[t, i, j] / 2.0
    }
}
"""


TWO_SUMS = """
kernel two_sums(alpha: f32, A: f32[M, K], B: f32[K, N], C: f32[N, L]) -> D: f32[M, L] {
    t[i, j] += alpha * A[i, k] * B[k, j]
    D[i, l] += t[i, j] * C[j, l]
}
"""


# -- numpy references ------------------------------------------------------------------------

def _attention(a):
    s = a["scale"] * (a["Q"].astype(np.float64) @ a["K"].T)
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return {"O": (e / e.sum(axis=1, keepdims=True)) @ a["V"]}


def _conv(a):
    x, f = a["X"].astype(np.float64), a["F"]
    k, _, r, s = f.shape
    h, w = x.shape[2] - r + 1, x.shape[3] - s + 1
    y = np.zeros((x.shape[0], k, h, w))
    for dr in range(r):
        for ds in range(s):
            y += np.einsum("nchw,kc->nkhw", x[:, :, dr:dr + h, ds:ds + w], f[:, :, dr, ds])
    return {"Y": y * a["g"][None, :, None, None]}


def _requant(a):
    acc = (a["A"].astype(np.int32) @ a["B"].astype(np.int32)) * np.int32(a["multiplier"])
    shifted = (acc + np.int32(1 << (a["shift"] - 1))) >> np.int32(a["shift"])
    return {"C": np.clip(shifted, -128, 127).astype(np.int8)}


def _steps(a):
    c = np.einsum("tik,kj->tij", a["A"].astype(np.float64), a["B"]) * a["w"][:, :, None]
    return {"C": c, "r": c.sum(axis=2) / 2.0}


def _inputs(kind: str, rng: np.random.Generator) -> dict:
    f32 = np.float32
    if kind == "attention":
        lq, lk, d, dv = 19, 37, 5, 7
        return {"Q": rng.standard_normal((lq, d), dtype=f32),
                "K": rng.standard_normal((lk, d), dtype=f32),
                "V": rng.standard_normal((lk, dv), dtype=f32), "scale": f32(0.43)}
    if kind == "conv":
        return {"X": rng.standard_normal((1, 3, 9, 13), dtype=f32),
                "F": rng.standard_normal((5, 3, 3, 2), dtype=f32),
                "g": rng.uniform(0.5, 2.0, 5).astype(f32)}
    if kind == "requant":
        return {"A": rng.integers(-128, 128, (13, 37), dtype=np.int8),
                "B": rng.integers(-128, 128, (37, 19), dtype=np.int8),
                "multiplier": 1 << 12, "shift": 17}  # wraps: 2^14 * 37 * 2^12 > 2^31
    return {"A": rng.standard_normal((3, 7, 11), dtype=f32),
            "B": rng.standard_normal((11, 9), dtype=f32),
            "w": rng.standard_normal((3, 7), dtype=f32)}


SPELLINGS = {"attention inside": ("attention", ATTENTION_INSIDE, _attention),
             "attention outside": ("attention", ATTENTION_OUTSIDE, _attention),
             "conv inside": ("conv", CONV_INSIDE, _conv),
             "conv outside": ("conv", CONV_OUTSIDE, _conv),
             "conv through a temporary": ("conv", CONV_TEMPORARY, _conv),
             "requant inside": ("requant", REQUANT_INSIDE, _requant),
             "requant outside": ("requant", REQUANT_OUTSIDE, _requant),
             "in a loop": ("steps", IN_A_LOOP, _steps)}


# -- the generated code: innermost loops ---------------------------------------------------------

def innermost_loops(source: str, *tensors: str) -> list[str]:
    """The text of every innermost braced `for` loop of C `source` that reads all of
    `tensors` (as `T[` or a packed copy `T_pack[`), in source order."""
    found = []
    for start in (m.start() for m in re.finditer(r"\bfor \(", source)):
        open_at = source.find("{", start)
        if source.find("\n", start) < open_at:
            continue  # a one-line loop without braces (a helper's lane loop)
        depth, end = 0, open_at
        for end in range(open_at, len(source)):
            depth += {"{": 1, "}": -1}.get(source[end], 0)
            if depth == 0:
                break
        body = source[open_at + 1:end]
        if "for (" in body:
            continue
        if all(re.search(rf"\b{t}(_pack)?\[", body) for t in tensors):
            found.append(source[start:end + 1])
    return found


# (spelling inside, spelling outside, the contraction's operands, the accumulator's name in
# the second spelling -> in the first: edge loops name it)
CONTRACTIONS = [(ATTENTION_INSIDE, ATTENTION_OUTSIDE, ("Q", "K"), {}),  # Q @ K^T
                (ATTENTION_INSIDE, ATTENTION_OUTSIDE, ("W", "V"), {"U": "O"}),  # softmax @ V
                (CONV_INSIDE, CONV_OUTSIDE, ("X", "F"), {}),
                (REQUANT_INSIDE, REQUANT_OUTSIDE, ("A", "B"), {}),
                (CONV_INSIDE, CONV_TEMPORARY, ("X", "F"), {"T": "Y"})]


def _renamed(source: str, names: dict[str, str]) -> str:
    """`source` with tensors (and their `_acc`/`_pack` buffers) renamed."""
    for old, new in names.items():
        source = re.sub(rf"\b{old}(?=(_acc|_pack)?\[)", new, source)
    return source


@pytest.mark.parametrize("target", ["cpu", "aarch64"])
@pytest.mark.parametrize(("inside", "outside", "operands", "names"), CONTRACTIONS,
                         ids=["attention QK", "attention PV", "conv", "int8 requant",
                              "conv through a temporary"])
def test_equal_spellings_share_the_inner_loops(inside, outside, operands, names, target):
    a = innermost_loops(stages(inside, target).source, *operands)
    b = innermost_loops(_renamed(stages(outside, target).source, names), *operands)
    assert a, f"no innermost loop reads {operands}"
    # Through a temporary, the convolution's edge tiles are also pulled back over the tile
    # before them (ir/strips.overlapped_tile), the strips then one `if` deeper; scaled in
    # place, Y may not be (the scale of the tile before would be undone): those tiles aside,
    # the loops are the same.
    assert _not_pulled_back(a) == _not_pulled_back(b)


#: A tile's first row or column as a pulled-back edge tile starts it: min(first, end - size).
PULLED_BACK = re.compile(r"lw_min_i64\(\d+ \* c\d+, ")


def _not_pulled_back(loops: list[str]) -> list[str]:
    """The loops but those of pulled-back tiles, without their indentation."""
    return ["\n".join(line.strip() for line in loop.splitlines())
            for loop in loops if not PULLED_BACK.search(loop)]


def test_the_factors_are_what_kept_the_micro_kernel_away():
    """Without normalization (a schedule function running the default on the front end's IR),
    the spelling with factors inside gets other inner loops: the test above can fail."""
    target = get_target("cpu")
    raw = stages(ATTENTION_INSIDE, "cpu", schedule=lambda k: apply_schedule(
        k, default_schedule(k, target))).source
    assert innermost_loops(raw, "W", "V") != innermost_loops(
        stages(ATTENTION_OUTSIDE, "cpu").source, "W", "V")


# -- numbers against numpy on every target --------------------------------------------------------

TOOLS = {"aarch64": ("aarch64-linux-gnu-gcc", "qemu-aarch64"),
         "cortex-m4": ("arm-none-eabi-gcc", "qemu-system-arm"), "cuda": ("g++",)}
TARGETS = ["cpu", "aarch64", "cortex-m4", "triton", "cuda"]


def _compile(source: str, target: str) -> loopweave.Kernel:
    for tool in TOOLS.get(target, ()):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (make toolchains)")
    options = {"emulate": True} if target == "cuda" else {}
    if target == "triton":
        for package in ("triton", "torch"):
            if importlib.util.find_spec(package) is None:
                pytest.skip(f"{package} not installed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sequential-loop notes of the GPU targets
        return loopweave.compile(source, target=target, tuning_db=False, **options)


# The spellings normalization rewrites run on every target (the loop case on the host and
# aarch64 only, for time); the others, which it leaves as written, on the host.
REWRITTEN = ("attention inside", "conv inside", "requant inside", "in a loop")
NUMERIC_CASES = [(s, t) for s in sorted(SPELLINGS) for t in TARGETS
                 if t == "cpu" or (s in REWRITTEN and (s != "in a loop" or t == "aarch64"))]


@pytest.mark.parametrize(("spelling", "target"), NUMERIC_CASES)
def test_spellings_match_numpy(spelling, target):
    kind, source, reference = SPELLINGS[spelling]
    args = _inputs(kind, np.random.default_rng(7))
    kernel = _compile(source, target)
    got = kernel(**args)
    got = dict(zip(reference(args), got if isinstance(got, tuple) else (got,), strict=True))
    for name, want in reference(args).items():
        result = np.asarray(got[name])
        if want.dtype.kind == "i":
            np.testing.assert_array_equal(result, want, err_msg=f"{spelling} on {target}")
        else:
            np.testing.assert_allclose(result, want, rtol=2e-4, atol=2e-5,
                                       err_msg=f"{spelling} on {target}")


# -- what the pass does and leaves alone ------------------------------------------------------

def _text(source: str) -> list[str]:
    """The statements of the normalized IR, as `name: lhs op rhs`."""
    kernel = normalize(front_end(source))
    return [str(s).split("  (")[0] for s in kernel.statements]


def test_factors_move_after_their_reductions():
    """Into the reads of a temporary; into a statement after the reduction for an output."""
    assert _text(ATTENTION_INSIDE)[1:] == [
        "S1[l, s, e]: P[l, s] += Q[l, e] * K[s, e]", "S2[l]: m[l] = -inf",
        "S3[l, s]: m[l] max= P[l, s] * scale", "S4[l, s]: W[l, s] = exp(P[l, s] * scale - m[l])",
        "S5[l]: z[l] = 0.0", "S6[l, s]: z[l] += W[l, s]", "S7[l, e]: O[l, e] = 0.0",
        "S8[l, e, s]: O[l, e] += W[l, s] * V[s, e]",
        "S8_scale[l, e]: O[l, e] = O[l, e] * (1.0 / z[l])"]  # (passes/reciprocals.py)
    loop = _text(IN_A_LOOP)
    assert loop == ["S0[t, i, j]: C[t, i, j] = 0.0", "S1[t, i, j, k]: C[t, i, j] += "
                    "A[t, i, k] * B[k, j]", "S1_scale[t, i, j]: C[t, i, j] = C[t, i, j] * "
                    "w[t, i]", "S2[t, i]: r[t, i] = 0.0", "S3[t, i, j]: r[t, i] += C[t, i, j]",
                    "S3_scale[t, i]: r[t, i] = r[t, i] * (1.0 / 2.0)"]
    # the requantization reads acc * multiplier: the other spelling, exactly
    assert _text(REQUANT_INSIDE) == _text(REQUANT_OUTSIDE)
    # a temporary that another sum reads is scaled after its reduction (two_mm's alpha stays
    # out of the second contraction)
    assert _text(TWO_SUMS)[1:3] == ["S1[i, j, k]: t[i, j] += A[i, k] * B[k, j]",
                                    "S1_scale[i, j]: t[i, j] = t[i, j] * alpha"]
    # a negated product and a divisor inside a quotient's denominator
    assert _text("""kernel k(A: f32[M, K], B: f32[K, N], d: f32[M]) -> C: f32[M, N] {
        C[i, j] -= A[i, k] / (d[i] / B[k, j])
    }""")[1:] == ["S1[i, j, k]: C[i, j] += -(A[i, k] * B[k, j])",
                  "S1_scale[i, j]: C[i, j] = C[i, j] * (1.0 / d[i])"]


LEFT_ALONE = {
    "inout accumulator": """kernel k(A: f32[M, K], B: f32[K, N], s: f32, C: inout f32[M, N]) {
        C[i, j] += A[i, k] * B[k, j] * s
    }""",
    "written before": """kernel k(A: f32[M, K], B: f32[K, N], s: f32, b: f32[N]) -> C: f32[M, N] {
        C[i, j] = b[j]
        C[i, j] += A[i, k] * B[k, j] * s
    }""",
    "factor varies with the reduction": """kernel k(A: f32[M, K], B: f32[K, N], w: f32[K])
            -> C: f32[M, N] {
        C[i, j] += A[i, k] * B[k, j] * w[k]
    }""",
    "reads its accumulator": """kernel k(A: f32[M, K], s: f32) -> C: f32[M] {
        C[i] += A[i, k] * s * C[0]   where i in 1:M
    }""",
    "integer division": """kernel k(A: i32[M, K], d: i32) -> C: i32[M] {
        C[i] += A[i, k] / d
    }""",
    "max reduction": """kernel k(A: f32[M, K], s: f32) -> C: f32[M] {
        C[i] max= A[i, k] * s
    }""",
    "nothing but the factor": """kernel k(A: f32[M, K], s: f32) -> C: f32[M] {
        C[i] += s   where k in 0:K
    }""",
}


@pytest.mark.parametrize("name", sorted(LEFT_ALONE))
def test_what_may_not_move_stays(name):
    kernel = front_end(LEFT_ALONE[name])
    assert normalize(kernel) is kernel


def test_left_alone_kernels_still_match_numpy():
    """The inout accumulator keeps its prior contents: acc + sum * s, not (acc + sum) * s."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((7, 9), dtype=np.float32)
    b = rng.standard_normal((9, 5), dtype=np.float32)
    c = rng.standard_normal((7, 5), dtype=np.float32)
    want = c + 0.5 * (a @ b)
    kernel = _compile(LEFT_ALONE["inout accumulator"], "cpu")
    kernel(a, b, np.float32(0.5), c)
    np.testing.assert_allclose(c, want, rtol=2e-5, atol=2e-5)


def test_only_the_default_path_normalizes():
    """A user schedule names the front end's statements; the default sees the normalized IR."""
    assert "S8_scale" in stages(ATTENTION_INSIDE, "cpu").ir.statement
    schedule = loopweave.Schedule().tile("S1", l=4, s=8)
    scheduled = stages(ATTENTION_INSIDE, "cpu", schedule=schedule)
    assert "S8_scale" not in scheduled.ir.statement
    assert "Q[l, e] * K[s, e] * scale" in str(scheduled.ir)
