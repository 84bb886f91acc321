"""What every benchmark prints about the machine it ran on (figures mean little without it).

The CPU's name comes from llmlab.cpu_name(); this module adds what only benchmarks need.
"""
from __future__ import annotations

import os


def cpu_flags() -> set[str]:
    """The CPU feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def load_average() -> str:
    """The 1/5/15-minute load averages: other work on the machine makes timings pessimistic."""
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except (AttributeError, OSError):
        return "unknown"
