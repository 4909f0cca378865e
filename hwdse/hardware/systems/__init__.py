"""Multi-device systems (kind ``multi-gpu``), their links and fabrics, and the collectives over them."""

from hwdse.hardware.systems.fabric import Fabric
from hwdse.hardware.systems.interconnect import Interconnect, LinkSpec, load_link
from hwdse.hardware.systems.multi import MultiGPU, with_parallelism

__all__ = ["Fabric", "Interconnect", "LinkSpec", "load_link", "MultiGPU", "with_parallelism"]
