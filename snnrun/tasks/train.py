"""``task: train``: build the experiment and fit it — epochs of training and evaluation
(:class:`snnrun.runner.Runner`)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

SECTIONS: dict[str, type] = {}


def check(cfg: DictConfig) -> list[str]:
    """The run's build as a dry run: every component built and checked (data loaded for their
    shapes and classes), the instruments' config parsed; no kernel built, nothing written."""
    from ..build import build_experiment
    from ..monitors import Instruments

    exp = build_experiment(cfg, dry_run=True)
    Instruments(exp, Path("."))  # parses monitors and plots against the built network (writes nothing)
    return []


def run(cfg: DictConfig, run_dir: Path, resume: bool = False) -> dict:
    from ..build import build_experiment
    from ..distributed import local_device
    from ..runner import Runner

    from .. import threads

    exp = build_experiment(cfg, device=local_device(cfg))  # torchrun on CUDA: this rank's cuda:LOCAL_RANK
    runner = Runner(exp, run_dir, OmegaConf.to_yaml(cfg))
    work = threads.synaptic_work(exp.network, exp.data_params.batch_size) if exp.device.type == "cpu" else None
    with threads.policy(exp.trainer.threads, work) as runner.threads:
        return runner.fit(resume=resume)
