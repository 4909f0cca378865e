"""The ``hwdse`` command. Thin: parse options, call the library, print; errors are one line, exit 2."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from hwdse._errors import HwdseError
from hwdse.cli.support import (
    MODE_HELP,
    Arch,
    AsJson,
    Model,
    OneLineGroup,
    check_formats,
    check_mode,
    check_scenario,
    duration,
    gigabytes,
    loaded,
    model_and_arch,
    one_line_errors,
    si,
)
from hwdse.hardware._base import DEFAULT_MODE

app = typer.Typer(help="Hardware design-space exploration for LLM inference.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False, cls=OneLineGroup)
catalog_app = typer.Typer(help="List and show catalog entries.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
console = Console()



@app.command()
@one_line_errors
def roofline(arch: Arch = "a6000", model: Model = "llama-2-7b", batch: int = 1, seq: int = 2048,
             phase: Annotated[Optional[str], typer.Option(help="prefill or decode (default both)")] = None,
             weights: str = "fp16", activations: str = "fp16", kv: str = "fp16",
             flash: Annotated[bool, typer.Option("--flash", help="fused FlashAttention")] = False,
             as_json: AsJson = False) -> None:
    """Per-operator roofline of one prefill pass (batch x seq) and one decode step (KV = seq)."""
    from hwdse.perf import roofline as run
    from hwdse.perf import roofline_rows

    if phase not in (None, "prefill", "decode"):
        raise HwdseError("--phase", None, f"must be prefill or decode, got {phase!r}")
    check_scenario(dict(batch=batch, prompt=seq, weights=weights, activations=activations, kv=kv), {"prompt": "--seq"})
    ds = run(*model_and_arch(model, arch), batch=batch, seq=seq, weights=weights, activations=activations, kv=kv,
             flash_attention=flash)
    rows = roofline_rows(ds, phase)
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    table = Table(title=f"{ds.attrs['model']} on {ds.attrs['arch']}, batch {batch}, seq {seq} (per instance; "
                        "layer ops are per layer)")
    for col in ("op", "phase", "ops", "bytes", "intensity", "attainable", "bound", "time"):
        text = col in ("op", "phase", "bound")
        table.add_column(col, justify="left" if text else "right", no_wrap=not text)
    for r in rows:
        table.add_row(r["name"], r["phase"], si(r["ops"]), si(r["bytes"], "B"), f"{r['intensity']:.3g}",
                      si(r["attainable_ops_per_s"], "op/s"), r["bound"], duration(r["time_s"]))
    console.print(table)


@app.command()
@one_line_errors
def evaluate(arch: Arch = "h100-sxm", model: Model = "llama-2-7b",
             batch: int = 1, prompt: int = 512, gen: int = 128,
             scenario: Annotated[Optional[str], typer.Option(help="named scenario (chat, rag, ...)")] = None,
             weights: str = "fp16", activations: str = "fp16", kv: str = "fp16",
             expert_weights: Annotated[Optional[str], typer.Option("--expert-weights", help="MoE experts' weight "
                                                                   "format (default: --weights)")] = None,
             flash: Annotated[bool, typer.Option("--flash/--unfused", help="fused attention (default, as engines run it) "
                                              "or the unfused convention")] = True,
             mode: Annotated[str, typer.Option(help=MODE_HELP)] = DEFAULT_MODE,
             tp: Annotated[Optional[int], typer.Option("--tp", help="tensor-parallel GPUs (multi-gpu system)")] = None,
             pp: Annotated[Optional[int], typer.Option("--pp", help="pipeline stages (multi-gpu system)")] = None,
             ep: Annotated[Optional[int], typer.Option("--ep", help="expert groups over the tp devices (a divisor of "
                                                       "tp; experts tensor-parallel over tp/ep)")] = None,
             attention_dp: Annotated[Optional[int], typer.Option("--attention-dp", help="data-parallel groups over "
                                                                 "the tp devices for attention and dense layers "
                                                                 "(a divisor of tp)")] = None,
             as_json: AsJson = False) -> None:
    """TTFT, TPOT, end-to-end latency, throughput and memory of one static batch."""
    from hwdse.hardware.systems.multi import with_parallelism
    from hwdse.perf import evaluate as run
    from hwdse.perf import fit_reason
    from hwdse.workload import scenario as named_scenario

    check_mode(mode)
    fields = dict(batch=batch, prompt=prompt, gen=gen, weights=weights, activations=activations, kv=kv)
    check_scenario(fields)
    if expert_weights is not None:
        check_formats("--expert-weights", [expert_weights])
        fields["expert_weights"] = expert_weights
    spec, system = model_and_arch(model, arch)
    degrees = {"ep": ep, "attention_dp": attention_dp}
    if tp is not None or pp is not None or any(v is not None for v in degrees.values()):
        # wrap a GPU (or re-degree a multi-gpu arch) on the fly; a lone GPU with --ep N spans N devices
        span = max((v for v in degrees.values() if v is not None), default=1)
        system = with_parallelism(system, tp if tp is not None or getattr(system, "tp", 1) > 1 else span, pp,
                                  **degrees)
    if scenario is not None:  # a named scenario keeps its own prompt and gen lengths
        scenario = loaded("--scenario", named_scenario, scenario)
        fields = {k: v for k, v in fields.items() if k not in ("prompt", "gen")}
    ds = run(spec, system, scenario, mode=mode, detail=True, flash_attention=flash, **fields)
    mode = ds.attrs["mode"]  # auto resolved
    out: dict[str, Any] = {"model": ds.attrs["model"], "arch": ds.attrs["arch"], "mode": mode, "basis": ds.attrs["basis"]}
    out.update({k: ds[k].item() for k in ds.data_vars if ds[k].ndim == 0})
    out["fits"] = bool(out["fits"])
    out["fit_reason"] = fit_reason(ds)
    out["infeasible_reason"] = ds.attrs.get("infeasible_reason", "")
    for key, phase in (("placement", "decode"), ("prefill_placement", "prefill")):  # op -> unit (gpu, pim, ...)
        out[key] = {str(o): str(u) for o, u in zip(ds.op.values, ds.op_unit.sel(phase=phase).values)}
    if as_json:
        print(json.dumps(out, indent=1))
        return
    table = Table(title=f"{out['model']} on {out['arch']} ({mode}, basis {out['basis']})", show_header=False)
    time, rate, util = (lambda s: duration(s, 4)), "{:.4g} tok/s".format, "{:.3f}".format
    for key, fmt in (("ttft_s", time), ("tpot_s", time), ("e2e_s", time), ("throughput_tok_s", rate),
                     ("tok_s_per_user", rate), ("devices", "{:g}".format), ("memory_bytes", gigabytes),
                     ("capacity_bytes", gigabytes), ("fits", str), ("decode_bw_util", util),
                     ("prefill_compute_util", util), ("energy_j_per_token", "{:.4g} J".format)):
        table.add_row(key, fmt(out[key]))
    if out["fit_reason"]:
        table.add_row("fit_reason", out["fit_reason"])
    console.print(table)


@catalog_app.command("list")
@one_line_errors
def catalog_list(kind: Annotated[Optional[str], typer.Argument(help="arch, memory, formats, models")] = None) -> None:
    """List catalog entries."""
    from hwdse._catalog import names

    kinds = ("arch", "memory", "formats", "models")
    if kind is not None and kind not in kinds:
        raise HwdseError("catalog", None, f"unknown catalog {kind!r}; expected one of {', '.join(kinds)}")
    for k in [kind] if kind else kinds:
        print(f"{k}: {' '.join(names(k))}")


@catalog_app.command("show")
@one_line_errors
def catalog_show(name: str, as_json: AsJson = False) -> None:
    """Show one entry (searched in arch, memory, formats, models)."""
    from hwdse._catalog import locate, names, read

    for kind in ("arch", "memory", "formats", "models"):
        if name in names(kind):
            data = read(locate(kind, name))
            print(json.dumps(data, indent=1) if as_json else _yaml(data))
            return
    raise HwdseError("catalog", "name", f"no entry named {name!r} in arch, memory, formats or models")


def _yaml(data: dict) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, width=110)



# ---------------------------------------------------------------------------------------------
# hwdse study: run / worker / sweep / schema (Optuna studies and grid sweeps, hwdse.search)
# ---------------------------------------------------------------------------------------------
study_app = typer.Typer(help="Design-space studies: Optuna trials, grid sweeps, scale-out workers.",
                        no_args_is_help=True)
app.add_typer(study_app, name="study")


def _quiet_optuna() -> None:
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


@contextmanager
def _study_progress(total: int, label: str, quiet: bool) -> Iterator[Optional[Callable[[int, Optional[float]], None]]]:
    """A rich progress bar with the best feasible first objective so far; drawn from the first update on
    (a study that fails to start prints its error alone)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    if quiet:
        yield None
        return
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("{task.fields[best]}"), console=Console(stderr=True))
    task = bar.add_task(label, total=total, best="")

    def update(done: int, best: Optional[float]) -> None:
        bar.start()
        bar.update(task, completed=done, **({"best": f"best {best:.4g}"} if best is not None else {}))

    try:
        yield update
    finally:
        if bar.live.is_started:
            bar.stop()


