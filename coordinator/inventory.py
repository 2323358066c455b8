"""Hardware and software inventories: the latest per device, what changed, search, exports.

Agents deliver their inventory through the durable outbox (``inbox.py``, kind
``"inventory"``), compressed, as a full GLPI JSON document or as a section-level diff
against the one we hold (see :func:`decode` for the body). What we keep:

- ``inventories``: the latest document of each device, and the SHA-256 the agent gave it
  (its diffs name that as their base);
- ``inventory_changes``: per upload, what changed, item by item (a memory module
  removed, a disk replaced, a package installed), newest first in the API;
- ``device_search``: one denormalised row per device (lowercased text, numbers) and
  ``device_terms``, its words: a search is indexed columns and index ranges, never a
  query into JSON nor a scan (see :func:`search`).

Rules for what is accepted, each refused with a reason and storing nothing:

- the compressed data is at most 190 KiB and decompresses (read with a bound, whatever
  the gzip header claims) to at most 20 MiB;
- ``sha256`` is the hex SHA-256 of the uncompressed JSON (for a diff: of the resulting
  document in canonical form, :func:`canonical`);
- ``deviceid`` must equal the id of the device whose authenticated link delivered it:
  an agent speaks only for itself (the agent's uploader stamps its own id);
- the document validates against the GLPI inventory schema.

The schema, ``inventory_schema.json``, is a copy of ``inventory.schema.json`` from
github.com/glpi-project/inventory_format (MIT licence, (c) Teclib').
"""

from __future__ import annotations

import base64
import binascii
import copy
import csv
import hashlib
import io
import json
import re
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import best_match
from sqlalchemy import and_, delete, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from protocol.canonical import document_bytes
from protocol.errors import ErrorCode, ProtocolError

from .clock import isoformat, utcnow
from .presence import Presence
from .storage.schema import device_search, device_terms, devices, inventories, inventory_changes

MAX_COMPRESSED = 190 * 1024
MAX_DOCUMENT = 20 * 1024 * 1024
MAX_CHANGES_PER_UPLOAD = 500  # beyond this, one summary row says how many more

_SCHEMA = json.loads((Path(__file__).with_name("inventory_schema.json")).read_text())
_VALIDATOR = Draft7Validator(_SCHEMA)

# What the inbox accepts as the body of an "inventory" delivery (checked before decoding).
_SHA = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_DATA = {"type": "string", "minLength": 1, "maxLength": (MAX_COMPRESSED + 2) // 3 * 4}
BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["format", "encoding", "data", "sha256"],
    "properties": {
        "format": {"enum": ["glpi", "glpi-diff"]},
        "encoding": {"const": "gzip+base64"},
        "data": _DATA,
        "sha256": _SHA,
        "base_sha256": _SHA,
    },
    "additionalProperties": False,
    "if": {"properties": {"format": {"const": "glpi-diff"}}},
    "then": {"required": ["base_sha256"]},
    "else": {"not": {"required": ["base_sha256"]}},
}

_DIFF_VALIDATOR = Draft7Validator(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["set", "removed"],
        "properties": {
            "set": {"type": "object", "propertyNames": {"maxLength": 64}},
            "removed": {
                "type": "array",
                "maxItems": 100,
                "items": {"type": "string", "maxLength": 64},
            },
        },
    }
)


