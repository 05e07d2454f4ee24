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

Options of the discrete-time libraries (grid spikes only, i.e. ``precise=False``
or a fixed-step method), each generic in the model:

* ``multi_spike=True``: a neuron still above threshold right after its reset is
  reset again in the same step, as many times as needed, and the spike output
  counts the resets (sinabs' ``MultiSpike``: with a subtractive reset,
  :math:`n = \lceil (v - \vartheta)/(\vartheta - v_\mathrm{reset}) \rceil`).
* ``reset_delay="start"``: the reset of a spike emitted at the end of step *k*
  is applied at the start of step *k* + 1, before its input and integration; the
  state seen after step *k* is the pre-reset one (snntorch ``Leaky`` with
  ``reset_mechanism="zero"``). ``reset_delay="end"``: the reset is applied at
  the end of step *k* + 1, after its integration and before its threshold check
  (snntorch's default ``reset_delay=True`` with ``"subtract"``:
  :math:`U_t = \beta U_{t-1} + X_t - S_{t-1}\vartheta`). ``reset_delay="shift"``:
  the reset's displacement :math:`r(x_k) - x_k`, computed from the state
  :math:`x_k` that spiked, is added at the end of step *k* + 1, after its
  integration (the threshold subtracted is the one that was crossed, as in the
  discrete adaptive neuron of Bellec et al. 2018:
  :math:`m_t = \beta m_{t-1} + x_t - s_t\vartheta_t`). The spike awaiting its
  reset is carried in the state as ``pending``. Needs ``t_ref == 0``.
