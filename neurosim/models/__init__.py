"""Neuron models: parameter dataclasses holding the physics (ODE, threshold, reset)."""

from .base import LinearSystem, NeuronModel
from .conductance import CobaLIF
from .exponential import EIF, NAUD_PRESETS, AdEx
from .hodgkin_huxley import HodgkinHuxley
from .integrate_and_fire import ALIF, IF, LI, LIF
from .quadratic import IZHIKEVICH_PRESETS, QIF, Izhikevich
from .rnnbuilder import Cooldown, Discontinuous, NoReset

#: the built-in models by class name: what configuration files, sweeps, ``neurosim models``
#: and saved results may name. Explicit on purpose: nothing is found by scanning modules.
REGISTRY: dict[str, type[NeuronModel]] = {cls.__name__: cls for cls in (
    LI, LIF, IF, ALIF, EIF, AdEx, QIF, Izhikevich, HodgkinHuxley, CobaLIF, NoReset, Cooldown,
    Discontinuous)}


def register_model(cls: type[NeuronModel]) -> type[NeuronModel]:
    """Add a user model class to :data:`REGISTRY` (usable as a decorator).

    Registered models can be named in configuration files and sweeps by their class
    name; the name must not clash with another registered model.
    """
    if not (isinstance(cls, type) and issubclass(cls, NeuronModel)):
        raise ValueError(f"register_model needs a NeuronModel subclass, got {cls!r}")
    other = REGISTRY.get(cls.__name__)
    if other is not None and other is not cls:
        raise ValueError(f"a model named {cls.__name__!r} is already registered ({other!r})")
    REGISTRY[cls.__name__] = cls
    return cls


__all__ = ["REGISTRY", "register_model", "ALIF", "EIF", "IF", "IZHIKEVICH_PRESETS", "LI",
           "LIF", "NAUD_PRESETS", "QIF", "AdEx", "CobaLIF", "Cooldown", "Discontinuous",
           "HodgkinHuxley", "Izhikevich", "LinearSystem", "NeuronModel", "NoReset"]
