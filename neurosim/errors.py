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
    """

    def __init__(self, message: str, *, step: int, time: float, neuron: int,
                 variable: str, value: float) -> None:
        super().__init__(message)
        self.step = step
        self.time = time
        self.neuron = neuron
        self.variable = variable
        self.value = value


class StabilityWarning(UserWarning):
    """The step ``dt`` is beyond the known stability limit of the chosen integrator."""


__all__ = ["SimulationDiverged", "StabilityWarning"]
