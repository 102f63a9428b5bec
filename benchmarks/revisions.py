"""Kernels built by two revisions of loopweave, side by side (before and after a change).

    .venv/bin/python -m benchmarks.revisions REV [KERNEL ...] [--against REV2] [--rounds 5]
        [--threads N] [--dataset LARGE] [--quick]

KERNEL: a suite kernel (`benchmarks.suite`; default: all of them) or a PolyBench one as
`polybench:NAME` (at `--dataset`). REV is any git revision (a commit, `HEAD~3`, a branch); the
other side is the working tree (uncommitted changes included) unless `--against` names a
second revision. A revision is checked out into a temporary git worktree, and each side gets a
package folder in which `loopweave` and its subpackages are links into that side's sources,
laid out as its own pyproject.toml's `[tool.setuptools.package-dir]` says. Only `loopweave`
differs between the sides: the kernels, their sizes and their inputs are this checkout's
(`benchmarks.suite`, examples/references/, examples/polybench/references/), so both build and
time the same thing.

In each round every kernel runs in one fresh process per side, the two right after each other
(which goes first alternates), each side with its own kernel cache and one thread for OpenMP,
BLAS and MKL unless `--threads` says more. A process builds the kernel with its default
schedule (no tuning record), checks its first result against the reference (first round),
then calls it back to back for `--seconds` (the `inout` arrays restored before each call,
untimed) and reports the median call. The table gives each side's median over the rounds and
the speedup: the median over rounds of REV's time / the other side's
(`harness.paired_ratio`; above 1: the other side is faster), so drift of a shared machine
between the pairs stays out of the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import paired_ratio
from benchmarks.machine import cpu_model, load_average
from benchmarks.suite import ROOT, SUITE

#: Stands for the checkout's files as they are on disk.
WORKING_TREE = "working tree"


@dataclass(frozen=True)
class Side:
    """One build of loopweave: its label, the folder its package is imported from, its cache."""

    label: str
    package_path: Path
    cache_dir: Path


def package_folders(pyproject: str) -> dict[str, str]:
    """The `"package" = "folder"` lines of pyproject.toml's package-dir table (read by hand:
    Python 3.10, which the project supports, has no TOML reader)."""
    table = re.search(r"^\[tool\.setuptools\.package-dir\]\n(.*?)(?:^\[|\Z)", pyproject,
                      re.MULTILINE | re.DOTALL)
    if table is None:
        raise SystemExit("pyproject.toml has no [tool.setuptools.package-dir] table")
    return dict(re.findall(r'^"([\w.]+)"\s*=\s*"([^"]+)"', table.group(1), re.MULTILINE))


def link_package(source_root: Path, into: Path) -> None:
    """Lay out the `loopweave` package of the sources at `source_root` under `into` as links, as
    its pyproject.toml's package-dir table maps packages to folders."""
    package_dirs = package_folders((source_root / "pyproject.toml").read_text())
    # Parents first: a subpackage's link goes inside its parent's folder.
    for package, folder in sorted(package_dirs.items(), key=lambda item: item[0].count(".")):
        target = into.joinpath(*package.split("."))
        if "." not in package:
            target.mkdir(parents=True)
            for entry in (source_root / folder).iterdir():
                if entry.name != "__pycache__":
                    (target / entry.name).symlink_to(entry)
        else:
            target.symlink_to(source_root / folder)


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout.strip()


def prepare_side(revision: str, scratch: Path) -> Side:
    """Check out `revision` (or use the working tree) and link its package under `scratch`."""
    if revision == WORKING_TREE:
        sources, label = ROOT, WORKING_TREE
    else:
        short = _git("rev-parse", "--short", revision)
        label = revision if short.startswith(revision) else f"{revision} ({short})"
        sources = scratch / "tree"
        _git("worktree", "add", "--detach", "--quiet", str(sources), revision)
    link_package(sources, scratch / "package")
    return Side(label, scratch / "package", scratch / "cache")


def remove_worktrees(scratch_dirs: list[Path]) -> None:
    """Take the temporary worktrees out of git's list (their folders go with the scratch)."""
    for scratch in scratch_dirs:
        if (scratch / "tree").exists():
            _git("worktree", "remove", "--force", str(scratch / "tree"))
    _git("worktree", "prune")


