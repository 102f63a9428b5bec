"""The GPU check: what can only be checked on a machine with an NVIDIA GPU, in one command.

    make gpu-check                     # .ci/gpu-check: finds/creates the venv, then this module
    python -m benchmarks.gpu_check [--budget SECONDS] [--skip kernels|timing|tests] [--out DIR]

GPUs are lent rarely and briefly, so everything is prepared here and runs unattended, in
phases, each bounded by what is left of `--budget` (default 480 s):

1. info: nvidia-smi, torch/CUDA/Triton/nvcc versions, the device's properties.
2. kernels: every example kernel on the real GPU, `cuda` (nvcc-built, no emulation) and
   `triton` (compiled by Triton, no interpreter), at each of its test sizes, against its numpy
   reference. (tests/test_cuda.py, test_triton.py and test_gpu_schedule.py hard-code emulation
   and the interpreter, so on a GPU they would not touch it; this phase is their GPU run.)
3. timing: matmul 1024^3 and softmax 4096x1024, side by side, for loopweave cuda, loopweave
   triton and torch: median of several calls between torch.cuda.synchronize(), plus the GPU
   time of the kernels alone from torch.profiler (the cuda launcher also copies to and from
   the host inside each call); and the registers Triton's driver reports for the kernels it ran.
4. tests: the three GPU test files under pytest with TRITON_INTERPRET and
   LOOPWEAVE_CUDA_EMULATE unset (they still emulate/interpret: see benchmarks/README.md).

`--rehearse` runs the same phases on a machine without a GPU (CUDA emulation, Triton's
interpreter, the timing on the CPU at the suite's quick sizes), so that the one run on a lent
GPU is not the first: its figures mean nothing.

Phases 2 and 3 run in worker processes: a kernel that faults leaves the CUDA context unusable
for the rest of its process, so the worker reports it and a new one goes on with the next
kernel. Writes gpu_check.md (the tables) and gpu_pytest.xml under --out (default: $OUT when
set, else benchmarks/out/). Without a GPU it exits with status 2 and "no GPU: ..." at once.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

import loopweave
from benchmarks.suite import SUITE
from loopweave.backends.triton import interpreter_problem
from loopweave.errors import LoopweaveError
from loopweave.examples import load_references

ROOT = Path(__file__).resolve().parent.parent
MARK = "LW-GPU-CHECK "  # prefixes a worker's result lines
GPU_TEST_FILES = ("tests/test_cuda.py", "tests/test_triton.py", "tests/test_gpu_schedule.py")
TIMED = (("matmul", "matmul"), ("softmax", "softmax"))  # (suite entry, example kernel)
NO_GPU_STATUS = 2
#: Where the workers run: "cuda", or "cpu" in a rehearsal (set by the orchestrator).
DEVICE = os.environ.get("LW_GPU_CHECK_DEVICE", "cuda")


def no_gpu_reason() -> str | None:
    """Why this machine cannot run the check (quick: nvidia-smi, then torch), or None."""
    if shutil.which("nvidia-smi") is None:
        return "nvidia-smi not found (no NVIDIA driver on this machine)"
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"nvidia-smi -L failed: {e}"
    if listed.returncode != 0 or "GPU" not in listed.stdout:
        text = (listed.stdout + listed.stderr).strip().splitlines()
        return f"nvidia-smi lists no GPU ({text[0] if text else f'exit {listed.returncode}'})"
    try:
        import torch
    except ImportError:
        return f"torch is not installed for {sys.executable}"
    if not torch.cuda.is_available():
        return f"torch {torch.__version__} in {sys.executable} sees no CUDA device"
    return None


def one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


def emit(record: dict) -> None:
    print(MARK + json.dumps(record), flush=True)


def sync() -> None:
    import torch

    if DEVICE == "cuda":
        torch.cuda.synchronize()


def context_alive() -> bool:
    """False once a kernel fault has poisoned this process's CUDA context."""
    import torch

    if DEVICE != "cuda":
        return True
    try:
        (torch.ones(1, device="cuda") + 1).item()
        torch.cuda.synchronize()
        return True
    except RuntimeError:
        return False


# -- phase 2: every example kernel on the GPU (worker) -------------------------------------------

def _compile(name: str, target: str):
    refs = load_references()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return loopweave.compile(refs.KERNELS[name].source(), target=target, tuning_db=False)


