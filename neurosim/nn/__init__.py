"""Training: torch modules for the neuron models, decoders and losses.

Cells advance one step (``LIFCell``, ``ALIFCell``, ``IFCell``, ``LICell``); layers
run a time-major sequence (``LIFLayer``, ``ALIFLayer``, ``IFLayer``, ``LILayer``).
Both reuse the model, integrator and spike function of :func:`neurosim.simulate`
through :func:`neurosim.discretise`.
"""

from .decoders import (
    accuracy,
    count_cross_entropy,
    count_mse,
    first_spike_cross_entropy,
    first_spike_time,
    last_membrane,
    max_membrane,
    max_membrane_cross_entropy,
    mean_membrane,
    spike_count,
)
from .modules import (
    LEARNABLE,
    TIME_CONSTANTS,
    ALIFCell,
    ALIFLayer,
    Cell,
    IFCell,
    IFLayer,
    Layer,
    LICell,
    LIFCell,
    LIFLayer,
    LILayer,
    NeuronModule,
)

__all__ = [
    "ALIFCell", "ALIFLayer", "Cell", "IFCell", "IFLayer", "LEARNABLE", "LICell", "LIFCell",
    "LIFLayer", "LILayer", "Layer", "NeuronModule", "TIME_CONSTANTS", "accuracy",
    "count_cross_entropy", "count_mse", "first_spike_cross_entropy", "first_spike_time",
    "last_membrane", "max_membrane", "max_membrane_cross_entropy", "mean_membrane",
    "spike_count",
]
