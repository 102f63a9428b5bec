"""The `loopweave` command: one subcommand per module, each registering its own parser.

    loopweave --version
    loopweave show kernel.lw [--stage ir|schedule|loops|source] [--target cpu] [--kernel NAME]
    loopweave run kernel.lw --size M=5 --size K=3 --size N=4 [--target cpu] [--seed 0]
    loopweave emit ... | tune ... | db ...                       (compiler/emit.py, autotune/cli.py)

Each module of SUBCOMMANDS defines `register(subparsers)`, which adds its parser(s) and sets
`handler=` (a function args -> exit status) as a default. Exit status: 0 done, 1 the kernel or
the work failed (a compile error, a mismatch), 2 a bad argument (printed as one line).
docs/cli.md describes every subcommand.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import loopweave
from loopweave import emit
from loopweave.autotune import cli as tune_cli
from loopweave.autotune.cli import check_target, parse_sizes, read_source
from loopweave.driver import compile, front_end, stages
from loopweave.errors import ArgumentTypeError, ArgumentValueError, LoopweaveError
from loopweave.examples import load_references
from loopweave.ir.expr import evaluate
from loopweave.ir.kernel import KernelIR, ScalarArg, Tensor
from loopweave.passes.schedule import Schedule


def register(subparsers) -> None:
    show = subparsers.add_parser("show", help="print a stage of the compilation of a kernel")
    show.add_argument("file", help="DSL source file")
    show.add_argument("--kernel", help="which kernel of the file (when it defines several)")
    show.add_argument("--target", default="cpu")
    show.add_argument("--stage", default="source", choices=("ir", "schedule", "loops", "source"),
                      help="the checked IR, the schedule tree, the loop AST or the generated "
                           "source (default)")
    show.set_defaults(handler=_show)

    run = subparsers.add_parser(
        "run", aliases=["check"],
        help="compile a kernel and check it on random inputs against program order")
    run.add_argument("file", help="DSL source file")
    run.add_argument("--kernel", help="which kernel of the file (when it defines several)")
    run.add_argument("--size", action="append", default=[], metavar="NAME=VALUE",
                     help="a size (repeat for each size symbol of the kernel)")
    run.add_argument("--target", default="cpu")
    run.add_argument("--seed", type=int, default=0, help="of the random inputs")
    run.add_argument("--db", help="tuning database to take a schedule from, as compile() "
                                  "(default: $LOOPWEAVE_TUNE_DB or the cache's)")
    run.set_defaults(handler=_run)


def _show(args) -> int:
    source = read_source(args.file)
    result = stages(source, check_target(args.target), kernel=args.kernel)
    print(dict(result.dumps).get(args.stage, ""))
    return 0


# -- run: the compiled kernel against program order -----------------------------------------------

def _run(args) -> int:
    source = read_source(args.file)
    target = check_target(args.target)
    ir = front_end(source, args.kernel)
    sizes = parse_sizes(args.size, ir)
    kernel = compile(source, target, kernel=args.kernel, tuning_db=args.db)
    reference = compile(source, "cpu", kernel=args.kernel, schedule=Schedule(), tuning_db=False)
    inputs = random_arguments(ir, sizes, args.seed)
    got = call_results(ir, kernel, inputs)
    want = call_results(ir, reference, inputs)
    shown = ", ".join(f"{k}={v}" for k, v in sizes.items())
    print(f"{ir.name} on {target} at {shown} (seed {args.seed}) against program order on cpu:")
    all_ok = True
    for name, expected in want.items():
        error, ok = _compare(got[name], expected)
        all_ok &= ok
        scale = float(np.max(np.abs(expected.astype(np.float64)))) if expected.size else 0.0
        print(f"  {name}: max error {error:.3g} (largest reference value {scale:.3g}): "
              f"{'ok' if ok else 'MISMATCH'}")
    return 0 if all_ok else 1


def random_arguments(ir: KernelIR, sizes: dict[str, int], seed: int) -> dict[str, object]:
    """Call arguments of `ir` at `sizes`, in call order: uniform floats in [-1, 1), small
    integers, and integer scalars from `sizes` (1 where not given)."""
    rng = np.random.default_rng(seed)
    values = {p: sizes.get(p, 1) for p in ir.params}
    args: dict[str, object] = {}
    for a in ir.args:
        dtype = a.dtype.numpy
        if isinstance(a, ScalarArg):
            args[a.name] = dtype.type(values.get(a.name, 1) if a.dtype.is_int else 0.5)
            continue
        shape = tuple(evaluate(d, values) for d in a.shape)
        if a.dtype.kind == "bool":
            args[a.name] = rng.random(shape) < 0.5
        elif a.dtype.is_int:
            low = 0 if a.dtype.kind == "uint" else -8
            args[a.name] = rng.integers(low, 8, size=shape).astype(dtype)
        else:
            args[a.name] = rng.uniform(-1, 1, size=shape).astype(dtype)
    return args


def call_results(ir: KernelIR, kernel, inputs: dict[str, object]) -> dict[str, np.ndarray]:
    """Call `kernel` on copies of `inputs`; its outputs and the final inout arrays by name."""
    args = {k: np.array(v, copy=True) for k, v in inputs.items()}
    ret = kernel(*args.values())
    outputs = [t.name for t in ir.outputs]
    returned = ret if len(outputs) > 1 else (ret,)
    results = {name: np.asarray(r) for name, r in zip(outputs, returned, strict=False)}
    results.update({a.name: args[a.name] for a in ir.args
                    if isinstance(a, Tensor) and a.role == "inout"})
    return results


def _compare(got: np.ndarray, expected: np.ndarray) -> tuple[float, bool]:
    """(max abs error, within tolerance) with the example references' tolerances per dtype."""
    refs = load_references()
    if refs is not None:
        return refs.compare(got, expected)
    got, expected = got.astype(np.float64), expected.astype(np.float64)
    if got.shape != expected.shape:
        return float("inf"), False
    error = float(np.max(np.abs(got - expected))) if got.size else 0.0
    return error, bool(np.allclose(got, expected, rtol=1e-4, atol=1e-5))


# -- the command ----------------------------------------------------------------------------------

SUBCOMMANDS = (sys.modules[__name__], emit, tune_cli)  # show, run; emit; tune and db


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block) with exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The `loopweave` parser with every subcommand."""
    parser = _Parser(prog="loopweave", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"loopweave {loopweave.__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `loopweave` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ArgumentValueError, ArgumentTypeError, FileNotFoundError, IsADirectoryError,
            NotADirectoryError) as e:  # a bad argument (a missing file included)
        return _fail(args, f"error: {e}", 2)
    except (LoopweaveError, OSError) as e:
        return _fail(args, str(e), 1)


def _fail(args, message: str, status: int) -> int:
    print(f"loopweave {args.command}: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
