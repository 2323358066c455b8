"""Tickets through the REST API of a real coordinator: lifecycle, roles, search, errors."""

import re

from tests.conftest import ApiClient


def new_ticket(client: ApiClient, **fields):
    body = {
        "subject": "Printer jams on floor 3",
        "description": "Paper stuck in tray 2",
        "channel": "phone",
        **fields,
    }
    status, ticket = client.request("POST", "/api/v1/tickets", body)
    assert status == 201, ticket
    return ticket


def act(client: ApiClient, reference: str, action: str, **fields):
    return client.request(
        "POST", f"/api/v1/tickets/{reference}/actions", {"action": action, **fields}
    )


def test_phone_ticket_gets_a_reference_priority_and_due_times(staff):
    ticket = new_ticket(staff["l1"], impact=1, urgency=2, requester="Ada (accounting)")
    assert re.fullmatch(r"BD-\d{6}", ticket["reference"])
    assert ticket["priority"] == 2 and ticket["priority_name"] == "high"
    assert ticket["status"] == "new" and ticket["level"] == 1 and ticket["group"] == "l1"
    assert ticket["sla"]["own_due_at"] < ticket["sla"]["resolve_due_at"]
    assert ticket["timeline"][0]["kind"] == "created"
    second = new_ticket(staff["l1"])
    assert second["reference"] > ticket["reference"]  # sortable


def test_unknown_and_malformed_fields_are_named(staff):
    before = staff["l1"].get("/api/v1/tickets")["total"]
    status, body = staff["l1"].request(
        "POST", "/api/v1/tickets", {"subject": "x", "description": "y", "colour": "red"}
    )
    assert status == 400 and body["error"]["field"] == "colour"
    status, body = staff["l1"].request(
        "POST", "/api/v1/tickets", {"subject": "x", "description": "y", "impact": 9}
    )
    assert status == 400 and body["error"]["field"] == "impact"
    status, body = staff["l1"].request("POST", "/api/v1/tickets", {"description": "y"})
    assert status == 400 and body["error"]["field"] == "subject"
    status, body = staff["l1"].request("GET", "/api/v1/tickets?level=7")
    assert status == 400 and body["error"]["field"] == "level"
    assert staff["l1"].get("/api/v1/tickets")["total"] == before  # nothing was stored


def test_illegal_transition_is_409_and_changes_nothing(staff):
    ticket = new_ticket(staff["l1"])
    status, body = act(staff["l1"], ticket["reference"], "close")
    assert status == 409 and body["error"]["code"] == "conflict"
    after = staff["l1"].get(f"/api/v1/tickets/{ticket['reference']}")
    assert after["status"] == "new" and len(after["timeline"]) == 1


def test_l1_takes_escalates_and_l2_sees_it_in_its_queue(staff):
    ref = new_ticket(staff["l1"])["reference"]
    status, taken = act(staff["l1"], ref, "take")
    assert (
        status == 200
        and taken["status"] == "in_progress"
        and taken["assignee"] == taken["timeline"][1]["data"]["assignee"]
    )
    status, escalated = act(staff["l1"], ref, "escalate", comment="needs remote access")
    assert status == 200
    assert (escalated["level"], escalated["status"], escalated["assignee"]) == (
        2,
        "escalated",
        None,
    )
    l2_queue = staff["l2"].get("/api/v1/tickets?level=2&status=open")["tickets"]
    assert ref in [t["reference"] for t in l2_queue]
    assert ref not in [
        t["reference"] for t in staff["l2"].get("/api/v1/tickets?level=1")["tickets"]
    ]
    status, mine = act(staff["l2"], ref, "take")
    assert status == 200 and mine["level"] == 2 and mine["status"] == "in_progress"
    kinds = [e["kind"] for e in mine["timeline"]]
    assert "level" in kinds and "comment" in kinds


def test_escalation_is_audited(shared_desk, staff):
    ref = new_ticket(staff["l1"])["reference"]
    act(staff["l1"], ref, "escalate")
    rows = shared_desk.sql("select action, target from audit_log where action = 'ticket.escalated'")
    assert ("ticket.escalated", ref) in rows


