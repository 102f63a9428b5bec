"""Neural-network layers other than convolutions: normalizations, activations, attention and
the selective scan of state-space models."""

from __future__ import annotations

from functools import partial

import numpy as np

from .cases import Args, Sizes, f32, f64, make_case, rng, uniform


def softmax_inputs(s: Sizes, seed: int) -> Args:
    """X: f32[N, D] with a wide range, so that the max subtraction matters."""
    return {"X": uniform(rng(seed), (s["N"], s["D"]), lo=-8.0, hi=8.0)}


def softmax_ref(X):
    """Y = softmax(X) along rows."""
    x = f64(X)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return {"Y": f32(e / e.sum(axis=1, keepdims=True))}


def layernorm_inputs(s: Sizes, seed: int) -> Args:
    """X: f32[N, D] (with a row offset), gamma, beta: f32[D], eps: f32."""
    r = rng(seed)
    n, d = s["N"], s["D"]
    x = r.uniform(-1.0, 1.0, size=(n, d)) * 2.0 + r.uniform(-3.0, 3.0, size=(n, 1))
    return {"X": f32(x), "gamma": uniform(r, (d,), lo=0.5, hi=1.5),
            "beta": uniform(r, (d,)), "eps": np.float32(1e-5)}


def layernorm_ref(X, gamma, beta, eps):
    """Y = (X - mean) / sqrt(var + eps) * gamma + beta, per row, biased variance."""
    x = f64(X)
    xc = x - x.mean(axis=1, keepdims=True)
    var = (xc * xc).mean(axis=1, keepdims=True)
    return {"Y": f32(xc / np.sqrt(var + float(eps)) * f64(gamma) + f64(beta))}


def attention_inputs(s: Sizes, seed: int) -> Args:
    """Q: f32[LQ, D], K: f32[LK, D], V: f32[LK, DV], scale = 1/sqrt(D)."""
    r = rng(seed)
    d = s["D"]
    return {"Q": uniform(r, (s["LQ"], d), lo=-2.0, hi=2.0),
            "K": uniform(r, (s["LK"], d), lo=-2.0, hi=2.0),
            "V": uniform(r, (s["LK"], s["DV"])), "scale": np.float32(1.0 / np.sqrt(d))}


def attention_ref(Q, K, V, scale):
    """O = softmax(scale * Q @ K^T, rows) @ V."""
    sc = float(scale) * (f64(Q) @ f64(K).T)
    e = np.exp(sc - sc.max(axis=1, keepdims=True))
    return {"O": f32((e / e.sum(axis=1, keepdims=True)) @ f64(V))}


