"""neurosim: a continuous-time spiking-neuron simulator on PyTorch.

A model is written once as an ODE with threshold and reset; an integrator
(exact, Euler, RK4, adaptive) turns it into a step function; the same step
simulates (traces, precise spike times) and trains (surrogate gradients).

>>> import torch, neurosim
>>> res = neurosim.simulate(neurosim.LIF(tau_mem=20e-3), torch.full((2000, 1), 1.5), dt=1e-4)
>>> res.spike_times[0]
"""

from . import conventions, fused, inputs, nn, plot, surrogate, sweep
from .integrators import (
    RK4,
    Adaptive,
    Euler,
    ExactExponential,
    ExponentialEuler,
    Integrator,
    get_integrator,
)
from .io import load_result as load
from .io import save_result as save
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
from .sweep import Sweep, run_sweep

__version__ = "0.1.0"

__all__ = [
    "ALIF", "IF", "LI", "LIF", "RK4", "Adaptive", "Euler", "ExactExponential", "Integrator",
    "LinearSystem", "NeuronModel", "Result", "State", "Step", "discretise", "get_integrator",
    "inputs", "plot", "simulate", "spike_fn", "surrogate", "Sweep", "run_sweep", "sweep", "nn",
    "conventions", "fused",
    # issue 3: biophysical and rnnbuilder-family models, exponential Euler
    "EIF", "QIF", "AdEx", "CobaLIF", "Cooldown", "Discontinuous", "ExponentialEuler",
    "HodgkinHuxley", "Izhikevich", "NoReset",
    # issue 17: results in and out (neurosim.io)
    "load", "save",
    # issue 15: networks
    "Network", "PoissonInput", "Population", "Projection", "RateMonitor", "SpikeMonitor",
    "SpikeTimesInput", "StateMonitor",
]
