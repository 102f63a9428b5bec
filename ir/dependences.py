"""Data dependences between statement instances, computed with isl's dataflow analysis.

    flow   (read after write):  a write, and a later read of the same element
    anti   (write after read):  a read, and a later write of the same element
    output (write after write): a write, and a later write of the same element

Each `Dependence` relates instances of a source statement to instances of a sink statement
for one tensor. A schedule is legal when it runs every source instance before its sinks;
`violations()` finds the dependences a new schedule would reverse, with a concrete pair.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import islpy as isl

from loopweave.ir import expr as ir
from loopweave.ir import isl_helpers
from loopweave.ir.kernel import KernelIR

KINDS = ("flow", "anti", "output")


@dataclass(frozen=True, eq=False)
class Dependence:
    kind: str  # one of KINDS
    source: str  # statement name
    sink: str
    tensor: str
    relation: isl.Map  # source instance -> sink instance

    def __str__(self) -> str:
        return f"{self.kind} dependence on {self.tensor}: {self.relation}"

    def distances(self, schedule: isl.Schedule) -> isl.UnionSet:
        """The distance vectors (sink time - source time) in `schedule`'s space."""
        smap = schedule.get_map()
        rel = isl.UnionMap.from_map(self.relation).apply_domain(smap).apply_range(smap)
        return rel.deltas()


def restricted_to(umap: isl.UnionMap, tensor: str) -> isl.UnionMap:
    """The maps of access relation `umap` to elements of `tensor`."""
    maps = [m for m in isl_helpers.maps_of(umap) if m.get_tuple_name(isl.dim_type.out) == tensor]
    result = isl.UnionMap.empty(umap.get_space())
    for m in maps:
        result = result.union(isl.UnionMap.from_map(m))
    return result


def _flow(sink: isl.UnionMap, source: isl.UnionMap, schedule: isl.Schedule,
          must: bool) -> isl.UnionMap:
    info = isl.UnionAccessInfo.from_sink(sink)
    info = info.set_must_source(source) if must else info.set_may_source(source)
    flow = info.set_schedule(schedule).compute_flow()
    return flow.get_must_dependence() if must else flow.get_may_dependence()


def _split(kind: str, tensor: str, umap: isl.UnionMap) -> list[Dependence]:
    out = []
    for m in isl_helpers.maps_of(umap.coalesce()):
        if m.is_empty():
            continue
        out.append(Dependence(kind, m.get_tuple_name(isl.dim_type.in_),
                              m.get_tuple_name(isl.dim_type.out), tensor, m))
    return out


