"""PolyBench/C 4.2 datamining: inputs and numpy references."""

from __future__ import annotations

from functools import partial

import numpy as np

from .cases import F64, dataset_sizes, poly_case, rand

_CORR = dataset_sizes("M N", (28, 32), (80, 100), (240, 260), (1200, 1400))


def correlation_inputs(s, seed):
    r = np.random.default_rng(seed)
    data = rand(r, s["N"], s["M"]) + rand(r, 1, s["M"], lo=-2, hi=2)
    data[:, 0] = 0.5  # a constant column: its deviation is below 0.1, so it is divided by 1.0
    return {"float_n": F64(s["N"]), "data": data}


def correlation_ref(float_n, data):
    mean = data.sum(axis=0) / float_n
    std = np.sqrt(((data - mean) ** 2).sum(axis=0) / float_n)
    std = np.where(std <= 0.1, 1.0, std)
    d = (data - mean) / (np.sqrt(float_n) * std)
    corr = d.T @ d
    np.fill_diagonal(corr, 1.0)
    return {"corr": corr}


def covariance_inputs(s, seed):
    r = np.random.default_rng(seed)
    data = rand(r, s["N"], s["M"]) + rand(r, 1, s["M"], lo=-2, hi=2)
    return {"float_n": F64(s["N"]), "data": data}


def covariance_ref(float_n, data):
    d = data - data.sum(axis=0) / float_n
    return {"cov": d.T @ d / (float_n - 1.0)}


_case = partial(poly_case, globals())

CASES = (
    _case("correlation", "correlation", ["corr"], datasets=_CORR),
    _case("covariance", "covariance", ["cov"], datasets=_CORR),
)
