"""Started by every Python process of the test suite (the root conftest puts this folder first
on PYTHONPATH): notebook kernels, the JupyterLab server of the browser tests, subprocesses.
It turns on the offline guard; see llmlab_netguard.py."""
import llmlab_netguard

llmlab_netguard.install()