class Dependences:
    """All dependences of a kernel in its current (program-order) schedule."""

    def __init__(self, kernel: KernelIR):
        self.kernel = kernel
        self._memo: dict[tuple[str, frozenset[str]], object] = {}

    @classmethod
    def of(cls, kernel: KernelIR) -> Dependences:
        """The (memoized) dependences of `kernel`: schedules tried on one kernel share them."""
        if kernel not in _MEMO:
            _MEMO[kernel] = cls(kernel)
        return _MEMO[kernel]

    @cached_property
    def all(self) -> list[Dependence]:
        reads, writes = self.kernel.access_relations()
        schedule = self.kernel.schedule
        result: list[Dependence] = []
        for tensor in self.kernel.tensors:
            r, w = restricted_to(reads, tensor), restricted_to(writes, tensor)
            if w.is_empty():
                continue
            result += self.flows_on(tensor)
            # Anti: every earlier read (not only the last) must stay before the write.
            result += _split("anti", tensor, _flow(w, r, schedule, must=False))
            result += _split("output", tensor, _flow(w, w, schedule, must=True))
        return result

    def commuting(self, reassociable: frozenset[str] = frozenset()) -> dict[tuple[str, str],
                                                                            isl.Map]:
        """(statement a, statement b) -> pairs of their instances (a instance -> b instance)
        that update one element by the same reduction, a != b, neither statement reading the
        element it updates otherwise: `max=` or `min=` of an integer tensor, exact in either
        order (nussinov's five `max=` into table[i, j]), or two `reassociable` statements
        (syr2k's `C[i, j] += A[j, k] * B[i, k]` and `C[i, j] += B[j, k] * A[i, k]`, one sum
        that the reassociation frees from its order). Empty for most kernels."""
        key = ("commuting", reassociable)
        if key not in self._memo:
            params = self.kernel.params

            def exact(s) -> bool:
                return s.op in COMMUTING_OPS and \
                    self.kernel.tensors[s.lhs.tensor].dtype.kind in ("int", "uint")

            def freed(s) -> bool:
                return s.name in reassociable and s.op in REASSOCIABLE_OPS

            updates = [s for s in self.kernel.statements if not s.is_init and (
                exact(s) or freed(s)) and not reads_its_element(self.kernel, s, set(s.iterators))]
            self._memo[key] = {
                (a.name, b.name): a.access_map(params, a.lhs).apply_range(
                    b.access_map(params, b.lhs).reverse())
                for a in updates for b in updates
                if a is not b and a.lhs.tensor == b.lhs.tensor and a.op == b.op
                and (exact(a) and exact(b) or freed(a) and freed(b))}
        return self._memo[key]

    def for_reordering(self, reassociable: frozenset[str] = frozenset()) -> list[Dependence]:
        """The dependences a new order of the instances must keep: `all`, except on a tensor
        with `commuting` updates. There every earlier write of an element counts (may
        dependences: the updates between a write and a later access may move, so the last
        writer alone would not hold the others in place), and the pairs of commuting updates
        do not."""
        commuting = self.commuting(reassociable)
        if not commuting:
            return self.all
        key = ("for_reordering", reassociable)
        if key in self._memo:
            return self._memo[key]
        tensors = {self.kernel.statement[a].lhs.tensor for a, _ in commuting}
        reads, writes = self.kernel.access_relations()
        schedule = self.kernel.schedule
        result = [d for d in self.all if d.tensor not in tensors]
        for tensor in sorted(tensors):
            r, w = restricted_to(reads, tensor), restricted_to(writes, tensor)
            for d in (_split("flow", tensor, _flow(r, w, schedule, must=False))
                      + _split("anti", tensor, _flow(w, r, schedule, must=False))
                      + _split("output", tensor, _flow(w, w, schedule, must=False))):
                pairs = commuting.get((d.source, d.sink))
                relation = d.relation if pairs is None else d.relation.subtract(pairs)
                if not relation.is_empty():
                    result.append(Dependence(d.kind, d.source, d.sink, tensor, relation))
        self._memo[key] = result
        return result

    def flows_on(self, tensor: str) -> list[Dependence]:
        """The flow dependences on `tensor`, computed for it alone (a question about one
        tensor need not analyse the whole kernel)."""
        key = ("flow", frozenset((tensor,)))
        if key not in self._memo:
            reads, writes = self.kernel.access_relations()
            self._memo[key] = _split("flow", tensor, _flow(
                restricted_to(reads, tensor), restricted_to(writes, tensor),
                self.kernel.schedule, must=True))
        return self._memo[key]

    def union(self) -> isl.UnionMap:
        """Every dependence as one union map source instance -> sink instance."""
        result = isl.UnionMap.empty(self.kernel.context.get_space())
        for d in self.all:
            result = result.union(isl.UnionMap.from_map(d.relation))
        return result

    def of_kind(self, kind: str) -> list[Dependence]:
        return [d for d in self.all if d.kind == kind]


_MEMO: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

#: Reductions whose updates of one integer element commute exactly (`Dependences.commuting`).
COMMUTING_OPS = ("max=", "min=")
#: Reductions that a `reassociate` step frees from their order, across statements too.
REASSOCIABLE_OPS = ("+=", "*=", "max=", "min=")


def reads_its_element(kernel: KernelIR, s, outer_vars: set[str]) -> bool:
    """Whether a load of `s`'s own tensor on its right side may read an element that `s`
    writes within one run of the loops inside `outer_vars` (instances that agree on them):
    `x[i] -= L[i, j] * x[j]` over j < i reads only elements the j loop does not write, so it
    is still a reduction along j; `x[i] += x[i] * y[j]` is not."""
    own = [ld for ld in ir.loads(s.rhs) if ld.tensor == s.lhs.tensor]
    if not own:
        return False
    shape = kernel.tensors[s.lhs.tensor].shape
    writes = s.access_map(kernel.params, s.lhs)
    reads = isl.UnionMap.from_map(s.access_map(kernel.params, own[0], shape))
    for ld in own[1:]:
        reads = reads.union(isl.UnionMap.from_map(s.access_map(kernel.params, ld, shape)))
    meets = reads.apply_range(isl.UnionMap.from_map(writes.reverse()))
    its = [isl_helpers.isl_name(v) for v in s.iterators]
    same = " and ".join(f"{v} = {v}_lw" for v, name in zip(its, s.iterators, strict=True)
                        if name in outer_vars) or "true"
    agree = isl.UnionMap(f"{isl_helpers.param_prefix(kernel.params)}{{ {s.name}[{', '.join(its)}]"
                         f" -> {s.name}[{', '.join(f'{v}_lw' for v in its)}] : {same} }}")
    return not meets.intersect(agree).intersect_params(kernel.context).is_empty()


