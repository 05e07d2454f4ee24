r"""Exact exponential integration (Rotter & Diesmann 1999).

For a model linear between spikes, :math:`\dot x = A x + c + g u` with *u*
held constant over the step (zero-order hold), the solution after a time *h* is

.. math:: x(h) = e^{Ah} x(0) + \Big(\int_0^h e^{As}\,ds\Big)(c + g u).

Both factors are read off one matrix exponential of the augmented matrix

.. math:: M = \begin{pmatrix} A & c & g \\ 0 & 0 & 0 \\ 0 & 0 & 0 \end{pmatrix},
          \qquad e^{Mh} = \begin{pmatrix} e^{Ah} & \Psi c & \Psi g \\ 0 & 1 & 0 \\ 0 & 0 & 1
          \end{pmatrix},\quad \Psi = \int_0^h e^{As}ds,

computed by scaling and squaring with a degree-18 Taylor polynomial
(:mod:`neurosim._expm`; ``torch.linalg.matrix_exp`` loses digits for small
norms). This never divides by differences of time constants, so the
case ``tau_mem == tau_syn`` — where the textbook propagator is 0/0 — is exact,
and :math:`\Psi` is formed directly by the series, with the accuracy of
``expm1`` for small :math:`h/\tau`. The result is exact to round-off for any
dt: the method has no discretisation error at all, only the zero-order-hold
assumption on the input.

Spikes: with ``precise=True`` (default) a crossing detected at the end of a
segment is located by safeguarded Newton iteration on the exact solution, the
reset is applied at that time and integration continues inside the same step
(several spikes per step are possible). With ``precise=False`` the spike is
emitted at the end of the step (what the discrete-time peers do).

Cost per step: :math:`n^2 + 2n` multiply-adds per neuron (*n* = 1-3 state
variables), plus one small matrix exponential per spike and Newton iteration.
The propagator for dt is computed once per :func:`~neurosim.discretise`.
"""

from __future__ import annotations

import torch

from .._expm import expm
from ..events import find_crossing, take, take_model
from ..models.base import NeuronModel, subset_model
from .base import Advance, Flow, Integrator, end_of_segment, threshold_slope


def _augmented(model: NeuronModel, clamped: bool, dtype, device) -> torch.Tensor:
    """The augmented generator M, shape ``[*param_shape, n + 2, n + 2]``."""
    system = model.linear_system()
    if system is None:
        raise ValueError(
            f"ExactExponential needs a model that is linear between spikes; "
            f"{type(model).__name__} is not. Use method='adaptive', 'rk4', 'exponential_euler' "
            f"or 'euler'."
        )
    n = len(system.names)
    shape = model.param_shape()
    M = torch.zeros(*shape, n + 2, n + 2, dtype=dtype, device=device)
    frozen = set(model.clamped) if clamped else set()
    for i, name in enumerate(system.names):
        if name in frozen:
            continue
        for j in range(n):
            M[..., i, j] = system.A[i][j]
        M[..., i, n] = system.c[i]
        M[..., i, n + 1] = system.g[i]
    return M


def _apply(E: torch.Tensor, X: list[torch.Tensor], u: torch.Tensor) -> list[torch.Tensor]:
    """``x_i ← Σ_j E_ij x_j + E_i,n + E_i,n+1 u`` with broadcasting over the leading dims."""
    n = len(X)
    out = []
    for i in range(n):
        acc = E[..., i, n] + E[..., i, n + 1] * u
        for j in range(n):
            acc = acc + E[..., i, j] * X[j]
        out.append(acc)
    return out


class _ExactFlow(Flow):
    def __init__(self, model: NeuronModel, dt: float, precise: bool, dtype, device) -> None:
        super().__init__(model, dt)
        self.precise = precise
        self.names = model.state_names
        # propagators are computed in float64 whatever the state dtype, then cast
        wide = torch.float64 if dtype in (torch.float32, torch.float16, torch.bfloat16) else dtype
        self.dtype = dtype
        self.M = {c: _augmented(model, c, wide, device) for c in (False, True)}
        self.E_dt = {c: expm(M * dt).to(dtype) for c, M in self.M.items()}

    def _flow_subset(self, mask, X, u, s, clamped):
        """Exact flow over per-element times ``s`` for the elements in ``mask`` (1-D result)."""
        M = self.M[clamped]
        Ms = M.expand(*mask.shape, *M.shape[-2:])[mask]
        E = expm(Ms * s[:, None, None].to(Ms.dtype)).to(self.dtype)
        return _apply(E, [x[mask] for x in X], u[mask])

    def advance(self, x, u, h, clamped, detect) -> Advance:
        X = [x[k] for k in self.names]
        full = _apply(self.E_dt[clamped], X, u)
        if h is not None:
            is_full = h == self.dt
            part = (h > 0) & ~is_full
            full = [torch.where(is_full, f, xk) for f, xk in zip(full, X, strict=True)]
            if bool(part.any()):
                sub = self._flow_subset(part, X, u, h[part], clamped)
                full = [f.index_put((part,), sv) for f, sv in zip(full, sub, strict=True)]
        x_end = dict(zip(self.names, full, strict=True))
        result = end_of_segment(self.model, x_end, h, detect, self.dt)
        if not self.precise or detect is None or not bool(result.crossed.any()):
            return result
        return self._locate(x, u, result, clamped)

    def _locate(self, x0, u, result: Advance, clamped: bool) -> Advance:
        """Move crossed elements back to their exact crossing time."""
        mask = result.crossed
        model = subset_model(self.model, mask)
        X0 = {k: x0[k][mask] for k in self.names}
        d0 = model.threshold_distance(X0)
        h = result.s[mask]
        um = u[mask]
        M = self.M[clamped]
        Ms = M.expand(*mask.shape, *M.shape[-2:])[mask]
        X0l = [X0[k] for k in self.names]

        n = h.numel()

        def evaluate(s, idx):
            m, ui = take_model(model, idx, n), take(um, idx)
            E = expm(take(Ms, idx) * s[:, None, None].to(Ms.dtype)).to(self.dtype)
            xs = dict(zip(self.names, _apply(E, [take(x, idx) for x in X0l], ui), strict=True))
            f = m.derivatives(xs, ui)
            return xs, m.threshold_distance(xs), threshold_slope(m, xs, f)

        already = d0 > 0  # above threshold at the segment start (e.g. after an input jump)
        s, xs = find_crossing(evaluate, h, result.d[mask], torch.clamp(d0, max=0.0))
        s = torch.where(already, torch.zeros_like(s), s)
        xs = {k: torch.where(already, X0[k], xs[k]) for k in self.names}
        x_stop = {k: result.x[k].index_put((mask,), xs[k]) for k in self.names}
        s_full = result.s.index_put((mask,), s)
        return Advance(x_stop, s_full, result.crossed, result.d)


class ExactExponential(Integrator):
    """Exact propagator ``exp(A·dt)`` for models linear between spikes (see module docs).

    Args:
        precise: locate spike times inside the step and reset there (default), or
            emit spikes at the end of the step.
    """

    name = "exact"

    def __init__(self, precise: bool = True) -> None:
        self.precise = bool(precise)

    def prepare(self, model: NeuronModel, dt: float, dtype: torch.dtype,
                device: torch.device) -> Flow:
        return _ExactFlow(model, dt, self.precise, dtype, device)

    def __repr__(self) -> str:
        return f"ExactExponential(precise={self.precise})"
