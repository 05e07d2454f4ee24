"""Safe resolution of the names a sweep description refers to (models, measures, inputs).

A sweep read from a TOML file or a ``sweep.json`` names its model, measures and input
function by strings. Such a string resolves, in this order:

1. in neurosim's own registry for that kind of name (an explicit dict: the model classes
   exported by :mod:`neurosim`, the built-in measures), by plain name (``"LIF"``) or by
   the ``module:qualname`` neurosim itself writes into descriptions
   (``"neurosim.models.lif:LIF"``) — nothing is imported;
2. as ``"module:qualname"`` **only** when the module is one the user allowed explicitly
   (``allow_modules=("mypkg",)`` in Python, ``--allow-module mypkg`` on the command
   line): the module ``mypkg`` or a submodule ``mypkg.sub`` is imported, and the object
   must be *defined* in an allowed module (a name that module merely imported, such as
   ``os.system``, is refused).

Never resolved: names with a component that starts with an underscore (dunder attributes
such as ``__class__`` or ``__globals__``, and private names), any module that was not
allowed (``"sys:exit"``, ``"builtins:input"``, ``"this:s"``), and modules reached through
attributes. Every refusal is a :class:`ValueError` that names the string and the rule.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable, Mapping
from typing import Any


def normalise_allowed(allow_modules: Iterable[str] | str | None) -> tuple[str, ...]:
    """Validate ``allow_modules``: dotted module names such as ``"mypkg"`` or ``"mypkg.sub"``."""
    if allow_modules is None:
        return ()
    if isinstance(allow_modules, str):
        allow_modules = (allow_modules,)
    out = []
    for mod in allow_modules:
        if not isinstance(mod, str) or not mod or not all(
                p.isidentifier() and not p.startswith("_") for p in mod.split(".")):
            raise ValueError(f"allow_modules: {mod!r} is not a module name such as 'mypkg' or "
                             f"'mypkg.sub' (no empty or underscore-prefixed parts)")
        out.append(mod)
    return tuple(out)


def _within(module: str, allowed: tuple[str, ...]) -> bool:
    return any(module == a or module.startswith(a + ".") for a in allowed)


def qualified_name(obj: Any) -> str:
    """``module:qualname`` of a function or class (what :func:`resolve_name` reads)."""
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', repr(obj))}"


def resolve_name(text: Any, what: str, registry: Mapping[str, Any],
                 allow_modules: Iterable[str] | str | None = (),
                 known: Iterable[str] = ()) -> Any:
    """The object a sweep description names, resolved safely (see the module docstring).

    Args:
        text: the name: a registry key (``"LIF"``), neurosim's own ``module:qualname`` of
            a registry entry, or ``"module:qualname"`` in an allowed module.
        what: what is being resolved, for messages (``"model"``, ``"measure"``...).
        registry: the allowed plain names and their objects.
        allow_modules: modules (and their submodules) from which ``module:qualname``
            names may be imported; empty by default.
        known: further valid names to list in messages (handled by the caller).

    Returns:
        The object.

    Raises:
        ValueError: the name is not in the registry and not an allowed ``module:qualname``.
    """
    allowed = normalise_allowed(allow_modules)
    if not isinstance(text, str):
        raise ValueError(f"{what} must be a name (a string), got {text!r}")
    if text in registry:
        return registry[text]
    own = {qualified_name(obj): obj for obj in registry.values()}
    if text in own:
        return own[text]
    names = ", ".join(sorted({*registry, *known})) or "none"
    if ":" not in text:
        raise ValueError(f"{what} {text!r} is not one of neurosim's names ({names}); a "
                         f"function of your own is named 'module:function' and its module "
                         f"must be allowed explicitly (--allow-module MODULE)")
    module, _, qualname = text.partition(":")
    parts = module.split(".") + qualname.split(".")
    if not all(p.isidentifier() for p in parts):
        raise ValueError(f"{what} {text!r} is not a valid 'module:qualname' name")
    if any(p.startswith("_") for p in parts):
        raise ValueError(f"{what} {text!r}: names that start with an underscore (private or "
                         f"dunder attributes) are never resolved")
    if not _within(module, allowed):
        hint = (f"allowed modules: {', '.join(allowed)}" if allowed
                else "no module is allowed by default")
        raise ValueError(f"{what} {text!r}: module {module!r} is not allowed ({hint}); "
                         f"neurosim's own names are {names}; pass --allow-module "
                         f"{module.split('.')[0]} (allow_modules=[...] in Python) to use "
                         f"functions of your own module")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as err:
        raise ValueError(f"{what} {text!r}: cannot import module {module!r}: {err}") from None
    for part in qualname.split("."):
        if inspect.ismodule(obj) and obj.__name__ != module:
            break  # a module reached through an attribute: refused below
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"{what} {text!r}: {module!r} has no attribute path "
                             f"{qualname!r}") from None
    defined_in = getattr(obj, "__module__", None)
    if inspect.ismodule(obj) or not isinstance(defined_in, str) or not _within(defined_in,
                                                                                 allowed):
        raise ValueError(f"{what} {text!r} is not a class or function defined in an allowed "
                         f"module (it comes from {defined_in or 'an unknown module'!r})")
    return obj


__all__ = ["normalise_allowed", "qualified_name", "resolve_name"]