def _may_reverse(relation: isl.Map, src_time: isl.Map, snk_time: isl.Map) -> bool:
    """Is some sink scheduled at or before its source? On the time differences of the
    dependence: is one of them lexicographically <= 0 (zero up to k, negative at k)?"""
    zeros = relation.apply_domain(src_time).apply_range(snk_time).deltas()
    n = zeros.dim(isl.dim_type.set)
    for k in range(n):
        if zeros.is_empty():  # every difference is positive at a dimension before k
            return False
        if not zeros.upper_bound_val(isl.dim_type.set, k, isl.Val(-1)).is_empty():
            return True
        zeros = zeros.fix_val(isl.dim_type.set, k, isl.Val(0))
    return not zeros.is_empty()  # two instances at the same time


@dataclass(frozen=True)
class Violation:
    """A dependence that a schedule reverses, with one concrete pair of instances."""

    dependence: Dependence
    source_instance: dict[str, int]
    sink_instance: dict[str, int]
    sizes: dict[str, int]


def violations(kernel: KernelIR, schedule: isl.Schedule, deps: Dependences | None = None,
               reassociable: frozenset[str] = frozenset()) -> list[Violation]:
    """The dependences of `kernel` that `schedule` fails to respect (empty when legal). The
    reductions of the `reassociable` statements may run in any order: their dependences on
    themselves through the reduced tensor are not checked; nor are those between commuting
    updates of one element (`Dependences.for_reordering`)."""
    deps = deps or Dependences.of(kernel)
    smap = schedule.get_map().intersect_params(kernel.context)
    stmt_maps = {m.get_tuple_name(isl.dim_type.in_): m for m in isl_helpers.maps_of(smap)}
    found = []
    for d in deps.for_reordering(reassociable):
        if d.source == d.sink in reassociable and \
                d.tensor == kernel.statement[d.source].lhs.tensor:
            continue
        relation = d.relation.intersect_params(kernel.context)
        src_time, snk_time = stmt_maps[d.source], stmt_maps[d.sink]
        if not _may_reverse(relation, src_time, snk_time):
            continue
        # Only for a broken dependence: the exact pairs (lex_lt_map is costly in deep nests).
        bad = relation.subtract(src_time.lex_lt_map(snk_time))
        if bad.is_empty():
            continue
        m = bad
        point = m.wrap().sample_point()
        sizes, coords = isl_helpers.point_values(point, m.wrap())
        src = kernel.statement[d.source].iterators
        snk = kernel.statement[d.sink].iterators
        found.append(Violation(d, dict(zip(src, coords[:len(src)], strict=True)),
                               dict(zip(snk, coords[len(src):], strict=True)), sizes))
    return found


# -- the one carried-dependence query ------------------------------------------------------------
#
# "Does this loop carry a dependence?" is asked of a schedule tree's band (is a loop parallel or
# vector legal?) and, by the GPU planners, of loops named by iterator before any schedule tree
# exists (may this variable become a grid or thread index? does this host loop carry?). Both are
# one question on instance -> time maps: the pairs of a dependence that run in one iteration of
# the outer loops and in different iterations of the loop.


def carried(deps: isl.UnionMap, outer: isl.UnionMap, loop: isl.UnionMap) -> isl.UnionMap:
    """The pairs of `deps` (source instance -> sink instance) in the same iteration of `outer`
    and in different iterations of `loop`, both maps from instances to their times: a band's
    prefix and partial schedule, or `iteration_map`s of loop variables. Empty: `loop` carries no
    dependence of `deps` inside `outer`."""
    inner = outer.flat_range_product(loop)
    return deps.intersect(same_time(outer)).subtract(same_time(inner))


def carried_by(band: isl.ScheduleNode, deps: isl.UnionMap) -> isl.UnionMap:
    """The dependences between different iterations of `band` within one outer iteration."""
    return carried(deps, band.get_prefix_schedule_union_map(),
                   band.band_get_partial_schedule_union_map())


def same_time(times: isl.UnionMap) -> isl.UnionMap:
    """Pairs of instances that `times` (instance -> time) puts at the same time."""
    return times.apply_range(times.reverse())


