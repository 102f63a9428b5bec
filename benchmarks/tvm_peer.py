"""TVM MetaSchedule against loopweave's tuner, the same trial budget each, one thread, one run.

    .venv/bin/python benchmarks/tvm_peer.py [--kernels matmul softmax conv2d] [--trials 40]
        [--out benchmarks/out] [--mcpu znver4] [--repeats 9]

For each kernel (sizes of benchmarks/suite.py: matmul 1024^3, softmax 4096x1024, conv2d
ResNet-50 conv2_x 3x3): loopweave's default schedule, loopweave tuned (`loopweave.tune()` with
`--trials`, continuing from the database; matmul shares benchmarks/tune_matmul.py's one-thread
database), TVM's default schedule (the TE computation compiled unscheduled), TVM MetaSchedule
(`tune_tir` with `--trials` as max_trials_global), and numpy. Every result is checked against
the kernel's reference in examples/references/, then all are timed side by side
(`benchmarks.harness.measure`: interleaved rounds, medians).

TVM is an optional peer (`pip install -e '.[tvm]'`, pins in the platform notes); without it this
script says so and exits 0. The target is llvm with this CPU's -mcpu (from /proc/cpuinfo unless
--mcpu is given) and num-cores 1. MetaSchedule's builder workers import
tvm.s_tir.tensor_intrin, whose GPU modules take ~50 s to import on this machine (longer than the
builder's default 30 s timeout, so every build would time out and be retried): they are stubbed
out in `sys.modules` (only llvm is built here) and the builder gets a 60 s timeout.
"""

from __future__ import annotations

import os
import sys

# Before numpy/TVM load: one thread everywhere; numpy's own OpenBLAS kernel (see README.md).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TVM_NUM_THREADS"):
    os.environ[_var] = "1"
for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(_var, None)

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: benchmarks/ is sys.path[0], not ROOT
    sys.path.insert(0, str(ROOT))

#: tensor_intrin submodules for GPU and other non-x86 targets, never used for an llvm x86 build.
GPU_INTRINSICS = ("cuda", "rocm", "metal", "hexagon")
KERNELS = ("matmul", "softmax", "conv2d")


def stub_gpu_intrinsics() -> None:
    """Put empty modules in place of tvm.s_tir.tensor_intrin's GPU modules (see the docstring).
    Also the builder workers' initializer, so it only uses sys and types."""
    import sys
    import types

    for name in ("cuda", "rocm", "metal", "hexagon"):
        full = f"tvm.s_tir.tensor_intrin.{name}"
        sys.modules.setdefault(full, types.ModuleType(full))


