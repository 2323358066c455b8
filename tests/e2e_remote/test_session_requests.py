"""Who may ask for a session, without an X screen: the broker's refusals."""

from __future__ import annotations

from tests.conftest import ApiClient


def test_only_the_assigned_technician_may_ask_and_refusals_are_audited(desk) -> None:
    reference = desk.ticket(take=False)  # nobody's ticket yet
    status, body = desk.technician.request(
        "POST", f"/api/v1/tickets/{reference}/sessions", {"scope": "control"}
    )
    assert status == 403 and "not assigned to you" in body["error"]["message"]
    audited = desk.coordinator.sql(
        "select actor, action, target from audit_log where action = 'permission.denied'"
    )
    assert any(row[2] == reference for row in audited)
    assert desk.coordinator.sql(
        "select count(*) from remote_sessions r join tickets t "
        "on t.id = r.ticket_id where t.reference = ?",
        reference,
    ) == [(0,)]


def test_l1_cannot_ask_for_a_session(desk) -> None:
    reference = desk.ticket()
    l1 = ApiClient(desk.coordinator, desk.coordinator.api_key("l1"))
    status, _ = l1.request("POST", f"/api/v1/tickets/{reference}/sessions", {"scope": "view"})
    assert status == 403


def test_bad_bodies_are_refused_with_the_field_named(desk) -> None:
    reference = desk.ticket()
    for body in ({}, {"scope": "admin"}, {"scope": "view", "extra": 1}, {"scope": 1}):
        status, answer = desk.technician.request(
            "POST", f"/api/v1/tickets/{reference}/sessions", body
        )
        assert status == 400, (body, answer)
    status, answer = desk.technician.request("GET", "/api/v1/sessions/nope")
    assert status == 404


def test_a_viewer_socket_needs_the_technician_who_asked(desk) -> None:
    import asyncio
    import ssl

    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    reference = desk.ticket()
    session = desk.request(reference, "view")
    other = desk.coordinator.api_key("l2")

    async def attempt(headers: dict[str, str]) -> int:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        url = desk.coordinator.url.replace("https", "wss") + f"/ws/viewer/{session['id']}"
        try:
            async with connect(url, ssl=context, additional_headers=headers):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    assert asyncio.run(attempt({})) == 401
    assert asyncio.run(attempt({"Authorization": "Bearer nope"})) == 401
    assert asyncio.run(attempt({"Authorization": f"Bearer {other}"})) == 404
    # End it so the device is free for the next test.
    viewer = desk.viewer(session["id"])
    try:
        viewer.wait(lambda: viewer.session, 10, "the session message")
        viewer.end()
        assert desk.wait_ended(session["id"])["reason"] == "ended_by_technician"
    finally:
        viewer.close()
