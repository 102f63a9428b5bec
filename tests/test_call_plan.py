"""The fast path of a kernel call (loopweave/call_plan.py): a signature seen before skips the
checks that depend only on types, dtypes, shapes and strides, and still raises every error
the full path raises, with the same message.

Each bad call is made twice: once on a kernel without plans (the full path) and once after a
good call left the plan of the good signature (a bad call with the same signature must be
caught by the plan's own checks, one with another signature by the full path). The messages
must be equal, and the good calls must keep matching numpy.
"""

from __future__ import annotations

import copy
import ctypes
import warnings

import ml_dtypes
import numpy as np
import pytest

import loopweave
from loopweave import ArgumentTypeError, ArgumentValueError
from loopweave.backends.c import address, array_data_offset
from loopweave.call_plan import ALIGNMENT, MAX_PLANS, Plans, new_array, values_within
from loopweave.errors import StridedCopyWarning

GATHER = """
kernel gacc(alpha: f32, acc: inout f32[N, D], table: f32[V, D], ids: i32[N]) -> out: f32[N, D] {
    out[i, d] = table[ids[i], d] * alpha
    acc[i, d] += table[ids[i], d]
}
"""
ASSUMED = """
kernel head(x: f32[N], n: i32) -> y: f32[N] {
    assume N >= n
    y[i] = x[i] + 1.0
}
"""
ACCUMULATE = """
kernel accumulate(x: f32[N]) -> y: f32[N] {
    y[i] += x[i]
}
"""
_kernels: dict[str, loopweave.Kernel] = {}


def kernel(source: str) -> loopweave.Kernel:
    if source not in _kernels:
        _kernels[source] = loopweave.compile(source, tuning_db=False)
    return _kernels[source]


def gather_args(n=7, d=5, v=11, seed=0):
    rng = np.random.default_rng(seed)
    return (np.float32(1.5), rng.random((n, d), dtype=np.float32),
            rng.random((v, d), dtype=np.float32), rng.integers(0, v, n).astype(np.int32))


def gather_expected(alpha, acc, table, ids):
    return alpha * table[ids], acc + table[ids]


def check_gather(k, args, out=None):
    alpha, acc, table, ids = args
    want_out, want_acc = gather_expected(alpha, acc.copy(), table, ids)
    got = k(*args) if out is None else k(*args, out=out)
    np.testing.assert_allclose(got, want_out, rtol=1e-6)
    np.testing.assert_allclose(acc, want_acc, rtol=1e-6)
    assert out is None or got is out


def test_the_second_call_takes_the_plan_and_stays_right():
    k = kernel(GATHER)
    k._plans.clear()
    check_gather(k, gather_args(seed=1))
    assert len(k._plans) == 1
    plan = next(iter(k._plans.values()))
    assert plan.sizes == {"N": 7, "D": 5, "V": 11}
    for seed in range(2, 5):  # new contents, same signature: the plan, right results
        check_gather(k, gather_args(seed=seed))
    assert len(k._plans) == 1
    out = np.full((7, 5), np.nan, np.float32)
    check_gather(k, gather_args(seed=5), out=out)
    check_gather(k, gather_args(seed=6), out=out)
    assert len(k._plans) == 2  # with out=: a signature of its own
    check_gather(k, gather_args(n=3, d=2, v=4))  # other shapes: another plan
    assert len(k._plans) == 3


def _bad_gather_calls():
    """(name, make(args) -> (args, out)) per bad call."""
    def replace(i, f):
        def make(args):
            args = list(args)
            args[i] = f(args[i])
            return tuple(args), None
        return make

    def aliased(args):
        alpha, acc, table, ids = args
        return (alpha, acc, acc, ids), None

    def out_with(f):
        return lambda args: (args, f(np.zeros((7, 5), np.float32), args))

    def read_only(a):
        a = a.copy()
        a.flags.writeable = False
        return a

    return {
        "table dtype": replace(2, lambda a: a.astype(np.float64)),
        "ids dtype": replace(3, lambda a: a.astype(np.int64)),
        "acc shape": replace(1, lambda a: np.zeros((7, 4), np.float32)),
        "table rank": replace(2, lambda a: a[None]),
        "ids too high": replace(3, lambda a: np.where(np.arange(7) == 4, 11, a).astype(np.int32)),
        "ids negative": replace(3, lambda a: np.where(np.arange(7) == 2, -1, a).astype(np.int32)),
        "acc strided": replace(1, lambda a: np.zeros((5, 7), np.float32).T),
        "acc read-only": replace(1, read_only),
        "acc aliased": aliased,
        "alpha not a scalar": replace(0, lambda a: "1.5"),
        "too few arguments": lambda args: (args[:3], None),
        "out dtype": out_with(lambda o, a: o.astype(np.float64)),
        "out shape": out_with(lambda o, a: o[:6]),
        "out strided": out_with(lambda o, a: np.zeros((5, 7), np.float32).T),
        "out read-only": out_with(lambda o, a: read_only(o)),
        "out overlaps acc": out_with(lambda o, a: a[1]),
        "out a list": out_with(lambda o, a: o.tolist()),
    }