def kernels_worker(target: str, names: list[str]) -> None:
    """Per kernel: compile for `target` (cuda: the nvcc builds in parallel first), run each test
    size, compare with the reference; exits early when the CUDA context is lost."""
    from concurrent.futures import ThreadPoolExecutor

    refs = load_references()
    with ThreadPoolExecutor(8 if target == "cuda" else 1) as pool:
        built = {n: pool.submit(_compile, n, target) for n in names}
        for name in names:
            emit({"start": name})
            case, sizes_done, worst = refs.KERNELS[name], [], 0.0
            started = time.perf_counter()
            try:
                kernel = built[name].result()
                for i, sizes in enumerate(case.sizes):
                    args = case.make_inputs(sizes, 1000 + i)
                    expected = case.expected(args)
                    got = refs.results_of(case, args, kernel(*args.values()))
                    for out, want in expected.items():
                        err, ok = refs.compare(got[out], want, case.tol_scale)
                        worst = max(worst, err)
                        if not ok:
                            raise AssertionError(f"{out} at {sizes}: max error {err:g}")
                    sizes_done.append(sizes)
                result = {"ok": True}
            except (LoopweaveError, AssertionError) as e:
                result = {"ok": False, "error": one_line(e)}
            except Exception as e:  # a CUDA or Triton failure: reported, then the context checked
                result = {"ok": False, "error": one_line(e)}
            emit({"name": name, **result, "sizes": len(sizes_done), "of": len(case.sizes),
                  "max_error": worst, "seconds": time.perf_counter() - started})
            if not result["ok"] and not context_alive():
                emit({"context_lost": name})
                os._exit(3)  # the context is gone: nothing is left to clean up


# -- phase 3: timing (worker) ---------------------------------------------------------------------

def _kernel_ms(fn, calls: int = 3) -> float | None:
    """GPU time of the kernels one call launches (copies and memsets excluded), from
    torch.profiler (CUPTI sees every kernel of the process, the cuda launcher's too)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a CPU rehearsal has no CUDA activity to trace
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(calls):
                    fn()
                sync()
        total_us = 0.0
        for event in prof.events():
            if event.device_type == torch.autograd.DeviceType.CUDA and not \
                    event.name.lower().startswith(("memcpy", "memset")):
                total_us += event.time_range.elapsed_us()
        return total_us / calls / 1000 if total_us else None
    except Exception:  # the profiler is a bonus; the wall-clock median stands without it
        return None


def _triton_registers(kernel) -> list[dict]:
    """n_regs, n_spills and shared memory of the binaries Triton's driver loaded for `kernel`."""
    import triton

    invoker = kernel.invoke
    module = getattr(invoker, "module", None) or getattr(getattr(invoker, "default", None),
                                                         "module", None)
    rows = []
    try:  # Triton's kernel cache is internal (device -> (kernels by key, ...)): a bonus table
        for name, fn in vars(module or {}).items():
            if not isinstance(fn, triton.JITFunction):
                continue
            for cache in getattr(fn, "device_caches", {}).values():
                for compiled in cache[0].values():
                    rows.append({"function": name, "n_regs": getattr(compiled, "n_regs", None),
                                 "n_spills": getattr(compiled, "n_spills", None),
                                 "shared": compiled.metadata.shared,
                                 "num_warps": compiled.metadata.num_warps})
    except Exception as e:
        rows.append({"function": f"(not read: {one_line(e)})", "n_regs": None,
                     "n_spills": None, "shared": None, "num_warps": None})
    return rows


def _implementations(name: str, args: dict, on_device: dict) -> dict:
    """Zero-argument calls of each implementation (the cuda kernel takes host arrays)."""
    import torch

    impls = {}
    for impl, target, inputs in (("loopweave cuda", "cuda", args),
                                 ("loopweave triton", "triton", on_device)):
        try:
            kernel = _compile(name, target)
            impls[impl] = functools.partial(kernel, *inputs.values())
        except LoopweaveError as e:
            emit({"kernel": name, "impl": impl, "error": one_line(e)})
    impls["torch"] = {"matmul": lambda: torch.mm(on_device["A"], on_device["B"]),
                      "softmax": lambda: torch.softmax(on_device["X"], dim=-1)}[name]
    return impls


