"""Diehl & Cook (2015): unsupervised STDP learning of MNIST digits, as a task.

``snnrun experiment=diehl_cook`` (N = 100) / ``experiment=diehl_cook_400`` builds the experiment
from the ordinary config tree (``network`` with an input population, ``diehlandcook``
excitatory neurons, ``lif`` inhibitory neurons, a dense input→exc projection, one-to-one
exc→inh and lateral inhibition inh→exc; ``encoder: poisson``; ``learner: postpre`` on the
input projection with ``w_norm``; ``decoder: label_assignment``), then runs, one sample at a
time (batch 1, the paper's semantics):

1. training pass with learning on (STDP, adaptive thresholds θ). A presentation producing
   fewer than ``min_spikes`` excitatory spikes is repeated with the input rates scaled by
   ``1 + boost·k`` (k = 1, 2, …, at most ``max_boosts`` times), as the paper's input-rate boost;
2. label assignment (``decoder.label_assignment``): from the excitatory spike counts of the
   training pass (``assign: online``, as BindsNET) or of a pass over the training samples
   with learning frozen (``assign: frozen``, as the paper);
3. test pass with learning frozen: accuracy of the class-averaged vote (``all``) and of the
   proportion-weighted vote.

The network state is reset between samples instead of a 150 ms resting period (θ persists).
``backend: cpp`` runs each sample in the compiled event-driven loop of
:mod:`snnrun.kernels.diehl_cook`; ``backend: torch`` runs the generic simulation
(:class:`snnrun.network.Network` stepping the neuron modules, the learner called from the
step hook), which is the reference the kernel is tested against; ``auto`` uses the kernel
when it compiles. Writes ``metrics.csv`` (training progress), ``checkpoints/last.pt`` and
``summary.json`` (accuracies, training throughput in samples/s).
"""

from __future__ import annotations

import csv
import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from omegaconf import DictConfig

from .. import checkpoint
from ..errors import ConfigError
from ..reproducibility import versions
from ..kernels import report as kernel_report
from ..schema import param, parse_params

log = logging.getLogger("snnrun")


@dataclass
class DiehlCookParams:
    backend: str = param("auto", choices=("auto", "cpp", "torch"), help="compiled kernel, generic torch simulation, or auto")
    min_spikes: int = param(5, ge=0, help="repeat a presentation with boosted rates below this many exc spikes")
    boost: float = param(0.5, ge=0, help="input rates x (1 + boost*k) on the k-th repetition")
    max_boosts: int = param(5, ge=0, help="most repetitions of one sample")
    assign: str = param("online", choices=("online", "frozen"), help="label assignment from the learning pass or a frozen pass")
    train_samples: int | None = param(None, help="limit the training samples (null = all)")
    test_samples: int | None = param(None, help="limit the test samples (null = all)")
    log_every: int = param(500, ge=1, help="metrics row every N training samples")
    one_spike: bool = param(True, help="sets the diehlandcook neuron's one_spike: at most one excitatory spike per "
                                       "step, the neuron furthest above threshold (BindsNET's one_spike, "
                                       "deterministic); all crossing neurons reset")


