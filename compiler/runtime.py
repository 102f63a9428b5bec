"""The callable `Kernel`: array conversion, argument checking, size binding, output allocation;
the backend's invoker (see `loopweave.targets`) runs the generated code.

Every target's invoker gets C-contiguous numpy arrays of the kernel's dtypes. This module turns
what callers pass into them once, for all targets: numpy arrays as they are, CPU torch tensors
and DLPack objects as numpy views of their memory (no copy), strided inputs as contiguous
copies (with a one-time `StridedCopyWarning`), bf16 as `ml_dtypes.bfloat16` (uint16 bits are
still taken). Outputs come back as torch tensors when a torch tensor came in, else as numpy
arrays; `out=` hands in caller-owned output arrays.
"""

from __future__ import annotations

import functools
import inspect
import keyword
import math
import sys
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from loopweave import torch_ops
from loopweave.call_plan import (
    CallPlan,
    Plans,
    kept_temporaries,
    keyed_scalars,
    new_array,
    reuses_temporaries,
    signature,
    values_within,
    written_first,
)
from loopweave.errors import ArgumentTypeError, ArgumentValueError, StridedCopyWarning
from loopweave.ir.expr import Param, evaluate, to_str
from loopweave.ir.kernel import KernelIR, ScalarArg, Tensor, allowed_values, type_keeps_within
from loopweave.ir.specialize import check_assumptions
from loopweave.ir.types import DTYPES, DType

#: DLPack's device type of host memory (kDLCPU); other devices hold memory numpy cannot read.
_DLPACK_CPU = 1

#: numpy dtypes of ml_dtypes scalars (bfloat16, float8): no np.number, but floats.
_ML_SCALARS = {t.numpy for t in DTYPES.values() if t.is_storage_only and t.name != "f16"}


def _scalar_value(arg, dtype: DType, name: str):
    """A Python or numpy scalar (or a 0-d array or tensor) converted for a C parameter of
    `dtype`."""
    if isinstance(arg, np.ndarray) and arg.ndim == 0:
        arg = arg[()]
    if torch_ops.is_tensor(arg) and arg.dim() == 0:
        arg = arg.item()
    if isinstance(arg, np.generic) and not isinstance(arg, np.number) \
            and arg.dtype in _ML_SCALARS:
        arg = float(arg)  # an ml_dtypes.bfloat16 (or float8) scalar is no np.number
    if isinstance(arg, bool | np.bool_) or not isinstance(arg, int | float | np.number):
        raise ArgumentTypeError(f"argument '{name}' must be a scalar of type {dtype}, "
                                f"not {type(arg).__name__}")
    if dtype.is_int:
        if isinstance(arg, float | np.floating) and not float(arg).is_integer():
            raise ArgumentTypeError(f"argument '{name}' must be an integer ({dtype}), got {arg}")
        value = int(arg)
        info = np.iinfo(dtype.numpy)
        if not int(info.min) <= value <= int(info.max):
            raise ArgumentValueError(f"argument '{name}' = {value} does not fit in {dtype}")
        return value
    try:
        if dtype.is_storage_only:
            return int(np.array(arg, dtype=dtype.numpy).view(dtype.bits_numpy))
        return float(arg)
    except OverflowError:  # a Python int beyond any float
        raise ArgumentValueError(f"argument '{name}' = {arg} does not fit in {dtype}") from None


# -- array kinds -----------------------------------------------------------------------------------

def device_of(value) -> str | None:
    """Where an array argument's memory is: None for host memory (numpy arrays, CPU tensors,
    DLPack objects on the CPU, and anything that is no array), else the device's name."""
    if torch_ops.is_tensor(value):
        return None if value.device.type == "cpu" else str(value.device)
    if isinstance(value, np.ndarray) or not hasattr(value, "__dlpack_device__"):
        return None
    kind, index = value.__dlpack_device__()
    return None if int(kind) == _DLPACK_CPU else f"DLPack device {int(kind)}:{index}"


