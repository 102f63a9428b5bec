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

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from loopweave.backends.c import address
from loopweave.ir import expr as ir
from loopweave.ir.dependences import written_before_read
from loopweave.ir.kernel import KernelIR, ScalarArg, Tensor, allowed_values, type_keeps_within

#: Plans kept per kernel (the oldest is dropped beyond this: a loop over many shapes).
MAX_PLANS = 16
#: Byte alignment of the outputs and temporaries a call allocates: a cache line, as torch's
#: allocator gives. numpy's own arrays start 16 or 32 bytes into a line, so that every 64-byte
#: vector store of a row straddles two lines (bf16 AMX GEMM 512^3, one thread, Xeon: C
#: line-aligned 1.27x faster).
ALIGNMENT = 64


def new_array(shape: tuple[int, ...], dtype, zeroed: bool = True) -> np.ndarray:
    """A C-contiguous array of `shape` and `dtype` whose data starts on an ALIGNMENT-byte
    boundary (a view of a slightly larger buffer), filled with 0 where `zeroed`. On every
    call's path: about 0.8 us over `np.empty`."""
    dtype = np.dtype(dtype)
    raw = (np.zeros if zeroed else np.empty)(
        math.prod(shape) * dtype.itemsize + ALIGNMENT, np.uint8)
    return np.ndarray(shape, dtype, raw, -address(raw) % ALIGNMENT)


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


def reuses_temporaries(target: str) -> bool:
    """Whether calls on `target` keep the temporaries' arrays from call to call: not on the
    GPU targets, whose planners were written against zeroed temporaries."""
    return target not in ("cuda", "triton")


def written_first(kernel_ir: KernelIR, tensors, target: str) -> frozenset[str]:
    """The names of `tensors` (outputs, temporaries) that the kernel writes whole before any
    read (ir.dependences): their arrays need not be zeroed before a call. None on the GPU
    targets, whose planners keep them zeroed (their launchers copy outputs in, and the
    planners were written against zeroed outputs)."""
    if not reuses_temporaries(target):
        return frozenset()

    def first(t: Tensor) -> bool:
        try:  # a temporary's elements that nothing reads need no zeros: only reads matter
            return written_before_read(kernel_ir, t.name, whole=t.role != "temp")
        except ValueError:  # an extent isl cannot say (a ceiling division): zeroed
            return False
    return frozenset(t.name for t in tensors if first(t))


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


def _differs(name: str, dtype_name: str, entry: tuple) -> str:
    """A condition of generated code: the array `name` has not the (dtype, shape, strides)
    `entry` (dtype `dtype_name` in the code's names) or is not an exact numpy array."""
    _, shape, strides = entry
    return (f"type({name}) is not ndarray or {name}.shape != {shape} or "
            f"{name}.strides != {strides} or ({name}.dtype is not {dtype_name} and "
            f"{name}.dtype != {dtype_name})")


class Plans(dict):
    """A kernel's plans by signature, at most MAX_PLANS (the oldest is dropped beyond), and
    `last`, the plan a call tries first: its run checks its own signature, which costs less
    than computing the key and looking it up."""

    last: CallPlan | None = None

    def add(self, key: tuple, plan: CallPlan) -> None:
        """Keep `plan` under `key`, as the last one."""
        if len(self) >= MAX_PLANS:
            self.pop(next(iter(self), None), None)  # threads may race here
        self[key] = plan
        self.choose(plan)

    def choose(self, plan: CallPlan | None) -> None:
        """Make `plan` the last one (None: none) and run its invoker's hook for that, where
        it has one (`DirectCall.chosen`). A call that does not run through a plan chooses
        None, so that the next planned call chooses (and runs the hook) again."""
        self.last = plan
        chosen = getattr(plan.invoke, "chosen", None) if plan is not None else None
        if chosen is not None:
            chosen()

    def clear(self) -> None:
        super().clear()
        self.last = None


def call_by_name(kernel: KernelIR, invoke: Callable, sizes: dict[str, int]
                 ) -> Callable[..., None]:
    """`invoke` for calls with the sizes `sizes`, as a function of the kernel's arguments
    (arrays and converted scalars), outputs and temporaries, in that order."""
    names = [t.name for t in (*kernel.args, *kernel.outputs, *kernel.temporaries)]
    scalar_names = {a.name for a in kernel.args if isinstance(a, ScalarArg)}

    def by_name(*values) -> None:
        arrays, scalars = {}, {}
        for name, value in zip(names, values, strict=True):
            (scalars if name in scalar_names else arrays)[name] = value
        invoke(arrays, scalars, dict(sizes))
    return by_name


