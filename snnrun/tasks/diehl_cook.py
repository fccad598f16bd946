"""Diehl & Cook (2015): unsupervised STDP learning of MNIST digits, as a task.

``snnrun experiment=diehl_cook`` (N = 100) / ``experiment=diehl_cook_400`` builds the experiment
from the ordinary config tree (``network`` with an input population, ``diehlandcook``
excitatory neurons, ``lif`` inhibitory neurons, a dense input→exc projection, one-to-one
exc→inh and lateral inhibition inh→exc; ``encoder: poisson``; ``learner: postpre`` on the
input projection with ``w_norm``; ``decoder: label_assignment``), then runs, one sample at a
time while it learns (batch 1, the paper's semantics):

1. training pass with learning on (STDP, adaptive thresholds θ). A presentation producing
   fewer than ``min_spikes`` excitatory spikes is repeated with the input rates scaled by
   ``1 + boost·k`` (k = 1, 2, …, at most ``max_boosts`` times), as the paper's input-rate boost;
2. label assignment (``decoder.label_assignment``): from the excitatory spike counts of the
   training pass (``assign: online``, as BindsNET) or of a pass over the training samples
   with learning frozen (``assign: frozen``, as the paper);
3. test pass with learning frozen: accuracy of the class-averaged vote (``all``) and of the
   proportion-weighted vote.

With learning frozen (a ``frozen`` assignment pass, the test pass) the samples are independent:
each draw of 100 runs as one batch (the engine spreads its samples over the intra-op threads; the
torch path steps them as one batch), with the same counts as one sample at a time. The thread count
of each phase follows ``trainer.threads`` (:mod:`snnrun.threads`; the learning pass's work is one
sample's, the frozen passes' a draw's) and is recorded in ``summary.json`` (``threads``).

The network state is reset between samples instead of a 150 ms resting period (θ persists).
The protocol is not tied to that topology: any network with one input population, local learners
and an output population read by ``label_assignment`` runs (other neuron models, stacked or
recurrent excitatory layers, other STDP variants). ``backend: cpp`` runs each sample on the
compiled step engine (:mod:`snnrun.engine`) and stops with the reason when a component does not
declare support for it; ``backend: torch`` runs the generic simulation
(:class:`snnrun.network.Network` stepping the neuron modules, the learners called from the step
hook), the reference the engine is tested against; ``auto`` uses the engine where it applies.

It runs with the run services (:mod:`snnrun.services`). Every ``log_every`` training samples and
at the end of the pass a metrics row (``samples, train_samples_per_s, exc_spikes_per_sample,
boosts, wall_time``) goes to ``logger.sinks`` (``metrics.csv``/``.jsonl``, TensorBoard, ...) and
the state is checkpointed (``checkpoints/last.pt``, ``prev.pt``): network (weights, θ), decoder
(with the spike counts observed so far), learners, sample order, counters and the RNG state. The
Poisson trains are drawn 100 samples at a time, a draw never straddling a ``log_every`` boundary,
so the RNG state saved at a boundary is the one before the next draw: ``snnrun resume RUN_DIR``
(after SIGINT/SIGTERM, status ``interrupted``, or a crash) ends bit-identical to the uninterrupted
run (weights, θ, accuracies). A stop during label assignment or the test pass resumes from the end
of the training pass. The last checkpoint holds the final state (assigned labels);
``summary.json`` (accuracies, training throughput in samples/s) is written last.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from omegaconf import DictConfig

from .. import checkpoint, threads
from ..errors import ConfigError
from ..schema import param
from ..services import RunServices, written_config

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
    """The network of an :class:`~snnrun.build.Experiment` presented sample by sample, as the protocol
    needs: any graph with one input population, trained by local rules, whose output population the
    ``label_assignment`` decoder reads. It runs on the compiled step engine when every component
    declares that the engine supports it (:mod:`snnrun.engine`), else on the torch reference;
    ``backend``: ``cpp`` (the engine, or an error naming what it does not support), ``torch`` (the
    reference), ``auto`` (the engine where it applies; a warning, once, says why not)."""

    def __init__(self, exp, backend: str = "auto", one_spike: bool | None = None, key: str = "diehl_cook"):
        """``one_spike`` sets the ``one_spike`` param of every population whose model has one (the
        ``diehlandcook`` neurons; None: keep what the config declares)."""
        from ..engine import CompiledNetwork

        self.exp = exp
        net = exp.network.double()
        self.net = net
        if len(net.inputs) != 1 or len(net.outputs) != 1:
            raise ConfigError(f"network: diehl_cook presents one input population and reads one output population; "
                              f"this network has inputs {net.inputs} and outputs {net.outputs}")
        self.input, self.exc = net.inputs[0], net.outputs[0]
        for pop in net.populations.values():
            params = getattr(pop.neuron, "params", None)
            if one_spike is not None and hasattr(params, "one_spike") and params.one_spike != one_spike:
                pop.neuron.params = replace(params, one_spike=bool(one_spike))
        if any(lr.gradient for lr in exp.learners) or not any(getattr(lr, "local", False) for lr in exp.learners):
            raise ConfigError("learner.name: diehl_cook learns with local rules only (stdp, postpre, ...); use "
                              "task=train for gradient learners")
        self.engine = CompiledNetwork(net, exp.learners, {"auto": "auto", "cpp": "compiled", "torch": "reference"}[backend])
        if backend == "auto" and self.engine.reason:
            log.warning("diehl_cook: the compiled step engine does not run this network (%s); using the torch "
                        "simulation, which gives the same results more slowly", self.engine.reason)
        self.backend = "cpp" if self.engine.backend == "compiled" else "torch"
        self.size = math.prod(net.populations[self.exc].shape)

    def sample(self, spikes: torch.Tensor, learn: bool) -> torch.Tensor:
        """Simulate one sample: ``spikes`` [T, n_in] (0/1); returns the output population's spike counts [n] (int64)."""
        return self.engine.sample(spikes, learn)

    def sample_batch(self, spikes: torch.Tensor) -> torch.Tensor:
        """Independent samples, learning frozen: ``spikes`` [B, T, n_in]; the output counts [B, n] (int64)."""
        return self.engine.sample_batch(spikes)

    def sync(self) -> None:
        """Write the engine's weights and persistent state (θ) into the network modules."""
        self.engine.sync()

    def reload(self) -> None:
        """Copy the network modules' weights and θ into the engine's (after a checkpoint loaded into them)."""
        self.engine.reload()


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


