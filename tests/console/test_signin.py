"""Signing in with name, password and TOTP; sessions, rate limits, CSRF and headers."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import quote

from playwright.sync_api import expect

from tests.console.conftest import Console, fill_login

GENERIC = "wrong name, password or code"


def audit_entries(console: Console, action: str) -> list[tuple[str, str, dict[str, Any]]]:
    rows = console.coordinator.sql(
        "select actor, target, details from audit_log where action = ? order by id", action
    )
    return [(actor, target, json.loads(details)) for actor, target, details in rows]


def test_pages_need_sign_in_and_come_back_after_it(console: Console) -> None:
    user = console.user("l1")
    page = console.context().new_page()
    page.goto("/queue?level=1")
    assert "/login?next=" in page.url
    assert page.title() == "Sign in · Backdesk"
    fill_login(page, user.name, user.password, user.code())
    page.wait_for_url("**/queue?level=1")
    assert page.get_by_test_id("me").inner_text() == user.name
    assert page.get_by_test_id("role").inner_text() == "Level 1"


def test_a_session_is_a_secure_cookie_stored_only_as_a_hash(console: Console) -> None:
    user = console.user("l2")
    page = console.sign_in(user)
    [cookie] = [c for c in page.context.cookies() if c["name"] == "backdesk_session"]
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/"
    stored = console.coordinator.sql(
        "select token_hash, csrf_token, expires_at, web_sessions.created_at from web_sessions"
        " join users on users.id = web_sessions.user_id where users.name = ?",
        user.name,
    )
    [(token_hash, csrf_token, _expires, _created)] = stored
    assert bytes(token_hash) == hashlib.sha256(cookie["value"].encode()).digest()
    assert cookie["value"] not in json.dumps([str(v) for v in stored[0]])
    assert csrf_token and csrf_token != cookie["value"]
    [(_actor, target, details)] = [
        e for e in audit_entries(console, "auth.signed_in") if e[0] == user.name
    ]
    assert target == user.name and details["address"] == "127.0.0.1"


def test_wrong_code_or_password_gets_one_generic_message(fresh_console: Console) -> None:
    console = fresh_console
    user = console.user("l1", cli=True)
    page = console.context().new_page()
    page.goto("/login")
    fill_login(page, user.name, user.password, user.wrong_code())
    assert page.get_by_test_id("login-error").inner_text() == GENERIC
    fill_login(page, user.name, "not the password at all", user.code())
    assert page.get_by_test_id("login-error").inner_text() == GENERIC
    fill_login(page, "nobody-here", user.password, user.code())
    assert page.get_by_test_id("login-error").inner_text() == GENERIC
    assert "/login" in page.url
    assert not [c for c in page.context.cookies() if c["name"] == "backdesk_session"]
    reasons: dict[str, list[str]] = {}
    for actor, target, details in audit_entries(console, "auth.sign_in_failed"):
        assert actor == "anonymous"
        reasons.setdefault(target, []).append(details["reason"])
    assert reasons[user.name] == ["totp", "password"]
    assert reasons["nobody-here"] == ["password"]
    rows = console.coordinator.sql("select details from audit_log")
    assert not any(user.password in str(r) for r in rows)  # never the password


def test_the_code_is_required_and_a_code_is_used_once(fresh_console: Console) -> None:
    console = fresh_console
    user = console.user("l1", cli=True)
    page = console.context().new_page()
    page.goto("/login")
    # The browser's own checks would stop an empty field: post the form without them.
    page.eval_on_selector("form", "f => f.noValidate = true")
    fill_login(page, user.name, user.password, "")
    assert page.get_by_test_id("login-error").inner_text() == GENERIC
    code = user.code()
    fill_login(page, user.name, user.password, code)
    page.wait_for_url("**/queue")
    # The same code, seen over a shoulder, does not open a second session.
    other = console.context().new_page()
    other.goto("/login")
    fill_login(other, user.name, user.password, code)
    assert other.get_by_test_id("login-error").inner_text() == GENERIC


def test_six_failures_are_refused_with_429_until_the_window_passes(
    fresh_console: Console,
) -> None:
    console = fresh_console
    user = console.user("l1", cli=True)
    page = console.context().new_page()
    page.goto("/login")
    for _ in range(5):
        with page.expect_response("**/login") as response:
            fill_login(page, user.name, "wrong password!", user.code())
        assert response.value.status == 401
        assert page.get_by_test_id("login-error").inner_text() == GENERIC
    # The sixth attempt is refused even with everything right.
    with page.expect_response("**/login") as response:
        fill_login(page, user.name, user.password, user.code())
    assert response.value.status == 429
    assert int(response.value.headers["retry-after"]) > 14 * 60
    assert "Too many failed sign-ins" in page.get_by_test_id("login-error").inner_text()
    assert "/login" in page.url
    reasons = [
        d["reason"] for _a, t, d in audit_entries(console, "auth.sign_in_failed") if t == user.name
    ]
    assert reasons == ["password"] * 5 + ["rate_limited"]
    # Another name from the same address is refused as well (the limit is per address too).
    other = console.user("l2", cli=True)
    with page.expect_response("**/login") as response:
        fill_login(page, other.name, other.password, other.code())
    assert response.value.status == 429


def test_sign_out_ends_the_session(console: Console) -> None:
    user = console.user("l3")
    page = console.sign_in(user)
    [cookie] = [c for c in page.context.cookies() if c["name"] == "backdesk_session"]
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    token_hash = hashlib.sha256(cookie["value"].encode()).digest()
    assert (
        console.coordinator.sql("select id from web_sessions where token_hash = ?", token_hash)
        == []
    )
    # The old cookie, replayed, opens nothing.
    replay = console.context()
    replay.add_cookies([{**cookie}])
    stale = replay.new_page()
    stale.goto("/queue")
    assert "/login" in stale.url
    assert [e for e in audit_entries(console, "auth.signed_out") if e[0] == user.name]


def test_forms_without_the_csrf_token_are_refused(console: Console) -> None:
    user = console.user("l1")
    ticket = _ticket(console)
    page = console.sign_in(user)
    page.goto(f"/tickets/{ticket}")
    form = page.locator("form:has(button[data-action=take])")
    # No token at all.
    form.locator("input[name=csrf_token]").evaluate("el => el.remove()")
    with page.expect_response(f"**/tickets/{ticket}/actions") as response:
        form.locator("button").click()
    assert response.value.status == 403
    assert "did not come from Backdesk" in page.get_by_test_id("error-message").inner_text()
    # A wrong token.
    page.goto(f"/tickets/{ticket}")
    form = page.locator("form:has(button[data-action=take])")
    form.locator("input[name=csrf_token]").evaluate("el => el.value = 'forged'")
    with page.expect_response(f"**/tickets/{ticket}/actions") as response:
        form.locator("button").click()
    assert response.value.status == 403
    # Nothing changed.
    assert console.api().get(f"/api/v1/tickets/{ticket}")["status"] == "new"


def test_posts_from_another_origin_are_refused(console: Console) -> None:
    user = console.user("l1")
    ticket = _ticket(console)
    page = console.sign_in(user)
    page.goto(f"/tickets/{ticket}")
    csrf = page.locator("meta[name=csrf-token]").get_attribute("content")
    response = page.request.post(
        f"/tickets/{ticket}/actions",
        form={"action": "take", "csrf_token": csrf or ""},
        headers={"Origin": "https://evil.example"},
        max_redirects=0,
    )
    assert response.status == 403
    assert console.api().get(f"/api/v1/tickets/{ticket}")["status"] == "new"
    # The same request from our own origin goes through.
    response = page.request.post(
        f"/tickets/{ticket}/actions",
        form={"action": "take", "csrf_token": csrf or ""},
        headers={"Origin": console.url},
        max_redirects=0,
    )
    assert response.status == 303
    assert console.api().get(f"/api/v1/tickets/{ticket}")["assignee"] == user.name


def test_console_scripts_call_the_api_with_the_cookie_and_the_csrf_header(
    console: Console,
) -> None:
    user = console.user("l1")
    ticket = _ticket(console)
    page = console.sign_in(user)
    result = page.evaluate(
        """async (ref) => {
            const get = await fetch(`/api/v1/tickets/${ref}`);
            const bare = await fetch(`/api/v1/tickets/${ref}/comments`, {
                method: "POST", headers: {"Content-Type": "application/json"},
                body: JSON.stringify({body: "no token"})});
            const made = await window.backdesk.api(
                "POST", `/api/v1/tickets/${ref}/comments`, {body: "from the console"});
            return {get: get.status, subject: (await get.json()).subject,
                    bare: bare.status, bareError: (await bare.json()).error.code,
                    made: made.timeline.at(-1).data.body};
        }""",
        ticket,
    )
    assert result == {
        "get": 200,
        "subject": "Printer on floor 2 is jammed",
        "bare": 403,
        "bareError": "csrf_token_missing",
        "made": "from the console",
    }
    # A Bearer key needs no CSRF token (scripts and integrations).
    status, _ = console.api().request(
        "POST", f"/api/v1/tickets/{ticket}/comments", {"body": "from a script"}
    )
    assert status == 201


def test_pages_carry_a_strict_content_security_policy(console: Console) -> None:
    page = console.context().new_page()
    response = page.goto("/login")
    assert response is not None
    headers = response.headers
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    # No inline script anywhere: every script is a module from /static/.
    scripts = page.locator("script").evaluate_all(
        "els => els.map(e => [e.type, e.getAttribute('src'), e.textContent.trim()])"
    )
    assert scripts == [["module", "/static/console.js", ""]]


def _ticket(console: Console) -> str:
    from tests.console.conftest import new_ticket

    return str(new_ticket(console)["reference"])


def test_the_sign_in_form_has_its_own_csrf_token_and_no_open_redirect(console: Console) -> None:
    user = console.user("l1")
    page = console.context().new_page()
    page.goto("/login")
    # A sign-in posted from elsewhere carries no token from our form: refused.
    response = page.request.post(
        "/login",
        form={"name": user.name, "password": user.password, "code": user.code()},
        max_redirects=0,
    )
    assert response.status == 403
    assert not [c for c in page.context.cookies() if c["name"] == "backdesk_session"]
    # Where to go after signing in is a path on this site, never another site.
    for target in ("https://evil.example/x", "//evil.example/x", "/\\evil.example"):
        page.goto("/login?next=" + quote(target, safe=""))
        expect(page.locator("input[name=next]")).to_have_value("/queue")
    page.goto("/login?next=" + quote("/kb?q=vpn", safe=""))
    expect(page.locator("input[name=next]")).to_have_value("/kb?q=vpn")
