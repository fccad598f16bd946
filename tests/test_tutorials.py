"""The tutorials (docs/tutorials/*.md) run as written, at reduced size.

From each page the test takes, in page order, every code block titled with a file name
(```` ```python title="my_neurons.py" ````: a file the reader saves) and every ```` ```bash ````
block (the commands the reader types). It writes the files and runs the commands as one bash
script (``set -euxo pipefail``) in a temporary directory, so every run directory lands there, with
the changes listed per tutorial in ``REDUCE``:

- overrides appended to the training ``snnrun`` commands that contain a given text (replacing
  the same key when the command sets it), so each run takes seconds: fewer epochs, samples,
  trials and pairings, no figures;
- commands that are not run (``SKIP``: installing an extra; the test skips when it is missing).

MNIST is not downloaded here: the STDP tutorial's ``snnrun validate data=mnist`` finds four small
generated IDX files in ``~/.cache/snnrun/mnist`` of a temporary home (its download step is then a
no-op and the conversion script runs on them), and the convolutional tutorial gets a small
generated ``mnist_6k.npz`` in place of the one the STDP tutorial makes. The selected tutorials run
two at a time, one torch thread each (fixture ``runs``); then each test checks the files its
tutorial says the commands write.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import json
import os
import re
import shlex
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "docs" / "tutorials"
BIN = Path(sys.executable).parent

FAST = {"plots": "off", "trainer.progress": "false"}
#: tutorial -> {text a command contains: overrides for it}; the first matching text applies
REDUCE = {
    "first-experiment": {"snnrun trainer.epochs=5": {"data.subset": "300", **FAST}},
    "own-network": {"experiment=skip_digits hydra.run.dir": {"trainer.epochs": "2", "data.subset": "300", **FAST}},
    "stdp-diehl-cook": {
        "experiment=stdp_window": {"protocol.pairings": "1", "protocol.dt_step": "10", "plots": "off"},
        "experiment=diehl_cook": {"diehl_cook.train_samples": "20", "diehl_cook.test_samples": "10", "plots": "off"},
    },
    "conv-snn": {"experiment=mnist_cnn": {"trainer.epochs": "1", **FAST}},
    "optuna-sweep": {"hparams_search=optuna": {"hydra.sweeper.n_trials": "2", "trainer.epochs": "1",
                                               "data.subset": "200", **FAST}},
    "own-neuron": {"experiment=current_clamp": {"plots": "off"},
                   "trainer.epochs=5": {"trainer.epochs": "1", "data.subset": "200", **FAST}},
}
#: commands not run: installing an extra (the test is skipped when the extra is missing)
SKIP = ("pip install",)
#: sub-commands that take no run overrides
SUBCOMMANDS = {"list", "validate", "resume", "reproduce", "compare", "plot", "doctor"}

_FENCE = re.compile(r"^```(\w*)([^\n]*)\n(.*?)^```[ \t]*$", re.S | re.M)


def blocks(page: Path) -> list[tuple[str, str | None, str]]:
    """(language, title, text) of every fenced code block of ``page``, in order."""
    out = []
    for lang, info, text in _FENCE.findall(page.read_text()):
        title = re.search(r'title="([^"]+)"', info)
        out.append((lang, title.group(1) if title else None, text))
    return out


def commands(text: str) -> list[str]:
    """The commands of a bash block: one per line (a trailing backslash continues it), no comments."""
    out, pending = [], ""
    for line in text.splitlines():
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        if pending.strip() and not pending.strip().startswith("#"):
            out.append(pending.strip())
        pending = ""
    return out


def reduce(command: str, rules: dict[str, dict[str, str]], used: set[str]) -> str | None:
    """``command`` with its tutorial's reductions, or None when it is not run."""
    if any(skip in command for skip in SKIP):
        return None
    tokens = shlex.split(command, comments=True)
    program = next((i for i, t in enumerate(tokens) if not re.match(r"^\w+=", t)), len(tokens))
    if program == len(tokens) or tokens[program] != "snnrun":
        return shlex.join(tokens)
    args = [t for t in tokens[program + 1:] if not t.startswith("-")]
    if args and args[0] in SUBCOMMANDS:
        return shlex.join(tokens)
    match = next((text for text in rules if text in command), None)
    if match is not None:
        used.add(match)
        for key, value in rules[match].items():
            found = [i for i, t in enumerate(tokens) if "=" in t and t.split("=", 1)[0].lstrip("+~") == key]
            if found:
                tokens[found[0]] = f"{key}={value}"
            else:
                tokens.append(f"{key}={value}")
    return shlex.join(tokens)


