"""The one pipeline that `compile()`, `emit_c()`, `loopweave emit`/`show` and the tuner's
measurement all run, so that one schedule gives one source everywhere.

    parse -> check -> choose a schedule -> apply -> [fix sizes] -> lower -> render -> build, load

    pipe = Pipeline(src, "cpu", lookup=tuned_lookup(db))
    result = pipe.stages({"M": 64, "K": 64, "N": 64})   # every stage up to the source
    kernel = pipe.kernel()                                # each call's sizes choose a schedule

Choosing the schedule, first match wins:
1. the schedule handed in (`schedule=`): a `Schedule`, or a function KernelIR -> KernelIR;
2. for known sizes, what `lookup(kernel_ir, sizes, target)` returns: a `Tuned` (a tuning
   record's schedule and target options), or None. The API layer composes the lookup
   (`loopweave.autotune.dispatch.tuned_lookup`) and hands it in: this module sits below the
   autotuner and never imports it, and the autotuner never calls `compile()` back;
3. for known sizes, the target's default choice by sizes: its backend's `size_rule(kernel_ir,
   target).at(sizes)` (a stencil in time whose data exceed the cache: isl's time tiles);
4. the target's default: its backend's `default_schedule(kernel_ir, target)`, else program
   order. 3 and 4 see the IR that `passes/normalize.py` made (reduction-invariant factors
   moved after their reductions, so that equal spellings get one schedule).
A tuned schedule that no longer compiles falls back to 4, as logged on `loopweave.autotune`
(which record a call's sizes use is logged there at info level, that none matched at debug).

`cache=False` builds into a private folder instead of the build cache (`toolchain.
private_cache`), for the pipeline's first build and for the tuned builds of later calls alike;
the folder lives as long as the kernel.

This module is also where a target record's backend name becomes the backend module
(`backend_module`, `get_target`): target records are plain data at the bottom layer
(`loopweave.targets`), the backends sit between them and this module.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import logging
import shlex
import tempfile
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loopweave.call_plan import written_first
from loopweave.errors import ArgumentTypeError, DSLError, LoopweaveError, TargetError
from loopweave.frontend import ast
from loopweave.frontend.checker import check
from loopweave.frontend.parser import parse, too_deep
from loopweave.ir.codegen import loop_ast
from loopweave.ir.kernel import KernelIR
from loopweave.ir.loops import Node, to_text
from loopweave.ir.specialize import fix_sizes, substitute_sizes
from loopweave.passes.normalize import normalize
from loopweave.runtime import Kernel, temporaries_at
from loopweave.targets import GPU_FACTS, Target, target_spec
from loopweave.toolchain import private_cache

if TYPE_CHECKING:  # the backends load by name (`backend_module`)
    from loopweave.backends.c import DirectCall

# Which tuned schedule a kernel used is logged where docs/tuning.md says: the tuner's logger.
log = logging.getLogger("loopweave.autotune")


# -- targets: name -> backend module ---------------------------------------------------------------

def backend_module(target: Target):
    """The backend module that renders and loads kernels for `target`."""
    # By name, not a static import: a program that uses the `cpu` target never loads the
    # Triton or CUDA backends (nor what they import).
    return importlib.import_module(f"loopweave.backends.{target.backend}")


def get_target(name: str, cc: str | None = None, cflags: tuple[str, ...] | None = None,
               options: dict | None = None) -> Target:
    """The target called `name`, its options checked by its backend; raises `TargetError`
    for an unknown target, or one whose Python packages are missing."""
    name, spec = target_spec(name)
    try:
        module = importlib.import_module(f"loopweave.backends.{spec.backend}")
    except ModuleNotFoundError as e:
        if e.name != f"loopweave.backends.{spec.backend}":
            raise TargetError(f"target {name!r} needs the Python package {e.name!r}, which is "
                              "not installed") from None
        raise TargetError(f"target {name!r} is not implemented yet") from None
    return module.make_target(name, cc, cflags, dict(options or {}))


def default_schedule(kernel: KernelIR, target: Target):
    """The schedule `target` uses for `kernel` when none is given or tuned (None: program
    order)."""
    default = getattr(backend_module(target), "default_schedule", None)
    return default(kernel, target) if default is not None else None


def splits_index_sets(target: Target) -> bool:
    """Whether the default path splits statements at a write meeting a read
    (passes/index_split.py): for the C targets, whose defaults then find vector and parallel
    loops in the pieces. Not for the GPU planners, which plan their own launches (the CUDA
    planner computed fuzz seed 17889's pieces wrong: issue [one-schedule])."""
    return not plans_own_launches(target)


def plans_own_launches(target: Target) -> bool:
    """Whether `target` is a GPU one, whose planner lays out its launches and stages its
    buffers itself; the C targets' loop nests fold reductions' initialisations into their
    accumulator tiles (`loop_ast(fold_inits=True)`)."""
    return target.backend in GPU_FACTS


def size_rule(kernel: KernelIR, target: Target):
    """`target`'s default choice by sizes for `kernel` (the front end's IR; the rule sees it
    normalized): an object whose `at(sizes)` gives a schedule that replaces the default at
    those sizes, or None where the target's default does not depend on sizes."""
    rule = getattr(backend_module(target), "size_rule", None)
    return rule(normalize(kernel, splits_index_sets(target)), target) if rule is not None else None


def scheduled_default(kernel: KernelIR, target: Target, sizes: Mapping[str, int]) -> KernelIR:
    """`kernel` (the front end's IR) scheduled as `compile()` builds it at `sizes` without a
    tuning record (`Pipeline.default_stages`): normalized, with the default's choice by sizes
    or the target's default schedule (program order where it has none)."""
    normalized = normalize(kernel, splits_index_sets(target))
    rule = size_rule(kernel, target)
    schedule = rule.at(dict(sizes)) if rule is not None else None
    if schedule is None:
        schedule = default_schedule(normalized, target)
    return apply_schedule(normalized, schedule) if schedule is not None else normalized


def apply_schedule(kernel: KernelIR, schedule) -> KernelIR:
    """`schedule` (a `Schedule`, or a function KernelIR -> KernelIR) applied to `kernel`."""
    return schedule.apply(kernel) if hasattr(schedule, "apply") else schedule(kernel)


# -- the front end -------------------------------------------------------------------------------

def select_kernel(kernels: tuple[ast.KernelDef, ...], name: str | None,
                  source: str) -> ast.KernelDef:
    """The kernel called `name`, or the only one in the text."""
    names = [k.name for k in kernels]
    if name is None:
        if len(kernels) == 1:
            return kernels[0]
        # Shown at the second definition: where the text stops being one kernel.
        raise DSLError(f"the source defines {len(kernels)} kernels ({', '.join(names)}); "
                       "choose one with compile(..., kernel='name')", kernels[1].pos, source)
    for k in kernels:
        if k.name == name:
            return k
    raise DSLError(f"no kernel named {name!r} in the source; it defines {', '.join(names)}",
                   kernels[0].pos, source)


def front_end(source: str, kernel: str | None = None) -> KernelIR:
    """Parse and check DSL text: the kernel's polyhedral IR."""
    if not isinstance(source, str):
        raise ArgumentTypeError(f"compile() takes DSL source text, not {type(source).__name__}")
    try:
        kdef = select_kernel(parse(source), kernel, source)
        return check(kdef, source)
    except RecursionError:
        raise too_deep(source, "the kernel is") from None


def compiler_flags(cflags) -> tuple[str, ...] | None:
    """`cflags` as a tuple of strings; one string is split as a shell would."""
    if cflags is None:
        return None
    if isinstance(cflags, str):  # tuple("-O2") would be ('-', 'O', '2')
        return tuple(shlex.split(cflags))
    flags = tuple(cflags) if isinstance(cflags, list | tuple) else None
    if flags is None or not all(isinstance(f, str) for f in flags):
        raise ArgumentTypeError(f"cflags must be a list of strings, not {cflags!r}")
    return flags


# -- what the stages produce ---------------------------------------------------------------------

@dataclass(frozen=True)
class Tuned:
    """What a lookup chose for one kernel at some sizes."""

    # a Schedule (or a function KernelIR -> KernelIR); None for a record of the target's
    # default (`Pipeline.tuned` gives it the default's choice by sizes, `run` the default)
    schedule: object
    options: dict = field(default_factory=dict)  # target options to build it with
    what: str = "a tuned schedule"  # for the log: which record, how fast, from where
    record: object = None  # the lookup's own record (a tuning database Record), for inspection
    level: int = logging.INFO  # of the "using ..." log line (a cost-model guess: debug)
    normalized: bool = False  # the schedule is for the normalized IR (the default's choice)
    # built with the sizes fixed (a size rule's `specialize`): True for all of them, or the
    # names of those fixed (the others stay parameters)
    specialize: bool | tuple[str, ...] = False


#: lookup(front end's KernelIR, sizes, target) -> Tuned | None
Lookup = Callable[[KernelIR, dict, Target], "Tuned | None"]


@dataclass
class Stages:
    """What each stage produced (kept for `dump` and for tests)."""

    target: Target
    syntax: ast.KernelDef | None = None
    unscheduled: KernelIR | None = None  # the front end's IR (what tuning keys hash)
    ir: KernelIR | None = None  # scheduled
    loops: Node | None = None
    source: str = ""
    dumps: list[tuple[str, str]] = field(default_factory=list)
    schedule: object = None  # the schedule applied (None: program order)
    tuned: Tuned | None = None  # what the lookup chose, when its schedule was used
    rendered: KernelIR | None = None  # the IR as rendered (sizes fixed, renamed), else `ir`


# -- the pipeline --------------------------------------------------------------------------------

class Pipeline:
    """One kernel of DSL text on one target, through every stage.

    source, target, kernel, schedule, cc, cflags: as for `loopweave.compile()`.
    options:  target-specific options, checked by the target's backend.
    lookup:   a `Lookup` for tuned schedules (used only without `schedule`), or None.
    cache:    False: build into a private folder, never reading or writing the build cache.

    The target is checked, then the text parsed and checked, when the pipeline is made.
    """

    def __init__(self, source: str, target: str = "cpu", *, kernel: str | None = None,
                 schedule=None, cc: str | None = None, cflags=None,
                 options: Mapping | None = None, lookup: Lookup | None = None,
                 cache: bool = True):
        self.cc = cc
        self.cflags = compiler_flags(cflags)
        self.options = dict(options or {})
        self.target = get_target(target, cc, self.cflags, self.options)
        self.unscheduled = front_end(source, kernel)
        self.schedule = schedule
        self.lookup = lookup if schedule is None else None
        self.cache = cache
        self._private: tempfile.TemporaryDirectory | None = None  # made at the first build
        self._size_rule: object = False  # the default's rule by sizes (False: not asked yet)

    def tuned(self, sizes: Mapping[str, int] | None) -> Tuned | None:
        """What the lookup chose for `sizes`, else the default's choice for them (None without
        sizes, or where neither chooses: the explicit or default schedule)."""
        if sizes is None:
            return None
        found = self.lookup(self.unscheduled, dict(sizes), self.target) if self.lookup else None
        if found is not None and found.schedule is None:  # a record of the default: the
            rule = self.rule_choice(sizes)                  # default's choice at these sizes
            return dataclasses.replace(found, schedule=rule.schedule if rule else None,
                                       normalized=True,
                                       specialize=rule.specialize if rule else False)
        if found is not None and not found.specialize:  # built as the sweep measured it
            found = dataclasses.replace(found, specialize=self.fixed_for_choices())
        return found if found is not None else self.rule_choice(sizes)

    def fixed_for_choices(self) -> bool | tuple[str, ...]:
        """The sizes that a schedule chosen for a call's sizes (a tuning record, the cost
        model's pick) is built with fixed: those the default's rule by sizes fixes for the
        kernel (`size_rule(..).specialize`: True for all, or their names; False without a
        rule), whatever this pipeline's own schedule, so that a sweep measures every
        candidate built as the default is and compile() builds a record as it was measured
        (`autotune/measure.candidate_stages`)."""
        rule = self._kernel_rule()
        return getattr(rule, "specialize", False) if rule is not None else False

    def rule_choice(self, sizes: Mapping[str, int]) -> Tuned | None:
        """The default's choice by sizes for `sizes` (None: the default schedule)."""
        rule = self.size_rule()
        schedule = rule.at(dict(sizes)) if rule is not None else None
        return Tuned(schedule, what=rule.why, level=logging.DEBUG, normalized=True,
                     specialize=getattr(rule, "specialize", False)) \
            if schedule is not None else None

    def default_stages(self, sizes: Mapping[str, int]) -> Stages:
        """What `compile()` builds for a call at `sizes` without a tuning record: the default's
        choice by sizes (with the sizes fixed where it says so), else the default."""
        tuned = self.rule_choice(sizes)
        return self.run(tuned, sizes, specialize=tuned is not None and tuned.specialize)

    def size_rule(self):
        """The target's default choice by sizes for this kernel (see `size_rule`); None with
        an explicit schedule."""
        return None if self.schedule is not None else self._kernel_rule()

    def _kernel_rule(self):
        """`size_rule` of the kernel, whatever this pipeline's own schedule (asked once)."""
        if self._size_rule is False:
            self._size_rule = size_rule(self.unscheduled, self.target)
        return self._size_rule

    def with_tuned(self, sizes: Mapping[str, int] | None, make: Callable[[Tuned | None], object]):
        """`make(tuned)` for the lookup's choice at `sizes`; `make(None)` (the explicit or
        default schedule) when there is none, or when `make` raises a LoopweaveError for it."""
        tuned = self.tuned(sizes)
        if tuned is not None:
            name = self.unscheduled.name
            try:
                result = make(tuned)
            except LoopweaveError as e:
                log.debug("%s of %s no longer compiles (%s): default schedule", tuned.what,
                          name, e)
            else:
                log.log(tuned.level, "using %s for %s sizes %s", tuned.what, name, dict(sizes))
                return result
        return make(None)

    def stages(self, sizes: Mapping[str, int] | None = None, *,
               specialize: bool | tuple[str, ...] = False, name: str | None = None) -> Stages:
        """Every stage up to the generated source, with the schedule chosen for `sizes`.

        specialize: fix `sizes` in the IR and the loop AST (fully static code, as emit_c), or
                    those of them named.
        name:       the kernel's function name in the source (default: the kernel's).
        """
        if specialize and sizes is None:
            raise ArgumentTypeError("specialize=True needs the sizes")
        return self.with_tuned(sizes, lambda tuned: self.run(tuned, sizes, specialize, name))

    def run(self, tuned: Tuned | None, sizes: Mapping[str, int] | None = None,
            specialize: bool | tuple[str, ...] = False, name: str | None = None) -> Stages:
        """The stages with `tuned`'s schedule and options (None: the explicit or default
        schedule); `specialize`: fix `sizes` (True), or those of them named, in the IR and
        the loop AST."""
        target = self.target
        if tuned is not None and tuned.options:
            target = get_target(target.name, self.cc, self.cflags, {**self.options,
                                                                      **tuned.options})
        schedule = tuned.schedule if tuned is not None else self.schedule
        kernel_ir = self.unscheduled
        # The default (no schedule at all, or a record of it: a normalized choice without
        # one) and the default's choices by sizes: only there, where no schedule names
        # statements, equal spellings become one form (passes/normalize.py) first.
        default = tuned is None and self.schedule is None
        if default or (tuned is not None and tuned.normalized):
            kernel_ir = normalize(kernel_ir, splits_index_sets(target))
        if default or (tuned is not None and tuned.normalized and schedule is None):
            schedule = default_schedule(kernel_ir, target)
        result = Stages(target, unscheduled=self.unscheduled, ir=kernel_ir,
                        schedule=schedule, tuned=tuned)
        result.dumps.append(("ir", str(result.ir)))
        if schedule is not None:
            result.ir = apply_schedule(result.ir, schedule)
            result.dumps.append(("schedule", str(result.ir.schedule)))
        rendered = result.ir if name is None else dataclasses.replace(result.ir, name=name)
        loops = loop_ast(rendered, fold_inits=not plans_own_launches(target))
        if specialize:
            # Lowered with symbolic sizes, as for compile(), then the values substituted: the
            # loop nest compile() runs at these sizes. (isl, told the sizes, builds another
            # nest, which drops loops of one iteration that staged buffers still refer to.)
            fixed = dict(sizes) if specialize is True else {s: sizes[s] for s in specialize}
            rendered = fix_sizes(rendered, fixed)
            loops = substitute_sizes(loops, fixed)
        result.rendered, result.loops = rendered, loops
        result.dumps.append(("loops", to_text(loops)))
        result.source = backend_module(target).render(rendered, loops, target)
        result.dumps.append(("source", result.source))
        return result

    def load(self, stages: Stages):
        """Build and load `stages.source`: the backend's invoker (see `loopweave.targets`)."""
        backend = backend_module(stages.target)
        rendered = stages.rendered if stages.rendered is not None else stages.ir
        if self.cache:
            return backend.load(rendered, stages.source, stages.target)
        if self._private is None:
            self._private = tempfile.TemporaryDirectory(prefix="loopweave-nocache-")
        with private_cache(self._private.name):
            return backend.load(rendered, stages.source, stages.target)

    def kernel(self, stages: Stages | None = None, per_sizes: bool = True) -> Kernel:
        """A callable `Kernel` of `stages` (default: `self.stages()`); with a lookup or a
        default that chooses by sizes, each call's sizes run what they choose (see
        `TunedInvoker`), unless `per_sizes` is False (every call runs `stages`: the tuner's
        measurement of what it built)."""
        stages = stages if stages is not None else self.stages()
        invoke = self.load(stages)
        if per_sizes and (self.lookup is not None or self.size_rule() is not None):
            invoke = TunedInvoker(self, stages, invoke)
        kernel = Kernel(stages.ir, stages.source, stages.target.name, invoke)
        if self._private is not None:  # what the kernel loaded (or runs under QEMU) lives there
            weakref.finalize(kernel, self._private.cleanup)
        return kernel


class TunedInvoker:
    """An invoker that runs, for each call's sizes, the pipeline's choice for them: a tuned
    schedule, or the default's choice by sizes, built once per distinct sizes; else the
    default build.

    `records` maps sizes (sorted (name, value) pairs) to the lookup's record used (None: the
    default); `current_source` is the source that ran for the last call's sizes.
    """

    def __init__(self, pipeline: Pipeline, default: Stages, invoke):
        self.default = invoke
        self.pipeline = pipeline
        self.default_source = default.source
        self.current_source = default.source
        # The callers pass the default build's temporaries (a normalization's copies): a
        # choice without them cannot take the same direct call.
        self.default_has_temporaries = default.ir is not None and bool(default.ir.temporaries)
        self._chosen: dict[tuple, tuple] = {}
        self._builds: dict[tuple, tuple] = {}  # `_build_key` -> (schedule, built)
        self.records: dict[tuple, object] = {}
        self._scratch = threading.local()  # this thread's temporaries of the last choice

    def __getattr__(self, name):  # behave like the default invoker otherwise
        if name == "default":  # not yet set (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.default, name)

    def _choose(self, sizes: dict) -> tuple:
        def make(tuned: Tuned | None) -> tuple:
            if tuned is None:
                return self.default, self.default_source, (), None
            # A build with some sizes fixed depends only on those: a GEMM called at many M
            # (its K and N fixed) lowers once, not once per M (70 ms each, for matmul).
            key = self._build_key(tuned, sizes)
            if key is not None and key in self._builds and \
                    self._builds[key][0] is tuned.schedule:
                return self._builds[key][1]
            stages = self.pipeline.run(tuned, sizes, specialize=tuned.specialize)
            own = stages.ir.temporaries
            temporaries = (own, written_first(stages.ir, own, self.pipeline.target.name)) \
                if own else ()
            built = self.pipeline.load(stages), stages.source, temporaries, tuned.record
            if key is not None:
                self._builds[key] = (tuned.schedule, built)  # the schedule kept: ids stay
            return built                                    # unique while cached
        return self.pipeline.with_tuned(sizes, make)

    @staticmethod
    def _build_key(tuned: Tuned, sizes: dict) -> tuple | None:
        """What a build of `tuned` at `sizes` depends on where it fixes only some sizes (the
        schedule object, its options, the fixed sizes' values), else None (not shared)."""
        if not isinstance(tuned.specialize, tuple) or tuned.record is not None:
            return None
        return (id(tuned.schedule), tuned.normalized, repr(sorted(tuned.options.items())),
                tuple((name, sizes[name]) for name in tuned.specialize))

    def _chosen_for(self, sizes: dict) -> tuple:
        """(invoker, source, own temporaries) for `sizes`, chosen and built once; the
        temporaries as (tensors, `written_first` of them), or () when the choice has none."""
        # Keyed by the sizes in the caller's order first (no sort on every call), then sorted
        # (the records' keys, one choice however a caller orders the sizes).
        chosen = self._chosen.get(tuple(sizes.items()))
        if chosen is None:
            which = tuple(sorted(sizes.items()))
            if which not in self._chosen:
                invoke, source, temporaries, self.records[which] = self._choose(sizes)
                self._chosen[which] = (invoke, source, temporaries)
            chosen = self._chosen[tuple(sizes.items())] = self._chosen[which]
        return chosen

    def __call__(self, arrays: dict, scalars: dict, sizes: dict) -> None:
        invoke, self.current_source, temporaries = self._chosen_for(sizes)
        if temporaries:  # the caller allocated the default build's; a schedule has its own
            # kept from call to call, per thread, as the call plans keep theirs (a 5 MB weight
            # copy zeroed and faulted in on every call: 10% of a convolution)
            env = {**sizes, **{k: v for k, v in scalars.items() if isinstance(v, int)}}
            own, written = temporaries
            kept = temporaries_at(self._scratch, id(invoke), own, written, env,
                                  self.pipeline.target.name)
            arrays = {**arrays, **{t.name: a for t, a in zip(own, kept, strict=True)}}
        invoke(arrays, scalars, sizes)

    def direct(self, sizes: dict[str, int]) -> DirectCall | None:
        """The chosen invoker's direct call for `sizes` (backends/c.py), which notes its source as
        the one that runs when a caller switches to it; None where the choice has temporaries of its
        own, or has none where the default build has some (trmm's snapshot of B), or its invoker
        has no direct call (the caller then goes through `__call__`)."""
        invoke, source, temporaries = self._chosen_for(sizes)
        direct = getattr(invoke, "direct", None)
        own_arrays = temporaries or (invoke is not self.default and self.default_has_temporaries)
        call = direct(sizes) if direct is not None and not own_arrays else None
        if call is None or call.chosen is not None:
            return None
        return dataclasses.replace(call, chosen=functools.partial(
            setattr, self, "current_source", source))
