"""Random row-wise kernels: the shape of softmax, layernorm and RMSNorm, not their text.

The general generator (tests/fuzz/random_kernels.py) rarely makes what normalization layers
are made of: statistics of each row (a sum, a sum of squares, a maximum) over the last axis,
and elementwise chains that read the row and its statistics. `generate(seed)` builds one as a
`KernelSpec` of the same structure, so that the differential fuzzer runs it on every backend
(`--generator rows`) and the cost model's pretraining sweeps it
(benchmarks/tune_pretrain.py `--rows`).

A kernel: an input X of rank 2 ([N, D]) or 3 ([B, N, D]); one to three stages, each a
statistic reduced over the last axis (or, in one kernel of five, over the rows: a column
statistic, as batch normalization takes) from the current value, then, mostly, a new
elementwise temporary from the value and the statistics; then the output, an elementwise
function of the last value, the statistics and per-column parameters; sometimes a statistic
is an output too. f32, one kernel of ten f64.

Numerics stay tame, as in the general generator: a maximum is subtracted only from the values
it was taken over (so `exp` of the difference is at most 1), a statistic divides only as
`sqrt(s * s + 0.001)`, `sqrt(v + 0.001)` or `1.0 + |s|`, or when it is a sum of `exp(x - max)`
(at least 1).
"""

from __future__ import annotations

import random

from .random_kernels import Access, KernelSpec, Node, Stmt, TensorDecl

#: Small odd sizes for the fuzzer (partial vectors everywhere).
FUZZ_SIZES = (1, 3, 5, 7, 9, 13, 17, 33)
#: Elementwise functions of one value (the activation of the output, a stage's transform).
UNARY = ("{0}", "{0}", "tanh({0})", "sigmoid({0})", "erf({0})", "select({0} > 0.0, {0}, 0.0)",
         "({0} * {0})", "abs({0})")


def _load(tensor: str, indices: tuple[str, ...]) -> Node:
    return Node("", load=Access(tensor, indices))


