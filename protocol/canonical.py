"""Canonical JSON: the exact bytes both ends hash or sign, so they agree on them.

Sorted keys, no spaces, no NaN or infinities. Inventories are hashed as UTF-8; remote
session receipts are signed as ASCII (``docs/remote-sessions.md``), which any JSON
library in any language reproduces without a Unicode normalisation question.
"""

from __future__ import annotations

import json
from typing import Any


def document_bytes(document: Any) -> bytes:
    """What an inventory's SHA-256 is computed over (agent and coordinator)."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def receipt_bytes(receipt: dict[str, Any]) -> bytes:
    """What the device's signature of a consent or end receipt covers."""
    return json.dumps(
        receipt, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode()
