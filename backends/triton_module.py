"""Triton lowering, step 3: the Python module: helpers, @triton.jit kernels and `run(...)`.

`run(tensors, scalars, sizes)` is the launcher: host loops (DSL `for` loops that carry a
dependence) in Python, one launch per group with its grid and its block sizes as constexprs.
Block sizes are the role defaults (or `block=`), halved where the blocks of one tensor would
multiply past Triton's limit (`fit_blocks`); blocks that cover a whole loop are known only at
run time, so the launcher fits those itself when they might exceed it. The launcher also
allocates the locals a schedule's storage reduction made (the runtime allocates none).
"""

from __future__ import annotations

import inspect

from loopweave.backends import triton_lowp
from loopweave.backends.triton_emit import KernelWriter
from loopweave.backends.triton_expr import (
    HELPERS,
    extent,
    loads,
    py_name,
    python_expr,
    var_names,
    walk,
)
from loopweave.backends.triton_plan import HostLoop, Launch, Plan
from loopweave.errors import TargetError
from loopweave.ir import expr as ir
from loopweave.ir.kernel import ScalarArg

#: Default block sizes by the role of an axis (a GPU-sized tile; `block=` overrides by name).
DEFAULTS = {"dot": 64, "dot_reduce": 32, "tile2": 32, "reduce2": 8, "tile1": 64,
            "reduce1": 64, "elementwise1": 1024, "elementwise2": 64, "rows": 16, "inner": 128}


