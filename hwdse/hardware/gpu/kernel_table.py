"""Production kernel tables: what runs a (weights, activations) GEMM pair and a KV-cache format on a device.

A table is a catalog file, ``arch/kernels/<family>.yaml``, shared by the devices of one family (same
SM, same software); a GPU names it (``kernels: hopper``). ``gemm`` keys ``weights/activations``
format pairs, ``kv`` KV-cache formats, each to a path and a source:

* ``native`` -- both operands in one tensor-core datatype (W8A8 FP8 and INT8, BF16/FP16, W4A4 NVFP4
  and MXFP4 x MXFP8 on Blackwell's block-scaled MMA). For ``kv``: a production attention kernel
  reads the stored format (the engines' FP8 KV cache; whether it multiplies in FP8 or dequantizes in
  registers is not recorded);
* ``weight-only`` -- a production kernel dequantizes the weights in registers to the activations'
  type (W4A16 Marlin/AWQ/GPTQ, W8A16, FP8 weight-only Marlin on Ampere, W4A8 AWQ); GEMM pairs only;
* ``upcast`` -- no production kernel: the operands are converted to a type the datapath has and a
  16-bit GEMM runs (recorded where a source rules the pair out, e.g. no INT8 x FP8 MMA on Hopper).

:func:`gemm_path` and :func:`kv_path` answer for any pair: a listed one's path and source; an
unlisted one on a device with a table the path the hardware model runs it on
(:func:`hwdse.hardware.dequant.needs`): ``upcast`` when an operand is converted, ``unrecorded`` when
the datapath multiplies it as stored but no production kernel is recorded; a device without a table
(or not a GPU): ``unrecorded``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from hwdse._catalog import Spec, load_in
from hwdse._errors import HwdseError
from hwdse.formats import get
from hwdse.hardware.dequant import needs

__all__ = [
    "PATHS",
    "KernelEntry",
    "KernelTable",
    "gemm_path",
    "gpu_of",
    "kernel_table_file",
    "known_kernel_table",
    "kv_path",
    "load_kernel_table",
]

PATHS = ("native", "weight-only", "upcast", "unrecorded")
FOLDER = "arch/kernels"


class KernelEntry(Spec):
    path: Literal["native", "weight-only", "upcast"]
    source: str = Field(min_length=10, description="where the path is documented (table, code, ISA)")


class KernelTable(Spec):
    """Kernel paths of one device family, each with its source."""

    name: str
    description: str = ""
    source: str = Field(min_length=10, description="the tables and documents the entries cite")
    gemm: dict[str, KernelEntry] = Field(description="'weights/activations' format pair -> path")
    kv: dict[str, KernelEntry] = Field(default_factory=dict, description="KV-cache format -> path")

    @field_validator("gemm")
    @classmethod
    def _pairs(cls, gemm: dict[str, KernelEntry]) -> dict[str, KernelEntry]:
        for key in gemm:
            parts = key.split("/")
            if len(parts) != 2 or not all(parts):
                raise ValueError(f"expected 'weights/activations' (two format names), got key {key!r}")
            for role, name in zip(("weights", "activations"), parts):
                _known_format(key, role, name)
        return gemm

    @field_validator("kv")
    @classmethod
    def _kv(cls, kv: dict[str, KernelEntry]) -> dict[str, KernelEntry]:
        for key, entry in kv.items():
            _known_format(key, "kv", key)
            if entry.path == "weight-only":
                raise ValueError(f"a KV-cache path is 'native' or 'upcast', got 'weight-only' for key {key!r}")
        return kv

    @property
    def file(self) -> str:
        return f"{FOLDER}/{self.name}.yaml"


def _known_format(key: str, role: str, name: str) -> None:
    try:
        get(name)
    except HwdseError as exc:
        raise ValueError(f"{exc.reason if exc.field == 'name' else exc} ({role} format), got key {key!r}") from None


def load_kernel_table(name: str) -> KernelTable:
    """A kernel table from ``arch/kernels/`` by name, or a YAML path."""
    return load_in(FOLDER, "kernel table", name, KernelTable)


def known_kernel_table(name: str | None) -> str | None:
    """Validator: ``name`` is an ``arch/kernels`` entry (or None)."""
    if name is not None:
        load_kernel_table(name)
    return name


def gpu_of(arch: Any) -> Any:
    """The device that runs the GEMMs: a system's member GPU (``device``, a GPU + PIM system's ``xpu``)."""
    for attr in ("xpu", "device"):
        member = getattr(arch, attr, None)
        if member is not None and not isinstance(member, str):
            return gpu_of(member)
    return arch


def _table(device: Any) -> KernelTable | None:
    name = getattr(device, "kernels", None)
    return load_kernel_table(name) if isinstance(name, str) else None


def kernel_table_file(arch: Any) -> str | None:
    """The ``arch/kernels`` file of ``arch``'s GEMM device (None: it keeps no table)."""
    table = _table(gpu_of(arch))
    return table.file if table is not None else None


def _unrecorded(device: Any) -> tuple[str, str]:
    return "unrecorded", (f"{getattr(device, 'name', 'the device')} keeps no kernel table ({FOLDER}): no production "
                          "kernel recorded or ruled out")


def _modelled(device: Any, table: KernelTable, operands: tuple[str, str], what: str,
              judged: tuple[str, ...]) -> tuple[str, str]:
    """The path of an unlisted pair: what the hardware model runs it on (``upcast`` when one of the
    ``judged`` operands is converted)."""
    run, converted = needs(operands, device.native_class, getattr(device.compute, "block_scaled", ()))
    if set(converted) & set(judged):
        return "upcast", (f"no production kernel for {what} in {table.file}: {', '.join(converted)} converted to "
                          f"{run}, a {run} matmul (the modelled dequantization, hwdse.hardware.dequant)")
    return "unrecorded", (f"the datapath multiplies {what} as stored ({run}), but {table.file} records no production "
                          f"kernel for it")


def gemm_path(arch: Any, weights: str, activations: str) -> tuple[str, str]:
    """Path and reason of a ``weights`` x ``activations`` GEMM on ``arch`` (see the module doc)."""
    device = gpu_of(arch)
    table = _table(device)
    if table is None:
        return _unrecorded(device)
    entry = table.gemm.get(f"{weights}/{activations}")
    if entry is None:
        return _modelled(device, table, (weights, activations), f"{weights} weights x {activations} activations",
                         (weights, activations))
    return entry.path, f"{entry.source} [{table.file}]"


def kv_path(arch: Any, kv: str, activations: str) -> tuple[str, str]:
    """Path and reason of the attention over a ``kv`` KV cache with ``activations`` queries on ``arch``."""
    device = gpu_of(arch)
    table = _table(device)
    if table is None:
        return _unrecorded(device)
    entry = table.kv.get(kv)
    if entry is None:
        return _modelled(device, table, (activations, kv), f"a {kv} KV cache with {activations} queries", (kv,))
    return entry.path, f"{entry.source} [{table.file}]"
