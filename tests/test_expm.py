"""The matrix exponential behind the exact propagator."""

import mpmath
import numpy as np
import pytest
import torch

from neurosim._expm import expm


def reference(M):
    mpmath.mp.dps = 40
    R = mpmath.expm(mpmath.matrix(M.tolist()))
    return np.array(R.tolist(), dtype=float)


@pytest.mark.parametrize("scale", [1e-9, 1e-6, 1e-3, 0.05, 0.5, 3.0, 40.0])
def test_expm_relative_accuracy_entrywise(scale):
    """Every entry, including the small integral terms, to near round-off."""
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        M = torch.zeros(4, 4, dtype=torch.float64)
        M[:2, :] = torch.randn(2, 4, generator=gen, dtype=torch.float64)  # augmented form
        M[0, 0], M[1, 1] = -abs(M[0, 0]), -abs(M[1, 1])
        M *= scale
        E, R = expm(M).numpy(), reference(M)
        nz = np.abs(R) > 0
        rel = np.abs(E[nz] - R[nz]) / np.abs(R[nz])
        assert rel.max() < 1e-13


def test_expm_batched_with_mixed_norms_and_differentiable():
    M = torch.stack([torch.tensor([[-1.0, 1.0], [0.0, -2.0]]) * s for s in (1e-6, 0.1, 30.0)]
                    ).double()
    E = expm(M)
    for k in range(3):
        np.testing.assert_allclose(E[k].numpy(), reference(M[k]), rtol=1e-13)
    A = torch.tensor([[-0.3, 0.2], [0.0, -0.7]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(expm, (A,))
    torch.testing.assert_close(expm(A), torch.linalg.matrix_exp(A))
