"""Tests that need a program of the system (Go, Chromium, poppler, wrk…): without it they are skipped
on a developer's machine with one line saying how to install it, and fail in CI (CI=true), whose
`.ci/run` installs every one of them, so a missing tool can never pass as a skipped check."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing_tool(what: str, install: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} required in CI: {install}")
    pytest.skip(f"{what} not installed: {install}")