def _time_one(entry_name: str, name: str, repeats: int) -> None:
    import torch

    refs = load_references()
    entry, case = SUITE[entry_name], refs.KERNELS[name]
    sizes = dict(entry.sizes if DEVICE == "cuda" else entry.quick_sizes)
    args = case.make_inputs(sizes, 0)
    expected = case.expected(args)
    want = expected[next(iter(expected))]
    on_device = {k: torch.from_numpy(v).to(DEVICE) if isinstance(v, np.ndarray) else v
                 for k, v in args.items()}
    impls = _implementations(name, args, on_device)
    checks: dict[str, str] = {}
    for impl, fn in list(impls.items()):
        try:
            out = fn()
            sync()
            got = out.cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out)
            err, ok = refs.compare(got, want, case.tol_scale)
            checks[impl] = f"{'ok' if ok else 'WRONG'} (max error {err:.2g})"
            fn()  # a second warm-up call
        except Exception as e:  # a CUDA or Triton failure: reported, the others still timed
            emit({"kernel": entry_name, "impl": impl, "error": one_line(e)})
            del impls[impl]
    samples: dict[str, list[float]] = {k: [] for k in impls}
    for r in range(repeats):  # interleaved rounds, each starting one later
        order = list(impls)
        for impl in order[r % len(order):] + order[:r % len(order)]:
            sync()
            t0 = time.perf_counter()
            impls[impl]()
            sync()
            samples[impl].append(time.perf_counter() - t0)
    work = entry.work(sizes)
    for impl, fn in impls.items():
        emit({"kernel": entry_name, "impl": impl, "sizes": sizes,
              "median_ms": statistics.median(samples[impl]) * 1e3,
              "min_ms": min(samples[impl]) * 1e3, "kernel_ms": _kernel_ms(fn),
              "flops": work.flops, "bytes": work.bytes, "check": checks[impl]})
    if "loopweave triton" in impls:
        kernel = impls["loopweave triton"].func
        emit({"kernel": entry_name, "triton_binaries": _triton_registers(kernel)})


def timing_worker(repeats: int) -> None:
    for entry_name, name in TIMED:
        _time_one(entry_name, name, repeats)


# -- the orchestrator ------------------------------------------------------------------------------

class Deadline:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


WORKER_ENV: dict[str, str] | None = None  # the rehearsal's environment for the workers


def run_worker(argv: list[str], timeout: float):
    """Run `python -m benchmarks.gpu_check <argv>`, yielding its result records as they come
    (its other output is passed through); killed after `timeout` seconds. The last record is
    {"exit": status} (status None when killed)."""
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.gpu_check", *argv], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=WORKER_ENV, bufsize=1)
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        proc.kill()

    killer = threading.Timer(max(timeout, 1), kill)
    killer.start()
    try:
        for line in proc.stdout:
            if line.startswith(MARK):
                yield json.loads(line[len(MARK):])
            elif line.strip() and "Warning" not in line:
                print("   ", line.rstrip()[:300], flush=True)
        proc.wait()
    finally:
        killer.cancel()
    yield {"exit": None if killed.is_set() else proc.returncode}


def phase_info(report: list[str]) -> None:
    import torch

    try:
        smi = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        smi = f"nvidia-smi: {e}"
    print(smi, flush=True)
    lines = [f"- python {sys.version.split()[0]} ({sys.executable})",
             f"- torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN "
             f"{torch.backends.cudnn.version()}"]
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        lines.append(f"- GPU {i}: {p.name}, sm_{p.major}{p.minor}, {p.multi_processor_count} SMs, "
                     f"{p.total_memory / 2**30:.0f} GiB")
    try:
        import triton

        lines.append(f"- triton {triton.__version__}")
    except ImportError:
        lines.append("- triton not installed")
    nvcc = shutil.which(os.environ.get("NVCC", "nvcc"))
    version = (subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout
               .strip().splitlines() if nvcc else [])
    lines.append(f"- nvcc: {next((v for v in version if 'release' in v), 'not found')}")
    print("\n".join(lines), flush=True)
    report += ["## Machine", "", *lines, "", "```", smi.strip(), "```", ""]


