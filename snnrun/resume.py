"""What ``snnrun resume`` may change, forks, and the record of a run's resumes.

``snnrun resume RUN_DIR [key=value ...]`` continues ``RUN_DIR`` with its saved
``.hydra/config.yaml``. Overrides may change only what does not change the model or the
optimisation (:data:`ALLOWED`): how long to train (``trainer.epochs``), how much of it to run
now (``trainer.stop_after``), progress bars, the logging sinks, the figures and the device. Any
other change is refused with one line naming the keys and the fork command:

``snnrun resume RUN_DIR --into NEW_DIR [key=value ...]`` starts a new run directory from
``RUN_DIR``'s last state (weights, decoder and learner state, RNG streams, epoch and step count)
with any overrides; the optimizer and scheduler state are carried over only when compatible
(:meth:`snnrun.runner.Runner.load_state_dict`).

The run directory's ``.hydra/config.yaml`` is rewritten (atomically) to what runs once the
checkpoint has loaded; ``trainer.stop_after``, ``trainer.progress`` and ``trainer.threads`` (:data:`PER_INVOCATION`)
are settings of one invocation and are never written back. Each resume is recorded in the
checkpoints and in ``summary.json`` (``resumes``: the epoch it started from, its overrides and the
config keys it changed, each ``{from, to}``), so :mod:`snnrun.reproduce` can replay a run whose
config changed on the way.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import SnnrunError

#: config keys (and subtrees) an in-place ``snnrun resume`` may change
ALLOWED = ("trainer.epochs", "trainer.stop_after", "trainer.progress", "trainer.threads", "logger", "plots", "device")
#: settings of one invocation: never written back into ``.hydra/config.yaml``, never a change of the run
PER_INVOCATION = ("trainer.stop_after", "trainer.progress", "trainer.threads")

USAGE = """usage: snnrun resume RUN_DIR [--into NEW_DIR] [--trust-unverified] [key=value ...]

Continue RUN_DIR from checkpoints/last.pt with its saved .hydra/config.yaml (re-validated).
Overrides may change only: trainer.epochs (the learning-rate schedule then covers the new length),
trainer.stop_after, trainer.progress, logger.*, plots.*, device. Anything else changes the run:
--into NEW_DIR starts a new run directory from RUN_DIR's last state with any overrides."""


