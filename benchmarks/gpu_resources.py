"""Registers, spills, shared memory and theoretical sm_90 occupancy of every GPU kernel.

    .venv/bin/python -m benchmarks.gpu_resources [--quick] [--out DIR] [kernel ...]

For every example kernel (examples/kernels/*.lw), with the default schedule of the `cuda` and of
the `triton` target, one row per generated GPU function:

- cuda: the `.cu` source built by `nvcc -arch=sm_90 -cubin -Xptxas -v`
  (`loopweave.backends.cuda.resource_usage`); threads per block from the `LW_LAUNCH(...,
  dim3(grid), dim3(block), ...)` lines of the host launcher.
- triton: the generated module's own launcher `run(tensors, scalars, sizes)` is executed with
  every `kernel[grid](...)` launch turned into Triton's `warmup` (compile, no launch), for
  sm_90, in a worker process whose Triton does not interpret. The kernels are therefore
  specialised exactly as a GPU run at these sizes would specialise them (integer arguments
  divisible by 16 or equal to 1, the launcher's block sizes and `num_warps`). Registers and
  spills come from the `ptxas -v` log Triton's own compile prints (TRITON_DUMP_PTXAS_LOG, a
  fresh Triton cache so ptxas runs), shared memory from the compiled kernel's
  `metadata.shared`. (CompiledKernel's `n_regs`/`n_spills` are only filled in when the binary
  is loaded by a GPU driver, which this machine lacks.)

A kernel that a target cannot compile gets one row with the loopweave error instead.
Sizes matter only to Triton (specialisation, and launcher block sizes computed from sizes such
as attention's head dimension): the suite's sizes (benchmarks/suite.py) where the kernel is in
the suite, else the kernel's demo sizes from examples/references/.

Writes `benchmarks/results_gpu.md` (a run with `--quick` or a selection of kernels writes to
`benchmarks/out/` instead, as `python -m benchmarks` does).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import types
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from benchmarks.suite import SUITE
from loopweave.autotune.gpu_features import occupancy
from loopweave.backends import cuda
from loopweave.backends.triton import import_module, torch_dtype
from loopweave.driver import stages
from loopweave.errors import LoopweaveError
from loopweave.examples import load_references
from loopweave.ir.kernel import ScalarArg

ROOT = Path(__file__).resolve().parent.parent
QUICK = ("matmul", "conv2d", "softmax", "attention")  # the kernels of the [one-schedule] tests


# -- rows ----------------------------------------------------------------------------------------

@dataclass
class Row:
    kernel: str
    target: str
    function: str = ""
    registers: int | None = None
    spill_stores: int | None = None
    spill_loads: int | None = None
    shared: int | None = None
    threads: int | None = None
    error: str | None = None
    note: str | None = None

    def occupancy(self) -> str:
        if None in (self.registers, self.threads, self.shared):
            return "?"
        fraction, limit = occupancy(self.registers, self.threads, self.shared)
        return f"{fraction:.1%} ({limit})"


def one_line(error: BaseException) -> str:
    """An error as one table cell: its class (loopweave's errors say enough without the
    module) and the first line of its message."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


def _launch_arguments(text: str, start: int) -> list[str]:
    """The top-level comma-separated arguments of the call whose '(' is at text[start]."""
    args, depth, current = [], 0, []
    for ch in text[start + 1:]:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                args.append("".join(current).strip())
                return args
            depth -= 1
        if ch == "," and depth == 0:
            args.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    return args


def cuda_block_threads(source: str) -> dict[str, int | None]:
    """Threads per block of each kernel the host launcher launches (first launch; None where the
    block is not literal), from `LW_LAUNCH(kernel, dim3(grid), dim3(block), ...)`."""
    threads: dict[str, int | None] = {}
    for m in re.finditer(r"\bLW_LAUNCH\(", source):
        line_start = source.rfind("\n", 0, m.start()) + 1
        if source[line_start:m.start()].lstrip().startswith("#"):
            continue  # the macro's own definition
        args = _launch_arguments(source, m.end() - 1)
        if len(args) < 3 or args[0] in threads:
            continue
        dims = re.fullmatch(r"dim3\((\d+)(?:,\s*(\d+))?(?:,\s*(\d+))?\)", args[2])
        threads[args[0]] = math.prod(int(d) for d in dims.groups() if d) if dims else None
    return threads


