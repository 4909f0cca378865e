"""GPUs (kind ``gpu``): the device and its achieved-mode (calibrated) efficiency model."""

from hwdse.hardware.gpu.device import GPU, Compute, Link, OnChip
from hwdse.hardware.gpu.efficiency import GPUEfficiency

__all__ = ["GPU", "Compute", "Link", "OnChip", "GPUEfficiency"]