def run_tutorial(name: str, workdir: Path) -> str:
    """Write the files and run the commands of ``docs/tutorials/<name>.md`` in ``workdir``."""
    if not (BIN / "snnrun").exists():
        pytest.skip(f"the snnrun command is not installed next to {sys.executable}")
    rules, used, script = REDUCE[name], set(), ["set -euxo pipefail"]
    for lang, title, text in blocks(TUTORIALS / f"{name}.md"):
        if title:
            path = workdir / title
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        elif lang == "bash":
            script += [c for c in (reduce(c, rules, used) for c in commands(text)) if c is not None]
    assert used == set(rules), f"{name}: reductions that match no command: {set(rules) - used}"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(workdir / "home"),
           "SNNRUN_KERNEL_CACHE": os.environ.get("SNNRUN_KERNEL_CACHE")
           or str(Path.home() / ".cache" / "snnrun" / "kernels"), "PYTHONUNBUFFERED": "1",
           "OMP_NUM_THREADS": "1"}  # two tutorials run side by side (``runs``), one core each
    env.pop("SNNRUN_MNIST_NPZ", None)
    proc = subprocess.run(["bash", "-c", "\n".join(script)], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, (f"{name}: exit {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n"
                                  f"--- stderr\n{proc.stderr[-4000:]}")
    return proc.stdout


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def mnist_like(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 28×28 uint8 images whose class (0..9) is where a bright square sits, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
    for image, label in zip(images, labels):
        row, col = 2 + 8 * (label // 4), 2 + 6 * (label % 4)
        image[row:row + 7, col:col + 6] = 255
    return images, labels


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def setup_stdp_and_diehl_cook(workdir: Path) -> None:
    """Generated 28×28 digits in place of the MNIST download (see the module docstring)."""
    root = workdir / "home" / ".cache" / "snnrun" / "mnist"
    root.mkdir(parents=True)
    for split, n, seed in (("train", 60, 0), ("t10k", 20, 1)):
        images, labels = mnist_like(n, seed)
        write_idx(root / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{split}-labels-idx1-ubyte.gz", labels)


def setup_conv_snn(workdir: Path) -> None:
    """A generated mnist_6k.npz (80 training, 40 test images) in place of the one the STDP tutorial
    makes from the MNIST download."""
    x_train, y_train = mnist_like(80, 0)
    x_test, y_test = mnist_like(40, 1)
    np.savez(workdir / "mnist_6k.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


SETUP = {"stdp-diehl-cook": setup_stdp_and_diehl_cook, "conv-snn": setup_conv_snn}
#: test name -> tutorial
TESTS = {"test_first_experiment": "first-experiment", "test_own_network": "own-network",
         "test_stdp_and_diehl_cook": "stdp-diehl-cook", "test_conv_snn": "conv-snn",
         "test_optuna_sweep": "optuna-sweep", "test_own_neuron": "own-neuron"}
OPTUNA = importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is not None


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory):
    """The tutorials of the selected tests, run two at a time (each process on one core): name ->
    (work directory, future of its stdout)."""
    selected = [TESTS[item.name] for item in request.session.items
                if item.module.__name__ == __name__ and item.name in TESTS]
    if not OPTUNA and "optuna-sweep" in selected:
        selected.remove("optuna-sweep")
    pool = ThreadPoolExecutor(max_workers=2)
    started = {}
    for name in selected:
        workdir = tmp_path_factory.mktemp(name)
        SETUP.get(name, lambda _: None)(workdir)
        started[name] = (workdir, pool.submit(run_tutorial, name, workdir))
    yield started
    pool.shutdown(wait=True, cancel_futures=True)


def result(runs, name: str) -> tuple[Path, str]:
    workdir, future = runs[name]
    return workdir, future.result()


def test_first_experiment(runs):
    tmp_path, _ = result(runs, "first-experiment")
    run = tmp_path / "runs" / "first"
    s = summary(run)
    assert s["status"] == "completed" and s["epochs_completed"] == 8  # 5, then resumed to 8
    for name in (".hydra/config.yaml", ".hydra/overrides.yaml", "metrics.csv", "metrics.jsonl", "checkpoints/last.pt",
                 "checkpoints/prev.pt", "checkpoints/best.pt", "monitors/sample.npz", "confusion_matrix.csv",
                 "snnrun.log"):
        assert (run / name).is_file(), name
    epochs = {row["epoch"] for row in csv.DictReader((run / "metrics.csv").open()) if row["split"] == "train"}
    assert epochs == {str(e) for e in range(1, 9)}


def test_own_network(runs):
    tmp_path, _ = result(runs, "own-network")
    run = tmp_path / "runs" / "skip"
    assert summary(run)["status"] == "completed"
    config = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
    assert set(config["network"]["projections"]) == {"inp_h1", "h1_h2", "h2_out", "h1_out"}
    assert config["decoder"]["name"] == "max_voltage"
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/rate/h1", "train/rate/h2"} <= set(header)


def test_stdp_and_diehl_cook(runs):
    tmp_path, _ = result(runs, "stdp-diehl-cook")
    window = {float(r["dt_ms"]): float(r["dw"])
              for r in csv.DictReader((tmp_path / "runs" / "window_stdp" / "stdp_window.csv").open())}
    assert min(window) == -50 and max(window) == 50
    assert window[10.0] > 0 > window[-10.0]  # potentiation when post follows pre, depression before
    with np.load(tmp_path / "mnist_6k.npz") as npz:
        assert npz["x_train"].shape == (60, 28, 28) and npz["y_test"].dtype == np.int64
    s = summary(tmp_path / "runs" / "dc100")
    assert s["status"] == "completed" and s["task"] == "diehl_cook" and s["train_samples"] == 20
    assert {"test/accuracy_all", "test/accuracy_proportion"} <= set(s)


def test_conv_snn(runs):
    tmp_path, out = result(runs, "conv-snn")
    for name in ("cnn", "small_cnn"):
        assert summary(tmp_path / "runs" / name)["status"] == "completed"
    config = yaml.safe_load((tmp_path / "runs" / "small_cnn" / ".hydra" / "config.yaml").read_text())
    assert config["network"]["populations"]["conv"]["shape"] == [8, 12, 12]
    assert "test/synops/total" in out  # snnrun compare's table


@pytest.mark.skipif(not OPTUNA, reason="the optional extra `optuna` (hydra-optuna-sweeper) is not installed")
def test_optuna_sweep(runs):
    tmp_path, _ = result(runs, "optuna-sweep")
    searched = yaml.safe_load((ROOT / "snnrun" / "configs" / "hparams_search" / "optuna.yaml").read_text())
    searched = searched["hydra"]["sweeper"]["params"]
    page = (TUTORIALS / "optuna-sweep.md").read_text()
    assert dict(re.findall(r"^\| `([\w.]+)` \| `([^`]+)` \|$", page, re.M)) == searched  # the page's table
    sweep = tmp_path / "sweeps" / "tau_lr"
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())["best_params"]
    assert set(best) == set(searched)
    rows = list(csv.DictReader((sweep / "sweep_summary.csv").open()))
    assert len(rows) == 2 and all(r["status"] == "completed" for r in rows)
    assert all((sweep / str(i) / "summary.json").is_file() for i in range(2))
    best = yaml.safe_load((tmp_path / "sweeps" / "tau_width" / "optimization_results.yaml").read_text())["best_params"]
    assert 3.0 <= best["neuron.tau_m"] <= 6.0 and best["network.populations.hidden.shape"] in (64, 128, 256)


def test_own_neuron(runs):
    tmp_path, _ = result(runs, "own-neuron")
    rates = {float(r["current"]): float(r["rate_hz"])
             for r in csv.DictReader((tmp_path / "runs" / "eif_clamp" / "fi_curve.csv").open())}
    assert rates[0.5] == 0 and 0 < rates[0.7] < rates[1.0] < rates[2.0]  # rheobase v_T − Δ_T = 0.6
    run = tmp_path / "runs" / "eif"
    assert summary(run)["status"] == "completed"
    assert yaml.safe_load((run / ".hydra" / "config.yaml").read_text())["neuron"]["_target_"] == "my_neurons.EIF"
