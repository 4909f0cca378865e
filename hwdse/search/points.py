"""Vectorized evaluation of many designs: a list of points (trials) or a whole grid, then scoring.

Loops run over the combinations of the *looped* parameters (categoricals such as formats or
memory technology) only; numeric parameters travel as DataArrays through one evaluator call.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from hwdse.perf.format_selection import floor_qsnr_db
from hwdse.search.operating import choose
from hwdse.search.space import Space, grid_values

__all__ = ["evaluate_points", "evaluate_grid", "grid_coords", "score", "pareto_mask"]


class _NotAligned(Exception):
    """A result variable whose numpy shape cannot be mapped back onto the point dims."""


def _evaluate_block(space: Space, fixed: Mapping[str, Any], numeric: Mapping[str, np.ndarray],
                    axes: Mapping[str, str], sizes: Mapping[str, int]) -> xr.Dataset:
    """Evaluate one combination of looped values over numeric values laid out on named dims.

    ``axes[k]`` is the dim along which parameter ``k`` varies (all ``"trial"`` for a list of
    points, one dim per parameter for a grid). Plain numpy arrays, shaped to broadcast, go
    through the evaluator (an order of magnitude faster than indexed DataArrays); the result
    is mapped back onto the named dims and every variable is broadcast over them.
    """
    dims = list(sizes)
    full = tuple(sizes[d] for d in dims)
    shaped = {}
    for k, v in numeric.items():  # every input at the full point shape: outputs are full-shape or 0-d
        shape = [1] * len(dims)
        shape[dims.index(axes[k])] = len(v)
        shaped[k] = np.broadcast_to(np.asarray(v, dtype=float).reshape(shape), full)
    anon = not (len(dims) > 1 and np.prod(full) > 50_000)  # a large grid: labelled dims let xarray keep
    if anon:                                                # each result at the dims it depends on
        try:
            raw = space.evaluate_design({**fixed, **shaped})
            names = {f"dim_{i}": d for i, d in enumerate(dims)}
            ds = _at_full_shape(raw, names, sizes)
        except (_NotAligned, xr.AlignmentError):
            anon = False
    if not anon:
        labelled = {k: xr.DataArray(np.asarray(v, dtype=float), dims=axes[k]) for k, v in numeric.items()}
        ds = _at_full_shape(space.evaluate_design({**fixed, **labelled}), {d: d for d in dims}, sizes)
    ds = score(space, ds, fixed)
    for k in [k for k, v in ds.data_vars.items() if v.ndim == 0]:
        ds[k] = (dims, np.broadcast_to(ds[k].values, full), ds[k].attrs)
    return ds


def _at_full_shape(ds: xr.Dataset, names: Mapping[str, str], sizes: Mapping[str, int]) -> xr.Dataset:
    """Every numeric variable as a plain array over (other dims..., *point dims) at the full point shape.

    ``names`` maps the evaluator's dims to point dims (``dim_0`` -> ``trial`` for numpy inputs)."""
    dims = list(sizes)
    full = tuple(sizes[d] for d in dims)
    out = {}
    for name, v in ds.data_vars.items():
        if v.dtype.kind in "OUS" and v.ndim == 0:
            continue
        vdims = [names.get(d, d) for d in v.dims]
        if any(str(d).startswith("dim_") for d in vdims) or len(set(vdims)) != len(vdims):
            raise _NotAligned(name)
        extra = [d for d in vdims if d not in sizes]
        present = [d for d in dims if d in vdims]
        arr = np.transpose(np.asarray(v.values), [vdims.index(d) for d in extra + present])
        lead = list(arr.shape[:len(extra)])
        arr = arr.reshape(lead + [arr.shape[len(extra) + present.index(d)] if d in present else 1 for d in dims])
        try:
            arr = np.broadcast_to(arr, (*lead, *full))
        except ValueError:
            raise _NotAligned(name) from None
        out[name] = ((*extra, *dims), arr, v.attrs)
    coords = {k: c for k, c in ds.coords.items() if all(names.get(d, d) not in sizes and not str(d).startswith("dim_")
                                                        for d in c.dims)}
    return xr.Dataset(out, coords=coords, attrs=ds.attrs)