def host_mcpu() -> str:
    """LLVM's -mcpu for this CPU, from /proc/cpuinfo's vendor and SIMD flags."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "generic"
    flags = set(next((ln.split(":", 1)[1].split() for ln in info.splitlines()
                      if ln.startswith("flags")), []))
    amd = "AuthenticAMD" in info
    if "avx512f" in flags:
        return "znver4" if amd else "skylake-avx512"
    if "avx2" in flags:
        return "znver3" if amd else "haswell"
    return "generic"


# ---- the kernels in TE -------------------------------------------------------------------------

def te_matmul(te, s):
    a = te.placeholder((s["M"], s["K"]), "float32", name="A")
    b = te.placeholder((s["K"], s["N"]), "float32", name="B")
    k = te.reduce_axis((0, s["K"]), name="k")
    c = te.compute((s["M"], s["N"]), lambda i, j: te.sum(a[i, k] * b[k, j], axis=k), name="C")
    return [a, b, c], ("A", "B"), "C"


def te_softmax(te, s):
    x = te.placeholder((s["N"], s["D"]), "float32", name="X")
    j1 = te.reduce_axis((0, s["D"]), name="j1")
    m = te.compute((s["N"],), lambda i: te.max(x[i, j1], axis=j1), name="m")
    e = te.compute((s["N"], s["D"]), lambda i, j: te.exp(x[i, j] - m[i]), name="e")
    j2 = te.reduce_axis((0, s["D"]), name="j2")
    total = te.compute((s["N"],), lambda i: te.sum(e[i, j2], axis=j2), name="s")
    y = te.compute((s["N"], s["D"]), lambda i, j: e[i, j] / total[i], name="Y")
    return [x, y], ("X",), "Y"


def te_conv2d(te, s):
    oh, ow = s["H"] - s["R"] + 1, s["W"] - s["S"] + 1
    x = te.placeholder((s["N"], s["C"], s["H"], s["W"]), "float32", name="X")
    f = te.placeholder((s["K"], s["C"], s["R"], s["S"]), "float32", name="F")
    c = te.reduce_axis((0, s["C"]), name="c")
    r = te.reduce_axis((0, s["R"]), name="r")
    q = te.reduce_axis((0, s["S"]), name="q")
    y = te.compute((s["N"], s["K"], oh, ow), lambda n, k, i, j: te.sum(
        x[n, c, i + r, j + q] * f[k, c, r, q], axis=[c, r, q]), name="Y")
    return [x, f, y], ("X", "F"), "Y"


TE = {"matmul": te_matmul, "softmax": te_softmax, "conv2d": te_conv2d}


# ---- building and tuning with TVM --------------------------------------------------------------

def tvm_callable(tvm, mod, target, args: dict, inputs: tuple[str, ...], output_shape):
    """(zero-argument call, output tensor) of the compiled `mod` on `args` (converted once)."""
    import numpy as np

    func = tvm.compile(mod, target=target).jit()["main"]
    ins = [tvm.runtime.tensor(args[name]) for name in inputs]
    out = tvm.runtime.tensor(np.zeros(output_shape, dtype=np.float32))
    return (lambda: func(*ins, out)), out


def metaschedule(tvm, mod, target, trials: int, work_dir: Path):
    """The best schedule MetaSchedule finds in `trials` measurements (None if none built)."""
    from tvm.s_tir import meta_schedule as ms

    builder = ms.builder.LocalBuilder(max_workers=1, timeout_sec=60,
                                      initializer=stub_gpu_intrinsics)
    runner = ms.runner.LocalRunner(timeout_sec=60)
    database = ms.tir_integration.tune_tir(
        mod, target, str(work_dir), max_trials_global=trials, num_trials_per_iter=min(trials, 32),
        builder=builder, runner=runner, num_tuning_cores=1, seed=0)
    sch = ms.tir_integration.compile_tir(database, mod, target)
    return None if sch is None else sch.mod


def run_kernel(name: str, args, tvm, target, mcpu: str) -> str:
    """Build, tune and time one kernel's five implementations; the markdown table."""
    import numpy as np

    import loopweave
    from benchmarks.harness import Comparison, format_table, measure
    from benchmarks.peers import compile_default, used_tuning_record
    from benchmarks.suite import SUITE
    from benchmarks.tune_matmul import trials_in
    from loopweave.examples import load_references

    bench = SUITE[name]
    refs = load_references()
    case = refs.KERNELS[bench.case]
    source, sizes = case.source(), bench.sizes
    inputs = case.make_inputs(sizes, 0)
    want = case.expected(inputs)
    notes, calls, times = [], {}, {}

    start = time.time()
    db = (Path(args.out) / ("tune_matmul.sqlite" if name == "matmul"
                            else "tvm_peer_loopweave.sqlite"))
    result = loopweave.tune(source, sizes, trials=args.trials, db=str(db), timeout_s=60.0,
                            repeats=3)
    times["loopweave tune"] = time.time() - start
    lw = {"loopweave default": compile_default(source),
          "loopweave tuned": loopweave.compile(source, tuning_db=str(db))}
    for label, kern in lw.items():
        calls[label] = (lambda k=kern: k(**inputs))

    tensors, in_names, out_name = TE[name](tvm.te, sizes)
    prim = tvm.te.create_prim_func(tensors)
    out_shape = want[out_name].shape
    calls["TVM default"], tvm_default_out = tvm_callable(tvm, prim, target, inputs, in_names,
                                                         out_shape)
    start = time.time()
    tuned_mod = metaschedule(tvm, prim, target, args.trials, Path(args.out) / "tvm" / name)
    times["MetaSchedule"] = time.time() - start
    outputs = {"TVM default": tvm_default_out}
    if tuned_mod is None:
        notes.append("TVM MetaSchedule: no valid schedule found in the budget")
    else:
        calls["TVM MetaSchedule"], outputs["TVM MetaSchedule"] = tvm_callable(
            tvm, tuned_mod, target, inputs, in_names, out_shape)
    calls["numpy"] = bench.numpy(inputs)

    for label, fn in calls.items():  # every implementation checked once before timing
        got = fn()
        got = outputs[label].numpy() if label in outputs else got
        got = got[out_name] if isinstance(got, dict) else got
        err, ok = refs.compare(np.asarray(got), want[out_name], case.tol_scale)
        if not ok:
            notes.append(f"{label}: differs from the reference (max abs error {err:.3g})")
    if not used_tuning_record(lw["loopweave tuned"]):
        notes.append("loopweave tuned: compile() found no record for this key (ran the default)")
    load_start = os.getloadavg()[0]
    timings = measure(calls, repeats=args.repeats)
    notes.append(f"budget {args.trials} trials each: loopweave's database holds "
                 f"{trials_in(str(db), result.key)} ({len(result.measured)} measured now, "
                 f"{times['loopweave tune']:.0f} s), MetaSchedule {times['MetaSchedule']:.0f} s; "
                 f"load average {load_start:.2f} before timing, {os.getloadavg()[0]:.2f} after")
    size = ", ".join(f"{k}={v}" for k, v in sizes.items())
    return format_table(Comparison(name, f"{size}; 1 thread; TVM target llvm -mcpu={mcpu}",
                                   bench.work(sizes), timings, tuple(notes)))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kernels", nargs="+", choices=KERNELS, default=["matmul"])
    p.add_argument("--trials", type=int, default=40, help="tuning budget, each side")
    p.add_argument("--repeats", type=int, default=9, help="interleaved timing rounds")
    p.add_argument("--mcpu", default=None, help="LLVM -mcpu (default: from /proc/cpuinfo)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "out"))
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if importlib.util.find_spec("tvm") is None:
        print("TVM is not installed (optional peer: pip install -e '.[tvm]'); skipped.")
        return 0
    stub_gpu_intrinsics()
    import tvm
    import tvm.te  # noqa: F401 - tvm.te is used as an attribute below

    from benchmarks.machine import blas_info, cpu_model

    mcpu = args.mcpu or host_mcpu()
    target = tvm.target.Target({"kind": "llvm", "mcpu": mcpu, "num-cores": 1})
    Path(args.out).mkdir(parents=True, exist_ok=True)
    print(f"machine: {cpu_model()}; numpy BLAS {blas_info()}; TVM {tvm.__version__} "
          f"(llvm -mcpu={mcpu}); load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at start\n", flush=True)
    for name in args.kernels:
        print(run_kernel(name, args, tvm, target, mcpu), flush=True)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
