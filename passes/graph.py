"""The dataflow graph of a kernel: statements and the tensors between them (networkx).

    statement --writes--> tensor --read by--> statement

Fusion decisions ask it which statements produce what others consume.
"""

from __future__ import annotations

import networkx as nx

from loopweave.ir.kernel import KernelIR


def dataflow_graph(kernel: KernelIR) -> nx.DiGraph:
    """Nodes ("stmt", name) and ("tensor", name); edges from writer to tensor to reader."""
    g = nx.DiGraph()
    temporaries = {t.name for t in kernel.temporaries}
    for t in kernel.tensors:
        g.add_node(("tensor", t), temporary=t in temporaries)
    for s in kernel.statements:
        g.add_node(("stmt", s.name), init=s.is_init)
        g.add_edge(("stmt", s.name), ("tensor", s.lhs.tensor))
        for load in s.reads:
            if load.tensor != s.lhs.tensor:
                g.add_edge(("tensor", load.tensor), ("stmt", s.name))
    return g


def consumed_temporaries(g: nx.DiGraph, producers: list[str], consumers: list[str]) -> set[str]:
    """Temporaries written by one of `producers` and read by one of `consumers`."""
    found = set()
    for p in producers:
        for _, tensor in g.out_edges(("stmt", p)):
            if g.nodes[tensor]["temporary"] and any(
                    g.has_edge(tensor, ("stmt", c)) for c in consumers):
                found.add(tensor[1])
    return found