def iteration_map(kernel: KernelIR, loops: Mapping[str, Sequence[str]]) -> isl.UnionMap:
    """Each instance of the statements named in `loops` -> the values of the iterators `loops`
    gives it (by name, in order): the schedule of those loops."""
    prefix = isl_helpers.param_prefix(kernel.params)
    result = isl.UnionMap.empty(kernel.context.get_space())
    for name, names in loops.items():
        dims = ", ".join(isl_helpers.isl_name(v) for v in kernel.statement[name].iterators)
        time = ", ".join(isl_helpers.isl_name(v) for v in names)
        result = result.union(isl.UnionMap(f"{prefix}{{ {name}[{dims}] -> [{time}] }}"))
    return result


def _statements(relation: isl.UnionMap) -> list[str]:
    names = []
    for m in isl_helpers.maps_of(relation):
        for kind in (isl.dim_type.in_, isl.dim_type.out):
            if m.get_tuple_name(kind) not in names:
                names.append(m.get_tuple_name(kind))
    return names


def _union(relation: isl.Map | isl.UnionMap | Dependence) -> isl.UnionMap:
    if isinstance(relation, Dependence):
        relation = relation.relation
    return isl.UnionMap.from_map(relation) if isinstance(relation, isl.Map) else relation


def carries(kernel: KernelIR, relation: isl.Map | isl.UnionMap | Dependence,
            loop: Sequence[str], within: Sequence[str] = ()) -> bool:
    """Whether `relation` relates two instances in one iteration of the loops over the
    iterators `within` and in different iterations of the loops over `loop` (iterators named
    alike in the source and sink statements): the loops `loop` carry it inside `within`."""
    rel = _union(relation)
    stmts = _statements(rel)
    outer = iteration_map(kernel, dict.fromkeys(stmts, within))
    inner = iteration_map(kernel, dict.fromkeys(stmts, loop))
    return not carried(rel, outer, inner).is_empty()


def within_one_iteration(kernel: KernelIR, relation: isl.Map | isl.UnionMap | Dependence,
                         within: Sequence[str]) -> isl.UnionMap:
    """The pairs of `relation` in one iteration of the loops over the iterators `within`."""
    rel = _union(relation)
    return rel.intersect(same_time(iteration_map(kernel, dict.fromkeys(_statements(rel),
                                                                         within))))


def written_before_read(kernel: KernelIR, tensor: str, whole: bool = True) -> bool:
    """Does the kernel write every element of `tensor` (its whole box, for every size the
    context allows), with no read of it that could see a value from before the kernel? Then
    an output need not be zeroed before a call: nothing can observe its prior contents.
    `whole=False` asks only the second (a temporary, which no caller sees: a row-padded copy
    whose padding nothing reads needs no zeroing either)."""
    reads, writes = kernel.access_relations()
    reads, writes = restricted_to(reads, tensor), restricted_to(writes, tensor)
    # A statement over a range read from tensors (CSR rows) runs a subset of its domain,
    # which over-approximates it: its writes may cover nothing at run time.
    ranged = [s for s in kernel.statements if s.data_ranges]
    if ranged:
        writes = writes.subtract_domain(functools.reduce(
            isl.UnionSet.union, (isl.UnionSet.from_set(s.domain) for s in ranged)))
    if whole:
        shape = kernel.tensors[tensor].shape
        box = isl_helpers.box(kernel.params, tensor,
                              tuple(isl_helpers.pw_aff(kernel.params, d) for d in shape))
        missed = isl.UnionSet.from_set(box).subtract(writes.range())
        if not missed.intersect_params(kernel.context).is_empty():
            return False
    if reads.is_empty():
        return True
    info = isl.UnionAccessInfo.from_sink(reads).set_must_source(writes)
    unwritten = info.set_schedule(kernel.schedule).compute_flow().get_may_no_source()
    return unwritten.intersect_params(kernel.context).is_empty()


def carried_between_elements(kernel: KernelIR, dependences, s, candidates: Sequence[str],
                             within: Sequence[str] = ()) -> list[str]:
    """The loops of `candidates` that carry a dependence of statement `s` on itself (among
    `dependences`) between instances writing different elements, inside one iteration of the
    loops `within`: such a loop cannot join `s`'s reduction (`A[i] += A[j + 1]` in `for t`:
    the sums must see what earlier steps wrote to the other elements)."""
    write = s.access_map(kernel.params, s.lhs)
    same_element = isl.UnionMap.from_map(write.apply_range(write.reverse()))
    found: list[str] = []
    for d in dependences:
        if d.source != s.name or d.sink != s.name:
            continue
        rel = within_one_iteration(kernel, d, within).subtract(same_element)
        if rel.is_empty():
            continue
        found += [v for v in candidates if v not in found and carries(kernel, rel, [v], within)]
    return found
