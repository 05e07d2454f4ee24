r"""Grid-step rules of the discrete-time libraries, on top of a core step.

snntorch, sinabs and rnnbuilder build rules into their neurons that belong to
their grid, not to the continuous model: several spikes in one step, a reset
applied one step late, a floor on the membrane. :class:`PeerStep` adds them to a
core :class:`~neurosim.step.Step`, generically in the model; the core step knows
nothing of them. Its public name is ``neurosim.conventions.PeerStep``: the peer
neurons of :mod:`neurosim.conventions` are built with it. It is defined in this
module, below :mod:`neurosim.nn`, because the layers there accept the same options
(``LIFLayer(..., multi_spike=True)``, as snntorch and sinabs users expect) and
build it too.

The options, each generic in the model:

* ``multi_spike=True``: a neuron still above threshold right after its reset is
  reset again in the same step, as long as a reset lowers its threshold distance,
  and the spike output counts the resets (sinabs' ``MultiSpike``: with a
  subtractive reset,
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
  reset is carried in the state as ``pending``. Needs ``t_ref == 0`` and cannot
  be combined with ``multi_spike``.
* ``v_min``: a lower bound on the membrane, applied after the reset at the end
  of every step (sinabs' ``min_v_mem``).

All three are rules of a grid: for a spiking model they need spikes on the grid,
i.e. a fixed-step method (``"euler"``, ``"exponential_euler"``, ``"rk4"``) or
``"exact"`` with ``precise=False``. The adaptive integrator (which always locates
spikes inside the step) and precise exact integration are refused with a
``ValueError``. A :class:`PeerStep` runs on the reference loop of
:func:`neurosim.loop.run_steps` (the compiled engine and the training kernels run
core steps only).
"""

from __future__ import annotations

from typing import Any

import torch

from ._checks import as_param, check_choice, describe
from .events import select_reset
from .integrators import ExactExponential, Integrator
from .models.base import NeuronModel
from .state import State
from .step import SpikeEvents, Step
from .surrogate import Surrogate, spike_fn

#: when the reset of a spike is applied (see the module docstring)
RESET_DELAYS = ("none", "start", "end", "shift")

#: why a :class:`PeerStep` runs on the reference loop (the back ends' refusal)
REFERENCE_ONLY = ("the peer-emulation options multi_spike, reset_delay and v_min (PeerStep) "
                  "run on the reference loop")


def _off_grid(options: list[str], integrator: Integrator) -> str:
    """The refusal of grid-only ``options`` under an integrator that locates spikes in a step."""
    names = " and ".join(options)
    if isinstance(integrator, ExactExponential):
        where = "method='exact' with precise=True locates spikes inside the step"
    else:
        where = (f"method={integrator.name or type(integrator).__name__!r} ({integrator!r}) "
                 f"always locates spikes inside the step")
    return (f"{names} need{'s' if len(options) == 1 else ''} spikes on the grid, but {where}: "
            f"use method='exact' with precise=False or a fixed-step method ('euler', "
            f"'exponential_euler', 'rk4')")


