"""Time MultiHeadAttention's fused path (PyTorch SDPA) against the explicit path that returns weights.

Run:  .venv/bin/python benchmarks/attention_fused.py  [--T 256] [--repeats 20]
The explicit path materialises the (B, H, T, T) weights; the fused kernel never does.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from llmlab.attention import AttentionConfig, MultiHeadAttention

from llmlab import cpu_name


def median_ms(fn, repeats: int, warmup: int = 3) -> float:
    """Median wall time of fn() in milliseconds, after a few warm-up calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    """Print the fused path's speed-up over the explicit path, forward and forward + backward."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--B", type=int, default=8)
    parser.add_argument("--T", type=int, default=256)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    torch.manual_seed(0)
    mha = MultiHeadAttention(AttentionConfig(args.d_model, args.heads, causal=True)).eval()
    x = torch.randn(args.B, args.T, args.d_model)  # (B, T, C)

    print(f"CPU: {cpu_name()} | logical cores: {os.cpu_count()} | torch threads: "
          f"{torch.get_num_threads()} | torch {torch.__version__} | Python {platform.python_version()}")
    print(f"causal self-attention, B={args.B}, T={args.T}, d_model={args.d_model}, "
          f"heads={args.heads}, float32, median of {args.repeats} runs\n")

    def forward(return_weights: bool):
        with torch.no_grad():
            mha(x, return_weights=return_weights)

    def train_step(return_weights: bool):
        xg = x.detach().requires_grad_(True)
        mha(xg, return_weights=return_weights).output.sum().backward()

    print(f"{'':22s}{'explicit (ms)':>14s}{'fused (ms)':>12s}{'speed-up':>10s}")
    for name, fn in (("forward", forward), ("forward + backward", train_step)):
        explicit = median_ms(lambda: fn(True), args.repeats)
        fused = median_ms(lambda: fn(False), args.repeats)
        print(f"{name:22s}{explicit:14.2f}{fused:12.2f}{explicit / fused:9.2f}x")


if __name__ == "__main__":
    main()
