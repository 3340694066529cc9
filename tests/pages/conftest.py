"""The pages' in-process tests share the session's test client, without its cookies or redirects."""

from __future__ import annotations

from collections.abc import Iterator
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
