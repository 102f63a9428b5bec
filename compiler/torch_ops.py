"""torch interop: tensors to and from numpy without copies, and a compiled kernel as a
`torch.library` custom op that works inside `torch.compile` graphs.

    matmul = loopweave.compile(src)
    op = matmul.as_torch_op("mylib::matmul")      # or loopweave.torch_ops.register(matmul, ...)
    C = op(A, B)                                   # also torch.ops.mylib.matmul(A, B)
    torch.compile(lambda A, B: torch.relu(op(A, B)))(A, B)

The op's fake (meta) implementation computes the output shapes and dtypes from the kernel IR, so
tracing never runs the kernel. The op has no autograd formula: use it on tensors that do not
require grad, or under `torch.no_grad()`.

torch is an optional dependency: importing this module does not import torch (the runtime
imports this module for every kernel); the functions that need torch import it on first use and
raise `TorchMissingError` when it is not installed.
"""

from __future__ import annotations

import sys

import numpy as np

from loopweave.errors import ArgumentTypeError, LoopweaveError
from loopweave.ir.expr import Param, evaluate, to_str
from loopweave.ir.kernel import KernelIR, ScalarArg, Tensor
from loopweave.ir.types import BF16, DTYPES, DType

#: The torch dtype (its name in the torch module) of each DSL type.
_TORCH_DTYPES = {"f16": "float16", "bf16": "bfloat16", "f32": "float32", "f64": "float64",
                 "i8": "int8", "u8": "uint8", "i16": "int16", "i32": "int32", "i64": "int64",
                 "f8e4m3": "float8_e4m3fn", "f8e5m2": "float8_e5m2", "e8m0": "float8_e8m0fnu",
                 "f4e2m1": "uint8"}  # torch's float4 packs two a byte: f4e2m1 codes as uint8
#: torch's 8-bit floats and the DSL types whose ml_dtypes arrays they view.
_TORCH_FLOAT8 = {"float8_e4m3fn": "f8e4m3", "float8_e5m2": "f8e5m2", "float8_e8m0fnu": "e8m0"}
#: torch's packed 4-bit floats (two codes a byte, low nibble first, as OCP MX): numpy has no
#: such dtype, so a kernel reads them as their bytes where it declares `u8` (MXFP4 weights).
_TORCH_PACKED = {"float4_e2m1fn_x2": "u8"}


class TorchMissingError(LoopweaveError, ImportError):
    """A torch feature of loopweave was used, but torch is not installed."""


def torch_module():
    """The torch module, imported on first use; `TorchMissingError` if it is not installed."""
    try:
        import torch  # optional: only the torch features need it
    except ImportError:
        raise TorchMissingError("this needs torch, which is not installed (pip install "
                                "torch)") from None
    return torch


