"""Spike functions: Heaviside forward, a smooth surrogate derivative backward.

Each surrogate is a small picklable object built from config
(``{name: atan, alpha: 2.0}``; a parameter set to null takes the surrogate's own default, so
switching ``name`` alone never carries the previous surrogate's keys over); calling it on
``x = v - v_th`` returns spikes
(0/1 in the input's dtype) whose gradient is ``derivative(x)``. ``primitive(x)``
is the smooth function whose derivative is used, so tests can check the two agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import torch

from .registry import Registry
from .schema import param

SURROGATES = Registry("surrogate")


class _SpikeFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, surrogate: "Surrogate") -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad_output * ctx.surrogate.derivative(x), None


class Surrogate:
    """Base class: ``__call__`` spikes with a surrogate gradient; subclasses give ``derivative``."""

    def __init__(self, params=None):
        self.params = params

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _SpikeFunction.apply(x, self)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params})"


@SURROGATES.register("heaviside")
class Heaviside(Surrogate):
    """No gradient: the exact step. Used when no gradient learner is attached."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x >= 0).to(x.dtype)

    def derivative(self, x):
        return torch.zeros_like(x)

    def primitive(self, x):
        return (x >= 0).to(x.dtype)


@SURROGATES.register("sigmoid")
class Sigmoid(Surrogate):
    """Sigmoid (Wu et al. 2018, STBP; spikingjelly's default): primitive σ(αx), derivative α σ(αx)(1 − σ(αx)), peak α/4."""

    @dataclass
    class Params:
        alpha: float = param(4.0, gt=0, help="slope of the sigmoid")

    def primitive(self, x):
        return torch.sigmoid(self.params.alpha * x)

    def derivative(self, x):
        s = torch.sigmoid(self.params.alpha * x)
        return self.params.alpha * s * (1 - s)


@SURROGATES.register("atan")
class ATan(Surrogate):
    """Arctangent (Fang et al. 2021): primitive arctan(π/2 αx)/π + 1/2, derivative (α/2) / (1 + (π/2 αx)²), peak α/2."""

    @dataclass
    class Params:
        alpha: float = param(2.0, gt=0, help="slope at the threshold")

    def primitive(self, x):
        return torch.atan(math.pi / 2 * self.params.alpha * x) / math.pi + 0.5

    def derivative(self, x):
        a = self.params.alpha
        return (a / 2) / (1 + (math.pi / 2 * a * x) ** 2)


@SURROGATES.register("fast_sigmoid", "superspike")
class FastSigmoid(Surrogate):
    """SuperSpike (Zenke & Ganguli 2018): derivative of the fast sigmoid x/(1 + s|x|), i.e. 1/(1 + s|x|)².

    Peak 1 at the threshold, as in the paper and snntorch's ``fast_sigmoid``; ``slope`` is the
    paper's β (in 1/mV when x is in mV)."""

    @dataclass
    class Params:
        slope: float = param(25.0, gt=0, help="steepness s")

    def primitive(self, x):
        return x / (1 + self.params.slope * x.abs())

    def derivative(self, x):
        return 1.0 / (1 + self.params.slope * x.abs()) ** 2


@SURROGATES.register("triangle")
class Triangle(Surrogate):
    """Triangle (Esser et al. 2016; Bellec et al. 2018 with w = v_th): derivative max(0, 1 − |x|/w) / w.

    Normalised to unit area; Bellec et al. multiply by a dampening factor γ = 0.3 (scale the
    learning rate instead)."""

    @dataclass
    class Params:
        width: float = param(1.0, gt=0, help="half width w of the triangle")

    def primitive(self, x):
        w = self.params.width
        y = x / w
        inner = torch.where(y < 0, 0.5 * (1 + y) ** 2, 1 - 0.5 * (1 - y) ** 2)
        return torch.where(y <= -1, torch.zeros_like(x), torch.where(y >= 1, torch.ones_like(x), inner))

    def derivative(self, x):
        w = self.params.width
        return torch.clamp(1 - x.abs() / w, min=0) / w


@SURROGATES.register("rectangle")
class Rectangle(Surrogate):
    """Rectangular window (STCA, Gu et al. 2019; STBP's first curve): derivative 1/a for |x| < a/2, else 0."""

    @dataclass
    class Params:
        width: float = param(1.0, gt=0, help="window width a")

    def primitive(self, x):
        a = self.params.width
        return torch.clamp(x / a + 0.5, 0.0, 1.0)

    def derivative(self, x):
        a = self.params.width
        return (x.abs() < a / 2).to(x.dtype) / a


