"""Optimizers and LR schedulers by class name from ``torch.optim`` / ``torch.optim.lr_scheduler``.

Every class there is available (no hand-kept list); the remaining config keys
are its keyword arguments, checked against its signature before building. A key set
to null takes the class's own default, so ``optimizer.name=X`` alone switches class
without carrying the previous class's defaults over. Classes snnrun's loop cannot drive
(an optimizer whose ``step`` needs a closure or sparse gradients, a scheduler built from
other schedulers or a Python function) are refused by name.
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping

import torch

from .errors import ConfigError
from .schema import suggest


def _classes(module, base) -> dict[str, type]:
    return {name: obj for name, obj in vars(module).items()
            if inspect.isclass(obj) and issubclass(obj, base) and obj is not base and not name.startswith("_")}


def optimizer_classes() -> dict[str, type]:
    return _classes(torch.optim, torch.optim.Optimizer)


def scheduler_classes() -> dict[str, type]:
    sched = torch.optim.lr_scheduler
    base = getattr(sched, "LRScheduler", None) or sched._LRScheduler
    found = _classes(sched, base)
    found["ReduceLROnPlateau"] = sched.ReduceLROnPlateau
    return found


def _bind(cls, first: str, first_value: Any, kwargs: dict, key: str) -> None:
    signature = inspect.signature(cls)
    names = [n for n in signature.parameters if n not in (first, "self")]
    for name in kwargs:
        if name not in signature.parameters:
            raise ConfigError(f"{key}.{name}: {cls.__name__} has no argument '{name}'{suggest(name, names)}; "
                              f"valid: {', '.join(names)}")
    try:
        signature.bind(first_value, **kwargs)
    except TypeError as err:
        missing = [n for n, p in signature.parameters.items()
                   if p.default is inspect.Parameter.empty and n not in kwargs and n != first
                   and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        raise ConfigError(f"{key}: {cls.__name__} needs {', '.join(missing) or 'other arguments'} ({err})") from None


def _split(node: Mapping[str, Any], key: str, extra: tuple[str, ...] = ()) -> tuple[Any, dict, dict]:
    if not isinstance(node, Mapping):
        raise ConfigError(f"{key}: expected a mapping such as {{name: ..., ...}}, got {node!r}")
    node = dict(node)
    if "name" not in node:
        raise ConfigError(f"{key}.name: missing")
    name = node.pop("name")
    if not isinstance(name, str):
        raise ConfigError(f"{key}.name: expected a class name (a string), got {name!r}")
    own = {k: node.pop(k) for k in extra if k in node}
    node = {k: v for k, v in node.items() if v is not None}  # null: the class's own default
    for k, v in node.items():
        if isinstance(v, list):
            node[k] = tuple(v)
    return name, node, own


def _configurable(cls: type) -> str | None:
    """What scheduler ``cls`` needs that no config value can be (None: a config can build it)."""
    names = inspect.signature(cls).parameters
    if "schedulers" in names:
        return "other scheduler objects (schedulers)"
    if "lr_lambda" in names:
        return "a Python function (lr_lambda)"
    return None


def _unusable(cls: type) -> str | None:
    """Why snnrun's training loop cannot drive optimizer ``cls`` (None: it can)."""
    closure = inspect.signature(cls.step).parameters.get("closure")
    if closure is not None and closure.default is inspect.Parameter.empty:
        return "its step needs a closure that re-evaluates the loss, which snnrun's loop does not pass"
    if cls.__name__ == "SparseAdam":
        return "it takes only sparse gradients (nn.Embedding(sparse=True)); snnrun's weights have dense ones"
    return None


def _check_usable(name: str, classes: dict[str, type], key: str) -> None:
    reason = _unusable(classes[name])
    if reason:
        usable = [n for n in sorted(classes) if _unusable(classes[n]) is None]
        raise ConfigError(f"{key}.name: {name} cannot train here: {reason}; choose one of {', '.join(usable)}")


#: optimizers whose step is in the units of the gradient (Δw = −lr·g): a weight in unit s takes lr·s²
GRADIENT_UNIT = ("SGD", "ASGD")
#: optimizers whose step carries the parameter's unit by themselves (Adadelta's RMS[Δw]/RMS[g]): lr as given
UNIT_FREE = ("Adadelta",)


