"""Whatever users type and agents report is shown as text, never run as script.

A rogue agent (it holds a real device's identity key, so the coordinator accepts it)
sends a Get-help request whose every field carries markup; a technician opens the queue
and the ticket, and no script runs, no dialog opens, and the markup reads as text.
"""

from __future__ import annotations

import uuid
from typing import Any

from playwright.sync_api import expect

from protocol.messages import Deliver, encode_message
from tests.conftest import Agent, wait_for
from tests.console.conftest import Console, new_ticket, run_async
from tests.e2e.conftest import identity_key
from tests.e2e.rogue import RogueAgent

SCRIPT = "<script>alert(1)</script>"
IMG = '<img src=x onerror="alert(2)">'
SVG = "<svg onload=alert(3)>"


def _watch(page: Any) -> list[str]:
    """Every dialog the page opens (and dismisses it), and every script error."""
    seen: list[str] = []

    def on_dialog(dialog: Any) -> None:
        seen.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: seen.append(f"error: {error}"))
    return seen


def _no_markup_ran(page: Any) -> None:
    # Only our own module script; no element an agent or a user tried to inject.
    scripts = page.locator("script").evaluate_all("els => els.map(e => e.getAttribute('src'))")
    assert scripts == ["/static/console.js"]
    assert page.locator("main img, main svg, main iframe").count() == 0


def test_a_ticket_subject_with_a_script_is_shown_as_text(console: Console) -> None:
    reference = new_ticket(
        console,
        subject=SCRIPT,
        description=f"{IMG} and {SVG} and &lt;b&gt;",
        requester=f"{SCRIPT}@example.com",
        category="<b>bold</b>",
    )["reference"]
    page = console.sign_in(console.user("l1"))
    seen = _watch(page)
    page.goto(f"/queue?q={reference}")
    row = page.locator(f"tr[data-reference='{reference}']")
    expect(row.locator(".subject a")).to_have_text(SCRIPT)
    expect(row).to_contain_text(f"{SCRIPT}@example.com")
    expect(row).to_contain_text("<b>bold</b>")
    _no_markup_ran(page)

    page.goto(f"/tickets/{reference}")
    expect(page.get_by_test_id("subject")).to_have_text(SCRIPT)
    expect(page.get_by_test_id("description")).to_have_text(f"{IMG} and {SVG} and &lt;b&gt;")
    expect(page).to_have_title(f"{reference} {SCRIPT} · Backdesk")
    # A comment with markup, through the form.
    page.fill("textarea[name=body]", f"{IMG}</textarea><script>alert(4)</script>")
    page.get_by_role("button", name="Add comment").click()
    expect(page.get_by_test_id("timeline")).to_contain_text(
        f"{IMG}</textarea><script>alert(4)</script>"
    )
    # The queue's search box echoes the query as text too.
    page.goto("/queue?q=" + '"><script>alert(5)</script>')
    expect(page.locator("input[name=q]")).to_have_value('"><script>alert(5)</script>')
    _no_markup_ran(page)
    page.wait_for_timeout(300)  # give any injected handler the chance to fire
    assert seen == []


def test_what_a_rogue_agent_reports_is_shown_as_text(console: Console, make_agent: Any) -> None:
    agent: Agent = make_agent(console.coordinator)
    agent.enroll()
    request_id = "REQ-" + uuid.uuid4().hex[:8].upper()
    body = {
        "message": f"{SCRIPT} my screen is black\n{IMG}",
        "requester": f"{SVG} Eve",
        "request_id": request_id,
        "diagnostics": {
            "system": {
                "hostname": f"{SCRIPT}-pc",
                "os": IMG,
                "os_release": {"nested": SVG},
            },
            "disks": [{"mountpoint": SCRIPT, "device": IMG, "percent": 99}],
            f"<i>{SCRIPT}</i>": [SVG, "plain"],
        },
        "findings": [
            {
                "severity": "<b>critical</b>",
                "summary": f"Disk {SCRIPT} is full",
                "evidence": {"mount": IMG},
                "fix": f"Delete {SVG}",
            }
        ],
        "excluded": [SCRIPT],
    }

    async def deliver() -> None:
        async with RogueAgent(console.coordinator) as rogue:
            await rogue.authenticate(agent.device_id, identity_key(agent))
            await rogue.send(
                encode_message(Deliver(key=uuid.uuid4().hex, kind="ticket.request", body=body))
            )
            await rogue.recv()  # the acknowledgement: the ticket is committed

    run_async(deliver)
    [(reference,)] = wait_for(
        lambda: console.coordinator.sql(
            "select reference from tickets where external_refs like ?", f"%{request_id}%"
        ),
        10,
        what="the rogue agent's ticket",
    )

    page = console.sign_in(console.user("l2"))
    seen = _watch(page)
    page.goto("/queue?level=1")
    row = page.locator(f"tr[data-reference='{reference}']")
    expect(row.locator(".subject a")).to_have_text(f"{SCRIPT} my screen is black")
    expect(row).to_contain_text(f"{SVG} Eve")
    page.goto(f"/tickets/{reference}")
    findings = page.get_by_test_id("findings")
    expect(findings).to_contain_text(f"Disk {SCRIPT} is full")
    expect(findings).to_contain_text(IMG)
    expect(findings).to_contain_text(f"Delete {SVG}")
    diagnostics = page.get_by_test_id("diagnostics")
    expect(diagnostics).to_contain_text(f"{SCRIPT}-pc")
    expect(diagnostics).to_contain_text(IMG)
    expect(diagnostics).to_contain_text(SVG)
    expect(diagnostics.locator("summary", has_text=f"<i>{SCRIPT}</i>")).to_be_visible()
    expect(diagnostics).to_contain_text(f"The user chose not to send: {SCRIPT}.")
    expect(page.get_by_test_id("requester")).to_have_text(f"{SVG} Eve")
    _no_markup_ran(page)
    assert page.locator("main i, main b").count() == 0
    page.wait_for_timeout(300)
    assert seen == []