@SURROGATES.register("gaussian")
class Gaussian(Surrogate):
    """Gaussian window (Wu et al. 2018, STBP's fourth curve): derivative N(x; 0, σ²), unit area."""

    @dataclass
    class Params:
        sigma: float = param(0.5, gt=0, help="standard deviation σ")

    def primitive(self, x):
        return 0.5 * (1 + torch.erf(x / (self.params.sigma * math.sqrt(2))))

    def derivative(self, x):
        s = self.params.sigma
        return torch.exp(-0.5 * (x / s) ** 2) / (s * math.sqrt(2 * math.pi))


@SURROGATES.register("erfc")
class Erfc(Surrogate):
    """Gaussian error function (spikingjelly ``Erf``): primitive erfc(−αx)/2, derivative (α/√π) exp(−α²x²)."""

    @dataclass
    class Params:
        alpha: float = param(2.0, gt=0, help="steepness α")

    def primitive(self, x):
        return 0.5 * torch.erfc(-self.params.alpha * x)

    def derivative(self, x):
        a = self.params.alpha
        return a / math.sqrt(math.pi) * torch.exp(-(a * x) ** 2)


def surrogate_node(name: str) -> dict:
    """A learner's default surrogate node: ``{name: NAME}`` and every registered surrogate's
    parameters set to null (each then takes the chosen surrogate's own default), so switching
    ``name`` carries no value over and any surrogate's parameter is set without ``+``."""
    import dataclasses

    SURROGATES.get(name)  # a known name
    keys = {f.name: None for n in SURROGATES.names(aliases=False) for f in dataclasses.fields(SURROGATES.get(n).Params)}
    return {"name": name, **keys}


def build_surrogate(node, key: str = "learner.surrogate") -> Surrogate:
    """Build a surrogate from ``{name: ..., <width>: ...}``; a null parameter takes the surrogate's
    default, a set one the chosen surrogate does not take is an error naming its valid keys."""
    if isinstance(node, Mapping):
        node = {k: v for k, v in node.items() if v is not None or k == "name"}
    return SURROGATES.build(node, key)


def threshold_span(v_th: float, v_rest: float) -> float:
    """The voltage scale a model's surrogate works in: ``v_th − v_rest`` (1 when it is not positive)."""
    span = float(v_th - v_rest)
    return span if span > 0 else 1.0


def spike(spike_fn: Surrogate, v: torch.Tensor, threshold, span: float) -> torch.Tensor:
    """``spike_fn((v − threshold) / span)``: the Heaviside forward is unchanged (the sign is), and the
    surrogate's width becomes a fixed fraction of the model's rest-to-threshold span, whatever its
    units. ``span == 1`` (the dimensionless models) divides by nothing: bit-identical gradients."""
    x = v - threshold
    return spike_fn(x if span == 1 else x / span)


def escape_probability(v: torch.Tensor, threshold, rho_0: float, delta_u: float, dt: float) -> torch.Tensor:
    r"""Probability of a spike within one step of escape noise (Gerstner & Kistler 2002, ch. 5.3):

    .. math:: \rho(t) = \rho_0 \exp\left(\frac{v(t) - \vartheta}{\Delta_u}\right), \qquad
              P(\text{spike in } [t, t + dt)) = 1 - e^{-\rho(t)\,dt}

    Units: ``v``, ``threshold`` ϑ and ``delta_u`` Δu in the model's voltage unit (mV); ``rho_0`` ρ₀
    (the escape rate at threshold) in 1/ms; ``dt`` in ms. The hazard is taken as constant over the
    step, so the probability is exact for that step; an overflowing ρ gives probability 1."""
    rho = rho_0 * torch.exp((v - threshold) / delta_u)
    return -torch.expm1(-rho * dt)


def escape_spike(spike_fn: Surrogate, v: torch.Tensor, threshold, span: float, rho_0: float, delta_u: float,
                 dt: float) -> torch.Tensor:
    """Stochastic spikes: 1 with :func:`escape_probability` (one uniform number per neuron and step,
    ``torch.rand`` on ``v``'s device and dtype from torch's default generator of that device, so a
    seeded run repeats). Where a gradient is wanted, it is the surrogate's, as for the deterministic
    :func:`spike` at the same ``v`` (a straight-through estimator: the forward value is the sample)."""
    with torch.no_grad():
        prob = escape_probability(v, threshold, rho_0, delta_u, dt)
        z = (torch.rand(v.shape, device=v.device, dtype=v.dtype) < prob).to(v.dtype)
    if torch.is_grad_enabled() and v.requires_grad:
        s = spike(spike_fn, v, threshold, span)
        if s.requires_grad:
            z = z + (s - s.detach())
    return z