class Refused(Exception):
    """A delivery we will not store; carries the error the agent receives."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.error = ProtocolError(ErrorCode.INVALID_MESSAGE, f"inventory: {reason}"[:250])


# The bytes a document's SHA-256 is computed over (for diffs; agents send full documents
# in this form too): the same function as the agent's.
canonical = document_bytes


def sha256(document: Any) -> str:
    return hashlib.sha256(canonical(document)).hexdigest()


def _inflate(data: str) -> bytes:
    """Base64, then gzip read with a hard bound: a bomb stops at MAX_DOCUMENT + 1 bytes."""
    try:
        compressed = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise Refused("data is not valid base64") from None
    if len(compressed) > MAX_COMPRESSED:
        raise Refused(f"compressed data exceeds {MAX_COMPRESSED} bytes")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip only
    try:
        out = inflater.decompress(compressed, MAX_DOCUMENT + 1)
    except zlib.error as exc:
        raise Refused(f"data is not valid gzip: {exc}") from None
    if len(out) > MAX_DOCUMENT:
        raise Refused(f"inventory exceeds {MAX_DOCUMENT} bytes once decompressed")
    if not inflater.eof or inflater.unused_data:
        raise Refused("gzip data is truncated or has trailing data")
    return out


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise Refused("decompressed data is not JSON") from None


def _check_document(document: Any, device_id: str) -> None:
    error = best_match(_VALIDATOR.iter_errors(document))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(document)"
        raise Refused(f"not a valid GLPI inventory at {where}: {error.message[:120]}")
    if document.get("deviceid") != device_id:
        raise Refused("deviceid is not this device's id: an agent uploads only its own inventory")


@dataclass(frozen=True)
class Upload:
    """A decoded delivery: a full document, or a diff still to apply to its base."""

    sha256: str
    document: dict[str, Any] | None = None
    base_sha256: str | None = None
    diff: dict[str, Any] | None = None


def decode(body: dict[str, Any], device_id: str) -> Upload:
    """Everything that can be checked without the database. Raises :class:`Refused`.
    CPU-bound (up to 20 MiB): run it in a thread."""
    raw = _inflate(body["data"])
    if body["format"] == "glpi":
        if hashlib.sha256(raw).hexdigest() != body["sha256"]:
            raise Refused("sha256 does not match the uncompressed document")
        document = _parse(raw)
        _check_document(document, device_id)
        return Upload(sha256=body["sha256"], document=document)
    diff = _parse(raw)
    error = best_match(_DIFF_VALIDATOR.iter_errors(diff))
    if error is not None:
        raise Refused(f"malformed diff: {error.message[:120]}")
    return Upload(sha256=body["sha256"], base_sha256=body["base_sha256"], diff=diff)


def apply_diff(base: dict[str, Any], diff: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(base)
    content = document.setdefault("content", {})
    for section in diff["removed"]:
        content.pop(section, None)
    content.update(copy.deepcopy(diff["set"]))
    return document


def make_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
    """The section-level diff from ``old`` to ``new``, or None when only a full document
    can express the change (something outside ``content`` changed)."""
    strip = {k: v for k, v in old.items() if k != "content"}
    if strip != {k: v for k, v in new.items() if k != "content"}:
        return None
    before, after = old.get("content", {}), new.get("content", {})
    return {
        "set": {k: v for k, v in after.items() if before.get(k) != v},
        "removed": sorted(k for k in before if k not in after),
    }


# --- what changed ------------------------------------------------------------------------

# Values that move on their own; a change in them is not news for on-site staff.
_IGNORED_SECTIONS = frozenset({"accesslog", "processes", "versionclient", "versionprovider"})
_IGNORED_FIELDS = {
    "drives": {"free"},
    "operatingsystem": {"boot_time"},
    "hardware": {"datelastloggeduser", "lastloggeduser"},
    "batteries": {"voltage"},
}


def _key(section: str, item: Any) -> str:
    if not isinstance(item, dict):
        return json.dumps(item, sort_keys=True)[:200]
    get = item.get
    if section == "softwares":
        parts = [get("name"), get("arch")]
    elif section == "memories":
        parts = [get("numslots"), get("serialnumber") if get("numslots") is None else None]
    elif section == "storages":
        parts = [get("serial") or get("name") or get("model")]
    elif section == "networks":
        parts = [
            get("macaddr") or get("mac"),
            get("ipaddress") or get("ipaddress6"),
            get("description"),
        ]
    elif section == "drives":
        parts = [get("volumn"), get("type")]
    else:
        parts = [get("name") or get("serial") or get("caption")]
        if parts == [None]:
            return json.dumps(item, sort_keys=True)[:200]
    return " / ".join(str(p) for p in parts if p not in (None, ""))


def _label(section: str, item: Any, key: str) -> str:
    if isinstance(item, dict):
        if section == "memories" and item.get("numslots") is not None:
            return f"memory slot {item['numslots']}"
        if section == "softwares":
            return f"software {key}"
        if section == "storages":
            return f"disk {item.get('model') or key}"
        if section == "drives":
            return f"filesystem {item.get('type') or key}"
        if section == "networks":
            return f"network {key}"
    return f"{section} {key}".strip()


def _short(value: Any) -> Any:
    text = json.dumps(value, sort_keys=True)
    return value if len(text) <= 2000 else text[:2000] + "..."


def _field_changes(section: str, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    ignored = _IGNORED_FIELDS.get(section, set())
    changed = {}
    for field in sorted(set(before) | set(after)):
        if field not in ignored and before.get(field) != after.get(field):
            changed[field] = [_short(before.get(field)), _short(after.get(field))]
    return changed


def _keyed(section: str, items: list[Any]) -> dict[str, Any]:
    keyed: dict[str, Any] = {}
    for item in items:
        key = base = _key(section, item)
        n = 2
        while key in keyed:
            key, n = f"{base} #{n}", n + 1
        keyed[key] = item
    return keyed


def compare(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """``(section, kind, summary)`` for every item added, removed or changed."""
    before, after = old.get("content", {}), new.get("content", {})
    changes: list[tuple[str, str, dict[str, Any]]] = []
    for section in sorted(set(before) | set(after)):
        if section in _IGNORED_SECTIONS:
            continue
        a, b = before.get(section), after.get(section)
        if a == b:
            continue
        if isinstance(a, list) or isinstance(b, list):
            olds = _keyed(section, a if isinstance(a, list) else [])
            news = _keyed(section, b if isinstance(b, list) else [])
            for key in olds.keys() - news.keys():
                label = _label(section, olds[key], key)
                changes.append((section, "removed", {"item": label, "before": _short(olds[key])}))
            for key in news.keys() - olds.keys():
                label = _label(section, news[key], key)
                changes.append((section, "added", {"item": label, "after": _short(news[key])}))
            for key in olds.keys() & news.keys():
                o, n = olds[key], news[key]
                if o == n:
                    continue
                fields = (
                    _field_changes(section, o, n)
                    if isinstance(o, dict) and isinstance(n, dict)
                    else {"value": [_short(o), _short(n)]}
                )
                if fields:
                    label = _label(section, n, key)
                    changes.append((section, "changed", {"item": label, "fields": fields}))
        elif a is None:
            changes.append((section, "added", {"item": section, "after": _short(b)}))
        elif b is None:
            changes.append((section, "removed", {"item": section, "before": _short(a)}))
        else:
            fields = (
                _field_changes(section, a, b)
                if isinstance(a, dict) and isinstance(b, dict)
                else {"value": [_short(a), _short(b)]}
            )
            if fields:
                changes.append((section, "changed", {"item": section, "fields": fields}))
    changes.sort(key=lambda c: (c[0], c[1], c[2]["item"]))
    return changes


# --- the search row ----------------------------------------------------------------------


def _text(value: Any, limit: int = 200) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip().lower()
    return text[:limit] or None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _list(content: dict[str, Any], section: str) -> list[dict[str, Any]]:
    value = content.get(section)
    return [i for i in value if isinstance(i, dict)] if isinstance(value, list) else []


def search_row(document: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The ``device_search`` values and the search terms of one document."""
    content = document.get("content", {})
    hardware = content.get("hardware") if isinstance(content.get("hardware"), dict) else {}
    bios = content.get("bios") if isinstance(content.get("bios"), dict) else {}
    system = content.get("operatingsystem")
    system = system if isinstance(system, dict) else {}
    users = _list(content, "users")
    cpus = _list(content, "cpus")
    user = hardware.get("userid") or (users[0].get("login") if users else None)
    memory = _int(hardware.get("memory"))
    if memory is None:
        sizes = [_int(m.get("capacity")) for m in _list(content, "memories")]
        memory = sum(s for s in sizes if s) or None
    frees = [f for f in (_int(d.get("free")) for d in _list(content, "drives")) if f is not None]
    wears = []
    for battery in _list(content, "batteries"):
        design, real = _int(battery.get("capacity")), _int(battery.get("real_capacity"))
        if design and real is not None and 0 <= real:
            wears.append(max(0, round(100 * (design - real) / design)))
    findings = []
    for finding in content.get("findings", []) if isinstance(content.get("findings"), list) else []:
        fid = finding.get("id") if isinstance(finding, dict) else finding
        if isinstance(fid, str) and fid:
            findings.append(fid.lower())
    row: dict[str, Any] = {
        "hostname": _text(hardware.get("name") or system.get("fqdn"), 253),
        "user_name": _text(user),
        "serial": _text(bios.get("ssn") or bios.get("msn")),
        "model": _text(bios.get("smodel") or hardware.get("model") or bios.get("mmodel")),
        "cpu": _text(cpus[0].get("name") if cpus else None),
        "os": _text(system.get("full_name") or system.get("name")),
        "memory_mb": memory,
        "min_disk_free_mb": min(frees) if frees else None,
        "max_battery_wear_pct": max(wears) if wears else None,
    }
    text: list[str | None] = [
        row[k] for k in ("hostname", "user_name", "serial", "model", "cpu", "os")
    ]
    text += [_text(s.get("name")) for s in _list(content, "softwares")]
    terms = {_term(word) for value in text if value for word in _words(value)}
    terms |= {_term(_FINDING + f) for f in findings}
    return row, sorted(terms)[:MAX_TERMS]