def evaluate_points(space: Space, points: Mapping[str, Any], dim: str = "trial", solve: bool = True) -> xr.Dataset:
    """Evaluate N designs given as 1-D columns (path -> N values); the result has dim ``dim`` (size N).

    Operating parameters missing from ``points`` are spanned over their grid for every design and,
    with ``solve``, each design keeps its chosen operating point (:func:`hwdse.search.operating.choose`:
    their values become coordinates over ``dim``); without, the result keeps their dims (the design's
    operating frontier)."""
    given = [k for k in space.params if k in points]
    free = [k for k in space.inner if k not in points]
    cols = {k: np.asarray(points[k], dtype=object if space.params[k].kind == "categorical" else None) for k in given}
    n = len(next(iter(cols.values()))) if cols else 1
    looped = [k for k in space.looped if k in cols]
    if looped:
        codes = np.stack([np.unique(cols[k].astype(str), return_inverse=True)[1] for k in looped], axis=1)
        combos, group = np.unique(codes, axis=0, return_inverse=True)
        group = group.reshape(-1)
    else:
        combos, group = np.zeros((1, 0), dtype=int), np.zeros(n, dtype=int)
    inner = {k: grid_values(space.params[k]) for k in free}
    spans = {k: v for k, v in inner.items() if k not in space.looped}
    loops = [k for k in free if k in space.looped]
    parts = []
    for g in range(len(combos)):
        idx = np.flatnonzero(group == g)
        fixed = {k: _python(cols[k][idx[0]]) for k in looped}
        numeric = {k: cols[k][idx].astype(float) for k in space.vectorized if k in cols}
        blocks = []
        for combo in itertools.product(*[list(inner[k]) for k in loops]):
            chosen = dict(zip(loops, map(_python, combo), strict=True))
            ds = _evaluate_block(space, {**fixed, **chosen}, {**numeric, **spans},
                                 {**{k: dim for k in numeric}, **{k: k for k in spans}},
                                 {dim: len(idx), **{k: len(v) for k, v in spans.items()}})
            blocks.append(ds.assign_coords({k: v for k, v in spans.items()}))
        ds = _nest(blocks, loops, inner)
        if free and solve:
            ds = choose(space.spec, ds, free, dim)
        parts.append(ds.assign_coords({dim: idx}))
    out = xr.concat(parts, dim=dim, data_vars="all", combine_attrs="drop_conflicts") if len(parts) > 1 else parts[0]
    return out.sortby(dim)


def _nest(blocks: list[xr.Dataset], loops: list[str], values: Mapping[str, np.ndarray]) -> xr.Dataset:
    """Blocks evaluated one combination of ``loops`` values at a time, as one Dataset over their dims."""
    if not loops:
        return blocks[0]
    parts = [b.expand_dims({k: [_python(v)] for k, v in zip(loops, combo, strict=True)})
             for b, combo in zip(blocks, itertools.product(*[list(values[k]) for k in loops]), strict=True)]
    nested = np.empty([len(values[k]) for k in loops], dtype=object)
    for i, part in zip(itertools.product(*[range(len(values[k])) for k in loops]), parts, strict=True):
        nested[i] = part
    return xr.combine_nested(nested.tolist(), concat_dim=loops, combine_attrs="drop_conflicts")


def grid_coords(space: Space) -> dict[str, np.ndarray]:
    """The grid of every parameter (in spec order)."""
    return {k: grid_values(p) for k, p in space.params.items()}


def evaluate_grid(space: Space, coords: Mapping[str, np.ndarray] | None = None) -> xr.Dataset:
    """Evaluate the full grid: a Dataset whose dims are the parameters (looped ones concatenated)."""
    coords = grid_coords(space) if coords is None else coords
    looped = list(space.looped)
    numeric = {k: np.asarray(coords[k], dtype=float) for k in space.vectorized}
    blocks = []
    for combo in itertools.product(*[list(coords[k]) for k in looped]):
        fixed = dict(zip(looped, map(_python, combo), strict=True))
        blocks.append(_evaluate_block(space, fixed, numeric, {k: k for k in numeric},
                                      {k: len(v) for k, v in numeric.items()}))
    out = _nest(blocks, looped, coords)
    return out.assign_coords({k: coords[k] for k in space.vectorized}).transpose(*space.params, ...)


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


