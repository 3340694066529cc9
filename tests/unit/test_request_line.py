"""Raw UTF-8 in a request line becomes what percent-encoding would have sent; nothing else changes."""

from __future__ import annotations

import pytest

from timebank.server import percent_encode_target


@pytest.mark.parametrize(
    ("line", "sent"),
    [
        ("GET /v1/x/members?q=周 HTTP/1.1\r\n", b"GET /v1/x/members?q=%E5%91%A8 HTTP/1.1\r\n"),
        ("GET /v1/communities/紫轩 HTTP/1.1\n", b"GET /v1/communities/%E7%B4%AB%E8%BD%A9 HTTP/1.1\n"),
        ("GET /v1/me HTTP/1.1\r\n", b"GET /v1/me HTTP/1.1\r\n"),
        ("GET /v1/me?q=%E5%91%A8 HTTP/1.0\r\n", b"GET /v1/me?q=%E5%91%A8 HTTP/1.0\r\n"),
    ],
)
def test_raw_utf8_is_percent_encoded(line: str, sent: bytes) -> None:
    assert percent_encode_target(line.encode()) == sent


@pytest.mark.parametrize(
    "line",
    [
        b"GET /a b HTTP/1.1\r\n",  # a space in the target: the parser refuses it, as it should
        b"GET /\xe5\x91\xa8\r\n",  # no HTTP version: not a request line this code rewrites
        b"\xe5\x91\xa8 / HTTP/1.1\r\n",  # not a method
    ],
)
def test_other_lines_are_left_to_the_parser(line: bytes) -> None:
    assert percent_encode_target(line) == line


def test_bytes_that_are_not_utf8_are_encoded_as_they_are() -> None:
    assert percent_encode_target(b"GET /x?q=\xff HTTP/1.1\r\n") == b"GET /x?q=%FF HTTP/1.1\r\n"
