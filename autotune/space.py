"""The search space: knobs generated from a kernel and its target, decoded into a schedule.

A configuration is a dict knob name -> value. Knob generators (one per kind of decision) each
contribute knobs for a kernel and turn their part of a configuration into `Schedule` steps or
target options; a new scheduling pass plugs in as one more generator in `GENERATORS`:

    FusionKnobs       per pair of consecutive written tensors: how many outer loops they share
    LoopNestKnobs     per written tensor: two tiling levels per loop, a loop order per level,
                      a parallel outer loop, a vector inner loop, an unrolled loop
    MicroKernelKnobs  per contraction C[i,j] += A[i,k]*B[k,j]: the packed, register-tiled nest
                      of passes/default.py, with its tile sizes (replaces LoopNestKnobs there);
                      per convolution, its reassociated register tile and the tile's shape
    TargetOptionKnobs the backend's `tuning_space(kernel_ir)` (block sizes, num_warps, ...)
    GpuScheduleKnobs  cuda, triton: the planner, or passes/gpu_default's bound steps
    OnlineKnobs       cuda, triton, attention: FlashAttention-2 as steps (passes/gpu_online)
                      with its block sizes, in place of the others (autotune/space_online.py)
    RightLookingKnobs cpu, lu-like eliminations: passes/right_looking's schedule, its block
    IslSchedulerKnobs cpu: isl's own scheduler in place of all the steps above, its tile size
                      and whether it keeps whole rows (3-D stencils)

Only legal configurations are proposed: `is_legal` applies the schedule, which raises
`ScheduleError` for an illegal one, and `make_target` validates options. The verdict is cached on
the configuration's structure (which loops exist, their order and kinds, the options), which
tile sizes do not change, so most checks cost a dict lookup.
"""

from __future__ import annotations

import json
import random

import islpy as isl

from loopweave.autotune.database import DEFAULT_SCHEDULE
from loopweave.autotune.knobs import Choice, Config, Knob, Permutation, SpaceContext
from loopweave.autotune.space_online import OnlineKnobs, check_lowers
from loopweave.errors import LoopweaveError
from loopweave.ir.kernel import KernelIR, Statement
from loopweave.passes.gpu_default import GpuTiles, gpu_schedule
from loopweave.passes.gpu_online import OnlineSchedule
from loopweave.passes.patterns import match_contraction
from loopweave.passes.placement import own_loop_count
from loopweave.passes.right_looking import has_elimination_nest, right_looking
from loopweave.passes.schedule import Schedule
from loopweave.passes.tile_recipes import (
    casts_beyond_float_tile,
    contraction_steps,
    convolution_steps,
)
from loopweave.pipeline import backend_module, default_schedule, get_target
from loopweave.targets import GPU_FACTS, Target, gpu_facts

__all__ = ["Choice", "Config", "Knob", "Permutation", "SearchSpace", "SpaceContext"]

OUTER_TILES = (0, 4, 8, 16, 32, 64, 128, 256, 512)  # 0: not tiled
INNER_TILES = (0, 2, 4, 8, 16, 32)


def loop_extents(kernel: KernelIR, sizes: dict[str, int]) -> dict[str, dict[str, int]]:
    """Per statement, the extent of each iterator's range over its domain at `sizes`."""
    result = {}
    for s in kernel.statements:
        dom = s.domain
        for name, value in sizes.items():
            pos = dom.find_dim_by_name(isl.dim_type.param, name)
            if pos >= 0:
                dom = dom.fix_val(isl.dim_type.param, pos, isl.Val(int(value)))
        extents = {}
        for d, var in enumerate(s.iterators):
            if dom.is_empty():
                extents[var] = 0
                continue
            try:
                lo = dom.dim_min_val(d).to_python()
                hi = dom.dim_max_val(d).to_python()
                extents[var] = max(0, int(hi) - int(lo) + 1)
            except (TypeError, ValueError):  # unbounded (a size not given): assume large
                extents[var] = 1024
        result[s.name] = extents
    return result


def own_iterators(kernel: KernelIR, s: Statement) -> tuple[str, ...]:
    """The statement's own loops (not the enclosing `for` loops), outer to inner."""
    n = own_loop_count(kernel, s)
    return s.iterators[len(s.iterators) - n:] if n else ()


