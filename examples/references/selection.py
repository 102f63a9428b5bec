"""Kernels that select an index: argmax and argmin over the rows of logits."""

from __future__ import annotations

from functools import partial

import numpy as np

from .cases import Args, Sizes, make_case, rng


def argmax_inputs(s: Sizes, seed: int) -> Args:
    """logits: f32[B, V] on a coarse grid (many ties), one row all equal."""
    r = rng(seed)
    logits = np.round(r.standard_normal((s["B"], s["V"])) * 4).astype(np.float32)
    logits[:1] = 1.5
    return {"logits": np.ascontiguousarray(logits)}


def argmax_ref(logits):
    """best = np.argmax(logits, 1), worst = np.argmin(logits, 1): the first of ties; -1 for
    an empty row (where numpy raises)."""
    if logits.shape[1] == 0:
        none = np.full(logits.shape[0], -1)
        return {"best": none.astype(np.int64), "worst": none.astype(np.int32)}
    return {"best": np.argmax(logits, axis=1).astype(np.int64),
            "worst": np.argmin(logits, axis=1).astype(np.int32)}


_case = partial(make_case, globals())

CASES = (
    _case("argmax", ["best", "worst"], sizes=[{"B": 7, "V": 13}, {"B": 5, "V": 1003},
                                              {"B": 3, "V": 64}],
          demo={"B": 64, "V": 32000}),
)
