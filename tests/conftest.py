"""Shared fixtures for the unit tests."""
import matplotlib

matplotlib.use("Agg")  # tests draw off-screen; notebooks keep their own inline backend
