"""Sliding-window kernels: 2-D convolution, depthwise convolution, max pooling."""

from __future__ import annotations

from functools import partial

import numpy as np

from .cases import Args, Sizes, f32, f64, make_case, rng, uniform


def conv2d_inputs(s: Sizes, seed: int) -> Args:
    """X: f32[N, C, H, W], F: f32[K, C, R, S]."""
    r = rng(seed)
    return {"X": uniform(r, (s["N"], s["C"], s["H"], s["W"])),
            "F": uniform(r, (s["K"], s["C"], s["R"], s["S"]))}


def conv2d_ref(X, F):
    """Y[n, k, y, x] = sum_{c, r, s} X[n, c, y + r, x + s] * F[k, c, r, s] (valid, stride 1)."""
    r, s = F.shape[2], F.shape[3]
    win = np.lib.stride_tricks.sliding_window_view(f64(X), (r, s), axis=(2, 3))
    # win: [N, C, H-R+1, W-S+1, R, S]
    return {"Y": f32(np.einsum("ncyxrs,kcrs->nkyx", win, f64(F), optimize=True))}


def conv2d_s2_inputs(s: Sizes, seed: int) -> Args:
    """X: f32[N, C, H, W], F: f32[K, C, R, S]."""
    return conv2d_inputs(s, seed)


def conv2d_s2_ref(X, F):
    """Y = conv2d(X, F) with stride 2 and zero padding 1 on each side (torch's
    conv2d(..., stride=2, padding=1))."""
    r, s = F.shape[2], F.shape[3]
    padded = np.pad(f64(X), ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(padded, (r, s), axis=(2, 3))[:, :, ::2, ::2]
    return {"Y": f32(np.einsum("ncyxrs,kcrs->nkyx", win, f64(F), optimize=True))}


def maxpool2d_inputs(s: Sizes, seed: int) -> Args:
    """X: f32[C, H, W]."""
    return {"X": uniform(rng(seed), (s["C"], s["H"], s["W"]))}


def maxpool2d_ref(X):
    """O[c, y, x] = max of the 2x2 window at (2y, 2x); an odd last row or column is dropped."""
    c, h, w = X.shape
    ho, wo = h // 2, w // 2
    win = X[:, :2 * ho, :2 * wo].reshape(c, ho, 2, wo, 2)
    return {"O": np.ascontiguousarray(win.max(axis=(2, 4)), dtype=np.float32)}


def depthwise_conv2d_inputs(s: Sizes, seed: int) -> Args:
    """X: f32[N, C, H, W], F: f32[C, R, S]."""
    r = rng(seed)
    return {"X": uniform(r, (s["N"], s["C"], s["H"], s["W"])),
            "F": uniform(r, (s["C"], s["R"], s["S"]))}


def depthwise_conv2d_ref(X, F):
    """Y[n, c] = valid cross-correlation of X[n, c] with F[c]."""
    x, f = f64(X), f64(F)
    _, _, h, w = x.shape
    c, rr, ss = f.shape
    oh, ow = h - rr + 1, w - ss + 1
    y = np.zeros((x.shape[0], c, oh, ow))
    for r in range(rr):
        for s in range(ss):
            y += x[:, :, r:r + oh, s:s + ow] * f[None, :, r, s, None, None]
    return {"Y": f32(y)}


_case = partial(make_case, globals())

CASES = (
    _case("conv2d", ["Y"], sizes=[
        {"N": 1, "C": 3, "H": 9, "W": 11, "K": 5, "R": 3, "S": 3},
        {"N": 2, "C": 4, "H": 16, "W": 16, "K": 8, "R": 3, "S": 2},
        {"N": 1, "C": 2, "H": 5, "W": 5, "K": 3, "R": 5, "S": 1}],
        demo={"N": 2, "C": 32, "H": 34, "W": 34, "K": 32, "R": 3, "S": 3}),
    _case("conv2d_s2", ["Y"], sizes=[
        {"N": 1, "C": 3, "H": 9, "W": 11, "K": 5, "R": 3, "S": 3},
        {"N": 2, "C": 4, "H": 16, "W": 15, "K": 70, "R": 3, "S": 2},
        {"N": 1, "C": 2, "H": 5, "W": 6, "K": 3, "R": 1, "S": 1}],
        demo={"N": 1, "C": 64, "H": 56, "W": 56, "K": 128, "R": 3, "S": 3}),
    _case("maxpool2d", ["O"], sizes=[{"C": 3, "H": 7, "W": 13}, {"C": 4, "H": 32, "W": 16}],
          demo={"C": 64, "H": 112, "W": 112}),
    _case("depthwise_conv2d", ["Y"], sizes=[
        {"N": 1, "C": 3, "H": 9, "W": 11, "R": 3, "S": 3},
        {"N": 2, "C": 8, "H": 16, "W": 13, "R": 3, "S": 2}],
        demo={"N": 1, "C": 128, "H": 58, "W": 58, "R": 3, "S": 3}),
)