class PeerStep:
    """A core step with the grid-step rules of a peer library (see the module docstring).

    It has the core step's interface: ``spikes, state = peer(state, input)``,
    :meth:`with_events`, :meth:`initial_state`, and ``model``, ``dt``, ``integrator``,
    ``surrogate``, ``detach_reset`` read from the core step.

    Args:
        step: the core step, from :func:`~neurosim.discretise`; for a spiking model
            with spikes on the grid (a fixed-step method, or ``"exact"`` with
            ``precise=False``).
        multi_spike: reset again in the same step while above threshold, counting
            the spikes.
        reset_delay: ``"none"`` (default), ``"start"``, ``"end"`` or ``"shift"``: apply
            each reset one step late.
        v_min: lower bound of the membrane at the end of each step (``None``: none).

    Raises:
        ValueError: an option under an integrator that locates spikes inside the
            step (``"adaptive"``, precise ``"exact"``; the message names both), an
            unknown ``reset_delay``, a non-finite ``v_min``, a delayed reset with
            ``t_ref > 0``, with ``multi_spike`` or on a non-spiking model.

    Example:
        >>> step = discretise(LIF(reset="subtract"), 1e-3, "euler")
        >>> peer = PeerStep(step, multi_spike=True, v_min=-1.0)
        >>> spikes, state = peer(peer.initial_state((3,)), torch.full((3,), 2.5))
    """

    def __init__(self, step: Step, *, multi_spike: bool = False, reset_delay: str = "none",
                 v_min: float | None = None) -> None:
        if not isinstance(step, Step):
            raise ValueError(f"step must be a core neurosim Step (from discretise), got {step!r}")
        self.step = step
        self.multi_spike = bool(multi_spike)
        check_choice("reset_delay", reset_delay, RESET_DELAYS)
        self.reset_delay = reset_delay
        self.v_min = None if v_min is None else float(as_param("v_min", v_min))
        model = step.model
        if model.spiking and step.precise and self.active:
            given = [f"{k}={v!r}" for k, v in self.active.items()]
            raise ValueError(_off_grid(given, step.integrator))
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

    # -- the core step's interface ---------------------------------------------------------
    @property
    def model(self) -> NeuronModel:
        """The neuron model (of the core step)."""
        return self.step.model

    @property
    def dt(self) -> float:
        """The step in seconds (of the core step)."""
        return self.step.dt

    @property
    def integrator(self) -> Integrator:
        """The integrator (of the core step)."""
        return self.step.integrator

    @property
    def surrogate(self) -> Surrogate:
        """The surrogate gradient of the spike (of the core step)."""
        return self.step.surrogate

    @property
    def detach_reset(self) -> bool:
        """Whether the reset is cut from the graph (of the core step)."""
        return self.step.detach_reset

    @property
    def options(self) -> dict[str, Any]:
        """The options: ``{"multi_spike": ..., "reset_delay": ..., "v_min": ...}``."""
        return {"multi_spike": self.multi_spike, "reset_delay": self.reset_delay,
                "v_min": self.v_min}

    @property
    def active(self) -> dict[str, Any]:
        """The options that differ from their defaults (``False``, ``"none"``, ``None``)."""
        return {k: v for k, v in self.options.items() if v != _DEFAULTS[k]}

    def __repr__(self) -> str:
        return "".join([f"PeerStep({self.step!r}"]
                       + [f", {k}={v!r}" for k, v in self.active.items()] + [")"])

    def initial_state(self, shape, dtype=None, device=None) -> State:
        """The core step's resting state; with a delayed reset also ``pending`` = 0."""
        state = self.step.initial_state(shape, dtype=dtype, device=device)
        if self.reset_delay != "none":
            state["pending"] = torch.zeros_like(state[self.model.membrane])
        return state

    def __call__(self, state: State, input: torch.Tensor) -> tuple[torch.Tensor, State]:
        spikes, new_state, _ = self.with_events(state, input)
        return spikes, new_state

    def with_events(self, state: State, input: torch.Tensor
                    ) -> tuple[torch.Tensor, State, list[SpikeEvents]]:
        """As ``__call__``, also returning where inside the step each spike happened."""
        if self.reset_delay != "none":
            spikes, new_state = self._delayed(state, input)
            mask = spikes.detach() > 0
            return spikes, new_state, [SpikeEvents(mask, torch.full_like(spikes, self.dt))]
        spikes, new_state, events = self.step.with_events(state, input)
        if not (self.multi_spike and events) and self.v_min is None:
            return spikes, new_state, events
        model = self.step.prepared(input.dtype, input.device).model
        x = {k: new_state[k] for k in model.state_names}
        if self.multi_spike and events:
            crossed = events[0].mask
            for ev in events[1:]:
                crossed = crossed | ev.mask
            extra, x = self._repeat_resets(model, x, crossed)
            spikes = spikes + extra
        out = State(self._clip(model, x))
        for k, value in new_state.items():
            if k not in out:
                out[k] = value  # refrac (and anything else the core step carries)
        return spikes, out, events

    # -- the rules --------------------------------------------------------------------------
    def _clip(self, model: NeuronModel, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Apply the lower bound ``v_min`` to the membrane (identity without one)."""
        if self.v_min is None:
            return x
        m = model.membrane
        return {**x, m: torch.clamp(x[m], min=self.v_min)}

    def _repeat_resets(self, model: NeuronModel, x: dict[str, torch.Tensor],
                       crossed: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``multi_spike``: the elements that spiked (``crossed``), after their first reset,
        are reset again while their threshold distance is > 0 and a reset lowers it
        (without a reset that lowers it, e.g. ``reset="none"``, one spike: not a loop).

        Returns the extra spikes (surrogate gradient through the distance of each) and
        the state after the last reset.
        """
        extra = torch.zeros_like(x[model.membrane])
        active = crossed
        for _ in range(self.step.max_rounds):
            d = model.threshold_distance(x)
            jump = model.on_spike(x)
            d_now = d.detach()
            more = active & (d_now > 0) & (model.threshold_distance(jump).detach() < d_now)
            if not bool(more.any()):
                return extra, x
            z = spike_fn(d, self.surrogate) * more.to(d.dtype)
            extra = extra + z
            x = select_reset(more, z, x, jump, self.detach_reset)
            active = more
        raise RuntimeError(f"multi_spike: more than max_rounds={self.step.max_rounds} spikes of "
                           f"one neuron within one step of dt={self.dt} s")

    def _delayed(self, state: State, input: torch.Tensor) -> tuple[torch.Tensor, State]:
        """One grid step whose reset is applied one step late (``reset_delay``).

        The flow advances the whole step without threshold detection; the pending
        spike's reset is applied before the input (``"start"``), after the
        integration (``"end"``), or as the displacement computed from the state
        that spiked (``"shift"``); then ``v_min`` and the threshold check of this
        step, whose spike becomes the new ``pending``.
        """
        u = input
        model, flow, _ = self.step.prepared(u.dtype, u.device)
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
        x = self._clip(model, x)
        d = model.threshold_distance(x)
        spikes = spike_fn(d, self.surrogate)
        if model.crossing_only:
            below = model.threshold_distance(x_spiked).detach() <= 0
            spikes = spikes * below.to(spikes.dtype)
        new_state = State(x)
        new_state["refrac"] = state["refrac"]
        new_state["pending"] = spikes
        return spikes, new_state


_DEFAULTS: dict[str, Any] = {"multi_spike": False, "reset_delay": "none", "v_min": None}

__all__ = ["REFERENCE_ONLY", "RESET_DELAYS", "PeerStep"]
