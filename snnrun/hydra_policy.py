"""What a config may do to the process: environment variables, logging, output paths.

A config describes an experiment. Through its ``hydra`` section it could also reach the process
that runs it: ``hydra.job.env_set`` sets environment variables for the job (``CXX`` or
``TORCH_EXTENSIONS_DIR`` would make torch compile snnrun's kernels with a program the config
names), ``hydra.job_logging`` / ``hydra.hydra_logging`` are handed to ``logging.config`` (a
``FileHandler`` on a shell start-up file with a formatter that is a shell command appends a
working command line to it), and ``hydra.output_subdir`` says where ``config.yaml``,
``hydra.yaml`` and ``overrides.yaml`` are written. snnrun allows:

- ``hydra.job.env_set``: only the variables in :data:`ALLOWED_ENV` (thread counts, device
  visibility, cuBLAS determinism, snnrun's sweep objectives). Never compiler, linker, loader,
  path or extension-cache variables (``CXX``, ``CC``, ``TORCH_EXTENSIONS_DIR``,
  ``SNNRUN_KERNEL_CACHE``, ``LD_PRELOAD``, ``PATH``, ``PYTHONPATH``, ...).
- ``hydra.job_logging``: handlers of the classes in :data:`HANDLERS` with their own arguments
  only; streams only ``ext://sys.stdout`` / ``ext://sys.stderr``; log files inside the job's run
  directory; formatters ``logging.Formatter`` (or ``colorlog.ColoredFormatter`` as Hydra's
  colorlog plugin declares it); filters by logger name only; no ``()`` factories, no ``.``
  properties, no ``cfg://`` references.
- ``hydra.hydra_logging``: the same, but no files at all (Hydra sets it up before the run
  directory exists, so a file there would be outside it).
- paths: ``hydra.output_subdir`` and ``hydra.sweep.subdir`` are relative paths inside the run
  (sweep) directory; every log file resolves inside the job's run directory. The run and sweep
  directories themselves (``hydra.run.dir``, ``hydra.sweep.dir``) are the user's choice.

:func:`check_hydra` runs on every config Hydra composes (inside its config loading, see
``snnrun.targets.install_hydra_guard``), with a placeholder for the run directory that Hydra only
fixes when the job starts; :func:`check_job` runs again when the job starts, on the final paths
(symbolic links followed), before Hydra creates the run directory, configures job logging, writes
``.hydra`` or applies ``env_set``. Each refusal is a :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
from typing import Any, Iterator

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from .errors import ConfigError

#: environment variables a config may set through ``hydra.job.env_set``
ALLOWED_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "CUDA_VISIBLE_DEVICES", "CUBLAS_WORKSPACE_CONFIG", "SNNRUN_OBJECTIVES")

_FILE_ARGS = frozenset({"filename", "mode", "encoding", "delay", "errors"})
#: logging handler classes a config may use, with the constructor arguments it may give them
HANDLERS = {
    "logging.StreamHandler": frozenset({"stream"}),
    "logging.NullHandler": frozenset(),
    "logging.FileHandler": _FILE_ARGS,
    "logging.handlers.WatchedFileHandler": _FILE_ARGS,
    "logging.handlers.RotatingFileHandler": _FILE_ARGS | {"maxBytes", "backupCount"},
    "logging.handlers.TimedRotatingFileHandler": _FILE_ARGS | {"when", "interval", "backupCount", "utc", "atTime"},
}
STREAM_HANDLERS = ("logging.StreamHandler", "logging.NullHandler")
HANDLER_KEYS = frozenset({"class", "level", "formatter", "filters"})
FORMATTER = "logging.Formatter"
COLORLOG = "colorlog.ColoredFormatter"  # what `hydra/job_logging=colorlog` (hydra-colorlog) declares as `()`
FORMATTER_KEYS = frozenset({"format", "datefmt", "style", "validate", "defaults", "class"})
COLORLOG_KEYS = FORMATTER_KEYS | {"()", "log_colors", "secondary_log_colors", "reset", "no_color", "force_color"}
STREAMS = ("ext://sys.stdout", "ext://sys.stderr")
#: stands for the job's run directory while Hydra has not fixed it (never created)
PLACEHOLDER = os.path.join(os.sep, "snnrun-run-directory-placeholder", "job")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


@contextlib.contextmanager
def job_view(cfg: DictConfig, output_dir: str) -> Iterator[DictConfig]:
    """A copy of ``cfg`` as the job at ``output_dir`` sees it (``hydra.runtime.output_dir`` set; a
    sweep job's number and id, if not set yet, 0), with :class:`HydraConfig` pointing at it so
    ``${hydra:...}`` resolves the same way; the previous :class:`HydraConfig` is restored after."""
    from hydra.core.hydra_config import HydraConfig

    view = copy.deepcopy(cfg)
    with read_write(view.hydra), open_dict(view.hydra):
        OmegaConf.update(view, "hydra.runtime.output_dir", output_dir, force_add=True)
        for key, value in (("num", 0), ("id", "0")):
            if OmegaConf.select(view, f"hydra.job.{key}", throw_on_missing=False) is None:
                OmegaConf.update(view, f"hydra.job.{key}", value, force_add=True)
    singleton = HydraConfig.instance()
    before = singleton.cfg
    try:
        with contextlib.suppress(AssertionError):  # a hand-made `hydra` mapping, not Hydra's: no ${hydra:...}
            singleton.set_config(view)
        yield view
    finally:
        singleton.cfg = before


def _hydra_value(view: DictConfig, key: str) -> Any:
    """``hydra.<key>`` of the job view, resolved; a failure to resolve is a refusal."""
    try:
        node = OmegaConf.select(view, f"hydra.{key}", throw_on_missing=True)
        return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    except Exception as err:  # noqa: BLE001 - OmegaConf raises several types; any of them is a refusal
        raise ConfigError(f"hydra.{key}: cannot resolve ({_first_line(err)}); refused") from None


# --- environment -------------------------------------------------------------------------------
def check_env_set(view: DictConfig) -> None:
    """Every ``hydra.job.env_set`` variable must be in :data:`ALLOWED_ENV`, with a one-line value."""
    env = OmegaConf.select(view, "hydra.job.env_set")
    if env is None:
        return
    if not isinstance(env, DictConfig):
        raise ConfigError(f"hydra.job.env_set: expected a mapping of variable names to values, got {env!r}")
    for name in env.keys():
        key = f"hydra.job.env_set.{name}"
        if name not in ALLOWED_ENV:
            raise ConfigError(f"{key}: a config may not set this environment variable; allowed: "
                              f"{', '.join(ALLOWED_ENV)}")
        try:
            value = env[name]
        except Exception as err:  # noqa: BLE001
            raise ConfigError(f"{key}: cannot resolve ({_first_line(err)}); refused") from None
        if isinstance(value, (DictConfig, list)) or OmegaConf.is_list(value) or \
                any(c in str(value) for c in "\n\r\0"):
            raise ConfigError(f"{key}: expected a one-line value, got {value!r}")


# --- logging -----------------------------------------------------------------------------------
def _check_references(node: Any, key: str) -> None:
    """No ``cfg://`` references, ``ext://`` only to sys.stdout/sys.stderr, no ``()``/``.`` keys."""
    if isinstance(node, dict):
        for name, value in node.items():
            if name in ("()", "."):
                raise ConfigError(f"{key}.{name}: custom {'factories' if name == '()' else 'handler properties'} "
                                  f"are not allowed in logging configs")
            _check_references(value, f"{key}.{name}")
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            _check_references(value, f"{key}[{i}]")
    elif isinstance(node, str):
        if node.startswith("cfg://"):
            raise ConfigError(f"{key}: `{node}` is not allowed (no cfg:// references in logging configs)")
        if node.startswith("ext://") and node not in STREAMS:
            raise ConfigError(f"{key}: `{node}` is not allowed (logging may only refer to "
                              f"{' and '.join(STREAMS)})")


def _check_formatter(name: str, spec: Any, key: str) -> None:
    key = f"{key}.formatters.{name}"
    if not isinstance(spec, dict):
        raise ConfigError(f"{key}: expected a mapping (format, datefmt, style), got {spec!r}")
    factory = spec.get("()")
    if "()" in spec and factory != COLORLOG:
        raise ConfigError(f"{key}.(): `{factory}` is not allowed (formatters are {FORMATTER}, or {COLORLOG} "
                          f"as Hydra's colorlog plugin declares it; no custom factories)")
    if spec.get("class", FORMATTER) != FORMATTER:
        raise ConfigError(f"{key}.class: `{spec['class']}` is not allowed (formatters are {FORMATTER})")
    allowed = COLORLOG_KEYS if "()" in spec else FORMATTER_KEYS
    for item in spec:
        if item not in allowed:
            raise ConfigError(f"{key}.{item}: not a formatter setting (allowed: {', '.join(sorted(allowed))})")
    rest = {k: v for k, v in spec.items() if k != "()"}
    _check_references(rest, key)


def _check_filter(name: str, spec: Any, key: str) -> None:
    key = f"{key}.filters.{name}"
    if not isinstance(spec, dict) or set(spec) - {"name"}:
        raise ConfigError(f"{key}: only logger-name filters (`name: ...`) are allowed, got {spec!r}")
    _check_references(spec, key)


def _check_handler(name: str, spec: Any, key: str, files: bool) -> str | None:
    """Check one handler; return its log file name (``filename``), if any."""
    key = f"{key}.handlers.{name}"
    if not isinstance(spec, dict):
        raise ConfigError(f"{key}: expected a mapping with a `class`, got {spec!r}")
    if "()" in spec or "." in spec:
        item = "()" if "()" in spec else "."
        raise ConfigError(f"{key}.{item}: custom {'factories' if item == '()' else 'handler properties'} are not "
                          f"allowed in logging configs; use `class:` {', '.join(HANDLERS)}")
    cls = spec.get("class")
    allowed = HANDLERS if files else {k: v for k, v in HANDLERS.items() if k in STREAM_HANDLERS}
    if cls not in allowed:
        where = "" if files else ("; Hydra's own log is set up before the run directory exists, so it may not "
                                  "write files")
        raise ConfigError(f"{key}.class: `{cls}` is not allowed (logging handlers: {', '.join(allowed)}){where}")
    for item in spec:
        if item not in HANDLER_KEYS and item not in HANDLERS[cls]:
            raise ConfigError(f"{key}.{item}: not an argument of {cls} (allowed: "
                              f"{', '.join(sorted(HANDLER_KEYS | HANDLERS[cls]))})")
    _check_references(spec, key)
    if "filename" in spec:
        filename = spec["filename"]
        if not isinstance(filename, str) or not filename:
            raise ConfigError(f"{key}.filename: expected a file name, got {filename!r}")
        return filename
    return None


def check_logging(conf: Any, key: str, files: bool = True) -> dict[str, str]:
    """Check a resolved logging dict (what Hydra hands to ``logging.config``); return the log file
    names by handler key (``hydra.job_logging.handlers.file.filename`` -> name)."""
    if conf is None:
        return {}
    if not isinstance(conf, dict):
        raise ConfigError(f"{key}: expected a logging.config dictionary, got {conf!r}")
    for section in ("formatters", "filters", "handlers", "loggers"):
        if not isinstance(conf.get(section) or {}, dict):
            raise ConfigError(f"{key}.{section}: expected a mapping of names to settings, got {conf[section]!r}")
    for name, spec in (conf.get("formatters") or {}).items():
        _check_formatter(str(name), spec, key)
    for name, spec in (conf.get("filters") or {}).items():
        _check_filter(str(name), spec, key)
    names = {}
    for name, spec in (conf.get("handlers") or {}).items():
        filename = _check_handler(str(name), spec, key, files)
        if filename is not None:
            names[f"{key}.handlers.{name}.filename"] = filename
    _check_references({k: v for k, v in conf.items() if k not in ("formatters", "filters", "handlers")}, key)
    return names


# --- paths -------------------------------------------------------------------------------------
def _check_relative(view: DictConfig, key: str, what: str) -> None:
    value = _hydra_value(view, key)
    if value is None:
        return
    value = str(value)
    root = PLACEHOLDER
    if not value or not _inside(os.path.normpath(os.path.join(root, value)), root):
        raise ConfigError(f"hydra.{key}: `{value}` is outside the {what}; give a relative path inside it "
                          f"(such as {'.hydra' if key == 'output_subdir' else '${hydra.job.num}'})")


def _log_path(filename: str, output_dir: str, chdir: bool) -> str:
    """Where ``logging`` opens ``filename``: relative names against the working directory of the job."""
    return os.path.join(output_dir if chdir else os.getcwd(), filename)  # as logging does: no ~ expansion


def check_hydra(cfg: DictConfig) -> None:
    """The checks of this module on a freshly composed config (the run directory not known yet)."""
    if not isinstance(cfg, DictConfig) or not isinstance(cfg.get("hydra"), DictConfig):
        return
    with job_view(cfg, PLACEHOLDER) as view:
        check_env_set(view)
        _check_relative(view, "output_subdir", "run directory")
        if OmegaConf.select(view, "hydra.sweep") is not None:
            _check_relative(view, "sweep.subdir", "sweep directory")
            if OmegaConf.select(view, "hydra.launcher.submitit_folder") is not None:  # submitit's job pickles and logs
                folder = os.path.abspath(str(_hydra_value(view, "launcher.submitit_folder")))
                sweep_dir = os.path.abspath(str(_hydra_value(view, "sweep.dir")))
                if not _inside(os.path.normpath(folder), sweep_dir):
                    raise ConfigError(f"hydra.launcher.submitit_folder: {folder} is outside the sweep directory "
                                      f"{sweep_dir}; keep it inside, e.g. ${{hydra.sweep.dir}}/.submitit/%j")
        check_logging(_hydra_value(view, "hydra_logging"), "hydra.hydra_logging", files=False)
        names = check_logging(_hydra_value(view, "job_logging"), "hydra.job_logging")
        chdir = bool(_hydra_value(view, "job.chdir"))
        for key, filename in names.items():
            path = os.path.normpath(_log_path(filename, PLACEHOLDER, chdir))
            if not _inside(path, PLACEHOLDER):
                relative = "" if os.path.isabs(filename) or chdir else \
                    " (a relative name is relative to the working directory: hydra.job.chdir is false)"
                example = f"${{hydra.runtime.output_dir}}/{os.path.basename(filename) or 'job.log'}"
                raise ConfigError(f"{key}: `{filename}` is outside the run directory{relative}; a log file must be "
                                  f"inside it, e.g. {example}")


def job_output_dir(config: DictConfig, job_dir_key: str, job_subdir_key: str | None) -> tuple[str, str | None]:
    """The job's run directory exactly as ``hydra.core.utils.run_job`` computes it, and the sweep
    directory it must stay inside (None for a single run). Resolves on ``config`` itself, so a
    ``${now:...}`` is cached there and Hydra uses the same value."""
    try:
        root = str(OmegaConf.select(config, job_dir_key))
        output_dir = os.path.join(root, str(OmegaConf.select(config, job_subdir_key))) if job_subdir_key else root
    except Exception as err:  # noqa: BLE001
        raise ConfigError(f"{job_subdir_key or job_dir_key}: cannot resolve ({_first_line(err)}); refused") from None
    return os.path.abspath(output_dir), (os.path.abspath(root) if job_subdir_key else None)


def check_job(config: DictConfig, output_dir: str, sweep_dir: str | None) -> None:
    """When a job starts (``output_dir`` fixed): every check above on the final paths, with symbolic
    links followed (``os.path.realpath``): the job directory inside the sweep directory, ``.hydra``
    and every log file inside the job directory."""
    real = os.path.realpath(output_dir)
    if sweep_dir is not None and not _inside(real, os.path.realpath(sweep_dir)):
        raise ConfigError(f"hydra.sweep.subdir: the job directory {output_dir} is outside the sweep directory "
                          f"{sweep_dir}")
    check_hydra(config)
    with job_view(config, output_dir) as view:
        subdir = _hydra_value(view, "output_subdir")
        if subdir is not None and not _inside(os.path.realpath(os.path.join(output_dir, str(subdir))), real):
            raise ConfigError(f"hydra.output_subdir: `{subdir}` is outside the run directory {output_dir} "
                              f"(through a symbolic link); refused")
        names = check_logging(_hydra_value(view, "job_logging"), "hydra.job_logging")
        chdir = bool(_hydra_value(view, "job.chdir"))
        for key, filename in names.items():
            path = os.path.realpath(_log_path(filename, output_dir, chdir))
            if not _inside(path, real):
                raise ConfigError(f"{key}: `{filename}` resolves to {path}, outside the run directory {output_dir}; "
                                  f"a log file must be inside it")


# --- saved runs ----------------------------------------------------------------------------------
def drop_saved_hydra(cfg: Any, path: Any) -> Any:
    """A saved run's ``hydra`` section is not trusted: Hydra never writes one into ``.hydra/config.yaml``,
    so one there was added by hand or by someone else. ``snnrun resume`` and ``snnrun reproduce`` drop
    it, with a warning, and run with the default Hydra settings (the re-run of ``reproduce`` is then
    checked like any other run; ``resume`` does not go through Hydra at all)."""
    if isinstance(cfg, DictConfig) and "hydra" in cfg:
        print(f"snnrun: warning: {path} has a `hydra` section; ignored (a saved run's Hydra settings, such as "
              f"environment variables, logging and output paths, are not trusted; the defaults apply)", file=sys.stderr)
        with open_dict(cfg):
            del cfg["hydra"]
    return cfg


def check_group_overrides(overrides: list[str], search_dirs: list) -> None:
    """A config group (a folder of the config tree, e.g. ``scheduler``) is chosen by the name of one of
    its files: ``scheduler=nan`` or ``trainer=[1,2,3]`` is refused with the group's choices (Hydra
    itself stops with a traceback). Values of sweeps are checked one by one."""
    from pathlib import Path

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides([o for o in overrides if not o.startswith("hydra.")])
    except HydraException:
        return  # Hydra's own message for a malformed override is already one line
    for override in parsed:
        key = override.key_or_group
        folders = [Path(d) / key for d in search_dirs if (Path(d) / key).is_dir()]
        if not folders or override.is_delete():
            continue
        value = override.value()
        values = value.list if isinstance(value, ChoiceSweep) else [value]
        for item in values:
            if isinstance(item, str) or (isinstance(item, list) and all(isinstance(v, str) for v in item)):
                continue
            choices = sorted({p.stem for folder in folders for p in folder.glob("*.yaml")})
            raise ConfigError(f"{key}: a config group is chosen by name, got {item!r}; choices: {', '.join(choices)}")
