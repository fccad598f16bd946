"""The commands in the config files' own headers run.

Every ``#   snnrun ...`` line of a config file's leading comment (``experiment/*.yaml``,
``learner/*.yaml``, ``network/*.yaml``, ``hparams_search/*.yaml``, ...) is validated as written
(``snnrun validate``, the run's build as a dry run); ``data.path`` placeholders and MNIST paths
point at a tiny .npz written here. Then each is really run, shrunk (one epoch of a batch, a few
trials or pairings), except sweeps (``-m``: tests/test_sweep.py) and the Diehl & Cook task
(validated only: a run presents hundreds of 350 ms samples).
"""

from __future__ import annotations

import re
import shlex

import numpy as np
import pytest

from snnrun.configs import CONFIG_DIR
from snnrun.tasks import get_task
from snnrun.validate import compose, validate_config
from tests.conftest import compose_config

COMMAND = re.compile(r"^#\s+snnrun\s+(.*)$")

#: appended to a real run (after the command's own overrides), by task
SHRINK = {
    "train": ["trainer.epochs=1", "trainer.limit_train_batches=1", "trainer.limit_test_batches=1", "data.subset=20",
              "data.batch_size=2", "trainer.progress=false", "plots=off", "monitors=off"],
    "rstdp_xor": ["xor.trials=2", "xor.log_every=1", "plots=off"],
    "stdp_window": ["protocol.pairings=1", "protocol.dt_step=25", "protocol.frequency=5", "plots=off"],
    "current_clamp": ["plots=off"],
}


def header_commands() -> list[tuple[str, list[str]]]:
    """(file, arguments) of every ``snnrun`` command in a config file's leading comment."""
    found = []
    for path in sorted(CONFIG_DIR.rglob("*.yaml")):
        for line in path.read_text().splitlines():
            if not line.startswith("#"):
                break
            match = COMMAND.match(line)
            if match:
                found.append((str(path.relative_to(CONFIG_DIR)), shlex.split(match.group(1), comments=True)))
    return found


COMMANDS = header_commands()


def test_the_headers_hold_commands():
    files = {f for f, _ in COMMANDS}
    assert {"experiment/rstdp_xor.yaml", "experiment/stdp_window.yaml", "hparams_search/optuna.yaml"} <= files
    assert len(COMMANDS) >= 20


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    """Files the commands name but the user provides (``data.path=...``, ``network.from_nir=net.nir``),
    written here: config key -> a function returning the path of a small stand-in."""
    folder = tmp_path_factory.mktemp("headers")

    def npz():
        path = folder / "tiny_mnist.npz"
        if not path.exists():
            rng = np.random.default_rng(0)
            np.savez(path, x_train=rng.integers(0, 255, (40, 28, 28), dtype=np.uint8), y_train=np.arange(40) % 10,
                     x_test=rng.integers(0, 255, (10, 28, 28), dtype=np.uint8), y_test=np.arange(10) % 10)
        return path

    def nir_file():
        pytest.importorskip("nir", reason="optional extra `nir` not installed")
        from snnrun.build import build_experiment
        from snnrun.interop import nir

        path = folder / "net.nir"
        if not path.exists():
            network = build_experiment(compose_config(["device=cpu"]), dry_run=True).network
            nir.write(nir.to_nir(network.eval()), path)
        return path

    return {"data.path": npz, "network.from_nir": nir_file}


def arguments(args: list[str], stand_ins) -> tuple[list[str], bool]:
    """The command's overrides (user files replaced by stand-ins, ``device=cpu``) and whether it is a sweep."""
    sweep = "-m" in args or "--multirun" in args
    out = []
    for arg in args:
        key = arg.partition("=")[0]
        if arg not in ("-m", "--multirun"):
            out.append(f"{key}={stand_ins[key]()}" if key in stand_ins else arg)
    return out + ["device=cpu"], sweep


@pytest.mark.parametrize("source,args", COMMANDS, ids=[f"{f}: {' '.join(a)}" for f, a in COMMANDS])
def test_header_command_validates_and_runs(source, args, stand_ins, tmp_path, monkeypatch):
    # the MNIST experiments read $SNNRUN_MNIST_NPZ when the command names no data.path: the stand-in
    monkeypatch.setenv("SNNRUN_MNIST_NPZ", str(stand_ins["data.path"]()))
    overrides, sweep = arguments(args, stand_ins)
    if any(a.startswith("hparams_search=") for a in overrides):
        pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="optional extra `optuna` not installed")
    assert validate_config(compose(overrides)) == [], f"{source}: snnrun {' '.join(args)}"
    cfg = compose(overrides)
    task = cfg.get("task", "train")
    if sweep or task == "diehl_cook":
        return
    shrink = list(SHRINK[task])
    if task == "train" and cfg.encoder.name not in ("spikes", "delta"):  # sequence encoders need the data's T
        shrink.append(f"network.duration={min(cfg.network.duration, 10 * cfg.network.dt)}")
    shrunk = compose_config(overrides + shrink)  # the job's config, as Hydra hands it to the task
    summary = get_task(task).run(shrunk, tmp_path / "run")
    assert summary["status"] == "completed", summary


@pytest.mark.parametrize("path", sorted((CONFIG_DIR / "hparams_search").glob("*.yaml")), ids=lambda p: p.stem)
def test_search_space_bounds_validate(path):
    """Every searched key exists (set without ``+``) and both ends of its range are valid values."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="optional extra `optuna` not installed")
    import yaml

    params = yaml.safe_load(path.read_text())["hydra"]["sweeper"]["params"]
    assert params
    for key, space in params.items():
        low, high = re.search(r"interval\(([^,]+),([^)]+)\)", space).groups()
        for value in (low.strip(), high.strip()):
            assert validate_config(compose([f"hparams_search={path.stem}", f"{key}={value}"])) == [], (key, value)