def cuda_rows(name: str, source: str) -> list[Row]:
    """One row per `__global__` function of the kernel's default cuda schedule."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            st = stages(source, "cuda")
            usage = cuda.resource_usage(st.source, st.target)
    except LoopweaveError as e:
        return [Row(name, "cuda", error=one_line(e))]
    except Exception as e:  # a bug of the backend: still one row, so the table is complete
        return [Row(name, "cuda", error=f"internal error: {one_line(e)}")]
    threads = cuda_block_threads(st.source)
    order = {fn: i for i, fn in enumerate(threads)}
    return [Row(name, "cuda", fn, u["registers"], u["spill_stores"], u["spill_loads"],
                u["shared_bytes"], threads.get(fn),
                note=None if fn in threads else "not launched by the host code")
            for fn, u in sorted(usage.items(), key=lambda kv: order.get(kv[0], len(order)))]


# -- triton: the worker process ------------------------------------------------------------------

MARK = "LW-GPU-RESOURCES "  # prefixes the worker's result lines (Triton may print too)


class _AotDriver:
    """Triton's active driver for compiling without a GPU: it names sm_90 as the current
    target; nothing is ever launched (launches are turned into `warmup`)."""

    def __init__(self, arch: int):
        from triton.backends.compiler import GPUTarget

        self.target = GPUTarget("cuda", arch, 32)

    def get_current_target(self):
        return self.target

    def get_current_device(self):
        return 0

    def get_current_stream(self, device=None):
        return 0

    def get_active_torch_device(self):
        import torch

        return torch.device("cpu")


def _triton_kernel_rows(name: str, sizes: dict[str, int]) -> list[dict]:
    """Compile every launch of the kernel's default triton schedule at `sizes` for sm_90:
    per function, the specialisation launched most often (others are counted in `note`)."""
    import torch
    import triton

    refs = load_references()
    case = refs.KERNELS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st = stages(case.source(), "triton")
    module = import_module(st.source, interpret=False)
    args = case.make_inputs(sizes, 0)
    # Stand-ins of what TritonInvoker passes: tensors as their torch dtype (Triton's warmup
    # makes MockTensors of dtypes), f64 scalars as one-element tensors, other scalars by value.
    tensors = {t.name: torch_dtype(t.dtype) for t in st.ir.tensors.values()}
    scalars = {a.name: torch.float64 if a.dtype.name == "f64" else args[a.name].item()
               for a in st.ir.args if isinstance(a, ScalarArg)}
    compiled: dict[str, dict] = {}  # Triton's cache hash -> what we know of that binary

    class Launch:
        def __init__(self, fn):
            self.fn = fn

        def __getitem__(self, grid):
            def launch(*a, **kw):
                log = io.StringIO()
                with contextlib.redirect_stdout(log):  # the ptxas -v log Triton prints
                    kernel = self.fn.warmup(*a, grid=grid, **kw)
                entry = compiled.setdefault(kernel.hash, {"fn": self.fn.__name__, "kernel": kernel,
                                                          "launches": 0, "log": ""})
                entry["launches"] += 1
                entry["log"] += log.getvalue()
            return launch

    launches = {n: Launch(f) for n, f in vars(module).items() if isinstance(f, triton.JITFunction)}
    # The launcher runs with the launches replaced, in its own globals (the module's stay).
    run = types.FunctionType(module.run.__code__, {**vars(module), **launches})
    run(tensors, scalars, sizes)
    rows, order = {}, list(launches)
    for entry in sorted(compiled.values(), key=lambda e: -e["launches"]):
        fn, kernel = entry["fn"], entry["kernel"]
        if fn in rows:
            rows[fn]["variants"] += 1
            continue
        usage = cuda.parse_ptxas(entry["log"]).get(kernel.metadata.name)
        rows[fn] = {"function": fn, "variants": 1, "threads": kernel.metadata.num_warps * 32,
                    "shared": kernel.metadata.shared, "num_stages": kernel.metadata.num_stages,
                    **({"registers": usage["registers"], "spill_stores": usage["spill_stores"],
                        "spill_loads": usage["spill_loads"]} if usage else
                       {"note": "no ptxas log (a cached binary?)"})}
    return [rows[fn] for fn in sorted(rows, key=order.index)]


def triton_worker(jobs: list[tuple[str, dict]]) -> None:
    """Print one result line per kernel (rows or an error), starting each kernel with a line
    that names it, so the parent knows which kernel a crash took down."""
    from triton.runtime.driver import driver

    driver.set_active(_AotDriver(90))
    for name, sizes in jobs:
        print(MARK + json.dumps({"start": name}), flush=True)
        try:
            result = {"rows": _triton_kernel_rows(name, sizes)}
        except LoopweaveError as e:
            result = {"error": one_line(e)}
        except Exception as e:  # Triton's compile errors: reported in the table, not raised
            result = {"error": f"triton: {one_line(e)}"}
        print(MARK + json.dumps({"name": name, **result}), flush=True)


def _worker_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update(TRITON_CACHE_DIR=tempfile.mkdtemp(prefix="lw-gpu-resources-triton-"),
               TRITON_DUMP_PTXAS_LOG="1", PYTHONPATH=str(ROOT))
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # Triton 3.9's default, without its warning
    return env


def _run_worker(jobs: list[tuple[str, dict]]) -> dict[str, dict]:
    """Results by kernel name; a worker that dies is restarted after the kernel it died on."""
    results: dict[str, dict] = {}
    while jobs:
        env = _worker_env()
        try:
            proc = subprocess.run([sys.executable, "-m", "benchmarks.gpu_resources",
                                   "--triton-worker", json.dumps(jobs)], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=1800)
            stdout, stderr, code = proc.stdout, proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as e:
            stdout, stderr, code = e.stdout or "", "timed out after 1800 s", "timeout"
            stdout = stdout.decode() if isinstance(stdout, bytes) else stdout
        finally:
            shutil.rmtree(env["TRITON_CACHE_DIR"], ignore_errors=True)
        started = None
        for line in stdout.splitlines():
            if line.startswith(MARK):
                record = json.loads(line[len(MARK):])
                if "start" in record:
                    started = record["start"]
                else:
                    results[record.pop("name")] = record
                    started = None
        done = set(results)
        if started is not None:  # the worker died inside this kernel
            last = (stderr.strip().splitlines() or ["no output"])[-1][:200]
            results[started] = {"error": f"triton worker died (exit {code}): {last}"}
            done.add(started)
        elif not any(name in results for name, _ in jobs):  # died before its first kernel
            last = (stderr.strip().splitlines() or ["no output"])[-1][:200]
            return results | {name: {"error": f"triton worker failed: {last}"}
                              for name, _ in jobs}
        jobs = [(n, s) for n, s in jobs if n not in done]
    return results


def triton_rows(jobs: list[tuple[str, dict]], workers: int) -> dict[str, list[Row]]:
    """Rows per kernel, the kernels spread over `workers` worker processes."""
    chunks = [jobs[i::workers] for i in range(workers)]
    results: dict[str, dict] = {}
    with ThreadPoolExecutor(workers) as pool:
        for part in pool.map(_run_worker, [c for c in chunks if c]):
            results |= part
    rows: dict[str, list[Row]] = {}
    for name, _ in jobs:
        result = results.get(name, {"error": "no result from the triton worker"})
        if "error" in result:
            rows[name] = [Row(name, "triton", error=result["error"])]
            continue
        rows[name] = []
        for r in result["rows"]:
            note = r.get("note")
            if r["variants"] > 1:
                note = (f"{r['variants']} specialisations compiled (argument values); the one "
                        "launched most is shown")
            rows[name].append(Row(name, "triton", r["function"], r.get("registers"),
                                  r.get("spill_stores"), r.get("spill_loads"), r["shared"],
                                  r["threads"], note=note))
        if not rows[name]:
            rows[name] = [Row(name, "triton", error="the launcher launched no kernel")]
    return rows


# -- report ----------------------------------------------------------------------------------------

def sizes_for(name: str, refs) -> dict[str, int]:
    for entry in SUITE.values():
        if entry.case == name:
            return dict(entry.sizes)
    return dict(refs.KERNELS[name].demo_sizes)


def _cell(value) -> str:
    return "-" if value is None else str(value)


def table(rows: list[Row]) -> tuple[str, list[str]]:
    """The markdown table and its footnotes."""
    lines = ["| kernel | target | function | regs | spills (st/ld B) | smem B | threads | "
             "occupancy sm_90 |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | --- |"]
    notes = []
    for r in rows:
        if r.error:
            message = r.error.replace("|", "\\|")
            lines.append(f"| {r.kernel} | {r.target} | error: {message} | - | - | - | - | - |")
            continue
        function = r.function
        if r.note:
            notes.append(f"{r.kernel} / {r.target} / {r.function}: {r.note}")
            function += f" [{len(notes)}]"
        spills = ("-" if r.spill_stores is None else f"{r.spill_stores}/{r.spill_loads}")
        lines.append(f"| {r.kernel} | {r.target} | {function} | {_cell(r.registers)} | {spills} "
                     f"| {_cell(r.shared)} | {_cell(r.threads)} | {r.occupancy()} |")
    return "\n".join(lines), notes


def _output_line(cmd: list[str], containing: str = "") -> str:
    """The last line of the command's output that contains `containing`."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return f"{cmd[0]} (not found)"
    lines = [ln for ln in (out.stdout or out.stderr).strip().splitlines() if containing in ln]
    return lines[-1].strip() if lines else f"{cmd[0]} (no output)"


def machine_lines() -> list[str]:
    model = "unknown"
    lscpu = _output_line(["lscpu"], "Model name")
    if "Model name" in lscpu:
        model = lscpu.split(":", 1)[1].strip()
    try:
        import triton

        triton_version = triton.__version__
        ptxas = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas-blackwell"
        triton_ptxas = _output_line([str(ptxas), "--version"], "release")
    except ImportError:
        triton_version, triton_ptxas = "not installed", "-"
    commit = _output_line(["git", "-C", str(ROOT), "describe", "--always", "--dirty"])
    return [f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
            f"- CPU: {model} ({os.cpu_count()} cores; no GPU is needed: nothing runs)",
            f"- nvcc: {_output_line([os.environ.get('NVCC', 'nvcc'), '--version'], 'release')}",
            f"- triton: {triton_version} (its ptxas: {triton_ptxas})",
            f"- python {platform.python_version()}, loopweave at {commit}"]


METHOD = """\
How each number is obtained (benchmarks/gpu_resources.py):
- cuda: `nvcc -arch=sm_90 -cubin -Xptxas -v` of the generated `.cu`; registers per thread,
  spill stores/loads in bytes, static shared memory per block; threads per block from the
  launcher's `LW_LAUNCH(..., dim3(block), ...)`.
- triton: Triton's own compile for sm_90 (`num_warps` x 32 threads, as the launcher asks),
  specialised for the sizes above; registers and spills from the ptxas log of that compile,
  shared memory from the compiled kernel's `metadata.shared` (dynamic shared memory).
- occupancy: resident warps per SM / 64 with, per SM, 65536 registers (allocated per warp in
  units of 256), 228 KiB shared memory (allocated per block in units of 128 B, plus 1 KiB the
  runtime reserves per block), at most 32 blocks and 64 warps. In brackets what limits the
  resident blocks. A theoretical figure: it says nothing of latency hiding or of speed."""