class DiehlCookNetwork:
    """The D&C network of an :class:`~snnrun.build.Experiment`, simulated per sample by one backend."""

    def __init__(self, exp, backend: str = "auto", one_spike: bool | None = None, key: str = "diehl_cook"):
        """``one_spike`` sets the excitatory ``diehlandcook`` neuron's ``one_spike`` param (None: keep
        what its config declares); both backends then follow it."""
        self.exp = exp
        net = exp.network.double()
        self.net = net
        self.input = net.inputs[0] if len(net.inputs) == 1 else None
        by_kind = {}
        for name, proj in net.projections.items():
            kind = getattr(proj.stages[-1], "registry_name", "")
            by_kind.setdefault(kind, []).append(proj)
        exc = [n for n, p in net.populations.items() if p.neuron is not None and p.neuron.registry_name == "diehlandcook"]
        inh = [n for n, p in net.populations.items() if p.neuron is not None and p.neuron.registry_name == "lif"]
        if (self.input is None or len(exc) != 1 or len(inh) != 1 or len(by_kind.get("dense", [])) != 1
                or len(by_kind.get("one_to_one", [])) != 1 or len(by_kind.get("lateral_inhibition", [])) != 1):
            raise ConfigError("network: diehl_cook needs one input population, one diehlandcook and one lif population, "
                              "and dense input->exc, one_to_one exc->inh, lateral_inhibition inh->exc projections")
        self.exc, self.inh = exc[0], inh[0]
        exc_neuron = net.populations[self.exc].neuron
        if one_spike is not None and one_spike != exc_neuron.params.one_spike:
            exc_neuron.params = replace(exc_neuron.params, one_spike=bool(one_spike))
        self.one_spike = exc_neuron.params.one_spike
        self.proj_in, self.proj_ei, self.proj_ie = by_kind["dense"][0], by_kind["one_to_one"][0], by_kind["lateral_inhibition"][0]
        if (self.proj_in.source, self.proj_in.target, self.proj_ei.source, self.proj_ei.target, self.proj_ie.source,
                self.proj_ie.target) != (self.input, self.exc, self.exc, self.inh, self.inh, self.exc):
            raise ConfigError("network.projections: diehl_cook expects input->exc (dense), exc->inh (one_to_one), "
                              "inh->exc (lateral_inhibition)")
        local = [lr for lr in exp.learners if getattr(lr, "local", False)]
        if len(local) != 1 or list(local[0].targets) != [self.proj_in.name]:
            raise ConfigError(f"learner.trainable: diehl_cook trains [{self.proj_in.name}] with one local rule")
        self.learner = local[0]
        c = self.learner.constants(self.learner.targets[self.proj_in.name])
        if c.mode != "nearest" or c.order != "traces_first" or c.weight_dependence != "additive" or c.boundary != "hard" \
                or c.decay_weight != 1.0 or self.learner.registry_name != "stdp":
            backend = "torch" if backend == "auto" else backend
            if backend == "cpp":
                raise ConfigError("diehl_cook.backend: the cpp kernel implements postpre (nearest, traces_first, additive, "
                                  "hard bounds, no weight decay); use backend=torch for other rules")
        if any(getattr(net.populations[n].neuron.params, "escape_noise", False) for n in (self.exc, self.inh)):
            backend = "torch" if backend == "auto" else backend
            if backend == "cpp":
                raise ConfigError("diehl_cook.backend: the cpp kernel has deterministic thresholds; use backend=torch "
                                  "with escape_noise")
        self.constants = c
        if backend == "auto":
            from ..kernels import diehl_cook as kernel
            backend = "cpp" if kernel.available() else "torch"
        self.backend = backend
        self.weight = self.proj_in.stages[-1].weight
        self.theta = net.populations[self.exc].neuron.theta
        if backend == "cpp":
            self.weight_t = self.weight.detach().t().contiguous().clone()
            self.theta_k = self.theta.detach().clone().contiguous()
            self.params = self._kernel_params()

    def _kernel_params(self) -> list[float]:
        net, c = self.net, self.constants
        e, i = net.populations[self.exc].neuron, net.populations[self.inh].neuron
        ep, ip = e.params, i.params
        if ep.reset != "hard" or ip.reset != "hard" or ip.integration != "euler":
            raise ConfigError("network.populations: the cpp kernel needs hard resets and an Euler lif (use backend=torch)")
        w_norm = self.learner.params.w_norm
        return [float(x) for x in (
            self.weight.shape[1], self.weight.shape[0], net.time_steps, ep.v_rest, ep.v_reset, ep.v_th, e.decay,
            e.theta_decay, ep.theta_plus, ep.r, e.refrac_steps, ip.v_rest, ip.v_reset, ip.v_th, net.dt / ip.tau_m, ip.r,
            i.refrac_steps, self.proj_ei.stages[-1].params.weight, self.proj_ie.stages[-1].params.weight, c.decay_pre,
            c.decay_post, c.lr_post * c.a_plus, c.lr_pre * c.a_minus,
            c.w_min if c.w_min is not None else -1e300, c.w_max if c.w_max is not None else 1e300,
            w_norm if w_norm is not None else 0.0, 0.0, 1.0 if self.one_spike else 0.0)]

    def sample(self, spikes: torch.Tensor, learn: bool) -> torch.Tensor:
        """Simulate one sample: ``spikes`` [T, n_in] (0/1); returns exc spike counts [n] (int64)."""
        if self.backend == "cpp":
            from ..kernels import diehl_cook as kernel

            self.params[26] = 1.0 if learn else 0.0
            spikes = spikes.view(torch.uint8) if spikes.dtype == torch.bool else spikes.to(torch.uint8)
            return kernel.run_sample(spikes.contiguous(), self.weight_t, self.theta_k, self.params)
        from ..kernels import diehl_cook as kernel

        kernel._EXTENSION.ran("reference")
        net = self.net
        net.train(learn)
        net.reset()
        if learn:
            self.learner.begin_sample(1)

            def hook(step, now, previous):
                self.learner.on_step(step, now, previous)
            net.step_hook = hook
        try:
            with torch.no_grad():
                out = net(spikes.to(torch.float64).reshape(spikes.shape[0], 1, -1))
        finally:
            net.step_hook = None
        net.reset()  # commits θ
        return out.spikes[self.exc][:, 0].sum(0).to(torch.int64)

    def sync(self) -> None:
        """Write the kernel's weights and θ back into the network modules."""
        if self.backend == "cpp":
            with torch.no_grad():
                self.weight.copy_(self.weight_t.t())
                self.theta.copy_(self.theta_k)


