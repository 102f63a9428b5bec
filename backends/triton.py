"""Triton backend: each kernel becomes @triton.jit functions plus a Python launcher.

    make_target("triton", None, None, options)   # block=, num_warps=, num_stages=, ...
    render(kernel_ir, loops, target) -> str        # the module: kernels and `run(...)`
    load(kernel_ir, source, target) -> TritonInvoker

The lowering works from the polyhedral IR (see triton_plan.py for what runs where, and
triton_emit.py for the code). The module is written to the kernel cache (Triton needs a real
source file to jit) and imported from there. Without a GPU, or with TRITON_INTERPRET=1, the
kernels run in Triton's interpreter on the CPU. Calls accept numpy arrays or torch tensors and
return the same kind.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import itertools
import os
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from loopweave.backends.triton_expr import py_name
from loopweave.backends.triton_lowp import TYPES as LOWP_TYPES
from loopweave.backends.triton_module import ModuleWriter
from loopweave.backends.triton_plan import plan
from loopweave.backends.triton_scheduled import render_module
from loopweave.errors import ArgumentValueError, SequentialLoopWarning, TargetError
from loopweave.ir import expr as ir
from loopweave.ir.kernel import KernelIR, ScalarArg
from loopweave.ir.launches import has_gpu_binding, lower_launches
from loopweave.ir.loops import Node, map_stores
from loopweave.ir.types import BF16
from loopweave.passes.gpu_default import default_gpu_schedule
from loopweave.passes.schedule import Schedule
from loopweave.targets import GPU_FACTS, Target, check_choice, check_option_names
from loopweave.toolchain import cache_dir, content_key, write_once

OPTIONS = ("block", "num_warps", "num_stages", "input_precision", "interpret")
PRECISIONS = ("ieee", "tf32", "tf32x3")
MAX_BLOCK = 4096


def _power_of_two(n) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n >= 1 and n & (n - 1) == 0


def check_options(options: dict) -> dict:
    """Validated Triton options; raises TargetError naming the bad one."""
    check_option_names("triton", options, OPTIONS)
    out = dict(options)
    block = out.get("block", {})
    if not isinstance(block, dict) or not all(isinstance(k, str) for k in block):
        raise TargetError(f"block must be a dict of loop name -> size, e.g. "
                          f"{{'i': 64, 'j': 64, 'k': 32}}, not {block!r}")
    for name, size in block.items():
        if not _power_of_two(size) or size > MAX_BLOCK:
            raise TargetError(f"block size for {name!r} must be a power of two from 1 to "
                              f"{MAX_BLOCK} (tl.arange needs one), not {size!r}")
    out["block"] = dict(block)
    warps = out.get("num_warps")  # None: each launch's own (Triton's 4; 8 for big tiles)
    if warps is not None and (not _power_of_two(warps) or warps > 32):
        raise TargetError(f"num_warps must be 1, 2, 4, 8, 16 or 32, not {warps!r}")
    stages = out.get("num_stages", 2)
    if not isinstance(stages, int) or isinstance(stages, bool) or not 1 <= stages <= 8:
        raise TargetError(f"num_stages must be an integer from 1 to 8, not {stages!r}")
    precision = out.get("input_precision", "ieee")
    check_choice("triton", "input_precision", precision, PRECISIONS)
    check_choice("triton", "interpret", out.get("interpret"), (True, False, None))
    out.update(num_warps=warps, num_stages=stages, input_precision=precision)
    return out


def make_target(name: str, cc: str | None, cflags: tuple[str, ...] | None,
                options: dict) -> Target:
    """Triton: kernels jitted by Triton (interpreted on the CPU when there is no GPU)."""
    if cc is not None or cflags is not None:
        raise TargetError("target 'triton' does not use a C compiler (cc/cflags)")
    checked = check_options(options)
    for package in ("triton", "torch"):
        if importlib.util.find_spec(package) is None:
            raise TargetError(f"target 'triton' needs the Python package {package!r}, which "
                              "is not installed")
    return Target(name, "triton", "", (), "Triton kernels (GPU, or Triton's interpreter)",
                  checked)


def default_schedule(kernel: KernelIR, target: Target) -> Schedule | None:
    """The schedule `compile()` uses without one: `passes/gpu_default`'s steps where they
    reproduce the planner's plan, else None (the planner, `triton_plan`, decides). The `block`
    option's sizes (by loop name) become the contraction's dot tiles; block names that are not
    loops of the kernel are the planner's."""
    block = target.options.get("block", {})
    if set(block) - {v for s in kernel.statements for v in s.iterators}:
        return None  # the planner's own block names (`c_r_s`), or a mistake it names
    return default_gpu_schedule(kernel, GPU_FACTS["triton"], block)