class LoopNestKnobs:
    """Tiling (two levels), loop order, parallel/vector/unroll marks, per written tensor."""

    def applies(self, ctx: SpaceContext) -> bool:
        module = backend_module(ctx.target)
        return getattr(module, "tunes_loop_schedule", not hasattr(module, "tuning_space"))

    def groups(self, ctx: SpaceContext) -> dict[str, tuple[str, ...]]:
        """tensor -> the loops of its main statement (the writer with the most own loops)."""
        groups: dict[str, tuple[str, ...]] = {}
        for s in ctx.kernel.statements:
            loops = own_iterators(ctx.kernel, s)
            if len(loops) > len(groups.get(s.lhs.tensor, ())):
                groups[s.lhs.tensor] = loops
        return groups

    def _extent(self, ctx: SpaceContext, tensor: str, var: str) -> int:
        return max((ext.get(var, 0) for s, ext in ctx.extents.items()
                    if ctx.kernel.statement[s].lhs.tensor == tensor), default=0)

    def knobs(self, ctx: SpaceContext) -> list[Knob]:
        knobs: list[Knob] = []
        for tensor, loops in self.groups(ctx).items():
            for v in loops:
                extent = self._extent(ctx, tensor, v)
                outer = tuple(t for t in OUTER_TILES if t == 0 or t < extent)
                inner = tuple(t for t in INNER_TILES if t == 0 or t < extent)
                if len(outer) > 1:
                    knobs.append(Choice(f"{tensor}.tile1.{v}", outer))
                if len(inner) > 1:
                    knobs.append(Choice(f"{tensor}.tile2.{v}", inner))
            for level in range(3):
                if len(loops) > 1:
                    knobs.append(Permutation(f"{tensor}.order{level}", loops))
            knobs.append(Choice(f"{tensor}.parallel", (False, True)))
            knobs.append(Choice(f"{tensor}.vector", (False, True)))
            knobs.append(Choice(f"{tensor}.unroll", (None, "inner", "second")))
        return knobs

    def apply(self, ctx: SpaceContext, config: Config, schedule: Schedule, options: dict) -> None:
        for tensor, loops in self.groups(ctx).items():
            if not loops or config.get(f"{tensor}.micro"):
                continue
            t1 = {v: int(config.get(f"{tensor}.tile1.{v}", 0) or 0) for v in loops}
            t2 = {v: int(config.get(f"{tensor}.tile2.{v}", 0) or 0) for v in loops}
            t2 = {v: n for v, n in t2.items() if n and (not t1[v] or n < t1[v])}
            levels: list[dict[str, str]] = [{}, {}, {v: v for v in loops}]
            if any(t1.values()):
                schedule.tile(tensor, **{v: n for v, n in t1.items() if n})
                levels[0] = {v: f"{v}_o" for v, n in t1.items() if n}
            if t2:
                schedule.tile(tensor, **t2)
                levels[1] = {v: f"{v}_oo" if t1[v] else f"{v}_o" for v in t2}
            order = []
            for level, names in enumerate(levels):
                perm = config.get(f"{tensor}.order{level}", loops) or loops
                order += [names[v] for v in perm if v in names]
            # Always spelled out once tiled: `tile` alone leaves a second-level tile loop
            # outside the first-level one (a degenerate nest).
            if len(order) > 1 and (levels[0] or levels[1] or order != list(loops)):
                schedule.reorder(tensor, *order)
            if config.get(f"{tensor}.parallel"):
                schedule.parallel(tensor, order[0])
            if config.get(f"{tensor}.vector"):
                schedule.vectorize(tensor, order[-1])
            unroll = config.get(f"{tensor}.unroll")
            if unroll == "inner" or (unroll == "second" and len(order) < 2):
                schedule.unroll(tensor, order[-1])
            elif unroll == "second":
                schedule.unroll(tensor, order[-2])


