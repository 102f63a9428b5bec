"""Test-only fault injection: rewrite a candidate's generated C so the built kernel misbehaves.

The tests of the tuner use it to check that a candidate that crashes, hangs or computes a wrong
answer is isolated, recorded with its status and never chosen. It changes the source that is
really built and run (no measurement is mocked); `Candidate.fault` selects it:

    "segfault"  a store through a null pointer at the start of the kernel function
    "hang"      an endless loop at the start of the kernel function
    "wrong"     the first element of the first result is incremented at the end
"""

from __future__ import annotations

import re

from loopweave.backends.c_family import c_name
from loopweave.ir.kernel import KernelIR

FAULTS = {
    "segfault": "  { volatile int *volatile lw_null = 0; *lw_null = 1; }\n",
    "hang": "  for (volatile int lw_spin = 0; ; lw_spin++) { }\n",
}


def inject(source: str, kernel: KernelIR, fault: str | None) -> str:
    """`source` with `fault` planted in the kernel function (unchanged if fault is None)."""
    if fault is None:
        return source
    head = re.search(rf"void lw_{re.escape(kernel.name)}\([^)]*\)\s*\{{\n", source)
    if head is None:
        raise ValueError("fault injection needs C source with the kernel function")
    if fault in FAULTS:
        return source[:head.end()] + FAULTS[fault] + source[head.end():]
    if fault == "wrong":
        results = [*kernel.outputs, *(a for a in kernel.args if getattr(a, "role", "") == "inout")]
        end = source.rindex("}")
        return source[:end] + f"  {c_name(results[0].name)}[0] += 1;\n" + source[end:]
    raise ValueError(f"unknown fault {fault!r}; known: segfault, hang, wrong")