def phase_kernels(report: list[str], deadline: Deadline, share: float) -> bool:
    """Every example kernel on cuda and triton; False if any failed."""
    names = list(load_references().KERNELS)
    rows, all_ok = [], True
    for target in ("cuda", "triton"):
        todo = list(names)
        stop = time.monotonic() + deadline.left() * share / (2 if target == "cuda" else 1)
        while todo:
            left = stop - time.monotonic()
            if left < 5:
                rows += [(n, target, "not run: out of time") for n in todo]
                all_ok = False
                break
            print(f"-- {target}: {len(todo)} kernel(s), {left:.0f} s left", flush=True)
            started, finished = None, []
            for rec in run_worker(["--kernels-worker", target, ",".join(todo)], left):
                if "start" in rec:
                    started = rec["start"]
                elif "name" in rec:
                    started = None
                    finished.append(rec["name"])
                    status = (f"ok, {rec['sizes']}/{rec['of']} sizes, max error "
                              f"{rec['max_error']:.2g}" if rec["ok"] else rec["error"])
                    all_ok &= rec["ok"]
                    rows.append((rec["name"], target, status))
                    print(f"   {rec['name']:20s} {target:6s} {status} ({rec['seconds']:.1f} s)",
                          flush=True)
                elif "exit" in rec and started is not None:  # died or timed out in a kernel
                    why = ("timed out" if rec["exit"] is None else
                           f"worker died (exit {rec['exit']})")
                    rows.append((started, target, why))
                    finished.append(started)
                    all_ok = False
            if not finished:  # the worker could not even start a kernel
                rows += [(n, target, "worker failed before its first kernel") for n in todo]
                all_ok = False
                break
            todo = [n for n in todo if n not in finished]
    report += ["## Example kernels on the GPU (each test size against numpy)", "",
               "| kernel | target | result |", "| --- | --- | --- |",
               *(f"| {n} | {t} | {s.replace('|', '/')} |" for n, t, s in rows), ""]
    return all_ok


