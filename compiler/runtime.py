"""The callable `Kernel`: argument checking, size binding, output allocation; the backend's
invoker (see `loopweave.targets`) runs the generated code."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from loopweave.errors import ArgumentTypeError, ArgumentValueError
from loopweave.ir.expr import Param, evaluate, to_str
from loopweave.ir.kernel import KernelIR, ScalarArg, Tensor
from loopweave.ir.types import DType


def _scalar_value(arg, dtype: DType, name: str):
    """A Python or numpy scalar converted for a C parameter of `dtype`."""
    if isinstance(arg, np.ndarray) and arg.ndim == 0:
        arg = arg[()]
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
            return int(np.array(arg, dtype=dtype.numpy).view(np.uint16))
        return float(arg)
    except OverflowError:  # a Python int beyond any float
        raise ArgumentValueError(f"argument '{name}' = {arg} does not fit in {dtype}") from None


class Kernel:
    """A compiled kernel. Call it with numpy arrays and scalars in parameter order (or by
    parameter name, as keyword arguments).

    Returns the output array (a tuple if several, None if none); `inout` arrays are updated in
    place. `source` is the generated code that ran for the last call's sizes, `ir` the kernel
    IR.
    """

    def __init__(self, kernel_ir: KernelIR, source: str, target: str,
                 invoke: Callable[[dict, dict, dict], None]):
        self.ir = kernel_ir
        self._source = source
        self.target = target
        self.name = kernel_ir.name
        self.invoke = invoke

    @property
    def source(self) -> str:
        """The generated code that ran for the last call's sizes: a tuned schedule's source
        when one was used for them; before any call, the code a call runs without one."""
        # An invoker that picks code per call's sizes (loopweave.pipeline.TunedInvoker) says
        # which ran last; the others always run the one source.
        current = getattr(self.invoke, "current_source", None)
        return current if isinstance(current, str) else self._source

    def __repr__(self) -> str:
        args = ", ".join(str(a) for a in self.ir.args)
        outs = ", ".join(str(t) for t in self.ir.outputs)
        return f"<loopweave.Kernel {self.name}({args}) -> ({outs}) target={self.target}>"

    @property
    def signature(self) -> str:
        return repr(self)

    @property
    def resource_usage(self) -> dict:
        """Per generated GPU kernel: registers, spills, shared memory (what `ptxas -v` reports;
        the cuda target). Raises AttributeError for targets that report none."""
        usage = getattr(self.invoke, "resource_usage", None)
        if usage is None:
            raise AttributeError(f"target {self.target!r} reports no resource usage")
        return usage()

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
        for cond in self.ir.assumptions:
            if not evaluate(cond, env):
                sizes = ", ".join(f"{k}={v}" for k, v in env.items())
                raise ArgumentValueError(f"{self.name}: the sizes break `assume {to_str(cond)}` "
                                         f"({sizes})")
        written = [t.name for t in self.ir.args if isinstance(t, Tensor) and t.role == "inout"]
        for w in written:
            for name, a in arrays.items():
                # By name, not identity: the same array passed twice aliases too (C `restrict`).
                if name != w and np.may_share_memory(a, arrays[w]):
                    raise ArgumentValueError(f"argument '{name}' overlaps inout argument "
                                             f"'{w}' in memory; pass a copy")
        return arrays, scalars, env

    def _check_array(self, spec: Tensor, arg, env: dict[str, int]) -> np.ndarray:
        if not isinstance(arg, np.ndarray):
            raise ArgumentTypeError(f"argument '{spec.name}' must be a numpy array "
                                    f"({spec.dtype}[{', '.join(map(to_str, spec.shape))}]), "
                                    f"not {type(arg).__name__}")
        if arg.dtype != spec.dtype.numpy:
            raise ArgumentTypeError(f"argument '{spec.name}' must have dtype {spec.dtype.numpy} "
                                    f"({spec.dtype}), not {arg.dtype}")
        if arg.ndim != len(spec.shape):
            raise ArgumentValueError(f"argument '{spec.name}' must have {len(spec.shape)} "
                                     f"dimension(s), not {arg.ndim} (shape {arg.shape})")
        if not arg.flags.c_contiguous:
            raise ArgumentValueError(f"argument '{spec.name}' is not C-contiguous; pass "
                                     f"numpy.ascontiguousarray({spec.name})")
        if spec.role == "inout" and not arg.flags.writeable:
            raise ArgumentValueError(f"argument '{spec.name}' is inout but read-only")
        for d, dim in enumerate(spec.shape):
            if isinstance(dim, Param) and dim.name not in env:
                env[dim.name] = arg.shape[d]
        return arg

    def _allocate(self, tensor: Tensor, env: dict[str, int]) -> np.ndarray:
        shape = tuple(evaluate(d, env) for d in tensor.shape)
        if any(n < 0 for n in shape):
            raise ArgumentValueError(f"{tensor.name} would have a negative shape {shape} for "
                                     f"sizes {env}")
        try:
            return np.zeros(shape, dtype=tensor.dtype.numpy)
        except (ValueError, MemoryError) as e:
            raise ArgumentValueError(f"cannot allocate {tensor.name} of shape {shape} for sizes "
                                     f"{env}: {e}") from None

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

    def __call__(self, *args, **kwargs):
        args = self._positional(args, kwargs)
        # A backend that takes other array kinds (torch tensors for Triton) converts around it.
        convert = getattr(self.invoke, "convert_call", None)
        return self._call(args) if convert is None else convert(self._call, args)

    def _call(self, args: tuple):
        arrays, scalars, env = self._bind(args)
        outputs = [self._allocate(t, env) for t in self.ir.outputs]
        temps = [self._allocate(t, env) for t in self.ir.temporaries]
        for t, a in zip((*self.ir.outputs, *self.ir.temporaries), (*outputs, *temps), strict=True):
            arrays[t.name] = a
        self.invoke(arrays, scalars, {s: env[s] for s in self.ir.sizes})
        if not outputs:
            return None
        return outputs[0] if len(outputs) == 1 else tuple(outputs)
