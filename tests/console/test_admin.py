"""Administrators manage accounts from the users page; nobody else may."""

from __future__ import annotations

import json

import pyotp
from playwright.sync_api import expect

from tests.console.conftest import PASSWORD, Console, User, fill_login


def test_admin_creates_a_user_who_can_then_sign_in(console: Console) -> None:
    admin = console.user("admin", cli=True)  # made with `backdesk-coordinator user add`
    page = console.sign_in(admin)
    page.get_by_role("link", name="Users").click()
    page.wait_for_url("**/users")
    expect(page.locator(f"tr[data-user='{admin.name}']")).to_contain_text("(you)")

    page.fill("input[name=name]", "dana.silva")
    page.fill("input[name=full_name]", "Dana Silva")
    page.select_option("form[action='/users'] select[name=role]", "l2")
    page.fill("input[name=password]", "a long enough password")
    page.get_by_role("button", name="Create user").click()
    expect(page.locator("h1")).to_have_text("dana.silva can now sign in")
    uri = page.get_by_test_id("totp-uri").inner_text()
    totp = pyotp.parse_uri(uri)
    assert isinstance(totp, pyotp.TOTP) and totp.name == "dana.silva" and totp.issuer == "Backdesk"

    # The new technician signs in with the password and the authenticator set up from it.
    dana = User("dana.silva", "l2", "a long enough password", totp.secret)
    other = console.sign_in(dana)
    expect(other.get_by_test_id("me")).to_have_text("Dana Silva")
    expect(other.get_by_test_id("role")).to_have_text("Level 2")
    expect(other.locator(".tab.active")).to_have_attribute("data-tab", "l2")

    # Change the role: it applies at the next page, without signing in again.
    page.goto("/users")
    row = page.locator("tr[data-user='dana.silva']")
    row.locator("select[name=role]").select_option("l3")
    row.get_by_role("button", name="Change").click()
    expect(page.get_by_test_id("flash")).to_have_text("dana.silva is now l3.")
    other.reload()
    expect(other.get_by_test_id("role")).to_have_text("Level 3")

    # Disable the account (the page asks first): the open session stops working.
    row = page.locator("tr[data-user='dana.silva']")
    row.get_by_role("button", name="Disable").click()
    page.get_by_test_id("confirm-ok").click()
    expect(page.get_by_test_id("flash")).to_have_text("dana.silva is disabled.")
    expect(page.locator("tr[data-user='dana.silva']")).to_contain_text("disabled")
    other.goto("/queue")
    assert "/login" in other.url

    actions = [
        (action, target, json.loads(details))
        for action, target, details in console.coordinator.sql(
            "select action, target, details from audit_log where actor = ? order by id",
            admin.name,
        )
    ]
    assert ("user.created", "dana.silva", {"role": "l2"}) in actions
    assert ("user.role_changed", "dana.silva", {"from": "l2", "to": "l3"}) in actions
    assert ("user.disabled", "dana.silva", {}) in actions


def test_bad_user_details_are_explained_and_admins_cannot_lock_themselves_out(
    console: Console,
) -> None:
    admin = console.user("admin")
    page = console.sign_in(admin)
    page.goto("/users")
    page.eval_on_selector("form[action='/users']", "f => f.noValidate = true")
    page.fill("input[name=name]", "erin")
    page.fill("input[name=password]", "short")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_test_id("form-error")).to_contain_text("at least 10 characters")
    expect(page.locator("input[name=name]")).to_have_value("erin")
    page.fill("input[name=name]", admin.name)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_test_id("form-error")).to_contain_text("already exists")
    # Their own row offers neither a role change nor a disable button ...
    mine = page.locator(f"tr[data-user='{admin.name}']")
    expect(mine.locator("button")).to_have_count(0)
    # ... and a hand-made post is refused.
    csrf = page.locator("meta[name=csrf-token]").get_attribute("content") or ""
    response = page.request.post(
        f"/users/{admin.name}", form={"disabled": "1", "csrf_token": csrf}, max_redirects=0
    )
    assert response.status == 303
    [(disabled,)] = console.coordinator.sql("select disabled from users where name = ?", admin.name)
    assert not disabled


def test_only_administrators_reach_the_users_page(console: Console) -> None:
    page = console.sign_in(console.user("l2"))
    expect(page.get_by_role("link", name="Users")).to_have_count(0)
    response = page.goto("/users")
    assert response is not None and response.status == 403
    expect(page.get_by_test_id("error-message")).to_contain_text("(user.manage)")
    csrf = page.locator("meta[name=csrf-token]").get_attribute("content") or ""
    response = page.request.post(
        "/users",
        form={"name": "mallory", "role": "admin", "password": PASSWORD, "csrf_token": csrf},
        max_redirects=0,
    )
    assert response.status == 403
    assert console.coordinator.sql("select id from users where name = 'mallory'") == []
    denied = console.coordinator.sql(
        "select details from audit_log where action = 'permission.denied' order by id desc limit 1"
    )
    assert json.loads(denied[0][0])["permission"] == "user.manage"


def test_a_disabled_user_cannot_sign_in(console: Console) -> None:
    user = console.user("l1")
    status, _ = console.api().request("PATCH", f"/api/v1/users/{user.name}", {"disabled": True})
    assert status == 200
    page = console.context().new_page()
    page.goto("/login")
    fill_login(page, user.name, user.password, user.code())
    expect(page.get_by_test_id("login-error")).to_have_text("wrong name, password or code")
