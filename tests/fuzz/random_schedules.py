"""Random legal schedules for the backend fuzzer's `cpu-random` target
(tests/fuzz/differential.py).

`random_schedule(kernel_ir, rng)` draws up to `steps` scheduling steps (tile, split, reorder,
parallel, vectorize, unroll, fuse, compute_at, distribute, skew, reassociate, cache_read,
cache_write, separate, order, align) on random statements and loops; a step the schedule
refuses (`ScheduleError`: it would break a dependence, or does not apply) is dropped, so only
legal schedules come out. The same `rng` state gives the same schedule.
"""

from __future__ import annotations

import random

import loopweave
from loopweave import ScheduleError
from loopweave.ir.expr import loads
from loopweave.passes.schedule import argument_tensors


def random_schedule(kernel_ir, rng: random.Random, steps: int = 6) -> loopweave.Schedule:
    """Up to `steps` random scheduling steps on `kernel_ir`, each kept only if the schedule
    with it still applies (a step that breaks a dependence raises ScheduleError: dropped)."""
    kept = loopweave.Schedule()
    for _ in range(steps):
        step = _random_step(kernel_ir, kept, rng)
        if step is None:
            continue
        trial = loopweave.Schedule(list(kept.steps))
        try:
            step(trial)
            trial.apply(kernel_ir)
        except ScheduleError:
            continue
        kept = trial
    return kept


def _random_step(kernel_ir, sched: loopweave.Schedule, rng: random.Random):
    """One random step (a function that adds it to a schedule), or None."""
    split, placements = sched.placed(kernel_ir)  # with the pieces of `separate` steps
    stmts = [s for s in split.statements if not s.is_init and placements[s.name].loops]
    if not stmts:
        return None
    s = rng.choice(stmts)
    loops = placements[s.name].names()
    loop = rng.choice(loops)
    written = sorted({st.lhs.tensor for st in kernel_ir.statements})
    kind = rng.choice(("tile", "tile", "reorder", "reorder", "parallel", "vectorize", "unroll",
                       "fuse", "compute_at", "distribute", "skew", "reassociate", "split",
                       "cache_read", "cache_write", "separate", "order", "align"))
    name = s.name
    if kind == "tile":
        picked = rng.sample(loops, min(len(loops), rng.randint(1, 2)))
        sizes = {v: rng.choice((2, 3, 4, 5, 8)) for v in picked}
        return lambda sc: sc.tile(name, **sizes)
    if kind == "split":
        factor = rng.choice((2, 3, 4))
        return lambda sc: sc.split(name, loop, factor)
    if kind == "reorder" and len(loops) > 1:
        perm = rng.sample(loops, len(loops))
        return lambda sc: sc.reorder(name, *perm)
    if kind in ("parallel", "vectorize", "unroll"):
        if kind == "vectorize":
            loop = loops[-1] if rng.random() < 0.7 else loop
        return lambda sc: getattr(sc, kind)(name, loop)
    if kind == "fuse" and len(written) > 1:
        pair = rng.sample(written, 2)
        depth = rng.choice((1, 1, 2))
        return lambda sc: sc.fuse(*pair, depth=depth)
    if kind == "compute_at" and len(written) > 1:
        producer, consumer = rng.sample(written, 2)
        return lambda sc: sc.compute_at(producer, consumer, loop)
    if kind == "distribute":
        return lambda sc: sc.distribute(name, loop)
    if kind == "skew" and len(loops) > 1:
        a, b = rng.sample(loops, 2)
        factor = rng.choice((1, 2))
        return lambda sc: sc.skew(name, a, by=b, factor=factor)
    if kind == "reassociate":
        return lambda sc: sc.reassociate(name)
    arguments = argument_tensors(kernel_ir)
    if kind == "align" and arguments:  # the call runs on line-aligned copies (backends/lines.py)
        tensor = rng.choice(arguments)
        return lambda sc: sc.align(tensor)
    if kind == "cache_read":
        reads = sorted({ld.tensor for ld in loads(s.rhs)})
        if reads:
            tensor = rng.choice(reads)
            return lambda sc: sc.cache_read(name, tensor, at=loop)
    if kind == "cache_write":
        return lambda sc: sc.cache_write(name, at=loop)
    if kind == "separate" and len(loops) > 1:
        a, b = rng.sample(loops, 2)
        return lambda sc: sc.separate(name, a, b)
    if kind == "order" and len(stmts) > 1:
        other = rng.choice([st.name for st in stmts if st.name != name])
        return lambda sc: sc.order(name, other)
    return None
