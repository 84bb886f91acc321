"""What save_checkpoint does around torch.save: plain values in, stale temporary files out.

Kept apart so llmlab.checkpoint reads as the checkpoint format itself.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np
import torch

__all__: list[str] = []  # private: llmlab.checkpoint is the public face

_PLAIN = (str, int, float, bool, type(None), torch.Tensor, torch.dtype, torch.Size, torch.device)
_STALE_AFTER_S = 3600.0  # no save takes an hour: an older temporary file is an orphan


def plain_data(value, where: str):
    """value with NumPy scalars made Python numbers, or raise naming a value weights-only loading refuses."""
    if isinstance(value, np.generic) and isinstance(value.item(), (int, float, bool, str)):
        return value.item()  # np.float64(0.1) -> 0.1: same number, and loadable
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, dict):
        return {plain_data(k, f"{where} key"): plain_data(v, f"{where}[{k!r}]")
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [plain_data(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    hint = " (use str(path))" if isinstance(value, os.PathLike) else \
        " (use .tolist() or torch.as_tensor(...))" if isinstance(value, np.ndarray) else ""
    raise TypeError(f"cannot save {where}: it is a {type(value).__module__}.{type(value).__name__}"
                    f"{hint}; a checkpoint holds only tensors and plain Python values (str, int, "
                    "float, bool, None, lists, tuples and dicts of them), so that loading it can "
                    "never run code. Nothing was written")


def _alive(pid: int) -> bool:
    """True if a process with this id exists (it may still be writing its temporary file)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete the orphaned .NAME.<pid>-<hex>.tmp files that saves killed mid-write left next to path."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)-[0-9a-f]+\.(?:tmp|probe)")
    removed = []
    try:
        candidates = list(path.parent.iterdir())
    except OSError:
        return removed
    for tmp in candidates:
        found = pattern.fullmatch(tmp.name)
        if found is None:
            continue
        pid = int(found.group(1))
        try:
            old = time.time() - tmp.stat().st_mtime > _STALE_AFTER_S
        except OSError:
            continue
        # Our own pid: a save of this process that was interrupted; a dead pid: a killed process.
        if pid == os.getpid() or not _alive(pid) or old:
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed
