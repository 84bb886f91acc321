"""Solutions to the exercises of lesson 02, "Predicting the next token".

Try the exercises in the notebook first: the checkers give a hint for each typical mistake.
Each function here passes its checker in llmlab.checks.
"""
import torch


def counts_to_probs(counts: torch.Tensor, k: float = 1.0) -> torch.Tensor:
    """Exercise 1: turn a (V, V) table of bigram counts into P(next | prev) with add-k smoothing."""
    table = counts.float() + k                       # (V, V) a new tensor: counts stays untouched
    return table / table.sum(dim=1, keepdim=True)    # (V, V) each row (previous token) sums to 1


def cross_entropy_from_logits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Exercise 2: the mean of -log softmax(logits)[target] over the N rows of logits (N, V)."""
    # Subtracting each row's max changes no probability but keeps exp() from overflowing.
    shifted = logits - logits.max(dim=-1, keepdim=True).values            # (N, V)
    log_probs = shifted - torch.log(torch.exp(shifted).sum(dim=-1, keepdim=True))  # (N, V)
    picked = log_probs[torch.arange(len(targets)), targets]                 # (N,)
    return -picked.mean()


def apply_temperature_and_top_k(logits: torch.Tensor, temperature: float, k=None) -> torch.Tensor:
    """Exercise 3: probabilities (V,) from softmax(logits / temperature), keeping only the k largest."""
    scaled = logits / temperature                                           # (V,)
    if k is not None and k < len(scaled):
        kth_largest = torch.topk(scaled, k).values[-1]
        # -inf, not 0: exp(-inf) is exactly 0, so softmax renormalises over the survivors.
        scaled = scaled.masked_fill(scaled < kth_largest, float("-inf"))
    return torch.softmax(scaled, dim=-1)
