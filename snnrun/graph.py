"""The population graph of a network: an order to compute the populations in, the edges that close
cycles, and the groups of populations that lie on a common cycle (the only ones that must be
stepped together, one time step at a time)."""

from __future__ import annotations


def order(names: list[str], edges: list[tuple[str, str, str]], inputs: list[str]) -> tuple[list[str], list[str]]:
    """Topological order after removing the edges that close cycles (DFS back edges)."""
    succ = {n: [] for n in names}
    for edge, src, dst in edges:
        succ[src].append((edge, dst))
    state, back = {}, []

    def visit(n):
        state[n] = 1
        for edge, m in succ[n]:
            if state.get(m) == 1:
                back.append(edge)
            elif m not in state:
                visit(m)
        state[n] = 2

    for n in inputs + names:
        if n not in state:
            visit(n)
    kept = [(e, s, d) for e, s, d in edges if e not in back]
    indegree = {n: 0 for n in names}
    for _, _, d in kept:
        indegree[d] += 1
    ready = [n for n in names if indegree[n] == 0]
    order = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for e, s, d in kept:
            if s == n:
                indegree[d] -= 1
                if indegree[d] == 0:
                    ready.append(d)
    return order, back


def cyclic_groups(names: list[str], edges: list[tuple[str, str, str]]) -> list[set[str]]:
    """The strongly connected components of more than one population, or of one population with an
    edge onto itself (Tarjan's algorithm): the populations on a common cycle."""
    succ = {n: [] for n in names}
    for _, src, dst in edges:
        succ[src].append(dst)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(n: str) -> None:
        index[n] = low[n] = len(index)
        stack.append(n)
        on_stack.add(n)
        for m in succ[n]:
            if m not in index:
                visit(m)
                low[n] = min(low[n], low[m])
            elif m in on_stack:
                low[n] = min(low[n], index[m])
        if low[n] == index[n]:
            group = set()
            while True:
                m = stack.pop()
                on_stack.discard(m)
                group.add(m)
                if m == n:
                    break
            if len(group) > 1 or n in succ[n]:
                groups.append(group)

    for n in names:
        if n not in index:
            visit(n)
    return groups
