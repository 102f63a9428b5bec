"""Tune fp32 matmul with `loopweave.tune()` and compare it with numpy (OpenBLAS) in the same run.

    .venv/bin/python benchmarks/tune_matmul.py [--case 1024x1024x1024@1 ...] [--trials 40]
        [--db-dir benchmarks/out] [--repeats 9] [--json FILE]

A case is MxKxN@THREADS (A is M x K, B is K x N). Default cases: 1024^3 on 1 and 2 threads,
127x1000x333 and 4096x64x4096 on 1 thread. For each case: the sweep (continuing from the
database), then the default schedule, the best recorded schedule (through `compile()`, which
picks the record up by its key) and `numpy.matmul`, each checked against numpy, timed side by
side with `benchmarks.harness.measure` (interleaved rounds, medians).

Each thread count runs in its own child process with OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and
MKL_NUM_THREADS set before numpy loads (and OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset, see
benchmarks/README.md); OPENBLAS_THREAD_TIMEOUT=4 and OMP_WAIT_POLICY=passive make idle worker
threads sleep instead of spinning into the next implementation's time (interleaved timing).
All cases share one database (<db-dir>/tune_matmul.sqlite): the thread count is part of the
tuning key, so records timed on 1 thread never stand for 2.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MATMUL = (ROOT / "examples" / "kernels" / "matmul.lw").read_text()
DEFAULT_CASES = ("1024x1024x1024@1", "1024x1024x1024@2", "127x1000x333@1", "4096x64x4096@1")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def parse_case(text: str) -> tuple[int, int, int, int]:
    """"MxKxN@T" -> (M, K, N, T); "@T" may be left out (1 thread)."""
    shape, _, threads = text.partition("@")
    try:
        m, k, n = (int(x) for x in shape.lower().split("x"))
        return m, k, n, int(threads or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a case is MxKxN@THREADS, not {text!r}") from None


def thread_env(threads: int) -> dict[str, str]:
    """The environment of a child measuring on `threads` threads."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env.update({var: str(threads) for var in THREAD_VARS})
    # Idle worker threads sleep at once: OpenBLAS's otherwise spin ~0.1 s after each call and
    # take a core from the OpenMP kernel timed next (2 threads: 96 instead of 200 GFLOP/s).
    env.update(OPENBLAS_THREAD_TIMEOUT="4", OMP_WAIT_POLICY="passive")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def db_path(db_dir: str) -> str:
    return str(Path(db_dir) / "tune_matmul.sqlite")


def trials_in(db: str, key: str) -> int:
    """How many measurements of the tuning key `key` the database holds (all sweeps)."""
    from loopweave.autotune.database import Database

    database = Database(db)
    try:
        return len(database.records(key))
    finally:
        database.close()


def micro_sizes(config_json: str) -> str:
    """The micro-kernel sizes of a record's configuration ("-" when it is not a micro-kernel)."""
    config = json.loads(config_json or "{}")
    if not config.get("C.micro"):
        return "loop nest" + (" +parallel" if config.get("C.parallel") else "")
    return "x".join(str(config.get(f"C.micro_{k}", "?")) for k in ("mr", "nr", "kc", "nc"))


