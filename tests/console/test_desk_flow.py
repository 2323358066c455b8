"""The desk at work in the browser: an agent's Get-help request goes from the L1 queue to
L2; phone calls become tickets; on-site staff see only what was dispatched to them."""

from __future__ import annotations

import json
import re
import socket
from typing import Any

from playwright.sync_api import expect

from tests.conftest import Agent
from tests.console.conftest import SCREENSHOTS, Console, new_ticket

MESSAGE = (
    "Outlook freezes when I open the shared calendar\n"
    "Since this morning Outlook stops responding as soon as I click on the Finance team "
    "calendar. Restarting did not help."
)


def _seed_queue(console: Console) -> None:
    """A few tickets, so the queue looks like a desk's morning (and the screenshot too)."""
    api = console.api()
    status, _ = api.request(
        "PUT",
        "/api/v1/sla-policies",
        {"policies": [{"priority": 4, "own_seconds": 1, "resolve_seconds": 72 * 3600}]},
    )
    assert status == 200
    new_ticket(
        console,
        subject="VPN drops every 20 minutes",
        description="Teams calls cut out when the VPN reconnects.",
        requester="Noah Petit",
        category="network",
        impact=3,
        urgency=2,
    )
    status, _ = api.request(
        "PUT",
        "/api/v1/sla-policies",
        {"policies": [{"priority": 4, "own_seconds": 8 * 3600, "resolve_seconds": 72 * 3600}]},
    )
    for subject, requester, category, impact, urgency in [
        ("Payroll export fails for the whole HR team", "Claire Dubois", "software", 1, 1),
        ("Printer on floor 2 prints blank pages", "Marc Lambert", "printing", 2, 2),
        ("New starter needs a laptop and an account", "Julie Roux", "account", 3, 3),
    ]:
        last = new_ticket(
            console,
            subject=subject,
            description=f"{subject}. Reported by phone.",
            requester=requester,
            category=category,
            impact=impact,
            urgency=urgency,
            channel="phone",
        )
    # One of them is already in a colleague's hands.
    colleague = console.user("l1", name="chloe.bernard")
    status, _ = api.request(
        "POST",
        f"/api/v1/tickets/{last['reference']}/actions",
        {"action": "assign", "assignee": colleague.name},
    )
    assert status == 200


def _confirm(page: Any) -> None:
    """Accept the page's own confirmation dialog (a <dialog>, not window.confirm)."""
    page.get_by_test_id("confirm-ok").click()


