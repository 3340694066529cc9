"""The system's Chromium for the pages' browser tests, driven by Playwright's async API.

Playwright's own browser download cannot be used here: the tests launch Debian's Chromium
(`apt-get install chromium fonts-noto-cjk`; the CJK font, or Chinese renders as empty boxes).
Without one the browser tests are skipped, except with CI=true, where .ci/run installs it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

INSTALL = "apt-get install -y chromium fonts-noto-cjk (or set TIMEBANK_CHROMIUM to a Chromium binary)"


def chromium_path() -> str:
    """The Chromium to drive; skips (fails with CI=true) when there is none."""
    found = os.environ.get("TIMEBANK_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found and Path(found).exists():
        return found
    if os.environ.get("CI") == "true":
        pytest.fail(f"a browser is required in CI: {INSTALL}")
    pytest.skip(f"no Chromium on this machine: {INSTALL}")