PLACED = 1e-3  # the fit constraint of a point that fits the pooled capacity but not its placement rule


def score(space: Space, ds: xr.Dataset, values: Mapping[str, Any]) -> xr.Dataset:
    """Add one ``constraint_<name>`` variable per constraint (feasible when <= 0) and ``feasible``.

    The evaluator's own ``feasible`` output (the hardware can run every operator) becomes the
    implicit constraint ``hardware``; a serving result's ``stable`` (the engine keeps up with the
    offered load, which needs every operator to run) the implicit constraint ``stable``. ``fit`` of
    a serving result: at least one request's paged KV cache fits next to the weights
    (``1 - max_requests``; more requests than fit queue, they are no error); of a static batch, the footprint
over capacity, at least ``PLACED`` where the system's own rule (``fits``) fails. ``feasible`` is then
    every constraint <= 0."""
    fields = space.split_fields(values)
    cons = {}
    for c in space.spec.constraints:
        kind = c.resolved_kind
        if kind in ("max", "min"):
            v = _per_point(ds[c.metric])
            val = (v - c.max) / abs(c.max) if kind == "max" else (c.min - v) / abs(c.min)
        elif kind == "fit" and "max_requests" in ds:
            val = 1.0 - ds.max_requests
        elif kind == "fit":  # a system with several memories (GPU + PIM) may fail its placement rule within the sum
            val = _per_point(xr.where(ds.fits, (ds.memory_bytes - ds.capacity_bytes) / ds.capacity_bytes,
                                      np.maximum((ds.memory_bytes - ds.capacity_bytes) / ds.capacity_bytes, PLACED)))
        else:
            q = min(floor_qsnr_db(fields[t], t) for t in c.tensors)
            val = xr.DataArray((c.min_qsnr_db - q) / c.min_qsnr_db)
        cons[f"constraint_{c.name}"] = val.assign_attrs(units="1", long_name=f"constraint {c.name} (feasible <= 0)")
    if "feasible" in ds:  # the evaluator's own verdict (e.g. a PE that cannot compute a format) is a constraint too
        ok = ds.feasible.all("scenario") if "scenario" in ds.feasible.dims else ds.feasible
        cons["constraint_hardware"] = xr.where(ok, -1.0, 1.0).assign_attrs(
            units="1", long_name="the hardware runs every operator (-1) or not (+1); see attrs infeasible_reason")
    if "stable" in ds:  # serving: the engine keeps up with the offered load (and can run every operator)
        cons["constraint_stable"] = xr.where(ds.stable, -1.0, 1.0).assign_attrs(
            units="1", long_name="the engine keeps up with the offered load (-1) or not (+1)")
    out = ds.assign(cons)
    feasible = xr.DataArray(True)
    for v in cons.values():
        feasible = feasible & (v <= 0)
    return out.assign(feasible=feasible.assign_attrs(long_name="every constraint <= 0"))


def _per_point(v: xr.DataArray) -> xr.DataArray:
    """Worst case over the scenarios of a mix (a constraint must hold for every scenario)."""
    return v.max("scenario") if "scenario" in v.dims else v


def pareto_mask(values: np.ndarray, directions: list[str], valid: np.ndarray) -> np.ndarray:
    """Non-dominated rows of ``values`` (N x k objectives) among ``valid`` rows.

    Skyline by elimination: each pass takes the best remaining point of a scalarization (it is
    never dominated), and removes every point it dominates; passes = size of the front.
    """
    sign = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    v = values * sign
    alive = valid & np.all(np.isfinite(v), axis=1)
    front = np.zeros(len(v), dtype=bool)
    scale = np.nanstd(np.where(alive[:, None], v, np.nan), axis=0) if alive.any() else np.ones(v.shape[1])
    scalar = (v / np.where(scale > 0, scale, 1.0)).sum(axis=1)
    while alive.any():
        i = np.flatnonzero(alive)[np.argmin(scalar[alive])]
        front[i] = True
        dominated = np.all(v >= v[i], axis=1)
        alive &= ~dominated
        # equal points are not dominated by each other: keep duplicates of i on the front
        front |= dominated & np.all(v == v[i], axis=1) & valid
    return front