def _under(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def allowed(key: str) -> bool:
    """Whether an in-place resume may change config key ``key`` (dotted)."""
    return _under(key, ALLOWED)


def load_saved_config(path: Path):
    """``path`` (a run's ``.hydra/config.yaml``) as a DictConfig without its ``hydra`` section; a file
    that is not UTF-8, not YAML or not a mapping is a one-line :class:`SnnrunError` naming it."""
    from omegaconf import DictConfig, OmegaConf
    import yaml

    from .hydra_policy import drop_saved_hydra

    try:
        cfg = OmegaConf.load(path)
    except UnicodeDecodeError as err:
        raise SnnrunError(f"resume: {path} is damaged: not UTF-8 (byte 0x{err.object[err.start]:02x} at offset "
                          f"{err.start})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).strip().splitlines()[0]
        raise SnnrunError(f"resume: {path} is damaged: not valid YAML ({problem}{where})") from None
    except OSError as err:
        raise SnnrunError(f"resume: cannot read {path} ({err.strerror or err})") from None
    except Exception as err:  # noqa: BLE001 - OmegaConf's own errors (e.g. a key it cannot hold)
        raise SnnrunError(f"resume: {path} is damaged: {str(err).strip().splitlines()[0]}") from None
    if not isinstance(cfg, DictConfig) or not len(cfg):
        what = "a list" if not isinstance(cfg, DictConfig) else "empty"
        raise SnnrunError(f"resume: {path} is damaged: not a config mapping ({what})")
    return drop_saved_hydra(cfg, path)


def _container(cfg: Any) -> dict:
    """A config (DictConfig, mapping or YAML text) as plain containers, interpolations unresolved."""
    from omegaconf import OmegaConf

    if cfg is None or cfg == "":
        return {}
    if isinstance(cfg, str):
        cfg = OmegaConf.create(cfg)
    if OmegaConf.is_config(cfg):
        return OmegaConf.to_container(cfg, resolve=False)
    return dict(cfg)


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists and empty mappings are values."""
    if not isinstance(node, dict) or (not node and prefix):
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def config_changes(old: Any, new: Any) -> dict[str, dict]:
    """The config keys whose values differ between ``old`` and ``new`` (interpolations compared as
    written), each ``{"from": old, "to": new}`` (a side is absent where the key is); the
    :data:`PER_INVOCATION` keys and a ``hydra`` section are left out."""
    a, b = flatten(_container(old)), flatten(_container(new))
    changes: dict[str, dict] = {}
    for key in list(a) + [k for k in b if k not in a]:
        if _under(key, PER_INVOCATION + ("hydra",)):
            continue
        if key in a and key in b and a[key] == b[key] and type(a[key]) is type(b[key]):
            continue
        changes[key] = {**({"from": a[key]} if key in a else {}), **({"to": b[key]} if key in b else {})}
    return changes


@dataclass
class ResumeRequest:
    """What :meth:`snnrun.runner.Runner.fit` is asked to resume (truthy, as ``resume=True``).

    ``source``: a fork's source run directory (None: the run directory itself); ``overrides``: the
    command line's, for the record; ``on_start(epoch)``: called once the checkpoint has loaded and
    fits the config, before training (writes ``.hydra/``)."""

    overrides: tuple[str, ...] = ()
    source: Path | None = None
    on_start: Callable[[int], None] | None = None

    def __bool__(self) -> bool:
        return True


def _write_yaml(path: Path, text: str) -> None:
    from .checkpoint import _write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        _write_atomic(path, text.encode())
    except OSError as err:
        raise SnnrunError(f"cannot write {path}: {err.strerror or err}") from None


@dataclass
class Plan:
    """A parsed ``snnrun resume`` command: the config to run, where, and how to record it."""

    run_dir: Path  # where it runs: RUN_DIR, or NEW_DIR of a fork
    source: Path  # RUN_DIR
    cfg: Any  # the config to run (DictConfig)
    saved: Any  # RUN_DIR's saved config (DictConfig, without a hydra section)
    overrides: list[str]
    fork: bool
    created: bool = False  # a fork's NEW_DIR did not exist before
    started: bool = field(default=False, init=False)

    def request(self) -> ResumeRequest:
        return ResumeRequest(tuple(self.overrides), self.source if self.fork else None, self.start)

    def start(self, epoch: int) -> None:
        """Write ``.hydra/`` of the run directory: what runs from now on."""
        from omegaconf import OmegaConf

        self.started = True
        hydra_dir = self.run_dir / ".hydra"
        if self.fork:
            _write_yaml(hydra_dir / "config.yaml", OmegaConf.to_yaml(self.cfg))
            _write_yaml(hydra_dir / "overrides.yaml", OmegaConf.to_yaml(OmegaConf.create(list(self.overrides))))
            return
        recorded = self.cfg.copy()  # the per-invocation settings stay as the run directory had them
        for key in PER_INVOCATION:
            parent, _, leaf = key.rpartition(".")
            node = OmegaConf.select(recorded, parent)
            before = OmegaConf.select(self.saved, parent)
            if node is None:
                continue
            if before is not None and leaf in before:
                node[leaf] = before[leaf]
            elif leaf in node:
                del node[leaf]
        if config_changes(self.saved, recorded):
            _write_yaml(hydra_dir / "config.yaml", OmegaConf.to_yaml(recorded))

    def abandon(self) -> None:
        """A fork that failed before its state loaded: remove the directory it created (nothing of a run
        is in it yet)."""
        from .distributed import is_main

        if self.fork and self.created and not self.started and is_main():
            shutil.rmtree(self.run_dir, ignore_errors=True)


def _take_into(args: list[str]) -> tuple[list[str], Path | None]:
    for i, arg in enumerate(args):
        if arg == "--into" or arg.startswith("--into="):
            value = arg.split("=", 1)[1] if "=" in arg else (args[i + 1] if i + 1 < len(args) else "")
            if not value or value.startswith("-"):
                raise SnnrunError("resume: --into needs a new run directory: snnrun resume RUN_DIR --into NEW_DIR "
                                  "[key=value ...]")
            return args[:i] + args[i + (1 if "=" in arg else 2):], Path(value)
    return args, None


def _group_option(override: str) -> bool:
    """Whether ``override`` chooses a config group's option (``neuron=if``, ``optimizer=sgd``)."""
    from .configs import CONFIG_DIR

    key, _, value = override.partition("=")
    return "." not in key and (CONFIG_DIR / key).is_dir() and value.replace("_", "").isalnum()


def _switch_group(cfg, override: str):
    """``cfg`` with the group's node replaced by the packaged option file (groups of plain options:
    not ``experiment``, whose files are global recipes)."""
    from omegaconf import OmegaConf, open_dict

    from .configs import CONFIG_DIR

    group, _, name = override.partition("=")
    path = CONFIG_DIR / group / f"{name}.yaml"
    choices = sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))
    if not path.is_file():
        raise SnnrunError(f"resume: {override}: no option {name!r} in config group {group}; choices: "
                          f"{', '.join(choices)}")
    text = path.read_text()
    if "@package" in text or "defaults:" in text:
        raise SnnrunError(f"resume: {override}: {group} options are whole recipes, which resume cannot apply; "
                          f"start a new run")
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg[group] = OmegaConf.create(text) if text.strip() else {}
    return cfg


def _changed_by(changes: dict[str, dict], overrides: list[str]) -> list[str]:
    """The changed keys, in the order the overrides name them; keys under an override's key (a group
    chosen as a whole, ``neuron=if``) are named by it."""
    keys = [o.split("=", 1)[0].lstrip("+~") for o in overrides]
    named: list[str] = []
    for key in changes:
        name = next((k for k in keys if key.startswith(k + ".")), key)
        if name not in named:
            named.append(name)

    def rank(key: str) -> int:
        return next((i for i, k in enumerate(keys) if key == k or key.startswith(k + ".") or k.startswith(key + ".")),
                    len(keys))
    return sorted(named, key=rank)