class FusionKnobs:
    """Fusion of consecutive written tensors: per neighbouring pair, how many outer loops they
    share (0: not fused). A chain of fused pairs becomes one `fuse` step at its smallest depth."""

    def applies(self, ctx: SpaceContext) -> bool:
        return LoopNestKnobs().applies(ctx) and len(self._pairs(ctx)) > 0

    def _pairs(self, ctx: SpaceContext) -> list[tuple[str, str, tuple[int, ...]]]:
        """(tensor, next tensor, fusion depths beyond the loops they already share)."""
        mains = {}
        for s in ctx.kernel.statements:
            if len(own_iterators(ctx.kernel, s)) >= len(own_iterators(
                    ctx.kernel, mains.get(s.lhs.tensor, s))):
                mains[s.lhs.tensor] = s
        order = list(mains.items())
        pairs = []
        for (a, sa), (b, sb) in zip(order, order[1:], strict=False):
            shared = len(sa.iterators) - len(own_iterators(ctx.kernel, sa))
            deepest = min(len(sa.iterators), len(sb.iterators))
            if deepest > shared:
                pairs.append((a, b, tuple(range(shared + 1, deepest + 1))))
        return pairs

    def knobs(self, ctx: SpaceContext) -> list[Knob]:
        return [Choice(f"fuse.{a}+{b}", (0, *depths)) for a, b, depths in self._pairs(ctx)]

    def apply(self, ctx: SpaceContext, config: Config, schedule: Schedule, options: dict) -> None:
        chain: list[str] = []
        depth = 0
        for a, b, _ in self._pairs(ctx):
            d = int(config.get(f"fuse.{a}+{b}", 0) or 0)
            if d and chain and chain[-1] == a:
                chain.append(b)
                depth = min(depth, d)
                continue
            if len(chain) > 1:
                schedule.fuse(*chain, depth=depth)
            chain, depth = ([a, b], d) if d else ([], 0)
        if len(chain) > 1:
            schedule.fuse(*chain, depth=depth)


class MicroKernelKnobs:
    """For each contraction: the BLIS-like nest of the default schedule (packed B panels, an
    MR x NR accumulator tile in vector registers) and its sizes MR, NR, KC, NC; for each
    convolution-shaped reduction: its reassociated register tile and the tile's rows (output
    channels) and columns."""

    SIZES = {"mr": (6, 4, 8, 12, 14), "nr": (16, 8, 32), "kc": (256, 128, 512),
             "nc": (256, 128, 512)}
    CONV_SIZES = {"rows": (8, 4, 6, 12, 16), "cols": (8, 16, 32, 4)}

    def applies(self, ctx: SpaceContext) -> bool:
        return LoopNestKnobs().applies(ctx) and bool(self._contractions(ctx))

    def _contractions(self, ctx: SpaceContext) -> dict[str, tuple[Statement, dict]]:
        """tensor -> (its statement, the sizes its nest takes)."""
        found = {}
        for s in ctx.kernel.statements:
            if contraction_steps(s, list(s.iterators), widening=True) is not None and \
                    not casts_beyond_float_tile(s, match_contraction(s, list(s.iterators))):
                found[s.lhs.tensor] = (s, self.SIZES)  # (f16/bf16 operands: packed as f32)
            elif convolution_steps(s, list(s.iterators)) is not None:
                found[s.lhs.tensor] = (s, self.CONV_SIZES)
        return found

    def knobs(self, ctx: SpaceContext) -> list[Knob]:
        knobs: list[Knob] = []
        for tensor, (_, sizes) in self._contractions(ctx).items():
            knobs.append(Choice(f"{tensor}.micro", (False, True)))
            knobs += [Choice(f"{tensor}.micro_{k}", v) for k, v in sizes.items()]
        return knobs

    def seeds(self, ctx: SpaceContext) -> list[Config]:
        """The default schedule's choices: every contraction as a micro-kernel with 6x16
        (AVX2-sized) or 14x32 (AVX-512-sized; f64 14x16) register tiles, every convolution
        8x8 or 8x32 (AVX-512)."""
        tiles = self._contractions(ctx)
        micro = {f"{t}.micro": True for t in tiles}
        wide = {}
        for t, (s, sizes) in tiles.items():
            pairs = ((("mr", 14), ("nr", 16 if s.lhs.dtype.bits == 64 else 32))
                     if sizes is self.SIZES else (("rows", 8), ("cols", 32)))
            wide.update({f"{t}.micro_{k}": v for k, v in pairs})
        return [micro, {**micro, **wide}]

    def apply(self, ctx: SpaceContext, config: Config, schedule: Schedule, options: dict) -> None:
        for tensor, (s, choices) in self._contractions(ctx).items():
            if not config.get(f"{tensor}.micro"):
                continue
            sizes = {k: int(config.get(f"{tensor}.micro_{k}", v[0])) for k, v in choices.items()}
            steps = contraction_steps(s, list(s.iterators), widening=True, **sizes) \
                if choices is self.SIZES else convolution_steps(s, list(s.iterators), **sizes)
            for op, *args in steps:
                kwargs = args.pop() if isinstance(args[-1], dict) else {}
                getattr(schedule, op)(*args, **kwargs)
            outermost = next(args[1] for op, *args in steps if op == "reorder")
            schedule.parallel(s.name, outermost)  # as the default schedule does


