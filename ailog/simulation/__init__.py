"""Synthetic but realistic error logs with ground truth (demo, tests, benchmarks)."""

from ailog.simulation.generator import GeneratedData, generate

__all__ = ["GeneratedData", "generate"]
