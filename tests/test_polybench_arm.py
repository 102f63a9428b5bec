"""PolyBench/C 4.2 on the Arm targets: each of the 30 kernels with the target's default schedule
(passes/default_arm.py) against its numpy reference at its first test size, under QEMU. Skips
where the cross compiler or QEMU is missing (`make toolchains`)."""

from __future__ import annotations

import pytest
from test_arm_targets import TARGETS, compiled, needs

from loopweave.examples import load_polybench_references

poly = load_polybench_references()


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", sorted(poly.POLYBENCH))
def test_polybench_kernel_on_arm(name, target):
    needs(target)
    case = poly.POLYBENCH[name]
    args = case.make_inputs(case.sizes[0], 100)
    expected = case.expected(args)
    got = poly.results_of(case, args, compiled(case.source(), target)(*args.values()))
    for out, want in expected.items():
        err, ok = poly.compare(got[out], want, case.tol_scale)
        assert ok, f"{name} on {target}: {out} differs from numpy by {err:g}"
