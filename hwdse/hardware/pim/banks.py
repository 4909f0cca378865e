"""Achieved bank efficiency of PIM units from DRAM timing: the ``derived`` basis of a PIM device.

A PIM unit streams rows out of its banks. Per activation: ACT, ``tRCD`` before the first column,
the columns at the unit's access interval (its ``clock_GHz`` x ``power_derate``: tCCD, stretched where
a power limit says so), ``tRTP`` after the last, the row open at least ``tRAS``, then PRE and ``tRP``
before the next ACT. How much of that row overhead hides depends on where the units sit:

* ``bank``: all-bank mode. Every bank of a channel activates, streams and precharges in lockstep (the
  AttAcc artifact's HBM3-PIM Ramulator2 model: ACTAB -> MACAB ``tRCD``, MACAB -> MACAB ``tCCD_AB``,
  MACAB -> PREA ``tRTP``, ACTAB -> PREA ``tRAS``, PREA -> ACTAB ``tRP``; no ``tFAW`` on an all-bank
  ACT, whose power cost is the units' ``power_derate``). Nothing hides the overhead; a unit serving
  several banks streams all their open rows per activation;
* ``bank_group`` / ``buffer_die``: a unit reads one of its banks while the others activate (the
  AttAcc traces spread consecutive rows over a group's banks), so the overhead hides until one
  bank's row cycle over the unit's banks, or the four-activation window ``tFAW`` shared by the units
  of one window, outlasts streaming a row.

All-bank refresh (``tRFC`` every ``tREFI``) stops every unit. The efficiency is streaming time over
elapsed time; the optimistic bound (all overhead hidden, no refresh) is 1, the roofline.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from hwdse._catalog import Spec, catalog_dir, load_in
from hwdse._params import Number, count, quantity

__all__ = ["DRAMTiming", "load_dram_timing", "bank_efficiency", "row_efficiency", "refresh_efficiency"]

NS = 1e-9
FOLDER = "arch/dram-timing"


class DRAMTiming(Spec):
    """Bank timing of one memory technology (ns) and the bank organisation PIM units see
    (``arch/dram-timing/<technology>.yaml``)."""

    name: str
    description: str = ""
    page_bytes: quantity(gt=0, unit="B") = Field(description="row (page) of one bank")
    banks: count() = Field(description="banks per stack/chip")
    banks_per_window: count() = Field(description="banks sharing one four-activation window (tFAW)")
    tRCD_ns: quantity(ge=0, unit="ns") = Field(description="ACT to first column")
    tRP_ns: quantity(ge=0, unit="ns") = Field(description="PRE to next ACT")
    tRAS_ns: quantity(ge=0, unit="ns") = Field(description="ACT to PRE, at least")
    tRTP_ns: quantity(ge=0, unit="ns") = Field(description="last column to PRE")
    tFAW_ns: quantity(ge=0, unit="ns") = Field(description="window holding at most four ACTs")
    tRFC_ns: quantity(ge=0, unit="ns") = Field(description="all-bank refresh")
    tREFI_ns: quantity(gt=0, unit="ns") = Field(description="refresh interval")
    sources: dict[str, str]

    @model_validator(mode="after")
    def _refresh_fits(self) -> "DRAMTiming":
        if np.any(np.asarray(self.tRFC_ns) >= np.asarray(self.tREFI_ns)):
            raise ValueError(f"tRFC_ns ({self.tRFC_ns}) must be below tREFI_ns ({self.tREFI_ns}): refresh would "
                             "never end")
        return self


@cache
def load_dram_timing(technology: str) -> DRAMTiming | None:
    """``arch/dram-timing/<technology>.yaml``; None when the catalog has no timing for it."""
    if not (catalog_dir("arch") / "dram-timing" / f"{technology}.yaml").is_file():
        return None
    return load_in(FOLDER, "DRAM timing", technology, DRAMTiming)


def _row_cycle_s(t: DRAMTiming, columns: Number, column_s: Number) -> Number:
    """Seconds from one ACT of a bank to its next: open for the columns (and ``tRAS``), then ``tRP``."""
    open_s = np.maximum(t.tRAS_ns * NS, (t.tRCD_ns + t.tRTP_ns) * NS + (columns - 1) * column_s)
    return open_s + t.tRP_ns * NS


def row_efficiency(t: DRAMTiming, placement: str, units: Number, access_bytes: Number, column_s: Number) -> Number:
    """Fraction of a unit's time spent streaming columns, activations and precharges counted; ``units``
    per stack/chip, each reading ``access_bytes`` per column access every ``column_s`` seconds."""
    banks_per_unit = np.maximum(t.banks / units, 1.0)
    per_row = t.page_bytes / access_bytes
    if placement == "bank":  # lockstep: every bank of the unit opens at once, nothing overlaps
        columns = per_row * banks_per_unit
        return columns * column_s / _row_cycle_s(t, columns, column_s)
    stream = per_row * column_s
    cycle = _row_cycle_s(t, per_row, column_s) / banks_per_unit
    window = t.tFAW_ns * NS * (t.banks_per_window / banks_per_unit) / 4  # seconds per ACT a unit may issue
    return stream / np.maximum(np.maximum(stream, cycle), window)


def refresh_efficiency(t: DRAMTiming) -> Number:
    """Fraction of time no all-bank refresh blocks the banks."""
    return 1.0 - t.tRFC_ns / t.tREFI_ns


def bank_efficiency(t: DRAMTiming, placement: Literal["bank", "bank_group", "buffer_die"], units: Number,
                    access_bytes: Number, column_s: Number) -> Number:
    """Fraction of the units' peak (column-rate) throughput they sustain: rows and refresh."""
    return row_efficiency(t, placement, units, access_bytes, column_s) * refresh_efficiency(t)
