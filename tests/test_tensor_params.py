"""Heterogeneous populations: tensor parameters, one call instead of a Python loop."""

import numpy as np
import torch

from neurosim import ALIF, LIF, simulate


def test_1000_taus_in_one_call_equal_1000_separate_calls():
    method = "exact"
    n, T, dt = 1000, 40, 1e-3
    taus = torch.linspace(5e-3, 50e-3, n, dtype=torch.float64)
    drive = torch.full((T, n), 2.5, dtype=torch.float64)
    together = simulate(LIF(tau_mem=taus, t_ref=1.5e-3), drive, dt, method=method)
    times_together = together.spike_times
    assert together.spike_time.size > n  # every neuron spikes, most several times
    for k in range(n):
        alone = simulate(LIF(tau_mem=taus[k].item(), t_ref=1.5e-3), drive[:, k:k + 1], dt,
                         method=method)
        assert torch.equal(alone.spikes[:, 0], together.spikes[:, k])
        np.testing.assert_allclose(alone.spike_times[0], times_together[k], rtol=0, atol=1e-12)
        torch.testing.assert_close(alone.v[:, 0], together.v[:, k], rtol=0, atol=1e-12)


def test_batch_and_neuron_dimensions_broadcast_with_parameters():
    """Input [T, batch, neurons] against per-neuron parameters [neurons]."""
    taus = torch.tensor([10e-3, 20e-3, 40e-3])
    drive = torch.linspace(1.2, 3.0, 4)[None, :, None].expand(200, 4, 3)
    res = simulate(ALIF(tau_mem=taus), drive, 1e-3)
    assert res.spikes.shape == (200, 4, 3)
    assert res.spike_times.shape == (4, 3)
    counts = res.spike_count()
    assert (counts[1:] >= counts[:-1]).all()  # more drive, more spikes
    assert (counts[:, 0] >= counts[:, 2]).all()  # faster membrane, more spikes


def test_input_broadcasts_up_to_parameter_shape():
    taus = torch.tensor([10e-3, 20e-3])
    res = simulate(LIF(tau_mem=taus), torch.full((100, 1), 2.0), 1e-3)
    assert res.spikes.shape == (100, 2)
    assert res.spike_count()[0] > res.spike_count()[1]
