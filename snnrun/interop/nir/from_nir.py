"""NIR import: a graph as snnrun populations and projections (:func:`convert`), and the network built
from it (:func:`build_from_nir`, the config's ``network.from_nir``; :func:`load_nir`)."""

from __future__ import annotations

import math
import re
from os import PathLike
from typing import Any, Mapping

import numpy as np

from ...errors import ConfigError, ShapeError
from .common import array, node_meta, require_nir
from .graph import Converted, inline, read, sanitize
from .neuron_specs import NIR_NEURONS, neuron_spec, node_shape
from .synapse_specs import NIR_STAGES, stage_specs


def convert(graph, dt: float, nir_dt: float | None = None, key: str = "network") -> Converted:
    """A NIR graph as snnrun populations/projections (config nodes) and the tensors to load."""
    nir = require_nir()
    nir_dt = dt * 1e-3 if nir_dt is None else float(nir_dt)
    nodes, edges = inline(nir, graph)
    for a, b in edges:
        for end in (a, b):
            if end not in nodes:
                raise ConfigError(f"{key}.from_nir: edge ({a}, {b}) names no node")
    edges = list(dict.fromkeys(edges))  # a repeated edge is one connection
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    pred: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        succ[a].append(b)
        pred[b].append(a)
    kinds = {n: type(x).__name__ for n, x in nodes.items()}
    for n, kind in kinds.items():
        if kind not in NIR_NEURONS + NIR_STAGES + ("Input", "Output"):
            raise ConfigError(f"{key}.from_nir: NIR node '{n}' ({kind}) has no snnrun counterpart")
    is_pop = {n: kinds[n] == "Input" or kinds[n] in NIR_NEURONS for n in nodes}
    # populations: inputs, then neuron nodes in breadth-first order from them (edges in file order)
    order = [n for a, b in edges for n in (a, b) if kinds[n] == "Input"]
    order = list(dict.fromkeys(order + [n for n in nodes if kinds[n] == "Input"]))
    queue, seen = list(order), set(order)
    while queue:
        for m in succ[queue.pop(0)]:
            if m not in seen:
                seen.add(m)
                queue.append(m)
                if is_pop[m]:
                    order.append(m)
    order += [n for n in nodes if is_pop[n] and n not in order]
    names = sanitize(order)

    # projections: every path population -> stage nodes -> population
    paths: list[tuple[str, list[str], str]] = []

    def follow(source: str, n: str, path: list[str]) -> None:
        if is_pop[n]:
            paths.append((source, path, n))
            return
        if kinds[n] == "Output":
            if path:
                raise ConfigError(f"{key}.from_nir: output '{n}' is reached from '{source}' through {', '.join(path)}; "
                                  f"snnrun reads outputs from neuron populations")
            return
        if n in path:
            raise ConfigError(f"{key}.from_nir: a cycle through {', '.join(path)} has no neuron node")
        if len(pred[n]) > 1:
            raise ConfigError(f"{key}.from_nir: NIR node '{n}' sums {len(pred[n])} inputs ({', '.join(pred[n])}); "
                              f"snnrun sums inputs only at neuron nodes")
        for m in succ[n]:
            follow(source, m, path + [n])

    for a, b in edges:
        if is_pop[a]:
            follow(a, b, [])
    rank = {n: i for i, n in enumerate(order)}
    paths.sort(key=lambda item: rank[item[0]])  # by source population; file order among one source's
    outputs = []
    for n in nodes:
        if kinds[n] == "Output":
            for m in pred[n]:
                if is_pop[m] and names[m] not in outputs:
                    outputs.append(names[m])
    if not outputs:
        raise ConfigError(f"{key}.from_nir: the graph has no Output node fed by a neuron node")

    # shapes: inputs from their type, neuron nodes from their parameters or their incoming paths
    shapes: dict[str, tuple[int, ...]] = {}
    for n in order:
        if kinds[n] == "Input":
            shape = tuple(int(s) for s in np.atleast_1d(array(nodes[n].input_type["input"])))
            if len(shape) == 4 and shape[0] == 1:  # a leading batch dimension of one
                shape = shape[1:]
            shapes[n] = shape
        else:
            shape = node_shape(nodes[n])
            if shape is not None:
                shapes[n] = shape
    converted: dict[int, tuple] = {}
    for _ in range(len(paths) + 1):
        for i, (src, path, dst) in enumerate(paths):
            if i in converted or src not in shapes:
                continue
            binary = kinds[src] in NIR_NEURONS and kinds[src] not in ("LI", "CubaLI", "I")
            where = f"{key}.from_nir: path {src} -> {dst}"
            result = stage_specs(path, nodes, shapes[src], binary, src == dst, dt, nir_dt, where)
            converted[i] = result
            out_shape = result[2]
            if dst not in shapes:
                shapes[dst] = out_shape
            elif math.prod(shapes[dst]) != math.prod(out_shape):
                raise ShapeError(f"{where}: delivers shape {list(out_shape)} to '{dst}' of shape {list(shapes[dst])}")
            elif len(out_shape) > len(shapes[dst]):
                shapes[dst] = out_shape
    for n in order:
        if n not in shapes:
            raise ConfigError(f"{key}.from_nir: the shape of NIR node '{n}' cannot be told (no input reaches it)")

    result = Converted(outputs=outputs)
    for n in order:
        where = f"{key}.from_nir: NIR node '{n}' ({kinds[n]})"
        if kinds[n] == "Input":
            result.populations[names[n]] = {"shape": list(shapes[n])}
            continue
        spec, tensors = neuron_spec(n, nodes[n], shapes[n], dt, nir_dt, where)
        result.populations[names[n]] = {"shape": list(shapes[n]), "neuron": spec}
        if tensors:
            result.neuron_tensors[names[n]] = tensors
    taken = set(result.populations)
    for i, (src, path, dst) in enumerate(paths):
        specs, tensors, _ = converted[i]
        metas = {node_meta(nodes[m]).get("snnrun_projection") for m in path}
        name = metas.pop() if len(metas) == 1 and None not in metas else (path[0] if path else f"{src}_{dst}")
        base, k = re.sub(r"\W", "_", str(name)), 1
        name = base
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        taken.add(name)
        if not specs:  # a direct edge: the source's output is the target's input
            specs = [{"name": "one_to_one", "weight": 1.0}]
        result.projections[name] = {"from": names[src], "to": names[dst], "synapse": specs}
        for index, values in tensors.items():
            result.stage_tensors[(name, index)] = values
    return result


