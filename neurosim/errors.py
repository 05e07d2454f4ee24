"""Exceptions and warnings that neurosim raises beyond plain ``ValueError``.

Bad *arguments* raise :class:`ValueError` naming the parameter and its value.
Faults found *while running* raise the classes below, which carry enough detail
to find the culprit (step, time, neuron, variable).
"""

from __future__ import annotations


class SimulationDiverged(FloatingPointError):
    """A state variable became non-finite (or left its model's plausible range) during a run.

    Attributes:
        step: index of the time step (0-based) in which it happened.
        time: end time of that step, in seconds, from the start of the run.
        neuron: flat (row-major) index of the first offending element.
        variable: name of the state variable.
        value: the offending value.
        bounds: the declared plausible range ``(low, high)`` that the value left
            (:attr:`~neurosim.models.NeuronModel.state_ranges`), or ``None`` for a
            non-finite value.
    """

    def __init__(self, message: str, *, step: int, time: float, neuron: int,
                 variable: str, value: float,
                 bounds: tuple[float, float] | None = None) -> None:
        super().__init__(message)
        self.step = step
        self.time = time
        self.neuron = neuron
        self.variable = variable
        self.value = value
        self.bounds = bounds

    @classmethod
    def at(cls, model: str, *, variable: str, neuron: int, step: int, dt: float, method: str,
           value: float, bounds: tuple[float, float] | None = None) -> SimulationDiverged:
        """The error for ``variable`` of element ``neuron`` after step ``step`` (0-based) of a
        run with step ``dt`` (s) and ``method``: non-finite (``bounds=None``) or outside the
        model's declared range ``bounds``. Every back end builds its message here."""
        time = (step + 1) * dt
        if bounds is None:
            what = "became non-finite"
        else:
            what = (f"left its declared plausible range [{bounds[0]:g}, {bounds[1]:g}] "
                    f"(value {value:.6g})")
        return cls(
            f"{model} diverged: state variable {variable!r} of element {neuron} {what} in "
            f"step {step} (t = {time:.6g} s) with method={method!r} and dt={dt:g} s; try a "
            f"smaller dt or another method ('exact', 'exponential_euler' or 'adaptive')",
            step=step, time=time, neuron=neuron, variable=variable, value=value, bounds=bounds)


class StiffnessError(RuntimeError):
    """The adaptive integrator cannot afford a step: its sub-step budget per step
    (``max_steps``) is too small for the model's stiffness or for how often it fires.

    Raised before running when the stiffness estimate alone needs more sub-steps than
    the budget (:func:`neurosim.stability.substeps_needed`), else when an element uses
    up its budget within one step. The message names the problem and suggests
    ``method="exact"``, a smaller ``dt`` or an implicit method.
    """


class StabilityWarning(UserWarning):
    """The step ``dt`` is beyond the known stability limit of the chosen integrator."""


__all__ = ["SimulationDiverged", "StabilityWarning", "StiffnessError"]
