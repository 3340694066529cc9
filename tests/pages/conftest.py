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


def _run_folder(config: pytest.Config) -> Path:
    """This run's screenshot folder: TIMEBANK_SCREENSHOTS, else one under the run's temporary
    directory, named by the main process and handed to each xdist worker, so every page of the run
    lands in one folder."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "screenshots" in workerinput:
        return Path(workerinput["screenshots"])
    named = os.environ.get("TIMEBANK_SCREENSHOTS")
    if named:
        return Path(named)
    return config._tmp_path_factory.getbasetemp() / "page-screenshots"  # type: ignore[attr-defined]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist, in the main process, for each worker it starts."""
    node.workerinput["screenshots"] = str(_run_folder(node.config))


@pytest.fixture(scope="session")
def screenshot_dir(pytestconfig: pytest.Config) -> Path:
    """Where the browser tests put a screenshot of every page (both languages, both widths)."""
    folder = _run_folder(pytestconfig)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if getattr(config, "workerinput", None) is not None:
        return
    folder = _run_folder(config)
    if folder.is_dir() and any(folder.iterdir()):
        terminalreporter.write_line(f"page screenshots: {folder}")