def time_side(side: Side, kernels: list[str], threads: int, seconds: float, check: bool,
              quick: bool = False, dataset: str = "LARGE") -> dict[str, float]:
    """One process of `side`: each kernel's median call in seconds."""
    thread_env = {name: str(threads) for name in
                  ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    env = {**os.environ, **thread_env, "LOOPWEAVE_CACHE_DIR": str(side.cache_dir),
           "PYTHONPATH": os.pathsep.join([str(side.package_path), str(ROOT)])}
    command = [sys.executable, "-m", "benchmarks.revisions", "--child", json.dumps(kernels),
               "--seconds", str(seconds), *([] if check else ["--no-check"]),
               *(["--quick"] if quick else []), "--dataset", dataset]
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"{side.label}: the timing process failed:\n{run.stderr[-3000:]}")
    report = json.loads(run.stdout.strip().splitlines()[-1])
    expected = side.package_path / "loopweave"
    if Path(report["package"]) != expected:
        raise SystemExit(f"{side.label}: imported loopweave from {report['package']}, "
                         f"not from {expected}")
    return report["medians"]


#: Names of PolyBench kernels start with this (`polybench:gemm`); the rest are suite kernels,
#: or DSL files with sizes (`examples/kernels/qmm.lw@M=512,K=512,N=512`).
POLYBENCH_PREFIX = "polybench:"


@dataclass
class Measured:
    """A kernel as one side's process builds, checks and times it."""

    source: str
    inputs: dict  # the call's arguments, in order
    inouts: tuple[str, ...]  # the arguments restored before every call
    check: Callable[[object], None]  # raises SystemExit where the kernel's result is wrong


def _reference_check(name: str, refs, case, inputs, sizes):
    # (a revision before `Case.noise` has no noise to skip)
    noise = case.noise_at(sizes) if hasattr(case, "noise_at") else ()

    def check(kernel):
        import numpy as np

        args = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in inputs.items()}
        got = refs.results_of(case, args, kernel(*args.values()))
        for out, want in case.expected(inputs).items():
            if out in noise:  # rounding noise (PolyBench's gramschmidt)
                continue
            err, ok = refs.compare(np.asarray(got[out]).astype(want.dtype), want, case.tol_scale)
            if not ok:
                raise SystemExit(f"{name} ({out}) differs from the reference by {err:g}")
    return check


def measured(name: str, quick: bool, dataset: str) -> Measured:
    """What `name` (a suite or PolyBench kernel, or a DSL file with sizes) builds and runs."""
    from loopweave.examples import load_polybench_references, load_references

    if "@" in name:  # random inputs, checked against the kernel in program order
        from loopweave import cli, compile
        from loopweave.driver import front_end
        from loopweave.passes.schedule import Schedule

        path, _, sizes_text = name.partition("@")
        source = Path(path).read_text()
        ir = front_end(source)
        sizes = {k: int(v) for k, v in (kv.split("=") for kv in sizes_text.split(",") if kv)}
        inputs = cli.random_arguments(ir, sizes, 0)

        def check(kernel):
            reference = compile(source, schedule=Schedule(), tuning_db=False)
            want = cli.call_results(ir, reference, inputs)
            got = cli.call_results(ir, kernel, inputs)
            for out, expected in want.items():
                err, ok = cli._compare(got[out], expected)
                if not ok:
                    raise SystemExit(f"{name} ({out}) differs from program order by {err:g}")
        inouts = tuple(a.name for a in ir.args if getattr(a, "role", "") == "inout")
        return Measured(source, inputs, inouts, check)
    if name.startswith(POLYBENCH_PREFIX):
        refs = load_polybench_references()
        case = refs.POLYBENCH[name[len(POLYBENCH_PREFIX):]]
        sizes = case.datasets["MINI" if quick else dataset]
    else:
        refs = load_references()
        bench = SUITE[name]
        case = refs.KERNELS[bench.case]
        sizes = bench.quick_sizes if quick else bench.sizes
    inputs = case.make_inputs(sizes, 0)
    return Measured(case.source(), inputs, tuple(case.inouts),
                    _reference_check(name, refs, case, inputs, sizes))


def child(kernels: list[str], seconds: float, check: bool, quick: bool,
          dataset: str = "LARGE") -> dict:
    """Build, check and time `kernels` with the loopweave on sys.path (run by `time_side`).
    The `inout` arrays get their first values back before every call, untimed."""
    import numpy as np

    import loopweave

    medians = {}
    for name in kernels:
        m = measured(name, quick, dataset)
        kernel = loopweave.compile(m.source, tuning_db=False)
        if check:
            m.check(kernel)
        pristine = {k: m.inputs[k].copy() for k in m.inouts}
        values = list(m.inputs.values())
        kernel(*values)
        calls = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline or len(calls) < 10:
            for k, first in pristine.items():
                np.copyto(m.inputs[k], first)
            start = time.perf_counter()
            kernel(*values)
            calls.append(time.perf_counter() - start)
        medians[name] = statistics.median(calls)
    return {"package": str(Path(loopweave.__file__).parent), "medians": medians}


