r"""The whole time loop of a grid-spike run in one kernel call (a thin wrapper of the engine).

:func:`run` simulates ``T`` steps of a model under forward Euler
(``method="euler"``) or exact exponential integration with spikes on the grid
(``ExactExponential(precise=False)``) in one call of the compiled engine, forward
and backward: without a gradient on the engine's simulation kernel
(:mod:`neurosim.engine`), with one on its generated training kernels
(:mod:`neurosim.engine._train`), both generated from the model's one definition. It
computes what :func:`neurosim.simulate` computes on the reference loop: the same
spikes, the same traces to round-off, and the same surrogate gradients (Heaviside
forward, the surrogate derivative backward, reset through
:math:`(z - \mathrm{sg}(z))(x_\mathrm{reset} - x)` unless ``detach_reset``) with
respect to the input, the initial state and every tensor model parameter (``t_ref``
is not differentiable, as in the core).

This module once held hand-written kernels for LI, LIF, IF and ALIF; it is kept as
the public "one call, dense raster" entry point (the kernel ceiling of
``benchmarks/run.py``). Any model the engine can trace runs here.

:func:`supports` says whether a configuration can run here; everything else
(precise spike times, adaptive or RK4 integration with gradients, exact integration
with ``t_ref > 0`` and gradients, surrogates that cannot be traced, CUDA tensors)
stays on the reference path. The kernels need the optional dependency ``numba``
(``pip install "neurosim[fast]"``); without it :func:`supports` is ``False``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import torch

from .._checks import check_dt
from ..integrators import Integrator, get_integrator
from ..models.base import NeuronModel
from ..state import State
from ..step import Step
from ..surrogate import SurrogateLike, get_surrogate

try:  # numba is optional: without it everything runs on the reference path
    import numba  # noqa: F401
    _HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only without numba
    _HAVE_NUMBA = False


class FusedOutput(NamedTuple):
    """What :func:`run` returns.

    Attributes:
        spikes: spike output ``[T, *shape]`` (0/1, input dtype or ``spike_dtype``),
            or ``None`` for a non-spiking model.
        traces: the recorded state variables by name, each ``[T, *shape]``: the
            state at the end of each step, after any reset.
        final_state: the state after the last step.
    """

    spikes: torch.Tensor | None
    traces: dict[str, torch.Tensor]
    final_state: State


def _step(model: NeuronModel, method: str | Integrator, precise: bool | None,
          surrogate: SurrogateLike, dt: float = 1e-3, detach_reset: bool = False) -> Step:
    return Step(model, dt, get_integrator(method, precise=precise), get_surrogate(surrogate),
                detach_reset)


def _any_positive(value) -> bool:
    if isinstance(value, torch.Tensor):
        return bool((value.detach() > 0).any())
    return float(value) > 0


def why_not(
    model: NeuronModel,
    method: str | Integrator = "euler",
    *,
    precise: bool | None = None,
    surrogate: SurrogateLike = "superspike",
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> str | None:
    """The reason :func:`run` cannot run this configuration, or ``None`` if it can.

    The configurations are those of the engine's training kernels
    (:func:`neurosim.engine._train.reason`), so that a run can always be differentiated.
    """
    from ..engine import _train

    if not _HAVE_NUMBA:
        return "numba is not installed (pip install 'neurosim[fast]')"
    try:
        step = _step(model, method, precise, surrogate)
    except ValueError as err:
        return str(err)
    refractory = model.spiking and _any_positive(model.refractory_period)
    return _train.reason(step, dtype or torch.get_default_dtype(),
                         torch.device("cpu") if device is None else device, refractory)


def supports(model: NeuronModel, method: str | Integrator = "euler", **options) -> bool:
    """Whether :func:`run` can simulate ``model`` with ``method`` (else use the reference path).

    ``options`` are those of :func:`why_not` (``precise``, ``surrogate``, and the
    input's ``dtype`` and ``device``, default: the default dtype on the CPU),
    which also says why not.
    """
    return why_not(model, method, **options) is None


def run(
    model: NeuronModel,
    input: torch.Tensor,
    dt: float,
    method: str | Integrator = "euler",
    *,
    record: Iterable[str] | str | None = None,
    surrogate: SurrogateLike = "superspike",
    state: State | None = None,
    precise: bool | None = None,
    detach_reset: bool = False,
    spike_dtype: torch.dtype | None = None,
) -> FusedOutput:
    """Simulate ``T = input.shape[0]`` steps of ``model`` in one kernel call.

    The same computation as :func:`neurosim.simulate` with ``method="euler"`` or
    ``ExactExponential(precise=False)``, differentiable with respect to ``input``,
    ``state`` and the model's tensor parameters.

    Args:
        model: the neuron model (any model the engine can trace).
        input: ``[T, *shape]`` float32/float64 CPU tensor: currents held over
            each step, or jumps, per ``model.input_mode``; broadcast against the
            parameter shape.
        dt: step in seconds, > 0.
        method: ``"euler"``, ``"exact"`` with ``precise=False``, or an integrator.
        record: state variables to return as traces (``None``: none).
        surrogate: the surrogate gradient (name, instance, or a traceable callable).
        state: initial state (default: the model at rest).
        precise: for ``"exact"``: must be ``False`` here.
        detach_reset: cut the surrogate gradient through the reset.
        spike_dtype: dtype of the spike output (default: the input's). ``torch.uint8``
            stores the 0/1 raster in a quarter of the memory and bandwidth; it is
            only accepted where no gradient is needed.

    Returns:
        :class:`FusedOutput` ``(spikes, traces, final_state)``.

    Raises:
        ValueError: if :func:`supports` is ``False`` for this configuration (the
            message says why), or for bad arguments.
    """
    from .. import engine
    from .._validate import as_input, check_state, element_shape, record_names
    from ..engine import _announce, _train

    dt = check_dt(dt)
    if not isinstance(model, NeuronModel):
        raise ValueError(f"model must be a neurosim model (LIF, ALIF, ...), got {model!r}")
    u = as_input(input, check_finite=False)  # the kernels check as they stream the input
    reason = why_not(model, method, precise=precise, surrogate=surrogate, dtype=u.dtype,
                     device=u.device)
    if reason is not None:
        raise ValueError(f"the fused path cannot run this: {reason}")
    step = _step(model, method, precise, surrogate, dt, detach_reset)
    shape = element_shape(u, model)
    names = record_names(record, model)
    dtype = u.dtype
    if state is None:
        state = model.initial_state(shape, dtype=dtype)
    else:
        check_state(state, model, shape)
    u = u.expand(u.shape[0], *shape)
    needs_grad = engine._needs_grad(step, u, state)
    if spike_dtype not in (None, dtype, torch.uint8):
        raise ValueError(f"spike_dtype must be None, the input dtype or torch.uint8, "
                         f"got {spike_dtype}")
    if spike_dtype == torch.uint8 and needs_grad:
        raise ValueError("spike_dtype=torch.uint8 has no gradient: use it under "
                         "torch.no_grad() or with inputs and parameters that need none")
    if needs_grad:
        if _train.why_not(step, u, state) is not None:
            raise ValueError(f"the fused path cannot run this: {_train.why_not(step, u, state)}")
        out = _train.run(step, u, state, announce=_announce)
        spikes = out.spikes if model.spiking else None
        return FusedOutput(spikes, {n: out.traces[n] for n in names}, out.final_state)
    res = engine.run(step, u, state, tuple(names), dense=spike_dtype or dtype)
    spikes = res.spikes if model.spiking else None
    return FusedOutput(spikes, res.traces, res.final_state)


__all__ = ["FusedOutput", "run", "supports", "why_not"]
