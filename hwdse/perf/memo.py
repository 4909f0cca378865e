"""Keys for the bounded caches of the scalar hot path (``functools.lru_cache`` over immutable inputs).

Catalog specs are frozen but hold dicts (unhashable), so a spec enters a key by identity
(:class:`Identity`): a catalog entry read again (a changed file) is a new object and a new key.
Numbers, strings and frozen specs of numbers enter by value; anything unhashable (a numpy array, a
DataArray: a sweep) makes the key None and the call computes without a cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["Identity", "value_key", "items_key"]


class Identity:
    """A cache key standing for one object: equal only to a key of that same object, which it keeps
    alive (its ``id`` cannot be reused while the key lives)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Identity) and other.obj is self.obj


def value_key(value: Any) -> Any:
    """``(type, value)`` when ``value`` is hashable (``1``, ``1.0`` and ``True`` stay apart), else None."""
    key = (type(value), value)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def items_key(mapping: Mapping[str, Any] | None) -> tuple | None:
    """The items of ``mapping`` as a key, each value by :func:`value_key`; None if a value is unhashable."""
    items = tuple((name, value_key(value)) for name, value in (mapping or {}).items())
    return None if any(key is None for _, key in items) else items
