"""Format lookup: catalog name, file path or mapping -> validated spec -> format object."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hwdse import _catalog
from hwdse.formats._flint import FlintFormat
from hwdse.formats._float import MinifloatFormat
from hwdse.formats._format import Format
from hwdse.formats._integer import IntegerFormat
from hwdse.formats._mx import MXFormat
from hwdse.formats._nvfp4 import NVFP4Format
from hwdse.formats._spec import FormatSpec

__all__ = ["get", "names", "from_spec"]

_CLASSES: dict[str, type[Format]] = {"minifloat": MinifloatFormat, "integer": IntegerFormat, "flint": FlintFormat,
                                     "mx": MXFormat, "nvfp4": NVFP4Format}


def from_spec(spec: Any) -> Format:
    """The format object for a validated spec."""
    return _CLASSES[spec.kind](spec)


def get(name_or_path: str | Path | Mapping[str, Any] | Format) -> Format:
    """A format by catalog name (``"mxfp4"``), YAML/JSON/TOML path, or spec mapping.

    Unknown names, malformed files and bad fields raise :class:`hwdse._errors.HwdseError`
    naming the file, the field and the reason.
    """
    if isinstance(name_or_path, Format):
        return name_or_path
    if isinstance(name_or_path, Mapping):
        return from_spec(_catalog.validate(FormatSpec, dict(name_or_path), "format spec"))
    return from_spec(_catalog.load("formats", name_or_path, FormatSpec))


def names() -> list[str]:
    """Sorted names of the format catalog."""
    return _catalog.names("formats")
