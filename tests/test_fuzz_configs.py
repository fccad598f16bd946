"""Fuzz: mutated shipped experiment configs either run one training batch or end in a SnnrunError.

Each shipped training experiment (and the default config) is composed once with Hydra's compose
API and shrunk (tiny data, one batch, CPU); hypothesis then deletes keys, swaps in wrong types,
extreme values and unknown names, and the mutated config goes through ``snnrun validate``'s checks
and ``build_experiment`` and, when both accept it, one training batch (``Runner.run_epoch`` with
``limit_train_batches=1``). Any exception other than a ``SnnrunError`` fails the test. The other
tasks' experiments (current_clamp, stdp_window, diehl_cook, rstdp_xor) are mutated too and
checked with ``validate_config`` only (their runs are long simulations).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from omegaconf import OmegaConf

from conftest import compose_config
from snnrun.build import build_experiment
from snnrun.errors import SnnrunError
from snnrun.runner import Runner
from snnrun.validate import validate_config

SHRINK = ["trainer.limit_train_batches=1", "trainer.limit_test_batches=1", "trainer.epochs=1", "device=cpu",
          "trainer.progress=false", "plots=off", "monitors=off", "data.batch_size=4"]
TRAIN = {
    "default": ["data.subset=32", "network.duration=5"],
    "digits_alif": ["data.subset=32", "network.duration=5"],
    "digits_plif": ["data.subset=32", "network.duration=5"],
    "mnist_mlp": ["data.subset=32", "network.duration=5"],
    "mnist_cnn": ["data.subset=32"],
    "temporal_recurrent": ["data.subset=32"],
    "temporal_delayed": ["data.subset=32"],
}
OTHER_TASKS = ["current_clamp", "stdp_window", "diehl_cook", "rstdp_xor"]


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """Composed and shrunk containers (unresolved), one per shipped experiment."""
    folder = tmp_path_factory.mktemp("fuzz")
    npz = folder / "tiny_mnist.npz"
    rng = np.random.default_rng(0)
    np.savez(npz, x_train=rng.integers(0, 255, (48, 28, 28), dtype=np.uint8), y_train=np.arange(48) % 10,
             x_test=rng.integers(0, 255, (16, 28, 28), dtype=np.uint8), y_test=np.arange(16) % 10)
    out = {}
    for name, extra in TRAIN.items():
        experiment = [] if name == "default" else [f"experiment={name}"]
        if name.startswith("mnist"):
            extra = [*extra, f"data.path={npz}"]
        cfg = compose_config([*experiment, *SHRINK, *extra])
        out[name] = OmegaConf.to_container(cfg, resolve=False)
    for name in OTHER_TASKS:
        out[name] = OmegaConf.to_container(compose_config([f"experiment={name}", "device=cpu"]), resolve=False)
    return out, folder


def paths(node, prefix=()):
    """Every key path of a container (dict keys and list indices)."""
    found = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        path = (*prefix, key)
        found.append(path)
        found.extend(paths(value, path))
    return found


WRONG = st.sampled_from(["abc", "", None, True, False, [1, 2], {"x": 1}, [], {}, "${nonexistent.key}"])
EXTREME = st.sampled_from([0, -1, -7, 0.0, -1.0, -1e-3, 1e-9, 1e-3, 0.5, 2, 1e4, math.inf, -math.inf, math.nan])
NAMES = st.sampled_from(["lif_", "poison", "Adamm", "dens", "spike_count", "xyz", "sigmoid", "lif", "if", "adam",
                         "cosine", "none", "dense", "bptt", "stdp", "synthetic"])
KEYS = st.sampled_from(["tau_mm", "unknown", "Tau_m", "v_thr", "_target_", "lr", "name"])


@st.composite
def mutation(draw, base):
    cfg = copy.deepcopy(base)
    applied = []
    for _ in range(draw(st.integers(1, 2))):
        candidates = paths(cfg)
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        parent = cfg
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        kind = draw(st.sampled_from(["delete", "wrong", "extreme", "name", "add"]))
        if kind == "delete":
            del parent[key]
        elif kind == "wrong":
            parent[key] = copy.deepcopy(draw(WRONG))  # a fresh copy: later mutations may edit it
        elif kind == "extreme":
            parent[key] = draw(EXTREME)
        elif kind == "name":
            parent[key] = draw(NAMES)
        elif isinstance(parent, dict):
            parent[draw(KEYS)] = draw(st.one_of(EXTREME, NAMES))
        applied.append((kind, ".".join(map(str, path))))
    return cfg, applied, draw(st.booleans())


def smoke(container, run_dir, train: bool, validate: bool = True) -> str:
    """'ran' (one batch), or 'error' (a SnnrunError); any other exception propagates.

    ``validate``: also run ``snnrun validate``'s checks first (half of the training cases, to
    keep the test fast; ``build_experiment`` validates every node itself)."""
    try:
        cfg = OmegaConf.create(container)
        if validate or not train:
            validate_config(cfg)
        if not train:
            return "valid"
        exp = build_experiment(cfg)
        runner = Runner(exp, run_dir, "")
        runner.generator.manual_seed(0)
        runner.run_epoch(train=True)
        return "ran"
    except SnnrunError:
        return "error"
    except Exception as err:  # noqa: BLE001 - report only OmegaConf's own user-facing errors as such
        from omegaconf.errors import OmegaConfBaseException
        if isinstance(err, OmegaConfBaseException):
            raise AssertionError(f"an OmegaConf error escaped snnrun's checks: {type(err).__name__}: {err}") from err
        raise


def test_shrunk_bases_run(bases, tmp_path):
    configs, _ = bases
    for name in TRAIN:
        assert smoke(copy.deepcopy(configs[name]), tmp_path / name, train=True) == "ran", name
    for name in OTHER_TASKS:
        assert smoke(copy.deepcopy(configs[name]), tmp_path / name, train=False) == "valid", name


EXAMPLES = 72  # per training experiment: 7 x 72 = 504 mutations, plus 4 x 20 validate-only


@pytest.mark.parametrize("name", list(TRAIN))
def test_mutated_training_configs_run_or_fail_cleanly(bases, tmp_path, name):
    base = bases[0][name]
    outcomes = []

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(mutation(base))
    def check(case):
        container, applied, validate = case
        outcomes.append(smoke(container, tmp_path / "run", train=True, validate=validate))

    check()
    assert len(outcomes) >= EXAMPLES * 0.9  # hypothesis may stop early only on duplicates
    assert "error" in outcomes  # the mutations do break configs ...
    assert "ran" in outcomes  # ... and some still run (a mutation of an unused key, a valid value)


@pytest.mark.parametrize("name", OTHER_TASKS)
def test_mutated_task_configs_validate_or_fail_cleanly(bases, tmp_path, name):
    base = bases[0][name]

    @settings(max_examples=20, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(mutation(base))
    def check(case):
        smoke(case[0], tmp_path, train=False)

    check()
