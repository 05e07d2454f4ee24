r"""The one step function: integration, threshold, reset and refractoriness.

:func:`discretise` turns a model and an integrator into
``step(state, input) -> (spikes, new_state)``. Every simulation, training
module and sweep in neurosim goes through it. One step covers
:math:`[t, t + dt]` with the input held constant (or, in jump mode, added at
:math:`t`) and proceeds in *rounds*; in each round every element still holding
time:

1. if refractory, advances with its clamped variables held, for
   :math:`\min(t_\mathrm{ref}\ \mathrm{left}, \mathrm{time\ left})`;
2. advances freely for the rest of the step, stopping at a threshold crossing
   where the integrator can locate one (exact, adaptive), else at the end;
3. where it crossed: emits a spike :math:`z = H(d)` (surrogate gradient
   through *d*), applies the model's reset jump, starts ``t_ref`` and, in
   precise mode, goes on with the time left in the step.

The spike output is the number of spikes of each element in the step (0 or 1
unless spike times are precise and the neuron fires faster than 1/dt). The
tie ``d == 0`` is not a spike. A neuron still above threshold right after its
reset (``reset="none"``, or a subtractive reset under a strong jump), or whose
reset does not lower its threshold distance (no reset at all), emits no
further spike in that step. Models with ``crossing_only = True`` (no reset, e.g.
Hodgkin-Huxley) spike only on upward crossings: not in a step they start above
threshold (measured before the input jump), and so at most once per step.

The grid-step rules of the discrete-time libraries (several spikes per step,
a reset applied one step late, a floor on the membrane) are not part of this
step: :class:`neurosim.conventions.PeerStep` adds them on top of it.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, NamedTuple

import torch

from ._checks import check_dt
from .events import select_reset
from .integrators import Flow, Integrator, get_integrator
from .models.base import NeuronModel
from .stability import check_stability
from .state import State
from .surrogate import SurrogateLike, get_surrogate, spike_fn

if TYPE_CHECKING:
    from .peer_step import PeerStep


class SpikeEvents(NamedTuple):
    """Spikes of one round of one step: which elements, and when inside the step (s)."""

    mask: torch.Tensor
    offset: torch.Tensor


class Prepared(NamedTuple):
    """A step's model cast to one dtype/device, its integrator's flow, and ``t_ref`` (s)."""

    model: NeuronModel
    flow: Flow
    t_ref: Any


class Step:
    """``step(state, input) -> (spikes, new_state)`` for one model, integrator and dt.

    Built by :func:`discretise`. Propagators and parameter casts are prepared on
    the first call for each input dtype/device and cached; build a new step after
    changing the model's parameters (training modules do so every forward pass).
    """

    def __init__(self, model: NeuronModel, dt: float, integrator: Integrator,
                 surrogate: SurrogateLike = "superspike", detach_reset: bool = False,
                 max_rounds: int = 10_000) -> None:
        if not isinstance(model, NeuronModel):
            raise ValueError(f"model must be a neurosim model (LIF, ALIF, ...), got {model!r}")
        self.model = model
        self.dt = check_dt(dt)
        self.integrator = integrator
        self.surrogate = get_surrogate(surrogate)
        self.detach_reset = bool(detach_reset)
        self.max_rounds = max_rounds
        self._cache: dict = {}

    def __repr__(self) -> str:
        return (f"Step({type(self.model).__name__}, dt={self.dt}, {self.integrator!r}, "
                f"surrogate={self.surrogate!r})")

    @property
    def precise(self) -> bool:
        """Whether spike times are located inside the step (exact with precise=True, adaptive)."""
        return bool(self.integrator.precise)

    def prepared(self, dtype: torch.dtype, device: torch.device) -> Prepared:
        """The model cast to ``dtype``/``device``, its flow and ``t_ref``, cached per pair."""
        key = (dtype, device)
        if key not in self._cache:
            model = self.model.cast(dtype, device)
            flow = self.integrator.prepare(model, self.dt, dtype, device)
            t_ref = model.refractory_period if model.spiking else 0.0
            if isinstance(t_ref, torch.Tensor):
                t_ref = t_ref.detach()
            self._cache[key] = Prepared(model, flow, t_ref)
        return self._cache[key]

    def initial_state(self, shape, dtype=None, device=None) -> State:
        """The model's resting state (see :meth:`NeuronModel.initial_state`)."""
        return self.model.initial_state(shape, dtype=dtype, device=device)

    def __call__(self, state: State, input: torch.Tensor) -> tuple[torch.Tensor, State]:
        spikes, new_state, _ = self.with_events(state, input)
        return spikes, new_state

    def with_events(self, state: State, input: torch.Tensor
                    ) -> tuple[torch.Tensor, State, list[SpikeEvents]]:
        """As ``__call__``, also returning where inside the step each spike happened."""
        u = input
        model, flow, t_ref = self.prepared(u.dtype, u.device)
        flow.begin_step()
        names = model.state_names
        x = {k: state[k] for k in names}
        allowed = torch.ones_like(u, dtype=torch.bool)
        if model.spiking and model.crossing_only:
            allowed = model.threshold_distance(x).detach() <= 0  # before the input jump
        x = model.apply_input(x, u)
        if not model.spiking:
            adv = flow.advance(x, u, None, clamped=False, detect=None)
            return torch.zeros_like(u), State(adv.x), []

        refrac = state["refrac"]
        dt = self.dt
        tau_left = None  # None: the whole step, for every element
        elapsed = torch.zeros_like(u)
        spikes = torch.zeros_like(u)
        events: list[SpikeEvents] = []
        for _ in range(self.max_rounds):
            # 1. refractory segment
            if bool((refrac > 0).any()):
                left = torch.full_like(u, dt) if tau_left is None else tau_left
                h_r = torch.minimum(refrac, left)
                adv = flow.advance(x, u, h_r, clamped=True, detect=None)
                x = adv.x
                refrac = torch.clamp(refrac - h_r, min=0.0)
                tau_left = left - h_r
                elapsed = elapsed + h_r
            # 2. free segment with threshold detection
            if tau_left is not None and not bool((tau_left > 0).any()):
                break
            adv = flow.advance(x, u, tau_left, clamped=False, detect=allowed)
            crossed = adv.crossed
            z = spike_fn(adv.d, self.surrogate)
            z = z * (allowed & ((tau_left > 0) if tau_left is not None else True)).to(z.dtype)
            spikes = spikes + z
            if not bool(crossed.any()):
                x = adv.x
                if z.requires_grad and not self.detach_reset:
                    # the reset's surrogate path exists for every element, spiking or not,
                    # so one element's gradient never depends on the others of the batch
                    x = select_reset(crossed, z, adv.x, model.on_spike(adv.x), False)
                break
            # 3. reset, refractoriness, and the time left
            x = select_reset(crossed, z, adv.x, model.on_spike(adv.x), self.detach_reset)
            events.append(SpikeEvents(crossed, elapsed + adv.s))
            refrac = torch.where(crossed, torch.as_tensor(t_ref, dtype=u.dtype,
                                                          device=u.device), refrac)
            if not flow.precise:
                break
            left = torch.full_like(u, dt) if tau_left is None else tau_left
            elapsed = elapsed + adv.s
            tau_left = torch.where(crossed, left - adv.s, torch.zeros_like(left))
            # no further spike in this step where the neuron is still above threshold
            # after its reset, or where the reset did not lower the threshold distance
            # (no reset: the state sits on the threshold at the located crossing)
            d_after = model.threshold_distance(x).detach()
            d_cross = model.threshold_distance(adv.x).detach()
            still_above = crossed & ((d_after > 0) | (d_after >= d_cross))
            allowed = allowed & ~still_above
            if not bool((tau_left > 0).any()):
                break
        else:
            raise RuntimeError(f"more than max_rounds={self.max_rounds} spikes of one neuron "
                               f"within one step of dt={dt} s")
        new_state = State(x)
        new_state["refrac"] = refrac
        return spikes, new_state, events


