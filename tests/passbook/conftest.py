"""The passbook's tests use the public log's served API (a signing key, a fast sealer)."""

from tests.log.conftest import logged

__all__ = ["logged"]
