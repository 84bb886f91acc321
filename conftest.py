"""Test-suite wide settings, applied before any notebook kernel starts."""
import os

# Notebooks read LLMLAB_QUICK in their set-up cell and train with smaller budgets.
os.environ.setdefault("LLMLAB_QUICK", "1")
# Keep kernels and plots quiet and deterministic on shared machines.
os.environ.setdefault("PYTHONHASHSEED", "0")
