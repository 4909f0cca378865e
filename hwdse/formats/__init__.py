"""Number formats: minifloats, integers, flint, OCP MX block formats and NVFP4.

``get(name)`` returns a format with ``name``, ``bits_per_element`` (block scales included),
``compute`` (the multiplier class a PE needs) and ``quantize(x, axis=-1)``.
"""

from hwdse.formats._format import Format
from hwdse.formats._registry import get, names
from hwdse.formats._spec import Compute

__all__ = ["Compute", "Format", "get", "names"]