class ModuleWriter:
    def __init__(self, plan: Plan, options: dict):
        self.plan = plan
        self.kernel = plan.kernel
        self.options = options
        self.helpers: set[str] = set()
        self.writers: dict[str, KernelWriter] = {}
        self.imports_torch = False  # the launcher allocates locals

    # -- kernels -------------------------------------------------------------------------------

    def function_name(self, launch: Launch, taken: set[str]) -> str:
        written = [s.tensor for s in launch.sections if not s.register]
        base = f"{self.kernel.name}_{'_'.join(dict.fromkeys(written)) or 'state'}"
        name, n = py_name(base), 1
        while name in taken:
            n += 1
            name = f"{py_name(base)}_{n}"
        taken.add(name)
        return name

    def tensors_of(self, launch: Launch) -> list[str]:
        used = set()
        for sec in launch.sections:
            for s in filter(None, (sec.init, sec.stmt)):
                used.add(s.lhs.tensor)
                used |= {x.tensor for x in loads(s.rhs)}
        order = list(self.kernel.tensors)
        return [t for t in order if t in used and t not in launch.registers]

    def scalars_of(self, launch: Launch) -> list[ScalarArg]:
        used = set()
        for sec in launch.sections:
            used |= {x.name for x in walk(sec.stmt.rhs) if isinstance(x, ir.Scalar)}
        return [a for a in self.kernel.args if isinstance(a, ScalarArg) and a.name in used
                and a.name not in self.kernel.params]

    def role_defaults(self, w: KernelWriter, launch: Launch) -> dict[str, int]:
        defaults = {}
        fused = len(launch.sections) > 1 or launch.registers
        reductions = any(s.reduce for s in launch.sections)
        ntiled = len(w.tiled)
        for axis in w.blocks:
            if axis in w.dot_axes:
                is_reduce = any(axis in s.reduce for s in launch.sections)
                role = "dot_reduce" if is_reduce else "dot"
            elif fused:
                role = "rows" if axis in w.tiled else "inner"
            elif axis in w.tiled:
                role = (f"tile{ntiled}" if reductions else f"elementwise{ntiled}")
            else:
                role = f"reduce{max(1, ntiled)}"
            defaults[axis] = DEFAULTS[role]
        return defaults

    def kernel_text(self, launch: Launch, name: str) -> tuple[str, KernelWriter]:
        w = KernelWriter(self.plan, launch, self.options, self)
        body = w.write()
        params = [f"{py_name(t)}_ptr" for t in self.tensors_of(launch)]
        params += [py_name(p) for p in self.kernel.params]
        prologue = []
        for a in self.scalars_of(launch):
            if a.dtype.name == "f64":
                params.append(f"{py_name(a.name)}_ptr")
                prologue.append(f"    {py_name(a.name)} = tl.load({py_name(a.name)}_ptr)")
            else:
                params.append(py_name(a.name))
        params += [py_name(h) for h in launch.host if py_name(h) not in params]
        params += [f"{b}: tl.constexpr" for b in dict.fromkeys(w.blocks.values())]
        lines = ["@triton.jit", f"def {name}({', '.join(params)}):"]
        summary = "; ".join(f"{ir.to_str(s.stmt.lhs)} {s.stmt.op} ..." for s in launch.sections)
        lines.append(f'    """{_shorten(f"{_describe(launch)}: {summary}", DOCSTRING_WIDTH)}"""')
        return "\n".join(lines + prologue + body) + "\n", w

    def tunable_axes(self) -> dict[str, int]:
        """Tunable block names -> smallest allowed size (16 for tl.dot axes)."""
        out: dict[str, int] = {}
        for launch in self.plan.launches():
            w = KernelWriter(self.plan, launch, self.options, self)
            w.write()
            for axis, block in w.blocks.items():
                if block in w.full_blocks:
                    continue
                low = 16 if axis in w.dot_axes else 1
                out[axis] = max(out.get(axis, 1), low)
        return out

    # -- the launcher --------------------------------------------------------------------------

    def write(self) -> str:
        taken: set[str] = set()
        kernels = []
        for launch in self.plan.launches():
            name = self.function_name(launch, taken)
            text, w = self.kernel_text(launch, name)
            self.writers[id(launch)] = (name, w)
            kernels.append(text)
        self.check_block_names()
        launcher = self.launcher()
        head = [f'"""Generated by loopweave from kernel \'{self.kernel.name}\' for Triton."""',
                "import triton", "import triton.language as tl"]
        if any("libdevice." in k for k in kernels):
            head.append("from triton.language.extra import libdevice")
        if self.imports_torch:
            head.append("import torch")
        if "_lw_fit_blocks" in self.helpers:
            head.append("from loopweave.errors import TargetError")
        helpers = [HELPERS[h] if h in HELPERS else LAUNCHER_HELPERS[h]
                   for h in sorted(self.helpers)]
        return "\n".join(head) + "\n\n\n" + "\n\n".join(helpers + kernels + [launcher])

    def check_block_names(self) -> None:
        known = set()
        for _, w in self.writers.values():
            known |= {a for a, b in w.blocks.items() if b not in w.full_blocks}
        unknown = sorted(set(self.options.get("block", {})) - known)
        if unknown:
            raise TargetError(f"block names {', '.join(map(repr, unknown))} are not loops of "
                              f"kernel '{self.kernel.name}'; its tiled loops are "
                              f"{', '.join(sorted(known)) or 'none'}")

    def launcher(self) -> str:
        k = self.kernel
        lines = ["def run(tensors, scalars, sizes):",
                 f'    """Launch the kernels of \'{k.name}\' on torch tensors."""']
        used = [t for t in k.tensors if any(t in self.tensors_of(x) for x in self.plan.launches())]
        passed = [t for t in used if k.tensors[t].role != "local"]
        if passed:
            lines.append(f"    {', '.join(py_name(t) for t in passed)}, = "
                         f"{', '.join(f'tensors[{t!r}]' for t in passed)},")
        for p in k.params:
            source = "sizes" if p in k.sizes else "scalars"
            lines.append(f"    {py_name(p)} = {source}[{p!r}]")
        for a in k.args:
            if isinstance(a, ScalarArg) and a.name not in k.params:
                lines.append(f"    {py_name(a.name)} = scalars[{a.name!r}]")
        lines += self.local_lines([t for t in used if k.tensors[t].role == "local"], passed)
        lines += self.host_body(self.plan.body, 1)
        return "\n".join(lines) + "\n"

    def local_lines(self, local: list[str], passed: list[str]) -> list[str]:
        """Memory for the locals of a schedule's storage reduction: the runtime allocates
        none (a C kernel declares them), the launches share them through memory."""
        if not local:
            return []
        if not passed:
            raise TargetError(f"kernel '{self.kernel.name}': the Triton planner needs a tensor "
                              f"argument to place its locals {', '.join(local)} beside")
        self.imports_torch = True
        lines = []
        for name in local:
            t = self.kernel.tensors[name]
            shape = "".join(f"{python_expr(d)}, " for d in t.shape)
            lines.append(f"    {py_name(name)} = torch.empty(({shape.rstrip(' ')}), "
                         f"dtype=torch.{_TORCH_TYPES[t.dtype.name]}, "
                         f"device={py_name(passed[0])}.device)")
        return lines

    def host_body(self, items, depth: int) -> list[str]:
        pad = "    " * depth
        out = []
        for item in items:
            if isinstance(item, HostLoop):
                note = f"  # sequential: {item.carried}" if item.carried else ""
                out.append(f"{pad}for {py_name(item.var)} in range({python_expr(item.lower)}, "
                           f"{python_expr(item.upper)} + 1):{note}")
                out += self.host_body(item.body, depth + 1)
            else:
                out += self.launch_lines(item, pad)
        return out

    def fit_lines(self, w: KernelWriter, name: str, values: dict[str, str], chosen: set[str],
                  pad: str) -> list[str]:
        """Keep every tensor of the launch within Triton's limit on its elements: default
        block sizes are halved (in `values`, in place) where a tensor's blocks multiply past
        it. Blocks set by `block=` are refused with a TargetError instead; blocks that cover a
        whole loop (known at run time) are fitted by the launcher, which raises if they alone
        exceed the limit."""
        groups = w.block_groups()
        full = set(w.full_blocks)
        shrinkable = {c for c in values if c not in full and c not in chosen}
        minimum = {c: 16 if c in {w.blocks[a] for a in w.dot_axes} else 1 for c in values}
        known = {c: int(v) for c, v in values.items() if c not in full}
        static = {c: minimum[c] for c in full} | known  # full blocks at their least
        fitted = fit_blocks(static, groups, shrinkable, minimum, TENSOR_LIMIT)
        if fitted is None:
            raise TargetError(_too_large(self.kernel.name, name, static, groups, shrinkable))
        values.update({c: str(fitted[c]) for c in known})
        worst = fitted | {c: MAX_FULL_BLOCK for c in full}
        if all(_numel(worst, g) <= TENSOR_LIMIT for g in groups):
            return []
        self.helpers.add("_lw_fit_blocks")
        blocks = "{" + ", ".join(f"{c!r}: {v}" for c, v in values.items()) + "}"
        sizes = ", ".join(f"{c}={{{c}}}" for c in sorted(full))
        why = (f"kernel '{self.kernel.name}': launch {name} would make a tensor of more than "
               f"{TENSOR_LIMIT} elements (Triton's limit) even with the smallest blocks: its "
               f"blocks that cover a whole loop are too large at these sizes ({sizes})")
        lines = [f"{pad}blocks = _lw_fit_blocks({blocks}, {tuple(groups)!r}, "
                 f"{sorted(shrinkable)!r}, {minimum!r}, {TENSOR_LIMIT})",
                 f"{pad}if blocks is None:",
                 f"{pad}    raise TargetError(f{why!r})"]
        values.update({c: f"blocks[{c!r}]" for c in values})
        return lines

    def launch_lines(self, launch: Launch, pad: str) -> list[str]:
        name, w = self.writers[id(launch)]
        blocks = self.role_defaults(w, launch)
        blocks.update({a: s for a, s in self.options.get("block", {}).items() if a in blocks})
        lines = []
        values = {}
        for axis, const in w.blocks.items():
            if const in w.full_blocks:
                lo, hi, low = w.full_blocks[const]
                size = python_expr(extent(lo, hi))
                lines.append(f"{pad}{const} = max({low}, triton.next_power_of_2({size}))")
                values[const] = const
            else:
                size = blocks[axis]
                if axis in w.dot_axes:
                    size = max(size, 16)  # tl.dot's smallest tile; masks pad the edges
                values[const] = str(size)
        chosen = {w.blocks[a] for a in self.options.get("block", {}) if a in w.blocks}
        lines += self.fit_lines(w, name, values, chosen, pad)
        counts = []
        for g in launch.grid:
            lo, hi = w.grid_bounds[g]
            size = python_expr(extent(lo, hi))
            if g in w.tiled:
                counts.append(f"triton.cdiv({size}, {values[w.blocks[g]]})")
            else:
                counts.append(size)
        if len(counts) > 3:
            flat = len(counts) - 2
            # (N - 3) * M, not N - 3 * M; and no launch when two counts are negative
            counts = [" * ".join(f"max({c}, 0)" for c in counts[:flat])] + counts[flat:]
        grid = f"({', '.join(counts)},)" if counts else "(1,)"
        args = [py_name(t) for t in self.tensors_of(launch)]
        args += [py_name(p) for p in self.kernel.params]
        args += [py_name(a.name) for a in self.scalars_of(launch)]
        args += [py_name(h) for h in launch.host if py_name(h) not in args]
        args += [f"{c}={values[c]}" for c in dict.fromkeys(w.blocks.values())]
        args += [f"num_warps={self.options['num_warps'] or 4}",
                 f"num_stages={self.options['num_stages']}"]
        lines.append(f"{pad}grid = {grid}")
        call = f"{name}[grid]({', '.join(args)})"
        if counts:
            lines.append(f"{pad}if min(grid) > 0:")
            lines.append(f"{pad}    {call}")
        else:
            lines.append(f"{pad}{call}")
        return lines


