"""Plots (take an ax, return a Figure) and ipywidgets explorers for the course."""

# --- next-token prediction and sampling (lesson 02) ---
from llmlab.viz.sampling import (  # noqa: E402,F401
    SamplingExplorer,
    plot_bigram_matrix,
    plot_loss,
    plot_next_token_distribution,
    readable_token,
)
# --- end lesson 02 ---
# --- attention viewer: any model's attention weights (lessons 03-06, 08) ---
from llmlab.viz.attention import (  # noqa: E402,F401
    AttentionData,
    AttentionExplorer,
    as_attention,
    plot_attention,
    plot_attention_grid,
    plot_query_attention,
)
# --- end attention viewer ---
# --- attention playground (lesson 03) ---
from llmlab.viz.playground import AttentionPlayground, plot_attention_steps  # noqa: E402,F401
# --- end attention playground ---
