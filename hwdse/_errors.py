"""User-facing input errors: one line naming the file, the field and the reason."""

from __future__ import annotations

from pydantic import ValidationError

__all__ = ["HwdseError", "from_validation_error"]


class HwdseError(ValueError):
    """Bad input: ``where: field: reason`` on one line (the CLI prints it and exits 2)."""

    def __init__(self, where: str, field: str | None, reason: str) -> None:
        self.where, self.field, self.reason = where, field, reason
        parts = [p for p in (where, field, reason) if p]
        super().__init__(": ".join(parts))


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(root)"


def _msg(err: dict) -> str:
    msg = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    if err["type"] not in ("missing", "extra_forbidden") and "input" in err:
        value = err["input"]
        text = repr(value) if not hasattr(value, "shape") else f"array of shape {value.shape}"
        if len(text) > 60:
            text = text[:57] + "..."
        if "got" not in msg:
            msg += f", got {text}"
    return msg


def from_validation_error(exc: ValidationError, where: str) -> HwdseError:
    """Render a pydantic error as one line: ``file: a.b.c: reason; d.e: reason``."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    field = _loc(_strip_union_tags(first["loc"]))
    reason = _msg(first)
    if len(errors) > 1:
        rest = "; ".join(f"{_loc(_strip_union_tags(e['loc']))}: {_msg(e)}" for e in errors[1:3])
        more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
        reason = f"{reason}; {rest}{more}"
    return HwdseError(where, field, reason)


def _strip_union_tags(loc: tuple) -> tuple:
    """Drop pydantic's discriminator tags (``gpu`` in ``('gpu', 'memory')``) from a location."""
    return tuple(p for p in loc if not (isinstance(p, str) and p.startswith("function-")))
