r"""The generic neuron-model interface that every integrator uses.

A model is a frozen dataclass of parameters (SI units, time in seconds) that
describes a hybrid dynamical system:

* continuous variables :attr:`NeuronModel.state_names` obeying
  :math:`\dot x = f(x, u)` (:meth:`NeuronModel.derivatives`), where *u* is the
  input current held constant over a step (zero-order hold);
* optionally, for models linear between spikes, the matrices of
  :math:`\dot x = A x + c + g u` (:meth:`NeuronModel.linear_system`), from which
  an exact propagator is built;
* a threshold distance :math:`d(x)`, affine in *x*; a spike is emitted when *d*
  becomes > 0 (:meth:`NeuronModel.threshold_distance`);
* a reset jump :math:`x \mapsto r(x)` applied at each spike (:meth:`NeuronModel.on_spike`);
* a refractory period ``t_ref`` (seconds) during which the variables in
  :attr:`NeuronModel.clamped` are held constant;
* an input mode: ``"current"`` (``u`` enters :math:`f`) or ``"jump"`` (``u`` is
  added to the variable :attr:`NeuronModel.input_target` at the start of each step,
  by :meth:`NeuronModel.apply_input`, which a model may override, e.g. to route
  signed conductance jumps to two variables);
* optionally, the *conditionally linear* variables (:attr:`NeuronModel.conditionally_linear`):
  those whose derivative is affine in the variable itself when the others are held,
  :math:`\dot x_i = A_i(x_{\neq i}, u)\,x_i + B_i(x_{\neq i}, u)`, and their rates
  :math:`A_i` (:meth:`NeuronModel.linear_rates`). The exponential Euler integrator
  uses them; by default every variable of a model with a :meth:`~NeuronModel.linear_system`
  is conditionally linear, and :math:`A_i` is obtained generically from two
  evaluations of :meth:`~NeuronModel.derivatives`,
  :math:`A_i = f_i(x_i + 1) - f_i(x_i)` with the others held (exact for an affine
  dependence, up to round-off); a model may override it with a closed form.

A model file holds physics only: no time loop, no integrator, no plotting.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from .._checks import Param, as_param, broadcast_shapes, check_choice
from ..state import State
from ..units import check_plausible

Vars = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class LinearSystem:
    r"""Coefficients of :math:`\dot x = A x + c + g\,u` for a model linear between spikes.

    ``A[i][j]``, ``c[i]`` and ``g[i]`` are floats or tensors broadcastable to the
    neuron shape; variable order is :attr:`names`. Units: 1/s for ``A``, state
    units per second for ``c``, state units per (input unit · s) for ``g``.
    """

    names: tuple[str, ...]
    A: tuple[tuple[Param, ...], ...]
    c: tuple[Param, ...]
    g: tuple[Param, ...]


#: dataclass field names per model class (``dataclasses.fields`` is slow for a hot path)
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


class NeuronModel:
    """Base class of all neuron models. Subclasses are frozen dataclasses."""

    #: whether the model emits spikes (``LI`` does not)
    spiking: ClassVar[bool] = True
    #: the membrane-potential variable (plotted, compared with the threshold)
    membrane: ClassVar[str] = "v"
    #: variables held constant while the neuron is refractory
    clamped: ClassVar[tuple[str, ...]] = ("v",)
    #: unit of the membrane variable, for plot labels
    voltage_unit: ClassVar[str] = "dimensionless"
    #: units of the state variables other than the membrane, for plot labels
    state_units: ClassVar[Mapping[str, str]] = {}
    #: unit of the input, for docs and plot labels
    input_unit: ClassVar[str] = "dimensionless"
    #: unit of each numeric field (parsed by :mod:`neurosim.units`): a string such as
    #: ``"20 ms"`` passed for a field is converted to this unit; ``"1"`` is dimensionless
    param_units: ClassVar[Mapping[str, str]] = {}
    #: plausible ``(low, high)`` of fields, in their ``param_units``: a plain number outside
    #: warns (:class:`~neurosim.units.UnitWarning`), since it is probably a unit mistake
    param_ranges: ClassVar[Mapping[str, tuple[float, float]]] = {}
    #: dataclass fields that hold options (strings), not numeric parameters
    _option_fields: ClassVar[tuple[str, ...]] = ("input_mode", "reset")
    #: spike rule. False ("level"): a spike whenever the threshold distance is > 0 at a
    #: check, as in discrete-time SNN libraries. True ("crossing"): only upward
    #: crossings count, so a neuron that starts a step above threshold does not spike
    #: in it (Brian2's ``refractory='v > v_th'``); for models without a reset (HH).
    crossing_only: ClassVar[bool] = False
    #: plausible ``(low, high)`` of state variables, in the model's units (``voltage_unit``,
    #: ``state_units``): a run in which a variable leaves its range raises
    #: :class:`~neurosim.errors.SimulationDiverged`, as a non-finite value does. Wide trip
    #: wires for blow-ups, never reached by a healthy run; variables not named are only
    #: checked for finiteness (see ``docs/custom-model.md``)
    state_ranges: ClassVar[Mapping[str, tuple[float, float]]] = {}

    # -- parameter handling --------------------------------------------------------------
    def _init_params(self, optional: tuple[str, ...] = ()) -> None:
        """Convert every numeric field to a float or tensor, rejecting non-finite values.

        Strings with units (``"20 ms"``) are converted to the field's ``param_units``;
        plain numbers outside ``param_ranges`` warn (see :mod:`neurosim.units`).
        """
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in self._option_fields:
                continue
            unit = self.param_units.get(f.name)
            param = as_param(f.name, value, optional=f.name in optional, unit=unit)
            if param is not None and not isinstance(value, str) and f.name in self.param_ranges:
                check_plausible(type(self).__name__, f.name, param, unit or "",
                                self.param_ranges[f.name])
            object.__setattr__(self, f.name, param)

    def params(self) -> dict[str, Any]:
        """The parameters as a dict (floats, tensors, strings, None)."""
        names = _FIELD_NAMES.get(type(self))
        if names is None:
            names = _FIELD_NAMES[type(self)] = tuple(f.name for f in dataclasses.fields(self))
        return {name: getattr(self, name) for name in names}

    def param_shape(self) -> torch.Size:
        """Broadcast shape of all tensor parameters (``torch.Size([])`` when all are floats)."""
        shapes = [v.shape for v in self.params().values() if isinstance(v, torch.Tensor)]
        try:
            return broadcast_shapes(*shapes) if shapes else torch.Size([])
        except RuntimeError:
            detail = {k: tuple(v.shape) for k, v in self.params().items()
                      if isinstance(v, torch.Tensor)}
            raise ValueError(f"tensor parameters of {type(self).__name__} do not broadcast "
                             f"together: {detail}") from None

    def cast(self, dtype: torch.dtype, device: torch.device | str | None = None) -> NeuronModel:
        """A copy whose tensor parameters have the given dtype and device (floats stay floats)."""
        changes = {}
        for k, v in self.params().items():
            if isinstance(v, torch.Tensor) and (v.dtype != dtype or
                                                (device is not None and v.device != device)):
                changes[k] = v.to(dtype=dtype, device=device)
        if not changes:
            return self
        new = object.__new__(type(self))
        for k, v in self.params().items():
            object.__setattr__(new, k, changes.get(k, v))
        return new

    def replace(self, **changes: Any) -> NeuronModel:
        """A validated copy with some parameters changed."""
        return dataclasses.replace(self, **changes)

    # -- the interface integrators use --------------------------------------------------
    @property
    def state_names(self) -> tuple[str, ...]:
        """Names of the continuous state variables, in integration order."""
        raise NotImplementedError

    @property
    def input_target(self) -> str | None:
        """In ``"jump"`` input mode, the variable the input is added to; else ``None``."""
        return None

    @property
    def refractory_period(self) -> Param:
        """The refractory period in seconds (0 for none)."""
        return getattr(self, "t_ref", 0.0)

    def derivatives(self, x: Vars, u: torch.Tensor) -> dict[str, torch.Tensor]:
        """Time derivatives (per second) of the continuous variables for input current ``u``."""
        raise NotImplementedError

    def linear_system(self) -> LinearSystem | None:
        """Coefficients of the linear dynamics between spikes, or ``None`` if nonlinear."""
        return None

    @property
    def conditionally_linear(self) -> tuple[str, ...]:
        r"""The variables :math:`x_i` with :math:`\dot x_i = A_i x_i + B_i`, where
        :math:`A_i` and :math:`B_i` may depend on the other variables and the input
        but not on :math:`x_i`. Default: all variables if the model is linear
        between spikes, else none. Override to declare them for a nonlinear model
        (e.g. the gating variables of Hodgkin-Huxley).
        """
        return self.state_names if self.linear_system() is not None else ()

    def linear_rates(self, x: Vars, u: torch.Tensor,
                     f: Vars | None = None) -> dict[str, torch.Tensor]:
        r"""The rates :math:`A_i` (1/s) of the conditionally linear variables at ``x``.

        Generic default: :math:`A_i = f_i(x_i + 1, x_{\neq i}) - f_i(x)`, one extra
        evaluation of :meth:`derivatives` per variable; exact for an affine
        dependence up to round-off of order ``eps·|f|``. Models override it with
        closed forms where these are cheaper or more accurate. ``f``, if given, is
        :meth:`derivatives` at ``x`` (saves one evaluation).
        """
        if f is None:
            f = self.derivatives(x, u)
        out = {}
        for name in self.conditionally_linear:
            shifted = dict(x)
            shifted[name] = x[name] + 1.0
            out[name] = self.derivatives(shifted, u)[name] - f[name]
        return out

    def apply_input(self, x: Vars, u: torch.Tensor) -> dict[str, torch.Tensor]:
        """The state after the input jump at the start of a step.

        Default: in ``"jump"`` mode, ``u`` is added to :attr:`input_target`; in
        ``"current"`` mode the state is unchanged (``u`` enters :meth:`derivatives`).
        """
        target = self.input_target
        out = dict(x)
        if target is not None:
            out[target] = x[target] + u
        return out

    def threshold_distance(self, x: Vars) -> torch.Tensor:
        """Affine function of the state; a spike is emitted when it becomes > 0."""
        raise NotImplementedError(f"{type(self).__name__} does not spike")

    def threshold(self, x: Vars) -> torch.Tensor | Param:
        """The (effective) firing threshold, in membrane units, for plots."""
        raise NotImplementedError(f"{type(self).__name__} does not spike")

    def on_spike(self, x: Vars) -> dict[str, torch.Tensor]:
        """The state right after a spike emitted from state ``x`` (the reset jump)."""
        raise NotImplementedError(f"{type(self).__name__} does not spike")

    def rest(self) -> dict[str, Param]:
        """Resting values of the continuous variables (the default initial state)."""
        return {name: 0.0 for name in self.state_names}

    def declared_ranges(self) -> dict[str, tuple[float, float]]:
        """:attr:`state_ranges` of the variables this instance has, as ``(low, high)`` floats.

        Raises ``ValueError`` for a range that is not ``low < high`` (NaN refused; infinite
        ends are allowed and mean no bound on that side).
        """
        out = {}
        for name, bounds in self.state_ranges.items():
            if name not in self.state_names:
                continue  # e.g. the synaptic current of a LIF without tau_syn
            lo, hi = (float(b) for b in bounds)
            if not lo < hi:
                raise ValueError(f"state_ranges of {type(self).__name__}: {name!r} needs "
                                 f"low < high, got ({lo!r}, {hi!r})")
            out[name] = (lo, hi)
        return out

    def stiff_states(self) -> dict[str, Mapping[str, Param]]:
        """States (by a label for messages) where the stiffness of a nonlinear model is judged.

        :mod:`neurosim.stability` takes the Jacobian of :meth:`derivatives` there (zero
        input) to find the stability limit of explicit integrators. Default: the resting
        state only (the subthreshold dynamics). A model whose stiffest regime is elsewhere
        (Hodgkin-Huxley during a spike) adds states. Unused for models with a
        :meth:`linear_system`, whose matrix gives the eigenvalues exactly.
        """
        return {"rest": self.rest()}

    def initial_state(
        self,
        shape: tuple[int, ...] | torch.Size | int = (),
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> State:
        """The resting state, broadcast to ``shape`` = ``[*batch, *neurons]``.

        Spiking models also get ``refrac`` = 0 (not refractory).
        """
        if isinstance(shape, int):
            shape = (shape,)
        shape = torch.Size(shape)
        dtype = dtype or torch.get_default_dtype()
        try:
            full = broadcast_shapes(shape, self.param_shape())
        except RuntimeError:
            raise ValueError(f"shape {tuple(shape)} does not broadcast with the parameter shape "
                             f"{tuple(self.param_shape())} of {type(self).__name__}") from None
        if full != shape:
            raise ValueError(f"shape {tuple(shape)} is smaller than the parameter shape "
                             f"{tuple(self.param_shape())} of {type(self).__name__}")
        out = State()
        for name, value in self.rest().items():
            if not isinstance(value, torch.Tensor):
                out[name] = torch.full(shape, float(value), dtype=dtype, device=device)
                continue
            t = torch.as_tensor(value.detach(), dtype=dtype, device=device)
            out[name] = t.expand(shape).clone()
        if self.spiking:
            out["refrac"] = torch.zeros(shape, dtype=dtype, device=device)
        return out


def resolve_input_mode(model: NeuronModel, input_mode: str | None, default: str) -> str:
    """Validate an ``input_mode`` field (``None`` picks the model's default)."""
    mode = default if input_mode is None else input_mode
    check_choice("input_mode", mode, ("current", "jump"))
    return mode


def subset_model(model: NeuronModel, mask: torch.Tensor) -> NeuronModel:
    """The model restricted to the elements selected by the boolean ``mask``.

    Tensor parameters are broadcast to ``mask.shape`` and indexed, giving 1-D
    parameters that match ``x[mask]``; float parameters are kept.
    """
    new = object.__new__(type(model))
    for k, v in model.params().items():
        if isinstance(v, torch.Tensor) and v.dim() > 0:
            v = v.expand(mask.shape)[mask]
        object.__setattr__(new, k, v)
    return new