class TargetOptionKnobs:
    """The backend's own tuning dimensions: `tuning_space(kernel_ir) -> {option: [values]}`;
    a dict in place of a list nests (Triton's `block: {loop: [sizes]}`)."""

    def applies(self, ctx: SpaceContext) -> bool:
        return hasattr(backend_module(ctx.target), "tuning_space")

    def knobs(self, ctx: SpaceContext) -> list[Knob]:
        def flatten(space: dict, prefix: str):
            for name, values in space.items():
                if isinstance(values, dict):
                    yield from flatten(values, f"{prefix}{name}.")
                elif len(values) > 0:
                    yield Choice(f"{prefix}{name}", tuple(values))

        return list(flatten(backend_module(ctx.target).tuning_space(ctx.kernel), "option."))

    def apply(self, ctx: SpaceContext, config: Config, schedule: Schedule, options: dict) -> None:
        for name, value in config.items():
            if name.startswith("option."):
                *outer, last = name.split(".")[1:]
                place = options
                for part in outer:
                    place = place.setdefault(part, {})
                place[last] = value


class GpuScheduleKnobs:
    """cuda and triton: the backend's planner (with its options), or the schedule written as
    steps by passes/gpu_default.py (loops bound to blocks and threads) with its block shape and,
    for cuda, shared-memory staging of contractions. The steps schedule ignores the planner's
    options, so they are dropped with it (no two candidates with the same code)."""

    THREADS_X = (32, 16, 64, 128, 256)
    THREADS_Y = (8, 1, 2, 4, 16)
    DEPTHS = (16, 8, 32)

    def applies(self, ctx: SpaceContext) -> bool:
        return ctx.target.backend in GPU_FACTS

    @staticmethod
    def facts(ctx: SpaceContext):
        """The target's GPU facts for its arch (CUDA's tensor-core types depend on it)."""
        return gpu_facts(ctx.target.backend, ctx.target.options.get("arch"))

    def knobs(self, ctx: SpaceContext) -> list[Knob]:
        facts = self.facts(ctx)
        knobs: list[Knob] = [Choice("gpu.schedule", ("planner", "steps")),
                             Choice("gpu.threads_x", self.THREADS_X),
                             Choice("gpu.threads_y", self.THREADS_Y),
                             Choice("gpu.depth", self.DEPTHS)]
        if facts.shared_bytes is not None:
            knobs.append(Choice("gpu.stage", (False, True)))
        if facts.dot_types:
            knobs.append(Choice("gpu.dot", (True, False)))
        return knobs

    def seeds(self, ctx: SpaceContext) -> list[Config]:
        seeds: list[Config] = [{"gpu.schedule": "steps"}]
        if self.facts(ctx).dot_types:  # 16 x 32 thread tiles: large enough
            seeds.append({"gpu.schedule": "steps", "gpu.threads_y": 16, "gpu.dot": True})
        return seeds

    def apply(self, ctx: SpaceContext, config: Config, schedule: Schedule, options: dict) -> None:
        if config.get("gpu.schedule") != "steps":
            return
        tiles = GpuTiles(int(config.get("gpu.threads_x", 32)), int(config.get("gpu.threads_y", 8)),
                         bool(config.get("gpu.stage", False)), int(config.get("gpu.depth", 16)),
                         bool(config.get("gpu.dot", False)))
        if tiles not in ctx.memo:  # decoding runs for every legality check: compute once
            ctx.memo[tiles] = gpu_schedule(ctx.kernel, tiles, self.facts(ctx))
        schedule.steps += ctx.memo[tiles].steps
        for name in [n for n in options if n not in ("arch", "emulate", "interpret")]:
            del options[name]  # the planner's tile options mean nothing to a bound schedule


