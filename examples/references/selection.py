"""Kernels that select indices: argmax and argmin, and the top 8, over the rows of logits."""

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


def topk_inputs(s: Sizes, seed: int) -> Args:
    """logits: f32[B, V] on a coarse grid (many ties)."""
    return argmax_inputs(s, seed)


def topk_ref(logits):
    """The 8 largest of each row in order, equal values in index order (a stable sort); ranks
    past the row's length get index -1 and value -inf."""
    b, v = logits.shape
    idx = np.full((b, 8), -1, np.int64)
    vals = np.full((b, 8), -np.inf, np.float32)
    order = np.argsort(-logits, axis=1, kind="stable")[:, :8]
    idx[:, :order.shape[1]] = order
    vals[:, :order.shape[1]] = np.take_along_axis(logits, order, axis=1)
    return {"vals": vals, "idx": idx}


_case = partial(make_case, globals())

CASES = (
    _case("argmax", ["best", "worst"], sizes=[{"B": 7, "V": 13}, {"B": 5, "V": 1003},
                                              {"B": 3, "V": 64}],
          demo={"B": 64, "V": 32000}),
    _case("topk", ["vals", "idx"], sizes=[{"B": 7, "V": 13}, {"B": 5, "V": 1003},
                                          {"B": 3, "V": 64}],
          demo={"B": 64, "V": 32000}),
)
