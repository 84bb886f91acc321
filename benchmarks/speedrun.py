"""A CPU speedrun on Tiny Shakespeare: GPT-2's recipe, lesson 06's, and a modern GPT, side by side.

Run:  .venv/bin/python benchmarks/speedrun.py                  # recipes + ablations (~25 min)
      .venv/bin/python benchmarks/speedrun.py --no-ablations   # the recipes only (~8 min)
      .venv/bin/python benchmarks/speedrun.py --quick          # smoke check (~2 min)
      .venv/bin/python benchmarks/speedrun.py --recipe modern --repeats 3

Every run goes through llmlab's one training loop (llmlab.training.train) on character-level
Tiny Shakespeare, with validation loss measured as in benchmarks/train_shakespeare.py (the clock
stops while the benchmark evaluates). The recipes:

  reference  nanoGPT's CPU recipe (GPT-2 parts, 4 x 4 x 128, lr 1e-3 for 2000 steps)
  lesson06   the same model with lesson 06's schedule (lr 3e-3, 1300 steps)
  modern     the best modern recipe found, as a sprint to 1.886: see _recipes() for what it
             changes and why
  modern-long  the same recipe run about as long as the reference, for the loss at its wall time

For each: time to val loss 1.886 (where nanoGPT's CPU recipe ends), val loss at the reference's
wall time, tokens/s and MFU against the matmul ceiling measured in the same run. Then the
ablations: one change at a time from lesson 06's recipe, each run --repeats times with different
seeds so the spread is visible, and torch.compile's effect on the step time. The ratios are what
to read: they come from one run on one machine, so load on the machine moves them less than the
absolute seconds.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import time
import warnings

import torch

from _common import load_average  # benchmarks/_common.py
from train_shakespeare import (EVAL, TARGET_LOSS, Recipe, crossing_time, flops_per_token,
                               loss_at, matmul_ceiling, matmul_shapes, run_recipe)
from llmlab import cpu_name
from llmlab.data import load_text, train_val_split
from llmlab.gpt import GPT, GPTConfig
from llmlab.tokenizers import CharTokenizer
from llmlab.training import TrainConfig, make_optimizer

# The parts that paid in the ablations (README): RoPE and SwiGLU. RMSNorm, QK-norm, an untied
# head and dropping biases each cost loss at this scale, so the modern recipe keeps GPT-2's.
MODERN = dict(positions="rope", mlp="swiglu")
SPRINT_SHAPE = dict(n_layer=2, n_embd=176)  # shallow and wide: the ablations' fastest shape
SPRINT_STEPS, LONG_STEPS = 500, 800


def _recipes(vocab_size: int) -> dict[str, Recipe]:
    """The recipes compared side by side."""
    gpt2 = GPTConfig(vocab_size, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0)
    common = dict(batch_size=12, block_size=64, beta2=0.99, weight_decay=0.1, grad_clip=1.0)
    return {
        "reference": Recipe(gpt2, TrainConfig(max_steps=2000, lr=1e-3, min_lr=1e-4, warmup_steps=100,
                                              **common),
                            "nanoGPT's CPU recipe: GPT-2 parts, lr 1e-3, 2000 steps"),
        "lesson06": Recipe(gpt2, TrainConfig(max_steps=1300, lr=3e-3, min_lr=3e-5, warmup_steps=50,
                                             **common),
                           "lesson 06: the same model, lr 3e-3 and a cosine as long as the run"),
        # Found by trying (see the README). Muon's step costs ~15 ms of Newton-Schulz matmuls
        # whatever the batch, so twice lesson 06's batch halves that overhead per token. Two
        # lengths, as with lesson 06: a sprint to 1.886 with the shallow, wide shape that was
        # fastest in the ablations, and lesson 06's shape run about as long as the reference.
        "modern": Recipe(dataclasses.replace(gpt2, **MODERN, **SPRINT_SHAPE),
                         TrainConfig(max_steps=SPRINT_STEPS, lr=3e-3, min_lr=3e-5, warmup_steps=30,
                                     optimizer="muon", muon_lr=0.02,
                                     **{**common, "batch_size": 24}),
                         f"RoPE, SwiGLU, Muon; 2 layers x 176; batch 24, {SPRINT_STEPS} steps"),
        "modern-long": Recipe(dataclasses.replace(gpt2, **MODERN),
                              TrainConfig(max_steps=LONG_STEPS, lr=3e-3, min_lr=3e-5, warmup_steps=30,
                                          optimizer="muon", muon_lr=0.02,
                                          **{**common, "batch_size": 24}),
                              f"RoPE, SwiGLU, Muon; 4 layers x 128; batch 24, {LONG_STEPS} steps"),
    }


def _ablations(base: Recipe) -> dict[str, Recipe]:
    """One change at a time from lesson 06's recipe (the learning rate kept unless it says so)."""
    m, t = base.model, base.train

    def model(note, **kw):
        return Recipe(dataclasses.replace(m, **kw), t, note)

    def training(note, **kw):
        return Recipe(m, dataclasses.replace(t, **kw), note)

    return {
        "lesson06": base,
        "rope": model("RoPE instead of learned positions", positions="rope"),
        "no positions": model("no position information at all (NoPE)", positions="none"),
        "rmsnorm": model("RMSNorm instead of LayerNorm", norm="rmsnorm"),
        "swiglu": model("SwiGLU MLP (hidden 8C/3: about the same parameters)", mlp="swiglu"),
        "relu2": model("ReLU^2 MLP", mlp="relu2"),
        "qk-norm": model("QK-norm", qk_norm=True),
        "untied": model("untied output head", tie_weights=False),
        "no biases": model("no biases", bias=False),
        "muon": training("Muon (lr 0.02) for the hidden matrices", optimizer="muon"),
        "lr 5e-3": training("peak lr 5e-3", lr=5e-3),
        "batch 24": training("batch 24, lr 4e-3, 700 steps (same tokens)", batch_size=24, lr=4e-3,
                             max_steps=700, warmup_steps=30),
        "6x104": model("6 layers x 104 wide (about the same parameters)", n_layer=6, n_embd=104),
        "2x180": model("2 layers x 180 wide (about the same parameters)", n_layer=2, n_embd=180),
    }


