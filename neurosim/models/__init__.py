"""Neuron models: parameter dataclasses holding the physics (ODE, threshold, reset)."""

from .base import LinearSystem, NeuronModel
from .conductance import CobaLIF
from .exponential import EIF, NAUD_PRESETS, AdEx
from .hodgkin_huxley import HodgkinHuxley
from .integrate_and_fire import ALIF, IF, LI, LIF
from .quadratic import IZHIKEVICH_PRESETS, QIF, Izhikevich
from .rnnbuilder import Cooldown, Discontinuous, NoReset

__all__ = ["ALIF", "EIF", "IF", "IZHIKEVICH_PRESETS", "LI", "LIF", "NAUD_PRESETS", "QIF", "AdEx",
           "CobaLIF", "Cooldown", "Discontinuous", "HodgkinHuxley", "Izhikevich", "LinearSystem",
           "NeuronModel", "NoReset"]
