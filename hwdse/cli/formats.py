"""``hwdse formats``: number-format selection reports (quality vs speed vs silicon)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from hwdse.cli.support import (
    MODE_HELP,
    Arch,
    Model,
    check_formats,
    check_scenario,
    model_and_arch,
    one_line_errors,
)
from hwdse.hardware._base import DEFAULT_MODE

__all__ = ["formats_app"]

formats_app = typer.Typer(help="Number-format selection: quality vs speed vs silicon.", no_args_is_help=True)


def _format_list(value: Optional[str]) -> Optional[list[str]]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@formats_app.command("report")
@one_line_errors
def formats_report(
        model: Model = "llama-3-8b", arch: Arch = "h100-sxm",
        formats: Annotated[Optional[str], typer.Option(help="comma-separated formats tried for weights, "
                                                       "activations and KV alike")] = None,
        weights: Annotated[Optional[str], typer.Option(help="comma-separated weight formats")] = None,
        activations: Annotated[Optional[str], typer.Option(help="comma-separated activation formats")] = None,
        kv: Annotated[Optional[str], typer.Option(help="comma-separated KV-cache formats")] = None,
        batch: Annotated[Optional[list[int]], typer.Option(
            help="batches of the operating regime (repeat); default 1, 8, 64, 512")] = None,
        prompt: int = 512, gen: int = 128,
        min_qsnr: Annotated[float, typer.Option("--min-qsnr", help="quality floor, dB QSNR")] = 25.0,
        floor: Annotated[str, typer.Option(help="tensor classes the floor applies to")] = "weights,activations",
        mode: Annotated[str, typer.Option(help=MODE_HELP)] = DEFAULT_MODE,
        study: Annotated[Optional[str], typer.Option(help="study TOML (hwdse.search schema); replaces the "
                                                     "options above")] = None,
        out: Annotated[str, typer.Option("--out", help="output folder")] = "format-report") -> None:
    """Candidates (weights x activations x KV): QSNR, matmul error, MAC cost, TTFT/TPOT/memory/energy,
    Pareto plots and the fastest candidate above the quality floor."""
    from hwdse.perf.format_regimes import BATCHES, format_regimes
    from hwdse.perf.format_selection import DEFAULT_CHOICES, candidates
    from hwdse.report.formats import study_arguments, write_format_report

    if study is not None:
        a = study_arguments(study)
        triples = candidates(a["choices"]["weights"], a["choices"]["activations"], a["choices"]["kv"])
        fields = dict(a["fields"])
        batches = batch or [int(fields.pop("batch", BATCHES[0]))]
        fields.pop("batch", None)
        ds = format_regimes(a["model"], a["arch"], triples, batches, min_qsnr_db=a.get("min_qsnr_db", min_qsnr),
                            floor_tensors=a.get("floor_tensors", tuple(_format_list(floor) or ())),
                            mode=a["mode"], scenario=a["scenario"], **fields)
    else:
        batches = batch or list(BATCHES)
        for b in batches:
            check_scenario(dict(batch=b, prompt=prompt, gen=gen))
        given = {t: _format_list(v) for t, v in (("formats", formats), ("weights", weights),
                                                 ("activations", activations), ("kv", kv))}
        for option, names in given.items():
            check_formats(f"--{option}", names or ())
        lists = [given[t] or given["formats"] or list(DEFAULT_CHOICES[t]) for t in ("weights", "activations", "kv")]
        ds = format_regimes(*model_and_arch(model, arch), candidates(*lists), batches, min_qsnr_db=min_qsnr,
                            floor_tensors=tuple(_format_list(floor) or ()), mode=mode, prompt=prompt, gen=gen)
    files = write_format_report(ds, out)
    print(f"recommended (weights/activations/KV): {ds.attrs['regimes']}")
    cautions = sorted({ds.attrs[k] for k in ds.attrs if k.startswith("recommendation_kernel_") and ds.attrs[k]})
    if cautions:
        print("caution: " + "; ".join(cautions))
    print(f"wrote {files['markdown'].name}, {files['html'].name}, {len(files) - 3} PNG figures and "
          f"{files['data'].name} in {out}")