#: samples whose spike trains are drawn at once (and, learning frozen, simulated as one batch)
DRAW = 100


def _draws(encoder, x: torch.Tensor, order: list[int], size: int = DRAW, start: int = 0, every: int | None = None):
    """``(sample indices, spike trains [k, T, n_in])`` of ``order[start:]``, drawn ``size`` samples at
    a time. A draw never straddles a multiple of ``every`` (a checkpoint: the RNG state saved there
    is the one before the next draw, so a resumed run draws what the uninterrupted one does); with
    ``every`` a multiple of ``size`` the draws are those of ``size`` samples from the start."""
    i = start
    while i < len(order):
        end = min(i + size, len(order))
        if every:
            end = min(end, (i // every + 1) * every)
        idx = order[i:end]
        yield idx, encode(encoder, x[idx])
        i = end


def _chunks(encoder, x: torch.Tensor, order: list[int], size: int = DRAW, start: int = 0, every: int | None = None):
    """``(sample index, spike train)`` of ``order[start:]``, in the draws of :func:`_draws`."""
    for idx, spikes in _draws(encoder, x, order, size, start, every):
        yield from zip(idx, spikes)


#: metrics.csv columns: one row every ``log_every`` training samples and at the end of the pass
COLUMNS = ["samples", "train_samples_per_s", "exc_spikes_per_sample", "boosts", "wall_time"]


class _Protocol:
    """One D&C run: the training pass (checkpointed at each ``log_every`` boundary), label
    assignment and the test pass; its state is what a resume needs to end as the uninterrupted run."""

    def __init__(self, exp, p: DiehlCookParams):
        self.exp, self.p = exp, p
        self.model = DiehlCookNetwork(exp, p.backend, p.one_spike)
        self.decoder = exp.decoder
        if getattr(self.decoder, "registry_name", "") != "label_assignment":
            raise ConfigError("decoder.name: diehl_cook reads out with label_assignment")
        data = exp.data
        self.x_train = data.x_train.double().reshape(len(data.x_train), -1)
        self.y_train = data.y_train
        self.n_train = min(len(self.x_train), p.train_samples or len(self.x_train))
        self.x_test = data.x_test.double().reshape(len(data.x_test), -1)
        self.n_test = min(len(self.x_test), p.test_samples or len(self.x_test))
        self.order: torch.Tensor | None = None  # the training samples in presentation order
        self.samples = self.boosts = self.exc_spikes = 0  # training samples done, their boosts and exc spikes
        self.train_time = 0.0
        self.accuracy: dict[str, float] | None = None  # set when the run is done
        self.threads: dict[str, tuple[int, str]] = {}  # (intra-op threads, why) per phase: snnrun.threads

    def state_dict(self) -> dict:
        self.model.sync()  # the cpp kernel's weights and θ into the network modules
        return {"model": self.exp.network.state_dict(), "decoder": self.decoder.state_dict(),  # with its responses
                "learners": [lr.state_dict() for lr in self.exp.learners],
                "order": self.order, "samples": self.samples, "boosts": self.boosts, "exc_spikes": self.exc_spikes,
                "train_time": self.train_time, "accuracy": self.accuracy}

    def load_state_dict(self, state: dict) -> None:
        checkpoint.check_fits(self.exp.network.state_dict(), state["model"], "the model", "the checkpoint")
        self.exp.network.load_state_dict(state["model"])
        self.model.reload()  # and back into the cpp kernel's copies
        self.decoder.load_state_dict(state["decoder"])
        for learner, learner_state in zip(self.exp.learners, state["learners"]):
            learner.load_state_dict(learner_state)
        self.order = state["order"]
        self.samples, self.boosts, self.exc_spikes = state["samples"], state["boosts"], state["exc_spikes"]
        self.train_time, self.accuracy = state["train_time"], state["accuracy"]

    def __call__(self, services: RunServices, state: dict | None) -> dict:
        p, model, encoder, decoder = self.p, self.model, self.exp.encoder, self.decoder
        if state is None:
            self.order = torch.randperm(len(self.x_train))[:self.n_train]
            services.checkpoint(0, self.state_dict())
        else:
            self.load_state_dict(state)
        order = self.order.tolist()
        if self.accuracy is None:
            with threads.policy(self.exp.trainer.threads, threads.synaptic_work(self.exp.network, 1)) as chosen:
                self.threads["train"] = chosen
                self._train(services, order)
            # learning frozen: each draw of samples runs as one batch (threads for the batch's work)
            with threads.policy(self.exp.trainer.threads, threads.synaptic_work(self.exp.network, DRAW)) as chosen:
                self.threads["frozen"] = chosen
                if p.assign == "frozen":
                    for idx, spikes in _draws(encoder, self.x_train, order):
                        services.poll("label assignment (frozen pass)")
                        decoder.observe(model.sample_batch(spikes).unsqueeze(0).double(), self.y_train[idx])
                decoder.end_epoch()
                test_counts = []
                for idx, spikes in _draws(encoder, self.x_test, list(range(self.n_test))):
                    services.poll(f"test samples {idx[0] + 1}-{idx[-1] + 1}/{self.n_test}")
                    test_counts.append(model.sample_batch(spikes))
            self.accuracy = self._accuracy(torch.cat(test_counts).double())
            # the final state (assigned labels; `snnrun plot` reads its weights)
            services.checkpoint(self.n_train, self.state_dict())
        model.sync()
        accuracy, weighting = self.accuracy, decoder.params.weighting
        return {"backend": model.backend, "n_exc": model.size, "train_samples": self.n_train,
                "test_samples": self.n_test, "train_samples_per_s": self.n_train / self.train_time,
                "train_time_s": self.train_time, "boosts": self.boosts, "test/accuracy": accuracy[weighting],
                "test/accuracy_all": accuracy["all"], "test/accuracy_proportion": accuracy["proportion"],
                **({"threads": {phase: {"count": n, "chosen_by": why} for phase, (n, why) in self.threads.items()}}
                   if self.threads else {}),
                "message": f"test accuracy {accuracy['all']:.3f} (all) / {accuracy['proportion']:.3f} (proportion); "
                           f"training {self.n_train / self.train_time:.1f} samples/s ({model.backend})"}

    def _train(self, services: RunServices, order: list[int]) -> None:
        """The learning pass from sample ``self.samples`` on: a metrics row and a checkpoint every
        ``log_every`` samples and at its end."""
        p, model, encoder = self.p, self.model, self.exp.encoder
        start, before = time.perf_counter(), self.train_time
        samples = _chunks(encoder, self.x_train, order, start=self.samples, every=p.log_every)
        for n, (idx, spikes) in enumerate(samples, self.samples + 1):
            services.poll(f"training sample {n}/{self.n_train}")
            counts, k = _present(model, encoder, self.x_train[idx], spikes, True, p)
            self.samples, self.boosts, self.exc_spikes = n, self.boosts + k, self.exc_spikes + int(counts.sum())
            if p.assign == "online":
                self.decoder.observe(counts.reshape(1, 1, -1).double(), self.y_train[idx:idx + 1])
            if n % p.log_every == 0 or n == self.n_train:
                self.train_time = before + time.perf_counter() - start
                services.log({"samples": n, "train_samples_per_s": n / self.train_time,
                              "exc_spikes_per_sample": self.exc_spikes / n, "boosts": self.boosts,
                              "wall_time": self.train_time})
                log.info("diehl_cook: %d/%d samples, %.1f samples/s", n, self.n_train, n / self.train_time)
                services.checkpoint(n, self.state_dict())

    def _accuracy(self, test_counts: torch.Tensor) -> dict[str, float]:
        """Test accuracy of both class votes."""
        decoder = self.decoder
        y_test = self.exp.data.y_test[:self.n_test]
        accuracy = {}
        weighting = decoder.params.weighting
        for mode in ("all", "proportion"):
            decoder.params.weighting = mode
            pred = decoder.predict(decoder(test_counts.unsqueeze(0)))
            accuracy[mode] = float((pred == y_test).double().mean())
        decoder.params.weighting = weighting
        return accuracy


def run_diehl_cook(exp, p: DiehlCookParams, run_dir: Path | None = None, resume=False, config_yaml: str = "") -> dict:
    """Train, assign labels and test (see module docstring) with the run services
    (:class:`snnrun.services.RunServices`: metrics to ``exp.logger.sinks``, checkpoints, signals,
    ``summary.json``; ``run_dir`` None: nothing written); returns the summary. ``resume`` continues
    the run in ``run_dir`` from its last checkpoint."""
    protocol = _Protocol(exp, p)
    services = RunServices(run_dir, "diehl_cook", exp.seed, COLUMNS, "samples", sinks=exp.logger.sinks,
                           config=exp.config, config_yaml=config_yaml, plots=exp.config.get("plots"))
    return services.run(protocol, resume)


SECTIONS = {"diehl_cook": DiehlCookParams}


def _build(cfg: DictConfig, dry_run: bool = False):
    """(experiment, protocol params) of the protocol, its topology and readout checked."""
    from ..build import build_experiment

    exp = build_experiment(cfg, dry_run=dry_run)
    p = exp.spec.sections["diehl_cook"]
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
    """Build the experiment from the config tree and run the D&C protocol (module docstring);
    ``resume`` continues from the run directory's last checkpoint."""
    exp, p = _build(cfg)
    return run_diehl_cook(exp, p, run_dir, resume, written_config(cfg))
