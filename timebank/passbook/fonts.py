"""Finding a font that writes Chinese for the passbook PDF.

The font named by TIMEBANK_PDF_FONT wins; otherwise fontconfig's choice for Chinese, then the usual
places of Noto Sans CJK, WenQuanYi and AR PL fonts. A font counts only if it has a glyph for every
character the passbook always prints (digits and its own Chinese words), so a fallback font without
digits (Droid Sans Fallback) is passed over. The PDF embeds the font as a subset of the glyphs used.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from fontTools.ttLib import TTCollection, TTFont, TTLibError

from timebank.errors import DomainError

# What to install where no font is found (said in the messages below): Debian's package of Noto Sans
# CJK, an OpenType collection that the PDF library embeds as a CFF subset.
INSTALL = "apt-get install fonts-noto-cjk"

# Every character the passbook prints whatever the data: a font must have all of them.
REQUIRED = "0123456789-:/.+…时间银行存折姓名编号社区年月日小时分存入支出余额第页共尚待公开日志"

_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/wenquanyi/wqy-zenhei/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)


class FontMissingError(DomainError):
    """No usable Chinese font: the passbook cannot be written. The detail says what to install."""

    code = "pdf_font_missing"
    # Retry-After of the 503: enough time to install a font.
    retry_after = 300


@dataclass(frozen=True)
class Font:
    path: str
    # The face within a collection (.ttc/.otc): the Simplified Chinese one where there is one.
    index: int


def _face_name(face: TTFont) -> str:
    name = face["name"].getDebugName(1)
    return name or ""


def _has_required(face: TTFont) -> bool:
    cmap = face.getBestCmap() or {}
    return all(ord(character) in cmap for character in REQUIRED)


def usable(path: str) -> Font | None:
    """The path as a Font if it holds a face with every required glyph (the SC face first)."""
    try:
        # Opened here and read within the block: fontTools leaves a file it failed to parse open.
        with Path(path).open("rb") as file:
            if Path(path).suffix.lower() in {".ttc", ".otc"}:
                faces = list(TTCollection(file, lazy=True).fonts)
            else:
                faces = [TTFont(file, lazy=True)]
            order = sorted(range(len(faces)), key=lambda i: 0 if " SC" in _face_name(faces[i]) else 1)
            found = next((i for i in order if _has_required(faces[i])), None)
    except (OSError, TTLibError, AssertionError, KeyError, ValueError, IndexError, struct.error):
        return None
    return None if found is None else Font(path, found)


def _fontconfig_choice() -> str | None:
    fc_match = shutil.which("fc-match")
    if fc_match is None:
        return None
    try:
        found = subprocess.run(  # noqa: S603 (a fixed program and arguments)
            [fc_match, "-f", "%{file}", ":lang=zh-cn"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return found.stdout.strip() or None


@lru_cache(maxsize=8)
def _find(setting: str | None) -> Font | str:
    """The font, or the reason there is none (cached: the disk's fonts change only by installing)."""
    if setting:
        font = usable(setting)
        if font is None:
            return (
                f"TIMEBANK_PDF_FONT names {setting}, which is not a font file with Chinese glyphs:"
                " name a .ttf, .otf or .ttc font that has them, or install one with `apt-get install fonts-noto-cjk`"
            )
        return font
    for path in (_fontconfig_choice(), *_CANDIDATES):
        if path and Path(path).is_file():
            font = usable(path)
            if font is not None:
                return font
    return (
        "no font with Chinese glyphs is installed for the passbook PDF:"
        " install one with `apt-get install fonts-noto-cjk`, or name a .ttf, .otf or .ttc font in TIMEBANK_PDF_FONT"
    )


def find_font(setting: str | None) -> Font:
    """The passbook's font, or FontMissingError saying exactly what to install."""
    found = _find(setting)
    if isinstance(found, str):
        _find.cache_clear()  # installing a font fixes it without a restart
        raise FontMissingError(found)
    return found
