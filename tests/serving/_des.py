"""A small discrete-event (step-level) simulation of a continuous-batching engine: a test helper that
checks the closed-form steady state of :mod:`hwdse.serving.steady`, not a product path.

Closed loop, no client wait: a finished request is replaced by a new one that arrives during the next
step (the engine has started it already; the arrival is counted mid-step, the closed form's half-step
convention) and queues for prefill from the step after. Each step decodes one token for every decoding request and prefills the first queued prompt:
whole, or (chunked prefill) as many of its remaining tokens as the step's token budget leaves after
the decode tokens; a request decodes from the step after its last chunk. Step times come from the
same :class:`~hwdse.serving.step.StepModel` as the closed form.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from functools import lru_cache

import numpy as np


def simulate(step_s: Callable[[int, int], float], concurrency: int, isl: int, osl: int, budget: int | None = None,
             steps: int = 12000, warmup: int = 2000) -> dict[str, float]:
    """``step_s(g, p)``: seconds of a step with ``g`` decoding requests and ``p`` prompt tokens;
    ``budget``: the token budget of chunked prefill (None: whole prompts). Returns output tokens/s,
    the mean TPOT and the mean TTFT (from joining the prefill queue) of requests after ``warmup`` steps."""
    step_s = lru_cache(maxsize=None)(step_s)
    decode_steps = osl - 1
    queue = deque(range(concurrency))          # requests waiting for (the rest of) their prefill
    left = dict.fromkeys(queue, isl)           # queued request -> prompt tokens still to prefill
    queued = dict.fromkeys(queue, 0.0)         # queued request -> time it joined the queue
    remaining: dict[int, int] = {}             # decoding request -> decode steps left
    started: dict[int, float] = {}             # request -> time its first token came out
    arriving: list[int] = []                   # replacements arriving during the step being run
    next_id, now, t0 = concurrency, 0.0, None
    tpots, ttfts, done_tokens = [], [], 0
    for step in range(steps):
        if step == warmup:
            t0, done_tokens = now, 0
        g = len(remaining)
        head = queue[0] if queue else None
        chunk = 0 if head is None else left[head] if budget is None else min(left[head], max(budget - g, 1))
        duration = step_s(g, chunk)
        for rid in arriving:
            queue.append(rid)
            left[rid], queued[rid] = isl, now + duration / 2
        arriving = []
        now += duration
        finished = [rid for rid in remaining if remaining[rid] == 1]
        for rid in remaining:
            remaining[rid] -= 1
        for rid in finished:
            del remaining[rid]
            if t0 is not None and started[rid] >= t0:
                tpots.append((now - started.pop(rid)) / decode_steps)
                done_tokens += osl
            arriving.append(next_id)
            next_id += 1
        if head is not None:
            left[head] -= chunk
            if left[head] == 0:
                queue.popleft()
                remaining[head], started[head] = decode_steps, now
                if t0 is not None:
                    ttfts.append(now - queued[head])
    return {"throughput_tok_s": done_tokens / (now - t0), "tpot_s": float(np.mean(tpots)),
            "ttft_s": float(np.mean(ttfts))}