def write_markdown(path: Path, command: str, rows: list[Row], sizes: dict[str, dict]) -> str:
    body, notes = table(rows)
    text = ["# GPU kernel resources (sm_90), default schedules", "",
            "No figure here is typed in by hand: `" + command + "` wrote this file.", "",
            "## Machine", "", *machine_lines(), "", "## Resources", "", body, ""]
    if notes:
        text += [f"[{i}] {n}  " for i, n in enumerate(notes, 1)] + [""]
    text += ["Sizes (they matter to Triton only): " + "; ".join(
        f"{k} " + ", ".join(f"{n}={v}" for n, v in s.items()) for k, s in sizes.items()), "",
        METHOD, ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(text))
    return body + ("\n" + "\n".join(f"[{i}] {n}" for i, n in enumerate(notes, 1))
                   if notes else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_resources",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("kernels", nargs="*", help="example kernels (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help=f"only {', '.join(QUICK)}; writes to benchmarks/out/")
    parser.add_argument("--out", type=Path, help="folder for results_gpu.md")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="parallel nvcc runs and Triton worker processes")
    parser.add_argument("--triton-worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.triton_worker:
        triton_worker([tuple(job) for job in json.loads(args.triton_worker)])
        return 0
    refs = load_references()
    names = args.kernels or (list(QUICK) if args.quick else list(refs.KERNELS))
    unknown = [n for n in names if n not in refs.KERNELS]
    if unknown:
        parser.error(f"unknown kernel(s) {', '.join(unknown)}; known: "
                     f"{', '.join(refs.KERNELS)}")
    out = args.out or (ROOT / "benchmarks" / ("out" if args.quick or args.kernels else ""))
    sizes = {n: sizes_for(n, refs) for n in names}
    workers = max(1, args.workers)
    with ThreadPoolExecutor(workers) as pool:  # nvcc runs while the Triton workers compile
        cuda_jobs = {n: pool.submit(cuda_rows, n, refs.KERNELS[n].source()) for n in names}
        triton_results = triton_rows([(n, sizes[n]) for n in names], workers)
        rows = [r for n in names for r in (*cuda_jobs[n].result(), *triton_results[n])]
    command = "python -m benchmarks.gpu_resources " + " ".join(argv if argv is not None
                                                                  else sys.argv[1:])
    printed = write_markdown(out / "results_gpu.md", command.strip(), rows, sizes)
    print(printed)
    print(f"\nwritten to {out / 'results_gpu.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
