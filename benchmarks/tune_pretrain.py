"""Regenerate the cost model shipped for the host CPU (autotune/pretrained_cpu.txt).

    .venv/bin/python -m benchmarks.tune_pretrain [--trials 40] [--db benchmarks/out/pretrain.sqlite]
        [--kernels NAME ...] [--scales 0.5 ...] [--random N --random-seed S]
        [--rows N --rows-seed S] [--work FLOPS] [--budget SECONDS] [--train-only]
        [--drop PREFIX ...] [--out MODEL_FILE]

Random sweeps of the example kernels (examples/kernels/*.lw) at `--scales` times their demo
sizes (default half; with `--work`, each kernel at the largest scale from half to four times
whose operation count stays within it), of `--random` kernels of the differential fuzzer's
generator (tests/fuzz/random_kernels.py) at sizes that give each about a million operations
(or `--work`), and of `--rows` row-wise kernels (the shape of normalization layers:
tests/fuzz/row_kernels.py) at `--rows-elements`; one thread, every measurement into the
database; then a LightGBM model is fitted on every correct record of the current feature
version but those of the held-out kernels of the model report (benchmarks/tune_model.py:
matmul, conv2d, softmax), so that report measures the model on kernels it has not seen (their
records may be in the database: `loopweave model eval` and benchmarks/tune_features_ab.py use
them), and written to autotune/pretrained_cpu.txt (or `--out`). Re-running adds to the
database (the sweeps continue); `--train-only` only fits.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the fuzzer's generator is in tests/
    sys.path.insert(0, str(ROOT))
HELD_OUT = ("matmul", "conv2d", "softmax")


#: Demo sizes up to this are a kernel's shape, not its size (a 3 x 3 window, a batch of one):
#: they are kept at every scale.
SHAPE_SIZE = 4


def training_sizes(case, scale: float = 0.5) -> dict[str, int]:
    """`scale` times the demo sizes (at least 4; a time loop's T half that; sizes up to
    SHAPE_SIZE as they are). Sessions before 31 scaled those too (a conv's 3 x 3 window
    became 4 x 4 at every scale), so the kept database (data/pretrain_cpu.sqlite.gz) has
    such keys."""
    return {k: v if v <= SHAPE_SIZE and k != "T" else
            max(4, int(v * scale)) if k != "T" else max(1, int(v * scale / 2))
            for k, v in case.demo_sizes.items()}


def random_case(seed: int, work: float = 1e6) -> tuple[str, dict[str, int]] | None:
    """The fuzzer's random kernel of `seed` with every size set to one value n, the largest
    (up to 4096) whose operation count stays within `work`; None for a kernel without sizes
    or one the front end refuses."""
    from loopweave.autotune.features import flop_count
    from loopweave.errors import LoopweaveError
    from loopweave.pipeline import front_end
    from tests.fuzz.random_kernels import generate

    spec = generate(seed)
    source = spec.source()
    try:
        kernel = front_end(source)
    except LoopweaveError:
        return None
    # a time loop that runs at least twice
    scalars = {name: max(2, int(spec.scalar_values.get(name, 1))) if name == "T"
               else int(spec.scalar_values.get(name, 1)) for name, _ in spec.scalars}
    if not spec.sizes:
        return None
    floor = {name: int(a.partition(" >= ")[2]) for a in spec.assumes
             for name in [a.partition(" >= ")[0]]}
    best = None
    for n in (4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 2048, 4096):
        sizes = {name: max(n, floor.get(name, 0)) for name in spec.sizes} | scalars
        if flop_count(kernel, sizes) > work:
            break
        best = sizes
    # below 16 a call takes microseconds: its timings say more about the noise than the schedule
    return (source, best) if best and max(best[n] for n in spec.sizes) >= 16 else None


def work_scale(case, work: float) -> float:
    """The largest scale 2^(k/4) from 0.5 to 4 at which `case` does at most `work`
    operations (0.5 where even that does more)."""
    from loopweave.autotune.features import flop_count
    from loopweave.pipeline import front_end

    kernel = front_end(case.source())
    scales = [2 ** (k / 4) for k in range(-4, 9)]
    fits = [s for s in scales if flop_count(kernel, training_sizes(case, s)) <= work]
    return max(fits, default=0.5)


def row_case(seed: int, elements: int) -> tuple[str, str, dict[str, int]]:
    """(name, source, sizes) of the row-wise kernel of `seed` at training sizes."""
    from tests.fuzz.row_kernels import generate, training_sizes

    spec = generate(seed)
    return spec.name, spec.source(), training_sizes(spec, seed, elements)


def main(argv=None) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    warnings.simplefilter("ignore")  # the random kernels' DSL warnings are not news here
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40, help="measurements per kernel")
    parser.add_argument("--db", default=str(ROOT / "benchmarks" / "out" / "pretrain.sqlite"))
    parser.add_argument("--kernels", nargs="*", help="default: every example kernel but the "
                        "held-out ones; none when given no names")
    parser.add_argument("--scales", type=float, nargs="*", default=[0.5],
                        help="size scales of the example kernels (times their demo sizes)")
    parser.add_argument("--random", type=int, default=0, help="random kernels to sweep too")
    parser.add_argument("--random-seed", type=int, default=0, help="the first one's seed")
    parser.add_argument("--rows", type=int, default=0, help="row-wise kernels to sweep too")
    parser.add_argument("--rows-seed", type=int, default=0, help="the first one's seed")
    parser.add_argument("--rows-elements", type=int, default=1 << 19,
                        help="elements of a row-wise kernel's input")
    parser.add_argument("--work", type=float, help="operations per call: sizes the example "
                        "kernels (instead of --scales) and the random ones (default 1e6)")
    parser.add_argument("--budget", type=float, default=1e9, help="stop starting sweeps after "
                        "this many seconds")
    parser.add_argument("--drop", nargs="*", default=[], metavar="PREFIX",
                        help="train without the records of kernels whose names start so")
    parser.add_argument("--out", type=Path, help="write the model here instead of "
                        "autotune/pretrained_cpu.txt")
    parser.add_argument("--train-only", action="store_true", help="fit on the database as it is")
    args = parser.parse_args(argv)

    from loopweave.autotune import Database, tune
    from loopweave.autotune.model import CostModel
    from loopweave.examples import load_references

    cases = load_references().KERNELS
    names = ([] if args.train_only else args.kernels if args.kernels is not None
             else [n for n in cases if n not in HELD_OUT])
    if args.work:
        jobs = [(name, cases[name].source(),
                 training_sizes(cases[name], work_scale(cases[name], args.work)))
                for name in names]
    else:
        jobs = [(name, cases[name].source(), training_sizes(cases[name], scale))
                for scale in args.scales for name in names]
    if not args.train_only:
        for seed in range(args.random_seed, args.random_seed + args.random):
            found = random_case(seed, args.work or 1e6)
            if found:
                jobs.append((f"fz{seed}", *found))
        for seed in range(args.rows_seed, args.rows_seed + args.rows):
            jobs.append(row_case(seed, args.rows_elements))
    start = time.time()
    for name, source, sizes in jobs:
        if time.time() - start > args.budget:
            print(f"budget spent; skipping {name} and the rest", file=sys.stderr)
            break
        try:
            r = tune(source, sizes, trials=args.trials, db=args.db,
                     strategy="random", timeout_s=5.0, repeats=3, progress=False)
        except Exception as e:  # one kernel the tuner cannot handle must not stop the rest
            print(f"{name}: {type(e).__name__}: {e}", file=sys.stderr)
            continue
        best = f"{r.best.median_s * 1e3:.3g} ms" if r.best else "none correct"
        print(f"{name:12s} {sizes}: {len(r.measured)} new, best {best}", flush=True)
    with Database(args.db) as db:
        records = [r for r in db.records(status="ok") if r.kernel_name not in HELD_OUT
                   and not r.kernel_name.startswith(tuple(args.drop))]
    model = CostModel.fit(records)
    if not model.trained:
        print(f"too few correct records ({len(records)}) to train", file=sys.stderr)
        return 1
    if args.out:
        model.save_pretrained(args.out)
    else:
        model.save_pretrained()
    print(f"trained on {model.records} records of {len({r.key for r in records})} kernel keys; "
          f"wrote {args.out or 'autotune/pretrained_cpu.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