# Search terms: the words of each value (split at white space), and the parts of each word
# split at punctuation ("ws-0042" gives "ws-0042", "ws", "0042"); a query word matches
# the start of a term. Hex-encoded UTF-8, so a prefix is a range of plain strings whose
# order is the same under every collation (digits, then a-f; "g" sorts after them).
MAX_TERMS = 5000
_TERM_BYTES = 64
_FINDING = "\x01"  # findings are terms too, out of reach of typed words
_SPLIT = re.compile(r"[^\w]+")


def _words(value: str) -> set[str]:
    words = set()
    for word in value.lower().split():
        words.add(word)
        words.update(part for part in _SPLIT.split(word) if len(part) > 1)
    return words


def _term(word: str) -> str:
    return word.encode()[:_TERM_BYTES].decode(errors="ignore").encode().hex()


# --- storing -----------------------------------------------------------------------------


async def store(conn: AsyncConnection, device_id: str, upload: Upload) -> dict[str, Any]:
    """Keep an upload as the device's latest inventory, inside the inbox's transaction.
    Raises :class:`Refused` (the caller rolls back) when a diff's base is not ours."""
    current = (
        await conn.execute(
            select(inventories.c.sha256, inventories.c.document).where(
                inventories.c.device_id == device_id
            )
        )
    ).first()
    if upload.document is not None:
        document = upload.document
    else:
        assert upload.diff is not None
        if current is None or current.sha256 != upload.base_sha256:
            raise Refused("diff base is not the stored inventory; send a full inventory")
        document = apply_diff(current.document, upload.diff)
        if sha256(document) != upload.sha256:
            raise Refused("sha256 does not match the document the diff produces")
        _check_document(document, device_id)
    if current is not None and current.sha256 == upload.sha256:
        return {"inventory": upload.sha256, "changes": 0}
    now = utcnow()
    if current is None:
        changes = [("inventory", "added", {"item": "first inventory received"})]
        await conn.execute(
            insert(inventories).values(
                device_id=device_id, sha256=upload.sha256, document=document, received_at=now
            )
        )
    else:
        changes = compare(current.document, document)
        await conn.execute(
            update(inventories)
            .where(inventories.c.device_id == device_id)
            .values(sha256=upload.sha256, document=document, received_at=now)
        )
    if len(changes) > MAX_CHANGES_PER_UPLOAD:
        more = len(changes) - MAX_CHANGES_PER_UPLOAD + 1
        changes = changes[: MAX_CHANGES_PER_UPLOAD - 1]
        changes.append(("inventory", "changed", {"item": f"{more} more changes not listed"}))
    if changes:
        await conn.execute(
            insert(inventory_changes),
            [
                {"device_id": device_id, "at": now, "section": s[:64], "kind": k, "summary": summ}
                for s, k, summ in changes
            ],
        )
    row, terms = search_row(document)
    await conn.execute(delete(device_search).where(device_search.c.device_id == device_id))
    await conn.execute(delete(device_terms).where(device_terms.c.device_id == device_id))
    await conn.execute(insert(device_search).values(device_id=device_id, updated_at=now, **row))
    if terms:
        await conn.execute(
            insert(device_terms), [{"device_id": device_id, "term": t} for t in terms]
        )
    return {"inventory": upload.sha256, "changes": len(changes)}


