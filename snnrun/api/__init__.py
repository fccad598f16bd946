"""The Python API: compose, run, load and build experiments without the command line.

::

    import snnrun

    cfg = snnrun.compose(["neuron=alif", "trainer.epochs=5"])  # the config `snnrun neuron=alif ...` runs
    result = snnrun.run(cfg)                                    # a run directory, as the CLI writes it
    loaded = snnrun.load_run(result.run_dir)                    # best.pt, checksum verified
    scores = loaded.model(loaded.data().x_test[:8])             # [8, classes]: a plain torch.nn.Module

The same rules as on the command line apply: a config group is chosen by name, user mistakes
raise :class:`~snnrun.errors.SnnrunError` with one line naming the key, and a config never runs
code: a ``_target_`` outside snnrun's components and ``torch.optim`` is refused unless its module
is passed as the ``allow_targets=`` argument (an ``allow_targets`` list inside a config, an
override or a saved run is never trusted by itself). Checkpoints are loaded only when they match
their ``.sha256`` file and never execute code (``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from omegaconf import DictConfig, ListConfig

from ..errors import ConfigError, SnnrunError
from .building import build_from_config, network_from_section, torch_device
from .composing import PathLike, compose_config
from .run_dir import check_new, fresh_run_dir, read_metrics, read_summary, remove_if_unstarted, run_log, write_hydra_dir
from .trust import as_config, module_names, saved_config, trust_config, trusting

if TYPE_CHECKING:  # torch is imported on first use: composing a config does not need it
    from ..data import DataSplits
    from ..model import SpikingModel
    from ..network import Network

__all__ = ["compose", "run", "load_run", "build_network", "build_model", "Result", "LoadedRun", "SpikingModel",
           "read_metrics"]

#: the checkpoints of a run directory ``load_run`` can load by name
CHECKPOINTS = ("best", "last", "prev")


def __getattr__(name: str) -> Any:
    if name == "SpikingModel":  # the model class lives with torch in snnrun.model
        from ..model import SpikingModel

        return SpikingModel
    raise AttributeError(f"module 'snnrun.api' has no attribute {name!r}")


# --- results --------------------------------------------------------------------------------------
@dataclass
class LoadedRun:
    """A trained run: ``model`` (a :class:`SpikingModel` in eval mode with the checkpoint's
    weights), its ``config``, ``metrics`` (one dict per row of ``metrics.jsonl``/``.csv``),
    ``summary`` (``summary.json``; empty if the run did not finish) and the ``checkpoint`` file."""

    run_dir: Path
    model: SpikingModel
    config: DictConfig
    metrics: list[dict[str, Any]]
    summary: dict[str, Any]
    checkpoint: Path
    epoch: int | None = None
    _prepared: Any = field(default=None, repr=False)
    _data: Any = field(default=None, repr=False)

    @property
    def network(self) -> Network:
        """The trained network alone (encoded input ``[T, B, *shape]`` -> spikes)."""
        return self.model.network

    def data(self) -> DataSplits:
        """The run's dataset as its config loads it: ``x_train``, ``y_train``, ``x_val``, ``y_val``,
        ``x_test``, ``y_test`` (the same splits and scaling the run had), loaded once."""
        if self._data is None:
            from ..build import load_data

            self._data = load_data(self._prepared)[0]
        return self._data

    def resolved_config(self) -> dict[str, Any]:
        """The config the model was built from, as plain containers: interpolations resolved,
        ``_target_`` nodes as names, the data's shape and class count filled in."""
        from ..build import to_container

        return to_container(self._prepared)

    def __repr__(self) -> str:
        return (f"LoadedRun(run_dir={str(self.run_dir)!r}, checkpoint={self.checkpoint.name!r}, epoch={self.epoch}, "
                f"status={self.summary.get('status')!r})")


@dataclass
class Result:
    """What :func:`run` returns: the ``run_dir``, the ``summary`` (``summary.json``: ``status``,
    ``final`` and ``best`` metrics, ...) and the ``metrics`` rows; :meth:`load` loads the model."""

    run_dir: Path
    summary: dict[str, Any]
    metrics: list[dict[str, Any]]
    allow_targets: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        """``completed``, ``stopped`` (``trainer.stop_after``), ``interrupted`` (Ctrl-C) or the task's."""
        return str(self.summary.get("status", "done"))

    def load(self, checkpoint: str = "best", map_location: Any = "cpu", *, trust_unverified: bool = False
             ) -> LoadedRun:
        """:func:`load_run` of this run (with the modules this run was allowed)."""
        return load_run(self.run_dir, checkpoint, map_location, trust_unverified=trust_unverified,
                        allow_targets=self.allow_targets)

    def __repr__(self) -> str:
        final = self.summary.get("final") or {}
        shown = ", ".join(f"{k}={v:.4f}" for k, v in final.items() if k.endswith("accuracy") and isinstance(v, float))
        return f"Result(run_dir={str(self.run_dir)!r}, status={self.status!r}{', ' + shown if shown else ''})"


