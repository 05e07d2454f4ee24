"""neurosim: a continuous-time spiking-neuron simulator on PyTorch.

A model is written once as an ODE with threshold and reset; an integrator
(exact, Euler, RK4, adaptive) turns it into a step function; the same step
simulates (traces, precise spike times) and trains (surrogate gradients).

>>> import torch, neurosim
>>> res = neurosim.simulate(neurosim.LIF(tau_mem=20e-3), torch.full((2000, 1), 1.5), dt=1e-4)
>>> res.spike_times[0]
"""

import importlib
from typing import Any

from . import surrogate
from .integrators import (
    RK4,
    Adaptive,
    Euler,
    ExactExponential,
    ExponentialEuler,
    Integrator,
    get_integrator,
)
from .models import (
    ALIF,
    EIF,
    IF,
    LI,
    LIF,
    QIF,
    AdEx,
    CobaLIF,
    Cooldown,
    Discontinuous,
    HodgkinHuxley,
    Izhikevich,
    LinearSystem,
    NeuronModel,
    NoReset,
)
from .network import (
    Network,
    PoissonInput,
    Population,
    Projection,
    RateMonitor,
    SpikeMonitor,
    SpikeTimesInput,
    StateMonitor,
)
from .result import Result
from .simulation import simulate
from .state import State
from .step import Step, discretise
from .surrogate import spike_fn

__version__ = "0.1.0"

#: submodules and names loaded on first use, so ``import neurosim`` stays light (no
#: matplotlib, xarray or the nn/sweep machinery until they are touched)
_LAZY_MODULES = ("analysis", "conventions", "engine", "fused", "inputs", "io", "nir", "nn",
                 "plot", "sweep", "units", "loop", "result", "errors")
_LAZY_NAMES = {"Sweep": ("sweep", "Sweep"), "run_sweep": ("sweep", "run_sweep"),
               "load": ("io", "load_result"), "save": ("io", "save_result")}


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY_NAMES:
        module, attr = _LAZY_NAMES[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'neurosim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_MODULES) | set(_LAZY_NAMES))

__all__ = [
    "ALIF", "IF", "LI", "LIF", "RK4", "Adaptive", "Euler", "ExactExponential", "Integrator",
    "LinearSystem", "NeuronModel", "Result", "State", "Step", "discretise", "get_integrator",
    "inputs", "plot", "simulate", "spike_fn", "surrogate", "Sweep", "run_sweep", "sweep", "nn",
    "conventions", "fused", "analysis",
    # issue 3: biophysical and rnnbuilder-family models, exponential Euler
    "EIF", "QIF", "AdEx", "CobaLIF", "Cooldown", "Discontinuous", "ExponentialEuler",
    "HodgkinHuxley", "Izhikevich", "NoReset",
    # issue 17: results in and out (neurosim.io)
    "load", "save",
    # issue 15: networks
    "Network", "PoissonInput", "Population", "Projection", "RateMonitor", "SpikeMonitor",
    "SpikeTimesInput", "StateMonitor",
]