def encode(encoder, x: torch.Tensor, factor: float = 1.0) -> torch.Tensor:
    """Spike trains ``[N, T, n_in]`` (bool) of samples ``x`` [N, n_in] with rates scaled by ``factor``.
    A ``poisson`` encoder is sampled directly as booleans (same law as its ``forward``:
    independent Bernoulli steps with ``P = min(x·scale·max_rate·dt/1000, 1)``); others are called."""
    if getattr(encoder, "registry_name", "") == "poisson":
        p = encoder.params
        prob = (x.float() * factor * p.scale * p.max_rate * encoder.dt / 1000.0).clamp(0.0, 1.0)
        return torch.rand(x.shape[0], encoder.time_steps, x.shape[1]) < prob.unsqueeze(1)
    spikes = encoder((x * factor).to(torch.float32))  # [T, N, ...]
    return (spikes.reshape(spikes.shape[0], x.shape[0], -1) > 0).transpose(0, 1).contiguous()


def _present(model: DiehlCookNetwork, encoder, x: torch.Tensor, spikes: torch.Tensor, learn: bool,
             p: DiehlCookParams) -> tuple[torch.Tensor, int]:
    """One sample (``spikes`` pre-drawn at the base rate), repeated with boosted rates while silent."""
    k = 0
    while True:
        counts = model.sample(spikes, learn)
        if not learn or int(counts.sum()) >= p.min_spikes or k >= p.max_boosts:
            return counts, k
        k += 1
        spikes = encode(encoder, x.unsqueeze(0), 1.0 + p.boost * k)[0]


def _chunks(encoder, x: torch.Tensor, order: list[int], size: int = 100):
    for i in range(0, len(order), size):
        idx = order[i:i + size]
        spikes = encode(encoder, x[idx])
        for j, sample in enumerate(idx):
            yield sample, spikes[j]


