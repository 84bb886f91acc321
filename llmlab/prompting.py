"""Zero-shot classification by prompting: which continuation does the language model find likelier?

No training: each sentence is wrapped in a prompt ("<sentence> Overall, it was") and the model's
log-probability of each label word (" good", " bad") after it is compared. GPT-2 (Radford et al.,
2019) showed that this begins to work at scale; a small model is near chance.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from llmlab.gpt import GPT

__all__ = ["continuation_logprob", "zero_shot_scores"]


@torch.no_grad()
def continuation_logprob(gpt: GPT, tokenizer, prompts, continuation: str,
                         batch_size: int = 64) -> torch.Tensor:
    """log P(continuation | prompt) for each prompt, (N,): the sum over the continuation's tokens."""
    if not isinstance(gpt, GPT):
        raise TypeError(f"gpt must be an llmlab GPT (a language model), got {type(gpt).__name__}")
    cont = tokenizer.encode(continuation)
    if not cont:
        raise ValueError("continuation is empty: give the label word, e.g. ' good'")
    keep = gpt.config.block_size - len(cont)  # the prompt's tail that fits before the continuation
    was_training = gpt.training
    gpt.eval()
    out = []
    try:
        for start in range(0, len(prompts), batch_size):
            rows = [tokenizer.encode(p)[-keep:] + cont for p in prompts[start:start + batch_size]]
            ids = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long)  # (B, T) right-padded
            for r, row in enumerate(rows):
                ids[r, :len(row)] = torch.tensor(row)
            logp = F.log_softmax(gpt(ids.to(gpt.transformer.wte.weight.device)).logits, -1).cpu()
            for r, row in enumerate(rows):
                n = len(row)  # the continuation's tokens sit at n - len(cont) .. n - 1,
                at = torch.arange(n - len(cont) - 1, n - 1)  # each predicted from the position before
                out.append(logp[r, at, torch.tensor(cont)].sum())
    finally:
        gpt.train(was_training)
    return torch.stack(out)


def zero_shot_scores(gpt: GPT, tokenizer, sentences, template: str = "{} Overall, it was",
                     positive: str = " good", negative: str = " bad") -> torch.Tensor:
    """log P(positive) - log P(negative) after each sentence put in template, (N,); > 0 reads positive."""
    if "{}" not in template:
        raise ValueError(f"template must contain {{}} where the sentence goes, got {template!r}")
    prompts = [template.format(s) for s in sentences]
    return continuation_logprob(gpt, tokenizer, prompts, positive) - \
        continuation_logprob(gpt, tokenizer, prompts, negative)
