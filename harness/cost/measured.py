"""Cost in the study's unit: GPU-hours per node (wall hours x GPUs / GPUs per node), and dollars."""

from __future__ import annotations

from harness.specs import HardwareSpec


def gpu_hours_per_node(wall_s: float, gpus: int, hardware: HardwareSpec) -> float:
    """Wall time x GPUs used / GPUs per node, in hours; a CPU counts as one device."""
    per_node = max(1, hardware.gpus_per_node)
    return wall_s / 3600.0 * max(1, gpus) / per_node


def usd(gpu_hours: float, hardware: HardwareSpec) -> float:
    """Dollars for `gpu_hours` GPU-hours per node at the hardware's node-hour price."""
    return gpu_hours * hardware.usd_per_node_hour
