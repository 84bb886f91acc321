"""Time GPT.generate with and without the KV cache on CPU: milliseconds per new token and speed-up.

Run:  .venv/bin/python benchmarks/generate_kv_cache.py  [--new-tokens 512] [--threads 1]
Without the cache every step re-runs the model over the whole window (up to block_size tokens);
with it, a step feeds only the newest token and reuses every layer's cached keys and values.
Lesson 06's model has block_size 64, so 512 new tokens do not fit: once the window slides, the
learned absolute positions of all its tokens change, the cache goes stale, and GPT.generate
re-encodes the window every step (as without the cache). A model with block_size 576 holds the
whole 8 + 512 tokens, which is where the cache pays off.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from llmlab.gpt import GPT, GPTConfig

from _common import load_average  # benchmarks/_common.py (scripts run from this folder)
from llmlab import cpu_name


def median_ms_per_token(model: GPT, prompt: torch.Tensor, new_tokens: int, use_cache: bool,
                        repeats: int) -> float:
    """Median wall time of model.generate per new token, in ms, after a short warm-up."""
    model.generate(prompt, 8, greedy=True, use_cache=use_cache)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.generate(prompt, new_tokens, greedy=True, use_cache=use_cache)
        times.append((time.perf_counter() - start) * 1e3 / new_tokens)
    return statistics.median(times)


def main() -> None:
    """Print ms/token with and without the cache, the speed-up, and whether the tokens agree."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=512)
    parser.add_argument("--prompt", type=int, default=8, help="prompt length in tokens")
    parser.add_argument("--block-sizes", type=int, nargs="+", default=[64, 576])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    print(f"CPU: {cpu_name()} | logical cores: {os.cpu_count()} | torch threads: "
          f"{torch.get_num_threads()} | load average: {load_average()} | torch {torch.__version__} | "
          f"Python {platform.python_version()}")
    print(f"GPT 4 layers x 4 heads x 128 wide, vocab 65, batch 1, {args.prompt}-token prompt, greedy, "
          f"float32, median of {args.repeats} runs\n")
    print(f"{'block_size':>10s}{'new tokens':>12s}{'no cache':>12s}{'KV cache':>12s}{'speed-up':>10s}"
          f"{'same tokens':>13s}")
    for block_size in args.block_sizes:
        torch.manual_seed(0)
        model = GPT(GPTConfig(block_size=block_size)).eval()
        prompt = torch.randint(0, model.config.vocab_size, (1, args.prompt))  # (B, T)
        # The lesson model also gets a run that fits its window, to show the cache working there.
        fits = block_size - args.prompt
        counts = [args.new_tokens] + ([fits] if 0 < fits < args.new_tokens else [])
        for n in counts:
            plain = median_ms_per_token(model, prompt, n, False, args.repeats)
            cached = median_ms_per_token(model, prompt, n, True, args.repeats)
            same = torch.equal(model.generate(prompt, n, greedy=True, use_cache=True),
                               model.generate(prompt, n, greedy=True, use_cache=False))
            note = "  window slides: re-encodes" if args.prompt + n > block_size else ""
            print(f"{block_size:10d}{n:12d}{plain:9.2f} ms{cached:9.2f} ms{plain / cached:9.1f}x"
                  f"{str(same):>13s}{note}")
    print("\nms = wall-clock milliseconds per generated token")


if __name__ == "__main__":
    main()