def unit_groups(params, units: Mapping[int, float], optimizer: str) -> list:
    """Parameter groups that make one ``lr`` mean the same relative step for weights of any unit.

    ``units[id(p)]`` is the scale a weight was initialised at (a stage's ``weight_scale``: the target
    model's drive times the ``network.init_rate`` calibration; 1 when absent). Writing ``w = s·ŵ`` with
    ŵ dimensionless, a step of ``lr`` on ŵ is a step of ``lr·s`` on w for the normalised optimizers
    (Adam, RMSprop, Adagrad, Rprop, ...), ``lr·s²`` for :data:`GRADIENT_UNIT` and ``lr`` for
    :data:`UNIT_FREE`; each group carries that factor as ``lr_scale``. When every unit is 1 the
    parameters come back as one plain list."""
    params = list(params)
    if all(units.get(id(p), 1.0) == 1.0 for p in params):
        return params
    power = 2 if optimizer in GRADIENT_UNIT else 0 if optimizer in UNIT_FREE else 1
    groups: dict[float, list] = {}
    for p in params:
        groups.setdefault(units.get(id(p), 1.0), []).append(p)
    return [{"params": ps, "lr_scale": unit ** power} for unit, ps in groups.items()]


def configured_lr(optimizer: torch.optim.Optimizer) -> float:
    """The learning rate as configured (and scheduled): the first group's ``lr`` over its ``lr_scale``."""
    group = optimizer.param_groups[0]
    return group["lr"] / group.get("lr_scale", 1.0)


def weight_units(module: torch.nn.Module) -> dict[int, float]:
    """``id(weight) -> unit`` of every submodule that records a ``weight_scale`` (see :func:`unit_groups`).

    For a network (a module with ``projections`` and ``populations``) the unit of a projection's weights is

        unit = weight_scale · κ,    κ = (drive + adaptation) / drive

    with κ the :attr:`~snnrun.neurons.base.OperatingRange.lr_factor` of the target population's model:
    ``weight_scale`` (drive × ``network.init_rate`` calibration) sets the input at which the target starts
    firing, and κ the extra input each further spike costs under its spike-triggered adaptation, so one
    ``lr`` changes the spike count of an adapting model (Izhikevich RS, κ = 3) as fast as a non-adapting one
    (κ = 1: LIF, IF, QIF, ... keep the weight scale)."""
    units = {id(m.weight): float(m.weight_scale) for m in module.modules()
             if hasattr(m, "weight_scale") and isinstance(getattr(m, "weight", None), torch.nn.Parameter)}
    projections, populations = getattr(module, "projections", None), getattr(module, "populations", None)
    if projections is None or populations is None:
        return units
    for proj in projections.values():
        neuron = getattr(populations[proj.target], "neuron", None)
        try:
            factor = float(neuron.operating_range().lr_factor)
        except (AttributeError, NotImplementedError):
            continue
        if factor == 1.0:
            continue
        for stage in proj.stages:
            weight = getattr(stage, "weight", None)
            if weight is not None and id(weight) in units:
                units[id(weight)] *= factor
    return units


def build_optimizer(node: Mapping[str, Any], params, key: str = "optimizer") -> torch.optim.Optimizer:
    """``{name: Adam, lr: 1e-3, ...}`` -> ``torch.optim.Adam(params, lr=1e-3, ...)``. ``params`` may be
    groups of :func:`unit_groups`: each group's ``lr`` is the configured one times its ``lr_scale``."""
    name, kwargs, _ = _split(node, key)
    classes = optimizer_classes()
    if name not in classes:
        raise ConfigError(f"{key}.name: unknown optimizer '{name}'{suggest(str(name), classes)}; "
                          f"valid names (torch.optim): {', '.join(sorted(classes))}")
    _check_usable(name, classes, key)
    params = list(params)
    if not params:
        raise ConfigError(f"{key}: no trainable parameters for the optimizer (check learner.trainable)")
    _bind(classes[name], "params", params, kwargs, key)
    try:
        optimizer = classes[name](params, **kwargs)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{key}: {name} rejected its arguments: {err}") from None
    for group in optimizer.param_groups:
        if "lr_scale" in group and isinstance(group.get("lr"), (int, float)):
            group["lr"] = group["lr"] * group["lr_scale"]
    return optimizer


