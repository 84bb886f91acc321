"""Solutions to the exercises of lesson 07, "From pre-training to fine-tuning".

Try the exercises in the notebook first: the checkers give a hint for each typical mistake.
Each function here passes its checker in llmlab.checks.
"""
import torch


def last_real_state(h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Exercise 1: row b is h[b, lengths[b] - 1], the state of sentence b's last real token."""
    # Two index tensors of shape (B,) pick one (row, position) pair each: advanced indexing pairs
    # them up, so the result is (B, C). h[:, lengths - 1] would instead take every listed position
    # for every row: (B, B, C).
    rows = torch.arange(h.shape[0], device=h.device)  # (B,)
    return h[rows, lengths - 1]                        # (B, C)


def freeze_all_but_head(model) -> int:
    """Exercise 2: freeze model.gpt, leave model.head trainable; return the trainable count."""
    for p in model.gpt.parameters():
        p.requires_grad = False
    for p in model.head.parameters():  # set explicitly: the model may arrive frozen
        p.requires_grad = True
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def confusion_matrix_by_hand(pred: torch.Tensor, true: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Exercise 3: counts (n_classes, n_classes), row = true label, column = predicted label."""
    # Each (true, pred) pair is one cell of a flattened n_classes x n_classes grid; bincount
    # counts them all at once, and minlength keeps classes that never occur.
    cells = true * n_classes + pred                                   # (N,)
    return torch.bincount(cells, minlength=n_classes * n_classes).view(n_classes, n_classes)
