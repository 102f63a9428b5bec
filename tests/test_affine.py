"""`ir/affine`: the one home of affine index arithmetic (linear forms, strides, offsets) that
the loop-AST passes and every renderer ask."""

from __future__ import annotations

from loopweave.ir import expr as ir
from loopweave.ir.affine import coefficient, constant_value, row_major_offset, simplify

VI, VJ, VK = ir.Var("i"), ir.Var("j"), ir.Var("k")
M, N = ir.Param("M"), ir.Param("N")


def test_row_major_offset():
    assert row_major_offset((), ()) == ir.Const(0)
    assert row_major_offset((M,), (VI,)) == VI
    off = row_major_offset((M, N, ir.Const(4)), (VI, VJ, VK))
    assert off == ir.add(ir.mul(ir.add(ir.mul(VI, N), VJ), ir.Const(4)), VK)
    # The strides of the offset along each index: N * 4 is not affine in i, 4 along j, 1 along k.
    assert coefficient(off, "k") == 1
    assert coefficient(off, "j") == 4
    assert coefficient(off, "i") is None


def test_constant_and_coefficients_of_simplified_forms():
    e = ir.add(ir.mul(ir.Const(3), ir.add(VI, ir.Const(1))), ir.Const(-3))  # 3 * (i + 1) - 3
    assert coefficient(e, "i") == 3 and constant_value(e) is None
    assert simplify(e) == ir.mul(ir.Const(3), VI)
    assert constant_value(ir.add(ir.Const(2), ir.Const(5))) == 7