def run_case(m: int, k: int, n: int, threads: int, args) -> dict:
    """Tune one shape, then time default, tuned and numpy side by side; print the table."""
    import numpy as np

    import loopweave
    from benchmarks.harness import Comparison, Work, format_table, measure
    from benchmarks.peers import compile_default, used_tuning_record

    sizes = {"M": m, "K": k, "N": n}
    db = db_path(args.db_dir)
    load_start = os.getloadavg()[0]
    start = time.time()
    result = loopweave.tune(MATMUL, sizes, trials=args.trials, db=db, timeout_s=args.timeout,
                            repeats=3)
    tune_s = time.time() - start
    if result.best is None:
        raise SystemExit(f"{m}x{k}x{n}: no correct schedule found")
    trials = trials_in(db, result.key)

    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
    b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
    want = a @ b
    default = compile_default(MATMUL)
    tuned = loopweave.compile(MATMUL, tuning_db=db)
    notes = []
    for name, kern in (("default", default), ("tuned", tuned)):
        np.testing.assert_allclose(kern(a, b), want, rtol=1e-3, atol=1e-3 * np.sqrt(k),
                                   err_msg=f"loopweave {name} differs from numpy")
    if not used_tuning_record(tuned):
        notes.append("tuned: compile() found no record for this key (ran the default)")
    timings = measure({"loopweave default": lambda: default(a, b),
                       "loopweave tuned": lambda: tuned(a, b),
                       "numpy": lambda: a @ b}, repeats=args.repeats)
    load_end = os.getloadavg()[0]
    notes.append(f"tuned record: {micro_sizes(result.best.config)} "
                 f"(sweep's own timing {result.gflops:.1f} GFLOP/s); {trials} trials in the "
                 f"database, {len(result.measured)} measured now in {tune_s:.0f} s")
    notes.append(f"load average (1 min) {load_start:.2f} before tuning, {load_end:.2f} after "
                 f"timing")
    flops = 2.0 * m * k * n
    cmp = Comparison("matmul fp32", f"M={m} K={k} N={n}, {threads} thread(s)", Work(flops=flops),
                     timings, tuple(notes))
    print(format_table(cmp), flush=True)
    gf = {name: flops / t.median / 1e9 for name, t in timings.items()}
    return {"shape": f"{m}x{k}x{n}", "threads": threads, "trials": trials,
            "default": gf["loopweave default"], "tuned": gf["loopweave tuned"],
            "numpy": gf["numpy"], "best": micro_sizes(result.best.config),
            "schedule": result.best.schedule, "load": [load_start, load_end]}


def summary(rows: list[dict]) -> str:
    """One line per case: GFLOP/s and the ratios to numpy."""
    lines = ["| shape MxKxN | threads | trials | default GFLOP/s | tuned GFLOP/s | numpy GFLOP/s"
             " | default vs numpy | tuned vs numpy | best record (MRxNRxKCxNC) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['shape']} | {r['threads']} | {r['trials']} | {r['default']:.1f} | "
                     f"{r['tuned']:.1f} | {r['numpy']:.1f} | {r['default'] / r['numpy']:.2f}x | "
                     f"{r['tuned'] / r['numpy']:.2f}x | {r['best']} |")
    return "\n".join(lines) + "\n"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--case", type=parse_case, action="append", metavar="MxKxN@T",
                   help="repeatable; default: " + " ".join(DEFAULT_CASES))
    p.add_argument("--trials", type=int, default=40, help="measurements per case (database)")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--repeats", type=int, default=9, help="interleaved timing rounds")
    p.add_argument("--db-dir", default=str(ROOT / "benchmarks" / "out"))
    p.add_argument("--json", help="also write the summary rows to this file")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return p


def main(argv=None) -> int:
    if str(ROOT) not in sys.path:  # run as a script: benchmarks/ is sys.path[0], not ROOT
        sys.path.insert(0, str(ROOT))
    args = parser().parse_args(argv)
    cases = args.case or [parse_case(c) for c in DEFAULT_CASES]
    Path(args.db_dir).mkdir(parents=True, exist_ok=True)
    if args.child:  # one thread count, environment already set by the parent
        rows = [run_case(*case, args) for case in cases]
        Path(args.json).write_text(json.dumps(rows))
        return 0
    from benchmarks.machine import compiler_version, cpu_model

    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; {compiler_version()}; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at start\n", flush=True)
    rows: list[dict] = []
    for threads in sorted({c[3] for c in cases}):
        mine = [f"{m}x{k}x{n}@{t}" for m, k, n, t in cases if t == threads]
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            cmd = [sys.executable, __file__, "--child", "--json", out.name, "--trials",
                   str(args.trials), "--timeout", str(args.timeout), "--repeats",
                   str(args.repeats), "--db-dir", args.db_dir]
            for case in mine:
                cmd += ["--case", case]
            if subprocess.run(cmd, env=thread_env(threads)).returncode != 0:
                return 1
            rows += json.loads(Path(out.name).read_text())
    print(summary(rows))
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at end")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
