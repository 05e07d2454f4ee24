"""Integrators: how time is cut. Each turns any model into a flow over one step."""

from __future__ import annotations

from .adaptive import Adaptive
from .base import Advance, Flow, Integrator
from .exact import ExactExponential
from .explicit import RK4, Euler
from .exponential_euler import ExponentialEuler

METHODS: dict[str, type[Integrator]] = {
    "exact": ExactExponential,
    "exact_exponential": ExactExponential,
    "euler": Euler,
    "rk4": RK4,
    "exponential_euler": ExponentialEuler,
    "adaptive": Adaptive,
    "dopri5": Adaptive,
}


def get_integrator(method: str | Integrator = "exact", *, rtol: float | None = None,
                   atol: float | None = None, precise: bool | None = None) -> Integrator:
    """Resolve a method name or integrator object.

    Args:
        method: ``"exact"``, ``"euler"``, ``"exponential_euler"``, ``"rk4"``, ``"adaptive"``
            or an :class:`Integrator`.
        rtol, atol: tolerances, only for ``"adaptive"``.
        precise: for ``"exact"``, whether spike times are located inside the step.
    """
    if isinstance(method, Integrator):
        if rtol is not None or atol is not None or precise is not None:
            raise ValueError("rtol, atol and precise are only accepted with a method name; "
                             f"configure the integrator object {method!r} instead")
        return method
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)} or an Integrator, "
                         f"got {method!r}")
    cls = METHODS[method.lower()]
    if cls is Adaptive:
        if precise is False:
            raise ValueError("precise=False is not available for method='adaptive'")
        kwargs = {}
        if rtol is not None:
            kwargs["rtol"] = rtol
        if atol is not None:
            kwargs["atol"] = atol
        return Adaptive(**kwargs)
    if rtol is not None or atol is not None:
        raise ValueError(f"rtol and atol only apply to method='adaptive', not {method!r}")
    if cls is ExactExponential:
        return ExactExponential(precise=True if precise is None else precise)
    if precise:
        raise ValueError(f"precise spike times are not available for method={method!r}: "
                         "use 'exact' or 'adaptive'")
    return cls()


__all__ = ["RK4", "Adaptive", "Advance", "Euler", "ExactExponential", "ExponentialEuler", "Flow",
           "Integrator", "METHODS", "get_integrator"]