def discretise(
    model: NeuronModel,
    dt: float,
    method: str | Integrator = "exact",
    surrogate: SurrogateLike = "superspike",
    *,
    detach_reset: bool = False,
    rtol: float | None = None,
    atol: float | None = None,
    precise: bool | None = None,
    multi_spike: bool = False,
    reset_delay: str = "none",
    v_min: float | None = None,
) -> Step | PeerStep:
    """Turn a continuous model into a step function over a grid of ``dt`` seconds.

    Args:
        model: a neuron model (``LIF(...)``, ...).
        dt: the step in seconds, > 0.
        method: ``"exact"`` (default), ``"euler"``, ``"rk4"``, ``"adaptive"`` or an integrator.
        surrogate: the surrogate gradient of the spike (name, object or callable).
        detach_reset: cut the gradient through the reset.
        rtol, atol: tolerances of ``"adaptive"``.
        precise: for ``"exact"``, locate spike times inside the step (default True).
        multi_spike, reset_delay, v_min: deprecated; the grid-step rules of the peer
            libraries are :class:`neurosim.conventions.PeerStep`'s options. Given a value
            other than the default (``False``, ``"none"``, ``None``), ``discretise`` warns
            (``DeprecationWarning``) and returns ``PeerStep(step, multi_spike=...,
            reset_delay=..., v_min=...)``.

    Returns:
        A :class:`Step`: ``spikes, state = step(state, input)`` with ``input`` and
        every state tensor of shape ``[*batch, *neurons]`` (a ``PeerStep`` around it
        on the deprecated path).

    Warns:
        StabilityWarning: ``dt`` is beyond the stability limit of the method on this model
            (explicit methods; :mod:`neurosim.stability`), once per call. Silence it with
            ``warnings.filterwarnings("ignore", category=neurosim.errors.StabilityWarning)``.

    Example:
        >>> step = discretise(LIF(tau_mem=10e-3), dt=1e-4)
        >>> state = step.initial_state((3,))
        >>> spikes, state = step(state, torch.full((3,), 1.5))
    """
    integrator = get_integrator(method, rtol=rtol, atol=atol, precise=precise)
    step = Step(model, dt, integrator, surrogate, detach_reset)
    check_stability(model, integrator, step.dt)
    if not multi_spike and reset_delay == "none" and v_min is None:
        return step
    # the deprecated path (remove with the arguments); the wrapper's module is above this one
    from .peer_step import PeerStep

    peer = PeerStep(step, multi_spike=multi_spike, reset_delay=reset_delay, v_min=v_min)
    given = ", ".join(f"{k}={v!r}" for k, v in peer.active.items())
    warnings.warn(f"discretise(..., {given}) is deprecated: the grid-step rules of the peer "
                  f"libraries left the core step; use neurosim.conventions.PeerStep("
                  f"discretise(model, dt, method, ...), {given})",
                  DeprecationWarning, stacklevel=2)
    return peer


__all__ = ["Prepared", "SpikeEvents", "Step", "discretise"]