def build_scheduler(node: Mapping[str, Any] | None, optimizer, key: str = "scheduler"):
    """``{name: CosineAnnealingLR, T_max: 10, interval: epoch}`` -> (scheduler or None, interval)."""
    if node is None or (isinstance(node, Mapping) and node.get("name") in (None, "none", "None")):
        return None, "epoch"
    name, kwargs, own = _split(node, key, extra=("interval",))
    interval = own.get("interval", "epoch")
    if interval not in ("epoch", "step"):
        raise ConfigError(f"{key}.interval: '{interval}' is not one of epoch, step")
    classes = scheduler_classes()
    if name not in classes:
        raise ConfigError(f"{key}.name: unknown scheduler '{name}'{suggest(str(name), classes)}; "
                          f"valid names (torch.optim.lr_scheduler): {', '.join(sorted(classes))}")
    if _configurable(classes[name]) is not None:
        usable = ", ".join(n for n in sorted(classes) if _configurable(classes[n]) is None)
        raise ConfigError(f"{key}.name: {name} takes {_configurable(classes[name])}, which a config cannot give; "
                          f"choose one of {usable}")
    _bind(classes[name], "optimizer", optimizer, kwargs, key)
    for bound in ("max_lr", "base_lr"):  # OneCycleLR, CyclicLR: one number sets every group; keep the units
        if isinstance(kwargs.get(bound), (int, float)) and any("lr_scale" in g for g in optimizer.param_groups):
            kwargs[bound] = [kwargs[bound] * g.get("lr_scale", 1.0) for g in optimizer.param_groups]
    try:
        return classes[name](optimizer, **kwargs), interval
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{key}: {name} rejected its arguments: {err}") from None


# --- carrying optimizer and scheduler state over a resume or fork -----------------------------------------
_RUNTIME_KEYS = ("params", "lr", "initial_lr")


def _base_lr(group: Mapping[str, Any]) -> Any:
    return group.get("initial_lr", group.get("lr"))


def optimizer_compatible(optimizer: torch.optim.Optimizer, saved: Mapping[str, Any],
                         saved_class: str | None = None) -> bool:
    """Whether ``saved`` (an optimizer ``state_dict``) was made by an optimizer configured as
    ``optimizer`` is: same class (when recorded), same parameter groups and sizes, same
    hyperparameters and base learning rate. Only then is its state (moments, step counts) carried over."""
    if saved_class is not None and saved_class != type(optimizer).__name__:
        return False
    groups, old = optimizer.state_dict()["param_groups"], saved.get("param_groups", [])
    if len(groups) != len(old):
        return False
    for new, before in zip(groups, old):
        if len(new["params"]) != len(before.get("params", [])) or _base_lr(new) != _base_lr(before):
            return False
        if {k: v for k, v in new.items() if k not in _RUNTIME_KEYS} != \
                {k: v for k, v in before.items() if k not in _RUNTIME_KEYS}:
            return False
    return True


def schedule_compatible(scheduler, saved: Mapping[str, Any], saved_class: str | None = None) -> bool:
    """Whether ``saved`` (a scheduler ``state_dict``) follows the same schedule as ``scheduler`` (built
    from the current config): same class (when recorded), same constructor arguments (``T_max`` of a
    cosine schedule whose horizon is ``trainer.epochs``, ``step_size``, ``gamma``, ...) and base rates."""
    if saved_class is not None and saved_class != type(scheduler).__name__:
        return False
    fresh = scheduler.state_dict()
    if set(fresh) != set(saved):
        return False
    names = [n for n in inspect.signature(type(scheduler)).parameters if n not in ("optimizer", "last_epoch", "verbose")]
    return all(fresh[n] == saved[n] for n in names + ["base_lrs"] if n in fresh)


def advance_scheduler(scheduler, steps: int) -> bool:
    """Step a freshly built ``scheduler`` ``steps`` times (without training), so the learning rate is
    the one a run started with this schedule has after ``steps`` epochs (or optimizer steps). False
    for ``ReduceLROnPlateau``, whose steps need the monitored metric: it stays fresh."""
    import warnings

    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        return False
    with warnings.catch_warnings():  # "lr_scheduler.step() before optimizer.step()": intended here
        warnings.simplefilter("ignore")
        for _ in range(steps):
            scheduler.step()
    return True
