"""A real agent uploads its inventory through its outbox; on-site staff search it.

Runs the real coordinator and agent, on SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import copy
import csv
import gzip
import io
import json
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from agent import inventory_upload
from agent.outbox import Outbox
from tests.conftest import ApiClient, Coordinator, wait_for
from tests.e2e.conftest import wait_online

EXAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "glpi" / "glpi-example-computer_1.json"
HTML_NAME = "<img src=x onerror=alert(1)>glpixps"


def _search(client: ApiClient, **params: Any) -> list[str]:
    found = client.get("/api/v1/devices?" + urlencode(params))["devices"]
    return [d["id"] for d in found]


def _drain(outbox: Outbox) -> None:
    wait_for(lambda: len(outbox) == 0, timeout=30, what="the outbox to drain")


def _raw(client: ApiClient, path: str) -> tuple[int, str, bytes]:
    headers = {"Authorization": f"Bearer {client.key}"}
    req = urllib.request.Request(client.base + path, headers=headers)
    with urllib.request.urlopen(req, context=client.context, timeout=30) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), resp.read()


def _stored(coordinator: Coordinator, device_id: str) -> tuple[Any, ...]:
    inv = coordinator.sql("select sha256 from inventories where device_id = ?", device_id)
    changes = coordinator.sql(
        "select count(*) from inventory_changes where device_id = ?", device_id
    )
    search = coordinator.sql(
        "select memory_mb, updated_at from device_search where device_id = ?", device_id
    )
    terms = coordinator.sql("select count(*) from device_terms where device_id = ?", device_id)
    return inv, changes, search, terms


def _body(raw: bytes, sha: str | None = None, **extra: Any) -> dict[str, Any]:
    import hashlib

    return {
        "format": "glpi",
        "encoding": "gzip+base64",
        "data": base64.b64encode(gzip.compress(raw)).decode(),
        "sha256": sha or hashlib.sha256(raw).hexdigest(),
        **extra,
    }


def test_inventory_upload_history_search_and_refusals(
    coordinator_any_db: Coordinator, make_agent, api
) -> None:
    coordinator = coordinator_any_db
    agent = make_agent(coordinator)
    agent.enroll()
    agent.start()
    client = api(coordinator, role="onsite")
    device_id = agent.device_id
    wait_online(client, device_id)
    # The service takes and uploads the machine's own inventory when it starts.
    wait_for(
        lambda: (
            coordinator.sql("select count(*) from inventories where device_id = ?", device_id)
            == [(1,)]
        ),
        60,
        what="the agent's own inventory",
    )
    own = client.get(f"/api/v1/devices/{device_id}/inventory")["document"]
    assert own["deviceid"] == device_id and own["content"]["operatingsystem"]["kernel_name"]
    other = make_agent(coordinator, "other")  # enrolled, never inventoried
    other.enroll()

    document = json.loads(EXAMPLE.read_text())
    outbox = Outbox(agent.config_dir / "outbox.db")
    try:
        # 1. the full inventory, through the real outbox and link
        first_key = inventory_upload.queue(document, device_id, agent.config_dir, outbox)
        _drain(outbox)
        assert outbox.receipt(first_key)["changes"] >= 1
        assert _search(client, q="glpixps") == [device_id]
        assert _search(client, q="640HP72") == [device_id]  # serial, any case
        assert _search(client, q="gitg") == [device_id]  # a software name
        assert _search(client, q="trasher xps") == [device_id]  # user and model, all words
        assert _search(client, q="no-such-thing") == []
        assert _search(client, ram_below=8000) == [device_id]
        assert _search(client, ram_below=4000) == []
        assert _search(client, battery_wear_above=10) == [device_id]
        assert _search(client, disk_free_below=100, q="glpixps") == []
        everyone = _search(client)  # no filter: every device, as before
        assert set(everyone) == {device_id, other.device_id}
        listed = client.get("/api/v1/devices?q=glpixps")["devices"][0]
        assert {"id", "hostname", "online", "last_seen"} <= set(listed)
        assert listed["online"] is True
        assert listed["inventory"]["memory_mb"] == 7800

        stored = client.get(f"/api/v1/devices/{device_id}/inventory")
        assert stored["document"]["deviceid"] == device_id
        assert stored["document"]["content"] == document["content"]

        # 2. a memory module removed, a software added: sent as a diff
        second = copy.deepcopy(document)
        del second["content"]["memories"][1]
        second["content"]["hardware"]["memory"] = 3900
        second["content"]["hardware"]["name"] = HTML_NAME
        second["content"]["softwares"].append(
            {"name": "htop", "arch": "x86_64", "version": "3.3.0", "from": "rpm"}
        )
        key = inventory_upload.queue(second, device_id, agent.config_dir, outbox)
        assert outbox.pending()[0].body["format"] == "glpi-diff"
        _drain(outbox)
        assert "refused" not in outbox.receipt(key)
        history = client.get(f"/api/v1/devices/{device_id}/history")["changes"]
        kinds = {(c["section"], c["kind"], c["summary"]["item"]) for c in history}
        assert ("memories", "removed", "memory slot 2") in kinds
        assert ("softwares", "added", "software htop / x86_64") in kinds
        # The service's own first upload opened the history (the page shows the newest).
        assert coordinator.sql(
            "select count(*) from inventory_changes where device_id = ? and kind = 'added'"
            " and section = 'inventory'",
            device_id,
        ) == [(1,)]
        assert [c["id"] for c in history] == sorted((c["id"] for c in history), reverse=True)
        assert _search(client, q="htop") == [device_id]
        assert _search(client, ram_below=4000) == [device_id]
        # strings from agents come back as data, never markup
        assert _search(client, q="onerror=alert") == [device_id]
        latest = client.get(f"/api/v1/devices/{device_id}/inventory")["document"]
        assert latest["content"]["hardware"]["name"] == HTML_NAME

        # 3. exports
        status, ctype, raw = _raw(client, "/api/v1/devices/export.csv?ram_below=4000")
        assert status == 200 and ctype.startswith("text/csv")
        rows = list(csv.reader(io.StringIO(raw.decode())))
        assert rows[0][:3] == ["id", "hostname", "user"]
        assert len(rows) == 2 and rows[1][0] == device_id and rows[1][3] == "640hp72"
        status, ctype, raw = _raw(client, "/api/v1/devices/export.csv?q=nothing-matches")
        assert len(list(csv.reader(io.StringIO(raw.decode())))) == 1
        status, ctype, raw = _raw(client, f"/api/v1/devices/{device_id}/inventory.glpi.json")
        assert json.loads(raw)["content"]["hardware"]["name"] == HTML_NAME

        # 4. refusals: each one rejected, dropped by the agent, nothing stored
        before = _stored(coordinator, device_id)
        messages_before = coordinator.sql("select count(*) from agent_messages")
        invalid = copy.deepcopy(second)
        invalid["deviceid"] = device_id
        invalid["content"]["memories"][0]["capacity"] = "lots"
        foreign = copy.deepcopy(second)
        foreign["deviceid"] = other.device_id
        good = inventory_upload.canonical({**second, "deviceid": device_id})
        bomb = gzip.compress(b"\0" * (50 * 1024 * 1024))
        unknown_base = inventory_upload.diff_body(
            {**document, "deviceid": device_id}, {**second, "deviceid": device_id}
        )
        assert unknown_base is not None
        unknown_base["base_sha256"] = "f" * 64
        bad = {
            "schema": inventory_upload.full_body(invalid),
            "sha256": _body(good, sha="0" * 64),
            "bomb": {**_body(b""), "data": base64.b64encode(bomb).decode()},
            "foreign": inventory_upload.full_body(foreign),
            "unknown base": unknown_base,
        }
        keys = {name: outbox.put("inventory", body) for name, body in bad.items()}
        _drain(outbox)
        reasons = {name: outbox.receipt(k) for name, k in keys.items()}
        assert all(r and r["refused"] == "invalid_message" for r in reasons.values()), reasons
        assert "memories/0/capacity" in reasons["schema"]["message"]
        assert "sha256" in reasons["sha256"]["message"]
        assert "decompressed" in reasons["bomb"]["message"]
        assert "own" in reasons["foreign"]["message"]
        assert "base" in reasons["unknown base"]["message"]
        assert _stored(coordinator, device_id) == before
        assert coordinator.sql("select count(*) from agent_messages") == messages_before
        assert coordinator.sql(
            "select count(*) from inventories where device_id = ?", other.device_id
        ) == [(0,)]

        # 5. after a refused diff the agent's next upload is a full document
        third = copy.deepcopy(second)
        del third["content"]["printers"]
        key = inventory_upload.queue(third, device_id, agent.config_dir, outbox)
        assert outbox.pending()[0].body["format"] == "glpi-diff"  # base was acknowledged
        _drain(outbox)
        assert "refused" not in outbox.receipt(key)
    finally:
        outbox.close()

    # 6. the API: bad filters name the parameter; unknown devices are 404
    for param, value in (("ram_below", "-1"), ("battery_wear_above", "101"), ("limit", "x")):
        status, body = client.request("GET", f"/api/v1/devices?{param}={value}")
        assert status == 400 and body["error"]["field"] == param, body
    status, body = client.request("GET", "/api/v1/devices/export.csv?disk_free_below=abc")
    assert status == 400 and body["error"]["field"] == "disk_free_below"
    for path in ("inventory", "history", "inventory.glpi.json"):
        status, body = client.request("GET", f"/api/v1/devices/nope/{path}")
        assert status == 404 and body["error"]["code"] == "not_found"
    status, body = client.request("GET", f"/api/v1/devices/{other.device_id}/inventory")
    assert status == 404
    status, _ = api(coordinator, key=None).request("GET", "/api/v1/devices?q=x")
    assert status == 401
