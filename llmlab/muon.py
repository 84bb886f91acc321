"""Muon: momentum whose update is orthogonalised, for the hidden weight matrices (Jordan et al., 2024).

Keller Jordan's Muon ("MomentUm Orthogonalized by Newton-Schulz", described in his 2024 blog post
and used in the modded-nanoGPT speedruns) keeps SGD momentum for a weight matrix W, but before
applying it replaces the momentum matrix M = U S V^T by (approximately) U V^T: every singular
value becomes about 1. A plain gradient step is dominated by a few large singular directions;
the orthogonalised step moves W by the same amount along every direction the gradient points in,
including the rare ones. U V^T is computed without an SVD, by a few Newton-Schulz iterations of
an odd matrix polynomial (matmuls only, cheap on any hardware).

Its scope is narrow, and the description says so: Muon is for the 2-D matrices *inside* the
network (attention and MLP projections). Embedding tables and the output head are not linear maps
between hidden spaces, and vectors (biases, norm gains) have no singular values: those stay with
AdamW. `MuonAdamW` below is one optimizer with both kinds of parameter groups, so the training
loop, its learning-rate schedule and its checkpoints treat it like plain AdamW.

Limits: the published gains were measured on GPUs at 124M parameters and beyond; whether it pays
on a 0.8M-parameter CPU model is measured in benchmarks/speedrun.py, not assumed here.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

__all__ = ["newton_schulz", "hidden_matrices", "MuonAdamW"]

# The quintic's coefficients from the published description: chosen so that the iteration pushes
# singular values in (0, 1] quickly towards the band ~[0.7, 1.2] rather than exactly to 1, which
# needs fewer steps and is, by the authors' measurements, just as good for training.
_NS_COEFFS = (3.4445, -4.7750, 2.0315)


def newton_schulz(g: torch.Tensor, steps: int = 5, eps: float = 1e-7) -> torch.Tensor:
    """Approximately U V^T for g = U S V^T, by `steps` quintic Newton-Schulz iterations.

    g is a matrix (m, n), or a stack of them (..., m, n): each is orthogonalised on its own, in one
    batched matmul per product (the optimizer stacks its equal-shaped matrices to save time).
    """
    if g.dim() < 2:
        raise ValueError(f"newton_schulz orthogonalises a matrix (2-D tensor) or a stack of them, got "
                         f"shape {tuple(g.shape)}")
    a, b, c = _NS_COEFFS
    x = g.float()
    # Scale so that every singular value is <= 1 (the Frobenius norm bounds the largest): the
    # iteration only converges for singular values in (0, ~1.7).
    x = x / (torch.linalg.matrix_norm(x, keepdim=True) + eps)
    tall = x.shape[-2] > x.shape[-1]
    if tall:  # work with the wide orientation: x @ x^T is then the smaller square
        x = x.mT  # (..., n, m)
    for _ in range(steps):
        s = x @ x.mT  # (..., r, r) with r = min(m, n)
        # x <- a x + b (x x^T) x + c (x x^T)^2 x: an odd polynomial in x, so U and V are kept and
        # each singular value sigma becomes a sigma + b sigma^3 + c sigma^5.
        x = a * x + (b * s + c * s @ s) @ x
    return (x.mT if tall else x).to(g.dtype)


def hidden_matrices(model: nn.Module) -> list[nn.Parameter]:
    """The hidden weight matrices Muon is for: nn.Linear weights, not embeddings, not a head.

    An output head (a Linear named ...head, e.g. GPT's lm_head or a classifier's head) maps to
    vocabulary or class scores, and a tied head *is* the embedding table: both stay with AdamW,
    as the Muon description prescribes.
    """
    embedding = {id(p) for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    found, seen = [], set()
    for name, module in model.named_modules():
        w = getattr(module, "weight", None)
        if isinstance(module, nn.Linear) and not name.endswith("head") and w.requires_grad \
                and id(w) not in embedding and id(w) not in seen:
            found.append(w)
            seen.add(id(w))
    return found


class MuonAdamW(torch.optim.Optimizer):
    """Muon for groups with use_muon=True, AdamW (decoupled weight decay) for the other groups.

    Muon group keys: lr, momentum, nesterov, ns_steps, weight_decay. AdamW group keys: lr, betas,
    eps, weight_decay. Every group may carry lr_scale: the training loop's schedule sets
    lr = schedule(step) * lr_scale, so Muon's much larger rate follows the same warm-up and decay.
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.99), eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.95, nesterov: bool = True,
                 ns_steps: int = 5):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        nesterov=nesterov, ns_steps=ns_steps, use_muon=False, lr_scale=1.0)
        super().__init__(params, defaults)
        for group in self.param_groups:
            if group["use_muon"] and any(p.dim() != 2 for p in group["params"]):
                raise ValueError("a Muon group (use_muon=True) may hold 2-D weight matrices only; "
                                 "put embeddings, biases and gains in an AdamW group")

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            (self._muon if group["use_muon"] else self._adamw)(group)
        return loss

    def _muon(self, group: dict) -> None:
        """Momentum, orthogonalised, scaled so that tall and wide matrices move alike."""
        mu = group["momentum"]
        by_shape: dict[tuple, list] = {}  # equal shapes are orthogonalised together, as one stack
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p)
            buf = state["momentum_buffer"]
            buf.mul_(mu).add_(p.grad)  # M <- mu M + G
            # Nesterov: step along G + mu M, the momentum looked one step ahead.
            update = p.grad.add(buf, alpha=mu) if group["nesterov"] else buf
            by_shape.setdefault(tuple(p.shape), []).append((p, update))
        for (rows, cols), pairs in by_shape.items():
            o = newton_schulz(torch.stack([u for _, u in pairs]), group["ns_steps"])  # (k, rows, cols)
            # U V^T of an (out, in) matrix has RMS entry 1/sqrt(max(out, in)); this factor
            # (from the description) gives matrices of every aspect ratio comparable steps.
            scale = math.sqrt(max(1.0, rows / cols))
            for (p, _), o_p in zip(pairs, o):
                if group["weight_decay"]:
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(o_p, alpha=-group["lr"] * scale)

    def _adamw(self, group: dict) -> None:
        """AdamW (Loshchilov & Hutter, 2019): Adam's moments, weight decay decoupled from them."""
        beta1, beta2 = group["betas"]
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if "step" not in state:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(p)
                state["exp_avg_sq"] = torch.zeros_like(p)
            state["step"] += 1
            m, v, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
            m.lerp_(p.grad, 1 - beta1)                              # m <- b1 m + (1 - b1) g
            v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)  # v <- b2 v + (1 - b2) g^2
            if group["weight_decay"]:
                p.mul_(1 - group["lr"] * group["weight_decay"])
            # Bias correction: m and v start at 0, so early on they underestimate the moments.
            denom = (v / (1 - beta2 ** t)).sqrt_().add_(group["eps"])
            p.addcdiv_(m, denom, value=-group["lr"] / (1 - beta1 ** t))