class RightLookingKnobs:
    """C targets, a kernel with an in-place elimination nest (lu, ludcmp): the right-looking
    schedule of passes/right_looking.py, blocked by `right_looking.block` pivots, in place of
    the other knobs' steps for the nest's statements (others keep theirs). Where the pass
    finds nothing to do with the steps so far, they stay as they are."""

    BLOCKS = (32, 16, 64, 8)

    def applies(self, ctx: SpaceContext) -> bool:
        return ctx.target.backend == "c" and has_elimination_nest(ctx.kernel)

    def knobs(self, ctx: SpaceContext) -> list[Knob]:
        return [Choice("right_looking", (False, True)),
                Choice("right_looking.block", self.BLOCKS)]

    def seeds(self, ctx: SpaceContext) -> list[Config]:
        return [{"right_looking": True, "right_looking.block": b} for b in self.BLOCKS[:2]]

    def apply(self, ctx: SpaceContext, config: Config, schedule: Schedule, options: dict) -> None:
        if not config.get("right_looking"):
            return
        block = int(config.get("right_looking.block", self.BLOCKS[0]))
        key = ("right_looking", block, schedule.to_json())  # a dozen trial applies each
        if key not in ctx.memo:
            ctx.memo[key] = right_looking(ctx.kernel, schedule, block)
        if ctx.memo[key] is not None:
            schedule.steps = list(ctx.memo[key].steps)


class IslSchedulerKnobs:
    """C targets: the whole schedule from isl's own scheduler (passes/isl_scheduler.py) in
    place of the steps of the other knobs, with its tile size (0: not tiled) and, with
    `isl.rows`, whole innermost rows under tiles of the other loops (3-D stencils). Applied
    last, it replaces their steps; the target options stay. isl's schedule shrinks no
    temporary (a tuned build allocates its own: loopweave.pipeline.TunedInvoker)."""

    TILES = (32, 16, 64, 8, 0)

    def applies(self, ctx: SpaceContext) -> bool:
        return ctx.target.backend == "c"

    def knobs(self, ctx: SpaceContext) -> list[Knob]:
        return [Choice("isl.scheduler", (False, True)), Choice("isl.tile", self.TILES),
                Choice("isl.rows", (False, True))]

    def seeds(self, ctx: SpaceContext) -> list[Config]:
        return [{"isl.scheduler": True}]

    def apply(self, ctx: SpaceContext, config: Config, schedule: Schedule, options: dict) -> None:
        if config.get("isl.scheduler"):
            tile = int(config.get("isl.tile", self.TILES[0]) or 0)
            rows = bool(config.get("isl.rows")) and bool(tile)  # rows are under tiles
            schedule.steps = Schedule().isl(tile or None, rows=rows).steps


#: Knob generators, in the order their steps are applied. New passes add theirs here.
GENERATORS: list = [FusionKnobs(), LoopNestKnobs(), MicroKernelKnobs(), TargetOptionKnobs(),
                    GpuScheduleKnobs(), OnlineKnobs(), RightLookingKnobs(),
                    IslSchedulerKnobs()]


