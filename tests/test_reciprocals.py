"""Divisions by values the innermost loop does not change, as multiplications by reciprocals
(passes/reciprocals.py): which divisions move, and the results against numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import loopweave
from loopweave.passes.normalize import normalize
from loopweave.pipeline import front_end

ROOT = Path(__file__).resolve().parent.parent
LAYERNORM = (ROOT / "examples/kernels/layernorm.lw").read_text()


def _rhs(source: str, split: bool = True) -> list[str]:
    return [str(s).split(": ", 1)[1].split("  (")[0]
            for s in normalize(front_end(source), split=split).statements]


def test_divisors_the_inner_loop_does_not_change_become_reciprocals():
    rows = _rhs("""kernel k(X: f32[N, D], s: f32[N], d: f32[D], n: i32[N, D], m: i32[N])
                   -> (Y: f32[N, D], Z: f32[N, D], W: i32[N, D], V: f32[N, D]) {
        Y[i, j] = X[i, j] / s[i]
        Z[i, j] = X[i, j] / d[j]
        W[i, j] = n[i, j] / m[i]
        V[i, j] = X[i, j] / 3.0 + X[i, j] / (s[i] + 1.0)
    }""")
    assert rows == ["Y[i, j] = X[i, j] * (1.0 / s[i])",  # a row's divisor: once a row
                    "Z[i, j] = X[i, j] / d[j]",  # it changes with j: stays
                    "W[i, j] = n[i, j] / m[i]",  # integer division: exact, stays
                    "V[i, j] = X[i, j] * (1.0 / 3.0) + X[i, j] * (1.0 / (s[i] + 1.0))"]


def test_the_gpu_targets_keep_their_divisions():
    """Their online softmax matches `/ z`; their division costs no more than a product."""
    rows = _rhs("kernel k(X: f32[N, D], s: f32[N]) -> Y: f32[N, D] {\n"
                "    Y[i, j] = X[i, j] / s[i]\n}", split=False)
    assert rows == ["Y[i, j] = X[i, j] / s[i]"]


@pytest.mark.parametrize("shape", [(7, 33), (64, 1024), (3, 1)])
def test_layernorm_with_reciprocals_matches_numpy(shape):
    k = loopweave.compile(LAYERNORM, tuning_db=False, cost_model=False)
    assert "] / sqrtf(" not in k.source and "1.0f / sqrtf(" in k.source
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(np.float32) * 5 + 2
    gamma, beta = (rng.standard_normal(shape[1]).astype(np.float32) for _ in range(2))
    x64 = x.astype(np.float64)
    ref = (x64 - x64.mean(1, keepdims=True)) / np.sqrt(x64.var(1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(k(x, gamma, beta, np.float32(1e-5)), ref * gamma + beta,
                               rtol=1e-4, atol=1e-4)