# --- reading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    q: str | None = None
    ram_below: int | None = None
    disk_free_below: int | None = None
    battery_wear_above: int | None = None
    finding: str | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in vars(self).values())


# A word that many devices have is tested device by device, in hostname order, until the
# page is full. A rarer one is looked up first: the (short) list of its devices becomes
# the query's candidates. Deciding this ourselves, with a bounded read of the term index,
# keeps both kinds fast whatever the database's planner estimates for a range of terms.
COMMON = 1000


def _term_range(term: str, prefix: bool) -> Any:
    t = device_terms.c
    return and_(t.term >= term, t.term < term + "g") if prefix else t.term == term


async def _search_query(conn: AsyncConnection, filters: Filters) -> Any | None:
    """The query, or None when a word matches nothing."""
    s = device_search.c
    t = device_terms.c
    query = select(
        devices,
        s.user_name,
        s.serial,
        s.model,
        s.cpu,
        s.os,
        s.memory_mb,
        s.min_disk_free_mb,
        s.max_battery_wear_pct,
        s.updated_at,
    ).select_from(devices.outerjoin(device_search, device_search.c.device_id == devices.c.id))
    conditions = []
    words = "".join(c for c in (filters.q or "") if c.isprintable()).lower().split()
    terms = [(_term(word), True) for word in words[:8]]
    if filters.finding is not None:
        terms.append((_term(_FINDING + filters.finding.lower()), False))
    candidates: set[str] | None = None
    for term, prefix in terms:
        where = _term_range(term, prefix)
        rows = (await conn.execute(select(t.device_id).where(where).limit(COMMON))).all()
        if len(rows) >= COMMON:
            conditions.append(exists(select(t.device_id).where(t.device_id == devices.c.id, where)))
        else:
            found = {r.device_id for r in rows}
            candidates = found if candidates is None else candidates & found
            if not candidates:
                return None
    if candidates is not None:
        conditions.append(devices.c.id.in_(sorted(candidates)))
    if filters.ram_below is not None:
        conditions.append(s.memory_mb < filters.ram_below)
    if filters.disk_free_below is not None:
        conditions.append(s.min_disk_free_mb < filters.disk_free_below)
    if filters.battery_wear_above is not None:
        conditions.append(s.max_battery_wear_pct > filters.battery_wear_above)
    if conditions:
        query = query.where(and_(*conditions))
    return query.order_by(devices.c.hostname, devices.c.id)


