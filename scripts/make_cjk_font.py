"""Write data/fonts/LLMLabSansSC-Regular.otf: the part of Noto Sans CJK SC the course needs.

    sudo apt-get install fonts-noto-cjk      # Debian/Ubuntu: NotoSansCJK-Regular.ttc
    .venv/bin/python scripts/make_cjk_font.py [path/to/NotoSansCJK-Regular.ttc]

The full font is 19 MB (every CJK character, five regional styles); the subset keeps the Simplified
Chinese face and only these characters: every character of the course's simplified Chinese data and of tang300.txt (lesson 01), the 3,755
level-1 hanzi of GB 2312 (the common characters of simplified Chinese: about 99.7 % of the
characters of everyday text are among them), CJK and fullwidth punctuation, and printable ASCII;
hinting is dropped (it matters for small screen text, not for plots). The family is renamed so that it is never mistaken for a full
system Noto font. Licence: SIL Open Font License 1.1 (data/fonts/OFL.txt), as the original.
Then update data/SHA256SUMS (the test suite checks every file listed there).
"""
from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTCollection

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "fonts" / "LLMLabSansSC-Regular.otf"
FAMILY = "LLMLab Sans SC"  # a Noto Sans CJK SC subset
SOURCE_FACE = "Noto Sans CJK SC"


def gb2312_level1() -> set[str]:
    """The 3,755 level-1 hanzi of GB 2312 (rows 16-55 of its 94 x 94 table): the common ones."""
    chars = set()
    for row in range(0xB0, 0xD8):
        for col in range(0xA1, 0xFF):
            try:
                chars.add(bytes([row, col]).decode("gb2312"))
            except UnicodeDecodeError:
                pass  # row 55 has 5 unused cells
    return chars


def wanted_characters() -> set[str]:
    """The characters the subset keeps."""
    chars = gb2312_level1()
    chinese = ROOT / "data" / "chinese"
    for path in [*sorted(chinese.glob("*_simplified.txt")), chinese / "tang300.txt"]:
        chars |= set(path.read_text(encoding="utf-8"))  # lesson 01 shows tang300 as it is
    chars |= {chr(c) for c in range(0x20, 0x7F)}           # ASCII
    chars |= {chr(c) for c in range(0x3000, 0x3040)}       # CJK punctuation
    chars |= {chr(c) for c in range(0xFF01, 0xFF5F)}       # fullwidth forms
    chars |= set("·—‘’“”…")
    return {c for c in chars if c.isprintable()}


def main(source: str = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc") -> None:
    faces = TTCollection(source).fonts
    font = next(f for f in faces if f["name"].getDebugName(1) == SOURCE_FACE)
    options = subset.Options()
    options.name_languages = ["*"]
    options.layout_features = ["*"]
    options.hinting = False
    subsetter = subset.Subsetter(options)
    subsetter.populate(text="".join(sorted(wanted_characters())))
    subsetter.subset(font)
    names = font["name"]
    # family (1, 16), unique id (3), full name (4), PostScript name (6): no "Noto" left in them
    renamed = {1: FAMILY, 3: f"{FAMILY}-subset", 4: FAMILY, 6: "LLMLabSansSC-Regular", 16: FAMILY}
    for record in list(names.names):
        if record.nameID in renamed:
            names.setName(renamed[record.nameID], record.nameID, record.platformID,
                          record.platEncID, record.langID)
    font["CFF "].cff.fontNames = ["LLMLabSansSC-Regular"]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    font.save(OUT)
    cmap = font.getBestCmap()
    print(f"wrote {OUT.relative_to(ROOT)}: {OUT.stat().st_size:,} bytes, {len(cmap):,} characters")


if __name__ == "__main__":
    main(*sys.argv[1:])