def host_array(value, what: str, expected: str) -> np.ndarray:
    """A numpy view of `value` (a numpy array, a CPU torch tensor or a host DLPack object), its
    strides kept; `what` names it and `expected` says what it should be in errors."""
    if isinstance(value, np.ndarray):
        return value
    if torch_ops.is_tensor(value):
        return torch_ops.tensor_to_numpy(value)
    if hasattr(value, "__dlpack__"):
        return _from_dlpack(value, what)
    raise ArgumentTypeError(f"{what} must be a numpy array, a torch tensor or a DLPack object "
                            f"({expected}), not {type(value).__name__}")


def _from_dlpack(value, what: str) -> np.ndarray:
    try:
        return np.from_dlpack(value)
    except (BufferError, RuntimeError, TypeError, ValueError) as e:
        numpy_error = e
    # numpy reads no bfloat16 through DLPack; torch does, and its tensor has a numpy view.
    try:
        torch = torch_ops.torch_module()
        return torch_ops.tensor_to_numpy(torch.from_dlpack(value))
    except (ImportError, BufferError, RuntimeError, TypeError, ValueError):
        raise ArgumentTypeError(f"{what}: numpy cannot read this DLPack object "
                                f"({numpy_error})") from None


def typed_host_array(value, dtype: DType, what: str, expected: str) -> np.ndarray:
    """`host_array(value)` as DSL type `dtype` (`with_dtype`). A torch tensor that packs two
    f4e2m1 codes a byte goes only where the kernel declares the bytes (`u8`): read as one code
    a byte, its high nibbles would be dropped without a word."""
    packed = torch_ops.packed_pairs(value)
    if packed is not None and dtype.name != "u8":
        raise ArgumentTypeError(f"{what} is a {packed} tensor (two codes a byte), but the "
                                f"kernel declares {expected}: declare the bytes as u8 and "
                                f"decode the nibbles (docs/dsl.md, MXFP4)")
    return with_dtype(host_array(value, what, expected), dtype, what)


def with_dtype(array: np.ndarray, dtype: DType, what: str) -> np.ndarray:
    """`array` as DSL type `dtype` (bf16 and the 8-bit floats also from their bits, as a view);
    raises ArgumentTypeError for any other dtype."""
    want = dtype.numpy
    if array.dtype == want:
        return array
    # bf16 and the 8-bit floats also as their bits (uint16, uint8), as before ml_dtypes
    has_bits = dtype.is_storage_only and dtype.name != "f16" and want != dtype.bits_numpy
    if has_bits and array.dtype == dtype.bits_numpy:
        return array.view(want)
    bits = f" or {dtype.bits_numpy} bits" if has_bits else ""
    raise ArgumentTypeError(f"{what} must have dtype {want} ({dtype}{bits}), not {array.dtype}")


def returned(array: np.ndarray, dtype: DType, as_torch: bool):
    """An output array as the caller gets it: a torch view when torch tensors came in."""
    return torch_ops.numpy_to_tensor(array, dtype) if as_torch else array


def _as_result(values: list):
    """None for no outputs, the one output, or a tuple of them."""
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def _type_text(spec: Tensor | ScalarArg) -> str:
    """`spec`'s type as the DSL writes it: `f32[M, K]`, `inout f32[N]`, `f32`."""
    if isinstance(spec, ScalarArg):
        return str(spec.dtype)
    role = "" if spec.role in ("in", "out") else f"{spec.role} "
    return f"{role}{spec.dtype}[{', '.join(map(to_str, spec.shape))}]"


def call_signature(kernel_ir: KernelIR) -> inspect.Signature | None:
    """The kernel's parameters for `inspect.signature`: each argument by its DSL name with its
    type as annotation, then `out=` (keyword only) when there are outputs; None when a DSL
    name is no Python parameter name (a keyword such as `lambda`)."""
    names = [a.name for a in kernel_ir.args]
    if not all(n.isidentifier() and not keyword.iskeyword(n) for n in names):
        return None
    params = [inspect.Parameter(a.name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                annotation=_type_text(a)) for a in kernel_ir.args]
    if kernel_ir.outputs and "out" not in names:
        params.append(inspect.Parameter("out", inspect.Parameter.KEYWORD_ONLY, default=None))
    outputs = ", ".join(f"{t.name}: {_type_text(t)}" for t in kernel_ir.outputs)
    return inspect.Signature(params, return_annotation=outputs or None)


