"""The numpy references of the example kernels and of PolyBench, loaded from the source tree.

`examples/` is not an installed package, so its reference packages are loaded by path, once per
process, under the private package name `loopweave_examples` (the `examples/` folder):
`loopweave_examples.references` (examples/references/) and
`loopweave_examples.polybench.references` (examples/polybench/references/, which imports the
former relatively). Every caller gets the same module objects, so there is one `Case` class.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
PACKAGE = "loopweave_examples"


def _load(subpackage: str) -> ModuleType | None:
    if not (EXAMPLES_DIR / subpackage.replace(".", "/") / "__init__.py").exists():
        return None
    if PACKAGE not in sys.modules:
        spec = importlib.machinery.ModuleSpec(PACKAGE, None, is_package=True)
        spec.submodule_search_locations = [str(EXAMPLES_DIR)]
        sys.modules[PACKAGE] = importlib.util.module_from_spec(spec)
    return importlib.import_module(f"{PACKAGE}.{subpackage}")


def load_references() -> ModuleType | None:
    """examples/references/ (KERNELS, TOLERANCES, compare(), ...): the inputs and numpy
    references of examples/kernels/*.lw; None where the source tree is not present."""
    return _load("references")


def load_polybench_references() -> ModuleType | None:
    """examples/polybench/references/ (POLYBENCH, ...): PolyBench's inputs, dataset sizes and
    numpy references; None where the source tree is not present."""
    return _load("polybench.references")