def test_l1_takes_and_escalates_an_agent_ticket_and_l2_takes_it(
    console: Console, make_agent: Any
) -> None:
    _seed_queue(console)
    agent: Agent = make_agent(console.coordinator)
    agent.enroll()
    sent = json.loads(
        agent.cli("get-help", "--no-gui", "--yes", "--message", MESSAGE, "--json").stdout
    )
    assert sent["status"] == "created"
    reference = sent["reference"]
    l1 = console.user("l1", name="alice.martin", full_name="Alice Martin")
    l2 = console.user("l2", name="bruno.keller", full_name="Bruno Keller")

    # L1 signs in with a TOTP code and lands on their own level's queue.
    page = console.sign_in(l1)
    expect(page.locator(".tab.active")).to_have_attribute("data-tab", "l1")
    row = page.locator(f"tr[data-reference='{reference}']")
    expect(row).to_contain_text("Outlook freezes when I open the shared calendar")
    expect(row).to_contain_text("new")
    expect(row.locator(".sla")).to_contain_text("left")
    expect(page.locator(".sla-breached").first).to_have_text(re.compile("breached"))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "console-queue.png"), full_page=True)

    # The ticket page shows what the agent attached, readable.
    row.get_by_role("link", name=reference).click()
    page.wait_for_url(f"**/tickets/{reference}")
    expect(page.get_by_test_id("subject")).to_have_text(
        "Outlook freezes when I open the shared calendar"
    )
    diagnostics = page.get_by_test_id("diagnostics")
    expect(diagnostics.locator("summary", has_text="System")).to_be_visible()
    expect(diagnostics.locator("summary", has_text="Memory")).to_be_visible()
    expect(diagnostics).to_contain_text("GiB")
    expect(page.get_by_test_id("device")).to_have_text(socket.gethostname())
    # L1 may not start a remote session nor dispatch on-site staff.
    actions = page.get_by_test_id("actions")
    expect(actions.locator("[data-action=request-control]")).to_have_count(0)
    expect(actions.locator("[data-action=dispatch]")).to_have_count(0)
    expect(page.get_by_text("Request control")).to_have_count(0)

    # Take it, and say so in a comment.
    page.locator("button[data-action=take]").click()
    expect(page.get_by_test_id("flash")).to_have_text(f"{reference} taken.")
    expect(page.get_by_test_id("assignee")).to_have_text(l1.name)
    expect(page.locator(".ticket-badges .status")).to_have_text("in progress")
    page.fill("textarea[name=body]", "Called the user: the calendar is shared by 40 people.")
    page.get_by_role("button", name="Add comment").click()
    expect(page.get_by_test_id("flash")).to_have_text("Comment added.")
    expect(page.get_by_test_id("timeline")).to_contain_text("shared by 40 people")
    page.goto(f"/tickets/{reference}")  # from the top, without the flash
    page.screenshot(path=str(SCREENSHOTS / "console-ticket.png"), full_page=True)

    # Escalate to L2 (the page asks first).
    page.locator("button[data-action=escalate]").click()
    expect(page.locator("#confirm-dialog")).to_be_visible()
    expect(page.locator(".confirm-message")).to_contain_text("level 2")
    _confirm(page)
    expect(page.get_by_test_id("flash")).to_have_text(f"{reference} escalated.")
    expect(page.locator(".ticket-badges .status")).to_have_text("escalated")
    expect(page.locator(".ticket-badges .level")).to_have_text("L2")
    # L1 cannot escalate further, nor take a level-2 ticket.
    expect(page.locator("button[data-action=escalate]")).to_have_count(0)
    expect(page.locator("button[data-action=take]")).to_have_count(0)
    page.goto("/queue?level=1")
    expect(page.locator(f"tr[data-reference='{reference}']")).to_have_count(0)

    # L2, in a browser of their own, finds it in the L2 queue and takes it.
    page2 = console.sign_in(l2)
    expect(page2.locator(".tab.active")).to_have_attribute("data-tab", "l2")
    row2 = page2.locator(f"tr[data-reference='{reference}']")
    expect(row2).to_contain_text("escalated")
    row2.get_by_role("link", name=reference).click()
    page2.wait_for_url(f"**/tickets/{reference}")
    expect(page2.get_by_test_id("timeline")).to_contain_text("shared by 40 people")
    expect(page2.get_by_test_id("timeline")).to_contain_text("level 2")
    page2.locator("button[data-action=take]").click()
    expect(page2.get_by_test_id("flash")).to_have_text(f"{reference} taken.")
    expect(page2.get_by_test_id("assignee")).to_have_text(l2.name)
    # L2 may ask for remote control of the device and dispatch on-site staff.
    expect(page2.locator("[data-action=request-control]")).to_be_visible()
    expect(page2.locator("button[data-action=dispatch]")).to_be_visible()

    ticket = console.api().get(f"/api/v1/tickets/{reference}")
    assert (ticket["level"], ticket["status"], ticket["assignee"]) == (2, "in_progress", l2.name)
    [(actor, details)] = console.coordinator.sql(
        "select actor, details from audit_log where action = 'ticket.escalated' and target = ?",
        reference,
    )
    assert actor == l1.name and json.loads(details) == {"from": 1, "to": 2}


def test_a_stale_page_gets_the_conflict_as_a_message(console: Console) -> None:
    reference = new_ticket(console)["reference"]
    first, second = console.user("l1"), console.user("l1")
    page_a = console.sign_in(first)
    page_b = console.sign_in(second)
    page_a.goto(f"/tickets/{reference}")
    page_b.goto(f"/tickets/{reference}")
    page_a.locator("button[data-action=take]").click()
    expect(page_a.get_by_test_id("flash")).to_have_text(f"{reference} taken.")
    # B's page still offers Take: the lifecycle refuses it (409) and B is told why.
    page_b.locator("button[data-action=take]").click()
    expect(page_b.get_by_test_id("flash")).to_have_text("Cannot take a ticket that is in progress.")
    expect(page_b.get_by_test_id("assignee")).to_have_text(first.name)
    # A resolution is required (the browser checks; the server checks too).
    page_a.eval_on_selector("form:has([data-action=resolve])", "f => f.noValidate = true")
    page_a.locator("button[data-action=resolve]").click()
    expect(page_a.get_by_test_id("flash")).to_have_text("Resolving needs a resolution.")
    page_a.fill("textarea[name=resolution]", "Cleared the paper path and the fuser.")
    page_a.locator("button[data-action=resolve]").click()
    expect(page_a.get_by_test_id("flash")).to_have_text(f"{reference} resolved.")
    expect(page_a.locator(".resolution")).to_contain_text("fuser")
    expect(page_a.locator(".ticket-badges .sla")).to_have_text("resolved")