def _user_stacklevel() -> int:
    """The `stacklevel` for `warnings.warn` that points at the first caller outside loopweave
    (called from the function that warns)."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("loopweave."):
        level, frame = level + 1, frame.f_back
    return level


# -- pickling --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Recipe:
    """How to build a kernel again: `build(*args, **kwargs)` (the API layer's `compile` and
    what it was given: DSL source, target, schedule, options). Pickling a `Kernel` pickles its
    recipe; unpickling builds it again, which the build cache makes cheap."""

    build: Callable[..., Kernel]
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


def rebuild(recipe: Recipe) -> Kernel:
    """The kernel `recipe` builds (what unpickling a `Kernel` calls)."""
    kernel = recipe.build(*recipe.args, **recipe.kwargs)
    kernel.recipe = recipe
    return kernel


# -- gathers: index values checked before the call ---------------------------------------------

def check_indices(kernel_ir: KernelIR, arrays: dict[str, np.ndarray], env: dict[str, int],
                  on_device: Mapping[int, object] | None = None) -> None:
    """Every value a gather reads as an index (`ids` in `table[ids[i], d]`) inside the tensor
    it indexes, checked once per call before anything runs (vectorized: a min and a max over
    the elements the kernel reads); raises ArgumentValueError naming the first bad element.
    `on_device` maps id(host stand-in) -> the device tensor that holds the values (a call with
    CUDA tensors on the triton target): those are checked where they are."""
    for c in kernel_ir.index_checks:
        first, last = allowed_values(kernel_ir, c, env)
        if type_keeps_within(kernel_ir, c, first, last):
            continue
        lo = [max(0, evaluate(e, env)) for e in c.lo]
        box = tuple(slice(a, evaluate(e, env)) for a, e in zip(lo, c.hi, strict=True))
        device = (on_device or {}).get(id(arrays[c.index]))
        values = (arrays[c.index] if device is None else device)[box]
        if math.prod(values.shape) == 0 or values_within(values, first, last):
            continue
        values = np.asarray(values if device is None else values.cpu().numpy())
        where = tuple(int(k) for k in np.argwhere((values < first) | (values > last))[0])
        position = ", ".join(str(a + k) for a, k in zip(lo, where, strict=True))
        bad = f"{c.index}[{position}] = {values[where]} is out of range {first}..{last}"
        if not c.tensor:
            raise ArgumentValueError(f"{bad} that an `assume` declares ({c.access} at line "
                                     f"{c.line})")
        if c.bound:
            raise ArgumentValueError(f"{bad} for a range bound over dimension {c.dim} of "
                                     f"{c.tensor} ({c.access} at line {c.line})")
        raise ArgumentValueError(f"{bad} for dimension {c.dim} of {c.tensor} (read as "
                                 f"{c.access} at line {c.line})")


# -- the kernel ------------------------------------------------------------------------------------

def allocate(tensor: Tensor, env: dict[str, int], zeroed: bool = True) -> np.ndarray:
    """An array for `tensor` (an output or temporary) at the sizes `env`, zeroed unless
    `zeroed` is False (the kernel writes every element before it could read one)."""
    shape = tuple(evaluate(d, env) for d in tensor.shape)
    if any(n < 0 for n in shape):
        raise ArgumentValueError(f"{tensor.name} would have a negative shape {shape} for "
                                 f"sizes {env}")
    try:
        return new_array(shape, tensor.dtype.numpy, zeroed)
    except (ValueError, MemoryError) as e:
        raise ArgumentValueError(f"cannot allocate {tensor.name} of shape {shape} for sizes "
                                 f"{env}: {e}") from None


def temporaries_at(scratch: threading.local, key, tensors, written: frozenset[str],
                   env: dict[str, int], target: str) -> list[np.ndarray]:
    """The arrays of the temporaries `tensors` at the sizes `env`: where `target` reuses them,
    this thread's (in `scratch`) from its last call with the same `key` and shapes, zeroed in
    place unless in `written` (`written_first`), as `CallPlan.run` does; else fresh zeroed
    ones."""
    if not reuses_temporaries(target):
        return [allocate(t, env) for t in tensors]
    # The shapes of the last sizes seen, kept with them: evaluating every extent on every call
    # took 6.5 us of a 16 us call (a strided convolution's channels-last copy, tiny sizes).
    at = tuple(env.items())
    last = getattr(scratch, "shapes", None)
    if last is None or last[0] != (key, at):
        shapes = tuple(tuple(evaluate(d, env) for d in t.shape) for t in tensors)
        last = scratch.shapes = ((key, at), shapes)
    shapes = last[1]
    return kept_temporaries(scratch, (key, shapes),
                            lambda: [allocate(t, env, zeroed=False) for t in tensors],
                            [t.name not in written for t in tensors])


class Kernel:
    """A compiled kernel. Call it with arrays and scalars in parameter order (or by parameter
    name, as keyword arguments); `inspect.signature(kernel)` names the parameters.

    Arrays may be numpy arrays, torch tensors or any DLPack object (read without copies where
    their layout allows); strided inputs are copied (a `StridedCopyWarning`, once per
    argument). Returns the output array (a tuple if several, None if none): torch tensors when
    a torch tensor came in, else numpy arrays. `out=` takes caller-owned arrays for the outputs
    (one array, or a tuple with one entry per output, None to allocate that one), which are
    returned. `inout` arrays are updated in place. `source` is the generated code that ran for
    the last call's sizes, `ir` the kernel IR.
    """

    def __init__(self, kernel_ir: KernelIR, source: str, target: str,
                 invoke: Callable[[dict, dict, dict], None], recipe: Recipe | None = None):
        self.ir = kernel_ir
        self._source = source
        self.target = target
        self.name = kernel_ir.name
        self.invoke = invoke
        self.recipe = recipe  # set by the API layer: what pickling needs
        self._copied: set[str] = set()  # arguments already warned about a strided copy
        self._plans = Plans()  # per argument signature (call_plan.py)
        self._scratch = threading.local()  # this thread's temporaries (`_temporaries`)
        self._keyed = keyed_scalars(kernel_ir)
        self._out_keyword = "out" not in (a.name for a in kernel_ir.args)
        params = call_signature(kernel_ir)
        if params is not None:
            self.__signature__ = params

    @functools.cached_property
    def _written_first(self) -> frozenset[str]:
        """The outputs and temporaries the kernel writes whole before any read
        (ir.dependences), which need not be zeroed before a call. The GPU targets' planners
        keep them zeroed (their launchers copy outputs in, and the planners were written
        against zeroed outputs)."""
        return written_first(self.ir, (*self.ir.outputs, *self.ir.temporaries), self.target)

    @property
    def _reuses_temporaries(self) -> bool:
        """Whether calls keep the temporaries' arrays (`CallPlan.reuse`): not for the GPU
        targets, whose planners were written against zeroed temporaries."""
        return reuses_temporaries(self.target)

    def _temporaries(self, env: dict[str, int]) -> list[np.ndarray]:
        """The temporaries' arrays at the sizes `env`: this thread's from its last call with
        the same shapes where the target reuses them (zeroed in place where the kernel may
        read before writing, as `CallPlan.run` does), else fresh zeroed ones."""
        return temporaries_at(self._scratch, None, self.ir.temporaries, self._written_first,
                              env, self.target)

    @property
    def source(self) -> str:
        """The generated code that ran for the last call's sizes: a tuned schedule's source
        when one was used for them; before any call, the code a call runs without one."""
        # An invoker that picks code per call's sizes (loopweave.pipeline.TunedInvoker) says
        # which ran last; the others always run the one source.
        current = getattr(self.invoke, "current_source", None)
        return current if isinstance(current, str) else self._source

    def __repr__(self) -> str:
        return f"<loopweave.Kernel {self.signature} target={self.target}>"

    @property
    def signature(self) -> str:
        """The kernel's parameters and outputs with their roles:
        `matmul(A: in f32[M, K], B: in f32[K, N]) -> (C: out f32[M, N])`."""
        args = ", ".join(str(a) for a in self.ir.args)
        outs = ", ".join(str(t) for t in self.ir.outputs)
        return f"{self.name}({args}) -> ({outs})"

    @property
    def resource_usage(self) -> dict:
        """Per generated GPU kernel: registers, spills, shared memory (what `ptxas -v` reports;
        the cuda target). Raises AttributeError for targets that report none."""
        usage = getattr(self.invoke, "resource_usage", None)
        if usage is None:
            raise AttributeError(f"target {self.target!r} reports no resource usage")
        return usage()

    def as_torch_op(self, name: str | None = None):
        """This kernel as the torch custom op `name` ("namespace::op", default
        "loopweave::<kernel name>"), usable inside `torch.compile` graphs; see
        `loopweave.torch_ops.register`."""
        return torch_ops.register(self, name)

    def __reduce__(self):
        if self.recipe is None:
            raise TypeError(f"cannot pickle kernel {self.name!r}: it has no recipe to build it "
                            "again (kernels from loopweave.compile() have one)")
        return rebuild, (self.recipe,)

    def __copy__(self) -> Kernel:
        # A shallow copy shares the loaded code; without this, copy.copy would go through
        # __reduce__ and compile again.
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    # -- calls -------------------------------------------------------------------------------------

    def __call__(self, *args, **kwargs):
        key = None
        if not kwargs or (self._out_keyword and len(kwargs) == 1 and "out" in kwargs):
            # A signature seen before: only the checks that depend on the arrays' contents
            # and addresses (loopweave.call_plan); any failure takes the full path below.
            # The last plan first: it checks its own signature, cheaper than finding the key.
            out = kwargs.get("out")
            last = self._plans.last
            outputs = last.run(args, out) if last is not None else None
            if outputs is None:
                key = signature(args, out, self._keyed)
                plan = self._plans.get(key) if key is not None else None
                if plan is not None and plan is not last:
                    self._plans.choose(plan)
                    outputs = plan.run(args, out)
            if outputs is not None:
                return _as_result(outputs)
        self._plans.choose(None)
        out = kwargs.pop("out", None) if self._out_keyword else None
        args = self._positional(args, kwargs)
        devices = [(spec.name, d) for spec, a in zip(self.ir.args, args, strict=False)
                   if (d := device_of(a)) is not None]
        if devices:
            return self._call_on_device(args, out, devices)
        given = self._out_objects(out)
        arrays = self._run(args, given, key)
        as_torch = any(torch_ops.is_tensor(a) for a in (*args, *given))
        return _as_result([g if g is not None else returned(a, t.dtype, as_torch)
                           for t, a, g in zip(self.ir.outputs, arrays, given, strict=True)])

    def _call_on_device(self, args: tuple, out, devices: list[tuple[str, str]]):
        """A call with tensors in device memory: the invoker's `convert_call` runs it there
        (the Triton target on a GPU), else the call is an error naming the tensor."""
        convert = getattr(self.invoke, "convert_call", None)
        name, device = devices[0]
        if convert is None:
            raise ArgumentTypeError(f"argument '{name}' is on {device}, but target "
                                    f"{self.target!r} runs on the host; pass {name}.cpu()")
        if out is not None:
            raise ArgumentValueError(f"{self.name}(): out= is not supported for tensors on "
                                     f"{device}")
        on_device = {n for n, _ in devices}
        hosted = [spec.name for spec in self.ir.args
                  if isinstance(spec, Tensor) and spec.name not in on_device]
        if hosted:
            raise ArgumentValueError(f"argument '{hosted[0]}' is in host memory and "
                                     f"'{name}' on {device}; pass all arrays on one device")
        torch = torch_ops.torch_module()
        tensors = tuple(a if torch_ops.is_tensor(a) or device_of(a) is None
                        else torch.from_dlpack(a) for a in args)
        return convert(lambda host_args: _as_result(self._run(host_args)), tensors)

    def _run(self, args: tuple, given: tuple = (), key: tuple | None = None
             ) -> list[np.ndarray]:
        """Check and bind `args`, run the kernel; the output arrays (the caller's for the
        `given` out= entries that are not None). A call that passed every check with nothing
        converted leaves the plan of its signature `key` for the next ones."""
        arrays, scalars, env = self._bind(args)
        check_indices(self.ir, arrays, env, getattr(self.invoke, "device_arrays", None))
        outputs = self._outputs(given or (None,) * len(self.ir.outputs), arrays, env)
        if key is not None and self._unconverted(args, arrays, given, outputs):
            self._plans.add(key, CallPlan.make(
                self.ir, env, self._written_first, self.invoke, _scalar_value, key,
                self._keyed, reuse=self._reuses_temporaries))
        temps = self._temporaries(env)
        for t, a in zip((*self.ir.outputs, *self.ir.temporaries), (*outputs, *temps), strict=True):
            arrays[t.name] = a
        self.invoke(arrays, scalars, {s: env[s] for s in self.ir.sizes})
        return outputs

    def _unconverted(self, args: tuple, arrays: dict[str, np.ndarray], given: tuple,
                     outputs: list[np.ndarray]) -> bool:
        """Whether the call took every array as given (no copy, view or conversion)."""
        return all(arrays[spec.name] is a for spec, a in zip(self.ir.args, args, strict=True)
                   if isinstance(spec, Tensor)) and \
            all(g is None or g is o for g, o in zip(given, outputs, strict=False))

    def _bind(self, args: tuple) -> tuple[dict[str, np.ndarray], dict[str, object], dict[str, int]]:
        if len(args) != len(self.ir.args):
            names = ", ".join(a.name for a in self.ir.args)
            raise ArgumentTypeError(f"{self.name}() takes {len(self.ir.args)} argument(s) "
                                    f"({names}), got {len(args)}")
        arrays: dict[str, np.ndarray] = {}
        scalars: dict[str, object] = {}
        env: dict[str, int] = {}
        for spec, arg in zip(self.ir.args, args, strict=True):
            if isinstance(spec, ScalarArg):
                scalars[spec.name] = _scalar_value(arg, spec.dtype, spec.name)
                if spec.dtype.is_int:
                    env[spec.name] = scalars[spec.name]
                continue
            arrays[spec.name] = self._check_array(spec, arg, env)
        for spec in self.ir.args:  # dims that are expressions of sizes, now all bound
            if isinstance(spec, Tensor):
                for d, dim in enumerate(spec.shape):
                    want = evaluate(dim, env)
                    if arrays[spec.name].shape[d] != want:
                        raise ArgumentValueError(
                            f"argument '{spec.name}' has shape {arrays[spec.name].shape}; "
                            f"dimension {d} must be {to_str(dim)} = {want}")
        check_assumptions(self.ir, env)
        written = [t.name for t in self.ir.args if isinstance(t, Tensor) and t.role == "inout"]
        for w in written:
            for name, a in arrays.items():
                # By name, not identity: the same array passed twice aliases too (C `restrict`).
                if name != w and np.may_share_memory(a, arrays[w]):
                    raise ArgumentValueError(f"argument '{name}' overlaps inout argument "
                                             f"'{w}' in memory; pass a copy")
        return arrays, scalars, env

    def _check_array(self, spec: Tensor, arg, env: dict[str, int]) -> np.ndarray:
        what = f"argument '{spec.name}'"
        expected = _type_text(spec)
        arg = typed_host_array(arg, spec.dtype, what, expected)
        if arg.ndim != len(spec.shape):
            raise ArgumentValueError(f"{what} must have {len(spec.shape)} dimension(s), "
                                     f"not {arg.ndim} (shape {arg.shape})")
        if not arg.flags.c_contiguous:
            arg = self._contiguous(spec, arg)
        if spec.role == "inout" and not arg.flags.writeable:
            raise ArgumentValueError(f"{what} is inout but read-only")
        for d, dim in enumerate(spec.shape):
            if isinstance(dim, Param) and dim.name not in env:
                env[dim.name] = arg.shape[d]
        return arg

    def _contiguous(self, spec: Tensor, array: np.ndarray) -> np.ndarray:
        """A C-contiguous copy of a strided input; a strided inout argument is an error (the
        kernel writes it in place)."""
        if spec.role == "inout":
            raise ArgumentValueError(f"argument '{spec.name}' is inout but not C-contiguous; "
                                     f"pass numpy.ascontiguousarray({spec.name}) and use that")
        if spec.name not in self._copied:
            self._copied.add(spec.name)
            warnings.warn(f"{self.name}: argument '{spec.name}' is not C-contiguous (strides "
                          f"{array.strides}); it is copied on every call. Pass a contiguous "
                          "array to avoid the copy", StridedCopyWarning,
                          stacklevel=_user_stacklevel())
        return np.ascontiguousarray(array)

    # -- outputs -----------------------------------------------------------------------------------

    def _out_objects(self, out) -> tuple:
        """`out=` as one entry per output (None: allocate it)."""
        count = len(self.ir.outputs)
        if out is None:
            return (None,) * count
        if count == 0:
            raise ArgumentTypeError(f"{self.name}() has no outputs to pass out= for (inout "
                                    "arguments are updated in place)")
        several = isinstance(out, tuple)  # as numpy's out=: a list is one (bad) array
        if count == 1 and not several:
            return (out,)
        if not several or len(out) != count:
            names = ", ".join(t.name for t in self.ir.outputs)
            raise ArgumentTypeError(f"{self.name}() has {count} output(s) ({names}): out= must "
                                    f"be a tuple of {count} arrays (None for one to allocate), "
                                    f"not {type(out).__name__}"
                                    + (f" of {len(out)}" if several else ""))
        return tuple(out)

    def _outputs(self, given: tuple, arrays: dict[str, np.ndarray],
                 env: dict[str, int]) -> list[np.ndarray]:
        """The output arrays: each `given` one checked (and zeroed, unless the kernel writes
        all of it first: it then holds what a fresh output would, where the kernel writes
        nothing), the others allocated."""
        outputs = []
        taken = [(f"argument '{name}'", a) for name, a in arrays.items()]
        for spec, value in zip(self.ir.outputs, given, strict=True):
            zeroed = spec.name not in self._written_first
            if value is None:
                outputs.append(allocate(spec, env, zeroed))
                continue
            array = self._out_array(spec, value, env)
            for other_name, other in taken:
                if np.may_share_memory(array, other):
                    raise ArgumentValueError(f"out array for '{spec.name}' overlaps "
                                             f"{other_name} in memory; pass separate arrays")
            taken.append((f"the out array for '{spec.name}'", array))
            if zeroed:
                array[...] = 0
            outputs.append(array)
        return outputs

    def _out_array(self, spec: Tensor, value, env: dict[str, int]) -> np.ndarray:
        what = f"out array for '{spec.name}'"
        shape = tuple(evaluate(d, env) for d in spec.shape)
        dims = ", ".join(map(to_str, spec.shape))
        array = typed_host_array(value, spec.dtype, what, _type_text(spec))
        if array.shape != shape:
            raise ArgumentValueError(f"{what} has shape {array.shape}; it must be ({dims}) = "
                                     f"{shape}")
        if not array.flags.c_contiguous:
            raise ArgumentValueError(f"{what} is not C-contiguous; the kernel writes it in "
                                     "place, so pass a contiguous array")
        if not array.flags.writeable:
            raise ArgumentValueError(f"{what} is read-only")
        return array

    def _positional(self, args: tuple, kwargs: dict) -> tuple:
        """`args` then the keyword arguments, by parameter name, as one positional tuple."""
        names = [a.name for a in self.ir.args]
        if not kwargs or len(args) > len(names):  # too many: _bind says so
            return (*args, *kwargs.values())
        for key in kwargs:
            if key not in names:
                raise ArgumentTypeError(f"{self.name}() got an unexpected keyword argument "
                                        f"{key!r}; its parameters are {', '.join(names)}")
            if names.index(key) < len(args):
                raise ArgumentTypeError(f"{self.name}() got argument {key!r} twice, by position "
                                        "and by keyword")
        missing = [n for n in names[len(args):] if n not in kwargs]
        if missing:
            raise ArgumentTypeError(f"{self.name}() is missing argument(s) {', '.join(missing)}")
        return (*args, *(kwargs[n] for n in names[len(args):]))
