"""Fuzz: mutated shipped experiment configs either run one training batch or end in a SnnrunError,
and ``snnrun validate`` agrees with the run's build on every one.

Each shipped training experiment (and the default config) is composed once with Hydra's compose
API and shrunk (tiny data, one batch, CPU); hypothesis then deletes keys, swaps in wrong types,
extreme values and unknown names, and the mutated config goes through ``snnrun validate`` and the
run's build (``build_experiment`` and the runner's set-up): both accept it or both refuse it. When
they accept it, one training batch runs (``Runner.run_epoch`` with ``limit_train_batches=1``). Any
exception other than a ``SnnrunError`` fails the test. The other
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

from tests.conftest import compose_config
from snnrun.build import build_experiment
from snnrun.errors import SnnrunError
from snnrun.runner import Runner
from snnrun.tasks import get_task
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
    for name in OTHER_TASKS:  # diehl_cook reads MNIST: the tiny file stands in (validate loads the data)
        extra = [f"data.path={npz}"] if name == "diehl_cook" else []
        out[name] = OmegaConf.to_container(compose_config([f"experiment={name}", "device=cpu", *extra]), resolve=False)
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


def _outcome(fn) -> str | None:
    """None when ``fn()`` returns, the error's message when it raises a SnnrunError; any other
    exception propagates (OmegaConf's own errors fail the test with a clear message)."""
    try:
        fn()
        return None
    except SnnrunError as err:
        return str(err)
    except Exception as err:  # noqa: BLE001 - report OmegaConf's own user-facing errors as such
        from omegaconf.errors import OmegaConfBaseException
        if isinstance(err, OmegaConfBaseException):
            raise AssertionError(f"an OmegaConf error escaped snnrun's checks: {type(err).__name__}: {err}") from err
        raise


def smoke(container, run_dir, train: bool) -> str:
    """'ran' (one batch), 'valid' (validated, not run), or 'error' (a SnnrunError); any other
    exception propagates. ``snnrun validate`` must accept the config exactly when the run's build
    (``build_experiment`` and the runner's set-up, which parses monitors and plots) accepts it."""
    verdict = _outcome(lambda: validate_config(OmegaConf.create(container)))
    if not train:
        return "valid" if verdict is None else "error"
    built = {}

    def build():
        if get_task(container.get("task", "train")).name != "train":
            return  # a mutation chose another task: compared by validate alone
        built["runner"] = Runner(build_experiment(OmegaConf.create(container)), run_dir, "")

    error = _outcome(build)
    assert (verdict is None) == (error is None), f"validate said {verdict!r} but the build said {error!r}"
    if error is not None:
        return "error"
    if "runner" not in built:
        return "valid"
    runner = built["runner"]
    runner.generator.manual_seed(0)
    return "ran" if _outcome(lambda: runner.run_epoch(train=True)) is None else "error"


def test_shrunk_bases_run(bases, tmp_path):
    configs, _ = bases
    for name in TRAIN:
        assert smoke(copy.deepcopy(configs[name]), tmp_path / name, train=True) == "ran", name
    for name in OTHER_TASKS:
        assert smoke(copy.deepcopy(configs[name]), tmp_path / name, train=False) == "valid", name


EXAMPLES = 72  # per training experiment: 7 x 72 = 504 mutations, plus 4 x 20 validate-only, plus the
#: command-line cases below (every group x 22 values, the hydra section alone and in pairs): over 1000 configs


@pytest.mark.parametrize("name", list(TRAIN))
def test_mutated_training_configs_run_or_fail_cleanly(bases, tmp_path, name):
    base = bases[0][name]
    outcomes = []

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(mutation(base))
    def check(case):
        container, applied, _ = case
        outcomes.append(smoke(container, tmp_path / "run", train=True))

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


# --- command-line overrides: config groups given values of every type, and the hydra section ------

GROUP_VALUES = [None, 0, -1, 1.5, math.nan, math.inf, True, "nonexistent", "", [1, 2], ["a"], {"x": 1}, "lif", "cosine",
                "default", "none", "synthetic", "digits", "spike_counts", "poisson", "adam", "mlp"]
HYDRA_OVERRIDES = [
    "hydra.output_subdir=../escape", "hydra.output_subdir=/tmp/abs", "hydra.output_subdir=.hydra", "hydra.output_subdir=null",
    "+hydra.job.env_set.CXX=/tmp/cc", "+hydra.job.env_set.OMP_NUM_THREADS=1", "+hydra.job.env_set.LD_PRELOAD=x.so",
    "+hydra.job.env_set.TORCH_EXTENSIONS_DIR=/tmp/ext", "+hydra.job.env_set.PATH=/tmp", "hydra.job.env_set=[1]",
    "hydra.job.chdir=true", "hydra.job.chdir=false", "hydra.run.dir=/tmp/somewhere", "hydra.sweep.subdir=../up",
    "hydra.job_logging.handlers.file.filename=/tmp/x.log", "hydra.job_logging.handlers.file.filename=job.log",
    "hydra.job_logging.handlers.file.class=logging.handlers.SocketHandler",
    "+hydra.job_logging.formatters.simple.()=os.system", "hydra.job_logging.formatters.simple.format='%(message)s'",
    "+hydra.callbacks.x._target_=os.system", "+hydra.callbacks.x._target_=snnrun.sweep.SweepSummary",
    "hydra.job_logging=null", "hydra/job_logging=disabled", "hydra/job_logging=stdout", "hydra.verbose=true",
    "+allow_targets=[os]", "hydra.searchpath=[file:///nonexistent]", "hydra.job.name=x",
]


def _value_text(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{v}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(str(v) for v in value) + "]"
    return str(value) if value != "" else "''"


def _validate_outcome(overrides) -> str:
    from snnrun.validate import compose

    try:
        validate_config(compose(list(overrides)))
        return "valid"
    except SnnrunError:
        return "error"


def test_every_group_with_values_of_every_type_validates_or_fails_cleanly():
    """Each config group of the tree set to values of every type on the command line (as
    ``snnrun group=value`` gives them): a valid config or one SnnrunError, never a traceback."""
    from snnrun.configs import CONFIG_DIR

    groups = sorted(p.name for p in CONFIG_DIR.iterdir() if p.is_dir() and not p.name.startswith("_"))
    outcomes = [_validate_outcome(["data=synthetic", f"{group}={_value_text(value)}"])
                for group in groups for value in GROUP_VALUES]
    assert len(outcomes) >= 300 and "error" in outcomes and "valid" in outcomes


def test_hydra_section_mutations_validate_or_fail_cleanly():
    """The hydra section mutated alone and in pairs: a valid config or one SnnrunError."""
    import itertools

    cases = [[o] for o in HYDRA_OVERRIDES] + [list(p) for p in itertools.combinations(HYDRA_OVERRIDES, 2)][::3]
    outcomes = [_validate_outcome(["data=synthetic", *case]) for case in cases]
    assert len(outcomes) >= 150 and outcomes.count("error") > 10 and "valid" in outcomes
    assert _validate_outcome(["data=synthetic", "+hydra.job.env_set.CXX=/tmp/cc"]) == "error"