def is_tensor(value) -> bool:
    """True for a torch tensor. Never imports torch: without it loaded, nothing is a tensor."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def torch_dtype(dtype: DType):
    """The torch dtype of DSL type `dtype`."""
    return getattr(torch_module(), _TORCH_DTYPES[dtype.name])


def tensor_to_numpy(tensor) -> np.ndarray:
    """A numpy view of a CPU tensor (no copy; the tensor's strides kept). bf16 becomes
    `BF16.numpy`: ml_dtypes.bfloat16, or uint16 bits without ml_dtypes (numpy has no bfloat16,
    and DLPack cannot carry one to numpy); the 8-bit floats their ml_dtypes types; a
    `float4_e2m1fn_x2` tensor its uint8 bytes (shape unchanged: two codes a byte)."""
    torch = torch_module()
    tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy().view(BF16.numpy)
    name = str(tensor.dtype).removeprefix("torch.")
    if name in _TORCH_FLOAT8:  # numpy has no float8: the bytes, viewed as ml_dtypes' type
        return tensor.view(torch.uint8).numpy().view(DTYPES[_TORCH_FLOAT8[name]].numpy)
    if name in _TORCH_PACKED:  # packed float4 pairs: the bytes themselves, same shape
        return tensor.view(torch.uint8).numpy()
    return tensor.numpy()


def packed_pairs(value) -> str | None:
    """The torch dtype name of a tensor that packs two codes a byte (`float4_e2m1fn_x2`),
    else None."""
    if not is_tensor(value):
        return None
    name = str(value.dtype).removeprefix("torch.")
    return name if name in _TORCH_PACKED else None


def numpy_to_tensor(array: np.ndarray, dtype: DType):
    """A torch view of a numpy array holding DSL type `dtype` (no copy)."""
    torch = torch_module()
    if dtype.name == "bf16":  # ml_dtypes.bfloat16 or uint16 bits: torch sees int16, then bf16
        return torch.from_numpy(array.view(np.int16)).view(torch.bfloat16)
    if dtype.is_storage_only and dtype.bits == 8:  # the 8-bit floats: the bytes, retyped
        return torch.from_numpy(array.view(np.uint8)).view(torch_dtype(dtype))
    return torch.from_numpy(array)


# -- the custom op ---------------------------------------------------------------------------------

def schema(kernel_ir: KernelIR) -> str:
    """The torch operator schema of a kernel: tensors as `Tensor` (`Tensor(a!)` for inout ones,
    which the op updates in place), scalars as `int` or `float`, the outputs as the result."""
    params, alias_sets = [], iter("abcdefghijklmnopqrstuvwxyz")
    for arg in kernel_ir.args:
        if isinstance(arg, ScalarArg):
            params.append(f"{'int' if arg.dtype.is_int else 'float'} {arg.name}")
        elif arg.role == "inout":  # each written tensor its own alias set
            params.append(f"Tensor({next(alias_sets)}!) {arg.name}")
        else:
            params.append(f"Tensor {arg.name}")
    outputs = ["Tensor"] * len(kernel_ir.outputs)
    result = outputs[0] if len(outputs) == 1 else f"({', '.join(outputs)})"
    return f"({', '.join(params)}) -> {result}"


def _mutated(kernel_ir: KernelIR) -> tuple[str, ...]:
    return tuple(a.name for a in kernel_ir.args if isinstance(a, Tensor) and a.role == "inout")


def fake_outputs(kernel_ir: KernelIR, args: tuple):
    """Empty tensors of the shapes and dtypes a call with `args` returns (on the device of the
    first tensor argument): the op's fake implementation, run while torch traces a graph."""
    torch = torch_module()
    env: dict[str, int] = {}
    device = None
    for spec, arg in zip(kernel_ir.args, args, strict=True):
        if isinstance(spec, ScalarArg):
            if spec.dtype.is_int:
                env[spec.name] = arg
            continue
        _check_fake_argument(kernel_ir.name, spec, arg)
        device = arg.device if device is None else device
        for d, dim in enumerate(spec.shape):
            if isinstance(dim, Param):
                env.setdefault(dim.name, arg.shape[d])
    outputs = tuple(torch.empty(tuple(evaluate(d, env) for d in t.shape),
                                dtype=torch_dtype(t.dtype), device=device)
                    for t in kernel_ir.outputs)
    if not outputs:
        return None
    return outputs[0] if len(outputs) == 1 else outputs


def _check_fake_argument(kernel_name: str, spec: Tensor, tensor) -> None:
    """A wrong dtype or rank found while tracing, named as a call would name it."""
    packed = _TORCH_PACKED.get(str(tensor.dtype).removeprefix("torch."))
    if tensor.dtype != torch_dtype(spec.dtype) and packed != spec.dtype.name:
        raise ArgumentTypeError(f"{kernel_name}: argument '{spec.name}' must have dtype "
                                f"{torch_dtype(spec.dtype)} ({spec.dtype}), not {tensor.dtype}")
    if tensor.dim() != len(spec.shape):
        raise ArgumentTypeError(f"{kernel_name}: argument '{spec.name}' must have "
                                f"{len(spec.shape)} dimension(s) "
                                f"[{', '.join(map(to_str, spec.shape))}], not {tensor.dim()}")


def register(kernel, name: str | None = None):
    """Register compiled `kernel` (a `loopweave.Kernel`) as the torch custom op `name`
    ("namespace::op"; default "loopweave::<kernel name>") and return it (a torch
    `CustomOpDef`: call it like the kernel; `torch.ops.<namespace>.<op>` is the same op).

    The op runs the kernel on the tensors (CPU tensors without copies), updates `inout`
    tensors in place, and has a fake implementation from the kernel IR so that `torch.compile`
    and `torch.export` trace it without running it. Registering the same kernel under the
    same name again returns the op registered first.
    """
    torch = torch_module()
    name = name if name is not None else f"loopweave::{kernel.name}"
    if not isinstance(name, str) or name.count("::") != 1 or not all(name.split("::")):
        raise ArgumentTypeError(f"a torch op name is 'namespace::name', not {name!r}")
    ops = kernel.__dict__.setdefault("_torch_ops", {})
    if name not in ops:
        kernel_ir = kernel.ir

        def run(*args):
            return kernel(*args)

        op = torch.library.custom_op(name, run, mutates_args=_mutated(kernel_ir),
                                     schema=schema(kernel_ir))
        op.register_fake(lambda *args: fake_outputs(kernel_ir, args))
        ops[name] = op
    return ops[name]