# --- compose --------------------------------------------------------------------------------------
def compose(overrides: Sequence[str] = (), config_dir: PathLike | Sequence[PathLike] | None = None) -> DictConfig:
    """The config that ``snnrun OVERRIDES`` runs (without Hydra's own ``hydra`` section).

    ``overrides``: ``key=value`` and ``group=option`` strings as on the command line
    (``["neuron=alif", "trainer.epochs=5"]``). ``config_dir``: folder(s) of your own configs
    searched before the packaged ones, as ``snnrun --config-dir DIR`` (e.g. ``DIR/experiment/x.yaml``
    for ``experiment=x``). Hydra settings (``hydra.*``) and options (``-m``, ``--cfg``) are
    command-line matters and refused. Hydra is initialised only while composing.
    """
    return compose_config(overrides, config_dir)


# --- run ------------------------------------------------------------------------------------------
def run(config: DictConfig | Mapping[str, Any] | Sequence[str], run_dir: PathLike | None = None, *,
        allow_targets: Sequence[str] = (), verbose: bool = True) -> Result:
    """Run an experiment: its task (``train`` by default) into ``run_dir``, as ``snnrun`` does.

    ``config``: a config from :func:`compose` (or a dict of the same shape), or a list of
    overrides to compose. ``run_dir``: a new directory (default: ``outputs/<date>/<time>`` under
    the working directory, as the CLI's); one that already holds a run is refused. It receives
    what a CLI run writes (``.hydra/config.yaml`` so ``snnrun resume``, ``reproduce`` and
    ``compare`` work on it, ``.hydra/overrides.yaml`` when ``config`` is a list of overrides,
    ``snnrun.log``, metrics, checkpoints, ``summary.json``); the run directory's lock is held
    meanwhile. ``allow_targets``: modules whose ``_target_`` classes the config may use (as
    ``snnrun allow_targets=[...]``). ``verbose``: also print the log (epoch lines) to stdout.
    Ctrl-C stops at the next batch: the result then has status ``interrupted`` and the run
    resumes with ``snnrun resume RUN_DIR``.
    """
    modules = module_names(allow_targets)
    overrides = None
    if isinstance(config, Sequence) and not isinstance(config, (str, bytes, ListConfig)):
        overrides = list(config)
        cfg = compose(overrides)
    else:
        cfg = as_config(config)
    trust_config(cfg, modules, "", "run")
    from ..distributed import is_main
    from ..tasks import execute, get_task

    with trusting(modules):
        from ..build import prepare

        prepare(cfg)  # top-level keys, `_target_` policy and seed, before anything is written
        get_task(cfg.get("task", "train"))
        main = is_main()  # torchrun: only rank 0 writes the run directory (snnrun/distributed.py)
        run_dir = Path(os.path.abspath(run_dir if run_dir is not None else fresh_run_dir()))
        existed = run_dir.exists()
        from ..runlock import lock_run_dir, unlock_run_dir

        taken = main and lock_run_dir(run_dir)  # one writer per run directory
        try:
            if main:
                check_new(run_dir)
                write_hydra_dir(run_dir, cfg, overrides)
            try:
                with run_log(run_dir if main else None, verbose):
                    summary = execute(cfg, run_dir)
            except SnnrunError:
                if main and not existed:
                    remove_if_unstarted(run_dir)
                raise
        finally:
            if taken:
                unlock_run_dir(run_dir)
    run_dir = Path(summary.get("run_dir") or run_dir)
    return Result(run_dir, summary, read_metrics(run_dir), modules)


# --- build ----------------------------------------------------------------------------------------
def build_model(config: DictConfig | Mapping[str, Any], device: Any = "cpu", *,
                input_shape: Sequence[int] | None = None, num_classes: int | None = None,
                allow_targets: Sequence[str] = ()) -> SpikingModel:
    """The encoder, network and decoder of an experiment config (as :func:`compose` returns, or a
    dict of the same shape) as one :class:`SpikingModel` on ``device``, with fresh weights.

    The samples' shape and class count come from ``input_shape`` / ``num_classes``, else from
    ``data.input_shape`` / ``data.num_classes`` of the config, else from loading the dataset.
    Weights are drawn as a run draws them, from ``config.seed``; the caller's random state is
    left as it was. ``allow_targets`` as in :func:`run`.
    """
    modules = module_names(allow_targets)
    cfg = as_config(config)
    trust_config(cfg, modules, "", "build_model")
    with trusting(modules):
        return build_from_config(cfg, torch_device(device), input_shape, num_classes)[0]