def render(kernel: KernelIR, loops: Node, target: Target) -> str:
    """The Triton module for `kernel`; warns about loops that stay sequential. A schedule that
    binds loops to GPU axes is rendered as written (`triton_scheduled`); otherwise the planner
    (`triton_plan`) chooses the launches."""
    kernel, loops = _combined_in_f32(kernel, loops)
    # The planner renders from the statements and knows no range read from tensors
    # (ir/data_ranges.py): such kernels take the loop nest, whose loops read those bounds.
    if has_gpu_binding(loops) or any(s.data_ranges for s in kernel.statements):
        scheduled = lower_launches(loops, kernel.name, shared_limit=None,
                                   thread_limit=GPU_FACTS["triton"].block_threads)
        for message in scheduled.warnings:
            warnings.warn(message, SequentialLoopWarning, stacklevel=4)
        return render_module(kernel, scheduled, target.options)
    the_plan = plan(kernel)
    for message in the_plan.warnings:
        warnings.warn(message, SequentialLoopWarning, stacklevel=4)
    return ModuleWriter(the_plan, target.options).write()


def _combined_in_f32(kernel: KernelIR, loops: Node) -> tuple[KernelIR, Node]:
    """`kernel` and `loops` with the value of each reduction into a narrow float type (f16,
    bf16, the 8-bit floats) without its cast to that type (the checker's), so that the
    reduction combines in f32 and rounds once, when stored, as on the C targets
    (`c_family.store`); a cast the kernel writes inside an expression rounds
    (`triton_expr`)."""

    def peeled(value: ir.Expr) -> ir.Expr:
        if isinstance(value, ir.Cast) and value.dtype.is_storage_only:
            return value.operand
        return value

    statements = tuple(s if s.op == "=" else replace(s, rhs=peeled(s.rhs))
                       for s in kernel.statements)
    loops = map_stores(loops, lambda st: replace(st, value=peeled(st.value)) if st.reduce
                       else st)
    return replace(kernel, statements=statements), loops


def tuning_space(kernel: KernelIR) -> dict:
    """The options an autotuner may sweep: block sizes by loop name, warps, stages."""
    axes = ModuleWriter(plan(kernel), check_options({})).tunable_axes()
    sizes = [16, 32, 64, 128]
    return {"block": {name: [s for s in sizes if s >= low] for name, low in axes.items()},
            "num_warps": [1, 2, 4, 8], "num_stages": [1, 2, 3, 4]}


# -- loading -------------------------------------------------------------------------------------

def interpreting(target: Target) -> bool:
    """True when kernels run in Triton's interpreter (asked for, or no GPU)."""
    choice = target.options.get("interpret")
    if choice is not None:
        return choice
    if os.environ.get("TRITON_INTERPRET") == "1":
        return True
    import torch

    return not torch.cuda.is_available()


def interpreter_problem() -> str | None:
    """Why Triton's interpreter cannot run loopweave's kernels here, or None. Asks the
    installed versions without importing Triton (importing decides its mode)."""
    try:
        triton_version = _release(importlib.metadata.version("triton"))
    except importlib.metadata.PackageNotFoundError:
        return None
    # Before 3.7 the interpreter turns a loop bound (a one-element array) into a Python int
    # with int(array), which numpy refuses from 2.4 (a TypeError in every grid-stride loop).
    if triton_version < (3, 7) and _release(np.__version__) >= (2, 4):
        return (f"Triton {importlib.metadata.version('triton')}'s interpreter cannot run with "
                f"numpy {np.__version__}: it converts loop bounds with int() of a one-element "
                f"array, an error since numpy 2.4 (fixed in Triton 3.7); install triton>=3.7 "
                f"or numpy<2.4, or run on a GPU")
    return None


def _release(version: str) -> tuple[int, ...]:
    """(major, minor) of a version string such as '3.6.0' or '2.4.0rc1'."""
    parts = []
    for piece in version.split(".")[:2]:
        digits = "".join(itertools.takewhile(str.isdigit, piece))
        parts.append(int(digits or 0))
    return tuple(parts)


def _triton_mode() -> bool | None:
    """Whether the imported Triton interprets (None: not imported yet). Triton decides when
    `triton.language` is first imported, from TRITON_INTERPRET."""
    if "triton.language" not in sys.modules:
        return None
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(sys.modules["triton.language"].sum, InterpretedFunction)


