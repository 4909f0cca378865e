"""Grid sweeps: the whole space in one vectorized evaluation, or in chunks on dask.distributed.

``dask="local"`` starts a LocalCluster (2 workers, 1 thread each); any other string is a
scheduler address (``tcp://host:8786``). Numeric dims are cut into chunks; every chunk is
evaluated by :func:`hwdse.search.points.evaluate_grid`, the same function as in-process.
Scripts that call this with ``dask="local"`` need the ``if __name__ == "__main__":`` guard
(worker processes re-import the main module).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import xarray as xr

from hwdse._errors import HwdseError
from hwdse.search.points import evaluate_grid, grid_coords
from hwdse.search.space import Space

__all__ = ["sweep", "grid_size"]


def grid_size(space: Space) -> int:
    return int(np.prod([len(v) for v in grid_coords(space).values()]))


def sweep(space: Space, *, dask: str | None = None, chunk: int = 256, processes: bool = True) -> xr.Dataset:
    """Evaluate the full grid of ``space``; with ``dask``, in chunks of ``chunk`` values per numeric dim."""
    coords = grid_coords(space)
    if dask is None:
        return evaluate_grid(space, coords)
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise HwdseError("--dask", None, "needs dask.distributed: pip install 'hwdse[dask]'") from None
    numeric = list(space.vectorized)
    pieces = {k: [coords[k][i:i + chunk] for i in range(0, len(coords[k]), chunk)] for k in numeric}
    blocks = [{**coords, **dict(zip(numeric, combo, strict=True))} for combo in itertools.product(*pieces.values())]
    cluster = None
    try:
        if dask == "local":
            cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=processes, dashboard_address=None)
            client = Client(cluster)
        else:
            client = Client(dask)
    except OSError as exc:
        raise HwdseError("--dask", None, f"cannot reach scheduler {dask!r}: {exc}") from None
    try:
        futures = client.map(_block, [space] * len(blocks), blocks, pure=False)
        results = client.gather(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    shape = [len(pieces[k]) for k in numeric]
    nested: Any = np.empty(shape, dtype=object) if shape else None
    if not shape:
        return results[0]
    for idx, ds in zip(itertools.product(*[range(n) for n in shape]), results, strict=True):
        nested[idx] = ds
    out = xr.combine_nested(nested.tolist(), concat_dim=numeric, combine_attrs="drop_conflicts")
    return out.transpose(*space.params, ...)


def _block(space: Space, coords: dict[str, np.ndarray]) -> xr.Dataset:
    return evaluate_grid(space, coords)
