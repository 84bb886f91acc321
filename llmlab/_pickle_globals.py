"""Which Python objects a pickle would import, found by reading its opcodes (nothing is run).

torch.load(weights_only=True) already refuses a file that would import anything but tensors and
plain containers, but its message for most such files reads "truncated or corrupted" and suggests
weights_only=False, the one thing that would run the file's code. This scan lets the checkpoint
loader tell the two apart: a well-formed pickle asking for foreign objects is refused for safety;
bytes that do not parse are damaged.
"""
from __future__ import annotations

import io
import pickletools
import zipfile
from pathlib import Path

# What save_checkpoint's files import: tensor rebuilders, storages, dtypes, OrderedDict.
_SAFE_MODULES = ("torch", "collections")
_STRING_OPS = ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING",
               "BINSTRING", "STRING")


def _pickles_in(path: Path) -> list[bytes]:
    """The pickle streams of a file: data.pkl for torch's zip format, else the file's bytes."""
    raw = path.read_bytes()
    if zipfile.is_zipfile(io.BytesIO(raw)):
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as z:
                return [z.read(n) for n in z.namelist() if n.endswith(".pkl")]
        except (zipfile.BadZipFile, OSError, ValueError):
            return []
    return [raw]  # legacy torch.save or a raw pickle: several pickles one after another


def _globals_in(stream: bytes) -> list[str]:
    """'module.name' of every object the complete pickles in stream import, in order."""
    found, buf = [], io.BytesIO(stream)
    while buf.tell() < len(stream):
        names, strings = [], []  # STACK_GLOBAL's module and name are the two strings pushed last
        try:
            for op, arg, _ in pickletools.genops(buf):  # reads one pickle, up to its STOP
                if op.name in _STRING_OPS and isinstance(arg, (str, bytes)):
                    strings.append(arg if isinstance(arg, str) else arg.decode("latin-1"))
                elif op.name in ("GLOBAL", "INST"):
                    names.append(".".join(str(arg).split(" ", 1)))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    names.append(f"{strings[-2]}.{strings[-1]}")
        except Exception:  # not (or no longer) a pickle: raw tensor bytes, text or damage
            break
        found += names  # only a pickle that parsed to its end counts
    return found


def foreign_globals(path: Path) -> list[str]:
    """The objects, other than torch's and collections', that loading path would import."""
    names = [g for s in _pickles_in(Path(path)) for g in _globals_in(s)]
    foreign = [g for g in names if g.split(".")[0] not in _SAFE_MODULES]
    return list(dict.fromkeys(foreign))  # unique, in order of appearance
