"""The PIM-vs-GPU decode study as data: one Dataset over (model, system, batch, prompt).

One vectorized ``evaluate`` call per (model, system) pair, with batch and prompt as DataArrays;
no loop over grid points. Adds decode-only energy per token (prefill energy excluded), the
binding limit of every point, and the crossover batch where the GPU overtakes each PIM system.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from hwdse._errors import HwdseError
from hwdse.hardware import load_arch
from hwdse.hardware._base import DEFAULT_MODE, basis_of, resolve_mode
from hwdse.perf import evaluate
from hwdse.perf.uncertainty import exceeds
from hwdse.search.space import grid_values
from hwdse.search.spec import parse_study

__all__ = ["SYSTEMS", "MODELS", "LIMITS", "binding_limit", "study_grid", "pim_vs_gpu", "crossovers"]

# label -> (arch, 16-bit format the system computes in); capacity-matched at 1280 GiB
SYSTEMS: dict[str, tuple[str, str]] = {
    "GPU": ("dgx-a100-x2", "fp16"),
    "GPU+HBM-PIM": ("dgx-a100-attacc", "fp16"),
    "AiM": ("gddr6-aim", "bf16"),
}
MODELS = ("llama-2-70b", "llama-3-70b", "gpt3-175b", "qwen3-235b-a22b")
# "host" is everything not on the PIM units: the GPUs and their collectives, or a PIM controller
LIMITS = ("capacity", "pim compute", "pim memory", "pim communication", "host compute", "host memory",
          "host communication")


def study_grid(study: str | Path) -> dict[str, Any]:
    """Batch and prompt grids, gen and mode from a study file (hwdse.search schema)."""
    spec, where = parse_study(study)
    grids = {}
    for field in ("batch", "prompt"):
        param = spec.search.get(f"scenario.{field}")
        if param is None:
            raise HwdseError(where, f"search.scenario.{field}", "the PIM-vs-GPU report needs a batch and a prompt grid")
        grids[field] = np.asarray(grid_values(param), dtype=float)
    return {**grids, "gen": spec.workload.gen or 128, "mode": spec.mode, "name": spec.name}


def binding_limit(ds: xr.Dataset) -> xr.DataArray:
    """Per point: the category holding most of the decode step time, or ``capacity`` if infeasible."""
    d = ds.sel(phase="decode")
    time = d.op_time_s * d.op_count
    group = xr.where(d.op_unit == "pim", "pim", "host")
    bound = xr.where(d.op_bound.isin(["communication", "mode_switch"]), "communication", d.op_bound)
    shares = [time.where((group == g) & (bound == b), 0.0).sum("op")
              for g, b in (label.split() for label in LIMITS[1:])]
    stacked = xr.concat(shares, dim="limit").assign_coords(limit=list(LIMITS[1:]))
    best = stacked.idxmax("limit")
    return xr.where(ds.fits, best, "capacity").astype(str)


def pim_vs_gpu(batch: Sequence[float], prompt: Sequence[float], gen: int = 128,
               models: Sequence[str] = MODELS, systems: Mapping[str, tuple[str, str]] | None = None,
               mode: str = DEFAULT_MODE) -> xr.Dataset:
    """Dataset over (model, system, batch, prompt): tpot_s, decode_tok_s, throughput_tok_s,
    energy_j_per_token (batch incl. prefill), decode_energy_j_per_token, fits, limit. Every system runs
    in one mode (``auto``: achieved only if each has an achieved basis); ``basis`` says what each rests on."""
    systems = dict(systems or SYSTEMS)
    archs = {label: load_arch(arch) for label, (arch, _) in systems.items()}
    mode = resolve_mode(mode, *archs.values())
    b = xr.DataArray(np.asarray(batch, dtype=float), dims="batch", coords={"batch": np.asarray(batch, dtype=float)})
    p = xr.DataArray(np.asarray(prompt, dtype=float), dims="prompt", coords={"prompt": np.asarray(prompt, dtype=float)})
    keep = ("tpot_s", "ttft_s", "decode_tok_s", "throughput_tok_s", "energy_j_per_token", "decode_energy_j_per_token",
            "fits", "tpot_band")
    per_model = []
    for model in models:
        rows = []
        for label, (arch, fmt) in systems.items():
            fields = dict(batch=b, prompt=p, gen=gen, weights=fmt, activations=fmt, kv=fmt)
            ds = evaluate(model, arch, mode=mode, detail=True, **fields)
            out = ds[list(keep)].copy()
            out["limit"] = binding_limit(ds)
            rows.append(out.drop_vars([c for c in out.coords if c not in ("batch", "prompt")]))
        per_model.append(xr.concat(rows, dim="system", coords="minimal", compat="override"))
    data = xr.concat(per_model, dim="model", coords="minimal", compat="override")
    data = data.assign_coords(model=list(models), system=list(systems))
    data = data.transpose("model", "system", "batch", "prompt")
    data["arch"] = xr.DataArray([systems[s][0] for s in systems], dims="system")
    data["basis"] = xr.DataArray([basis_of(archs[s], mode) for s in systems], dims="system")
    data.attrs.update(gen=gen, mode=mode, systems=json.dumps(systems))
    return data


def crossovers(data: xr.Dataset, reference: str = "GPU", metric: str = "decode_tok_s") -> list[dict[str, Any]]:
    """Where the better of ``reference`` and each other system (higher ``metric``) changes along batch.

    One record per (model, system, prompt): ``pim_wins`` (batches where the other system is at
    least as good, both feasible), ``crossovers`` (``(batch_before, batch_after, winner_after)``) and
    ``beyond_band`` (batches where the two differ by more than their TPOT bands added; None when the
    systems rest on roofline bounds, which carry no band).
    """
    ref = data[metric].sel(system=reference)
    band = data.tpot_band.broadcast_like(data[metric])
    both = data.fits & data.fits.sel(system=reference)
    wins = (data[metric] >= ref).where(both)
    records = []
    for model in data.model.values:
        for system in (s for s in data.system.values if s != reference):
            for prompt in data.prompt.values:
                at = dict(model=model, prompt=prompt)
                row = wins.sel(system=system, **at)
                ok = ~np.isnan(row.values)
                batches, flags = row.batch.values[ok], row.values[ok].astype(bool)
                changes = [(float(batches[i]), float(batches[i + 1]), system if flags[i + 1] else reference)
                           for i in range(len(flags) - 1) if flags[i] != flags[i + 1]]
                beyond = exceeds(data[metric].sel(system=system, **at).values[ok], ref.sel(**at).values[ok],
                                 band.sel(system=system, **at).values[ok], band.sel(system=reference, **at).values[ok])
                records.append({"model": str(model), "system": str(system), "prompt": float(prompt),
                                "pim_wins": [float(b) for b in batches[flags]], "crossovers": changes,
                                "feasible_batches": [float(b) for b in batches],
                                "beyond_band": None if np.isnan(beyond).any() else
                                [float(b) for b, x in zip(batches, beyond) if x]})
    return records