def _gelu64(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU, elementwise in float64."""
    from math import erf, sqrt

    return 0.5 * x * (1.0 + np.vectorize(erf, otypes=[np.float64])(x / sqrt(2.0)))


def gelu_inputs(s: Sizes, seed: int) -> Args:
    """X: f32[N]."""
    return {"X": uniform(rng(seed), (s["N"],), lo=-4.0, hi=4.0)}


def gelu_ref(X):
    """Y = 0.5 * X * (1 + erf(X / sqrt(2)))."""
    return {"Y": f32(_gelu64(f64(X)))}


def rmsnorm_gelu_inputs(s: Sizes, seed: int) -> Args:
    """X: f32[N, D], gamma: f32[D], eps: f32."""
    r = rng(seed)
    return {"X": uniform(r, (s["N"], s["D"]), lo=-3.0, hi=3.0),
            "gamma": uniform(r, (s["D"],), lo=0.5, hi=1.5), "eps": np.float32(1e-5)}


def rmsnorm_gelu_ref(X, gamma, eps):
    """GELU(X / sqrt(mean(X^2 over the row) + eps) * gamma), exact (erf) GELU."""
    x = f64(X)
    xn = x / np.sqrt((x * x).mean(axis=1, keepdims=True) + float(eps)) * f64(gamma)
    return {"Y": f32(_gelu64(xn))}


def selective_scan_inputs(s: Sizes, seed: int) -> Args:
    """x, delta: f32[T, D] (delta > 0, a step size); A: f32[D, NS] < 0 (a decay); B, C: f32[T, NS];
    h: f32[D, NS], the initial state."""
    r = rng(seed)
    t, d, ns = s["T"], s["D"], s["NS"]
    return {"x": uniform(r, (t, d)), "delta": uniform(r, (t, d), lo=0.01, hi=0.2),
            "A": uniform(r, (d, ns), lo=-2.0, hi=-0.1), "B": uniform(r, (t, ns)),
            "C": uniform(r, (t, ns)), "h": uniform(r, (d, ns))}


def selective_scan_ref(x, delta, A, B, C, h):
    """Step by step over t: h = exp(delta[t] * A) * h + delta[t] * x[t] * B[t]; y[t] = h @ C[t]."""
    x, delta, a, b, c, state = map(f64, (x, delta, A, B, C, h))
    state = state.copy()
    y = np.zeros(x.shape)
    for t in range(x.shape[0]):
        state = np.exp(delta[t][:, None] * a) * state + (delta[t] * x[t])[:, None] * b[t][None, :]
        y[t] = state @ c[t]
    return {"y": f32(y), "h": f32(state)}


def lstm_inputs(s: Sizes, seed: int) -> Args:
    """x: f32[T, B, I]; W_ih: f32[4H, I], W_hh: f32[4H, H] and bias: f32[4H] scaled as
    torch.nn.LSTM initializes them (uniform in +-1/sqrt(H)); h, c: f32[B, H], the initial
    state."""
    r = rng(seed)
    t, b, i, h = s["T"], s["B"], s["I"], s["H"]
    k = 1.0 / np.sqrt(h)
    return {"x": uniform(r, (t, b, i)), "W_ih": uniform(r, (4 * h, i), lo=-k, hi=k),
            "W_hh": uniform(r, (4 * h, h), lo=-k, hi=k), "bias": uniform(r, (4 * h,), lo=-k, hi=k),
            "h": uniform(r, (b, h)), "c": uniform(r, (b, h))}


def lstm_ref(x, W_ih, W_hh, bias, h, c):
    """torch.nn.LSTM's recurrence: per step z = x[t] W_ih^T + h W_hh^T + bias, split into the
    gates i, f, g, o; c = sigmoid(f) c + sigmoid(i) tanh(g); h = sigmoid(o) tanh(c)."""
    def sigmoid(v):
        return 1.0 / (1.0 + np.exp(-v))

    w_ih, w_hh, b = f64(W_ih), f64(W_hh), f64(bias)
    state_h, state_c = f64(h).copy(), f64(c).copy()
    y = np.zeros((x.shape[0], *state_h.shape))
    for t, xt in enumerate(f64(x)):
        zi, zf, zg, zo = np.split(xt @ w_ih.T + state_h @ w_hh.T + b, 4, axis=1)
        state_c = sigmoid(zf) * state_c + sigmoid(zi) * np.tanh(zg)
        state_h = sigmoid(zo) * np.tanh(state_c)
        y[t] = state_h
    return {"y": f32(y), "h": f32(state_h), "c": f32(state_c)}


_case = partial(make_case, globals())

CASES = (
    _case("softmax", ["Y"], sizes=[{"N": 7, "D": 13}, {"N": 16, "D": 64}, {"N": 1, "D": 1}],
          demo={"N": 512, "D": 512}),
    _case("layernorm", ["Y"], sizes=[{"N": 7, "D": 13}, {"N": 16, "D": 64}],
          demo={"N": 512, "D": 768}),
    _case("attention", ["O"], sizes=[
        {"LQ": 7, "LK": 13, "D": 8, "DV": 5}, {"LQ": 32, "LK": 64, "D": 16, "DV": 16}],
        demo={"LQ": 256, "LK": 256, "D": 64, "DV": 64}),
    _case("gelu", ["Y"], sizes=[{"N": 13}, {"N": 64}], demo={"N": 100000}),
    _case("rmsnorm_gelu", ["Y"], sizes=[{"N": 7, "D": 13}, {"N": 16, "D": 64}, {"N": 1, "D": 1}],
          demo={"N": 512, "D": 768}),
    _case("selective_scan", ["y"], inouts=["h"], sizes=[
        {"T": 5, "D": 3, "NS": 4}, {"T": 33, "D": 16, "NS": 8}],
        demo={"T": 1024, "D": 128, "NS": 16}),
    _case("lstm", ["y"], inouts=["h", "c"], sizes=[
        {"T": 3, "B": 5, "I": 7, "H": 9}, {"T": 17, "B": 4, "I": 32, "H": 48}],
        demo={"T": 64, "B": 16, "I": 256, "H": 256}),
)
