"""Arithmetic helpers that keep numbers, numpy arrays and xarray DataArrays on one code path."""

from __future__ import annotations

from functools import reduce
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["where", "maximum_of", "to_dataarray"]


def _has_xr(*values: Any) -> bool:
    return any(isinstance(v, xr.DataArray) for v in values)


def where(cond: Any, a: Any, b: Any) -> Any:
    """``np.where`` that keeps DataArray dims (``np.where`` would drop them)."""
    if _has_xr(cond, a, b):
        return xr.where(cond, a, b)
    out = np.where(cond, a, b)
    return out[()] if out.ndim == 0 else out


def maximum_of(values: list[Any]) -> Any:
    return reduce(np.maximum, values)


def to_dataarray(value: Any) -> xr.DataArray:
    """Wrap a number or array (numpy arrays get dims ``dim_0, dim_1, ...``)."""
    return value if isinstance(value, xr.DataArray) else xr.DataArray(np.asarray(value))