_TORCH_TYPES = {"f16": "float16", "bf16": "bfloat16", "f32": "float32", "f64": "float64",
                "i8": "int8", "u8": "uint8", "i16": "int16", "i32": "int32", "i64": "int64",
                **dict.fromkeys(triton_lowp.TYPES, "uint8")}  # the 8-bit floats as their bits

#: Triton's limit on the elements of one tensor (a product of block sizes).
TENSOR_LIMIT = 1 << 20
#: The largest block that covers a whole loop assumed when deciding at compile time that the
#: launcher need not fit the blocks itself (a larger one still fits, or fails, in the launcher).
MAX_FULL_BLOCK = 4096


def fit_blocks(blocks: dict, groups, shrinkable, minimum: dict, limit: int) -> dict | None:
    """`blocks` (name -> power of two) with those in `shrinkable` halved, the largest of a
    group first, until the blocks of every group (the tile axes of one tensor) multiply to
    at most `limit`; None when the blocks that cannot shrink exceed it alone. Self-contained:
    the launcher of a module runs a copy of it (`_lw_fit_blocks`)."""
    blocks = dict(blocks)
    for group in groups:
        while True:
            numel = 1
            for name in group:
                numel *= blocks[name]
            if numel <= limit:
                break
            smaller = [b for b in group if b in shrinkable and blocks[b] > minimum[b]]
            if not smaller:
                return None
            largest = max(smaller, key=lambda b: blocks[b])
            blocks[largest] //= 2
    return blocks


