"""``simulate()``: one model, one input, one call; the user-facing entry point.

Step ``k`` of a simulation covers ``[k·dt, (k+1)·dt]`` with ``input[k]`` held
constant (or added at its start in jump mode). Traces record the state at the end
of each step, after any reset, so ``result.t[k] = (k+1)·dt``. The time loop itself
is :func:`neurosim.loop.run_steps`; the outcome a :class:`neurosim.result.Result`.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from ._checks import check_dt
from ._validate import as_input, check_state, element_shape, record_names
from .integrators import Integrator
from .loop import run_steps
from .models.base import NeuronModel
from .result import Result
from .state import State
from .step import Step, discretise
from .surrogate import SurrogateLike


def simulate(
    model: NeuronModel,
    input: torch.Tensor,
    dt: float,
    method: str | Integrator = "exact",
    *,
    record: Iterable[str] | str | None = ("v",),
    surrogate: SurrogateLike = "superspike",
    state: State | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    precise: bool | None = None,
    detach_reset: bool = False,
    progress: bool = False,
    backend: str = "auto",
) -> Result:
    """Simulate ``model`` driven by ``input`` on a grid of ``dt`` seconds.

    Args:
        model: the neuron model; tensor parameters give heterogeneous populations.
        input: ``[T, *neurons]`` or ``[T, *batch, *neurons]``; a current (held over
            each step) or jumps, per the model's ``input_mode``. Its dtype
            (float32/float64) and device are used throughout. Its non-time shape is
            broadcast against the parameter shape.
        dt: step in seconds, > 0.
        method: ``"exact"`` (default), ``"euler"``, ``"rk4"``, ``"adaptive"`` or an integrator.
        record: state variables to record (``"all"``, a name, names, or ``None``).
        surrogate: surrogate gradient of the spike function.
        state: initial state (default: the model at rest).
        rtol, atol: tolerances for ``"adaptive"`` (defaults 1e-6, 1e-9).
        precise: for ``"exact"``, locate spikes inside steps (default True).
        detach_reset: cut the gradient through the reset.
        progress: show a progress bar over time steps.
        backend: ``"auto"`` (default): the compiled engine (:mod:`neurosim.engine`,
            every model and method, CPU) when no gradient is needed, its generated
            training kernels (:mod:`neurosim.engine._train`) when one is and they
            apply, else the reference step loop; ``"engine"``, ``"fused"`` or
            ``"reference"`` force one (``ValueError`` saying why it cannot run).
            All give the same Result (same spikes, traces to round-off).

    Returns:
        A :class:`Result`. Gradients flow from its tensors to ``input`` and to
        tensor parameters that require grad.

    Example:
        >>> res = simulate(LIF(tau_mem=20e-3), torch.full((1000, 1), 1.5), dt=1e-4)
        >>> res.spike_times[0][:2]   # seconds
    """
    dt = check_dt(dt)
    if not isinstance(model, NeuronModel):
        raise ValueError(f"model must be a neurosim model (LIF, ALIF, ...), got {model!r}")
    u = as_input(input, check_finite=False)  # checked by run_steps or while streaming
    shape = element_shape(u, model)
    if shape != u.shape[1:]:
        u = u.expand(u.shape[0], *shape)
    names = record_names(record, model)
    step: Step = discretise(model, dt, method, surrogate, detach_reset=detach_reset,
                            rtol=rtol, atol=atol, precise=precise)
    if state is None:
        state = model.initial_state(shape, dtype=u.dtype, device=u.device)
    else:
        check_state(state, model, shape)
    out = run_steps(step, u, state, names, events=True, dense=False, progress=progress,
                    backend=backend, check_finite=True)
    return Result(
        spikes=out.spikes,
        traces=out.traces,
        events=out.events,
        final_state=out.final_state,
        model=model,
        dt=dt,
        method=step.integrator.name,
        n_steps=u.shape[0],
        shape=shape,
        dtype=u.dtype,
    )


__all__ = ["simulate"]
