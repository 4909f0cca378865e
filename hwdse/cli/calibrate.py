"""``hwdse calibrate``: fit achieved-mode efficiencies (GPUs, spatial chips, serving engines) and report them."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from hwdse._errors import HwdseError
from hwdse.cli.support import one_line_errors

__all__ = ["calibrate"]


@one_line_errors
def calibrate(arch: Annotated[Optional[list[str]], typer.Option("--arch", help="GPU to fit (repeatable; default: "
                                                                  "a100-sxm-80gb h100-sxm h200 b200)")] = None,
              write: Annotated[bool, typer.Option("--write", help="write the efficiency blocks into arch/*.yaml")] = False,
              report: Annotated[bool, typer.Option("--report", help="write validation/report.md and figures from the "
                                                   "committed catalog (no fit unless --write)")] = False,
              out: Annotated[str, typer.Option(help="report directory")] = "validation",
              spatial: Annotated[bool, typer.Option("--spatial", help="fit the spatial chips' decode efficiencies to "
                                                    "validation/spatial_kernels.yaml and print them (no GPU fit)")]
              = False,
              serving: Annotated[bool, typer.Option("--serving", help="serving engines on aic_silicon_dev.csv: fit "
                                                    "(--write) or score; --report writes serving.md")] = False,
              power: Annotated[bool, typer.Option("--power", help="GPU board power while serving on validation/"
                                                  "gpu_serving_power.csv: fit (--write) and score")] = False,
              transfer: Annotated[bool, typer.Option("--transfer", help="efficiencies shared by every GPU, fitted "
                                                     "jointly (--write) or scored: leave-one-device-out errors")]
              = False,
              lodo: Annotated[bool, typer.Option("--lodo", help="leave-one-device-out errors beside in-sample ones: "
                                                 "kernels (the shared efficiencies) and serving TPOT/TTFT; --write "
                                                 "refits (minutes)")] = False) -> None:
    """Fit achieved-mode GPU efficiencies to measured kernels ($HWDSE_VALIDATION_DIR, default ../shared/validation)."""
    if lodo:
        from hwdse.calibration.serving_lodo import calibrate_serving_lodo
        from hwdse.calibration.transfer import calibrate_transfer

        from pathlib import Path

        print("\n".join(calibrate_transfer(write) + calibrate_serving_lodo(write, Path(out) if report else None)))
        return
    if transfer:
        from hwdse.calibration.transfer import calibrate_transfer

        print("\n".join(calibrate_transfer(write)))
        return
    if power:
        from hwdse.calibration.power import calibrate_power

        print("\n".join(calibrate_power(write)))
        return
    if serving:
        from pathlib import Path

        from hwdse.calibration.serving_fit import calibrate_serving

        print("\n".join(calibrate_serving(write, Path(out) if report else None)))
        return
    if spatial:
        from hwdse.calibration.spatial import report as spatial_report

        print("\n".join(spatial_report()))
        return
    from pathlib import Path

    from hwdse.calibration import kernels as cal

    if not report or write:
        names = arch or list(cal.ARCHS)
        unknown = sorted(set(names) - set(cal.ARCHS))
        if unknown:
            raise HwdseError("--arch", None, f"no calibration data for {unknown[0]!r}; calibrated: {', '.join(cal.ARCHS)}")
        fitted = cal.calibrate(names)
        for name, fit in fitted.items():
            print(f"{name}: {fit.efficiency['source']}")
            if name not in cal.DERIVED:
                print("\n".join(cal.estimate_lines(fit)))
        if write:
            for path in cal.write_catalog({name: fit.efficiency for name, fit in fitted.items()}):
                print(f"wrote {path}")
    if report:
        from hwdse.calibration.report import write_report

        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        write_report(folder / "report.md", folder / "figures")
        print(f"wrote {folder / 'report.md'} and {folder / 'figures'}")
