r"""The neurons of snntorch, norse, sinabs, spikingjelly and rnnbuilder as neurosim configurations.

Each of these libraries bakes one discretisation of the same ODEs into its
neurons. Every function here takes the peer's own parameters and returns a
:class:`PeerNeuron`: a :class:`torch.nn.Module` that maps an input ``[T, B, N]``
(time-major, the peer's input per step) to ``(spikes, v)``, both ``[T, B, N]``,
with the membrane trace in the peer's convention (pre- or post-reset, its
scaling). It reproduces the peer's forward pass — the same spikes, the membrane
to float32 round-off — but runs on neurosim's models and integrators
(:class:`~neurosim.nn.Layer` → :func:`~neurosim.discretise`): nothing here
re-implements dynamics, it only maps parameters.

The mapping, with :math:`\beta = e^{-dt/\tau}`:

============================  ====================================================
peer                           neurosim configuration
============================  ====================================================
snntorch ``Leaky``             LIF, exact, current input, ``r = 1/(1-β)``, grid spikes,
                               ``reset_delay="end"`` (subtract) / ``"start"`` (zero)
snntorch ``Synaptic``          LIF + synapse, exact, jump input, ``r = 1/E_{vi}``,
                               ``reset_delay="end"``
norse ``LIF`` / ``LI``         LIF / LI + synapse, forward Euler, jump input
sinabs ``LIF``                 LIF (+ synapse), exact, ``r = 1 - β`` scaling absorbed,
                               subtract reset, ``multi_spike``, ``v_min``
spikingjelly ``LIFNode``       LIF, forward Euler with dt = one step, current input
rnnbuilder LIF / Adaptive      LIF / ALIF, exact, ``r = 1/(1-β)``; Adaptive with
                               ``reset_delay="shift"`` and the spike read one step late
============================  ====================================================

The grid-step rules in the table (``multi_spike``, ``reset_delay``, ``v_min``) are
not part of neurosim's core :class:`~neurosim.step.Step`: :class:`PeerStep` adds
them on top of one (its equations are in :mod:`neurosim.peer_step`, where it is
defined so that the layers of :mod:`neurosim.nn` can build it from the same
arguments). They need spikes on the grid: a fixed-step method, or ``"exact"``
with ``precise=False``; the adaptive integrator and precise exact are refused::

    from neurosim import LIF, discretise
    from neurosim.conventions import PeerStep

    step = PeerStep(discretise(LIF(reset="subtract"), 1e-3, "exact", precise=False),
                    multi_spike=True, v_min=-0.5)   # sinabs' MultiSpike with min_v_mem

Peers that count time in steps (snntorch, sinabs, spikingjelly, rnnbuilder)
get ``tau = steps · dt``; ``dt`` (seconds, default 1 ms) only names the grid and
does not change the result. Tie rule: neurosim spikes when ``v > θ``; sinabs'
``SingleSpike``/``MultiSpike`` and spikingjelly spike at ``v >= θ`` too, so an
input that lands *exactly* on the threshold differs (a measure-zero event for
real-valued inputs).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .models import LI
from .nn.modules import ALIFLayer, IFLayer, Layer, LIFLayer, LILayer
from .peer_step import PeerStep
from .state import State
from .step import discretise
from .surrogate import Sigmoid, SuperSpike


class PeerNeuron(nn.Module):
    """A peer library's neuron run by neurosim: ``spikes, v = module(input [T, B, N])``.

    Attributes:
        layer: the neurosim :class:`~neurosim.nn.Layer` doing the work (its
            ``model()`` shows the continuous-time parameters, in seconds).
        peer: which library and neuron it reproduces.
    """

    def __init__(self, layer: Layer, peer: str, input_scale: float = 1.0,
                 spikes_one_step_late: bool = False) -> None:
        super().__init__()
        self.layer = layer
        self.peer = peer
        self.input_scale = float(input_scale)
        self.spikes_one_step_late = bool(spikes_one_step_late)

    def forward(self, input: torch.Tensor, state: State | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the sequence ``[T, B, N]``; returns ``(spikes, v)``, each ``[T, B, N]``.

        For non-spiking neurons (norse ``LI``) the spikes are zeros.
        """
        x = input if self.input_scale == 1.0 else input * self.input_scale
        out, _, traces = self.layer.run(x, state, record=("v",))
        v = traces["v"]
        spikes = out if self.layer.model_cls.spiking else torch.zeros_like(v)
        if self.spikes_one_step_late:
            spikes = torch.cat([torch.zeros_like(spikes[:1]), spikes[:-1]])
        return spikes, v

    def extra_repr(self) -> str:
        return f"peer={self.peer!r}"