def run_diehl_cook(exp, p: DiehlCookParams, run_dir: Path | None = None) -> dict:
    """Train, assign labels and test; returns the summary dict (see module docstring)."""
    model = DiehlCookNetwork(exp, p.backend, p.one_spike)
    encoder, decoder = exp.encoder, exp.decoder
    if getattr(decoder, "registry_name", "") != "label_assignment":
        raise ConfigError("decoder.name: diehl_cook reads out with label_assignment")
    data = exp.data
    x_train = data.x_train.double().reshape(len(data.x_train), -1)
    y_train = data.y_train
    n_train = min(len(x_train), p.train_samples or len(x_train))
    x_test = data.x_test.double().reshape(len(data.x_test), -1)
    n_test = min(len(x_test), p.test_samples or len(x_test))
    rows, boosts, spikes_total = [], 0, 0
    order = torch.randperm(len(x_train))[:n_train]
    start = time.perf_counter()
    for n, (idx, spikes) in enumerate(_chunks(encoder, x_train, order.tolist()), 1):
        counts, k = _present(model, encoder, x_train[idx], spikes, True, p)
        boosts += k
        spikes_total += int(counts.sum())
        if p.assign == "online":
            decoder.observe(counts.reshape(1, 1, -1).double(), y_train[idx:idx + 1])
        if n % p.log_every == 0 or n == n_train:
            elapsed = time.perf_counter() - start
            rows.append({"samples": n, "train_samples_per_s": n / elapsed, "exc_spikes_per_sample": spikes_total / n,
                         "boosts": boosts, "wall_time": elapsed})
            log.info("diehl_cook: %d/%d samples, %.1f samples/s", n, n_train, n / elapsed)
    train_time = time.perf_counter() - start
    if p.assign == "frozen":
        for idx, spikes in _chunks(encoder, x_train, order.tolist()):
            counts, _ = _present(model, encoder, x_train[idx], spikes, False, p)
            decoder.observe(counts.reshape(1, 1, -1).double(), y_train[idx:idx + 1])
    decoder.end_epoch()
    test_counts = torch.stack([_present(model, encoder, x_test[i], s, False, p)[0]
                               for i, s in _chunks(encoder, x_test, list(range(n_test)))]).double()
    y_test = data.y_test[:n_test]
    accuracy = {}
    weighting = decoder.params.weighting
    for mode in ("all", "proportion"):
        decoder.params.weighting = mode
        pred = decoder.predict(decoder(test_counts.unsqueeze(0)))
        accuracy[mode] = float((pred == y_test).double().mean())
    decoder.params.weighting = weighting
    model.sync()
    summary = {"status": "completed", "task": "diehl_cook", "backend": model.backend,
               "n_exc": int(model.weight.shape[0]), "train_samples": n_train, "test_samples": n_test,
               "train_samples_per_s": n_train / train_time, "train_time_s": train_time, "boosts": boosts,
               "test/accuracy": accuracy[weighting], "test/accuracy_all": accuracy["all"],
               "test/accuracy_proportion": accuracy["proportion"]}
    if run_dir is not None:
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        with open(run_dir / "metrics.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        checkpoint.save({"model": exp.network.state_dict(), "decoder": decoder.state_dict()},
                        run_dir / "checkpoints" / "last.pt")
    return summary


CONFIG_KEYS = ("diehl_cook",)


def _build(cfg: DictConfig, dry_run: bool = False):
    """(experiment, protocol params) of the protocol, its topology and readout checked."""
    from ..build import build_experiment, to_container

    p = parse_params(DiehlCookParams, to_container(cfg).get("diehl_cook") or {}, "diehl_cook")
    exp = build_experiment(cfg, dry_run=dry_run)
    if exp.device.type != "cpu":
        raise ConfigError(f"device: diehl_cook runs sample by sample on the CPU; got {exp.device}")
    if getattr(exp.decoder, "registry_name", "") != "label_assignment":
        raise ConfigError("decoder.name: diehl_cook reads out with label_assignment")
    return exp, p


def check(cfg: DictConfig) -> list[str]:
    """The protocol's build as a dry run: experiment, topology and rule checked (the kernel is not
    built: ``backend: auto`` is checked as the torch path)."""
    exp, p = _build(cfg, dry_run=True)
    DiehlCookNetwork(exp, "torch" if p.backend == "auto" else p.backend, p.one_spike)
    return []


def run(cfg: DictConfig, run_dir: Path, resume: bool = False) -> dict:
    """Build the experiment from the config tree and run the D&C protocol (module docstring)."""
    if resume:
        raise ConfigError("task: diehl_cook runs one pass and cannot be resumed; start a new run")
    exp, p = _build(cfg)
    summary = run_diehl_cook(exp, p, run_dir)
    summary.update({"seed": exp.seed, "versions": versions(), "kernels": kernel_report(), "run_dir": str(run_dir),
                    "message": f"test accuracy {summary['test/accuracy_all']:.3f} (all) / "
                               f"{summary['test/accuracy_proportion']:.3f} (proportion); training "
                               f"{summary['train_samples_per_s']:.1f} samples/s ({summary['backend']})"})
    (Path(run_dir) / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