def compare(before: Side, after: Side, kernels: list[str], *, rounds: int, threads: int,
            seconds: float, quick: bool = False, dataset: str = "LARGE"
            ) -> dict[str, dict[str, list[float]]]:
    """Per side and kernel, the median call of each round: in a round, each kernel is timed
    by one process of each side right after the other (the first side alternating), so that
    the machine's drift falls between the pairs, not within them."""
    times: dict[str, dict[str, list[float]]] = {s.label: {k: [] for k in kernels}
                                                for s in (before, after)}
    for number in range(rounds):
        for place, kernel in enumerate(kernels):
            order = (before, after) if (number + place) % 2 == 0 else (after, before)
            for side in order:
                medians = time_side(side, [kernel], threads, seconds, number == 0, quick,
                                    dataset)
                times[side.label][kernel].append(medians[kernel])
        print(f"round {number + 1}/{rounds} done, load average {load_average()}",
              file=sys.stderr, flush=True)
    return times


def table(before: Side, after: Side, kernels: list[str],
          times: dict[str, dict[str, list[float]]]) -> str:
    """The markdown table: each side's median over the rounds, and the paired speedup."""
    lines = [f"| kernel | {before.label} ms | {after.label} ms | speedup |",
             "|---|---:|---:|---:|"]
    for kernel in kernels:
        old, new = times[before.label][kernel], times[after.label][kernel]
        speedup = paired_ratio(new, old) or statistics.median(old) / statistics.median(new)
        lines.append(f"| {kernel} | {statistics.median(old) * 1e3:.3f} | "
                     f"{statistics.median(new) * 1e3:.3f} | {speedup:.3f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the rounds, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", nargs="?", help="the revision measured first (before)")
    parser.add_argument("kernels", nargs="*",
                        help=f"suite kernels (default: all of {sorted(SUITE)}), PolyBench "
                        f"ones as {POLYBENCH_PREFIX}NAME, DSL files as PATH.lw@M=512,N=256")
    parser.add_argument("--dataset", default="LARGE", help="PolyBench kernels' dataset")
    parser.add_argument("--against", default=WORKING_TREE,
                        help="the revision measured after (default: the working tree)")
    parser.add_argument("--rounds", type=int, default=5, help="processes per side")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=1.5, help="timed calls per kernel")
    parser.add_argument("--quick", action="store_true", help="the kernels' small sizes: a smoke "
                        "test, not figures")
    parser.add_argument("--no-check", action="store_true", help="skip the first result's check")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.child is not None:
        print(json.dumps(child(json.loads(opts.child), opts.seconds, not opts.no_check,
                                opts.quick, opts.dataset)))
        return 0
    if opts.revision is None:
        parser.error("name the revision to compare against")
    unknown = [k for k in opts.kernels
               if k not in SUITE and not k.startswith(POLYBENCH_PREFIX) and "@" not in k]
    if unknown:
        parser.error(f"not suite kernels: {unknown}; choose from {sorted(SUITE)}, name "
                     f"PolyBench kernels as {POLYBENCH_PREFIX}NAME or DSL files as "
                     "PATH.lw@M=512,N=256")
    for spec in (k for k in opts.kernels if "@" in k):
        path, _, sizes = spec.partition("@")
        if not Path(path).is_file() or not re.fullmatch(r"(\w+=\d+)(,\w+=\d+)*", sizes):
            parser.error(f"{spec!r}: expected an existing DSL file and its sizes, "
                         "PATH.lw@M=512,N=256")
    # (a DSL file's path from where the command runs: the processes run in the checkout)
    kernels = [str(Path(k.partition("@")[0]).resolve()) + "@" + k.partition("@")[2]
               if "@" in k else k for k in opts.kernels] or list(SUITE)
    with tempfile.TemporaryDirectory(prefix="lw-revisions-") as tmp:
        scratch = [Path(tmp) / "before", Path(tmp) / "after"]
        try:
            before = prepare_side(opts.revision, scratch[0])
            after = prepare_side(opts.against, scratch[1])
            print(f"# {before.label} -> {after.label}: {cpu_model()}, {opts.threads} thread(s), "
                  f"{opts.rounds} rounds, load average {load_average()} at start")
            times = compare(before, after, kernels, rounds=opts.rounds, threads=opts.threads,
                            seconds=opts.seconds, quick=opts.quick, dataset=opts.dataset)
        finally:
            remove_worktrees(scratch)
    print(table(before, after, kernels, times))
    print(f"load average at end {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
