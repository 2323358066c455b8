"""Sending the inventory: the outbox message for one GLPI document, full or a diff.

The coordinator keeps the latest inventory it accepted from us; when little changed we
send only the changed sections against it (``glpi-diff``). What we last queued is kept
in the config dir (``inventory-last.json``: its outbox key, SHA-256 and the document).
A diff is made only when that last message was acknowledged or is still waiting in the
outbox (delivered in order, before the diff); when it was refused, or the state is
missing or damaged, the next message is a full document.

The SHA-256 is over the canonical JSON (sorted keys, no spaces, UTF-8); full documents
are sent in that form, so it is also the hash of the bytes sent. ``deviceid`` is set to
this agent's device id: the coordinator refuses an inventory for any other device.
"""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from protocol.canonical import document_bytes

from .outbox import MAX_BODY_BYTES, Outbox

KIND = "inventory"
STATE_FILE = "inventory-last.json"
# A diff is worth it when it is clearly smaller than the full document.
DIFF_RATIO = 0.5


canonical = document_bytes  # the coordinator hashes with the same function


def _pack(data: bytes) -> str:
    return base64.b64encode(gzip.compress(data, compresslevel=9, mtime=0)).decode("ascii")


def full_body(document: dict[str, Any]) -> dict[str, Any]:
    raw = canonical(document)
    return {
        "format": "glpi",
        "encoding": "gzip+base64",
        "data": _pack(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
    }


def diff_body(base: dict[str, Any], document: dict[str, Any]) -> dict[str, Any] | None:
    """The section-level diff from ``base`` to ``document``; None when a full document is
    needed (something outside ``content`` changed)."""
    if {k: v for k, v in base.items() if k != "content"} != {
        k: v for k, v in document.items() if k != "content"
    }:
        return None
    before, after = base.get("content", {}), document.get("content", {})
    diff = {
        "set": {k: v for k, v in after.items() if before.get(k) != v},
        "removed": sorted(k for k in before if k not in after),
    }
    return {
        "format": "glpi-diff",
        "base_sha256": hashlib.sha256(canonical(base)).hexdigest(),
        "encoding": "gzip+base64",
        "data": _pack(canonical(diff)),
        "sha256": hashlib.sha256(canonical(document)).hexdigest(),
    }


def _size(body: dict[str, Any]) -> int:
    return len(json.dumps(body, separators=(",", ":")).encode())


def _load_state(config_dir: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((config_dir / STATE_FILE).read_text())
        if isinstance(state, dict) and isinstance(state.get("document"), dict):
            return state
    except (OSError, ValueError):
        pass
    return None


def _base_is_known(outbox: Outbox, state: dict[str, Any]) -> bool:
    """The coordinator has (or will have, in order) the last document we queued."""
    key = state.get("key")
    if not isinstance(key, str):
        return False
    if outbox.contains(key):
        return True
    receipt = outbox.receipt(key)
    return receipt is not None and "refused" not in receipt


def build(
    document: dict[str, Any], device_id: str, config_dir: Path, outbox: Outbox
) -> dict[str, Any]:
    """The body to queue for ``document`` (stamped with ``device_id``)."""
    document = copy.deepcopy(document)
    document["deviceid"] = device_id
    full = full_body(document)
    state = _load_state(config_dir)
    if state is not None and _base_is_known(outbox, state):
        diff = diff_body(state["document"], document)
        if diff is not None and _size(diff) < _size(full) * DIFF_RATIO:
            return diff
    if _size(full) > MAX_BODY_BYTES:
        raise ValueError(
            f"the compressed inventory ({_size(full)} bytes) exceeds {MAX_BODY_BYTES} bytes"
        )
    return full


def queue(document: dict[str, Any], device_id: str, config_dir: Path, outbox: Outbox) -> str:
    """Put the inventory in the outbox (full or diff) and remember it; returns the key.
    Nothing is queued when the document did not change since the last one queued."""
    config_dir = Path(config_dir)
    stamped = copy.deepcopy(document)
    stamped["deviceid"] = device_id
    state = _load_state(config_dir)
    if (
        state is not None
        and state.get("sha256") == hashlib.sha256(canonical(stamped)).hexdigest()
        and _base_is_known(outbox, state)
    ):
        return str(state["key"])
    body = build(document, device_id, config_dir, outbox)
    key = outbox.put(KIND, body)
    path = config_dir / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"key": key, "sha256": body["sha256"], "document": stamped}))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return key