def compile_step_ratio(model_config: GPTConfig, batch_size: int, steps: int = 30) -> tuple:
    """(eager ms/step, compiled ms/step, compile seconds) for one training step, timed alike."""
    x = torch.randint(model_config.vocab_size, (batch_size, model_config.block_size))  # (B, T)
    y = torch.randint(model_config.vocab_size, (batch_size, model_config.block_size))  # (B, T)

    def timed(compiled: bool) -> tuple[float, float]:
        torch.manual_seed(0)
        model = GPT(model_config)
        forward = torch.compile(model) if compiled else model
        optimizer = make_optimizer(model, TrainConfig())

        def step() -> None:
            loss = forward(x, y).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()

        start = time.perf_counter()
        step()  # the first call compiles
        first = time.perf_counter() - start
        times = []
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(steps):
                step()
            times.append((time.perf_counter() - start) * 1e3 / steps)
        return statistics.median(times), first

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eager, _ = timed(False)
        compiled, compile_s = timed(True)
        eager = min(eager, timed(False)[0])  # eager on both sides of the compiled run
    return eager, compiled, compile_s


def _one(name: str, recipe: Recipe, data, args, seed: int) -> dict:
    """Train one recipe with one seed; return its points and summary figures."""
    recipe = Recipe(recipe.model, dataclasses.replace(recipe.train, seed=seed), recipe.note)
    run = run_recipe(name, recipe, *data, args.eval_every, args.eval_batches, args.final_batches,
                     args.budget)
    c = recipe.train
    run["tok_s"] = run["tokens"] / run["seconds"]
    run["gflops"] = flops_per_token(run["model"], c.block_size) * run["tok_s"] / 1e9
    run["hit"] = crossing_time(run["points"], TARGET_LOSS)
    return run


def _fmt(x, spec: str = ".1f", none: str = "-") -> str:
    return none if x is None else format(x, spec)


