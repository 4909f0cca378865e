"""User-facing input errors: one line naming the file, the field and the reason."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

__all__ = ["HwdseError", "from_validation_error"]


class HwdseError(ValueError):
    """Bad input: ``where: field: reason`` on one line (the CLI prints it and exits 2)."""

    def __init__(self, where: str, field: str | None, reason: str) -> None:
        self.where, self.field, self.reason = where, field, reason
        parts = [p for p in (where, field, reason) if p]
        super().__init__(": ".join(parts))

    def referenced_by(self, where: str, field: str) -> "HwdseError":
        """This error of a catalog entry or file, as an error of the ``field`` (or CLI option) naming it:
        ``study.toml: arch: file not found: arch/x.yaml``, ``--arch: unknown arch entry 'h10'; known: ...``."""
        return HwdseError(where, field, _as_reference(self))


def _as_reference(exc: HwdseError) -> str:
    if exc.field is None:  # the file as a whole: not found, unreadable
        return f"{exc.reason}: {exc.where}"
    if exc.field == "name":  # an unknown catalog name (the catalogs' convention)
        return exc.reason
    return str(exc)  # a field inside the referenced file


def _loc(loc: tuple, names: Mapping[str, str]) -> str:
    out = ""
    for i, part in enumerate(_strip_union_tags(loc)):
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + (names.get(str(part), str(part)) if i == 0 else str(part))
    return out or "(root)"


def _msg(err: dict) -> str:
    msg = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    inner = err.get("ctx", {}).get("error")
    if isinstance(inner, HwdseError):  # a validator that loads a catalog entry (memory.technology = "hbm9")
        msg = _as_reference(inner)
    if err["type"] not in ("missing", "extra_forbidden") and "input" in err:
        value = err["input"]
        text = repr(value) if not hasattr(value, "shape") else f"array of shape {value.shape}"
        if len(text) > 60:
            text = text[:57] + "..."
        if "got" not in msg and not (isinstance(value, str) and text in msg):  # a name the reason quotes
            msg += f", got {text}"
    return msg


def from_validation_error(exc: ValidationError, where: str, names: Mapping[str, str] | None = None) -> HwdseError:
    """Render a pydantic error as one line: ``file: a.b.c: reason; d.e: reason``.

    ``names`` renames top-level fields (``{"prompt": "--seq"}``: the CLI option that set them)."""
    errors = exc.errors(include_url=False)
    names = names or {}
    field = _loc(errors[0]["loc"], names)
    reason = _msg(errors[0])
    if len(errors) > 1:
        rest = "; ".join(f"{_loc(e['loc'], names)}: {_msg(e)}" for e in errors[1:3])
        more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
        reason = f"{reason}; {rest}{more}"
    return HwdseError(where, field, reason)


def _strip_union_tags(loc: tuple) -> tuple:
    """Drop pydantic's discriminator tags (``gpu`` in ``('gpu', 'memory')``) from a location."""
    return tuple(p for p in loc if not (isinstance(p, str) and p.startswith("function-")))
