"""Long-running fuzzer of the front end, run by hand from the repository root:

    python -m tests.fuzz.atheris_frontend --runs 100000            # atheris if installed
    python -m tests.fuzz.atheris_frontend --engine random --runs 100000 --seed 7
    python -m tests.fuzz.atheris_frontend --engine random --replay 7:4711   # one input again

Every input is a mutated example kernel (tests/fuzz/mutations.py) given to `driver.stages()`
(parse, check, schedule, lower, render: no build); every `--build-every`-th input that passes the
front end is also built with gcc by `loopweave.compile()`. The outcome must follow
`mutations.check_outcome`: a result, or a `LoopweaveError` with a position inside the text.

Engines:
* atheris (coverage-guided; `pip install atheris`): libFuzzer's byte mutations plus the
  token-level ones of mutations.py (a custom mutator), seeded with examples/kernels/*.lw.
  libFuzzer's own flags pass through after `--`, e.g. `-- -max_total_time=600`.
* random (always available): input i is `mutate(example, Random(f"{seed}:{i}"))`, so any input
  can be replayed from its seed and index alone. Failures are written to `--out`.

A watchdog thread ends the process (exit status 3, the input saved) when one input runs longer
than `--time-limit` seconds, so a hang inside a C call (isl, gcc) is caught too.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import threading
import time
import traceback
from pathlib import Path

from .mutations import SOURCES, check_outcome, mutate

try:
    import atheris
except ImportError:  # the random engine needs nothing
    atheris = None


class Runner:
    """Runs inputs one at a time under a watchdog, counting them and saving the failures."""

    def __init__(self, out: Path, time_limit: float, build_every: int, progress: int):
        self.out = out
        self.progress = progress
        self.started = time.monotonic()
        self.time_limit = time_limit
        self.build_every = build_every
        self.count = self.passed_front_end = self.built = self.failures = 0
        self.current: tuple[str, float] | None = None
        self.lock = threading.Lock()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while True:
            time.sleep(1.0)
            with self.lock:
                current = self.current
            if current and time.monotonic() - current[1] > self.time_limit:
                path = self.save(current[0], "hang")
                print(f"HANG: an input ran over {self.time_limit} s; saved to {path}",
                      file=sys.stderr, flush=True)
                os._exit(3)

    def save(self, text: str, kind: str) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        data = text.encode("utf-8", "surrogatepass")
        path = self.out / f"{kind}-{hashlib.sha256(data).hexdigest()[:16]}.lw"
        path.write_bytes(data)
        return path

    def run(self, text: str) -> None:
        """Check one input; raises AssertionError (or anything else) on a failure."""
        from loopweave import compile as lw_compile
        from loopweave.driver import stages

        with self.lock:
            self.current = (text, time.monotonic())
        try:
            result = check_outcome(text, stages, seconds=self.time_limit)
            self.count += 1
            if self.count % self.progress == 0:
                print(self.report(), flush=True)
            if isinstance(result, Exception):
                return
            self.passed_front_end += 1
            if self.build_every and self.passed_front_end % self.build_every == 0:
                check_outcome(text, lambda t: lw_compile(t, cflags="-O1"), self.time_limit)
                self.built += 1
        finally:
            with self.lock:
                self.current = None

    def report(self) -> str:
        return (f"{self.count} inputs in {time.monotonic() - self.started:.0f} s: "
                f"{self.passed_front_end} passed the front end, {self.built} built with gcc, "
                f"{self.failures} failure(s)")


def decode(data: bytes) -> str:
    """Bytes as text: UTF-8, lone surrogates kept; bytes that are not UTF-8 become escapes."""
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("utf-8", "surrogateescape")


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def random_engine(runner: Runner, args) -> int:
    indices = [args.replay_index] if args.replay_index is not None else range(args.runs)
    for i in indices:
        text = mutate(random.Random(f"{args.seed}:{i}").choice(SOURCES),
                      random.Random(f"{args.seed}:{i}:edits"))
        try:
            runner.run(text)
        except Exception:  # noqa: BLE001 - every failure is recorded, then the next input runs
            runner.failures += 1
            path = runner.save(text, "failure")
            print(f"FAILURE at input {args.seed}:{i} (saved to {path}):\n"
                  f"{traceback.format_exc()}", file=sys.stderr, flush=True)
    print(runner.report(), flush=True)
    return 1 if runner.failures else 0


def atheris_engine(runner: Runner, args, libfuzzer_args: list[str]) -> int:
    corpus = args.out / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for path in (Path(__file__).resolve().parents[2] / "examples" / "kernels").glob("*.lw"):
        (corpus / path.name).write_bytes(path.read_bytes())

    def test_one_input(data: bytes) -> None:
        runner.run(decode(data))

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if rng.random() < 0.3:  # libFuzzer's byte-level mutations
            return atheris.Mutate(data, max_size)
        text = decode(data) if data and rng.random() < 0.7 else rng.choice(SOURCES)
        return encode(mutate(text, rng))[:max_size]

    import loopweave.driver  # noqa: F401 - loaded before instrumenting, for coverage

    atheris.instrument_all()  # coverage feedback from every Python function loaded so far
    argv = [sys.argv[0], f"-runs={args.runs}", f"-max_len={args.max_len}",
            f"-artifact_prefix={args.out}/", *libfuzzer_args, str(corpus)]
    atheris.Setup(argv, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()  # never returns: libFuzzer prints "Done N runs in T second(s)" and exits
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    own, libfuzzer_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) \
        if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.atheris_frontend",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["auto", "atheris", "random"], default="auto")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--replay", help="SEED:INDEX of one input of the random engine")
    parser.add_argument("--time-limit", type=float, default=60.0,
                        help="seconds one input may run before it counts as a hang")
    parser.add_argument("--build-every", type=int, default=20,
                        help="build every N-th input that passes the front end (0: never)")
    parser.add_argument("--max-len", type=int, default=200_000)
    parser.add_argument("--progress", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=Path("fuzz-out"),
                        help="where failures, hangs and the atheris corpus go")
    args = parser.parse_args(own)
    args.replay_index = None
    if args.replay:
        seed, index = args.replay.split(":")
        args.seed, args.replay_index = int(seed), int(index)
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if atheris is not None and args.replay is None else "random"
    if engine == "atheris" and atheris is None:
        parser.error("atheris is not installed (pip install atheris); use --engine random")
    os.environ.setdefault("LOOPWEAVE_CACHE_DIR", str(args.out.resolve() / "cache"))
    runner = Runner(args.out, args.time_limit, args.build_every, args.progress)
    print(f"engine {engine}, {args.runs} runs, seed {args.seed}", flush=True)
    if engine == "random":
        return random_engine(runner, args)
    return atheris_engine(runner, args, libfuzzer_args)


if __name__ == "__main__":
    sys.exit(main())
