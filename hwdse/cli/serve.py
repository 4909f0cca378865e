"""``hwdse serve``: one serving point (continuous batching) of a model on a system."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from hwdse._errors import HwdseError
from hwdse.cli.support import (
    MODE_HELP,
    check_formats,
    check_mode,
    duration,
    loaded,
    model_and_arch,
    one_line_errors,
)
from hwdse.hardware._base import DEFAULT_MODE

__all__ = ["serve"]

Positive = dict(min=1)


@one_line_errors
def serve(arch: Annotated[str, typer.Option("--arch", help="arch catalog name or YAML path")] = "h100-sxm",
          model: Annotated[str, typer.Option("--model", help="bundled model name or a config.json path")] = "llama-3-8b",
          concurrency: Annotated[Optional[float], typer.Option(help="closed loop: requests in flight", min=1)] = None,
          arrival_rate: Annotated[Optional[float], typer.Option(help="open loop: Poisson requests/s", min=0)] = None,
          isl: Annotated[int, typer.Option(help="input tokens per request", **Positive)] = 1024,
          osl: Annotated[int, typer.Option(help="output tokens per request", min=2)] = 1024,
          engine: Annotated[str, typer.Option(help="arch/engines entry: trtllm, vllm, sglang")] = "trtllm",
          tp: Annotated[Optional[int], typer.Option("--tp", help="tensor-parallel GPUs", **Positive)] = None,
          decode_arch: Annotated[Optional[str], typer.Option(help="disaggregated: the decode pool's system "
                                                             "(--arch is then the prefill pool)")] = None,
          prefill_instances: Annotated[int, typer.Option(help="disaggregated: prefill pool size", **Positive)] = 1,
          decode_instances: Annotated[int, typer.Option(help="disaggregated: decode pool size", **Positive)] = 1,
          link_GBps: Annotated[Optional[float], typer.Option("--link-GBps", help="disaggregated: KV link GB/s",
                                                            min=0)] = None,
          weights: str = "bf16", activations: Optional[str] = None, kv: Optional[str] = None,
          ttft_slo_ms: Annotated[float, typer.Option(help="TTFT objective for goodput (ms)", min=0)] = float("inf"),
          tpot_slo_ms: Annotated[float, typer.Option(help="TPOT objective for goodput (ms)", min=0)] = float("inf"),
          mode: Annotated[str, typer.Option(help=MODE_HELP)] = DEFAULT_MODE,
          draft_tokens: Annotated[Optional[int], typer.Option(help="speculative decoding: tokens drafted per step",
                                                              **Positive)] = None,
          acceptance: Annotated[float, typer.Option(help="speculative decoding: per-token acceptance probability",
                                                    min=0, max=1)] = 0.7,
          draft: Annotated[Optional[str], typer.Option(help="speculative decoding: draft model (default: the "
                                                       "target's own MTP module)")] = None,
          as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Steady-state serving: TTFT, TPOT, throughput per device and goodput under SLOs (aggregated, or
    disaggregated with --decode-arch)."""
    from hwdse.serving import load_engine, serve_disaggregated
    from hwdse.serving import serve as run
    from hwdse.serving.disagg import LINK_BANDWIDTH_GBPS

    if (concurrency is None) == (arrival_rate is None):
        raise HwdseError("--concurrency/--arrival-rate", None, "give exactly one")
    check_mode(mode)
    for option, name in (("--weights", weights), ("--activations", activations), ("--kv", kv)):
        check_formats(option, [name] if name else [])
    model_spec, system = model_and_arch(model, arch)
    if tp is not None:
        from hwdse.hardware.systems.multi import with_parallelism

        system = with_parallelism(system, tp)
    try:
        eng = load_engine(engine)
    except HwdseError as exc:
        raise exc.referenced_by("--engine", None) from None
    common = dict(concurrency=concurrency, arrival_rate=arrival_rate, isl=isl, osl=osl, engine=eng, weights=weights,
                  activations=activations, kv=kv, mode=mode, ttft_slo_s=ttft_slo_ms / 1e3, tpot_slo_s=tpot_slo_ms / 1e3)
    if draft_tokens is not None:  # speculation runs where the decode steps run
        from hwdse.serving.speculative import Speculative

        if draft is not None:
            from hwdse.workload import load_model

            loaded("--draft", load_model, draft)
        common["speculative"] = Speculative(draft_tokens=draft_tokens, acceptance=acceptance, draft=draft)
    if decode_arch is None:
        ds = run(model_spec, system, **common)
    else:
        from hwdse.hardware import load_arch

        decode_system = loaded("--decode-arch", load_arch, decode_arch)
        ds = serve_disaggregated(model_spec, system, decode_system, prefill_instances=prefill_instances,
                                 decode_instances=decode_instances, link_bandwidth_GBps=link_GBps or LINK_BANDWIDTH_GBPS,
                                 **common)
    out = {"model": ds.attrs["model"], "arch": ds.attrs["arch"], "engine": ds.attrs["engine"], "mode": ds.attrs["mode"],
           "basis": ds.attrs["basis"], "traffic": ds.attrs["traffic"], **{k: ds[k].item() for k in ds.data_vars}}
    out.update(stable=bool(out["stable"]), meets_slo=bool(out["meets_slo"]))
    if as_json:
        print(json.dumps(out, indent=1))
        return
    print(f"{out['model']} on {out['arch']} ({out['engine']}, {out['mode']}, basis {out['basis']}, {out['traffic']} loop)")
    print(f"  TTFT {duration(out['ttft_s'])}, TPOT {duration(out['tpot_s'])}, {out['tok_s_per_user']:.4g} tok/s/user")
    print(f"  throughput {out['throughput_tok_s']:.4g} tok/s ({out['tok_s_per_device']:.4g} per device), "
          f"goodput {out['goodput_tok_s_per_device']:.4g} tok/s/device")
    where = (f"prefill chunks in {out['prefill_step_share'] * 100:.0f} % of steps" if decode_arch is None else
             f"prefill pool {out['prefill_utilization'] * 100:.0f} % busy, KV transfer {duration(out['kv_transfer_s'])}")
    print(f"  {out['requests_decoding']:.3g} requests decoding (limit {out['max_requests']:.0f}), {where}")
    if out["max_requests"] < 1:
        print("  does not fit: no request's KV cache fits next to the weights on a "
              f"{'decode ' if decode_arch else ''}device (hwdse evaluate shows the memory footprint)")