def test_role_refused_is_403_and_audited(shared_desk, staff):
    ref = new_ticket(staff["l1"])["reference"]
    act(staff["l1"], ref, "escalate")  # now level 2
    status, body = act(staff["l1"], ref, "escalate")  # L1 may not send it to L3
    assert status == 403 and body["error"]["code"] == "forbidden"
    assert staff["l2"].get(f"/api/v1/tickets/{ref}")["level"] == 2
    denied = shared_desk.sql(
        "select target, details from audit_log where action = 'permission.denied'"
    )
    assert denied and denied[-1][0] == ref


def test_l1_cannot_take_a_level_2_ticket(staff):
    ref = new_ticket(staff["l2"], level=2)["reference"]
    status, body = act(staff["l1"], ref, "take")
    assert status == 403
    assert "escalate" in body["error"]["message"] or "level 2" in body["error"]["message"]


def test_dispatch_to_onsite_staff_who_then_see_only_their_tickets(staff):
    users = staff["admin"].get("/api/v1/users")["users"]
    onsite = next(u["name"] for u in users if u["role"] == "onsite")
    dispatched = new_ticket(staff["l1"], subject="Broken monitor")["reference"]
    other = new_ticket(staff["l1"], subject="Password reset")["reference"]
    status, body = act(staff["l1"], dispatched, "dispatch", assignee=onsite)
    assert status == 403  # L1 cannot dispatch
    act(staff["l2"], dispatched, "take")
    status, body = act(staff["l2"], dispatched, "dispatch", assignee=onsite)
    assert status == 200 and body["status"] == "onsite" and body["assignee"] == onsite
    seen = [t["reference"] for t in staff["onsite"].get("/api/v1/tickets")["tickets"]]
    assert seen == [dispatched]  # only what was dispatched to them, of all the desk's tickets
    status, _ = staff["onsite"].request("GET", f"/api/v1/tickets/{other}")
    assert status == 404
    status, done = act(staff["onsite"], dispatched, "resolve", resolution="Replaced the monitor")
    assert status == 200 and done["status"] == "resolved"


def test_dispatch_needs_onsite_staff(staff):
    users = staff["admin"].get("/api/v1/users")["users"]
    l3 = next(u["name"] for u in users if u["role"] == "l3")
    ref = new_ticket(staff["l2"])["reference"]
    act(staff["l2"], ref, "take")
    status, body = act(staff["l2"], ref, "dispatch", assignee=l3)
    assert status == 400 and body["error"]["field"] == "assignee"


def test_resolve_needs_a_resolution_then_close_and_reopen(staff):
    ref = new_ticket(staff["l1"])["reference"]
    status, body = act(staff["l1"], ref, "resolve")
    assert status == 400 and body["error"]["field"] == "resolution"
    status, body = act(staff["l1"], ref, "resolve", resolution="Cleared the paper path")
    assert status == 200 and body["resolution"] == "Cleared the paper path"
    assert act(staff["l1"], ref, "close")[1]["status"] == "closed"
    status, reopened = act(staff["l1"], ref, "reopen")
    assert status == 200 and reopened["status"] == "in_progress" and reopened["assignee"]


def test_first_answer_from_the_desk_stops_the_clock(staff):
    ref = new_ticket(staff["l1"])["reference"]
    unanswered = [
        t["reference"] for t in staff["l1"].get("/api/v1/tickets?queue=unanswered")["tickets"]
    ]
    assert ref in unanswered
    status, body = staff["l1"].request(
        "POST", f"/api/v1/tickets/{ref}/comments", {"body": "We are on it"}
    )
    assert status == 201 and body["sla"]["answered_at"]
    unanswered = [
        t["reference"] for t in staff["l1"].get("/api/v1/tickets?queue=unanswered")["tickets"]
    ]
    assert ref not in unanswered


