"""Plots (take an ax, return a Figure) and ipywidgets explorers for the course.

Every explorer renders server-side with matplotlib into an ipywidgets.Image, so it works offline
in JupyterLab, Notebook 7, VS Code and Colab; every explorer has a static plot as its twin.
"""
from llmlab.viz.alignment import AlignmentExplorer, plot_alignment
from llmlab.viz.attention import (
    AttentionData,
    AttentionExplorer,
    as_attention,
    plot_attention,
    plot_attention_grid,
    plot_query_attention,
)
from llmlab.viz.embeddings import EmbeddingExplorer, plot_neighbours, plot_projection
from llmlab.viz.generation import Generation, GenerationExplorer, render_generation
from llmlab.viz.heads import plot_head_scores
from llmlab.viz.induction import plot_head_table, plot_position_loss
from llmlab.viz.playground import AttentionPlayground, plot_attention_steps
from llmlab.viz.sampling import (
    SamplingExplorer,
    plot_bigram_matrix,
    plot_loss,
    plot_next_token_distribution,
    readable_token,
)
from llmlab.viz.sentiment import SentimentExplorer, plot_accuracies, plot_sentiment
from llmlab.viz.training import LivePlot, plot_history, plot_metric

__all__ = [
    # attention viewer (any model's attention weights)
    "AttentionData", "as_attention", "plot_attention", "plot_attention_grid",
    "plot_query_attention", "AttentionExplorer",
    # encoder–decoder cross-attention (lesson 08)
    "AlignmentExplorer", "plot_alignment",
    # attention playground (lesson 03)
    "AttentionPlayground", "plot_attention_steps",
    # word embeddings (lesson 01)
    "EmbeddingExplorer", "plot_neighbours", "plot_projection",
    # next-token prediction and sampling (lesson 02)
    "SamplingExplorer", "plot_bigram_matrix", "plot_loss", "plot_next_token_distribution",
    "readable_token",
    # training curves (lessons 02, 06, 07)
    "LivePlot", "plot_history", "plot_metric",
    # generated text (lesson 06)
    "GenerationExplorer", "render_generation", "Generation",
    # what attention heads do (lesson 06)
    "plot_head_scores",
    # induction heads (lesson 09)
    "plot_position_loss", "plot_head_table",
    # what a sentiment classifier reads (lesson 07)
    "SentimentExplorer", "plot_sentiment", "plot_accuracies",
]