def test_l1_logs_a_phone_call(console: Console) -> None:
    page = console.sign_in(console.user("l1"))
    page.get_by_role("link", name="New ticket").first.click()
    page.fill("input[name=requester]", "Hugo Moreau, ext. 4411")
    page.select_option("select[name=category]", "hardware")
    page.fill("input[name=subject]", "Laptop does not charge")
    page.fill("textarea[name=description]", "Charger LED is off; tried another socket.")
    page.check("input[name=impact][value='3']")
    page.check("input[name=urgency][value='1']")
    page.get_by_role("button", name="Open ticket").click()
    page.wait_for_url(re.compile(r".*/tickets/BD-\d{6}$"))
    reference = page.get_by_test_id("reference").inner_text()
    expect(page.get_by_test_id("flash")).to_contain_text(f"Ticket {reference} opened")
    ticket = console.api().get(f"/api/v1/tickets/{reference}")
    assert ticket["channel"] == "phone" and ticket["priority"] == 3
    assert ticket["requester"] == "Hugo Moreau, ext. 4411" and ticket["category"] == "hardware"
    # Missing fields are refused with the form kept.
    page.goto("/tickets/new")
    page.eval_on_selector("form.stack", "f => f.noValidate = true")
    page.fill("input[name=subject]", "Half a ticket")
    page.get_by_role("button", name="Open ticket").click()
    expect(page.get_by_test_id("form-error")).to_have_text("Fill in the description and requester.")
    expect(page.locator("input[name=subject]")).to_have_value("Half a ticket")


def test_onsite_staff_see_only_what_is_dispatched_to_them(console: Console) -> None:
    dispatched = new_ticket(console, subject="Monitor flickers at desk 4B")["reference"]
    other = new_ticket(console, subject="Keyboard missing keys")["reference"]
    l2 = console.user("l2")
    tech = console.user("onsite", full_name="Omar Haddad")

    page = console.sign_in(l2)
    page.goto(f"/tickets/{dispatched}")
    page.locator("button[data-action=take]").click()
    expect(page.get_by_test_id("flash")).to_have_text(f"{dispatched} taken.")
    page.locator("form:has(button[data-action=dispatch]) select").select_option(tech.name)
    page.locator("button[data-action=dispatch]").click()
    _confirm(page)
    expect(page.get_by_test_id("flash")).to_have_text(f"{dispatched} dispatched on-site.")
    expect(page.locator(".ticket-badges .status")).to_have_text("onsite")

    onsite = console.sign_in(tech)
    expect(onsite.locator(".tab")).to_have_count(1)
    expect(onsite.locator(".tab")).to_contain_text("Dispatched to me")
    expect(onsite.locator("tbody tr")).to_have_count(1)
    expect(onsite.locator(f"tr[data-reference='{dispatched}']")).to_be_visible()
    onsite.goto("/queue?level=1")  # not theirs to browse
    expect(onsite.locator("tbody tr")).to_have_count(1)
    response = onsite.goto(f"/tickets/{other}")
    assert response is not None and response.status == 404
    # Their own ticket: they can work it, but not escalate, dispatch or assign.
    onsite.goto(f"/tickets/{dispatched}")
    actions = onsite.get_by_test_id("actions")
    expect(actions.locator("button[data-action=resume]")).to_be_visible()
    expect(onsite.locator("button[data-action=resolve]")).to_be_visible()
    for absent in ("escalate", "dispatch", "assign", "take", "request-control"):
        expect(onsite.locator(f"[data-action={absent}]")).to_have_count(0)
    onsite.fill("textarea[name=resolution]", "Replaced the DisplayPort cable.")
    onsite.locator("button[data-action=resolve]").click()
    expect(onsite.get_by_test_id("flash")).to_have_text(f"{dispatched} resolved.")
