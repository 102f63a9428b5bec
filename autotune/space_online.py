"""The knob group of FlashAttention-2 as steps (passes/gpu_online) on cuda and triton.

Where the online-softmax rewrite applies to the kernel on a GPU target (attention), the
target's default schedule is `online_gpu_schedule`; this group offers its block sizes:

    online.on     False: the other GPU knobs decide; True: the online schedule, replacing
                  their steps (and dropping the planner's options, as GpuScheduleKnobs does)
    online.rows   BI, the query rows of a block (threadIdx.y)
    online.block  BJ, the keys of a step of the loop over key blocks
    online.cols   BV, the value columns of a tile
    online.depth  BD, the k step of the scores' product

Each size is a power of two from 16 (a `dot` tile's smallest side) up to what one tile of it
next to the smallest other side may take on the target (`targets.gpu_facts`: threads per
block, shared memory) and the loop's extent rounded up to a power of two. Its first value is
the default schedule's (passes/gpu_default: `ONLINE_TILES` on CUDA, `online_gpu_schedule`'s
own on Triton), so that the seed {online.on: True} is the default schedule. Whether a
combination fits (threads, shared memory) is the lowering's verdict: `SearchSpace.is_legal`
lowers online candidates (`lowers`), and a build that the steps refuse is recorded as a
compile error like any bad candidate.
"""

from __future__ import annotations

from loopweave.autotune.knobs import Choice, Config, SpaceContext
from loopweave.ir.codegen import loop_ast
from loopweave.ir.kernel import KernelIR
from loopweave.ir.launches import lower_launches
from loopweave.passes.gpu_default import ONLINE_TILES, thread_limit
from loopweave.passes.gpu_online import MIN_SIDE, OnlineSchedule, online_gpu_schedule
from loopweave.passes.online_softmax import rewrite_online
from loopweave.passes.schedule import Schedule
from loopweave.targets import GPU_FACTS, GpuFacts, gpu_facts

#: The options a bound schedule keeps (the others are the planner's tile options).
KEPT_OPTIONS = ("arch", "emulate", "interpret")
#: online_gpu_schedule's own sizes (Triton's default: tl.dot for both products).
DOT_TILES = {"rows": 64, "block": 32, "cols": 64, "depth": 32}
#: Bytes of the widest element a staged tile holds (f32): a bound on the shared memory a side
#: takes; the lowering checks the exact amount.
ELEMENT_BYTES = 4


class OnlineKnobs:
    """FlashAttention-2's block sizes on a GPU target (see the module docstring)."""

    SIZES = ("rows", "block", "cols", "depth")

    @staticmethod
    def facts(ctx: SpaceContext) -> GpuFacts:
        """The target's GPU facts for its arch."""
        return gpu_facts(ctx.target.backend, ctx.target.options.get("arch"))

    def mode(self, ctx: SpaceContext) -> dict | None:
        """How passes/gpu_default calls `online_gpu_schedule` on this target (`dot`, `stage`
        and the default sizes), or None where the online schedule is not the target's."""
        facts = self.facts(ctx)
        if facts.shared_bytes is None:
            return {"dot": True, "stage": False, **DOT_TILES} if facts.dot_types else None
        return {"dot": False, "stage": True, **ONLINE_TILES}

    def applies(self, ctx: SpaceContext) -> bool:
        if ctx.target.backend not in GPU_FACTS or self.mode(ctx) is None:
            return False
        if "online.found" not in ctx.memo:
            ctx.memo["online.found"] = online_gpu_schedule(ctx.kernel) is not None
        return ctx.memo["online.found"]

    def _loops(self, ctx: SpaceContext) -> dict[str, tuple[str, ...]]:
        """size -> the kernel loops it cuts: the rows and the reduced loop by name; the value
        columns and k steps are the other loops (their names differ by kernel)."""
        found = rewrite_online(ctx.kernel, 64)
        rows, reduced = found.rows[-1], found.reduced
        other = tuple({v for s in ctx.kernel.statements for v in s.iterators}
                      - {*found.rows, reduced})
        return {"rows": (rows,), "block": (reduced,), "cols": other, "depth": other}

    def values(self, ctx: SpaceContext, size: str) -> tuple[int, ...]:
        """The powers of two a size may take, the default's first."""
        facts, default = self.facts(ctx), self.mode(ctx)[size]
        extent = max((ext.get(v, 0) for ext in ctx.extents.values()
                      for v in self._loops(ctx)[size]), default=0)
        largest = facts.block_threads // MIN_SIDE  # a tile of it by the smallest side
        if facts.shared_bytes is not None:
            largest = min(largest, facts.shared_bytes // (MIN_SIDE * ELEMENT_BYTES))
        largest = min(largest, max(MIN_SIDE, 1 << max(0, extent - 1).bit_length()))
        sides = []
        side = MIN_SIDE
        while side <= largest:
            sides.append(side)
            side *= 2
        return (default, *(s for s in sides if s != default))

    def knobs(self, ctx: SpaceContext) -> list:
        knobs = [Choice("online.on", (False, True))]
        for size in self.SIZES:
            values = self.values(ctx, size)
            if len(values) > 1:
                knobs.append(Choice(f"online.{size}", values))
        return knobs

    def seeds(self, ctx: SpaceContext) -> list[Config]:
        """The default schedule's sizes (the search varies them from there)."""
        return [{"online.on": True}]

    def apply(self, ctx: SpaceContext, config: Config, schedule: Schedule,
              options: dict) -> Schedule | None:
        """The online schedule in place of `schedule` where `online.on`, else None."""
        if not config.get("online.on"):
            return None
        mode = self.mode(ctx)
        sizes = {k: int(config.get(f"online.{k}", mode[k])) for k in self.SIZES}
        key = ("online", tuple(sizes.items()))
        if key not in ctx.memo:  # decoding runs for every legality check: compute once
            ctx.memo[key] = online_gpu_schedule(ctx.kernel, dot=mode["dot"],
                                                stage=mode["stage"], **sizes)
        for name in [n for n in options if n not in KEPT_OPTIONS]:
            del options[name]
        return ctx.memo[key]


def check_lowers(ctx: SpaceContext, scheduled: KernelIR, schedule: OnlineSchedule) -> None:
    """A ScheduleError where `scheduled` (the kernel under the online `schedule`) does not lower
    to launches within the target's threads per block and shared memory."""
    facts = OnlineKnobs.facts(ctx)
    lower_launches(loop_ast(scheduled), ctx.kernel.name, facts.shared_bytes,
                   thread_limit(facts, schedule))
