"""The programs the passbook's tests read a PDF with: skipped with what to install, required in CI."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.tools import missing_tool
from timebank.errors import DomainError
from timebank.passbook.fonts import Font, find_font

INSTALL = "apt-get install -y fonts-noto-cjk poppler-utils zbar-tools"


def require_tools() -> Font:
    """A Chinese font, pdftoppm, pdftotext and zbarimg, or a skip (a failure with CI=true) naming the install."""
    missing = [tool for tool in ("pdftoppm", "pdftotext", "zbarimg") if shutil.which(tool) is None]
    try:
        font = find_font(None)
    except DomainError:
        missing.append("a Chinese font")
    if missing:
        missing_tool(", ".join(missing), INSTALL)
    return font


def pdf_text(pdf: Path) -> str:
    out = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, check=True, timeout=60)
    return out.stdout.decode()


def qr_codes(pdf: Path, dpi: int = 200) -> list[str]:
    """Each page rendered to PNG as a printer would, and its QR code read back by zbar (None if none)."""
    prefix = pdf.with_suffix("")
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", str(pdf), str(prefix)], check=True, timeout=120)
    codes = []
    for page in sorted(pdf.parent.glob(f"{prefix.name}-*.png")):
        found = subprocess.run(
            ["zbarimg", "--quiet", "--raw", "-Sbinary", str(page)], capture_output=True, check=False, timeout=60
        )
        codes.append(found.stdout.decode() if found.returncode == 0 else "")
    return codes
