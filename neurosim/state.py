"""The neuron state container.

A :class:`State` is a dictionary of tensors with attribute access
(``state.v`` is ``state["v"]``). It is registered as a PyTorch pytree node, so
``torch.compile``, ``torch.func`` and ``tree_map`` treat it like a dict.
"""

from __future__ import annotations

import torch
from torch.utils import _pytree as pytree


class State(dict):
    """Mapping from state-variable name to a tensor of shape ``[*batch, *neurons]``.

    Continuous variables use the names of the model (``v``, ``i``, ``b``, ...).
    Spiking models also carry ``refrac``: the refractory time still to run, in
    seconds (0 when the neuron is free).
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> torch.Tensor:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"state has no variable {name!r}; it has {list(self)}") from None

    def replace(self, **values: torch.Tensor) -> State:
        """A copy with some variables replaced."""
        new = State(self)
        new.update(values)
        return new

    def detach(self) -> State:
        """A copy with every tensor detached from the autograd graph."""
        return State({k: v.detach() for k, v in self.items()})

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={tuple(v.shape)}" for k, v in self.items())
        return f"State({inner})"


def _flatten(s: State):
    keys = list(s.keys())
    return [s[k] for k in keys], keys


def _unflatten(values, keys) -> State:
    return State(zip(keys, values, strict=True))


pytree.register_pytree_node(State, _flatten, _unflatten, serialized_type_name="neurosim.State")
