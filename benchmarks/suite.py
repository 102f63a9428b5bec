"""The kernel suite of issue [benchmarks]: each entry names a DSL kernel in examples/kernels/,
its benchmark sizes, the work one call does, and how numpy and torch compute the same thing.

Inputs come from the kernel's `make_inputs` in examples/references/, so every implementation
sees the same arrays. A peer factory takes those arguments and returns a zero-argument callable
(conversions happen outside the timed call).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.harness import Work

ROOT = Path(__file__).resolve().parent.parent


Args = dict
Peer = Callable[[Args], Callable[[], object]]


@dataclass(frozen=True)
class SuiteKernel:
    """One benchmark: DSL kernel `case` (examples/kernels/<case>.lw) at `sizes`."""

    name: str
    case: str
    sizes: dict[str, int]
    quick_sizes: dict[str, int]
    work: Callable[[dict[str, int]], Work]
    numpy: Peer | None = None
    torch: Callable[[object, Args], Callable[[], object]] | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


# ---- work of one call: flops and the bytes that must cross the memory bus at least once ------

def _matmul_work(s):
    m, k, n = s["M"], s["K"], s["N"]
    return Work(2.0 * m * n * k, 4.0 * (m * k + k * n + m * n))


def _bmm_work(s):
    w = _matmul_work(s)
    return Work(s["NB"] * w.flops, s["NB"] * w.bytes)


def _conv_out(s):
    return s["H"] - s["R"] + 1, s["W"] - s["S"] + 1


def _conv2d_work(s):
    oh, ow = _conv_out(s)
    n, c, k = s["N"], s["C"], s["K"]
    return Work(2.0 * n * k * oh * ow * c * s["R"] * s["S"],
                4.0 * (n * c * s["H"] * s["W"] + k * c * s["R"] * s["S"] + n * k * oh * ow))


def _depthwise_work(s):
    oh, ow = _conv_out(s)
    n, c = s["N"], s["C"]
    return Work(2.0 * n * c * oh * ow * s["R"] * s["S"],
                4.0 * (n * c * s["H"] * s["W"] + c * s["R"] * s["S"] + n * c * oh * ow))


def _maxpool_work(s):  # 3 comparisons per output; read X, write O (a quarter of X)
    out = s["C"] * (s["H"] // 2) * (s["W"] // 2)
    return Work(3.0 * out, 4.0 * (s["C"] * s["H"] * s["W"] + out))


def _rowwise_work(s):  # read X, write Y (plus the per-column vectors, negligible)
    return Work(0.0, 8.0 * s["N"] * s["D"] + 8.0 * s["D"])


def _attention_work(s):
    lq, lk, d, dv = s["LQ"], s["LK"], s["D"], s["DV"]
    return Work(2.0 * lq * lk * (d + dv), 4.0 * (lq * d + lk * d + lk * dv + lq * dv))


def _qmm_work(s):
    m, k, n = s["M"], s["K"], s["N"]
    return Work(2.0 * m * n * k, 1.0 * (m * k + k * n + m * n) + 4.0 * n)


def _int4_work(s):
    m, k, n = s["M"], s["K"], s["N"]
    return Work(2.0 * m * n * k, 4.0 * m * k + k * n / 2 + 4.0 * (k // 128) * n + 4.0 * m * n)


def _scan_work(s):  # per (t, d, n): 4 for the state update, 2 for the output (exp not counted)
    t, d, ns = s["T"], s["D"], s["NS"]
    return Work(6.0 * t * d * ns, 4.0 * (3 * t * d + 2 * t * ns + 2 * d * ns))


def _conv2d_s2_work(s):
    oh, ow = (s["H"] + 2 - s["R"]) // 2 + 1, (s["W"] + 2 - s["S"]) // 2 + 1
    n, c, k = s["N"], s["C"], s["K"]
    return Work(2.0 * n * k * oh * ow * c * s["R"] * s["S"],
                4.0 * (n * c * s["H"] * s["W"] + k * c * s["R"] * s["S"] + n * k * oh * ow))


def _lstm_work(s):  # the two contractions of each step (input and hidden); the gates not counted
    t, b, i, h = s["T"], s["B"], s["I"], s["H"]
    return Work(2.0 * t * b * 4 * h * (i + h),
                4.0 * (t * b * i + 4 * h * (i + h + 1) + t * b * h + 4 * b * h))


# ---- numpy peers -----------------------------------------------------------------------------

def _np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _np_conv2d(a):
    from numpy.lib.stride_tricks import sliding_window_view

    x, f = a["X"], a["F"]
    return lambda: np.einsum("ncyxrs,kcrs->nkyx",
                             sliding_window_view(x, f.shape[2:], axis=(2, 3)), f, optimize=True)


def _np_depthwise(a):
    x, f = a["X"], a["F"]
    c, rr, ss = f.shape
    oh, ow = x.shape[2] - rr + 1, x.shape[3] - ss + 1

    def run():
        y = np.zeros((x.shape[0], c, oh, ow), dtype=np.float32)
        for r in range(rr):
            for s in range(ss):
                y += x[:, :, r:r + oh, s:s + ow] * f[None, :, r, s, None, None]
        return y
    return run


def _np_maxpool2d(a):
    x = a["X"]
    c, h, w = x.shape
    return lambda: x[:, :h // 2 * 2, :w // 2 * 2].reshape(c, h // 2, 2, w // 2, 2).max(axis=(2, 4))


def _np_layernorm(a):
    x, g, b, eps = a["X"], a["gamma"], a["beta"], a["eps"]

    def run():
        mean = x.mean(axis=1, keepdims=True)
        xc = x - mean
        return xc / np.sqrt((xc * xc).mean(axis=1, keepdims=True) + eps) * g + b
    return run


def _np_rmsnorm_gelu(a):
    from scipy.special import erf  # numpy has no erf; scipy's is vectorised

    x, g, eps = a["X"], a["gamma"], a["eps"]

    def run():
        xn = x / np.sqrt((x * x).mean(axis=1, keepdims=True) + eps) * g
        return 0.5 * xn * (1.0 + erf(xn * np.float32(0.7071067811865476)))
    return run


def _np_attention(a):
    q, k, v, scale = a["Q"], a["K"], a["V"], a["scale"]
    return lambda: _np_softmax(scale * (q @ k.T)) @ v


def _np_qmm_requant(a):
    A, B, bias = a["A"], a["B"], a["bias"]
    mult, shift, zp = int(a["multiplier"]), int(a["shift"]), int(a["zero_point"])

    def run():
        acc = (A.astype(np.int32) @ B.astype(np.int32) + bias).astype(np.int64)
        v = ((acc * mult + (1 << (shift - 1))) >> shift) + zp
        return np.clip(v, -128, 127).astype(np.int8)
    return run


def _np_int4_grouped(a):
    x, w, scales = a["X"], a["W"], a["scales"]

    def run():  # dequantize the whole weight matrix, then a BLAS matmul
        q = np.empty((2 * w.shape[0], w.shape[1]), dtype=np.int8)
        q[0::2] = w & 15
        q[1::2] = w >> 4
        wd = (q - np.int8(8)).astype(np.float32) * np.repeat(scales, 128, axis=0)
        return x @ wd
    return run


def _scan(exp, x, delta, A, B, C, h, y):
    """The selective scan step by step in t, vectorised over (D, NS); numpy or torch arrays."""
    for t in range(x.shape[0]):
        h = exp(delta[t][:, None] * A) * h + (delta[t] * x[t])[:, None] * B[t][None, :]
        y[t] = h @ C[t]
    return y


def _np_selective_scan(a):
    x, delta, A, B, C, h0 = (a[k] for k in ("x", "delta", "A", "B", "C", "h"))
    return lambda: _scan(np.exp, x, delta, A, B, C, h0.copy(), np.empty_like(x))


def _np_conv2d_s2(a):
    from numpy.lib.stride_tricks import sliding_window_view

    x, f = a["X"], a["F"]
    r, s = f.shape[2:]

    def run():
        padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        win = sliding_window_view(padded, (r, s), axis=(2, 3))[:, :, ::2, ::2]
        return np.einsum("ncyxrs,kcrs->nkyx", win, f, optimize=True)
    return run


def _np_lstm(a):
    x, w_ih, w_hh, bias, h0, c0 = (a[k] for k in ("x", "W_ih", "W_hh", "bias", "h", "c"))

    def sigmoid(v):
        return 1.0 / (1.0 + np.exp(-v))

    def run():
        xw = x @ w_ih.T + bias  # every step's input projection at once
        h, c = h0.copy(), c0.copy()
        y = np.empty((x.shape[0], *h.shape), np.float32)
        for t in range(x.shape[0]):
            zi, zf, zg, zo = np.split(xw[t] + h @ w_hh.T, 4, axis=1)
            c = sigmoid(zf) * c + sigmoid(zi) * np.tanh(zg)
            h = y[t] = sigmoid(zo) * np.tanh(c)
        return y
    return run


# ---- torch peers (eager, CPU) ----------------------------------------------------------------

def _t(torch, a):
    return {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in a.items()}


def _torch_conv(torch, a, groups=False):
    t = _t(torch, a)
    w = t["F"][:, None] if groups else t["F"]
    return lambda: torch.nn.functional.conv2d(t["X"], w, groups=w.shape[0] if groups else 1)


def _torch_layernorm(torch, a):
    t = _t(torch, a)
    return lambda: torch.nn.functional.layer_norm(t["X"], t["X"].shape[1:], t["gamma"],
                                                  t["beta"], float(t["eps"]))


def _torch_rmsnorm_gelu(torch, a):
    t = _t(torch, a)
    f = torch.nn.functional
    return lambda: f.gelu(f.rms_norm(t["X"], t["X"].shape[1:], t["gamma"], float(t["eps"])))


def _torch_attention(torch, a):
    t = _t(torch, a)
    q, k, v = t["Q"][None], t["K"][None], t["V"][None]
    sdpa = torch.nn.functional.scaled_dot_product_attention
    return lambda: sdpa(q, k, v, scale=float(t["scale"]))[0]


def _torch_qmm_requant(torch, a):
    t = _t(torch, a)
    mult, shift, zp = int(a["multiplier"]), int(a["shift"]), int(a["zero_point"])

    def run():
        acc = (torch._int_mm(t["A"], t["B"]) + t["bias"]).to(torch.int64)
        v = ((acc * mult + (1 << (shift - 1))) >> shift) + zp
        return v.clamp(-128, 127).to(torch.int8)
    return run


def _torch_int4_grouped(torch, a):
    t = _t(torch, a)

    def run():
        w = t["W"]
        q = torch.stack([w & 15, w >> 4], dim=1).reshape(-1, w.shape[1]).to(torch.float32)
        return t["X"] @ ((q - 8) * t["scales"].repeat_interleave(128, dim=0))
    return run


def _torch_selective_scan(torch, a):
    t = _t(torch, a)
    x, delta, A, B, C, h0 = (t[k] for k in ("x", "delta", "A", "B", "C", "h"))
    return lambda: _scan(torch.exp, x, delta, A, B, C, h0.clone(), torch.empty_like(x))


def _torch_lstm(torch, a):
    t = _t(torch, a)
    four_h, i = a["W_ih"].shape
    layer = torch.nn.LSTM(i, four_h // 4)
    with torch.no_grad():
        layer.weight_ih_l0.copy_(t["W_ih"])
        layer.weight_hh_l0.copy_(t["W_hh"])
        layer.bias_ih_l0.copy_(t["bias"])
        layer.bias_hh_l0.zero_()
    state = (t["h"][None], t["c"][None])

    def run():
        with torch.no_grad():
            return layer(t["x"], state)[0]  # y; the final (h, c) are its last step
    return run


SUITE: dict[str, SuiteKernel] = {k.name: k for k in [
    SuiteKernel("matmul", "matmul", {"M": 1024, "K": 1024, "N": 1024},
                {"M": 48, "K": 40, "N": 56}, _matmul_work,
                numpy=lambda a: lambda: a["A"] @ a["B"],
                torch=lambda torch, a: (lambda t: lambda: torch.mm(t["A"], t["B"]))(_t(torch, a))),
    SuiteKernel("matmul_skinny", "matmul", {"M": 32, "K": 2048, "N": 2048},
                {"M": 4, "K": 64, "N": 64}, _matmul_work,
                numpy=lambda a: lambda: a["A"] @ a["B"],
                torch=lambda torch, a: (lambda t: lambda: torch.mm(t["A"], t["B"]))(_t(torch, a))),
    SuiteKernel("bmm", "bmm", {"NB": 16, "M": 256, "K": 256, "N": 256},
                {"NB": 2, "M": 16, "K": 24, "N": 8}, _bmm_work,
                numpy=lambda a: lambda: np.matmul(a["A"], a["B"]),
                torch=lambda torch, a: (lambda t: lambda: torch.bmm(t["A"], t["B"]))(
                    _t(torch, a))),
    SuiteKernel("conv2d", "conv2d", {"N": 1, "C": 64, "H": 58, "W": 58, "K": 64, "R": 3, "S": 3},
                {"N": 1, "C": 4, "H": 10, "W": 10, "K": 4, "R": 3, "S": 3}, _conv2d_work,
                numpy=_np_conv2d, torch=_torch_conv,
                notes=("ResNet-50 conv2_x 3x3 layer: 64 -> 64 channels on 56x56 (the input "
                       "carries the 1-pixel padding: 58x58, valid convolution)",)),
    SuiteKernel("conv2d_s2", "conv2d_s2",
                {"N": 1, "C": 64, "H": 56, "W": 56, "K": 128, "R": 3, "S": 3},
                {"N": 1, "C": 4, "H": 9, "W": 9, "K": 8, "R": 3, "S": 3}, _conv2d_s2_work,
                numpy=_np_conv2d_s2,
                torch=lambda torch, a: (lambda t: lambda: torch.nn.functional.conv2d(
                    t["X"], t["F"], stride=2, padding=1))(_t(torch, a)),
                notes=("ResNet-50 conv3_x downsampling 3x3 layer: 64 -> 128 channels, "
                       "56x56 -> 28x28, stride 2, zero padding 1",)),
    SuiteKernel("depthwise_conv2d", "depthwise_conv2d",
                {"N": 1, "C": 256, "H": 58, "W": 58, "R": 3, "S": 3},
                {"N": 1, "C": 4, "H": 10, "W": 10, "R": 3, "S": 3}, _depthwise_work,
                numpy=_np_depthwise, torch=lambda torch, a: _torch_conv(torch, a, groups=True)),
    SuiteKernel("maxpool2d", "maxpool2d", {"C": 64, "H": 112, "W": 112}, {"C": 3, "H": 9, "W": 11},
                _maxpool_work, numpy=_np_maxpool2d,
                torch=lambda torch, a: (lambda t: lambda: torch.nn.functional.max_pool2d(
                    t["X"], 2))(_t(torch, a)),
                notes=("ResNet-style 2x2 stride-2 pooling of 64 channels of 112x112",)),
    SuiteKernel("softmax", "softmax", {"N": 4096, "D": 1024}, {"N": 8, "D": 64}, _rowwise_work,
                numpy=lambda a: lambda: _np_softmax(a["X"], axis=1),
                torch=lambda torch, a: (lambda t: lambda: torch.softmax(t["X"], dim=1))(
                    _t(torch, a))),
    SuiteKernel("layernorm", "layernorm", {"N": 4096, "D": 1024}, {"N": 8, "D": 64},
                _rowwise_work, numpy=_np_layernorm, torch=_torch_layernorm),
    SuiteKernel("rmsnorm_gelu", "rmsnorm_gelu", {"N": 4096, "D": 1024}, {"N": 8, "D": 64},
                _rowwise_work, numpy=_np_rmsnorm_gelu, torch=_torch_rmsnorm_gelu,
                notes=("numpy peer uses scipy.special.erf (numpy has no erf)",)),
    SuiteKernel("attention", "attention", {"LQ": 512, "LK": 512, "D": 64, "DV": 64},
                {"LQ": 16, "LK": 24, "D": 8, "DV": 8}, _attention_work,
                numpy=_np_attention, torch=_torch_attention,
                notes=("torch peer: scaled_dot_product_attention",)),
    SuiteKernel("qmm_requant", "qmm_requant", {"M": 512, "K": 512, "N": 512},
                {"M": 17, "K": 32, "N": 24}, _qmm_work,
                numpy=_np_qmm_requant, torch=_torch_qmm_requant,
                notes=("GFLOP/s here counts int8 multiply-adds as 2 ops; torch peer: "
                       "torch._int_mm",)),
    SuiteKernel("matmul_int4_grouped", "matmul_int4_grouped", {"M": 16, "K": 2048, "N": 2048},
                {"M": 3, "K": 128, "N": 16}, _int4_work,
                numpy=_np_int4_grouped, torch=_torch_int4_grouped,
                notes=("peers dequantize W to fp32, then run a BLAS matmul; loopweave fuses "
                       "the dequantization into the matmul",)),
    SuiteKernel("selective_scan", "selective_scan", {"T": 2048, "D": 256, "NS": 16},
                {"T": 16, "D": 8, "NS": 4}, _scan_work,
                numpy=_np_selective_scan, torch=_torch_selective_scan,
                notes=("peers loop over t in Python, vectorised over (D, NS)",)),
    SuiteKernel("lstm", "lstm", {"T": 64, "B": 16, "I": 256, "H": 256},
                {"T": 4, "B": 3, "I": 8, "H": 8}, _lstm_work, numpy=_np_lstm, torch=_torch_lstm,
                notes=("torch peer: torch.nn.LSTM (one layer, its own CPU kernels); numpy loops "
                       "over t in Python",)),
]}