def build_from_nir(node: Mapping[str, Any], input_shape, spike_fn=None, key: str = "network", graph=None):
    """``network: {from_nir: PATH, dt, duration, nir_dt, output, mode}``: the graph converted to
    populations and projections, built by :func:`snnrun.network.build_network` (the same build and
    checks as any network), then its weights loaded. ``graph``: a ``nir.NIRGraph`` used instead of
    reading ``from_nir``."""
    from ...network import NetworkParams, build_network
    from ...schema import parse_params

    params = parse_params(NetworkParams, node, key)
    for part in ("populations", "projections"):
        if getattr(params, part):
            raise ConfigError(f"{key}.{part}: not allowed with {key}.from_nir (the NIR graph defines the {part}); "
                              f"remove it (e.g. ~{key}.{part})")
    graph = read(params.from_nir if graph is None else graph, f"{key}.from_nir")
    converted = convert(graph, params.dt, params.nir_dt, key)
    output = params.output or (converted.outputs[0] if len(converted.outputs) == 1 else converted.outputs)
    spec = {"dt": params.dt, "duration": params.duration, "mode": params.mode, "output": output,
            "populations": converted.populations, "projections": converted.projections}
    network = build_network(spec, None, input_shape, spike_fn, key)
    converted.load_into(network)
    return network


def load_nir(source: Any, dt: float = 1.0, duration: float | None = None, nir_dt: float | None = None,
             input_shape=None, output=None, spike_fn=None):
    """:func:`build_from_nir` from Python arguments; ``source`` is a path or a ``nir.NIRGraph``."""
    path = isinstance(source, (str, PathLike))
    node = {"from_nir": str(source) if path else "<graph>", "dt": dt, "duration": 25.0 if duration is None else duration,
            "nir_dt": nir_dt, "output": output or ""}
    return build_from_nir(node, input_shape, spike_fn, "network", graph=None if path else source)