@pytest.mark.parametrize("case", list(_bad_gather_calls()))
def test_a_planned_signature_raises_what_the_full_path_raises(case):
    make = _bad_gather_calls()[case]
    k = kernel(GATHER)
    errors = []
    for planned in (False, True):
        k._plans.clear()
        if planned:  # the good signatures with and without out= are planned
            check_gather(k, gather_args())
            check_gather(k, gather_args(), out=np.zeros((7, 5), np.float32))
            assert len(k._plans) == 2
        args, out = make(gather_args(seed=3))
        before = [a.copy() for a in args if isinstance(a, np.ndarray)]
        with pytest.raises((ArgumentTypeError, ArgumentValueError)) as info:
            k(*args) if out is None else k(*args, out=out)
        errors.append((type(info.value), str(info.value)))
        after = [a for a in args if isinstance(a, np.ndarray)]
        for b, a in zip(before, after, strict=True):  # nothing ran
            np.testing.assert_array_equal(a, b)
    assert errors[0] == errors[1]


def test_changed_strides_take_the_full_path_copy_and_warn():
    k = kernel(GATHER)
    k._plans.clear()
    check_gather(k, gather_args())
    alpha, acc, table, ids = gather_args(seed=4)
    strided = np.asfortranarray(table)  # same dtype and shape, other strides
    k._copied.clear()
    with pytest.warns(StridedCopyWarning, match="'table'"):
        check_gather(k, (alpha, acc, strided, ids))
    ids_view = np.repeat(ids, 2)[::2]  # a strided index array
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StridedCopyWarning)
        check_gather(k, (alpha, acc, table, ids_view))
        bad = ids_view.copy()
        bad[6] = 99
        with pytest.raises(ArgumentValueError, match=r"ids\[6\] = 99 is out of range 0\.\.10"):
            k(alpha, acc, table, np.repeat(bad, 2)[::2])
    assert len(k._plans) == 1  # copies leave no plan


def test_an_integer_scalar_in_an_assumption_is_part_of_the_signature():
    k = kernel(ASSUMED)
    x = np.arange(6, dtype=np.float32)
    np.testing.assert_array_equal(k(x, 4), x + 1)
    np.testing.assert_array_equal(k(x, 6), x + 1)
    with pytest.raises(ArgumentValueError, match="assume"):
        k(x, 7)
    with pytest.raises(ArgumentValueError, match="assume"):
        k(x, np.int64(9))
    with pytest.raises(ArgumentTypeError, match="'n'"):
        k(x, 2.5)
    assert len(k._plans) == 2


def test_out_is_zeroed_when_the_kernel_reads_it_first():
    k = kernel(ACCUMULATE)
    k._plans.clear()
    x = np.arange(1, 6, dtype=np.float32)
    out = np.full(5, 7, np.float32)
    for _ in range(3):  # the full path, then the plan
        out[:] = 7
        assert k(x, out=out) is out
        np.testing.assert_array_equal(out, x)
        np.testing.assert_array_equal(k(x), x)
    assert len(k._plans) == 2


@pytest.mark.parametrize("shape", [(), (0,), (7,), (3, 5), (2, 0, 4), (33, 17)])
@pytest.mark.parametrize("dtype", [np.float32, np.int8, ml_dtypes.bfloat16, np.float64])
def test_new_arrays_start_on_a_line_and_are_zeroed_when_asked(shape, dtype):
    for zeroed in (True, False):
        a = new_array(shape, dtype, zeroed)
        assert a.shape == shape and a.dtype == np.dtype(dtype) and a.flags.c_contiguous
        assert a.flags.writeable and (a.size == 0 or a.ctypes.data % ALIGNMENT == 0)
        if zeroed:
            assert not np.any(a.astype(np.float64))
        a[...] = 3
        assert np.all(a.astype(np.float64) == 3)


def test_the_outputs_a_call_allocates_start_on_a_line():
    k = kernel(ACCUMULATE)
    k._plans.clear()
    for n in (1, 5, 37, 1000):
        x = np.arange(n, dtype=np.float32)
        for _ in range(2):  # the full path, then the plan
            y = k(x)
            np.testing.assert_array_equal(y, x)
            assert y.ctypes.data % ALIGNMENT == 0


def test_the_plan_cache_is_bounded():
    k = kernel(ACCUMULATE)
    k._plans.clear()
    for n in range(1, MAX_PLANS + 5):
        x = np.arange(n, dtype=np.float32)
        np.testing.assert_array_equal(k(x), x)
    assert len(k._plans) == MAX_PLANS


