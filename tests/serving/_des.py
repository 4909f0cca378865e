"""A small discrete-event (step-level) simulation of a continuous-batching engine: a test helper that
checks the closed-form steady state of :mod:`hwdse.serving.steady`, not a product path.

Closed loop, no client wait: a finished request is replaced at once by a new one that queues for
prefill. Each step decodes one token for every decoding request and prefills the first queued prompt
whole (``isl`` tokens, within the step's budget); that request decodes from the next step on. Step
times come from the same :class:`~hwdse.serving.step.StepModel`, tabulated over the decode count.
"""

from __future__ import annotations

from collections import deque

import numpy as np


def simulate(t_decode: np.ndarray, t_mixed: np.ndarray, concurrency: int, osl: int, steps: int = 12000,
             warmup: int = 2000) -> dict[str, float]:
    """``t_decode[g]`` / ``t_mixed[g]``: seconds of a step with ``g`` decoding requests, without / with a
    prompt. Returns output tokens/s and the mean TPOT of requests completed after ``warmup`` steps."""
    decode_steps = osl - 1
    queue = deque(range(concurrency))          # requests waiting for prefill
    remaining: dict[int, int] = {}             # decoding request -> decode steps left
    started: dict[int, float] = {}             # request -> time its first token came out
    next_id, now, t0 = concurrency, 0.0, None
    tpots, done_tokens = [], 0
    for step in range(steps):
        if step == warmup:
            t0, done_tokens = now, 0
        g = len(remaining)
        prefilled = queue.popleft() if queue else None
        now += t_mixed[g] if prefilled is not None else t_decode[g]
        finished = []
        for rid in remaining:
            remaining[rid] -= 1
            if remaining[rid] == 0:
                finished.append(rid)
        for rid in finished:
            del remaining[rid]
            if t0 is not None and started[rid] >= t0:
                tpots.append((now - started.pop(rid)) / decode_steps)
                done_tokens += osl
            queue.append(next_id)
            next_id += 1
        if prefilled is not None:
            remaining[prefilled] = decode_steps
            started[prefilled] = now
    return {"throughput_tok_s": done_tokens / (now - t0), "tpot_s": float(np.mean(tpots))}