def import_module(source: str, interpret: bool):
    """Write `source` into the kernel cache and import it (Triton jits from real files)."""
    mode = _triton_mode()
    if mode is None and interpret:
        os.environ["TRITON_INTERPRET"] = "1"  # must hold when triton.language is imported
    elif mode is not None and mode != interpret:
        raise TargetError("Triton was imported " + ("with" if mode else "without") +
                          " TRITON_INTERPRET=1, so this process cannot run Triton kernels " +
                          ("on a GPU" if mode else "in the interpreter") + "; set "
                          "TRITON_INTERPRET before importing triton")
    key = content_key(source)
    name = f"loopweave_triton_{key}"
    if name in sys.modules:
        return sys.modules[name]
    path = write_once(source_path(source), lambda: source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


def load(kernel: KernelIR, source: str, target: Target) -> TritonInvoker:
    """Import the generated module; the invoker runs its `run(...)`."""
    interpret = interpreting(target)
    problem = interpret and interpreter_problem()
    if problem:
        raise TargetError(problem)
    return TritonInvoker(kernel, import_module(source, interpret), interpret)


def torch_dtype(dtype):
    import torch

    return {"f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32,
            "f64": torch.float64, "i8": torch.int8, "u8": torch.uint8, "i16": torch.int16,
            "i32": torch.int32, "i64": torch.int64, **dict.fromkeys(LOWP_TYPES, torch.uint8)
            }[dtype.name]


def to_torch(array: np.ndarray, dtype):
    """A torch view of a numpy array (no copy)."""
    import torch

    if dtype.name == "bf16":
        return torch.from_numpy(array.view(np.int16)).view(torch.bfloat16)
    if dtype.name in LOWP_TYPES:  # the 8-bit floats reach the kernel as their bits
        return torch.from_numpy(array.view(np.uint8))
    return torch.from_numpy(array)


def to_numpy(tensor, dtype_name: str | None = None) -> np.ndarray:
    """A numpy view of a CPU tensor (no copy)."""
    import torch

    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy().view(BF16.numpy)
    return tensor.numpy()


class TritonInvoker:
    """Runs the generated launcher on torch views of the runtime's arrays."""

    def __init__(self, kernel: KernelIR, module, interpret: bool):
        self.kernel = kernel
        self.module = module
        self.interpret = interpret
        self.device_arrays: dict[int, object] = {}  # stand-in id -> CUDA tensor, in a call

    def __call__(self, arrays: dict, scalars: dict, sizes: dict) -> None:
        import torch

        tensors, copies = {}, []
        device = None if self.interpret else "cuda"
        for name, array in arrays.items():
            dtype = self.kernel.tensors[name].dtype
            if id(array) in self.device_arrays:
                tensors[name] = self.device_arrays[id(array)]
            elif device is not None and self.device_arrays:  # an output of a CUDA call
                tensors[name] = torch.zeros(array.shape, dtype=torch_dtype(dtype), device=device)
                self.device_arrays[id(array)] = tensors[name]
            elif device is not None:  # numpy arrays on a GPU machine: copy there and back
                tensors[name] = to_torch(array, dtype).to(device)
                copies.append((array, tensors[name]))
            else:
                tensors[name] = to_torch(array, dtype)
        values = {}
        for arg in self.kernel.args:
            if isinstance(arg, ScalarArg):
                values[arg.name] = self.scalar(scalars[arg.name], arg.dtype, device)
        if self.interpret:  # numpy semantics of masked-off lanes (0/0, overflow) are not errors
            with np.errstate(all="ignore"):
                self.module.run(tensors, values, sizes)
        else:
            self.module.run(tensors, values, sizes)
        for array, tensor in copies:
            host = to_numpy(tensor.cpu())
            array.view(host.dtype)[...] = host  # the 8-bit floats come back as their bits

    def scalar(self, value, dtype, device):
        import torch

        if dtype.is_storage_only:  # the runtime passes f16/bf16 (and f8) as bits
            return float(np.array(value, dtype=dtype.bits_numpy).view(dtype.numpy)
                         .astype(np.float32))
        if dtype.name == "f64":  # a Python float would reach the kernel as fp32
            return torch.tensor([value], dtype=torch.float64, device=device or "cpu")
        return value

    def convert_call(self, call, args: tuple):
        """Torch tensors in, torch tensors out (CPU: views; CUDA: run on the device)."""
        import torch

        if not any(isinstance(a, torch.Tensor) for a in args):
            return call(args)
        devices = {a.device for a in args if isinstance(a, torch.Tensor)}
        if len(devices) > 1:
            raise ArgumentValueError(f"{self.kernel.name}: tensors on several devices "
                                     f"({', '.join(sorted(map(str, devices)))})")
        device = devices.pop()
        if device.type == "cpu":
            result = call(tuple(to_numpy(a.detach()) if isinstance(a, torch.Tensor) else a
                                for a in args))
            return _map_result(result, lambda a: _from_numpy(a))
        self._check_device_overlap(args)
        stand_ins = []
        self.device_arrays = {}
        for a in args:
            if isinstance(a, torch.Tensor):
                if not a.is_contiguous():
                    raise ArgumentValueError("a CUDA tensor argument is not contiguous; pass "
                                             ".contiguous()")
                host = np.empty(tuple(a.shape), dtype=to_numpy(torch.empty(0, dtype=a.dtype))
                                .dtype)  # never touched: only checked
                self.device_arrays[id(host)] = a.detach()
                stand_ins.append(host)
            else:
                stand_ins.append(a)
        try:
            result = call(tuple(stand_ins))
            return _map_result(result, lambda a: self.device_arrays[id(a)])
        finally:
            self.device_arrays = {}

    def _check_device_overlap(self, args) -> None:
        import torch

        spans = {spec.name: (a.data_ptr(), a.data_ptr() + a.numel() * a.element_size())
                 for spec, a in zip(self.kernel.args, args, strict=False)
                 if isinstance(a, torch.Tensor)}
        for spec in self.kernel.args:
            if getattr(spec, "role", None) != "inout" or spec.name not in spans:
                continue
            w0, w1 = spans[spec.name]
            for name, (a0, a1) in spans.items():
                if name != spec.name and a0 < w1 and w0 < a1:
                    raise ArgumentValueError(f"argument '{name}' overlaps inout argument "
                                             f"'{spec.name}' in memory; pass a copy")


def _from_numpy(array: np.ndarray):
    import torch

    if array.dtype == BF16.numpy and array.dtype != np.uint16:
        return torch.from_numpy(array.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(array)


def _map_result(result, fn):
    if result is None:
        return None
    if isinstance(result, tuple):
        return tuple(fn(r) for r in result)
    return fn(result)


def aot_compile(kernel: KernelIR, source: str, arch: int = 90,
                block: int = 32) -> dict[str, str]:
    """PTX of each @triton.jit function of `source` (rendered from `kernel`), built ahead of
    time for sm_<arch> without a GPU, every block size `block`: checks the code is valid for
    one. Needs a process whose Triton does not interpret (see `_triton_mode`)."""
    return {name: compiled.asm["ptx"]
            for name, compiled in aot_kernels(kernel, source, arch, block).items()}


def aot_kernels(kernel: KernelIR, source: str, arch: int = 90, block: int = 32) -> dict:
    """Triton's compiled kernel (PTX, cubin, metadata) of each @triton.jit function of
    `source`, as `aot_compile` builds them."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    module = import_module(source, interpret=False)
    pointers = {f"{py_name(t.name)}_ptr": t.dtype for t in kernel.tensors.values()}
    scalars = {py_name(a.name): a.dtype for a in kernel.args if isinstance(a, ScalarArg)}
    pointers |= {f"{n}_ptr": d for n, d in scalars.items()}
    out = {}
    for name, fn in vars(module).items():
        if not isinstance(fn, triton.JITFunction) or name.startswith("_lw"):
            continue
        signature, constexprs = {}, {}
        for arg in fn.arg_names:
            if arg.startswith("BLOCK_"):
                signature[arg], constexprs[arg] = "constexpr", block
            elif arg in pointers:
                signature[arg] = "*" + _TRITON_TYPES[pointers[arg].name]
            elif arg in scalars and scalars[arg].is_float:
                signature[arg] = "fp32"
            else:
                signature[arg] = "i32"
        out[name] = triton.compile(ASTSource(fn, signature, constexprs),
                                   target=GPUTarget("cuda", arch, 32))
    return out


_TRITON_TYPES = {"f16": "fp16", "bf16": "bf16", "f32": "fp32", "f64": "fp64", "i8": "i8",
                 "u8": "u8", "i16": "i16", "i32": "i32", "i64": "i64",
                 **dict.fromkeys(LOWP_TYPES, "u8")}


def source_path(source: str) -> Path:
    """Where the module of `source` lives in the kernel cache."""
    return cache_dir("triton") / f"lw_{content_key(source)}.py"