def test_values_within_reads_signed_values_as_unsigned_only_where_that_is_exact():
    """One pass (signed integers read as unsigned) where the range starts at 0 and its last
    value fits the signed type; min and max otherwise. Each case both ways."""
    for dtype in (np.int8, np.int32, np.dtype(">i4"), np.int64):
        ok = np.array([0, 5, 3], dtype)
        assert values_within(ok, 0, 5) and not values_within(ok, 0, 4)
        assert not values_within(np.array([2, -1], dtype), 0, 5)
        assert values_within(np.array([[1, 2], [3, 4]], dtype)[:, 1], 0, 4)  # a strided box
    assert values_within(np.array([-3, 2], np.int32), -3, 2)  # a range not from 0
    assert not values_within(np.array([-4, 2], np.int32), -3, 2)
    # an i32 index into more than 2**31 elements: -1 as unsigned would fit; min and max do not
    assert not values_within(np.array([-1], np.int32), 0, 2 ** 32)
    assert values_within(np.array([7], np.uint16), 0, 7) and not values_within(
        np.array([8], np.uint16), 0, 7)


def test_array_addresses_the_fast_way_and_the_slow_way_agree():
    """backends/c.address reads a plain array's object, else takes the buffer protocol where
    it can and `ctypes.data` where it cannot (read-only, empty, bfloat16, non-native byte
    order): the same address each time."""
    x = np.arange(60, dtype=np.float32)
    frozen = x.copy()
    frozen.flags.writeable = False
    cases = [x, x[7:], x.reshape(6, 10)[2:], frozen, np.zeros(0, np.int8),
             x.astype(ml_dtypes.bfloat16), x.astype(">f4"), np.ones(3, np.bool_)]
    for a in cases:
        assert address(a) == a.ctypes.data, a.dtype


STAGED = """
kernel staged(scale: f32, x: f32[N], acc: inout f32[N]) -> y: f32[N], z: f32[N] {
    t[i] = x[i] * scale
    y[i] = t[N - 1 - i] + 1.0
    z[i] += t[i]
    acc[i] += z[i]
}
"""


def test_the_direct_call_and_the_call_by_name_agree():
    """A plan calls the C function straight where the invoker offers it (`direct`: the C targets, no
    dictionaries) and goes through the invoker by name otherwise; the same results either way, with
    a scalar, an inout, two outputs and a temporary, called again with new contents."""
    fast = kernel(STAGED)
    assert fast.ir.temporaries, "the test needs a temporary"
    by_name = copy.copy(fast)
    by_name._plans = Plans()
    by_name.invoke = lambda arrays, scalars, sizes: fast.invoke(arrays, scalars, sizes)
    rng = np.random.default_rng(3)
    for n in (5, 5, 5, 9, 9):
        x = rng.random(n, dtype=np.float32)
        start = rng.random(n, dtype=np.float32)
        results = []
        for k in (fast, by_name):
            acc = start.copy()
            y, z = k(np.float32(0.5), x, acc)
            results.append((y, z, acc))
        for got in results:
            np.testing.assert_allclose(got[0], x[::-1] * 0.5 + 1, rtol=1e-6)
            np.testing.assert_allclose(got[1], x * 0.5, rtol=1e-6)
            np.testing.assert_allclose(got[2], start + x * 0.5, rtol=1e-6)
    assert len(by_name._plans) == 2
    key = next(iter(by_name._plans))
    assert "invoke(a0, a1, a2, o0, o1, t0)" in by_name._plans[key].code
    assert "function(a0, a1, a2, o0, o1, t0, 5)" in fast._plans[key].code


def test_numpy_objects_reach_the_kernel_with_their_data():
    """Repeated calls on the host pass numpy arrays as objects to the library's entry for
    them (backends/c.py `object_entry`), which reads each one's data pointer where
    `array_data_offset` found it: checked here on arrays of many kinds, and by calls on
    views that start inside a buffer, read-only arrays and bfloat16 arrays."""
    offset = array_data_offset()
    assert offset is not None  # CPython: the entry is used
    base = np.arange(64, dtype=np.float32)
    frozen = base.copy()
    frozen.flags.writeable = False
    for a in [base, base[5:], base.reshape(8, 8)[3:], frozen, np.zeros(0, np.int8),
              np.array(2.5), base.astype(ml_dtypes.bfloat16), base.astype(">f4")]:
        assert ctypes.c_void_p.from_address(id(a) + offset).value == a.ctypes.data
    k = kernel(ACCUMULATE)
    k._plans.clear()
    for start in (0, 3, 7, 3):
        x = base[start:start + 40]
        np.testing.assert_array_equal(k(x), x)
    np.testing.assert_array_equal(k(frozen[:40]), frozen[:40])
    plan = k._plans[next(iter(k._plans))]
    assert "address(" not in plan.code and "function(a0, o0, 40)" in plan.code
    halve = kernel("kernel halve(x: bf16[N]) -> y: bf16[N] {\n    y[i] = x[i] * 0.5\n}\n")
    for start in (0, 5, 5):
        x = base[start:start + 17].astype(ml_dtypes.bfloat16)
        np.testing.assert_array_equal(halve(x), (x.astype(np.float32) * 0.5).astype(x.dtype))
