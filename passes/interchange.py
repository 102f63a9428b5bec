"""Interchange a reduction loop out past a loop it shares with the statements that consume its
result: lu's row update.

    for j in 0:i {                                 for k in -1:i {
        A[i, j] -= A[i, k] * A[k, j]  (k < j)  ->      A[i, j] -= A[i, k] * A[k, j]  (j in k+1:i)
        A[i, j] = A[i, j] / A[j, j]                    A[i, k+1] = A[i, k+1] / A[k+1, k+1]
    }                                              }

In program order the reduction walks the column `A[k, j]` (stride N) innermost. Its j loop
would walk every access but `A[i, k]` with stride 1, but it cannot simply go innermost: split
off its own j loop (fission), the reduction of A[i, j] would need every division of an earlier
A[i, k] first, and the division needs its reduction first. Interchanged, the reduction's k
loop runs outside its j loop, and its consumers in the shared loop run `offset` iterations off
(the division of A[i, j] right after the last update, k = j - 1, and before the first read,
k = j). Each element is still reduced in the same order of k, as in program order.
`passes/default.py` tries these candidates where the fission is illegal; the legality check
(every dependence, passes/legality.py) picks the offset.
"""

from __future__ import annotations

from loopweave.passes.placement import Placement

#: Offsets tried for the consumers, in order: the same iteration (a consumer that needs the
#: reduction up to k = j), then one earlier (up to k = j - 1: lu, ludcmp).
OFFSETS = (0, -1)


def interchange_candidates(placements: dict[str, Placement], name: str,
                           inner: str) -> list[list[tuple]]:
    """Step lists (for `Schedule`) that move statement `name`'s loop `inner` innermost where
    `inner` is a loop `name` shares with other statements: `name`'s loops from `inner` on
    reordered with `inner` last, and the statements sharing `inner` with it shifted by each
    of OFFSETS along their loop at that depth; none where `inner` is already innermost."""
    mine = placements[name]
    names = mine.names()
    depth = names.index(inner)
    if depth == len(names) - 1:
        return []
    reorder = ("reorder", name, *[n for n in names[depth:] if n != inner], inner)
    sharing = sorted(n for n, p in placements.items() if n != name and len(p.loops) > depth
                     and p.order[:depth + 1] == mine.order[:depth + 1])
    return [[reorder, *[("shift", n, placements[n].names()[depth], offset)
                        for n in sharing if offset]] for offset in OFFSETS]
