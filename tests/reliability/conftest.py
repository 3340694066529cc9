"""The reliability runs: fast versions by default, the long ones behind --reliability-long
(declared in tests/conftest.py, so it works from the repository root) or RELIABILITY_LONG=1."""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "long: a long reliability run; skipped unless --reliability-long is given")


def long_runs_enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("--reliability-long", default=False)) or os.environ.get("RELIABILITY_LONG") == "1"


@pytest.fixture(autouse=True)
def _skip_long_runs(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("long") and not long_runs_enabled(request.config):
        pytest.skip("a long reliability run: give --reliability-long (or RELIABILITY_LONG=1)")