def _finish_study(run: Any) -> None:
    from hwdse.report import write_report
    from hwdse.search.results import best_detail, best_serving_curves
    from hwdse.search.review import baselines, binding, gap, pools, tornado

    files = dict(run.files)
    review = {"baselines": baselines(run.space, run.results), "binding": binding(run.space, run.results),
              "tornado": tornado(run.space, run.results), "pools": pools(run.space, run.results),
              "gap": gap(run.space, run.results)}
    files.update(write_report(run.results, run.out, run.study, best_detail(run.space, run.results),
                              best_serving_curves(run.space, run.results), review))
    ds = run.results
    print(f"{ds.sizes['trial']} points, {int(ds.feasible.values.astype(bool).sum())} feasible, "
          f"{int(ds.pareto.values.sum())} on the Pareto front")
    for key in ("results", "best", "report_md", "report_html"):
        print(f"wrote {files[key]}")


@study_app.command("run")
@one_line_errors
def study_run(study: Annotated[str, typer.Argument(help="study TOML path or studies/ catalog name")],
              trials: Annotated[Optional[int], typer.Option("--trials", min=0, help="trials to add (default: n_trials; "
                                                            "0: rebuild the outputs of a stored study)")] = None,
              storage: Annotated[Optional[str], typer.Option(help="Optuna storage URL (default sqlite:///OUT/study.db)")] = None,
              out: Annotated[Optional[str], typer.Option("--out", help="output folder (default results/<study name>)")] = None,
              jobs: Annotated[int, typer.Option("--jobs", min=1, help="worker processes on the storage")] = 1,
              batch: Annotated[Optional[int], typer.Option(min=1, help="trials per vectorized evaluation")] = None,
              dask: Annotated[Optional[str], typer.Option(help="grid studies: scheduler address or 'local'")] = None,
              quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar")] = False) -> None:
    """Run or resume a study; writes results.nc, best.csv, figures/ and report.md/.html into OUT."""
    from hwdse.search import grid_size, load_study, run_study

    _quiet_optuna()
    space = load_study(study)
    grid = space.spec.sampler.name == "grid"
    total = grid_size(space) if grid else space.spec.n_trials if trials is None else trials
    try:
        with _study_progress(total, space.spec.name, quiet or grid) as update:
            run = run_study(space, out, n_trials=trials, storage=storage, jobs=jobs, batch=batch, dask=dask,
                            progress=update)
    except KeyboardInterrupt:
        print("hwdse: interrupted; completed trials are stored, rerun the same command to resume", file=sys.stderr)
        raise typer.Exit(130) from None
    _finish_study(run)


@study_app.command("worker")
@one_line_errors
def study_worker(storage: Annotated[str, typer.Option(help="shared storage, e.g. postgresql+psycopg2://u@db/hwdse")],
                 study: Annotated[str, typer.Option("--study", help="study name (created by `hwdse study run`)")],
                 trials: Annotated[int, typer.Option("--trials", min=1, help="trials this worker runs")] = 100,
                 heartbeat: Annotated[int, typer.Option(min=1, help="heartbeat interval, s")] = 60,
                 grace: Annotated[Optional[int], typer.Option(min=1, help="grace period before a trial is stale, s "
                                                                           "(default 2 x heartbeat)")] = None,
                 seed: Annotated[Optional[int], typer.Option(min=0, help="sampler seed (default: none)")] = None,
                 quiet: Annotated[bool, typer.Option("--quiet")] = False) -> None:
    """Join a stored study from any machine (the spec is read from the storage)."""
    from hwdse.search import run_worker

    _quiet_optuna()
    with _study_progress(trials, f"{study} worker", quiet) as update:
        run_worker(storage, study, trials, heartbeat_interval=heartbeat, grace_period=grace, seed=seed,
                   progress=update)


@study_app.command("sweep")
@one_line_errors
def study_sweep(study: Annotated[str, typer.Argument(help="study TOML path or studies/ catalog name")],
                out: Annotated[Optional[str], typer.Option("--out")] = None,
                dask: Annotated[Optional[str], typer.Option(help="dask scheduler address, or 'local'")] = None) -> None:
    """Evaluate the study's whole grid vectorized (sweep.nc over the parameter dims, results.nc, report)."""
    from hwdse.search import load_study, run_study, space_from_spec

    _quiet_optuna()
    space = load_study(study)
    data = space.spec.model_dump()
    data["sampler"] = {**data["sampler"], "name": "grid"}
    _finish_study(run_study(space_from_spec(data, space.where), out, dask=dask))


@study_app.command("schema")
@one_line_errors
def study_schema() -> None:
    """Print the JSON schema of study files."""
    from hwdse.search import schema

    print(json.dumps(schema(), indent=1))


# ---- hwdse report pim-vs-gpu (issue #5: PIM versus GPU for decode) --------------------------------
report_app = typer.Typer(help="Study reports (figures + Markdown/HTML).", no_args_is_help=True)
app.add_typer(report_app, name="report")


@report_app.command("pim-vs-gpu")
@one_line_errors
def report_pim_vs_gpu(
        study: Annotated[str, typer.Option(help="study file or studies/ name (batch and context grids, output "
                                                "tokens, mode)")] = "pim-vs-gpu-decode",
        out: Annotated[str, typer.Option("--out", help="output folder")] = "pim-vs-gpu",
        model: Annotated[Optional[list[str]], typer.Option("--model", help="models (repeat); default: "
                                                           "llama-2-70b, llama-3-70b, gpt3-175b")] = None,
        context: Annotated[Optional[list[int]], typer.Option(
            "--context", help="serving view's context lengths (repeat); default: the study's prompt grid")] = None
) -> None:
    """PIM versus GPU for decode: served as deployed (each system's best operating point per model x context x
    traffic tier, goodput per kW with bands, verdicts), and the static-batch decode view."""
    from hwdse.report.pim import write_report
    from hwdse.report.pim_serving import serving_comparison
    from hwdse.report.pim_study import MODELS, pim_vs_gpu, study_grid
    from hwdse.workload import load_model

    for name in model or ():
        loaded("--model", load_model, name)
    grid = study_grid(study)
    models = model or MODELS
    serving = serving_comparison(models, context or grid["prompt"], osl=int(grid["gen"]), mode=grid["mode"])
    static = pim_vs_gpu(grid["batch"], grid["prompt"], int(grid["gen"]), models, mode=grid["mode"])
    path = write_report(serving, static, out)
    print(f"wrote {path} (figures, report.html, serving.nc and results.nc in {path.parent})")


from hwdse.cli.calibrate import calibrate  # noqa: E402  (registered here, defined beside the CLI helpers)
from hwdse.cli.formats import formats_app  # noqa: E402
from hwdse.cli.kernel import kernel  # noqa: E402
from hwdse.cli.serve import serve  # noqa: E402

app.command()(calibrate)
app.command()(kernel)
app.command()(serve)
app.add_typer(formats_app, name="formats")


def main() -> None:  # pragma: no cover - console entry point alias
    app()


if __name__ == "__main__":
    app()
