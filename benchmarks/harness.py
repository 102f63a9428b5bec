"""Timing several implementations of one computation side by side.

    timings = measure({"numpy": lambda: a @ b, "loopweave": lambda: k(a, b)}, repeats=7)
    print(format_table(Comparison("matmul", "M=K=N=1024", Work(flops=2 * 1024**3), timings)))

`measure` interleaves the implementations: every round takes one sample of each, in an order
shuffled per round (seeded, so a run is repeatable), so slow drift of the machine (frequency,
other load, page cache) lands on all of them alike instead of on whichever ran last, and so does
what one implementation leaves behind for the next: in a fixed rotation each one mostly follows
the same neighbour (one thread, Xeon VM: a kernel timed right after numpy's OpenBLAS read 10%
slower than the same build timed elsewhere in the round). A sample is the mean of enough
back-to-back calls to last `min_sample_s`, so sub-millisecond kernels are not timer noise.

With more than one thread, each sample first waits `SETTLE_S` (`settle_s`): numpy's OpenBLAS
keeps its worker spinning for about 0.1 s after each call, torch's OpenMP pool a few ms, and a
sample taken in that window shares a core with the spinner. Two threads, Xeon VM, matmul
1024^3: loopweave 6.0 ms alone, 13.9 right after a numpy matmul; torch 5.8 and 10.2; the
suite's interleaved table then read loopweave's median at its one-thread time (spread 54%).
Waiting measures each implementation's own speed; how kernels fare beside a spinning pool is
benchmarks/thread_pools.py's table.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from loopweave.targets import openmp_threads


@dataclass(frozen=True)
class Timing:
    """Seconds per call of one implementation: the median and quartiles of the samples."""

    name: str
    samples: tuple[float, ...]
    calls_per_sample: int

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median (0.02 = the middle half within 2%)."""
        if len(self.samples) < 2:
            return 0.0
        q1, _, q3 = statistics.quantiles(self.samples, n=4, method="inclusive")
        return (q3 - q1) / self.median if self.median > 0 else 0.0


@dataclass(frozen=True)
class Work:
    """What one call does: floating-point (or integer) operations and bytes that must move."""

    flops: float = 0.0
    bytes: float = 0.0


@dataclass(frozen=True)
class Limits:
    """The machine's physical limits for the threads in use (measured, see machine.py)."""

    peak_flops: float  # operations per second of the cores in use
    bandwidth: float  # bytes per second of a streaming copy

    def min_time(self, work: Work) -> float:
        """Roofline lower bound: the time at least one of compute or memory traffic needs."""
        return max(work.flops / self.peak_flops, work.bytes / self.bandwidth)


@dataclass(frozen=True)
class Comparison:
    """One kernel at one size: every implementation's timing, measured in the same run."""

    kernel: str
    size: str
    work: Work
    timings: Mapping[str, Timing]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def ratio(self, name: str, peer: str) -> float:
        """How many times faster `name` is than `peer` (peer time / own time): the median of
        the rounds' ratios where both were sampled in the same rounds (`measure`), else of the
        medians. Paired by round, the ratio leaves out what the machine did between rounds (on
        a shared VM its speed drifts by 2x within minutes: a neighbour on the core's other
        hyperthread); the medians of the times alone keep a share of it."""
        paired = paired_ratio(self.timings[name].samples, self.timings[peer].samples)
        return paired or self.timings[peer].median / self.timings[name].median


def paired_ratio(own: tuple[float, ...] | list[float], other: tuple[float, ...] | list[float]
                 ) -> float | None:
    """The median over rounds of other[k] / own[k] (None unless both have the same number
    of positive samples), in logs: so that it is 1 / the reverse for an even number of rounds
    too."""
    if len(own) != len(other) or not own or not all(t > 0 for t in (*own, *other)):
        return None
    return math.exp(statistics.median(math.log(p / t) for p, t in zip(other, own, strict=True)))


#: The seed of the rounds' orders.
ORDER_SEED = 20261205

#: Seconds each sample waits first where several threads run (module docstring): longer than
#: OpenBLAS's spin after a call (10 ticks of CPU, then none, sampled every 20 ms).
SETTLE_S = 0.15


def _time_calls(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def measure(callables: Mapping[str, Callable[[], object]], *, repeats: int = 7, warmup: int = 1,
            min_sample_s: float = 0.02, max_calls: int = 1000,
            settle_s: float | None = None) -> dict[str, Timing]:
    """Time each zero-argument callable `repeats` times, interleaved (a shuffled order per
    round: module docstring); each Timing's k-th sample is from round k (`Comparison.ratio`).
    Each sample first waits `settle_s` (default: `SETTLE_S` where OpenMP runs more than one
    thread, `targets.openmp_threads()`, else none) for other libraries' spinning threads to sleep.

    Each callable first runs `warmup` times (building caches, faulting pages in); one more call
    sizes the number of back-to-back calls per sample so a sample lasts about `min_sample_s`.
    """
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    names = list(callables)
    calls = {}
    for name in names:
        for _ in range(warmup):
            callables[name]()
        first = _time_calls(callables[name], 1)
        calls[name] = max(1, min(max_calls, math.ceil(min_sample_s / max(first, 1e-9))))
    if settle_s is None:
        settle_s = SETTLE_S if openmp_threads() > 1 else 0.0
    samples: dict[str, list[float]] = {name: [] for name in names}
    order = random.Random(ORDER_SEED)
    for _ in range(repeats):
        for name in order.sample(names, len(names)):
            if settle_s:
                time.sleep(settle_s)
            samples[name].append(_time_calls(callables[name], calls[name]))
    return {n: Timing(n, tuple(samples[n]), calls[n]) for n in names}


def _rate(value: float, unit: float) -> str:
    return f"{value / unit:.2f}" if value else "-"


def format_table(cmp: Comparison, limits: Limits | None = None) -> str:
    """A markdown table: one row per implementation, a `vs <peer>` column for every other one.

    `vs numpy` = numpy's time / this row's, the median over the rounds (`Comparison.ratio`;
    above 1: this row is faster).
    `roofline` = the roofline lower bound / the median time (1.0 would be at the machine limit).
    """
    names = list(cmp.timings)
    head = ["impl", "median ms", "spread", "GFLOP/s", "GB/s"]
    if limits is not None:
        head.append("roofline")
    head += [f"vs {p}" for p in names]
    lines = [f"**{cmp.kernel}** ({cmp.size})", "", "| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for name in names:
        t = cmp.timings[name].median
        row = [name, f"{t * 1e3:.3f}", f"{cmp.timings[name].spread * 100:.1f}%",
               _rate(cmp.work.flops / t, 1e9), _rate(cmp.work.bytes / t, 1e9)]
        if limits is not None:
            row.append(f"{limits.min_time(cmp.work) / t:.2f}")
        row += ["" if p == name else f"{cmp.ratio(name, p):.2f}x" for p in names]
        lines.append("| " + " | ".join(row) + " |")
    if cmp.notes:
        lines.append("")
    lines += [f"- {n}" for n in cmp.notes]
    return "\n".join(lines) + "\n"


def geometric_mean(values: list[float]) -> float:
    """The geometric mean of positive numbers (nan for an empty list)."""
    if not values:
        return float("nan")
    return math.exp(sum(math.log(v) for v in values) / len(values))