* ``v_min``: a lower bound on the membrane, applied after the reset at the end
  of every step (sinabs' ``min_v_mem``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ._checks import as_param, check_choice, check_dt, describe
from .events import select_reset
from .integrators import Integrator, get_integrator
from .models.base import NeuronModel
from .stability import check_stability
from .state import State
from .surrogate import SurrogateLike, get_surrogate, spike_fn

#: when the reset of a spike is applied (see the module docstring)
RESET_DELAYS = ("none", "start", "end", "shift")


class SpikeEvents(NamedTuple):
    """Spikes of one round of one step: which elements, and when inside the step (s)."""

    mask: torch.Tensor
    offset: torch.Tensor


class Step:
    """``step(state, input) -> (spikes, new_state)`` for one model, integrator and dt.

    Built by :func:`discretise`. Propagators and parameter casts are prepared on
    the first call for each input dtype/device and cached; build a new step after
    changing the model's parameters (training modules do so every forward pass).
    """

    def __init__(self, model: NeuronModel, dt: float, integrator: Integrator,
                 surrogate: SurrogateLike = "superspike", detach_reset: bool = False,
                 max_rounds: int = 10_000, *, multi_spike: bool = False,
                 reset_delay: str = "none", v_min: float | None = None) -> None:
        if not isinstance(model, NeuronModel):
            raise ValueError(f"model must be a neurosim model (LIF, ALIF, ...), got {model!r}")
        self.model = model
        self.dt = check_dt(dt)
        self.integrator = integrator
        self.surrogate = get_surrogate(surrogate)
        self.detach_reset = bool(detach_reset)
        self.max_rounds = max_rounds
        self.multi_spike = bool(multi_spike)
        check_choice("reset_delay", reset_delay, RESET_DELAYS)
        self.reset_delay = reset_delay
        self.v_min = None if v_min is None else float(as_param("v_min", v_min))
        if (self.multi_spike or reset_delay != "none") and self.precise:
            raise ValueError(f"multi_spike and reset_delay={reset_delay!r} need spikes on the "
                             f"grid; {integrator!r} locates them inside the step: pass "
                             f"precise=False or a fixed-step method")
        if reset_delay != "none":
            if not model.spiking:
                raise ValueError(f"reset_delay={reset_delay!r} needs a spiking model, "
                                 f"got {type(model).__name__}")
            if self.multi_spike:
                raise ValueError("multi_spike cannot be combined with a delayed reset")
            t_ref = model.refractory_period
            if bool(torch.as_tensor(t_ref).detach().ne(0).any()):
                raise ValueError(f"reset_delay={reset_delay!r} needs t_ref == 0, got "
                                 f"t_ref={describe(t_ref)}")
        self._cache: dict = {}

    def __repr__(self) -> str:
        return (f"Step({type(self.model).__name__}, dt={self.dt}, {self.integrator!r}, "
                f"surrogate={self.surrogate!r})")

    @property
    def precise(self) -> bool:
        """Whether spike times are located inside the step."""
        return bool(getattr(self.integrator, "precise", False))

    def _prepared(self, dtype: torch.dtype, device: torch.device):
        key = (dtype, device)
        if key not in self._cache:
            model = self.model.cast(dtype, device)
            flow = self.integrator.prepare(model, self.dt, dtype, device)
            t_ref = model.refractory_period if model.spiking else 0.0
            if isinstance(t_ref, torch.Tensor):
                t_ref = t_ref.detach()
            self._cache[key] = (model, flow, t_ref)
        return self._cache[key]

    def initial_state(self, shape, dtype=None, device=None) -> State:
        """The model's resting state (see :meth:`NeuronModel.initial_state`).

        With a delayed reset it also holds ``pending`` = 0 (no reset awaiting).
        """
        state = self.model.initial_state(shape, dtype=dtype, device=device)
        if self.reset_delay != "none":
            state["pending"] = torch.zeros_like(state[self.model.membrane])
        return state

    def __call__(self, state: State, input: torch.Tensor) -> tuple[torch.Tensor, State]:
        spikes, new_state, _ = self.with_events(state, input)
        return spikes, new_state

    def _clip(self, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Apply the lower bound ``v_min`` to the membrane (identity without one)."""
        if self.v_min is None:
            return x
        m = self.model.membrane
        return {**x, m: torch.clamp(x[m], min=self.v_min)}

    def _delayed(self, state: State, input: torch.Tensor) -> tuple[torch.Tensor, State]:
        """One grid step whose reset is applied one step late (``reset_delay``)."""
        u = input
        model, flow, _ = self._prepared(u.dtype, u.device)
        x = {k: state[k] for k in model.state_names}
        x_spiked = dict(x)  # the state whose spike is pending
        pending = state["pending"]
        due = pending > 0
        if self.reset_delay == "start":
            x = select_reset(due, pending, x, model.on_spike(x), self.detach_reset)
        x = model.apply_input(x, u)
        x = flow.advance(x, u, None, clamped=False, detect=None).x
        if self.reset_delay == "end":
            x = select_reset(due, pending, x, model.on_spike(x), self.detach_reset)
        elif self.reset_delay == "shift":
            jump = model.on_spike(x_spiked)
            shifted = {k: x[k] + (jump[k] - x_spiked[k]) for k in x}
            x = select_reset(due, pending, x, shifted, self.detach_reset)
        x = self._clip(x)
        d = model.threshold_distance(x)
        spikes = spike_fn(d, self.surrogate)
        if model.crossing_only:
            below = model.threshold_distance(x_spiked).detach() <= 0
            spikes = spikes * below.to(spikes.dtype)
        new_state = State(x)
        new_state["refrac"] = state["refrac"]
        new_state["pending"] = spikes
        return spikes, new_state

    def _repeat_resets(self, model: NeuronModel, x: dict[str, torch.Tensor],
                       crossed: torch.Tensor, d_prev: torch.Tensor
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``multi_spike``: reset again while the threshold distance stays > 0 and falls.

        ``d_prev`` is the threshold distance that caused the first spike.
        """
        extra = torch.zeros_like(x[model.membrane])
        active = crossed
        d_prev = d_prev.detach()
        for _ in range(self.max_rounds):
            d = model.threshold_distance(x)
            more = active & (d.detach() > 0) & (d.detach() < d_prev)
            if not bool(more.any()):
                return extra, x
            z = spike_fn(d, self.surrogate) * more.to(d.dtype)
            extra = extra + z
            x = select_reset(more, z, x, model.on_spike(x), self.detach_reset)
            active, d_prev = more, d.detach()
        raise RuntimeError(f"multi_spike: more than max_rounds={self.max_rounds} spikes of one "
                           f"neuron within one step of dt={self.dt} s")

    def with_events(self, state: State, input: torch.Tensor
                    ) -> tuple[torch.Tensor, State, list[SpikeEvents]]:
        """As ``__call__``, also returning where inside the step each spike happened."""
        if self.reset_delay != "none":
            spikes, new_state = self._delayed(state, input)
            mask = spikes.detach() > 0
            return spikes, new_state, [SpikeEvents(mask, torch.full_like(spikes, self.dt))]
        u = input
        model, flow, t_ref = self._prepared(u.dtype, u.device)
        flow.begin_step()
        names = model.state_names
        x = {k: state[k] for k in names}
        allowed = torch.ones_like(u, dtype=torch.bool)
        if model.spiking and model.crossing_only:
            allowed = model.threshold_distance(x).detach() <= 0  # before the input jump
        x = model.apply_input(x, u)
        if not model.spiking:
            adv = flow.advance(x, u, None, clamped=False, detect=None)
            return torch.zeros_like(u), State(self._clip(adv.x)), []

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
            if self.multi_spike:
                extra, x = self._repeat_resets(model, x, crossed, adv.d)
                spikes = spikes + extra
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
        new_state = State(self._clip(x))
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
) -> Step:
    """Turn a continuous model into a step function over a grid of ``dt`` seconds.

    Args:
        model: a neuron model (``LIF(...)``, ...).
        dt: the step in seconds, > 0.
        method: ``"exact"`` (default), ``"euler"``, ``"rk4"``, ``"adaptive"`` or an integrator.
        surrogate: the surrogate gradient of the spike (name, object or callable).
        detach_reset: cut the gradient through the reset.
        rtol, atol: tolerances of ``"adaptive"``.
        precise: for ``"exact"``, locate spike times inside the step (default True).
        multi_spike: count several spikes per step, resetting until below threshold
            (grid spikes only; see the module docstring).
        reset_delay: ``"none"`` (default), ``"start"``, ``"end"`` or ``"shift"``: apply each reset
            one step late (grid spikes only; see the module docstring).
        v_min: lower bound of the membrane after each step (``None``: none).

    Returns:
        A :class:`Step`: ``spikes, state = step(state, input)`` with ``input`` and
        every state tensor of shape ``[*batch, *neurons]``.

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
    step = Step(model, dt, integrator, surrogate, detach_reset, multi_spike=multi_spike,
                reset_delay=reset_delay, v_min=v_min)
    check_stability(model, integrator, step.dt)
    return step


__all__ = ["SpikeEvents", "Step", "discretise"]
