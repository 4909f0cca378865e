"""Numeric parameter types for catalog specs.

A spec field holds one canonical unit (named in the field, e.g. ``bandwidth_GBps``) and
accepts a Python number, a numpy array or an ``xarray.DataArray``: the same validated spec
then drives one evaluation or a whole sweep. Bounds are checked element-wise.
"""

from __future__ import annotations

import numbers
from typing import Annotated, Any

import numpy as np
import xarray as xr
from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

__all__ = ["Number", "quantity", "count", "is_array"]

Number = float | np.ndarray | xr.DataArray


def is_array(value: Any) -> bool:
    return isinstance(value, (np.ndarray, xr.DataArray))


def _describe(value: Any) -> str:
    if is_array(value):
        return f"min {float(np.min(value)):g}" if value.size else "an empty array"
    return f"{value!r}"


def _validator(gt, ge, le, integer: bool):
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not (isinstance(value, numbers.Real) or is_array(value)):
            raise ValueError(f"must be a number, got {value!r}")
        if is_array(value):
            if not np.issubdtype(np.asarray(value).dtype, np.number):
                raise ValueError("must be numeric")
            if value.size == 0:
                raise ValueError("must not be an empty array")
            lo, hi = np.min(value), np.max(value)
        else:
            lo = hi = value
        if np.isnan(lo) or np.isnan(hi):
            raise ValueError("must not be NaN")
        if gt is not None and not lo > gt:
            raise ValueError(f"must be > {gt:g}, got {_describe(value)}")
        if ge is not None and not lo >= ge:
            raise ValueError(f"must be >= {ge:g}, got {_describe(value)}")
        if le is not None and not hi <= le:
            raise ValueError(f"must be <= {le:g}, got {_describe(value)}")
        if integer and not is_array(value):
            if float(value) != int(value):
                raise ValueError(f"must be an integer, got {value!r}")
            return int(value)
        return value if is_array(value) else float(value)

    return check


def _as_is(value: Any) -> Any:
    """Serialize numbers and arrays unchanged (a sweep keeps its DataArray)."""
    return value


def quantity(*, gt: float | None = None, ge: float | None = None, le: float | None = None,
             unit: str = "", integer: bool = False) -> Any:
    """An annotated number type with element-wise bounds and a unit in its JSON schema."""
    schema: dict[str, Any] = {"type": "integer" if integer else "number"}
    if gt is not None:
        schema["exclusiveMinimum"] = gt
    if ge is not None:
        schema["minimum"] = ge
    if le is not None:
        schema["maximum"] = le
    if unit:
        schema["unit"] = unit
    return Annotated[float, PlainValidator(_validator(gt, ge, le, integer)), PlainSerializer(_as_is, return_type=Any),
                     WithJsonSchema(schema)]


def count(ge: int = 1) -> Any:
    """A positive integer count (units, stacks, layers)."""
    return quantity(ge=ge, integer=True)