class SearchSpace:
    """Every configuration of the knobs of `kernel` at `sizes` for `target` (a Target)."""

    def __init__(self, kernel: KernelIR, sizes: dict[str, int], target: Target,
                 generators: list | None = None, base_options: dict | None = None):
        self.ctx = SpaceContext(kernel, dict(sizes), target, loop_extents(kernel, sizes))
        self.generators = [g for g in (generators or GENERATORS) if g.applies(self.ctx)]
        self.knobs: list[Knob] = [k for g in self.generators for k in g.knobs(self.ctx)]
        self.base_options = dict(base_options or {})
        self._legal: dict[str, bool] = {}
        self._groups: dict[str, list[str]] = {}
        self._knob = {k.name: k for k in self.knobs}
        for k in self.knobs:  # knob names are "<group>.<what>"
            self._groups.setdefault(k.name.split(".", 1)[0], []).append(k.name)

    def default(self) -> Config:
        """The configuration that changes nothing (program order, default options)."""
        return {k.name: k.default for k in self.knobs}

    def seeds(self) -> list[Config]:
        """Configurations worth measuring first: the default schedule itself, and the
        generators' versions of its choices (which the search can then vary)."""
        defaults = self.default()
        return [{DEFAULT_SCHEDULE: True}] + [
            {**defaults, **seed} for g in self.generators if hasattr(g, "seeds")
            for seed in g.seeds(self.ctx)]

    def random(self, rng: random.Random) -> Config:
        return {k.name: k.sample(rng) for k in self.knobs}

    def mutate(self, config: Config, rng: random.Random, n: int = 1) -> Config:
        """`config` with `n` knobs changed."""
        if config.get(DEFAULT_SCHEDULE):  # its knobs mean nothing: vary program order
            config = self.default()
        new = dict(config)
        for knob in rng.sample(self.knobs, min(n, len(self.knobs))):
            new[knob.name] = knob.mutate(new.get(knob.name, knob.default), rng)
        return new

    def crossover(self, a: Config, b: Config, rng: random.Random) -> Config:
        """Each knob from one parent or the other."""
        return {k.name: (a if rng.random() < 0.5 else b).get(k.name, k.default)
                for k in self.knobs}

    def decode(self, config: Config) -> tuple[Schedule, dict]:
        """The schedule and target options a configuration stands for. The configuration
        {DEFAULT_SCHEDULE: True} is the target's default schedule (what compile() does without
        a tuning record), so that a sweep never records anything slower as its best."""
        if config.get(DEFAULT_SCHEDULE):
            chosen = default_schedule(self.ctx.kernel, self.ctx.target)
            return (chosen if chosen is not None else Schedule()), dict(self.base_options)
        schedule, options = Schedule(), dict(self.base_options)
        for g in self.generators:  # a generator may replace the schedule (OnlineKnobs)
            schedule = g.apply(self.ctx, config, schedule, options) or schedule
        return schedule, options

    @staticmethod
    def identity(schedule: Schedule, options: dict) -> str:
        """What a candidate is, for de-duplication: its schedule JSON and options."""
        return schedule.to_json() + json.dumps(options, sort_keys=True, default=str)

    def is_legal(self, config: Config) -> bool:
        """Whether the schedule applies (dependences, loop kinds) and the options are valid.

        Checked one knob group (a tensor's loops, the options) at a time, each with the others
        at their defaults: a group's steps only reorder its own statements, which stay in
        program order relative to the others; with fusion on, the whole configuration is
        checked too. Verdicts are cached on the decoded steps without tile sizes (a size does
        not change which orders are legal). The build applies the whole schedule again, so a
        wrong guess is recorded as a compile error, never run.
        """
        defaults = self.default()
        for group, names in self._groups.items():
            part = {**defaults, **{n: config[n] for n in names if n in config}}
            if group != "fuse" and not self._verdict(part):
                return False
        if any(config.get(n) for n in self._groups.get("fuse", ())):
            return self._verdict(config)
        return True

    def _verdict(self, config: Config) -> bool:
        schedule, options = self.decode(config)
        shape = _structure(schedule, options)
        if shape not in self._legal:
            try:
                scheduled = schedule.apply(self.ctx.kernel)
                if isinstance(schedule, OnlineSchedule):  # its sizes decide threads, memory
                    check_lowers(self.ctx, scheduled, schedule)
                if options:
                    t = self.ctx.target
                    get_target(t.name, t.cc or None, t.cflags or None, options)
                self._legal[shape] = True
            except LoopweaveError:
                self._legal[shape] = False
        return self._legal[shape]

    def random_legal(self, rng: random.Random, tries: int = 30) -> Config:
        """A random legal configuration, drawn one knob group at a time (a group that finds
        no legal draw keeps its defaults, which are always legal)."""
        defaults = self.default()
        config = dict(defaults)
        for group, names in self._groups.items():
            if group == "fuse":
                continue
            for _ in range(tries):
                part = {n: self._knob[n].sample(rng) for n in names}
                if self._verdict({**defaults, **part}):
                    config.update(part)
                    break
        for _ in range(3 if "fuse" in self._groups else 0):
            trial = {**config, **{n: self._knob[n].sample(rng) for n in self._groups["fuse"]}}
            if self.is_legal(trial):
                return trial
            # Fused tensors must agree on their shared loops: try them at their defaults.
            fused = {t for n in self._groups["fuse"] if trial[n]
                     for t in n.split(".", 1)[1].split("+")}
            for n in (n for t in fused for n in self._groups.get(t, ())):
                trial[n] = defaults[n]
            if self.is_legal(trial):
                return trial
        return config

    def sample_legal(self, rng: random.Random, n: int) -> list[Config]:
        """`n` random legal configurations."""
        return [self.random_legal(rng) for _ in range(n)]


def _structure(schedule: Schedule, options: dict) -> str:
    """The decoded steps without tile sizes, and the options (an online schedule's sizes
    decide whether it fits the target: all of its JSON)."""
    if isinstance(schedule, OnlineSchedule):
        return json.dumps([schedule.to_json(), options], sort_keys=True, default=str)
    steps = [(st.op, st.target, tuple(a[0] for a in st.args) if st.op == "tile" else st.args)
             for st in schedule.steps]
    return json.dumps([steps, options], sort_keys=True, default=str)
