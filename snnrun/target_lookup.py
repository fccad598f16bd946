"""What a ``_target_`` in a config names: the entries that hold one, and the object a target string
names, imported only from allowed modules and checked to come from them."""

from __future__ import annotations

import inspect
from typing import Any, Iterator, Mapping

from omegaconf import DictConfig, ListConfig

from .errors import ConfigError

HINT = "if you trust its module, allow it on the command line: snnrun allow_targets=[MODULE] ..."


def within(name: str | None, modules) -> bool:
    """Whether the module (or object path) ``name`` is one of ``modules`` or inside one of them."""
    return bool(name) and any(name == m or name.startswith(m + ".") for m in modules)


def walk(node: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    """(path of the mapping, key, value) for every entry, without resolving interpolations."""
    if isinstance(node, (DictConfig, Mapping)):
        keys = list(node.keys())
        for key in keys:
            child = node._get_node(key) if isinstance(node, DictConfig) else node[key]
            value = child if isinstance(child, (DictConfig, ListConfig)) else (
                child._value() if hasattr(child, "_value") else child)
            yield path, str(key), (node, key)
            yield from walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, (ListConfig, list, tuple)):
        for i in range(len(node)):
            child = node._get_node(i) if isinstance(node, ListConfig) else node[i]
            value = child if isinstance(child, (DictConfig, ListConfig)) else (
                child._value() if hasattr(child, "_value") else child)
            yield from walk(value, f"{path}[{i}]")


def resolve_value(where: tuple, key: str) -> Any:
    """The value of the entry ``where`` (a ``(mapping, key)`` from :func:`walk`), interpolations resolved."""
    node, name = where
    try:
        return node[name]  # resolves an interpolation the way Hydra will
    except Exception as err:  # noqa: BLE001 - any failure to resolve is a refusal
        raise ConfigError(f"{key}: cannot resolve ({str(err).splitlines()[0]}); refused") from None


def locate(target: str, key: str, modules: tuple[str, ...], what: str) -> Any:
    """The object ``target`` names, imported only when ``target`` is within ``modules``, and refused
    unless the object's own module is too; ``what`` says in the refusal what ``key`` takes."""
    if not isinstance(target, str) or not within(target, modules):
        raise ConfigError(f"{key}: `{target}` is not allowed ({what}); {HINT}")
    from hydra._internal.utils import _locate as hydra_locate

    try:
        obj = hydra_locate(target)
    except Exception as err:  # noqa: BLE001 - import errors of any kind
        raise ConfigError(f"{key}: cannot import `{target}` ({str(err).strip().splitlines()[-1]})") from None
    module = getattr(obj, "__module__", None) if not inspect.ismodule(obj) else None
    if not within(module, modules):
        raise ConfigError(f"{key}: `{target}` is `{getattr(obj, '__qualname__', obj)}` from module {module}, "
                          f"which is not allowed ({what}); {HINT}")
    return obj


def component_name(obj: Any) -> str | None:
    """The registry name of a registered snnrun class, or the ``torch.optim`` class name."""
    if not inspect.isclass(obj):
        return None
    if "registry_name" in vars(obj):
        return vars(obj)["registry_name"]
    from .optim import optimizer_classes, scheduler_classes

    for classes in (optimizer_classes(), scheduler_classes()):
        if classes.get(obj.__name__) is obj:
            return obj.__name__
    return None
