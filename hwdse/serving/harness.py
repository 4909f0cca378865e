"""How a closed-loop benchmark client sees a server: the terms measured TTFT has beyond the server's own.

A serving benchmark (``aiperf --concurrency C``, ``genai-perf``, ``sglang.bench_serving``) reports the
mean over the requests it measured, timed from when the client created each request. Three things of the
client and the deployment around the engine, not of the engine, enter that figure:

- ``client_wait``: some clients start a request's clock when it is queued, before one of the ``C``
  slots frees, so TTFT counts a wait of that many inter-completion intervals (``cycle / C``); it
  vanishes for a single client (``1 - 1/C``).
- ``start_wave``: all ``C`` clients send at once when the run starts, so the first ``C`` requests
  queue behind each other's prefills, ``(C - 1) / 2`` prompts on average. ``start_wave`` is the share
  of the measured requests that were in that wave (1 / the number of rounds the run lasts).
- ``latency_s``: a fixed time on every request's path that no engine step contains: the HTTP front end,
  chat template and tokenization, a serving frontend's routing, the first streamed chunk's way back
  (detokenization, server-sent events). It adds to TTFT, and the request holds its client's slot as
  long (it enters the closed loop's cycle).

:data:`SERVER` (all zero) is TTFT as the server sees it, the default of every serving model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hwdse._array import PLAIN

__all__ = ["SERVER", "Harness"]


@dataclass(frozen=True)
class Harness:
    """A benchmark client's observation terms (see the module docstring); numbers may be arrays."""

    client_wait: Any = 0.0   # inter-completion intervals counted in TTFT
    start_wave: Any = 0.0    # share of measured requests sent together at the start
    latency_s: Any = 0.0     # fixed request-path latency (s) outside the engine's steps

    def wait_s(self, cycle: Any, concurrency: Any) -> Any:
        """Client wait per request (s), for requests that cycle in ``cycle`` s at ``concurrency``."""
        if _none(self.client_wait):
            return 0.0
        return self.client_wait * cycle / concurrency * (1 - 1 / concurrency)

    def rate(self, server_ttft_s: Any, decode_s: Any, concurrency: Any) -> Any:
        """Requests/s ``concurrency`` clients send to a server that takes ``server_ttft_s`` to a request's
        first token and ``decode_s`` to the rest (Little's law over the cycle: client wait, request-path
        latency, server). At that rate a client sees TTFT ``concurrency / rate - decode_s``."""
        cycle = server_ttft_s + self.latency_s + decode_s
        return concurrency / (self.wait_s(cycle, concurrency) + cycle)

    def wave_s(self, prompt_s: Any, concurrency: Any) -> Any:
        """Mean extra TTFT (s) of the start wave, when the server clears one prompt per ``prompt_s`` s."""
        if _none(self.start_wave):
            return 0.0
        return self.start_wave * (concurrency - 1) / 2 * prompt_s


def _none(term: Any) -> bool:
    """Whether a term is zero for the whole sweep (a number, not an array of them)."""
    return (type(term) in PLAIN or np.ndim(term) == 0) and term == 0


SERVER = Harness()
