"""Chains of NIR stage nodes (Affine, Conv2d, pooling, Flatten, Scale, Delay, ...) as snnrun synapse specs."""

from __future__ import annotations

import math

import numpy as np

from ...errors import ConfigError, ShapeError
from .common import array, clean, node_meta

#: NIR node types that become synapse stages on import
NIR_STAGES = ("Affine", "Linear", "Conv1d", "Conv2d", "AvgPool2d", "SumPool2d", "Flatten", "Scale", "Delay",
              "Threshold")


def _pair(value, what: str, where: str) -> int:
    values = np.atleast_1d(array(value)).astype(np.int64).ravel()
    if not np.all(values == values[0]):
        raise ConfigError(f"{where}: {what} {values.tolist()} differs between height and width; snnrun takes one "
                          f"value for both")
    return int(values[0])


def _pool_out(shape, k, s, p, where):
    if len(shape) != 3:
        raise ShapeError(f"{where}: pooling needs a [channels, height, width] input, got {list(shape)}")
    c, h, w = shape
    return (c, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)


def stage_specs(path: list[str], nodes: dict, shape: tuple[int, ...], binary: bool, last_is_self: bool,
            dt: float, nir_dt: float, where: str):
    """Synapse specs of a chain of NIR stage nodes from a source of ``shape``; returns
    (specs, {stage index: tensors}, output shape)."""
    specs: list[dict] = []
    tensors: dict[int, dict[str, np.ndarray]] = {}
    i = 0
    while i < len(path):
        name, node = path[i], nodes[path[i]]
        kind, meta = type(node).__name__, node_meta(node)
        at = f"{where}: NIR node '{name}' ({kind})"
        last = i == len(path) - 1
        if kind in ("Affine", "Linear"):
            weight = array(node.weight).astype(np.float32)
            if weight.ndim != 2:
                raise ShapeError(f"{at}: weight of shape {list(weight.shape)}; snnrun's dense takes [out, in]")
            if weight.shape[1] != math.prod(shape):
                raise ShapeError(f"{at}: weight takes {weight.shape[1]} inputs but receives {list(shape)}")
            if not last and weight.shape[0] != math.prod(shape):
                raise ConfigError(f"{at}: a shape-changing Affine/Linear must be the last node before a neuron node "
                                  f"in snnrun")
            bias = array(node.bias).astype(np.float32) if kind == "Affine" and node.bias is not None else None
            has_bias = bias is not None and bool(np.any(bias != 0))
            spec = {"name": "dense", "bias": has_bias}
            if meta.get("snnrun_synapse") == "recurrent" and last and last_is_self:
                spec = {"name": "recurrent", "bias": has_bias,
                        "self_connections": bool(np.any(np.diag(weight) != 0))}
            specs.append(spec)
            tensors[len(specs) - 1] = {"weight": weight, **({"bias": bias} if has_bias else {})}
            shape, binary = (weight.shape[0],), False
        elif kind == "Conv2d":
            weight = array(node.weight).astype(np.float32)
            if weight.ndim != 4 or weight.shape[2] != weight.shape[3]:
                raise ConfigError(f"{at}: kernel of shape {list(weight.shape[2:])}; snnrun's conv2d takes square kernels")
            if _pair(node.dilation, "dilation", at) != 1:
                raise ConfigError(f"{at}: dilation {array(node.dilation).tolist()}; snnrun's conv2d has none")
            k, stride = weight.shape[2], _pair(node.stride, "stride", at)
            padding = node.padding
            if isinstance(padding, str):
                if padding == "same" and (k % 2 == 0 or stride != 1):
                    raise ConfigError(f"{at}: padding 'same' with an even kernel or a stride")
                padding = (k - 1) // 2 if padding == "same" else 0
            padding = _pair(padding, "padding", at)
            groups = int(array(node.groups))
            if len(shape) != 3 or shape[0] != weight.shape[1] * groups:
                raise ShapeError(f"{at}: takes {weight.shape[1] * groups} channels but receives {list(shape)}")
            bias = array(node.bias).astype(np.float32) if node.bias is not None else None
            has_bias = bias is not None and bool(np.any(bias != 0))
            specs.append({"name": "conv2d", "channels": int(weight.shape[0]), "kernel_size": int(k), "stride": stride,
                          "padding": padding, "groups": groups, "bias": has_bias})
            tensors[len(specs) - 1] = {"weight": weight, **({"bias": bias} if has_bias else {})}
            _, h, w = shape
            shape = (int(weight.shape[0]), (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1)
            binary = False
        elif kind in ("AvgPool2d", "SumPool2d"):
            k = _pair(node.kernel_size, "kernel_size", at)
            s = _pair(node.stride, "stride", at)
            p = _pair(node.padding, "padding", at)
            following = nodes[path[i + 1]] if i + 1 < len(path) else None
            pool = {"kernel_size": k, "stride": s, "padding": p}
            if kind == "SumPool2d" and type(following).__name__ == "Threshold":
                theta = array(following.threshold).astype(np.float64)
                if not (np.all(theta == theta.flat[0]) and 0 <= theta.flat[0] < 1):
                    raise ConfigError(f"{where}: SumPool2d + Threshold({theta.flat[0]}) is maxpool only for a "
                                      f"threshold in [0, 1)")
                if not binary:
                    raise ConfigError(f"{at}: SumPool2d + Threshold is maxpool only for spikes (0/1), and its input "
                                      f"is not spikes")
                specs.append({"name": "maxpool", **pool})
                i += 1
            else:
                specs.append({"name": "avgpool", **pool})
                if kind == "SumPool2d":  # the sum is the average times the window
                    specs.append({"name": "one_to_one", "weight": float(k * k)})
                binary = False
            shape = _pool_out(shape, k, s, p, at)
        elif kind == "Flatten":
            specs.append({"name": "flatten"})
            shape = (math.prod(shape),)
        elif kind == "Scale":
            scale = array(node.scale).astype(np.float32)
            if scale.size == 1 or np.all(scale == scale.flat[0]):
                specs.append({"name": "one_to_one", "weight": float(scale.flat[0])})
            else:
                if scale.size != math.prod(shape):
                    raise ShapeError(f"{at}: {scale.size} factors for an input of shape {list(shape)}")
                specs.append({"name": "one_to_one", "learnable": True})
                tensors[len(specs) - 1] = {"weight": scale.reshape(shape)}
            binary = False
        elif kind == "Delay":
            steps = array(node.delay).astype(np.float64) / nir_dt
            whole = np.round(steps)
            if np.any(np.abs(steps - whole) > 1e-6 * np.maximum(1.0, np.abs(steps))) or np.any(whole < 0):
                raise ConfigError(f"{at}: delays of {steps.ravel()[:4].tolist()}... steps are not whole numbers of "
                                  f"dt = {dt} ms (nir_dt = {nir_dt}); choose a dt that divides them")
            whole = whole.astype(np.int64)
            longest = int(whole.max()) if whole.size else 0
            if whole.size <= 1 or np.all(whole == whole.flat[0]):
                specs.append({"name": "delay", "delay": clean(longest * dt)})
            else:
                if whole.size != math.prod(shape):
                    raise ShapeError(f"{at}: {whole.size} delays for an input of shape {list(shape)}")
                specs.append({"name": "delay", "delay": clean(longest * dt), "per_neuron": True})
                tensors[len(specs) - 1] = {"delays": whole.reshape(-1)}
        elif kind == "Threshold":
            raise ConfigError(f"{at}: a Threshold node has an snnrun counterpart only right after a SumPool2d of "
                              f"spikes (maxpool)")
        else:
            raise ConfigError(f"{at}: no snnrun synapse for it; importable: Affine, Linear, Conv2d, AvgPool2d, "
                              f"SumPool2d, Flatten, Scale, Delay")
        i += 1
    return specs, tensors, tuple(int(s) for s in shape)
