"""Config files read as YAML, strictly: one-line errors that name the file and the line.

Hydra reads every config file of its search path (the packaged tree, ``--config-dir``,
``--config-path``/``--config-name``) with OmegaConf's YAML loader. A syntax error or a tab there
stops it with a PyYAML traceback, and a key given twice in one mapping is either an error naming
only the second line (string keys) or silently the last value (other keys, such as ``1:``). So
each file is checked before Hydra reads it (:func:`install_file_check` wraps Hydra's file config
source; ``snnrun`` and ``snnrun validate`` both install it):

- YAML syntax and tab characters: ``FILE line N, column C: ...`` with PyYAML's reason;
- duplicate keys, at any depth: ``FILE: duplicate key `neuron.tau_m` on lines 2 and 3``;
- ``allow_targets`` at the top of a file: refused, it is honoured only on the command line
  (:mod:`snnrun.targets`), never from a config file.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from .errors import ConfigError

TAB_HINT = "a tab character where YAML allows none (indent with spaces; quote a value that holds a tab)"


def display_path(path: str | os.PathLike) -> str:
    """``path`` relative to the working directory when it lies inside it, else absolute."""
    path = os.path.abspath(path)
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return path if relative.startswith("..") else relative


def yaml_error(err: yaml.YAMLError, path: str | os.PathLike) -> ConfigError:
    """One line for a PyYAML error: the file, the line and column, and PyYAML's reason."""
    name = display_path(path)
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    problem = getattr(err, "problem", None) or str(err).strip().splitlines()[0]
    if "'\\t'" in problem:
        problem = TAB_HINT
    context, context_mark = getattr(err, "context", None), getattr(err, "context_mark", None)
    if context and context.startswith("while") and context_mark is not None and context_mark is not mark:
        problem += f" ({context} that starts on line {context_mark.line + 1})"
    elif context and not context.startswith("while"):  # "expected a single document in the stream, but found ..."
        problem = f"{context}, {problem}"
    where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return ConfigError(f"{name}{where}: invalid YAML: {problem}")


def _loader():
    from omegaconf._utils import get_yaml_loader

    return get_yaml_loader()  # the loader Hydra reads configs with: the same tags for the same text


def _key(node: yaml.Node):
    """What a mapping key becomes once loaded (``1`` and ``"1"`` differ, ``a`` and ``'a'`` do not)."""
    if node.tag == "tag:yaml.org,2002:str":
        return node.value
    try:
        return node.tag, yaml.safe_load(node.value)
    except yaml.YAMLError:
        return node.tag, node.value


def _duplicates(root: yaml.Node, name: str) -> None:
    seen_nodes: set[int] = set()

    def visit(node: yaml.Node, path: str) -> None:
        if id(node) in seen_nodes:  # an alias: checked where its anchor is (and no endless recursion)
            return
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = _key(key_node)
                full = f"{path}.{key_node.value}" if path else str(key_node.value)
                line = key_node.start_mark.line + 1
                if key in first:
                    raise ConfigError(f"{name}: duplicate key `{full}` on lines {first[key]} and {line}; give each "
                                      f"key once (YAML loaders keep one of the values without a word)")
                first[key] = line
                visit(value_node, full)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                visit(item, f"{path}[{i}]")

    visit(root, "")


def check_config_text(text: str, path: str | os.PathLike, refuse_allow_targets: bool = True) -> None:
    """Raise a one-line :class:`ConfigError` for invalid YAML, a duplicate key or (with
    ``refuse_allow_targets``) a top-level ``allow_targets``."""
    name = display_path(path)
    try:
        root = yaml.compose(text, Loader=_loader())
    except yaml.YAMLError as err:
        raise yaml_error(err, path) from None
    if root is None:
        return
    _duplicates(root, name)
    if refuse_allow_targets and isinstance(root, yaml.MappingNode):
        for key_node, value_node in root.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == "allow_targets":
                value = yaml.safe_load(yaml.serialize(value_node)) if value_node is not None else None
                shown = "[" + ",".join(map(str, value)) + "]" if isinstance(value, list) else "[MODULE]"
                raise ConfigError(f"{name} line {key_node.start_mark.line + 1}: allow_targets is honoured only on "
                                  f"the command line, never from a config file: remove it here and, if you trust "
                                  f"these modules, pass it there: snnrun allow_targets={shown} ...")


def check_config_file(path: str | os.PathLike, refuse_allow_targets: bool = True) -> None:
    """:func:`check_config_text` on the file at ``path`` (read as UTF-8, as Hydra reads it)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{display_path(path)}: not a UTF-8 text file ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise ConfigError(f"{display_path(path)}: cannot read ({err.strerror or err})") from None
    check_config_text(text, path, refuse_allow_targets)


def install_file_check() -> None:
    """Check each config file Hydra loads from a ``file://`` search path entry (``--config-dir``,
    ``--config-path``, ``hydra.searchpath``) before Hydra reads it. Idempotent. (Hydra re-executes
    its config source plugin modules when it scans for plugins, so the wrapper sits on the config
    repository that asks them, not on the file source class.)"""
    from hydra._internal.config_repository import ConfigRepository
    from hydra.core.object_type import ObjectType

    current = ConfigRepository.load_config
    original = getattr(current, "snnrun_original", current)

    def load_config(self, config_path: str):
        source = self._find_object_source(config_path=config_path, object_type=ObjectType.CONFIG)
        full_path = None
        if source is not None and source.scheme() == "file":
            full_path = os.path.realpath(os.path.join(source.path, source._normalize_file_name(config_path)))
            if os.path.isfile(full_path):
                check_config_file(full_path)
        try:
            return original(self, config_path)
        except yaml.YAMLError as err:  # anything the strict check let through
            if full_path is None:
                raise
            raise yaml_error(err, full_path) from None

    load_config.snnrun_original = original
    ConfigRepository.load_config = load_config
