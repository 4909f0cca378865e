"""Hardware: memory technologies and the device kinds of the ``arch/`` catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Mapping

from pydantic import Field, TypeAdapter

from hwdse._catalog import load, validate
from hwdse._errors import HwdseError
from hwdse.hardware._base import COMPUTE_CLASSES, Device, Mode, Timing
from hwdse.hardware.accelerator import Accelerator
from hwdse.hardware.gpu import GPU
from hwdse.hardware.memory import MemorySystem, MemoryTechnology, load_memory
from hwdse.hardware.pe import PEArray, PEType, load_pe
from hwdse.hardware.pim import PIM, GpuPim
from hwdse.hardware.spatial import Spatial
from hwdse.hardware.systems import Interconnect, LinkSpec, MultiGPU, load_link

__all__ = ["Arch", "GPU", "Device", "Timing", "Mode", "MemorySystem", "MemoryTechnology", "COMPUTE_CLASSES",
           "load_arch", "load_memory", "with_overrides",
           "MultiGPU", "Interconnect", "LinkSpec", "load_link", "Accelerator", "PEArray", "PEType", "load_pe",
           "Spatial", "PIM", "GpuPim"]

# Every device kind joins this union (discriminated by ``kind``).
Arch = Annotated[GPU | MultiGPU | Accelerator | Spatial | PIM | GpuPim, Field(discriminator="kind")]
_ARCH = TypeAdapter(Arch)


def load_arch(name_or_path: str | Path | Any) -> Any:
    """An ``arch/`` catalog entry by name, a YAML path, or an already-built spec (returned as is)."""
    if not isinstance(name_or_path, (str, Path)):
        return name_or_path
    return load("arch", name_or_path, _ARCH)


TECHNOLOGY_PINS = ("pin_rate_Gbps", "stack_capacity_GiB")


def with_overrides(spec: Any, overrides: Mapping[str, Any], where: str = "overrides") -> Any:
    """A re-validated copy of ``spec`` with dotted paths set (``"memory.bandwidth_GBps": 2000``).

    Values may be numbers, numpy arrays or ``xarray.DataArray`` (a sweep); bounds are checked
    element-wise and unknown paths are errors. Setting a memory system's ``technology`` to another
    one drops its pinned ``TECHNOLOGY_PINS`` (unless they are set too): the new technology runs at
    its nominal pin rate and stack capacity.
    """
    data = spec.model_dump(mode="python", round_trip=True)
    for path, value in overrides.items():
        node = data
        keys = path.split(".")
        for key in keys[:-1]:
            if not isinstance(node.get(key), dict):
                raise HwdseError(where, path, f"no such path in {type(spec).__name__} {getattr(spec, 'name', '')!r}")
            node = node[key]
        if keys[-1] not in node and not _is_mapping_field(spec, keys):
            raise HwdseError(where, path, f"no such path in {type(spec).__name__} {getattr(spec, 'name', '')!r}")
        if keys[-1] == "technology" and "count" in node and node.get("technology") != value:
            for pin in TECHNOLOGY_PINS:  # a product's pins belong to its technology
                if ".".join([*keys[:-1], pin]) not in overrides:
                    node[pin] = None
        node[keys[-1]] = value
    return validate(TypeAdapter(type(spec)), data, where)


def _is_mapping_field(spec: Any, keys: list[str]) -> bool:
    """True when ``keys[:-1]`` leads to a dict-typed field (new keys such as a peak class are allowed)."""
    node = spec
    for key in keys[:-1]:
        node = getattr(node, key, None) if not isinstance(node, dict) else node.get(key)
        if node is None:
            return False
    return isinstance(node, dict)
