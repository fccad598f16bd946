"""What ``snnrun list`` prints: every registry's components with parameters, defaults and units."""

from __future__ import annotations

from .errors import ConfigError
from .schema import describe, suggest


def registries() -> dict:
    from .data import DATASETS
    from .decoders import DECODERS
    from .encoders import ENCODERS
    from .learning import LEARNERS
    from .neurons import NEURONS
    from .rewards import REWARDS
    from .surrogate import SURROGATES
    from .synapses import SYNAPSES

    return {"neuron": NEURONS, "surrogate": SURROGATES, "synapse": SYNAPSES, "encoder": ENCODERS,
            "decoder": DECODERS, "learner": LEARNERS, "data": DATASETS, "reward": REWARDS}


def print_catalog(group: str | None = None) -> None:
    regs = registries()
    groups = list(regs) + ["optimizer", "scheduler"]
    if group is None:
        for name in groups:
            if name in regs:
                print(f"{name}: {', '.join(regs[name].names())}")
        from .optim import optimizer_classes, scheduler_classes
        print(f"optimizer: {', '.join(sorted(optimizer_classes()))} (torch.optim)")
        print(f"scheduler: {', '.join(sorted(scheduler_classes()))} (torch.optim.lr_scheduler)")
        return
    if group in ("optimizer", "scheduler"):
        from .optim import optimizer_classes, scheduler_classes
        classes = optimizer_classes() if group == "optimizer" else scheduler_classes()
        import inspect
        for name in sorted(classes):
            sig = inspect.signature(classes[name])
            args = ", ".join(f"{n}={p.default!r}" if p.default is not p.empty else n
                             for n, p in sig.parameters.items() if n not in ("params", "optimizer"))
            print(f"{name}({args})")
        return
    if group not in regs:
        raise ConfigError(f"list: unknown group '{group}'{suggest(group, groups)}; groups: {', '.join(groups)}")
    registry = regs[group]
    for name in registry.names(aliases=False):
        cls = registry.get(name)
        aliases = [a for a in registry.names() if a not in registry.names(aliases=False) and registry.get(a) is cls]
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        print(f"{name}" + (f" (aliases: {', '.join(aliases)})" if aliases else "") + (f": {doc}" if doc else ""))
        for field, tp, default, unit, help_text in describe(cls.Params):
            unit_text = f" [{unit}]" if unit else ""
            print(f"    {field}: {tp} = {default!r}{unit_text}  {help_text}".rstrip())