class _RowBuilder:
    def __init__(self, seed: int):
        self.rng = random.Random(seed * 7919 + 17)
        self.seed = seed
        self.rank = 3 if self.rng.random() < 0.25 else 2
        self.full = ("b", "i", "j")[3 - self.rank:]  # the indices of a full-shape value
        self.dims = ("B", "N", "D")[3 - self.rank:]
        # the reduced axis: the last (row statistics), or the rows (column statistics)
        self.reduced = "i" if self.rng.random() < 0.2 else "j"
        self.dtype = "f64" if self.rng.random() < 0.1 else "f32"
        self.tensors = [TensorDecl("X", self.dtype, self.dims, "in")]
        self.statements: list[Stmt] = []
        self.kept = tuple(v for v in self.full if v != self.reduced)  # a statistic's indices
        self.param_axis = self.reduced  # per-column parameters vary along the reduced axis
        self.counter = 0

    def name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def full_load(self, tensor: str) -> Node:
        return _load(tensor, self.full)

    def stat_load(self, tensor: str) -> Node:
        return _load(tensor, self.kept)

    def emit(self, tensor: str, indices: tuple[str, ...], op: str, rhs: Node) -> None:
        self.statements.append(Stmt(Access(tensor, indices), op, rhs, ()))

    def statistic(self, value: Node) -> tuple[str, str]:
        """A new statistic of `value` over the reduced axis: (its name, its kind)."""
        kind = self.rng.choice(("mean", "sumsq", "max", "absmax", "expsum"))
        extent = "D" if self.reduced == "j" else "N"
        name = self.name({"max": "m", "absmax": "a"}.get(kind, "s"))
        if kind == "mean":
            self.emit(name, self.kept, "+=", Node(f"{{0}} / {extent}", (value,)))
        elif kind == "sumsq":
            self.emit(name, self.kept, "+=", Node(f"{{0}} * {{0}} / {extent}", (value,)))
        elif kind == "max":
            self.emit(name, self.kept, "max=", value)
        elif kind == "absmax":
            self.emit(name, self.kept, "max=", Node("abs({0})", (value,)))
        else:  # the sum of exp(value - max value): softmax's denominator, at least 1
            top = self.name("m")
            self.emit(top, self.kept, "max=", value)
            self.emit(name, self.kept, "+=", Node("exp({0} - {1})", (value, self.stat_load(top))))
            return f"{name}:{top}", kind
        return name, kind

    def apply(self, value: Node, stat: str, kind: str) -> Node:
        """`value` transformed by a statistic of its own, as a normalization would."""
        if kind == "expsum":
            total, top = stat.split(":")
            return Node("exp({0} - {1}) / {2}", (value, self.stat_load(top),
                                                 self.stat_load(total)))
        s = self.stat_load(stat)
        forms = {"mean": ("({0} - {1})", "{0} / sqrt({1} * {1} + 0.001)",
                          "{0} * (1.0 + abs({1}))"),
                 "sumsq": ("{0} / sqrt({1} + 0.001)", "{0} * sqrt({1})"),
                 "max": ("exp({0} - {1})", "({0} - {1})"),
                 "absmax": ("{0} / (1.0 + {1})", "{0} * {1}")}[kind]
        return Node(self.rng.choice(forms), (value, s))

    def parameter(self) -> Node:
        """A per-column (or per-row, for column statistics) input vector."""
        name = self.name("g")
        self.tensors.append(TensorDecl(name, self.dtype, (self.dims[self.full.index(
            self.param_axis)],), "in"))
        return _load(name, (self.param_axis,))

    def kernel(self) -> KernelSpec:
        rng = self.rng
        value = self.full_load("X")
        stats: list[tuple[str, str]] = []
        for _stage in range(rng.choice((1, 1, 2, 2, 3))):
            stat, kind = self.statistic(value)
            stats.append((stat, kind))
            value = self.apply(value, stat, kind)
            if rng.random() < 0.6:  # a temporary of its own (layernorm's xc), or fused on
                temp = self.name("t")
                self.emit(temp, self.full, "=", Node(rng.choice(UNARY), (value,)))
                value = self.full_load(temp)
        out = Node(rng.choice(UNARY), (value,))
        if rng.random() < 0.5:
            out = Node("{0} * {1}", (out, self.parameter()))
        if rng.random() < 0.4:
            out = Node("{0} + {1}", (out, self.parameter()))
        self.tensors.append(TensorDecl("Y", self.dtype, self.dims, "out"))
        self.emit("Y", self.full, "=", out)
        if rng.random() < 0.25:  # a statistic as a second output (layernorm's saved mean)
            stat = stats[0][0].split(":")[0]
            self.tensors.append(TensorDecl("Z", self.dtype, tuple(
                self.dims[self.full.index(v)] for v in self.kept), "out"))
            self.emit("Z", self.kept, "=", self.stat_load(stat))
        sizes = {d: rng.choice(FUZZ_SIZES) for d in self.dims}
        return KernelSpec(f"rows{self.seed}", tuple(self.tensors), (), tuple(self.statements),
                          sizes=sizes)


def generate(seed: int) -> KernelSpec:
    """The random row-wise kernel of `seed` (deterministic), at small fuzzing sizes."""
    return _RowBuilder(seed).kernel()


def training_sizes(spec: KernelSpec, seed: int, elements: int = 1 << 19) -> dict[str, int]:
    """Sizes of about `elements` elements for a timing sweep, in a shape `seed` picks: from
    many short rows to few long ones (D from 64 to 4096), a batch of 4 or 16 at rank 3."""
    rng = random.Random(seed)
    columns = rng.choice((64, 128, 256, 512, 1024, 2048, 4096))
    sizes = {"D": columns}
    rows = max(4, elements // columns)
    if "B" in spec.sizes:
        sizes["B"] = rng.choice((4, 16))
        rows = max(4, rows // sizes["B"])
    sizes["N"] = rows
    return sizes
