"""Spatial dataflow chips (kind ``spatial``): Groq LPU, Graphcore IPU, Cerebras WSE."""

from hwdse.hardware.spatial.device import Spatial

__all__ = ["Spatial"]
