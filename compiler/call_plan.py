"""The fast path of a kernel call: what one argument signature needs, worked out once.

Most of what a call checks depends only on what its arguments are (types, dtypes, shapes,
strides, and the values of the integer scalars that shapes, `assume` lines or index checks
mention), not on their contents: the sizes, the shape and `assume` checks, the output and
temporary shapes, the boxes the index checks read. `loopweave.runtime.Kernel` runs a call
through every check once per such `signature`, then keeps a `CallPlan` for it. A later call
with the same signature does only what depends on the arrays' contents and addresses:
converting the scalars, the index values, writeability and the overlap of `inout` and `out=`
arrays with the others. Whenever one of those finds a problem, the plan returns None and the
call takes the full path again, which raises its own error: the fast path never has errors of
its own. Only plain, C-contiguous numpy arrays of the kernel's dtypes take it (no copy, no
view, no device).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from loopweave.ir import expr as ir
from loopweave.ir.kernel import KernelIR, ScalarArg, Tensor, allowed_values, type_keeps_within

#: Plans kept per kernel (the oldest is dropped beyond this: a loop over many shapes).
MAX_PLANS = 16


def values_within(values, first: int, last: int) -> bool:
    """Whether every element of `values` (a non-empty numpy array or device tensor) lies in
    first..last. Index values usually start at 0: then one pass over the signed integers read
    as unsigned (a negative value reads as 2**(bits-1) or more) does for the min and the max
    (2M i32 values: 0.28 ms against 0.56)."""
    if isinstance(values, np.ndarray) and first == 0 and values.dtype.kind == "i" and \
            last < 2 ** (8 * values.dtype.itemsize - 1):
        return bool(values.view(values.dtype.str.replace("i", "u")).max() <= last)
    return bool((values.min() >= first) & (values.max() <= last))


def kept_temporaries(scratch: threading.local, key, fresh: Callable[[], list[np.ndarray]],
                     zeroed: list[bool]) -> list[np.ndarray]:
    """A call's temporaries, kept from call to call in `scratch` (one set per thread): the
    arrays of this thread's last call with the same `key` (the shapes), else `fresh()`'s; the
    ones flagged in `zeroed` (the kernel may read them before writing) filled with 0 in place,
    as a fresh zeroed array would be."""
    kept = getattr(scratch, "temporaries", None)
    if kept is None or kept[0] != key:
        kept = scratch.temporaries = (key, fresh())
    for flag, array in zip(zeroed, kept[1], strict=True):
        if flag:
            array.fill(0)
    return kept[1]


def keyed_scalars(kernel: KernelIR) -> tuple[int, ...]:
    """The positions of the arguments whose values belong in the signature: the integer
    scalars that a shape, an `assume` line or an index check mentions."""
    tensors = [*(a for a in kernel.args if isinstance(a, Tensor)), *kernel.outputs,
               *kernel.temporaries]
    exprs = [d for t in tensors for d in t.shape]
    exprs += [*kernel.assumptions,
              *(e for c in kernel.index_checks for e in (*c.lo, *c.hi, c.low, c.high)
                if e is not None)]
    named = {x.name for e in exprs for x in ir.walk(e)
             if isinstance(x, ir.Var | ir.Param | ir.Scalar)}
    return tuple(pos for pos, a in enumerate(kernel.args) if isinstance(a, ScalarArg)
                 and a.dtype.is_int and a.name in named)


def signature(args: tuple, out, keyed: tuple[int, ...]) -> tuple | None:
    """The key under which a call's plan is kept (None: this call takes the full path).
    `keyed`: what `keyed_scalars` gave."""
    ndarray = np.ndarray
    key = tuple([(a.dtype, a.shape, a.strides) if type(a) is ndarray else type(a)
                 for a in args])
    for pos in keyed:
        a = args[pos] if pos < len(args) else None
        if not isinstance(a, int | np.integer) or isinstance(a, bool):
            return None
        key += (int(a),)
    if out is None:
        return key, None
    if type(out) is ndarray:
        return key, (out.dtype, out.shape, out.strides)
    outs = out if type(out) is tuple else (out,)
    if not all(o is None or type(o) is ndarray for o in outs):
        return None
    return key, (type(out), *(o if o is None else (o.dtype, o.shape, o.strides)
                              for o in outs))


@dataclass(frozen=True, slots=True)
class CallPlan:
    """What calls of one signature do beyond the checks that passed for it once.

    tensors: (position, name) per array argument; inouts: the names of the inout ones;
    scalars: (position, name, dtype); outputs: (name, shape, numpy dtype, zeroed) per output,
    in order; temporaries: (name, shape, numpy dtype, zeroed); checks: (index array, box, first
    allowed value, last) per index check; sizes: what the invoker gets.
    """

    tensors: tuple[tuple[int, str], ...]
    inouts: tuple[str, ...]
    scalars: tuple[tuple[int, str, object], ...]
    outputs: tuple[tuple[str, tuple[int, ...], np.dtype, bool], ...]
    temporaries: tuple[tuple[str, tuple[int, ...], np.dtype, bool], ...]
    checks: tuple[tuple[str, tuple[slice, ...], int, int], ...]
    sizes: dict[str, int]
    # The temporaries' arrays, kept from call to call, one set per thread, where `reuse` (the
    # C targets): fresh pages cost a page fault each (lstm's 5 MB of temporaries: 0.5-1 ms of
    # a 12 ms call). One that the kernel may read before writing (its `zeroed` flag: a `for`
    # loop that may run no step) is zeroed in place, so that every call sees zeros there, as
    # with a fresh array. The GPU planners get fresh zeroed ones, as they were written for.
    reuse: bool = True
    scratch: threading.local = field(default_factory=threading.local, compare=False)

    @staticmethod
    def make(kernel: KernelIR, env: dict[str, int], written_first: frozenset[str],
             reuse: bool = True) -> CallPlan:
        """The plan of a call whose checks passed with the sizes `env` (`reuse`: keep the
        temporaries' arrays from call to call)."""
        tensors, scalars = [], []
        for pos, spec in enumerate(kernel.args):
            if isinstance(spec, Tensor):
                tensors.append((pos, spec.name))
            else:
                scalars.append((pos, spec.name, spec.dtype))

        def shape(t: Tensor) -> tuple[int, ...]:
            return tuple(ir.evaluate(d, env) for d in t.shape)

        checks = []
        for c in kernel.index_checks:
            first, last = allowed_values(kernel, c, env)
            if type_keeps_within(kernel, c, first, last):
                continue
            lo = [max(0, ir.evaluate(e, env)) for e in c.lo]
            box = tuple(slice(a, ir.evaluate(e, env)) for a, e in zip(lo, c.hi, strict=True))
            checks.append((c.index, box, first, last))
        inouts = tuple(t.name for t in kernel.args
                       if isinstance(t, Tensor) and t.role == "inout")
        return CallPlan(
            tuple(tensors), inouts, tuple(scalars),
            tuple((t.name, shape(t), t.dtype.numpy, t.name not in written_first)
                  for t in kernel.outputs),
            tuple((t.name, shape(t), t.dtype.numpy, t.name not in written_first)
                  for t in kernel.temporaries),
            tuple(checks), {s: env[s] for s in kernel.sizes}, reuse)

    def run(self, args: tuple, out, invoke: Callable, scalar_value: Callable
            ) -> list[np.ndarray] | None:
        """Run a call of this plan's signature: its output arrays, or None (nothing run, no
        array touched) when a check fails and the full path must report it."""
        arrays = {name: args[pos] for pos, name in self.tensors}
        scalars = {name: scalar_value(args[pos], dtype, name)
                   for pos, name, dtype in self.scalars}
        for name in self.inouts:  # as Kernel._bind: by name (the same array twice aliases)
            a = arrays[name]
            if not a.flags.writeable or \
                    any(n != name and np.may_share_memory(a, b) for n, b in arrays.items()):
                return None
        for name, box, first, last in self.checks:
            values = arrays[name][box]
            if values.size and not values_within(values, first, last):
                return None
        if out is None:
            given: tuple = (None,) * len(self.outputs)
        else:
            given = (out,) if type(out) is np.ndarray else out
            taken = list(arrays.values())
            for array in given:
                if array is not None:
                    if not array.flags.writeable or \
                            any(np.may_share_memory(array, a) for a in taken):
                        return None
                    taken.append(array)
        outputs = []
        for (name, shape, dtype, zeroed), array in zip(self.outputs, given, strict=True):
            if array is None:
                array = (np.zeros if zeroed else np.empty)(shape, dtype)
            elif zeroed:
                array[...] = 0
            arrays[name] = array
            outputs.append(array)
        if self.reuse:  # the plan's shapes are fixed: one key
            temps = kept_temporaries(self.scratch, None, lambda: [
                np.empty(shape, dtype) for _, shape, dtype, _ in self.temporaries],
                [zeroed for *_, zeroed in self.temporaries])
        else:
            temps = [np.zeros(shape, dtype) for _, shape, dtype, _ in self.temporaries]
        for (name, *_), array in zip(self.temporaries, temps, strict=True):
            arrays[name] = array
        invoke(arrays, scalars, dict(self.sizes))
        return outputs

