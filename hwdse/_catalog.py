"""Catalog files: where they live, how they are read, how specs are validated.

Catalogs are data (``arch/``, ``memory/``, ``formats/``, ``models/``, ``studies/`` at the
repository root, shipped in the wheel as ``hwdse/_data/``). Users add entries by dropping a
file there or by passing a path wherever a catalog name is accepted.
"""

from __future__ import annotations

import json
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from hwdse._errors import HwdseError, from_validation_error

__all__ = ["Spec", "catalog_dir", "names", "read", "load", "locate"]

KINDS = ("arch", "memory", "formats", "models", "studies")
_SUFFIXES = (".yaml", ".yml", ".json", ".toml")
T = TypeVar("T")


class Spec(BaseModel):
    """Base of every catalog spec: strict (unknown keys are errors) and frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


@lru_cache(maxsize=len(KINDS))
def catalog_dir(kind: str) -> Path:
    """The directory holding catalog ``kind`` (installed wheel first, then the source tree; found once)."""
    if kind not in KINDS:
        raise ValueError(f"unknown catalog kind {kind!r}; expected one of {', '.join(KINDS)}")
    here = Path(__file__).resolve().parent
    for candidate in (here / "_data" / kind, here.parent / kind):
        if candidate.is_dir():
            return candidate
    raise HwdseError(kind, None, "catalog directory not found (broken installation?)")


def names(kind: str) -> list[str]:
    """Sorted entry names of a catalog (file stems)."""
    return sorted(p.stem for p in catalog_dir(kind).iterdir()
                  if p.suffix in _SUFFIXES and not p.name.startswith("_"))


def locate(kind: str, name_or_path: str | Path) -> Path:
    """Resolve a catalog name or a file path; unknown names raise one clear line."""
    path = Path(name_or_path)
    if path.suffix in _SUFFIXES and path.is_file():
        return path
    for suffix in _SUFFIXES:
        candidate = catalog_dir(kind) / f"{name_or_path}{suffix}"
        if candidate.is_file():
            return candidate
    if path.suffix in _SUFFIXES:
        raise HwdseError(str(path), None, "file not found")
    known = ", ".join(names(kind))
    raise HwdseError(f"{kind} catalog", "name", f"unknown {kind} entry {str(name_or_path)!r}; known: {known}")


def read(path: Path) -> dict[str, Any]:
    """Parse a YAML, JSON or TOML file into a mapping; syntax errors name file and line."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise HwdseError(str(path), None, f"cannot read file: {exc.strerror}") from None
    try:
        if path.suffix == ".json":
            data = json.loads(text)
        elif path.suffix == ".toml":
            data = tomllib.loads(text)
        else:
            data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise HwdseError(str(path), where, f"malformed YAML: {problem}") from None
    except json.JSONDecodeError as exc:
        raise HwdseError(str(path), f"line {exc.lineno}, column {exc.colno}", f"malformed JSON: {exc.msg}") from None
    except ValueError as exc:  # tomllib.TOMLDecodeError
        raise HwdseError(str(path), None, f"malformed TOML: {exc}") from None
    if not isinstance(data, dict):
        raise HwdseError(str(path), None, f"expected a mapping at the top level, got {type(data).__name__}")
    return data


def validate(schema: type[T] | Any, data: Any, where: str) -> T:
    """Validate ``data`` against a pydantic model or annotated type; errors become one line."""
    adapter = schema if isinstance(schema, TypeAdapter) else TypeAdapter(schema)
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        raise from_validation_error(exc, where) from None


def load(kind: str, name_or_path: str | Path, schema: Any) -> Any:
    """Locate, read and validate one catalog entry.

    Specs are frozen, so a validated entry is shared: it is read once per process.
    """
    key = (kind, str(name_or_path), id(schema))
    if key not in _loaded:
        path = locate(kind, name_or_path)
        data = read(path)
        data.setdefault("name", path.stem)
        _loaded[key] = validate(schema, data, str(_display(path)))
    return _loaded[key]


_loaded: dict[tuple, Any] = {}


def load_in(folder: str, label: str, name_or_path: str, schema: Any) -> Any:
    """An entry of a catalog subfolder (``arch/links``, ``arch/engines``) by name, or a YAML path;
    an unknown name lists the known ones (``label`` names the kind of entry in the message)."""
    key = (folder, str(name_or_path), id(schema))
    if key not in _loaded:
        kind, sub = folder.split("/", 1)
        base = catalog_dir(kind) / sub
        path = Path(name_or_path)
        if path.suffix not in (".yaml", ".yml") or not path.is_file():
            path = base / f"{name_or_path}.yaml"
            if not path.is_file():
                known = ", ".join(sorted(p.stem for p in base.glob("*.yaml")))
                raise HwdseError(f"{label} catalog", "name", f"unknown {label} {name_or_path!r}; known: {known}")
        data = read(path)
        data.setdefault("name", path.stem)
        _loaded[key] = validate(schema, data, f"{folder}/{path.name}")
    return _loaded[key]


def _display(path: Path) -> Path:
    """A short path for messages: relative to the catalog root or the working directory."""
    for base in (Path.cwd(), Path(__file__).resolve().parent.parent, Path(__file__).resolve().parent / "_data"):
        try:
            return path.resolve().relative_to(base)
        except ValueError:
            continue
    return path