def test_search_needs_every_word_and_finds_external_refs(staff):
    a = new_ticket(staff["l1"], subject="VPN drops every hour", external_refs={"glpi": "4711"})[
        "reference"
    ]
    new_ticket(staff["l1"], subject="VPN client missing")
    found = staff["l1"].get("/api/v1/tickets?q=vpn%20hour")
    assert [t["reference"] for t in found["tickets"]] == [a] and found["total"] == 1
    assert [t["reference"] for t in staff["l1"].get("/api/v1/tickets?q=4711")["tickets"]] == [a]
    assert staff["l1"].get("/api/v1/tickets?q=%25")["total"] == 0  # wildcards are literal


def test_patch_recomputes_priority_and_merges_external_refs(staff):
    ref = new_ticket(staff["l1"], external_refs={"zammad": "12"})["reference"]
    status, body = staff["l1"].request(
        "PATCH",
        f"/api/v1/tickets/{ref}",
        {"impact": 1, "urgency": 1, "external_refs": {"glpi": "9"}},
    )
    assert status == 200
    assert body["priority"] == 1 and body["external_refs"] == {"zammad": "12", "glpi": "9"}
    status, body = staff["l1"].request("PATCH", f"/api/v1/tickets/{ref}", {})
    assert status == 400


def test_unknown_ticket_is_404(staff):
    status, body = staff["l1"].request("GET", "/api/v1/tickets/BD-999999")
    assert status == 404 and body["error"]["code"] == "not_found"


def upload(client, reference, name, data, content_type="application/octet-stream"):
    import json
    import urllib.error
    import urllib.parse
    import urllib.request

    req = urllib.request.Request(
        f"{client.base}/api/v1/tickets/{reference}/attachments?name={urllib.parse.quote(name)}",
        data=data,
        method="POST",
        headers={"Authorization": f"Bearer {client.key}", "Content-Type": content_type},
    )
    try:
        with urllib.request.urlopen(req, context=client.context, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def download(client, reference, attachment_id):
    import urllib.request

    req = urllib.request.Request(
        f"{client.base}/api/v1/tickets/{reference}/attachments/{attachment_id}",
        headers={"Authorization": f"Bearer {client.key}"},
    )
    with urllib.request.urlopen(req, context=client.context, timeout=60) as resp:
        return resp.headers, resp.read()


def test_attachments_are_stored_listed_and_served_as_downloads(staff):
    import hashlib

    ref = new_ticket(staff["l1"])["reference"]
    page = b"<html><script>alert(1)</script></html>"
    status, meta = upload(staff["l1"], ref, "../../etc/evil page.html", page, "text/html")
    assert status == 201, meta
    assert meta["name"] == "evil page.html" and meta["size"] == len(page)
    assert meta["sha256"] == hashlib.sha256(page).hexdigest()
    ticket = staff["l2"].get(f"/api/v1/tickets/{ref}")
    assert [a["name"] for a in ticket["attachments"]] == ["evil page.html"]
    assert ticket["timeline"][-1]["kind"] == "attachment"
    headers, data = download(staff["l2"], ref, meta["id"])
    assert data == page
    assert headers["Content-Disposition"].startswith("attachment;")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in headers["Content-Security-Policy"]


def test_attachment_limits_and_visibility(staff):
    ref = new_ticket(staff["l1"])["reference"]
    status, body = upload(staff["l1"], ref, "empty.txt", b"")
    assert status == 400 and body["error"]["field"] == "body"
    status, body = upload(staff["l1"], ref, "huge.bin", b"\0" * (10 * 1024 * 1024 + 1))
    assert status == 413
    status, body = upload(staff["l1"], ref, "", b"x")
    assert status == 400 and body["error"]["field"] == "name"
    status, body = upload(staff["onsite"], ref, "note.txt", b"x")  # not dispatched to them
    assert status == 404
    assert staff["l1"].get(f"/api/v1/tickets/{ref}")["attachments"] == []
    status, _ = staff["l1"].request("GET", f"/api/v1/tickets/{ref}/attachments/99999")
    assert status == 404