def main() -> None:
    """Print the machine, the three recipes side by side, then the ablation table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", choices=["reference", "lesson06", "modern", "modern-long", "all"],
                   default="all")
    p.add_argument("--repeats", type=int, default=2, help="seeds per ablation row (and recipe)")
    p.add_argument("--no-ablations", action="store_true", help="only the recipes")
    p.add_argument("--only", nargs="*", help="ablation rows to run (default: all)")
    p.add_argument("--quick", action="store_true", help="a smoke check: 12 s per run, 1 seed")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--eval-every", type=float, default=4.0, help="seconds of training between evals")
    p.add_argument("--eval-batches", type=int, default=50, help="batches per evaluation during a run")
    p.add_argument("--final-batches", type=int, default=200, help="batches for the final val loss")
    args = p.parse_args()
    args.budget = None
    if args.quick:
        args.budget, args.repeats = 12.0, 1
        args.eval_batches, args.final_batches = min(args.eval_batches, 10), min(args.final_batches, 20)
    if args.threads:
        torch.set_num_threads(args.threads)

    text = load_text("tinyshakespeare")
    tok = CharTokenizer.train(text)
    data = train_val_split(torch.tensor(tok.encode(text), dtype=torch.long), 0.1)
    recipes = _recipes(tok.vocab_size)
    names = list(recipes) if args.recipe == "all" else [args.recipe]

    print(f"CPU: {cpu_name()} | logical cores: {os.cpu_count()} | torch threads: "
          f"{torch.get_num_threads()} | torch {torch.__version__} | Python {platform.python_version()}"
          f" | load average: {load_average()}")
    print(f"validation: estimate_loss on the last 10 % of the text, batch {EVAL['batch_size']} x "
          f"context {EVAL['block_size']}, {args.eval_batches} batches during a run, "
          f"{args.final_batches} at its end; the clock stops while evaluating")
    shapes = [s for n in names for s in matmul_shapes(
        GPT(recipes[n].model), recipes[n].train.batch_size * recipes[n].train.block_size)]
    ceiling = matmul_ceiling(shapes, torch.float32)
    print(f"float32 matmul ceiling on the recipes' shapes: {ceiling:.0f} GFLOP/s")

    # --- the recipes, side by side ---------------------------------------------------------------
    runs = {}
    for name in names:
        runs[name] = [_one(name, recipes[name], data, args, recipes[name].train.seed + k)
                      for k in range(args.repeats)]
    ref_s = statistics.median(r["seconds"] for r in runs["reference"]) if "reference" in runs else None
    # The reference ends near 1.886 and some seeds stop just short of it: its time to 1.886 is the
    # median over the seeds that reached it (a seed that did not would take longer still).
    ref_hits = [r["hit"] for r in runs.get("reference", []) if r["hit"] is not None]
    ref_hit = statistics.median(ref_hits) if ref_hits else None
    print(f"\n=== recipes ({args.repeats} seed(s) each; load average {load_average()})")
    print(f"{'recipe':10s} {'params':>8s} {'steps':>6s} {'tokens/s':>9s} {'MFU':>5s} "
          f"{'s to ' + str(TARGET_LOSS):>10s} {'vs ref':>7s} {'loss@ref s':>11s} {'final':>7s}  what")
    for name, rs in runs.items():
        for r in rs:
            at = loss_at(r["points"], ref_s) if ref_s else None
            ratio = r["hit"] / ref_hit if (r["hit"] and ref_hit) else None
            print(f"{name:10s} {r['model'].num_parameters(non_embedding=False):8,d} {r['steps']:6d} "
                  f"{r['tok_s']:9,.0f} {100 * r['gflops'] / ceiling:4.0f}% {_fmt(r['hit']):>10s} "
                  f"{_fmt(ratio, '.2f'):>6s}x {_fmt(at, '.4f'):>11s} {r['final']:7.4f}  "
                  f"{r['recipe'].note}")
    if ref_s:
        print(f"reference: {len(ref_hits)} of {len(runs['reference'])} seed(s) reached {TARGET_LOSS}"
              + (f", median {ref_hit:.1f} s (the 'vs ref' column divides by it)" if ref_hit else ""))
        print(f"reference wall time (median): {ref_s:.1f} s of training; targets: time to "
              f"{TARGET_LOSS} <= 0.40 x the reference's (moonshot 0.25), val loss at {ref_s:.0f} s "
              "<= 1.65 (moonshot 1.60). loss@ref s of a run that ended earlier is its last evaluation")
    for name, rs in runs.items():
        print(f"\n{name}: val loss against training seconds (seed {rs[0]['recipe'].train.seed})")
        print("  " + "  ".join(f"{s:.0f}s {l:.3f}" for s, _, _, l in rs[0]["points"]))

    if args.no_ablations or args.recipe != "all":
        return
    # --- one change at a time ---------------------------------------------------------------------
    rows = _ablations(recipes["lesson06"])
    if args.only:
        rows = {k: v for k, v in rows.items() if k in args.only or k == "lesson06"}
    print(f"\n=== ablations: one change at a time from lesson 06's recipe, {args.repeats} seed(s) "
          f"each (load average {load_average()})")
    print(f"{'change':13s} {'params':>8s} {'ms/step':>8s} {'s to ' + str(TARGET_LOSS):>18s} "
          f"{'final val loss':>16s}  what")
    base = None
    for name, recipe in rows.items():
        rs = runs["lesson06"] if name == "lesson06" else [
            _one(name, recipe, data, args, recipe.train.seed + k) for k in range(args.repeats)]
        hits = [r["hit"] for r in rs]
        finals = [r["final"] for r in rs]
        ms = statistics.median(1e3 * r["seconds"] / r["steps"] for r in rs)
        hit_text = "/".join(_fmt(h) for h in hits)
        final_text = "/".join(f"{f:.3f}" for f in finals)
        if base is None:
            base = (statistics.mean(finals), hits)
        delta = statistics.mean(finals) - base[0]
        print(f"{name:13s} {rs[0]['model'].num_parameters(non_embedding=False):8,d} {ms:8.1f} "
              f"{hit_text:>18s} {final_text:>16s}  {recipe.note}"
              + ("" if name == "lesson06" else f" (final {delta:+.3f})"), flush=True)
    eager, compiled, compile_s = compile_step_ratio(recipes["lesson06"].model,
                                                    recipes["lesson06"].train.batch_size)
    print(f"torch.compile: {eager:.1f} ms/step eager, {compiled:.1f} ms/step compiled "
          f"({eager / compiled:.2f}x), after {compile_s:.0f} s of compiling")


if __name__ == "__main__":
    main()
