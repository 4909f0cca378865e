"""Memory footprint of a static batch: weights, KV cache, peak activations.

The formula lives in :mod:`hwdse.workload.footprint` (spatial chips size themselves with it too).
"""

from hwdse.workload.footprint import LOGIT_BYTES, Footprint, footprint

__all__ = ["Footprint", "footprint", "LOGIT_BYTES"]
