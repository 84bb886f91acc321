"""Plots (take an ax, return a Figure) and ipywidgets explorers for the course."""
