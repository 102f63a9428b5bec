"""PolyBench's `Case`: the example set's `Case` (examples/references/cases.py, shared, not
copied) plus the source file's name and the four dataset sizes; helpers the groups share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...references.cases import Case, make_case, uniform

POLY_DIR = Path(__file__).resolve().parent.parent
DATASET_NAMES = ("MINI", "SMALL", "MEDIUM", "LARGE")
F64 = np.float64


@dataclass(frozen=True)
class PolyCase(Case):
    """A PolyBench kernel: a `Case` whose source lives in examples/polybench/<file>.lw."""

    file: str = ""
    datasets: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return POLY_DIR / f"{self.file}.lw"


def poly_case(functions: dict[str, Any], name: str, func: str, outputs=(), inouts=(),
              datasets=None, test_sizes=None, tol_scale=1.0, noise=None) -> PolyCase:
    """PolyBench kernel `name` (its .lw file) from `<func>_inputs` / `<func>_ref` in `functions`:
    tested on MINI and SMALL unless `test_sizes` says otherwise, MEDIUM for the demo sizes."""
    sizes = test_sizes or (datasets["MINI"], datasets["SMALL"])
    return make_case(functions, name, outputs, inouts, sizes, datasets["MEDIUM"], tol_scale,
                     func=func, kind=PolyCase, file=name, datasets=datasets, noise=noise)


def dataset_sizes(keys: str, *rows: tuple[int, ...]) -> dict[str, dict[str, int]]:
    """{"MINI": {key: value, ...}, "SMALL": ...} from the space-separated `keys` and one row of
    values per dataset."""
    return {d: dict(zip(keys.split(), row, strict=True))
            for d, row in zip(DATASET_NAMES, rows, strict=True)}


def rand(r: np.random.Generator, *shape: int, lo=-1.0, hi=1.0, dtype=np.float64) -> np.ndarray:
    """A C-contiguous random array of `shape`, uniform in [lo, hi), float64 unless told."""
    return uniform(r, shape, dtype, lo, hi)


# Dataset tables several groups use.
MN = dataset_sizes("M N", (20, 30), (60, 80), (200, 240), (1000, 1200))
N40 = dataset_sizes("N", (40,), (120,), (400,), (2000,))