def phase_timing(report: list[str], deadline: Deadline, repeats: int) -> bool:
    table = ["| kernel | implementation | median ms (call) | min ms | kernel ms (profiler) | "
             "rate (kernel) | vs torch (kernel) | check |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    binaries, results, ok = [], [], True
    for rec in run_worker(["--timing-worker", str(repeats)], deadline.left()):
        if "median_ms" in rec:
            results.append(rec)
        elif "triton_binaries" in rec:
            binaries += [{"kernel": rec["kernel"], **b} for b in rec["triton_binaries"]]
        elif "error" in rec:
            table.append(f"| {rec['kernel']} | {rec['impl']} | error: "
                         f"{rec['error'].replace('|', '/')} | | | | | |")
            ok = False
        elif "exit" in rec and rec["exit"] != 0:
            table.append(f"| timing worker | | {'timed out' if rec['exit'] is None else 'died'} "
                         "| | | | | |")
            ok = False
    torch_ms = {r["kernel"]: r["kernel_ms"] for r in results if r["impl"] == "torch"}
    for r in results:
        kernel_ms = r["kernel_ms"]
        if kernel_ms:
            rate = (f"{r['flops'] / kernel_ms / 1e6:.0f} GFLOP/s" if r["flops"] else
                    f"{r['bytes'] / kernel_ms / 1e6:.0f} GB/s")
            versus = (f"{torch_ms[r['kernel']] / kernel_ms:.2f}x"
                      if torch_ms.get(r["kernel"]) else "-")
        else:
            rate, versus = "-", "-"
        ok &= r["check"].startswith("ok")
        table.append(f"| {r['kernel']} {'x'.join(map(str, r['sizes'].values()))} | {r['impl']} "
                     f"| {r['median_ms']:.3f} | {r['min_ms']:.3f} | "
                     f"{'-' if kernel_ms is None else f'{kernel_ms:.3f}'} | {rate} | {versus} "
                     f"| {r['check']} |")
    print("\n".join(table), flush=True)
    report += ["## Timing (median of the calls; vs torch: torch's kernel time / this one's)", "",
               *table, "",
               "The loopweave cuda call takes host arrays: it allocates, copies in, launches and "
               "copies back inside the call, so only its kernel time compares with the others.",
               ""]
    if binaries:
        rows = ["| kernel | triton function | n_regs | n_spills | shared B | warps |",
                "| --- | --- | ---: | ---: | ---: | ---: |"]
        rows += [f"| {b['kernel']} | {b['function']} | {b['n_regs']} | {b['n_spills']} | "
                 f"{b['shared']} | {b['num_warps']} |" for b in binaries]
        print("\n".join(rows), flush=True)
        report += ["## Triton binaries as the GPU driver loaded them", "", *rows, ""]
    return ok


def phase_tests(report: list[str], deadline: Deadline, out: Path) -> bool:
    left = deadline.left()
    if left < 30:
        report += ["## pytest", "", f"not run: {left:.0f} s left", ""]
        return False
    env = {k: v for k, v in os.environ.items()
           if k not in ("TRITON_INTERPRET", "LOOPWEAVE_CUDA_EMULATE")}
    cmd = [sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider", "--timeout=300",
           f"--junitxml={out / 'gpu_pytest.xml'}", *GPU_TEST_FILES]
    try:
        import xdist  # noqa: F401 - only whether pytest-xdist is there

        cmd[3:3] = ["-n", str(min(8, os.cpu_count() or 1))]
    except ImportError:
        pass
    print(f"-- pytest ({left:.0f} s left): {' '.join(cmd[1:])}", flush=True)
    try:
        result = subprocess.run(cmd, cwd=ROOT, env=env, timeout=left, capture_output=True,
                                text=True)
        tail = (result.stdout + result.stderr).strip().splitlines()[-40:]
        status = f"exit {result.returncode}"
    except subprocess.TimeoutExpired as e:
        output = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        tail, status = output.strip().splitlines()[-40:], f"timed out after {left:.0f} s"
        result = None
    print("\n".join(tail), flush=True)
    problem = interpreter_problem()
    report += ["## pytest " + " ".join(GPU_TEST_FILES) + f" ({status})", "",
               "These files force CUDA emulation and Triton's interpreter whatever the "
               "environment (benchmarks/README.md lists the lines), so this run checks the "
               "GPU machine's Python packages, not the GPU.", "",
               *([f"Not run: the tests of Triton's interpreter (skipped): {problem}", ""]
                 if problem else []), "```", *tail, "```", ""]
    return result is not None and result.returncode == 0


def default_out() -> Path:
    return Path(os.environ["OUT"]) if os.environ.get("OUT") else ROOT / "benchmarks" / "out"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=480, help="seconds for all phases")
    parser.add_argument("--skip", action="append", default=[],
                        choices=["kernels", "timing", "tests"], help="leave a phase out")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per implementation")
    parser.add_argument("--out", type=Path, default=None, help="default: $OUT, else benchmarks/out")
    parser.add_argument("--rehearse", action="store_true",
                        help="no GPU: every phase on the CPU (emulation, interpreter)")
    parser.add_argument("--kernels-worker", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--timing-worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.kernels_worker:
        kernels_worker(args.kernels_worker[0], args.kernels_worker[1].split(","))
        return 0
    if args.timing_worker:
        timing_worker(args.timing_worker)
        return 0
    global WORKER_ENV
    reason = None if args.rehearse else no_gpu_reason()
    if args.rehearse:
        WORKER_ENV = {**os.environ, "LW_GPU_CHECK_DEVICE": "cpu", "LOOPWEAVE_CUDA_EMULATE": "1",
                      "TRITON_INTERPRET": "1"}
    if reason:
        print(f"no GPU: {reason}. `make gpu-check` needs a machine with an NVIDIA GPU "
              "(benchmarks/README.md).", file=sys.stderr)
        return NO_GPU_STATUS
    deadline = Deadline(args.budget)
    out = args.out or default_out()
    out.mkdir(parents=True, exist_ok=True)
    report = ["# loopweave GPU check" + (" (rehearsal on the CPU: no figure means anything)"
                                         if args.rehearse else ""), "",
              f"`python -m benchmarks.gpu_check {' '.join(argv or sys.argv[1:])}`, "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", ""]
    results = {}
    phase_info(report)
    if "kernels" not in args.skip:
        results["kernels"] = phase_kernels(report, deadline, 0.55)
    if "timing" not in args.skip:
        results["timing"] = phase_timing(report, deadline, args.repeats)
    if "tests" not in args.skip:
        results["tests"] = phase_tests(report, deadline, out)
    summary = ", ".join(f"{k} {'ok' if v else 'FAILED'}" for k, v in results.items())
    report.insert(4, f"Result: {summary or 'info only'}\n")
    (out / "gpu_check.md").write_text("\n".join(report))
    print(f"\ngpu-check: {summary}; written to {out / 'gpu_check.md'}", flush=True)
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
