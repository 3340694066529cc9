"""The pages' in-process tests share the session's test client, without its cookies or redirects."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient


@pytest.fixture
def pages(client: AsyncTestClient[Any]) -> Iterator[AsyncTestClient[Any]]:
    """The test client as a browser without history: no cookies at the start, redirects not followed."""
    client.cookies.clear()
    follow = client.follow_redirects
    client.follow_redirects = False
    yield client
    client.follow_redirects = follow
    client.cookies.clear()


SCREENSHOTS: list[Path] = []


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the browser tests put a screenshot of every page (both languages, both widths).

    TIMEBANK_SCREENSHOTS names the folder; otherwise a fresh temporary one, named at the end of the run.
    """
    named = os.environ.get("TIMEBANK_SCREENSHOTS")
    folder = Path(named) if named else tmp_path_factory.mktemp("page-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    SCREENSHOTS.append(folder)
    return folder


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for folder in SCREENSHOTS:
        terminalreporter.write_line(f"page screenshots: {folder}")