#: Plain Python helpers of the launcher, emitted into the module only when used.
LAUNCHER_HELPERS = {"_lw_fit_blocks": inspect.getsource(fit_blocks).replace(
    "def fit_blocks(", "def _lw_fit_blocks(", 1)}


def _numel(blocks: dict, group) -> int:
    numel = 1
    for name in group:
        numel *= blocks[name]
    return numel


def _too_large(kernel: str, launch: str, blocks: dict, groups, shrinkable) -> str:
    """Why the blocks chosen with `block=` cannot fit: the first tensor over the limit."""
    for group in groups:
        if _numel(blocks, group) > TENSOR_LIMIT:
            chosen = ", ".join(f"{b}={blocks[b]}" for b in group if b not in shrinkable)
            return (f"kernel '{kernel}': launch {launch} would make a tensor of "
                    f"{_numel(blocks, group)} elements ({' x '.join(group)}), more than "
                    f"Triton's limit of {TENSOR_LIMIT}, even with the other blocks at their "
                    f"least; choose smaller block= sizes than {chosen}")
    raise AssertionError("no group over the limit")


#: The longest text between a kernel docstring's quotes (the line stays within 99 columns).
DOCSTRING_WIDTH = 99 - len('    """"""')


def _shorten(text: str, width: int) -> str:
    """`text` cut to `width` characters, ending in "..." when cut (the quotes are added after
    the cut, so they always close)."""
    text = text.replace('"', "'")  # a quote next to the closing ones would end them early
    return text if len(text) <= width else text[:width - 3].rstrip() + "..."


def _describe(launch: Launch) -> str:
    if launch.sequential:
        return "one program runs the loops in order"
    grid = ", ".join(launch.grid) or "one program"
    return f"grid over {grid}"


__all__ = ["ModuleWriter", "var_names"]
