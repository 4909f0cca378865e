"""Helpers of the ``hwdse`` command: one-line errors, checks of option values, human-readable units."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable, Mapping
from functools import wraps
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from typer.core import TyperGroup

from hwdse._errors import HwdseError, from_validation_error
from hwdse.hardware._base import MODES

Arch = Annotated[str, typer.Option("--arch", help="arch catalog name or YAML path")]
Model = Annotated[str, typer.Option("--model", help="bundled model name or a config.json path")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON")]
MODE_HELP = ("auto (default: achieved when every system of the result has an achieved basis, else roofline for "
             "all of them), achieved or roofline")

__all__ = ["Arch", "Model", "AsJson", "MODE_HELP", "check_mode", "OneLineGroup", "one_line_errors", "loaded", "model_and_arch", "check_scenario", "check_formats", "si",
           "duration", "gigabytes"]

T = TypeVar("T")


def _fail(exc: HwdseError) -> NoReturn:
    print(f"hwdse: error: {exc}", file=sys.stderr)
    raise typer.Exit(2)


def check_mode(mode: str) -> None:
    """``--mode`` is one of MODES."""
    if mode not in MODES:
        raise HwdseError("--mode", None, f"must be {', '.join(MODES)}, got {mode!r}")


def one_line_errors(func: Callable) -> Callable:
    """Turn input errors into ``hwdse: error: file: field: reason`` on stderr and exit code 2: an
    :class:`HwdseError`, a pydantic error that escaped a boundary (named by its model), an OSError on a file."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except HwdseError as exc:
            _fail(exc)
        except ValidationError as exc:
            _fail(from_validation_error(exc, exc.title))
        except OSError as exc:  # an --out folder that cannot be created, an unreadable file, ...
            if exc.filename is None:
                raise
            _fail(HwdseError(str(exc.filename), None, exc.strerror or str(exc)))

    return wrapper


class OneLineGroup(TyperGroup):
    """The top-level command group: a bad option value (``--trials -1``, ``--batch x``) is one line, exit 2."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except typer.BadParameter as exc:
            name = "/".join(exc.param.opts) if exc.param is not None else str(exc.param_hint or "option")
            cause = exc.__cause__  # typer checks a value's type and bounds with pydantic
            reason = from_validation_error(cause, "").reason if isinstance(cause, ValidationError) else exc.message
            _fail(HwdseError(name, None, reason.rstrip(".") or "missing"))


def loaded(option: str, load: Callable[[Any], T], value: Any) -> T:
    """``load(value)``; a lookup error names the option (``--arch: unknown arch entry 'h10'; known: ...``)."""
    try:
        return load(value)
    except HwdseError as exc:
        raise exc.referenced_by("", option) from None


def model_and_arch(model: str, arch: str) -> tuple[Any, Any]:
    """The ``--model`` and ``--arch`` entries, loaded; errors name the option."""
    from hwdse.hardware import load_arch
    from hwdse.workload import load_model

    return loaded("--model", load_model, model), loaded("--arch", load_arch, arch)


def check_scenario(fields: Mapping[str, Any], options: Mapping[str, str] | None = None) -> None:
    """Check option values that become scenario fields (sizes, format names); errors name the option:
    ``--<field>``, or ``options[field]`` where they differ (``{"prompt": "--seq"}``)."""
    from hwdse.workload import Scenario

    names = {f: f"--{f}" for f in fields} | dict(options or {})
    try:
        Scenario(**fields)
    except ValidationError as exc:
        raise from_validation_error(exc, "", names) from None
    for field in ("weights", "activations", "kv"):
        if field in fields:
            check_formats(names[field], [fields[field]])


def check_formats(option: str, formats: Iterable[str]) -> None:
    """Every name is a format of the catalog (or a format file)."""
    from hwdse.formats import get

    for name in formats:
        loaded(option, get, name)


def si(value: float, unit: str = "") -> str:
    """``1.34 Top/s``, ``33.6 MB``; ``58.7M`` without a unit."""
    sep = " " if unit else ""
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{sep}{prefix}{unit}"
    return f"{value:.3g}{sep}{unit}"


def duration(seconds: float, digits: int = 3) -> str:
    """``1.19 ms``, ``850 µs``, ``12.3 ns``, ``3.992 s`` (``digits`` significant digits)."""
    value = float(f"{seconds:.{digits}g}")  # rounded first: 999.96 µs is 1 ms, not 1e+03 µs
    if not math.isfinite(value) or value == 0 or abs(value) >= 1:
        return f"{value:.{digits}g} s"
    for factor, unit in ((1e-3, "ms"), (1e-6, "µs")):
        if abs(value) >= factor:
            return f"{value / factor:.{digits}g} {unit}"
    return f"{value / 1e-9:.{digits}g} ns"


def gigabytes(n_bytes: float) -> str:
    """``148.6 GB`` (decimal, as the evaluator's fit reasons)."""
    return f"{n_bytes / 1e9:.4g} GB"
