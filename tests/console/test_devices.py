"""Devices for on-site staff in the browser: a real agent uploads its own machine's
inventory; an on-site technician finds the device by hostname and opens its page."""

from __future__ import annotations

import json
import socket
import time
from typing import Any
from urllib.parse import quote

from playwright.sync_api import expect

from tests.conftest import Agent, ApiClient
from tests.console.conftest import SCREENSHOTS, Console


def _wait_for_inventory(console: Console, device_id: str) -> dict[str, Any]:
    api: ApiClient = console.api()
    deadline = time.monotonic() + 90
    while True:
        status, body = api.request("GET", f"/api/v1/devices/{device_id}/inventory")
        if status == 200:
            return dict(body)
        assert time.monotonic() < deadline, (status, body)
        time.sleep(0.5)


def test_onsite_searches_a_device_and_opens_its_page(console: Console, make_agent: Any) -> None:
    agent: Agent = make_agent(console.coordinator)
    agent.enroll()
    agent.start()
    device_id = agent.device_id
    document = _wait_for_inventory(console, device_id)["document"]
    hostname = socket.gethostname()
    softwares = document["content"].get("softwares", [])

    onsite = console.user("onsite", name="olivia.onsite", full_name="Olivia Moreau")
    page = console.sign_in(onsite)
    page.get_by_role("link", name="Devices", exact=True).click()
    page.wait_for_url("**/devices")

    # Search by hostname: the device is listed, with its inventory summary.
    page.fill("input[name=q]", hostname)
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/devices?*")
    row = page.locator(f"tr[data-device='{device_id}']")
    expect(row).to_contain_text(hostname)
    expect(row.locator(".online-dot.on")).to_have_count(1)
    expect(row).to_contain_text("GB")  # RAM and disk free
    export = page.get_by_test_id("export")
    expect(export).to_have_attribute("href", f"/api/v1/devices/export.csv?q={quote(hostname)}")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "console-devices.png"), full_page=True)

    # The device page: hardware, disks, network, software.
    row.get_by_role("link", name=hostname).click()
    page.wait_for_url(f"**/devices/{device_id}")
    expect(page.get_by_test_id("hostname")).to_have_text(hostname)
    expect(page.get_by_test_id("online")).to_have_text("online")
    hardware = page.get_by_test_id("hardware")
    expect(hardware).to_contain_text("Memory")
    expect(hardware).to_contain_text("Operating system")
    expect(hardware).to_contain_text(document["content"]["operatingsystem"]["full_name"])
    if document["content"].get("cpus"):
        expect(hardware).to_contain_text(document["content"]["cpus"][0]["name"])
    disks = page.get_by_test_id("disks")
    for drive in document["content"].get("drives", [])[:3]:
        expect(disks).to_contain_text(drive["type"])
    expect(page.get_by_test_id("software-count")).to_have_text(str(len(softwares)))
    if softwares:
        first = sorted(s["name"] for s in softwares)[0]
        software = page.get_by_test_id("software")
        expect(software.get_by_text(first, exact=True)).to_be_hidden()  # collapsed
        software.locator("summary").click()
        expect(software.get_by_text(first, exact=True).first).to_be_visible()
        software.locator("summary").click()
    expect(page.get_by_test_id("history")).to_be_visible()
    download = page.get_by_test_id("download")
    expect(download).to_have_attribute("href", f"/api/v1/devices/{device_id}/inventory.glpi.json")
    # The GLPI download and the CSV export answer with the console's session cookie.
    answer = page.request.get(f"/api/v1/devices/{device_id}/inventory.glpi.json")
    assert answer.status == 200
    assert json.loads(answer.body())["content"]["hardware"] == document["content"]["hardware"]
    csv = page.request.get(f"/api/v1/devices/export.csv?q={quote(hostname)}")
    assert csv.status == 200 and device_id in csv.text()
    page.screenshot(path=str(SCREENSHOTS / "console-device.png"), full_page=True)

    # A filter nothing matches shows an empty state.
    page.goto("/devices?ram_below=1")
    expect(page.get_by_test_id("empty")).to_contain_text("No device matches")
    expect(page.locator("tr[data-device]")).to_have_count(0)
    page.goto("/devices?q=no-such-device-zzz")
    expect(page.get_by_test_id("empty")).to_be_visible()


def test_device_without_inventory_and_html_hostname(console: Console, make_agent: Any) -> None:
    """An enrolled device that has not uploaded yet; a hostname with markup reads as text."""
    agent: Agent = make_agent(console.coordinator, "html")
    agent.enroll()
    device_id = agent.device_id
    evil = '<img src=x onerror="alert(1)">-pc'
    console.coordinator.sql("update devices set hostname = ? where id = ?", evil, device_id)
    page = console.sign_in(console.user("onsite"))
    seen: list[str] = []
    page.on("dialog", lambda dialog: (seen.append(dialog.message), dialog.dismiss()))
    page.goto("/devices")
    row = page.locator(f"tr[data-device='{device_id}']")
    expect(row.locator(".host a")).to_have_text(evil)
    expect(row).to_contain_text("no inventory yet")
    page.goto(f"/devices/{device_id}")
    expect(page.get_by_test_id("hostname")).to_have_text(evil)
    expect(page.get_by_test_id("no-inventory")).to_contain_text("No inventory received yet.")
    expect(page.get_by_test_id("download")).to_have_count(0)
    page.goto("/devices?q=" + quote('"><script>alert(2)</script>'))
    expect(page.locator("input[name=q]")).to_have_value('"><script>alert(2)</script>')
    assert page.locator("main img, main script").count() == 0
    page.goto("/devices/no-such-device")
    expect(page.locator("h1")).to_contain_text("Not found")
    page.wait_for_timeout(300)
    assert seen == []
