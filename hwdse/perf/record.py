"""The light result of one evaluation or serving solve: numpy values by name, no xarray.

:func:`hwdse.perf.evaluate_record` and :func:`hwdse.serving.serve_record` return a :class:`Record`;
:func:`hwdse.evaluate` and :func:`hwdse.serve` compute the same record and wrap it in an
``xarray.Dataset`` (same variable names, units and long names as ``attrs``, the record's ``attrs``).
Wrapping costs milliseconds per call; a loop over scalar design points should read records.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Record"]


@dataclass(frozen=True, eq=False)
class Record(Mapping[str, Any]):
    """Variables of one result as numbers or numpy arrays (``record["tpot_s"]``), with their metadata.

    ``variables``: name -> (value, units, long name); ``attrs``: the Dataset's attributes (model, arch,
    mode, basis, ... as strings). A read-only mapping from variable name to value.
    """

    variables: Mapping[str, tuple[Any, str, str]]
    attrs: Mapping[str, str]

    def __getitem__(self, name: str) -> Any:
        return self.variables[name][0]

    def __iter__(self) -> Iterator[str]:
        return iter(self.variables)

    def __len__(self) -> int:
        return len(self.variables)

    def units(self, name: str) -> str:
        """Units of variable ``name`` (``"s"``, ``"token/s"``, ``"1"``; ``""`` for booleans)."""
        return self.variables[name][1]