def build_network(config: DictConfig | Mapping[str, Any], device: Any = "cpu", *,
                  neuron: str | Mapping[str, Any] = "lif", surrogate: str | Mapping[str, Any] | None = None,
                  input_shape: Sequence[int] | None = None, num_classes: int | None = None,
                  allow_targets: Sequence[str] = ()) -> Network:
    """A :class:`snnrun.network.Network` (a ``torch.nn.Module``) from a config, with fresh weights.

    ``config`` is either a whole experiment config (it has a ``network`` key: the network of
    :func:`build_model`, built as a run builds it) or the ``network`` section alone as a dict
    (``{"dt": 1.0, "duration": 25.0, "populations": {...}, "projections": {...}}``, the format of
    ``configs/network/*.yaml`` with plain numbers instead of ``${...}``). For a section,
    ``neuron`` is the neuron of populations that name none: an option of the ``neuron`` group
    (``"lif"``, ``"alif"``, ...) or a spec such as ``{"name": "lif", "tau_m": 10.0}``;
    ``surrogate`` the spike function's surrogate gradient (``"atan"`` or ``{"name": "atan",
    "alpha": 2.0}``; default none: spikes pass no gradient); ``input_shape`` gives input
    populations without a ``shape`` theirs and ``num_classes`` the size of a single output population
    without one (``shape: null``, as the shipped networks leave it for the decoder); weights are drawn from torch's global RNG. For a whole
    config these come from the config (``input_shape``/``num_classes`` as in :func:`build_model`).
    The network maps encoded input ``[T, B, *shape]`` to the spikes of every population
    (``net(x).spikes["out"]``; call ``net.reset()`` between batches).
    """
    modules = module_names(allow_targets)
    if isinstance(config, (DictConfig, Mapping)) and "network" in config:
        return build_model(config, device, input_shape=input_shape, num_classes=num_classes,
                           allow_targets=modules).network
    return network_from_section(as_config(config, "config"), neuron, surrogate, input_shape, num_classes, modules,
                                device)


# --- load -----------------------------------------------------------------------------------------
def load_run(path: PathLike, checkpoint: str = "best", map_location: Any = "cpu", *,
             trust_unverified: bool = False, allow_targets: Sequence[str] = ()) -> LoadedRun:
    """Load a run directory's trained model, config, metrics and summary.

    ``path``: a run directory (or one of its ``checkpoints/*.pt`` files). ``checkpoint``:
    ``best`` (selected on ``trainer.monitor``; runs of tasks other than ``train`` may only have
    ``last``), ``last`` or ``prev``. ``map_location``: the device the model is loaded onto. The
    checkpoint must match its ``.sha256`` file, as for ``snnrun resume``; one without a valid
    checksum file is refused unless ``trust_unverified``, and one that differs from its checksum
    always. Loading never executes code (plain tensors only) and needs no Hydra. The model is built
    from the run's ``.hydra/config.yaml`` (the dataset is loaded for the samples' shape unless the
    config states ``data.input_shape`` and ``data.num_classes``); ``allow_targets`` as in :func:`run`
    (a saved config's own ``allow_targets`` is not trusted).
    """
    from .. import checkpoint as checkpoints

    modules = module_names(allow_targets)
    path = Path(path)
    if path.suffix == ".pt" and path.is_file():
        file, run_dir = path, path.parent.parent
    else:
        if checkpoint not in CHECKPOINTS:
            raise ConfigError(f"checkpoint: expected one of {', '.join(CHECKPOINTS)}, got {checkpoint!r}")
        run_dir, file = path, path / "checkpoints" / f"{checkpoint}.pt"
    saved = run_dir / ".hydra" / "config.yaml"
    if not saved.is_file():
        raise SnnrunError(f"load_run: {run_dir} is not a run directory: {saved} is missing")
    if not file.is_file():
        have = sorted(p.stem for p in (run_dir / "checkpoints").glob("*.pt"))
        raise SnnrunError(f"load_run: {file} not found; this run has "
                          + (f"checkpoints {', '.join(have)} (checkpoint='{have[0]}')" if have else "no checkpoints"))
    cfg = saved_config(saved, modules)
    try:
        state = checkpoints.load(file, map_location=map_location, require_checksum=not trust_unverified)
    except checkpoints.UnverifiedCheckpoint as err:
        raise checkpoints.UnverifiedCheckpoint(f"load_run: {err}; if you trust this file, pass trust_unverified=True "
                                               f"(its bytes are then not checked)", err.why) from None
    if not isinstance(state.get("model"), Mapping):
        raise SnnrunError(f"load_run: {file} holds no model weights")
    import torch

    device = torch_device(map_location) if isinstance(map_location, (str, torch.device)) else torch.device("cpu")
    with trusting(modules):
        model, prepared, data = build_from_config(cfg, device, None, None)
    checkpoints.check_fits(model.network.state_dict(), state["model"], "the model", file)
    checkpoints.check_fits(model.decoder.state_dict(), state.get("decoder") or {}, "the decoder", file)
    model.network.load_state_dict(state["model"])
    model.decoder.load_state_dict(state.get("decoder") or {})
    model.eval()
    epoch = state.get("epoch")
    return LoadedRun(run_dir, model, cfg, read_metrics(run_dir), read_summary(run_dir), file,
                     int(epoch) if isinstance(epoch, int) else None, prepared, data)
