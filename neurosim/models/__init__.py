"""Neuron models: parameter dataclasses holding the physics (ODE, threshold, reset)."""

from .base import LinearSystem, NeuronModel
from .integrate_and_fire import ALIF, IF, LI, LIF

__all__ = ["ALIF", "IF", "LI", "LIF", "LinearSystem", "NeuronModel"]
