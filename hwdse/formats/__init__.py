"""Number formats: minifloats, integers, flint, OCP MX block formats and NVFP4.

``get(name)`` returns a format with ``name``, ``bits_per_element`` (block scales included),
``compute`` (the multiplier class a PE needs) and ``quantize(x, axis=-1)``; ``mac_cost`` gives
its 45 nm MAC area and energy; the metrics compare a tensor with its quantized copy;
``sources`` generates test tensors (Gaussian, Laplace, Student-t, LLM-like activations, MiniLM weights
and their activations). ``fmt.fit(x)`` gives the scales ``quantize`` would use, frozen (``Scales``).
``quantize_pair(x, w, weights=..., activations=..., recipe=...)`` quantizes a matmul's operands as
deployed (``recipes``: RTN, SmoothQuant, Hadamard rotation, GPTQ) and measures the output error.
"""

from hwdse.formats import _recipes as recipes
from hwdse.formats import _sources as sources
from hwdse.formats._cost import MacCost, mac_cost
from hwdse.formats._flint import AntChoice, ant_select
from hwdse.formats._format import Format, Scales
from hwdse.formats._quality import matmul_rel_error, max_error, mse, qsnr_db, quality_table
from hwdse.formats._recipes import PairResult, Recipe, quantize_pair, recipe
from hwdse.formats._registry import get, names
from hwdse.formats._spec import Compute

__all__ = ["AntChoice", "Compute", "Format", "MacCost", "PairResult", "Recipe", "Scales", "ant_select", "get",
           "mac_cost", "matmul_rel_error", "max_error", "mse", "names", "qsnr_db", "quality_table", "quantize_pair",
           "recipe", "recipes", "sources"]
