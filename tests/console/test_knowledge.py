"""The knowledge base in the console: write, read, search, edit, link to a ticket."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.console.conftest import Console, new_ticket

BODY = """## Symptoms

The printer shows **PC LOAD LETTER**.

1. Open tray 2
2. Reload the paper

<script>alert(1)</script> [click me](javascript:alert(2)) [vendor](https://example.com/manual)
"""


def test_write_search_edit_and_link_an_article(console: Console) -> None:
    page = console.sign_in(console.user("l1"))
    dialogs: list[Any] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    page.get_by_role("link", name="Knowledge base").click()
    page.get_by_role("link", name="+ New article").click()
    page.fill("input[name=title]", "Printer says PC LOAD LETTER")
    page.fill("textarea[name=body]", BODY)
    page.fill("input[name=tags]", "Printer, paper, printer")
    page.get_by_role("button", name="Publish").click()
    page.wait_for_url(re.compile(r".*/kb/\d+$"))
    article_url = page.url
    expect(page.get_by_test_id("flash")).to_have_text("Article published.")
    body = page.get_by_test_id("article-body")
    expect(body.locator("h2")).to_have_text("Symptoms")
    expect(body.locator("strong")).to_have_text("PC LOAD LETTER")
    expect(body.locator("ol li")).to_have_count(2)
    # Raw HTML is text; only the https link is a link.
    expect(body).to_contain_text("<script>alert(1)</script>")
    expect(body.locator("a")).to_have_count(1)
    expect(body.locator("a")).to_have_attribute("href", "https://example.com/manual")
    assert body.locator("script").count() == 0
    expect(page.locator(".tags .tag")).to_have_text(["printer", "paper"])

    # Search finds it; so does its tag.
    page.goto("/kb?q=load+letter")
    expect(page.get_by_role("link", name="Printer says PC LOAD LETTER")).to_be_visible()
    page.goto("/kb?q=fax+machine")
    expect(page.locator(".empty")).to_have_text("No article matches.")
    page.goto("/kb?tag=paper")
    expect(page.locator(".kb-row")).to_have_count(1)

    # Edit it.
    page.goto(article_url)
    page.get_by_role("link", name="Edit").click()
    page.fill("input[name=title]", "Printer shows PC LOAD LETTER")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("flash")).to_have_text("Article saved.")
    expect(page.get_by_test_id("article-title")).to_have_text("Printer shows PC LOAD LETTER")

    # Link it to a ticket from the ticket page.
    reference = new_ticket(console, subject="Tray 2 error on the 3rd floor printer")["reference"]
    page.goto(f"/tickets/{reference}")
    page.fill("input[name=kbq]", "load letter")
    page.get_by_role("button", name="Find").click()
    hit = page.locator(".kb-hit", has_text="Printer shows PC LOAD LETTER")
    hit.get_by_role("button", name="Link").click()
    expect(page.get_by_test_id("flash")).to_have_text("Article linked.")
    expect(page.locator(".links")).to_contain_text("Printer shows PC LOAD LETTER")
    expect(page.get_by_test_id("timeline")).to_contain_text("linked article")
    assert dialogs == []


def test_a_resolution_becomes_an_article(console: Console) -> None:
    reference = new_ticket(console, subject="Outlook asks for the password again and again")[
        "reference"
    ]
    page = console.sign_in(console.user("l1"))
    page.goto(f"/tickets/{reference}")
    page.fill("textarea[name=resolution]", "Removed the stale credentials from the vault.")
    page.locator("button[data-action=resolve]").click()
    expect(page.get_by_test_id("flash")).to_have_text(f"{reference} resolved.")
    page.get_by_role("button", name="Turn the resolution into an article").click()
    page.wait_for_url(re.compile(r".*/kb/\d+$"))
    expect(page.get_by_test_id("article-title")).to_have_text(
        "Outlook asks for the password again and again"
    )
    expect(page.get_by_test_id("article-body")).to_contain_text("stale credentials")
    expect(page.get_by_role("link", name=reference)).to_be_visible()


def test_on_site_staff_read_but_do_not_write_articles(console: Console) -> None:
    page = console.sign_in(console.user("onsite"))
    page.goto("/kb")
    expect(page.get_by_role("link", name="+ New article")).to_have_count(0)
    response = page.goto("/kb/new")
    assert response is not None and response.status == 403
