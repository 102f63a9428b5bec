"""Standalone C: a kernel as a `.h`/`.c` pair to drop into any C project (firmware included).

    loopweave.emit_c(src, sizes={"M": 64, "N": 64, "K": 32}, target="cortex-m4", out_dir="build")
    loopweave emit matmul.lw --target cortex-m4 --size M=64 --size N=64 --size K=32 -o build/
                   [--schedule JSON | --db tuning.sqlite]

The `.c` holds the target backend's rendering of the kernel (its `render()`, unchanged but for
a `static` in front of it) under the name `lw_<kernel>_impl`, and the public function
`lw_<kernel>` around it, which needs nothing but the C library headers. The rendering comes from
the pipeline `compile()` runs, with the same schedule: the given one, else the tuning record for
the sizes, else the target's default.

* sizes given: every size is a constant (`LW_<kernel>_<size>` in the header), temporaries are
  static arrays (their total is `LW_<kernel>_STATIC_BYTES`), the prototype takes tensors and
  scalars only; the function is then not reentrant.
* no sizes: the sizes are parameters (last, as in the host ABI) and temporaries live in one
  caller-provided scratch buffer of `lw_<kernel>_scratch_bytes(sizes...)` bytes.

Outputs are zero-filled before the kernel runs, so elements no statement writes are 0, as
`Kernel.__call__` returns them. Both files start with `MARKER`; an existing file without it is
never overwritten unless `overwrite=True`. Files are written to a temporary name and renamed.
A backend may define `emit_notes(target) -> list[str]` (build instructions for the header).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from loopweave.autotune.chooser import compile_lookup, cost_model_settings
from loopweave.backends.c import CBackend, c_params, function_name
from loopweave.backends.c_family import CFamilyRenderer, c_name
from loopweave.errors import ArgumentTypeError, ArgumentValueError, LoopweaveError
from loopweave.ir import expr as ir
from loopweave.ir.kernel import KernelIR, Tensor
from loopweave.ir.specialize import check_assumptions, fixed_context
from loopweave.passes.schedule import Schedule
from loopweave.pipeline import Pipeline, backend_module
from loopweave.targets import Target
from loopweave.toolchain import write_atomically

MARKER = "/* loopweave-generated file: `loopweave emit` may overwrite it. */"
_SCRATCH_ALIGN = 64
_MAX_STATIC_BYTES = 2**31 - 1


class OutputExistsError(LoopweaveError, FileExistsError):
    """An output file exists and was not written by loopweave (pass overwrite=True)."""


@dataclass(frozen=True)
class EmittedC:
    """What `emit_c` wrote."""

    header: Path
    source: Path
    function: str  # the public C function
    prototype: str
    static_bytes: int | None  # temporaries as static arrays (sizes given), else None
    scratch_function: str | None  # caller-provided scratch (generic sizes), else None
    arguments: tuple[str, ...]  # the DSL names of the parameters in order ("lw_scratch")


def emit_c(source: str, sizes: Mapping[str, int] | None = None, target: str = "cpu",
           out_dir: str | os.PathLike = ".", *, kernel: str | None = None,
           schedule: Schedule | Callable[[KernelIR], KernelIR] | None = None,
           overwrite: bool = False, cc: str | None = None,
           cflags: str | Sequence[str] | None = None,
           tuning_db: str | os.PathLike | bool | None = None, cost_model=None,
           **options) -> EmittedC:
    """Write `<kernel>.h` and `<kernel>.c` for `target` into `out_dir`.

    sizes:    {"M": 64, ...} for every size of the kernel (fully static code), or None (generic
              code, sizes as parameters, temporaries in caller-provided scratch).
    target:   a target name as for `compile()` ("cpu" is portable C99).
    kernel, schedule, cc, cflags, options: as for `compile()`.
    tuning_db, cost_model: as for `compile()`: without a schedule, sizes given choose the best
              record of the tuning database for them, else the cost model's choice, else the
              target's default schedule (which is all generic code gets). The kernel function
              is the one `compile()` runs for them.
    overwrite: replace existing files that loopweave did not write.
    """
    pipeline = Pipeline(source, target, kernel=kernel, schedule=schedule, cc=cc, cflags=cflags,
                        options=options)
    kir = pipeline.unscheduled
    out = Path(out_dir)
    paths = (out / f"{kir.name}.h", out / f"{kir.name}.c")
    for p in paths:
        _check_writable(p, overwrite)
    values = None if sizes is None else _checked_sizes(kir, sizes)
    model = cost_model_settings(cost_model)
    if schedule is None and values is not None:  # generic code has no sizes to look up
        pipeline.lookup = compile_lookup(tuning_db, model)
    result = pipeline.stages(values, specialize=values is not None, name=f"{kir.name}_impl")
    scheduled, impl, tgt = result.ir, result.rendered, result.target
    api = _Api(scheduled, impl, impl, values, result.source)
    module = backend_module(tgt)
    notes = module.emit_notes(tgt) if hasattr(module, "emit_notes") else _default_notes(tgt)
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(paths[0], api.header(tgt, notes), durable=True)
    write_atomically(paths[1], api.source(paths[0].name), durable=True)
    return EmittedC(paths[0], paths[1], function_name(scheduled), api.prototype(),
                    api.static_bytes if values is not None else None,
                    api.scratch_name if api.temps and values is None else None,
                    api.argument_names())


# -- sizes -----------------------------------------------------------------------------------------

def _checked_sizes(kir: KernelIR, sizes) -> dict[str, int]:
    """`sizes` checked against the kernel: every size, integers, within the assumptions."""
    if not isinstance(sizes, Mapping):
        raise ArgumentTypeError(f"sizes must be a dict of size name -> int, not "
                                f"{type(sizes).__name__}")
    unknown = sorted(set(sizes) - set(kir.sizes))
    if unknown:
        raise ArgumentValueError(f"{kir.name} has no size {unknown[0]!r}; its sizes are "
                                 f"{', '.join(kir.sizes) or 'none'}")
    missing = [s for s in kir.sizes if s not in sizes]
    if missing:
        raise ArgumentValueError(f"sizes lacks {', '.join(missing)}: give every size of "
                                 f"{kir.name} ({', '.join(kir.sizes)}), or sizes=None for "
                                 "generic code")
    values = {}
    for name in kir.sizes:
        v = sizes[name]
        if isinstance(v, bool) or not isinstance(v, int):
            raise ArgumentTypeError(f"size {name} must be an int, not {v!r}")
        if not 0 <= v < 2**62:
            raise ArgumentValueError(f"size {name} = {v} is out of range")
        values[name] = v
    check_assumptions(kir, values)
    if fixed_context(kir, values).is_empty():
        raise ArgumentValueError(f"{kir.name}: sizes {_show(values)} are outside what the kernel "
                                 f"allows: {kir.context}")
    for t in kir.tensors.values():
        dims = [ir.evaluate(d, values) for d in t.shape]
        if any(n < 0 for n in dims):
            raise ArgumentValueError(f"{t.name} would have the negative shape {tuple(dims)} for "
                                     f"sizes {_show(values)}")
        if math.prod(dims) * t.dtype.bits // 8 > _MAX_STATIC_BYTES:
            raise ArgumentValueError(f"{t.name} would take more than 2 GiB for sizes "
                                     f"{_show(values)}")
    return values


def _show(values: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


# -- the public function ---------------------------------------------------------------------------

class _Api:
    """The header and the wrapper around the backend's rendering."""

    def __init__(self, kir: KernelIR, spec: KernelIR, impl: KernelIR,
                 values: dict[str, int] | None, body: str):
        self.kir, self.spec, self.values, self.body = kir, spec, values, body
        self.fname = function_name(kir)
        self.impl_name = function_name(impl)
        self.params = c_params(impl)
        self.temps = {t.name: t for t in spec.temporaries}
        self.scratch_name = f"{self.fname}_scratch_bytes"
        self.param_texts = self._impl_param_texts()
        self.renderer = CFamilyRenderer({t.name: t.shape for t in spec.tensors.values()})
        self.static_bytes = sum(self._bytes_const(t) for t in self.temps.values())

    def _impl_param_texts(self) -> list[str]:
        m = re.search(rf"^void {re.escape(self.impl_name)}\((.*)\) {{$", self.body, re.MULTILINE)
        if m is None:
            raise LoopweaveError(f"the backend rendered no function {self.impl_name}")
        texts = [] if m.group(1) == "void" else m.group(1).split(", ")
        if len(texts) != len(self.params):
            raise LoopweaveError(f"{self.impl_name} has {len(texts)} parameters, expected "
                                 f"{len(self.params)}")
        return texts

    def _bytes_const(self, t: Tensor) -> int:
        if self.values is None:
            return 0
        return max(1, math.prod(ir.evaluate(d, self.values) for d in t.shape)) * \
            max(1, t.dtype.bits // 8)

    def public_params(self, header: bool) -> list[str]:
        texts = [text for p, text in zip(self.params, self.param_texts, strict=True)
                 if p.name not in self.temps]
        if self.temps and self.values is None:
            sizes = len(self.kir.sizes)
            texts.insert(len(texts) - sizes, "void *restrict lw_scratch")
        if header:  # restrict qualifies the parameter only: the declarations stay compatible
            texts = [t.replace("*restrict ", "*") for t in texts]
        return texts

    def argument_names(self) -> tuple[str, ...]:
        names = [p.name for p in self.params if p.name not in self.temps]
        if self.temps and self.values is None:
            names.insert(len(names) - len(self.kir.sizes), "lw_scratch")
        return tuple(names)

    def prototype(self, header: bool = True) -> str:
        return f"void {self.fname}({', '.join(self.public_params(header)) or 'void'})"

    def size_params(self) -> list[str]:
        return [text for p, text in zip(self.params, self.param_texts, strict=True)
                if p.kind == "size"]

    def describe(self) -> list[str]:
        lines = []
        for p in self.params:
            if p.name in self.temps:
                continue
            if p.kind == "size":
                lines.append(f"  {c_name(p.name)}: size")
                continue
            spec = self.kir.tensors.get(p.name)
            if spec is None:
                lines.append(f"  {c_name(p.name)}: scalar {p.dtype}")
                continue
            role = "input" if spec.role == "in" else spec.role
            dims = ", ".join(ir.to_str(d) for d in spec.shape)
            extra = f" (stored as {spec.dtype.c_type} bits)" if spec.dtype.is_storage_only else ""
            # where the schedule aligns it (`align`), the caller's array should start on a line
            lined = ", fastest from a 64-byte boundary" if p.name in self.kir.aligned else ""
            lines.append(f"  {c_name(p.name)}: {role} {spec.dtype}[{dims}]{extra}, row-major, "
                         f"contiguous{lined}")
        if self.temps:
            if self.values is None:
                lines.append(f"  lw_scratch: {self.scratch_name}(sizes) bytes of scratch for "
                             f"the temporaries ({', '.join(self.temps)}), 64-byte aligned")
            else:
                lines.append(f"  temporaries {', '.join(self.temps)}: static arrays, "
                             f"{self.static_bytes} bytes (not reentrant)")
        return lines

    def header(self, target: Target, notes: list[str]) -> str:
        k = self.kir
        guard = f"LOOPWEAVE_{k.name}_H"
        conds = [f"{s} >= 0" for s in k.sizes] + [ir.to_str(a) for a in k.assumptions]
        doc = [f"{self.prototype()};", "", "Arguments, in order:", *self.describe()]
        if self.values is None:
            doc += ["", f"Sizes must satisfy: {', '.join(conds) or 'nothing'}."]
        else:
            doc += ["", f"Specialized to {_show(self.values)}."]
        doc += ["", *notes]
        lines = [MARKER, f"/* Kernel '{k.name}' for target '{target.name}', generated by "
                         "loopweave.", " *"]
        lines += [f" * {d}".rstrip() for d in doc]
        lines += [" */", f"#ifndef {guard}", f"#define {guard}", "",
                  "#include <stddef.h>", "#include <stdint.h>", "",
                  "#ifdef __cplusplus", 'extern "C" {', "#endif", ""]
        if self.values is not None:
            lines += [f"#define LW_{k.name}_{s} {v}" for s, v in self.values.items()]
            lines += [f"#define LW_{k.name}_STATIC_BYTES {self.static_bytes}", ""]
        lines.append(f"{self.prototype()};")
        if self.temps and self.values is None:
            lines.append(f"size_t {self.scratch_name}({', '.join(self.size_params()) or 'void'})"
                         ";")
        lines += ["", "#ifdef __cplusplus", "}", "#endif", "", f"#endif /* {guard} */", ""]
        return "\n".join(lines)

    def source(self, header_name: str) -> str:
        body = _guard_pragmas(self.body)
        body = re.sub(rf"^void {re.escape(self.impl_name)}\(", f"static void {self.impl_name}(",
                      body, count=1, flags=re.MULTILINE)
        lines = [MARKER, f"/* Kernel '{self.kir.name}', generated by loopweave: see "
                         f"{header_name}. */", f'#include "{header_name}"', "",
                 *_vector_abi_note(body), body.rstrip(), "", "#include <string.h>", ""]
        lines += self.temporaries()
        lines += [f"{self.prototype(header=False)} {{"]
        if self.temps and self.values is None:
            lines.append("  unsigned char *lw_p = (unsigned char *)lw_scratch;")
            for t in self.temps.values():
                lines += [f"  {t.dtype.c_type} *lw_t_{t.name} = ({t.dtype.c_type} *)(void *)lw_p;",
                          f"  lw_p += lw_round_up({self.nbytes(t)});"]
        args = []
        for p in self.params:
            args.append(f"lw_t_{p.name}" if p.name in self.temps else c_name(p.name))
        for t in self.kir.outputs:
            lines.append(f"  memset({c_name(t.name)}, 0, {self.nbytes(t)});")
        lines += [f"  {self.impl_name}({', '.join(args)});", "}", ""]
        return "\n".join(lines)

    def nbytes(self, t: Tensor) -> str:
        """C text of the byte size of `t` (at least one element: no zero-size objects)."""
        dims = [self.renderer.expr(d, 13) for d in self.spec.tensors[t.name].shape]
        count = " * ".join(f"(size_t){d}" for d in dims) or "1"
        return f"{count} * sizeof({t.dtype.c_type})"

    def temporaries(self) -> list[str]:
        if not self.temps:
            return []
        if self.values is not None:
            return [f"static {t.dtype.c_type} lw_t_{t.name}"
                    f"[{self._bytes_const(t) // max(1, t.dtype.bits // 8)}];"
                    for t in self.temps.values()] + [""]
        align = _SCRATCH_ALIGN - 1
        sizes = ", ".join(self.size_params()) or "void"
        used = [f"  (void){c_name(s)};" for s in self.kir.sizes]
        lines = [f"static size_t lw_round_up(size_t n) {{ return (n + {align}u) & "
                 f"~(size_t){align}u; }}", "", f"size_t {self.scratch_name}({sizes}) {{",
                 *used, "  size_t lw_n = 0;"]
        lines += [f"  lw_n += lw_round_up({self.nbytes(t)});" for t in self.temps.values()]
        lines += ["  return lw_n;", "}", ""]
        return lines


def _guard_pragmas(text: str) -> str:
    """OpenMP and GCC pragmas only where the compiler knows them (-Wall warns otherwise)."""
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#pragma omp"):
            out += ["#ifdef _OPENMP", line, "#endif"]
        elif stripped.startswith("#pragma GCC"):
            out += ["#if defined(__GNUC__)", line, "#endif"]
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def _vector_abi_note(body: str) -> list[str]:
    """Register tiles use GCC vector types wider than a plain build's registers; their helper
    functions are static, so gcc's note that such a function's ABI changes with -mavx (-Wpsabi)
    concerns no caller: silenced, so the file builds with -Werror for any instruction set."""
    if "__attribute__((vector_size(" not in body:
        return []
    return ["#if defined(__GNUC__) && !defined(__clang__)",
            '#pragma GCC diagnostic ignored "-Wpsabi"', "#endif", ""]


def _default_notes(target: Target) -> list[str]:
    flags = " ".join(target.cflags)
    heap = CBackend.heap_local_bytes >> 10
    return [f"Plain C99 (no runtime; malloc only for a local row or tile over {heap} KiB, "
            f"which a thread's stack would not hold); loopweave builds it with {flags}.",
            "Vector loops use intrinsics only where the build enables their instruction set.",
            "With -fopenmp, loops scheduled parallel run on several threads."]


# -- files -----------------------------------------------------------------------------------------

def _check_writable(path: Path, overwrite: bool) -> None:
    if path.is_dir():
        raise OutputExistsError(f"{path} is a directory")
    if overwrite or not path.exists():
        return
    try:
        with open(path, "rb") as f:
            first = f.readline(len(MARKER) + 2).decode("utf-8", "replace").rstrip("\r\n")
    except OSError as e:
        raise OutputExistsError(f"{path} exists and cannot be read ({e}); pass "
                                "overwrite=True to replace it") from None
    if first != MARKER:
        raise OutputExistsError(f"{path} exists and was not written by loopweave; pass "
                                "overwrite=True (--overwrite) to replace it")


# -- the command line ------------------------------------------------------------------------------

def register(subparsers) -> None:
    """`loopweave emit kernel.lw --target T --size M=64 ... -o DIR`."""
    p = subparsers.add_parser("emit", help="write a kernel as standalone C (.h and .c)")
    p.add_argument("file", help="DSL source file")
    p.add_argument("--kernel", help="which kernel of the file (when it defines several)")
    p.add_argument("--target", default="cpu")
    p.add_argument("--size", action="append", default=[], metavar="NAME=VALUE",
                   help="fix a size (give every size, or none for generic code)")
    p.add_argument("--schedule", help="a schedule as JSON (Schedule.to_json()), or a file of it")
    p.add_argument("--db", help="tuning database whose record for the sizes to use (default: "
                   "$LOOPWEAVE_TUNE_DB or the cache's, as compile())")
    p.add_argument("-o", "--out-dir", default=".")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing files that loopweave did not write")
    p.set_defaults(handler=_emit_command)


def _emit_command(args) -> int:
    sizes = None
    if args.size:
        sizes = {}
        for item in args.size:
            name, sep, value = item.partition("=")
            if not sep or not value.strip().lstrip("-").isdigit():
                raise ArgumentValueError(f"--size takes NAME=INTEGER, not {item!r}")
            sizes[name.strip()] = int(value)
    schedule = None
    if args.schedule:
        text = args.schedule
        if not text.lstrip().startswith("["):
            text = Path(text).read_text(encoding="utf-8")
        try:
            schedule = Schedule.from_json(text)
        except (ValueError, KeyError, TypeError) as e:
            raise ArgumentValueError(f"--schedule is not a schedule in JSON: {e}") from None
    src = Path(args.file).read_text(encoding="utf-8")
    result = emit_c(src, sizes, args.target, args.out_dir, kernel=args.kernel,
                    schedule=schedule, overwrite=args.overwrite, tuning_db=args.db)
    print(f"wrote {result.header} and {result.source}: {result.prototype}")
    if result.static_bytes is not None:
        print(f"static temporaries: {result.static_bytes} bytes")
    elif result.scratch_function:
        print(f"scratch: {result.scratch_function}(sizes) bytes")
    return 0


__all__ = ["MARKER", "EmittedC", "OutputExistsError", "emit_c"]
