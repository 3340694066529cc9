"""docs/errors.md, the documented list of stable error codes, rendered from the one registry.

`python -m timebank.http.error_codes_doc > docs/errors.md` regenerates it; tests/api/test_error_codes_doc.py
proves the committed file is current, so the documentation cannot drift from what the service sends.
"""

from __future__ import annotations

from timebank.errors import CODES
from timebank.http.responses import EXAMPLES

HEADER = """\
# Error codes

Every error the service sends is RFC 9457 problem details (`Content-Type: application/problem+json`)
with a stable `code`: a code is added, never renamed or removed. `title` and `detail` are English, or
Chinese when the request says `Accept-Language: zh-CN` (or `zh`); `code` never changes. Each
operation in the OpenAPI document (`/schema/openapi.json`) lists, per status, exactly the codes it can
send.

**Remembered** codes are what a business rule decided: a retry with the same `Idempotency-Key` and
body gets the same answer again (with `Idempotent-Replayed: true`), even if the cause has since gone
away. Every other refusal (authentication, permission, a malformed or oversized request, throttling,
unavailability) is not remembered: fix the cause and retry with the same key.

This file is generated from `timebank/errors.py` by `python -m timebank.http.error_codes_doc`.

| code | status | remembered | title | 中文 | example detail |
|---|---|---|---|---|---|
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render() -> str:
    rows = [
        f"| `{code}` | {entry.status} | {'yes' if entry.remembered else 'no'} | {entry.title} | {entry.title_zh} | "
        f"{_cell(EXAMPLES[code]['detail'])} |"
        for code, entry in CODES.items()
    ]
    return HEADER + "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(render(), end="")