def plan(args: list[str]) -> Plan:
    """Parse ``RUN_DIR [--into NEW_DIR] [key=value ...]`` (``--trust-unverified`` already taken out),
    load and check the saved config and the overrides. Raises :class:`SnnrunError` (one line)."""
    from omegaconf import OmegaConf

    from .checkpoint import latest_exists

    args, into = _take_into(list(args))
    unknown = [a for a in args[1:] if a.startswith("-")]
    if not args or args[0].startswith("-") or unknown:
        raise SnnrunError(f"resume: unknown option {(unknown or args[:1] or ['(none)'])[0]}; usage: snnrun resume "
                          f"RUN_DIR [--into NEW_DIR] [--trust-unverified] [key=value ...]")
    run_dir, overrides = Path(args[0]), args[1:]
    saved_path = run_dir / ".hydra" / "config.yaml"
    if not saved_path.is_file():
        raise SnnrunError(f"{run_dir} is not a run directory: {saved_path} is missing")
    if not latest_exists(run_dir / "checkpoints"):
        raise SnnrunError(f"nothing to resume in {run_dir}: checkpoints/last.pt (and prev.pt) is missing")
    saved = load_saved_config(saved_path)
    cfg = saved.copy()
    if OmegaConf.select(cfg, "trainer.stop_after") is not None:
        cfg.trainer.stop_after = None  # a per-invocation limit: resuming runs to the end unless asked again
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise SnnrunError(f"resume: {bad[0]!r} is not an override key=value")
    hydra = [o for o in overrides if o.lstrip("+~").split("=", 1)[0].replace("/", ".").split(".")[0] == "hydra"]
    if hydra:
        raise SnnrunError(f"resume: {hydra[0]}: Hydra settings do not apply to resume (it does not run through Hydra)")
    groups = [o for o in overrides if _group_option(o)]
    for option in groups:
        cfg = _switch_group(cfg, option)
    values = [o for o in overrides if o not in groups]
    if values:
        try:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(values))
        except Exception as err:  # noqa: BLE001 - OmegaConf raises several types for bad dotlists
            raise SnnrunError(f"bad override in {' '.join(values)}: {str(err).splitlines()[0]}") from None
    changes = config_changes(saved, cfg)
    if into is None:
        refused = [k for k in _changed_by({k: v for k, v in changes.items() if not allowed(k)}, overrides)]
        if refused:
            raise SnnrunError(
                f"resume: {', '.join(refused)} would change the run; allowed on resume: "
                f"{', '.join(k + ('.*' if k in ('logger', 'plots') else '') for k in ALLOWED)}; to change the model "
                f"or optimisation start a new run from this one's state with: snnrun resume {shlex.quote(str(run_dir))} --into NEW_DIR "
                f"{' '.join(shlex.quote(o) for o in overrides)}")
        return Plan(run_dir, run_dir, cfg, saved, overrides, fork=False)
    if os.path.realpath(into) == os.path.realpath(run_dir):
        raise SnnrunError(f"resume: --into {into} is the run directory itself; a fork needs a new directory")
    if (into / ".hydra" / "config.yaml").exists() or latest_exists(into / "checkpoints"):
        raise SnnrunError(f"resume: --into {into} is already a run directory; choose a new directory")
    task = cfg.get("task", "train")
    if task != "train":
        raise SnnrunError(f"resume: --into forks runs of task train; {run_dir} is task {task}")
    return Plan(into, run_dir, cfg, saved, overrides, fork=True, created=not into.exists())


# --- reproduce: replaying the resumes that changed the config -------------------------------------------------
def override(key: str, value: Any) -> str:
    """``key=value`` for ``snnrun resume`` (the value as JSON, which OmegaConf reads as YAML)."""
    return f"{key}={json.dumps(value)}"


def replay_segments(summary: dict) -> list[dict]:
    """The recorded resumes of ``summary.json`` that changed the config, oldest first."""
    return [r for r in summary.get("resumes", []) if isinstance(r, dict) and r.get("changes")]


def initial_config(cfg: Any, segments: list[dict]):
    """The config the run started with: ``cfg`` (what ran last) with the changes of ``segments`` undone."""
    from omegaconf import OmegaConf, open_dict

    cfg = cfg.copy()
    for record in reversed(segments):
        for key, change in record["changes"].items():
            with open_dict(cfg):
                if "from" in change:
                    OmegaConf.update(cfg, key, change["from"], merge=False, force_add=True)
                else:
                    parent, _, leaf = key.rpartition(".")
                    node = OmegaConf.select(cfg, parent) if parent else cfg
                    if node is not None and leaf in node:
                        del node[leaf]
    return cfg


def resume_overrides(record: dict) -> list[str]:
    """The ``snnrun resume`` overrides that make a resume's recorded changes."""
    missing = [k for k, c in record["changes"].items() if "to" not in c]
    if missing:
        raise SnnrunError(f"reproduce: the resume at epoch {record.get('epoch')} removed {', '.join(missing)}; "
                          f"such a resume cannot be replayed")
    return [override(k, c["to"]) for k, c in record["changes"].items()]
