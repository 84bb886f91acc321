"""Exercise checkers: call check_*(your_function) and read the verdict; wrong answers never raise."""
from ._core import Verdict, shows_verdict

__all__ = ["Verdict"]

# --- lesson 01: tokens and embeddings ---
from .tokens import check_char_encode, check_cosine_similarity, check_most_frequent_pair  # noqa: E402,F401,E501
__all__ += ["check_char_encode", "check_most_frequent_pair", "check_cosine_similarity"]
# --- end lesson 01 ---

# --- lesson 02: predicting the next token ---
from .next_token import check_counts_to_probs, check_cross_entropy_from_logits, check_temperature_top_k  # noqa: E402,F401,E501
__all__ += ["check_counts_to_probs", "check_cross_entropy_from_logits", "check_temperature_top_k"]
# --- end lesson 02 ---

# --- lesson 03: scaled dot-product attention ---
from .attention import check_attention, check_causal_mask, check_masked_attention, check_softmax  # noqa: E402,F401,E501
__all__ += ["check_softmax", "check_attention", "check_causal_mask", "check_masked_attention"]
# --- end lesson 03 ---

# --- lesson 04: multi-head attention ---
from .multihead import check_merge_heads, check_multi_head_attention, check_sinusoidal_encoding, check_split_heads  # noqa: E402,F401,E501
__all__ += ["check_split_heads", "check_merge_heads", "check_multi_head_attention", "check_sinusoidal_encoding"]
# --- end lesson 04 ---

# --- lesson 05: the transformer block ---
from .block import check_block_forward, check_count_block_parameters, check_layer_norm  # noqa: E402,F401,E501
__all__ += ["check_layer_norm", "check_block_forward", "check_count_block_parameters"]
# --- end lesson 05 ---

# --- lesson 06: the mini-GPT ---
from .gpt import check_crop_context, check_gpt_param_count, check_previous_token_score  # noqa: E402,F401,E501
__all__ += ["check_gpt_param_count", "check_crop_context", "check_previous_token_score"]
# --- end lesson 06 ---

# --- lesson 07: fine-tuning for sentiment ---
from .finetune import check_confusion_matrix, check_freeze_all_but_head, check_last_real_state  # noqa: E402,F401,E501
__all__ += ["check_last_real_state", "check_freeze_all_but_head", "check_confusion_matrix"]
# --- end lesson 07 ---

# --- lesson 08: encoder-decoder and cross-attention ---
from .seq2seq import check_beam_step, check_shift_right, check_source_padding_mask  # noqa: E402,F401,E501
__all__ += ["check_source_padding_mask", "check_shift_right", "check_beam_step"]
# --- end lesson 08 ---

# --- lesson 09: inside and beyond ---
from .inside import check_ablate_head, check_induction_pattern, check_kv_cache_bytes  # noqa: E402,F401,E501
__all__ += ["check_kv_cache_bytes", "check_induction_pattern", "check_ablate_head"]
# --- end lesson 09 ---

# --- lesson 10: your own GPT ---
from .poems import check_form_mask, check_memorised_share, check_utf8_bytes  # noqa: E402,F401,E501
__all__ += ["check_utf8_bytes", "check_form_mask", "check_memorised_share"]
# --- end lesson 10 ---

# Every checker shows its own verdict in a notebook (two checks in one cell: two verdicts) and
# returns it for code that wants `.passed`; the cell's last-expression display then stays quiet.
for _name in [n for n in __all__ if n.startswith("check_")]:
    globals()[_name] = shows_verdict(globals()[_name])
del _name
