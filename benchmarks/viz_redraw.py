"""Time the attention explorer's redraw: the Python side of moving a control, up to the PNG bytes.

Run:  .venv/bin/python benchmarks/viz_redraw.py  [--T 64] [--repeats 15]
Targets: one head at T = 64 in <= 50 ms, a 4 x 4 grid of heads in <= 300 ms. The browser's share
(sending and decoding the PNG) is not included. On a busy machine wall time grows while the
process's own CPU time does not, so both are printed, with the load average.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import matplotlib
import torch

from llmlab.viz.attention import AttentionExplorer

from _common import load_average  # benchmarks/_common.py (scripts run from this folder)
from llmlab import cpu_name


def causal_attention(layers: int, heads: int, T: int) -> torch.Tensor:
    """Random causal attention weights (layers, heads, T, T), peaked like a trained model's."""
    scores = torch.randn(layers, heads, T, T) * 3
    hidden = torch.ones(T, T, dtype=torch.bool).triu(1)
    return scores.masked_fill(hidden, float("-inf")).softmax(-1)  # (L, H, T, T)


def median_ms(step, repeats: int) -> tuple[float, float, int]:
    """Median wall and CPU milliseconds of step(i), and the PNG size, after one warm-up."""
    step(0)
    wall, cpu = [], []
    for i in range(1, repeats + 1):
        w0, c0 = time.perf_counter(), time.process_time()
        size = step(i)
        wall.append((time.perf_counter() - w0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return statistics.median(wall), statistics.median(cpu), size


def main() -> None:
    """Print median redraw times for the single-head view and a 4 x 4 grid of heads."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--T", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    torch.manual_seed(0)
    tokens = [f"tok{i}" for i in range(args.T)]
    explorer = AttentionExplorer(causal_attention(4, 4, args.T), tokens, masked="causal",
                                 max_tokens=args.T)
    heads = [0, 1, 2, 3, "mean"]

    def change_head(i: int) -> int:
        explorer.head.value = heads[i % len(heads)]
        return len(explorer.image.value)

    def change_query(i: int) -> int:
        explorer.query.value = (7 * i) % args.T
        return len(explorer.image.value)

    def change_layer(i: int) -> int:
        explorer.layer.value = i % 4
        return len(explorer.image.value)

    def full_redraw(i: int) -> int:
        explorer._backgrounds.clear()  # what a crop change costs: ticks and layout redone
        explorer.redraw()
        return len(explorer.image.value)

    print(f"CPU: {cpu_name()} | logical cores: {os.cpu_count()} | load average: "
          f"{load_average()} | matplotlib {matplotlib.__version__}"
          f" | Python {platform.python_version()}")
    print(f"explorer redraw (Python side, to PNG bytes), T = {args.T}, dpi {explorer.dpi}, "
          f"median of {args.repeats} runs\n")
    rows = [("one head: change head", change_head, 50), ("one head: change query", change_query, 50),
            ("one head: full redraw (new crop)", full_redraw, None)]
    results = [(name, *median_ms(step, args.repeats), target) for name, step, target in rows]
    explorer.view.value = "all"  # 4 layers x 4 heads
    for name, step, target in [("4 x 4 grid: change query", change_query, 300),
                               ("4 x 4 grid: change layer", change_layer, 300),
                               ("4 x 4 grid: full redraw (new crop)", full_redraw, None)]:
        results.append((name, *median_ms(step, args.repeats), target))

    print(f"{'view':36s} {'wall ms':>8s} {'CPU ms':>8s} {'PNG KiB':>8s}  target")
    for name, wall, cpu, size, target in results:
        verdict = "" if target is None else (
            f"<= {target} ms: wall {'ok' if wall <= target else 'over'}, "
            f"CPU {'ok' if cpu <= target else 'over'}")
        print(f"{name:36s} {wall:8.1f} {cpu:8.1f} {size / 1024:8.1f}  {verdict}")
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > cores:
        print(f"\nThis machine is busy (load {load:.1f} on {cores} cores): wall times include "
              "waiting for a CPU; the CPU column is this process's own work.")


if __name__ == "__main__":
    main()