def _public(row: Any, presence: Presence | None) -> dict[str, Any]:
    found = {
        "id": row.id,
        "hostname": row.hostname,
        "online": presence.is_online(row.id) if presence is not None else False,
        "last_seen": isoformat(row.last_seen_at),
        "enrolled_at": isoformat(row.enrolled_at),
        "agent_version": row.agent_version,
        "facts": row.facts or {},
        "inventory": None,
    }
    if row.updated_at is not None:
        found["inventory"] = {
            "user": row.user_name,
            "serial": row.serial,
            "model": row.model,
            "cpu": row.cpu,
            "os": row.os,
            "memory_mb": row.memory_mb,
            "min_disk_free_mb": row.min_disk_free_mb,
            "max_battery_wear_pct": row.max_battery_wear_pct,
            "received_at": isoformat(row.updated_at),
        }
    return found


async def search(
    engine: AsyncEngine,
    filters: Filters,
    presence: Presence | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Devices matching every filter, by hostname. Each word of ``q`` must begin a word
    (or a part of one, split at punctuation) of the hostname, user, serial, model, CPU,
    OS or a software name: ``lat`` finds "latitude 5420", ``0042`` finds "ws-0042"."""
    async with engine.connect() as conn:
        query = await _search_query(conn, filters)
        if query is None:
            return []
        rows = (await conn.execute(query.limit(limit).offset(offset))).all()
    return [_public(row, presence) for row in rows]


async def latest(engine: AsyncEngine, device_id: str) -> tuple[dict[str, Any], datetime] | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(inventories.c.document, inventories.c.received_at).where(
                    inventories.c.device_id == device_id
                )
            )
        ).first()
    return None if row is None else (row.document, row.received_at)


async def device_exists(engine: AsyncEngine, device_id: str) -> bool:
    async with engine.connect() as conn:
        found = await conn.execute(select(devices.c.id).where(devices.c.id == device_id))
        return found.first() is not None


async def history(
    engine: AsyncEngine, device_id: str, limit: int = 100, before: int | None = None
) -> list[dict[str, Any]]:
    """Changes, newest first; ``before`` (an id) pages back."""
    c = inventory_changes.c
    query = select(inventory_changes).where(c.device_id == device_id)
    if before is not None:
        query = query.where(c.id < before)
    async with engine.connect() as conn:
        rows = (await conn.execute(query.order_by(c.id.desc()).limit(limit))).all()
    return [
        {
            "id": r.id,
            "at": isoformat(r.at),
            "section": r.section,
            "kind": r.kind,
            "summary": r.summary,
        }
        for r in rows
    ]


CSV_COLUMNS = (
    "id",
    "hostname",
    "user",
    "serial",
    "model",
    "cpu",
    "os",
    "memory_mb",
    "min_disk_free_mb",
    "max_battery_wear_pct",
    "last_seen",
    "inventory_received_at",
)


def _cell(value: Any) -> Any:
    # A spreadsheet runs a cell that starts with = + - @ as a formula: quote it.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def to_csv(found: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for d in found:
        inv = d["inventory"] or {}
        writer.writerow(
            _cell(v)
            for v in (
                d["id"],
                d["hostname"],
                inv.get("user"),
                inv.get("serial"),
                inv.get("model"),
                inv.get("cpu"),
                inv.get("os"),
                inv.get("memory_mb"),
                inv.get("min_disk_free_mb"),
                inv.get("max_battery_wear_pct"),
                d["last_seen"],
                inv.get("received_at"),
            )
        )
    return out.getvalue()
