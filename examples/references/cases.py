"""The machinery of the reference set: the `Case` record, tolerances, `compare()`, input helpers.

Shared by the example kernels (this package) and PolyBench (examples/polybench/references/).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

KERNEL_DIR = Path(__file__).resolve().parent.parent / "kernels"

Sizes = Mapping[str, int]
Args = dict[str, Any]

# dtype name -> (rtol, atol). An element passes when
#     |got - expected| <= atol * scale + rtol * |expected|,   scale = max(1, max |expected|),
# i.e. atol is relative to the magnitude of the whole result. Integers must match exactly.
TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-9, 1e-11),
    "float32": (1e-4, 1e-5),
    "float16": (2e-3, 1e-3),  # about 2 ulp: kernel and reference may round differently once
    "bfloat16": (1.6e-2, 8e-3),
}


@dataclass(frozen=True)
class Case:
    """One example kernel: how to make its inputs, its numpy reference, and its default sizes."""

    name: str
    make_inputs: Callable[[Sizes, int], Args]
    reference: Callable[..., dict[str, np.ndarray]]
    outputs: tuple[str, ...] = ()
    inouts: tuple[str, ...] = ()
    sizes: tuple[dict[str, int], ...] = ()
    demo_sizes: dict[str, int] = field(default_factory=dict)
    tol_scale: float = 1.0
    #: The outputs that are rounding noise at the given sizes (PolyBench's gramschmidt: Q
    #: where M < N), which no result can be checked against another's on.
    noise: Callable[[Sizes], tuple[str, ...]] | None = None

    def noise_at(self, sizes: Sizes) -> tuple[str, ...]:
        """The outputs that are rounding noise at `sizes` (none unless `noise` says so)."""
        return self.noise(sizes) if self.noise is not None else ()

    @property
    def path(self) -> Path:
        """The kernel's source file."""
        return KERNEL_DIR / f"{self.name}.lw"

    def source(self) -> str:
        """The kernel's DSL source text."""
        return self.path.read_text()

    def expected(self, args: Args) -> dict[str, np.ndarray]:
        """Reference results for `args` (outputs first, then inout arrays), never mutating args."""
        return self.reference(**{k: _copy(v) for k, v in args.items()})


def _copy(v: Any) -> Any:
    return v.copy() if isinstance(v, np.ndarray) else v


def make_case(functions: Mapping[str, Any], name: str, outputs=(), inouts=(), sizes=(),
              demo=None, tol_scale=1.0, *, func: str | None = None, kind: type[Case] = Case,
              **fields: Any) -> Case:
    """The `kind` (a Case class) of kernel `name` from `<func>_inputs` and `<func>_ref` in
    `functions` (a group module's globals(); `func` defaults to `name`), demo sizes defaulting
    to the last test sizes; `fields` are the subclass's own."""
    func = func or name
    return kind(name, functions[f"{func}_inputs"], functions[f"{func}_ref"], tuple(outputs),
                tuple(inouts), tuple(sizes), dict(demo or sizes[-1]), tol_scale, **fields)


# --------------------------------------------------------------------------------------------
# Input helpers

def rng(seed: int) -> np.random.Generator:
    """The random generator of one `make_inputs(sizes, seed)` call."""
    return np.random.default_rng(seed)


def uniform(r: np.random.Generator, shape: tuple[int, ...], dtype=np.float32,
            lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    """A C-contiguous array of `dtype`, uniform in [lo, hi)."""
    return np.ascontiguousarray(r.uniform(lo, hi, size=shape).astype(dtype))


def f64(a: np.ndarray) -> np.ndarray:
    """`a` in float64, where references compute."""
    return np.asarray(a, dtype=np.float64)


def f32(a: np.ndarray) -> np.ndarray:
    """A float64 result rounded to a C-contiguous float32 array."""
    return np.ascontiguousarray(a, dtype=np.float32)


# --------------------------------------------------------------------------------------------
# Running and comparing (shared by the demo and the tests)

def tolerance(dtype: np.dtype, tol_scale: float = 1.0) -> tuple[float, float]:
    """(rtol, atol) for results of `dtype`; (0, 0) for integers and booleans."""
    dt = np.dtype(dtype)
    if dt.kind in "iub":
        return 0.0, 0.0
    rtol, atol = TOLERANCES.get(dt.name, TOLERANCES["float32"])
    return rtol * tol_scale, atol * tol_scale


def compare(got: np.ndarray, expected: np.ndarray,
            tol_scale: float = 1.0) -> tuple[float, bool]:
    """Return (max abs error, ok) of `got` against `expected` with the tolerance of its dtype.

    Shapes must match; NaN or infinity where `expected` is finite fails; an infinity equal to
    the expected one passes (top-k's empty ranks are -inf).
    """
    got = np.asarray(got)
    if got.shape != expected.shape:
        return float("inf"), False
    if expected.size == 0:
        return 0.0, True
    if expected.dtype.kind in "iub":
        diff = np.abs(got.astype(np.int64) - expected.astype(np.int64))
        err = float(diff.max())
        return err, err == 0
    g, e = got.astype(np.float64), expected.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(g == e, 0.0, np.abs(g - e))
    if not np.all(np.isfinite(diff)):
        return float("inf"), False
    rtol, atol = tolerance(expected.dtype, tol_scale)
    scale = max(1.0, float(np.max(np.abs(e), where=np.isfinite(e), initial=0.0)))
    e = np.where(np.isfinite(e), e, 0.0)
    ok = bool(np.all(diff <= atol * scale + rtol * np.abs(e)))
    return float(diff.max()), ok


def results_of(case: Case, args: Args, ret: Any) -> dict[str, Any]:
    """Gather a call's results by name: the returned outputs, then the inout arrays of `args`.

    `ret` is what the compiled kernel returned: None without outputs, the array with one,
    a tuple with several. Raises AssertionError if `ret` does not have that form.
    """
    got: dict[str, Any] = {}
    if not case.outputs:
        assert ret is None, f"{case.name}: expected None (no outputs), got {type(ret).__name__}"
    elif len(case.outputs) == 1:
        got[case.outputs[0]] = ret
    else:
        assert isinstance(ret, tuple) and len(ret) == len(case.outputs), (
            f"{case.name}: expected a tuple of {len(case.outputs)} outputs, got {ret!r:.80}")
        got.update(zip(case.outputs, ret, strict=True))
    for name in case.inouts:
        got[name] = args[name]
    return got


def kernel_files() -> list[Path]:
    """Every `.lw` file in examples/kernels, sorted by name."""
    return sorted(KERNEL_DIR.glob("*.lw"))
