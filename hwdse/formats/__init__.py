"""Number formats: minifloats, integers, flint, OCP MX block formats and NVFP4.

``get(name)`` returns a format with ``name``, ``bits_per_element`` (block scales included),
``compute`` (the multiplier class a PE needs) and ``quantize(x, axis=-1)``; ``mac_cost`` gives
its 45 nm MAC area and energy; the metrics compare a tensor with its quantized copy;
``sources`` generates test tensors (Gaussian, Laplace, Student-t, LLM-like activations, MiniLM weights).
"""

from hwdse.formats import _sources as sources
from hwdse.formats._cost import MacCost, mac_cost
from hwdse.formats._flint import AntChoice, ant_select
from hwdse.formats._format import Format
from hwdse.formats._quality import matmul_rel_error, max_error, mse, qsnr_db, quality_table
from hwdse.formats._registry import get, names
from hwdse.formats._spec import Compute

__all__ = ["AntChoice", "Compute", "Format", "MacCost", "ant_select", "get", "mac_cost", "matmul_rel_error",
           "max_error", "mse", "names", "qsnr_db", "quality_table", "sources"]
