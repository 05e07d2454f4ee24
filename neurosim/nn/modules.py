r"""Trainable torch modules around the neuron models: one cell per step, one layer per sequence.

For each spiking model of the core (:class:`~neurosim.LIF`, :class:`~neurosim.ALIF`,
:class:`~neurosim.IF`) and the leaky integrator :class:`~neurosim.LI` there is

* a *cell* (``LIFCell``, ...): ``out, state = cell(input, state)`` advances one
  step of ``dt`` seconds on input ``[*batch, *neurons]``;
* a *layer* (``LIF``, ...): ``out, state = layer(input, state)`` runs a time-major
  sequence ``[T, *batch, *neurons]`` and returns ``[T, *batch, *neurons]``.

Both build, in every forward pass, the model dataclass from the module's current
parameter values and turn it into a :class:`~neurosim.step.Step` with
:func:`~neurosim.discretise` — the same integrator, spike function and reset as
:func:`~neurosim.simulate`, so gradients reach the parameters through the exact
propagator (or whichever integrator is chosen). Spiking modules output spikes;
LI modules output the membrane potential *v* (the readout).

Parameters are trained when named in ``learn``; they are then :class:`torch.nn.Parameter`
of shape ``size`` (one per neuron) or scalar (shared, ``per_neuron=False``).
Time constants are log-parametrised, :math:`\tau = e^{\theta}`, so they stay > 0
whatever the optimiser does; the attribute ``log_tau_mem`` holds θ and
``tau_mem`` reads τ in seconds. Fixed parameters given as tensors (e.g. one value
per neuron) are buffers, so ``.to()`` and ``state_dict()`` carry them; fixed
parameters given as numbers stay Python floats (configuration, exact in any dtype:
the propagator is computed from them in float64).

Optional dense recurrence (``recurrent=True``): the input of step *t* is
:math:`x_t + W z_{t-1}` with the module's spikes :math:`z_{t-1}` of the previous
step (kept in the state as ``z``); ``autapses=False`` (default) masks the
diagonal of *W*, so no neuron feeds itself.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from .._checks import check_choice, describe
from ..integrators import METHODS, ExactExponential, get_integrator
from ..loop import run_steps
from ..models import ALIF, IF, LI, LIF, NeuronModel
from ..peer_step import PeerStep
from ..stability import check_stability
from ..state import State
from ..step import Step
from ..surrogate import SurrogateLike, get_surrogate

#: time constants: learned through their logarithm, so they stay positive
TIME_CONSTANTS = ("tau_mem", "tau_syn", "tau_adapt")
#: parameters that can be trained
LEARNABLE = ("tau_mem", "tau_syn", "tau_adapt", "v_leak", "v_th", "v_reset", "r", "beta_adapt")


def _as_size(size: int | Sequence[int] | None) -> tuple[int, ...] | None:
    if size is None:
        return None
    if isinstance(size, int):
        size = (size,)
    size = tuple(int(n) for n in size)
    if not size or any(n <= 0 for n in size):
        raise ValueError(f"size must be a positive int or a tuple of positive ints, got {size!r}")
    return size


class NeuronModule(nn.Module):
    """Shared machinery of the cells and layers (not used directly).

    Args:
        size: the neuron shape (``int`` or tuple), needed for per-neuron learned
            parameters and for recurrence; ``None``: elementwise, any shape.
        dt: the step in seconds, > 0.
        method: integrator, ``"exact"`` (default), ``"euler"``, ``"rk4"`` or an
            :class:`~neurosim.integrators.Integrator`.
        surrogate: surrogate gradient of the spike (name, object or callable).
        detach_reset: cut the gradient through the reset.
        learn: names of the parameters to train (subset of :data:`LEARNABLE`).
        per_neuron: learned parameters get one value per neuron (needs ``size``);
            ``True``/``False`` for all, or the names that are per neuron.
        recurrent: add a dense recurrent weight matrix (needs ``size``).
        autapses: keep the diagonal of the recurrent matrix (self-connections).
        precise: locate spike times inside the step (with a method name: ``"exact"``
            only; an integrator object keeps its own setting). Default ``False``:
            spikes on the grid, the usual choice for training.
        multi_spike, reset_delay, v_min: the grid-step rules of the peer libraries
            (sinabs' ``MultiSpike`` and ``min_v_mem``, snntorch's ``reset_delay``); with
            any of them the layer's step is a :class:`~neurosim.conventions.PeerStep`
            around the core step (spikes on the grid; the reference loop runs it).
        backend: for layers, ``"auto"`` (default: the compiled engine — its generated
            training kernels when a gradient is needed, :mod:`neurosim.engine._train` —
            where it supports the configuration: no recurrence, Euler or exact
            integration with spikes on the grid, CPU; else the reference loop),
            ``"reference"``, ``"engine"`` or ``"fused"`` (the same kernels, raising where
            they cannot run); see :func:`neurosim.loop.run_steps`. Cells always take one
            reference step.
        **params: the model's parameters (``tau_mem`` in s, ``v_th``, ``reset``, ...),
            floats or tensors; defaults are the model's.
    """

    model_cls: ClassVar[type[NeuronModel]] = LIF

    def __init__(
        self,
        size: int | Sequence[int] | None = None,
        *,
        dt: float = 1e-3,
        method: Any = "exact",
        surrogate: SurrogateLike = "superspike",
        detach_reset: bool = False,
        learn: Iterable[str] = (),
        per_neuron: bool | Iterable[str] = True,
        recurrent: bool = False,
        autapses: bool = False,
        precise: bool = False,
        multi_spike: bool = False,
        reset_delay: str = "none",
        v_min: float | None = None,
        backend: str = "auto",
        **params: Any,
    ) -> None:
        super().__init__()
        check_choice("backend", backend, ("auto", "reference", "engine", "fused"))
        self.backend = backend
        self.size = _as_size(size)
        fields = {f.name for f in dataclasses.fields(self.model_cls)}
        unknown = sorted(set(params) - fields)
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown parameter(s) {unknown}; "
                             f"{self.model_cls.__name__} has {sorted(fields)}")
        proto = self.model_cls(**params)  # validates every value
        self.dt = float(dt)
        if isinstance(method, str):
            exact = METHODS.get(method.lower()) is ExactExponential
            # precise=False is the default here (grid spikes), and only meaningful for "exact"
            self.integrator = get_integrator(
                method, precise=bool(precise) if exact else (True if precise else None))
        else:
            self.integrator = get_integrator(method)
        self.surrogate = get_surrogate(surrogate)
        self.detach_reset = bool(detach_reset)
        self.peer_options: dict[str, Any] = {"multi_spike": bool(multi_spike),
                                             "reset_delay": reset_delay, "v_min": v_min}
        # checked now (method, t_ref, values), not at the first forward pass; and the
        # integrator's stability limit for the initial parameters (StabilityWarning)
        self._wrap(Step(proto, self.dt, self.integrator, self.surrogate, self.detach_reset))
        check_stability(proto, self.integrator, self.dt)
        learn = tuple(learn) if not isinstance(learn, str) else (learn,)
        for name in learn:
            if name not in LEARNABLE or name not in fields:
                raise ValueError(f"learn: {name!r} is not a learnable parameter of "
                                 f"{self.model_cls.__name__}; choose from "
                                 f"{[n for n in LEARNABLE if n in fields]}")
        if isinstance(per_neuron, bool):
            per_neuron = learn if per_neuron else ()
        per_neuron = tuple(per_neuron)
        stray = sorted(set(per_neuron) - set(learn))
        if stray:
            raise ValueError(f"per_neuron names parameters that are not learned: {stray}; "
                             f"learn={learn}")
        if per_neuron and self.size is None:
            raise ValueError(f"per-neuron learned parameters {per_neuron} need size= (the "
                             "neuron shape); pass size or per_neuron=False")
        self.learn = learn
        self._options: dict[str, Any] = {}
        self._numeric: list[str] = []
        for name, value in proto.params().items():
            if name in proto._option_fields:
                self._options[name] = value
                continue
            if value is None:
                if name in learn:
                    raise ValueError(f"learn: {name!r} is None; give it a value to train it")
                self._options[name] = None
                continue
            self._numeric.append(name)
            if name not in learn and not isinstance(value, torch.Tensor):
                self._options[name] = value  # a float: exact in any dtype, like a config
                self._numeric.remove(name)
                continue
            t = torch.as_tensor(value.detach() if isinstance(value, torch.Tensor) else value,
                                dtype=torch.get_default_dtype())
            if name in learn:
                if name in per_neuron:
                    t = t.expand(self.size)
                t = t.clone()
                if name in TIME_CONSTANTS:
                    self.register_parameter("log_" + name, nn.Parameter(torch.log(t)))
                else:
                    self.register_parameter(name, nn.Parameter(t))
            else:
                self.register_buffer(name, t.clone())
        self.recurrent = bool(recurrent)
        self.autapses = bool(autapses)
        if self.recurrent:
            if self.size is None or len(self.size) != 1:
                raise ValueError(f"recurrent=True needs size= a single int (the number of "
                                 f"neurons), got size={size!r}")
            n = self.size[0]
            bound = 1.0 / math.sqrt(n)
            self.recurrent_weight = nn.Parameter(torch.empty(n, n).uniform_(-bound, bound))
            mask = torch.ones(n, n) if self.autapses else 1.0 - torch.eye(n)
            self.register_buffer("recurrent_mask", mask)

    # -- parameters --------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name in TIME_CONSTANTS:
            params = self.__dict__.get("_parameters", {})
            if "log_" + name in params:
                return torch.exp(params["log_" + name])
        options = self.__dict__.get("_options", {})
        if name in options:
            return options[name]
        return super().__getattr__(name)

    def parameter_values(self) -> dict[str, Any]:
        """The current model parameters (tensors in the module's dtype, time in seconds)."""
        out = dict(self._options)
        for name in self._numeric:
            out[name] = getattr(self, name)
        return out

    def model(self) -> NeuronModel:
        """The model dataclass built from the current parameter values (differentiable)."""
        return self.model_cls(**self.parameter_values())

    def make_step(self) -> Step | PeerStep:
        """The step of the current parameters (build one per forward): a core
        :class:`~neurosim.step.Step`, or a :class:`~neurosim.conventions.PeerStep`
        around it where ``multi_spike``, ``reset_delay`` or ``v_min`` is set."""
        return self._wrap(Step(self.model(), self.dt, self.integrator, self.surrogate,
                               self.detach_reset))

    def _wrap(self, step: Step) -> Step | PeerStep:
        """``step`` itself, or a :class:`PeerStep` around it with the layer's peer options."""
        peer = PeerStep(step, **self.peer_options)
        return peer if peer.active else step

    def recurrent_matrix(self) -> torch.Tensor | None:
        """The recurrent weights with the autapse mask applied (``None`` without recurrence)."""
        if not self.recurrent:
            return None
        return self.recurrent_weight * self.recurrent_mask

    # -- state ---------------------------------------------------------------------------
    def initial_state(self, input: torch.Tensor, step: Step | PeerStep | None = None
                      ) -> State:
        """The resting state for one time slice ``input`` of shape ``[*batch, *neurons]``."""
        step = step or self.make_step()
        state = step.initial_state(input.shape, dtype=input.dtype, device=input.device)
        if self.recurrent:
            state["z"] = torch.zeros_like(input)
        return state

    def _check_slice(self, x: torch.Tensor, what: str) -> None:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise ValueError(f"{what} must be a floating tensor, got "
                             f"{type(x).__name__} {getattr(x, 'dtype', '')}")
        if self.size is not None and tuple(x.shape[x.dim() - len(self.size):]) != self.size:
            raise ValueError(f"{what} of shape {tuple(x.shape)} does not end with the neuron "
                             f"shape size={self.size}")

    @staticmethod
    def _check_finite(x: torch.Tensor) -> None:
        if not bool(torch.isfinite(x.detach()).all()):
            raise ValueError(f"input must be finite, got {int((~torch.isfinite(x)).sum())} "
                             f"non-finite values in a tensor of shape {tuple(x.shape)}")

    def _run(self, step: Step | PeerStep, input: torch.Tensor, state: State,
             record: tuple[str, ...], backend: str
             ) -> tuple[torch.Tensor, State, dict[str, torch.Tensor]]:
        """The module's output over ``input [T, ...]`` from neurosim's one time loop."""
        membrane = step.model.membrane
        inner = record if step.model.spiking or membrane in record else record + (membrane,)
        run = run_steps(step, input, state, inner, recurrent=self.recurrent_matrix(),
                        backend=backend, check_finite=True)
        out = run.spikes if step.model.spiking else run.traces[membrane]
        return out, run.final_state, {n: run.traces[n] for n in record}

    def extra_repr(self) -> str:
        params = ", ".join(f"{k}={describe(v)}" for k, v in self.parameter_values().items()
                           if v is not None)
        return (f"size={self.size}, dt={self.dt}, {self.integrator!r}, learn={self.learn}, "
                f"recurrent={self.recurrent}, {params}")


class Cell(NeuronModule):
    """One step: ``out, state = cell(input, state=None)`` on ``[*batch, *neurons]``."""

    def forward(self, input: torch.Tensor, state: State | None = None
                ) -> tuple[torch.Tensor, State]:
        """Advance one step of ``dt`` seconds.

        Args:
            input: the input current (or jump, per ``input_mode``) of this step.
            state: the state returned by the previous call (default: at rest).
        Returns:
            ``(out, state)``: spikes (or the membrane for LI) and the new state.
        """
        self._check_slice(input, "input")
        self._check_finite(input)
        step = self.make_step()
        if state is None:
            state = self.initial_state(input, step)
        out, state, _ = self._run(step, input.unsqueeze(0), state, (), "reference")
        return out[0], state


class Layer(NeuronModule):
    """A sequence: ``out, state = layer(input, state=None)`` on ``[T, *batch, *neurons]``."""

    def forward(self, input: torch.Tensor, state: State | None = None
                ) -> tuple[torch.Tensor, State]:
        """Run the whole sequence; returns ``(out [T, *batch, *neurons], final state)``."""
        out, state, _ = self.run(input, state)
        return out, state

    def run(self, input: torch.Tensor, state: State | None = None,
            record: Iterable[str] = ()) -> tuple[torch.Tensor, State, dict[str, torch.Tensor]]:
        """Run the sequence through :func:`neurosim.loop.run_steps` (compiled where supported).

        Args:
            input: ``[T, *batch, *neurons]``, time-major.
            state: initial state (default: at rest).
            record: state variables to record at the end of every step (``"v"``, ...).
        Returns:
            ``(out, final_state, traces)`` with ``traces[name]`` of shape ``[T, *batch, *neurons]``.
        """
        if not isinstance(input, torch.Tensor) or input.dim() < 1 or input.shape[0] == 0:
            raise ValueError(f"input must be a tensor [T, *batch, *neurons] with T >= 1, got "
                             f"{getattr(input, 'shape', type(input).__name__)}")
        self._check_slice(input[0], "input[t]")
        record = (record,) if isinstance(record, str) else tuple(record)
        step = self.make_step()
        if state is None:
            state = self.initial_state(input[0], step)
        for name in record:
            if name not in state:
                raise ValueError(f"record: no state variable {name!r}; available {list(state)}")
        return self._run(step, input, state, record, self.backend)


def _doc(model: type[NeuronModel], kind: str) -> str:
    what = "spikes" if model.spiking else "the membrane potential v"
    shape = "[*batch, *neurons]" if kind == "cell" else "[T, *batch, *neurons]"
    return (f"{model.__name__} {kind}: input ``{shape}`` -> ({what} of the same shape, "
            f"state).\n\n"
            f"The dynamics are those of :class:`neurosim.{model.__name__}`; see "
            f":class:`NeuronModule` for the arguments. Model parameters are keyword "
            f"arguments (time in seconds).")


def _specialise(base: type[NeuronModule], model: type[NeuronModel], kind: str) -> type:
    """The cell or layer class of one model (``LIFCell``, ``LIFLayer``, ...)."""
    name = f"{model.__name__}{kind.capitalize()}"
    return type(name, (base,), {"__doc__": _doc(model, kind), "model_cls": model,
                                "__module__": __name__, "__qualname__": name})


LIFCell = _specialise(Cell, LIF, "cell")
ALIFCell = _specialise(Cell, ALIF, "cell")
IFCell = _specialise(Cell, IF, "cell")
LICell = _specialise(Cell, LI, "cell")
LIFLayer = _specialise(Layer, LIF, "layer")
ALIFLayer = _specialise(Layer, ALIF, "layer")
IFLayer = _specialise(Layer, IF, "layer")
LILayer = _specialise(Layer, LI, "layer")


__all__ = ["ALIFCell", "ALIFLayer", "Cell", "IFCell", "IFLayer", "LEARNABLE", "LICell", "LILayer",
           "LIFCell", "LIFLayer", "Layer", "NeuronModule", "TIME_CONSTANTS"]