# -- parameter helpers ------------------------------------------------------------------
def _decay(name: str, value: float, allow_one: bool = False) -> float:
    """Validate a per-step decay factor 0 < value < 1 (or <= 1)."""
    value = float(value)
    ok = 0.0 < value <= 1.0 if allow_one else 0.0 < value < 1.0
    if not (math.isfinite(value) and ok):
        bound = "<= 1" if allow_one else "< 1"
        raise ValueError(f"{name} must satisfy 0 < {name} {bound}, got {value!r}")
    return value


def _tau_of_decay(decay: float, dt: float) -> float:
    """The time constant (s) with ``exp(-dt/tau) = decay``."""
    return -dt / math.log(decay)


def _steps(name: str, value: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a number of steps > 0, got {value!r}")
    return value


def _positive(name: str, value: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def _synaptic_coupling(tau_mem: float, tau_syn: float, dt: float) -> float:
    """The exact propagator entry ``E[v, i]`` (with r = 1): v after one step from i = 1.

    Read off neurosim's own exact integrator in float64, so that the case
    ``tau_mem == tau_syn`` is handled as the core handles it.
    """
    step = discretise(LI(tau_mem=tau_mem, tau_syn=tau_syn, input_mode="jump"), dt, "exact")
    state = step.initial_state((), dtype=torch.float64)
    state["i"] = torch.ones((), dtype=torch.float64)
    _, new = step(state, torch.zeros((), dtype=torch.float64))
    return float(new["v"])


def _check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


# -- snntorch ---------------------------------------------------------------------------
_SNN_RESET = {"subtract": "subtract", "zero": "value", "none": "none"}


def snntorch_leaky(beta: float, threshold: float = 1.0, reset_mechanism: str = "subtract",
                   reset_delay: bool = True, dt: float = 1e-3) -> PeerNeuron:
    r"""snntorch ``Leaky``: :math:`U_t = \beta U_{t-1} + X_t - R_t\vartheta`.

    By default (``reset_delay=True``) the reset :math:`R_t = H(U_{t-1} - \vartheta)` is
    decided from the previous membrane and applied after the next decay, and the
    returned membrane is pre-reset; ``"zero"`` gives
    :math:`U_t = \beta(1 - R_t)U_{t-1} + X_t`. With ``reset_delay=False`` the reset
    is immediate. This is the exact solution of
    :math:`\tau\dot v = -v + r I` with :math:`\tau = -dt/\ln\beta` and
    :math:`r = 1/(1-\beta)`, so the per-step input :math:`X_t` is the current.
    ``beta = 1`` is the perfect integrator (IF).

    Args:
        beta: membrane decay per step, 0 < beta <= 1.
        threshold: :math:`\vartheta` > 0.
        reset_mechanism: ``"subtract"``, ``"zero"`` or ``"none"``.
        reset_delay: snntorch's one-step-late reset (its default, True).
        dt: the step in seconds (names the grid only).
    """
    beta = _decay("beta", beta, allow_one=True)
    threshold = _positive("threshold", threshold)
    _check_choice("reset_mechanism", reset_mechanism, tuple(_SNN_RESET))
    reset = _SNN_RESET[reset_mechanism]
    delay = "none"
    if reset_delay and reset != "none":
        delay = "end" if reset == "subtract" else "start"
    common = dict(dt=dt, v_th=threshold, v_reset=0.0, reset=reset, input_mode="current",
                  surrogate="atan", detach_reset=True, reset_delay=delay)
    if beta == 1.0:
        layer: Layer = IFLayer(tau_mem=dt, method="exact", **common)
    else:
        layer = LIFLayer(tau_mem=_tau_of_decay(beta, dt), r=1.0 / (1.0 - beta),
                         method="exact", **common)
    return PeerNeuron(layer, f"snntorch.Leaky(beta={beta}, reset_mechanism={reset_mechanism!r}, "
                             f"reset_delay={bool(reset_delay)})")


def snntorch_synaptic(alpha: float, beta: float, threshold: float = 1.0,
                      reset_mechanism: str = "subtract", reset_delay: bool = True,
                      dt: float = 1e-3) -> PeerNeuron:
    r"""snntorch ``Synaptic``: two decays in sequence.

    .. math:: I_t = \alpha I_{t-1} + X_t,\qquad U_t = \beta U_{t-1} + I_t - R_t\vartheta

    The sequential update (the new current enters the membrane, with no
    :math:`1-\beta` factor) is the exact solution of a current-based LIF with an
    exponential synapse whose input jumps into *i* at the start of each step,
    with :math:`\tau_\mathrm{syn} = -dt/\ln\alpha`, :math:`\tau_\mathrm{mem} = -dt/\ln\beta`
    and the resistance *r* chosen so that the propagator's synapse-to-membrane
    entry is 1; neurosim's *i* is then :math:`\alpha I`. Resets as :func:`snntorch_leaky`
    (both mechanisms act after the next decay when delayed).

    Args:
        alpha, beta: synaptic and membrane decays per step, each in (0, 1).
        threshold, reset_mechanism, reset_delay, dt: as :func:`snntorch_leaky`.
    """
    alpha = _decay("alpha", alpha)
    beta = _decay("beta", beta)
    threshold = _positive("threshold", threshold)
    _check_choice("reset_mechanism", reset_mechanism, tuple(_SNN_RESET))
    reset = _SNN_RESET[reset_mechanism]
    delay = "end" if reset_delay and reset != "none" else "none"
    tau_mem, tau_syn = _tau_of_decay(beta, dt), _tau_of_decay(alpha, dt)
    r = 1.0 / _synaptic_coupling(tau_mem, tau_syn, dt)
    layer = LIFLayer(tau_mem=tau_mem, tau_syn=tau_syn, r=r, v_th=threshold, v_reset=0.0,
                     reset=reset, input_mode="jump", dt=dt, method="exact", surrogate="atan",
                     detach_reset=True, reset_delay=delay)
    return PeerNeuron(layer, f"snntorch.Synaptic(alpha={alpha}, beta={beta}, reset_mechanism="
                             f"{reset_mechanism!r}, reset_delay={bool(reset_delay)})")


# -- norse ------------------------------------------------------------------------------
def norse_lif(tau_syn_inv: float = 200.0, tau_mem_inv: float = 100.0, v_leak: float = 0.0,
              v_th: float = 1.0, v_reset: float = 0.0, dt: float = 1e-3) -> PeerNeuron:
    r"""norse ``LIF`` / ``LIFCell``: forward Euler, input jump first.

    .. math:: i_1 = i + x,\quad v_1 = v + dt\,\tau_m^{-1}(v_\mathrm{leak} - v + i_1),\quad
              i_2 = i_1 - dt\,\tau_s^{-1} i_1,\quad z = H(v_1 - v_\mathrm{th}),\quad
              v_2 = (1-z)v_1 + z\,v_\mathrm{reset}

    i.e. neurosim's LIF with ``tau_syn``, ``input_mode="jump"``, ``method="euler"``.
    The membrane trace is post-reset, as norse records it.

    Args:
        tau_syn_inv, tau_mem_inv: inverse time constants (1/s), > 0.
        v_leak, v_th, v_reset: potentials (``v_reset < v_th``).
        dt: the step in seconds.
    """
    tau_syn = 1.0 / _positive("tau_syn_inv", tau_syn_inv)
    tau_mem = 1.0 / _positive("tau_mem_inv", tau_mem_inv)
    layer = LIFLayer(tau_mem=tau_mem, tau_syn=tau_syn, v_leak=v_leak, v_th=v_th,
                     v_reset=v_reset, reset="value", input_mode="jump", dt=dt, method="euler",
                     surrogate=SuperSpike(alpha=100.0), detach_reset=False)
    return PeerNeuron(layer, f"norse.LIF(tau_syn_inv={tau_syn_inv}, tau_mem_inv={tau_mem_inv})")


def norse_li(tau_syn_inv: float = 200.0, tau_mem_inv: float = 100.0, v_leak: float = 0.0,
             dt: float = 1e-3) -> PeerNeuron:
    r"""norse ``LI`` / ``LICell``: the leaky integrator, forward Euler, input jump first.

    .. math:: i_1 = i + x,\quad v_1 = v + dt\,\tau_m^{-1}(v_\mathrm{leak} - v + i_1),\quad
              i_2 = i_1 - dt\,\tau_s^{-1} i_1

    The module returns ``(zeros, v)``; norse's LI returns *v*.
    """
    tau_syn = 1.0 / _positive("tau_syn_inv", tau_syn_inv)
    tau_mem = 1.0 / _positive("tau_mem_inv", tau_mem_inv)
    layer = LILayer(tau_mem=tau_mem, tau_syn=tau_syn, v_leak=v_leak, input_mode="jump",
                    dt=dt, method="euler")
    return PeerNeuron(layer, f"norse.LI(tau_syn_inv={tau_syn_inv}, tau_mem_inv={tau_mem_inv})")


# -- sinabs -----------------------------------------------------------------------------
def sinabs_lif(tau_mem: float, tau_syn: float | None = None, norm_input: bool = True,
               spike_fn: str = "single", min_v_mem: float | None = None,
               spike_threshold: float = 1.0, dt: float = 1e-3) -> PeerNeuron:
    r"""sinabs ``LIF``: time constants in steps, :math:`\alpha = e^{-1/\tau}`.

    .. math:: i \leftarrow \alpha_s(i + x)\ (\text{with } \tau_\mathrm{syn}),\quad
              v \leftarrow \alpha_m v + (1-\alpha_m)\,i,\quad
              n = \text{spikes}(v),\quad v \leftarrow \max(v - n\vartheta, v_\mathrm{min})

    (without ``norm_input`` the factor :math:`1-\alpha_m` is dropped; without a
    synapse *i* is the input *x*). The exact solution of the current-based LIF,
    with the input scaling absorbed in the resistance *r*. ``spike_fn="single"``
    emits at most one spike per step, ``"multi"`` as many as thresholds were
    crossed (neurosim's ``multi_spike``); ``min_v_mem`` is ``v_min``. The
    membrane trace is post-reset, post-clip.

    Args:
        tau_mem: membrane time constant in steps, > 0.
        tau_syn: synaptic time constant in steps, or ``None``.
        norm_input: scale the input by :math:`1-\alpha_m` (sinabs' default True).
        spike_fn: ``"single"`` or ``"multi"``.
        min_v_mem: lower bound of the membrane, or ``None``.
        spike_threshold: :math:`\vartheta` > 0.
        dt: the step in seconds.
    """
    tm = _steps("tau_mem", tau_mem)
    _check_choice("spike_fn", spike_fn, ("single", "multi"))
    threshold = _positive("spike_threshold", spike_threshold)
    alpha_m = math.exp(-1.0 / tm)
    scale = (1.0 - alpha_m) if norm_input else 1.0
    common = dict(v_th=threshold, v_reset=0.0, reset="subtract", dt=dt, method="exact",
                  surrogate="exponential", multi_spike=spike_fn == "multi", v_min=min_v_mem)
    if tau_syn is None:
        layer = LIFLayer(tau_mem=tm * dt, r=scale / (1.0 - alpha_m), input_mode="current",
                         **common)
    else:
        ts = _steps("tau_syn", tau_syn)
        alpha_s = math.exp(-1.0 / ts)
        r = scale * alpha_s / _synaptic_coupling(tm * dt, ts * dt, dt)
        layer = LIFLayer(tau_mem=tm * dt, tau_syn=ts * dt, r=r, input_mode="jump", **common)
    return PeerNeuron(layer, f"sinabs.LIF(tau_mem={tau_mem}, tau_syn={tau_syn}, "
                             f"norm_input={norm_input}, spike_fn={spike_fn!r})")


# -- spikingjelly -----------------------------------------------------------------------
def spikingjelly_lif(tau: float = 2.0, decay_input: bool = True, v_reset: float | None = 0.0,
                     v_threshold: float = 1.0, dt: float = 1e-3) -> PeerNeuron:
    r"""spikingjelly ``LIFNode``: forward Euler with the step as time unit.

    .. math:: H = V + \tfrac{1}{\tau}\big(X - (V - V_\mathrm{reset})\big)
              \quad(\text{decay\_input}),\qquad
              H = V - \tfrac{1}{\tau}(V - V_\mathrm{reset}) + X \quad(\text{otherwise})

    spike at :math:`H \ge \vartheta`, then hard reset to ``v_reset`` or, with
    ``v_reset=None``, soft reset :math:`V = H - \vartheta` (the leak then pulls to 0).
    neurosim: LIF, ``method="euler"``, ``tau_mem = tau·dt``,
    ``v_leak = v_reset`` (0 for soft), current input with ``r = 1`` (decay_input)
    or ``r = tau``. The membrane trace is post-reset (spikingjelly's ``v_seq``).

    Args:
        tau: membrane time constant in steps, > 1 for a stable Euler step (> 0 allowed).
        decay_input: whether the input is divided by tau.
        v_reset: hard-reset potential, or ``None`` for the soft reset.
        v_threshold: threshold, > ``v_reset``.
        dt: the step in seconds.
    """
    tau = _steps("tau", tau)
    soft = v_reset is None
    rest = 0.0 if soft else float(v_reset)
    layer = LIFLayer(tau_mem=tau * dt, v_leak=rest, v_th=v_threshold, v_reset=rest,
                     r=1.0 if decay_input else tau, reset="subtract" if soft else "value",
                     input_mode="current", dt=dt, method="euler",
                     surrogate=Sigmoid(alpha=4.0))
    return PeerNeuron(layer, f"spikingjelly.LIFNode(tau={tau}, decay_input={decay_input}, "
                             f"v_reset={v_reset})")


# -- rnnbuilder -------------------------------------------------------------------------
def rnnbuilder_lif(tau: float, dt: float = 1e-3) -> PeerNeuron:
    r"""rnnbuilder ``LIF`` (threshold 1, tau in steps, :math:`\beta = e^{-1/\tau}`).

    .. math:: m \leftarrow \beta m + x,\qquad s = H(m - 1),\qquad m \leftarrow m - s

    neurosim: LIF, exact, ``r = 1/(1-β)``, subtractive reset, grid spikes.
    The membrane trace is post-reset.
    """
    tau = _steps("tau", tau)
    beta = math.exp(-1.0 / tau)
    layer = LIFLayer(tau_mem=tau * dt, r=1.0 / (1.0 - beta), v_th=1.0, v_reset=0.0,
                     reset="subtract", input_mode="current", dt=dt, method="exact",
                     surrogate="triangle")
    return PeerNeuron(layer, f"rnnbuilder.LIF(tau={tau})")


def rnnbuilder_adaptive(tau: float, tau_thr: float, gamma: float,
                        dt: float = 1e-3) -> PeerNeuron:
    r"""rnnbuilder ``Adaptive`` (Bellec et al. 2018 LSNN, taus in steps).

    .. math:: \vartheta_t = 1 + b_{t-1},\quad s_t = H(m_{t-1} - \vartheta_t),\quad
              m_t = \beta m_{t-1} + x_t - s_t\vartheta_t,\quad
              b_t = \rho\, b_{t-1} + \gamma s_t

    with :math:`\beta = e^{-1/\tau}`, :math:`\rho = e^{-1/\tau_\mathrm{thr}}`: the spike
    is read from the old membrane. neurosim: ALIF with ``beta_adapt = γ`` (its *b*
    is rnnbuilder's *b*/γ), exact integration, ``r = 1/(1-β)``, subtractive reset
    with ``reset_delay="shift"`` (the crossed threshold is subtracted after the
    next decay); neurosim's spike at the end of step *t* is rnnbuilder's
    :math:`s_{t+1}`, so the module reports it one step later. The membrane trace
    is :math:`m_t`.

    Args:
        tau: membrane time constant in steps, > 0.
        tau_thr: threshold-adaptation time constant in steps, > 0.
        gamma: threshold increase per spike, >= 0.
        dt: the step in seconds.
    """
    tau = _steps("tau", tau)
    tau_thr = _steps("tau_thr", tau_thr)
    gamma = float(gamma)
    if not (math.isfinite(gamma) and gamma >= 0):
        raise ValueError(f"gamma must be >= 0, got {gamma!r}")
    beta = math.exp(-1.0 / tau)
    layer = ALIFLayer(tau_mem=tau * dt, tau_adapt=tau_thr * dt, beta_adapt=gamma,
                      r=1.0 / (1.0 - beta), v_th=1.0, v_reset=0.0, reset="subtract",
                      input_mode="current", dt=dt, method="exact", surrogate="triangle",
                      reset_delay="shift")
    return PeerNeuron(layer, f"rnnbuilder.Adaptive(tau={tau}, tau_thr={tau_thr}, "
                             f"gamma={gamma})", spikes_one_step_late=True)


__all__ = ["PeerNeuron", "PeerStep", "norse_li", "norse_lif", "rnnbuilder_adaptive",
           "rnnbuilder_lif", "sinabs_lif", "snntorch_leaky", "snntorch_synaptic",
           "spikingjelly_lif"]
