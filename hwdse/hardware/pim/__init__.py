"""Processing in memory: PIM devices (kind ``pim``) and xPU + PIM systems (kind ``gpu-pim``)."""

from hwdse.hardware.pim.device import PIM
from hwdse.hardware.pim.system import GpuPim

__all__ = ["PIM", "GpuPim"]