@dataclass(frozen=True, slots=True)
class CallPlan:
    """What calls of one signature do beyond the checks that passed for it once, and `run`,
    which does it.

    sizes: the sizes the checks gave; tensors: the positions of the array arguments; scalars:
    (position, name, dtype) per scalar argument; inouts: the positions of the inout arrays;
    checks: (position of the index array, box, first allowed value, last) per index check;
    outputs: (shape, numpy dtype, zeroed) per output, in order; temporaries: the same per
    temporary; invoke: the invoker's `direct` call for the
    sizes (backends/c.py `DirectCall`), or a function of the values in order
    (`call_by_name`); scalar_value: the runtime's scalar conversion; key: the signature
    (`signature`), keyed: the positions of the scalars in it (`keyed_scalars`).
    """

    sizes: dict[str, int]
    tensors: tuple[int, ...]
    scalars: tuple[tuple[int, str, object], ...]
    inouts: tuple[int, ...]
    checks: tuple[tuple[int, tuple[slice, ...], int, int], ...]
    outputs: tuple[tuple[tuple[int, ...], np.dtype, bool], ...]
    temporaries: tuple[tuple[tuple[int, ...], np.dtype, bool], ...]
    invoke: object
    scalar_value: Callable
    key: tuple
    keyed: tuple[int, ...]
    # The temporaries' arrays, kept from call to call, one set per thread, where `reuse` (the
    # C targets): fresh pages cost a page fault each (lstm's 5 MB of temporaries: 0.5-1 ms of
    # a 12 ms call). One that the kernel may read before writing (its `zeroed` flag: a `for`
    # loop that may run no step) is zeroed in place, so that every call sees zeros there, as
    # with a fresh array. The GPU planners get fresh zeroed ones, as they were written for.
    reuse: bool = True
    scratch: threading.local = field(default_factory=threading.local, compare=False)
    #: run(args, out): the call's output arrays, or None (nothing run, no array touched)
    #: when a check fails and the full path must report it; `code` is its text.
    run: Callable = field(init=False, compare=False)
    code: str = field(init=False, compare=False)

    def __post_init__(self):
        code, names = self._run_code()
        namespace = dict(names)
        exec(compile(code, f"<loopweave call plan {self.sizes}>", "exec"), namespace)
        object.__setattr__(self, "code", code)
        object.__setattr__(self, "run", namespace["run"])

    @staticmethod
    def make(kernel: KernelIR, env: dict[str, int], written_first: frozenset[str],
             invoke: Callable, scalar_value: Callable, key: tuple, keyed: tuple[int, ...],
             reuse: bool = True) -> CallPlan:
        """The plan of a call of signature `key` whose checks passed with the sizes `env`,
        run by `invoke` (`reuse`: keep the temporaries' arrays from call to call)."""
        position = {a.name: pos for pos, a in enumerate(kernel.args)}

        def shape(t: Tensor) -> tuple[int, ...]:
            return tuple(ir.evaluate(d, env) for d in t.shape)

        checks = []
        for c in kernel.index_checks:
            first, last = allowed_values(kernel, c, env)
            if type_keeps_within(kernel, c, first, last):
                continue
            lo = [max(0, ir.evaluate(e, env)) for e in c.lo]
            box = tuple(slice(a, ir.evaluate(e, env)) for a, e in zip(lo, c.hi, strict=True))
            checks.append((position[c.index], box, first, last))
        sizes = {s: env[s] for s in kernel.sizes}
        direct = getattr(invoke, "direct", None)
        call = direct(sizes) if direct is not None else None
        return CallPlan(
            sizes,
            tuple(pos for pos, a in enumerate(kernel.args) if isinstance(a, Tensor)),
            tuple((pos, a.name, a.dtype) for pos, a in enumerate(kernel.args)
                  if isinstance(a, ScalarArg)),
            tuple(pos for pos, a in enumerate(kernel.args)
                  if isinstance(a, Tensor) and a.role == "inout"),
            tuple(checks),
            tuple((shape(t), t.dtype.numpy, t.name not in written_first)
                  for t in kernel.outputs),
            tuple((shape(t), t.dtype.numpy, t.name not in written_first)
                  for t in kernel.temporaries),
            call if call is not None else call_by_name(kernel, invoke, sizes),
            scalar_value, key, keyed, reuse)

    def _run_code(self) -> tuple[str, dict[str, object]]:
        """The text of `run`, one flat function for this signature, and the names it uses.
        Flat, not a loop over this plan's fields: a call that follows megabytes of streaming
        finds Python's objects out of the cache, where each step costs about a microsecond
        (argmax over 8 MB: 18 us of Python per call through the fields, 8 us flat)."""
        names: dict[str, object] = {"scalar_value": self.scalar_value,
                                    "values_within": values_within}
        args = [f"a{pos}" for pos in range(len(self.tensors) + len(self.scalars))]
        lines = ["def run(args, out):", *self._signature_code(args, names)]
        for pos, name, dtype in self.scalars:
            names[f"dtype{pos}"] = dtype
            lines.append(f"    a{pos} = scalar_value(a{pos}, dtype{pos}, {name!r})")
        if self.inouts:
            names["inouts_free"] = self._inouts_free
            lines.append("    if not inouts_free(args): return None")
        for k, (pos, box, first, last) in enumerate(self.checks):
            names[f"box{k}"] = box
            lines += [f"    indices = a{pos}[box{k}]",
                      f"    if indices.size and not values_within(indices, {first}, {last}):",
                      "        return None"]
        outputs = [f"o{k}" for k in range(len(self.outputs))]
        if outputs and self.key[1] is None:  # the plan of calls without out=
            names.update(new_array=new_array)
            for k, (shape, dtype, zeroed) in enumerate(self.outputs):
                names[f"dtype_o{k}"] = dtype
                lines.append(f"    o{k} = new_array({shape}, dtype_o{k}, {zeroed})")
        elif outputs:
            names["given_outputs"] = self._given_outputs
            lines += ["    given = given_outputs(args, out)", "    if given is None: return None",
                      f"    {', '.join(outputs)}, = given"]
        temps = [f"t{k}" for k in range(len(self.temporaries))]
        if temps:
            names["temporaries"] = self._temporaries
            lines.append(f"    {', '.join(temps)}, = temporaries()")
        values = [*args, *outputs, *temps]
        if isinstance(self.invoke, Callable):  # call_by_name
            names["invoke"] = self.invoke
            lines.append(f"    invoke({', '.join(values)})")
        else:
            direct = self.invoke
            names.update(function=direct.function, address=direct.address,
                         after=direct.after)
            passed = [f"address({v})" if array and direct.address is not None else v
                      for v, array in zip(values, direct.arrays, strict=True)]
            lines.append(f"    function({', '.join([*passed, *map(str, direct.fixed)])})")
            if direct.after is not None:
                lines.append("    after()")
        lines.append(f"    return [{', '.join(outputs)}]")
        return "\n".join(lines) + "\n", names

    def _signature_code(self, args: list[str], names: dict[str, object]) -> list[str]:
        """Lines of `run` that return None unless the call's signature is `key` (as
        `signature` would find, without building it) and unpack the arguments into `args`."""
        arg_keys, out_key = self.key
        names.update(ndarray=np.ndarray, signature=signature, key=self.key, keyed=self.keyed)
        lines = [f"    if len(args) != {len(args)}: return None"]
        if args:
            lines.append(f"    {', '.join(args)}, = args")
        for pos, entry in enumerate(arg_keys[:len(args)]):
            if isinstance(entry, tuple):  # an array's (dtype, shape, strides)
                names[f"dtype_a{pos}"] = entry[0]
                lines.append(f"    if {_differs(f'a{pos}', f'dtype_a{pos}', entry)}: return None")
            else:
                names[f"type_a{pos}"] = entry
                lines.append(f"    if type(a{pos}) is not type_a{pos}: return None")
        for pos, value in zip(self.keyed, arg_keys[len(args):], strict=True):
            lines.append(f"    if a{pos} != {value}: return None")
        if out_key is None:
            lines.append("    if out is not None: return None")
        elif isinstance(out_key[0], np.dtype):  # one array
            names["dtype_out"] = out_key[0]
            lines.append(f"    if {_differs('out', 'dtype_out', out_key)}: return None")
        else:  # a tuple of them: rare, the whole key
            lines.append("    if signature(args, out, keyed) != key: return None")
        return lines

    def _inouts_free(self, args: tuple) -> bool:
        """Whether every inout array is writeable and shares no memory with another argument
        (as Kernel._bind checks: by name, so the same array twice aliases)."""
        for pos in self.inouts:
            a = args[pos]
            if not a.flags.writeable or any(
                    other != pos and np.may_share_memory(a, args[other])
                    for other in self.tensors):
                return False
        return True

    def _given_outputs(self, args: tuple, out) -> list[np.ndarray] | None:
        """The outputs for an `out=` value: the caller's arrays (zeroed where the kernel may
        read them first) and fresh ones for its None entries; None, with nothing touched,
        where a given array is read-only or overlaps an argument or another output."""
        given = (out,) if type(out) is np.ndarray else out
        taken = [args[pos] for pos in self.tensors]
        for array in given:
            if array is not None:
                if not array.flags.writeable or \
                        any(np.may_share_memory(array, a) for a in taken):
                    return None
                taken.append(array)
        outputs = []
        for (shape, dtype, zeroed), array in zip(self.outputs, given, strict=True):
            if array is None:
                array = new_array(shape, dtype, zeroed)
            elif zeroed:
                array[...] = 0
            outputs.append(array)
        return outputs

    def _temporaries(self) -> list[np.ndarray]:
        """The temporaries' arrays: kept in `scratch` where the plan reuses them, else fresh
        zeroed ones."""
        if not self.reuse:
            return [new_array(shape, dtype) for shape, dtype, _ in self.temporaries]
        return kept_temporaries(  # the plan's shapes are fixed: one key
            self.scratch, None,
            lambda: [new_array(shape, dtype, False) for shape, dtype, _ in self.temporaries],
            [zeroed for *_, zeroed in self.temporaries])
