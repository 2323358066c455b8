"""The Get-help window as a person uses it: ``backdesk-agent get-help --json`` (no --no-gui)
on a real X server, typed into with xdotool, against a real coordinator.

The pointer stays in the screen's corner, away from the window: with no window manager,
Tk takes a pointer crossing a window's edge for a focus change (focus-follows-mouse),
so a window that shrinks under the pointer would lose the keyboard.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AGENT, Agent, ApiClient, Coordinator, wait_for

from .conftest import TITLE, Screen


class GetHelp:
    """One ``backdesk-agent get-help`` process and its window."""

    def __init__(self, screen: Screen, agent: Agent, *args: str) -> None:
        self.screen = screen
        screen.xdotool("mousemove", "1279", "799")
        self.process = subprocess.Popen(
            [AGENT, "--config-dir", str(agent.config_dir), "get-help", "--json", *args],
            env=screen.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            self.window = self._find_window()
        except BaseException:
            self.process.kill()
            raise
        self.form_height = screen.geometry(self.window)["HEIGHT"]

    def _find_window(self) -> str:
        out = self.screen.xdotool(
            "search",
            "--sync",
            "--onlyvisible",
            "--pid",
            str(self.process.pid),
            "--name",
            "^Backdesk.+Get help$",
            timeout=30,
        )
        window = out.split()[0]
        assert self.screen.xdotool("getwindowname", window).rstrip("\n") == TITLE
        return window

    def has_keyboard(self) -> bool:
        return self.screen.xdotool("getwindowfocus").strip() == self.window

    def wait_for_result(self, timeout: float = 30) -> None:
        """The form turns into the result once the coordinator answered (or did not)."""
        wait_for(
            lambda: self.screen.geometry(self.window)["HEIGHT"] < self.form_height,
            timeout,
            interval=0.1,
            what="the result to be shown",
        )
        time.sleep(0.2)  # let Tk paint it

    def shot(self, tmp_path: Path, name: str) -> Path:
        time.sleep(0.2)
        path = self.screen.screenshot(tmp_path / name, self.window)
        assert self.screen.colours_in(self.window) > 8, "the window looks blank"
        return path

    def finish(self, timeout: float = 30) -> tuple[int, str, str]:
        stdout, stderr = self.process.communicate(timeout=timeout)
        return self.process.returncode, stdout, stderr

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


@pytest.fixture(scope="module")
def shared_desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Agent, ApiClient]]:
    """One coordinator and one enrolled agent for the tests that keep the coordinator up."""
    base = tmp_path_factory.mktemp("gui-desk")
    coordinator = Coordinator(base / "coordinator")
    coordinator.start()
    try:
        agent = Agent(base / "agent", coordinator)
        agent.enroll()
        yield agent, ApiClient(coordinator, coordinator.api_key("admin"))
    finally:
        coordinator.stop()


@pytest.fixture
def desk(coordinator: Coordinator, make_agent: Any, api: Any) -> tuple[Agent, ApiClient]:
    """A coordinator of the test's own (it gets stopped) and an enrolled agent."""
    agent = make_agent(coordinator)
    agent.enroll()
    return agent, api(coordinator)


@pytest.fixture
def get_help(screen: Screen) -> Any:
    started: list[GetHelp] = []

    def start(agent: Agent, *args: str) -> GetHelp:
        session = GetHelp(screen, agent, *args)
        started.append(session)
        return session

    yield start
    for session in started:
        session.kill()


def ticket(client: ApiClient, reference: str) -> dict[str, Any]:
    return dict(client.get(f"/api/v1/tickets/{reference}"))


def test_type_a_description_and_send(
    screen: Screen, shared_desk: tuple[Agent, ApiClient], get_help: Any, tmp_path: Path
) -> None:
    agent, client = shared_desk
    session = get_help(agent)
    # The window takes the keyboard by itself: nobody clicks it, there is no window manager.
    wait_for(session.has_keyboard, 10, interval=0.05, what="the window to take the keyboard")
    session.shot(tmp_path, "get-help-form.png")

    screen.key("ctrl+Return")  # nothing typed yet: refused on the spot, nothing sent
    time.sleep(0.5)
    assert session.process.poll() is None
    session.shot(tmp_path, "get-help-empty-message.png")

    screen.type("Outlook freezes\nwhen I open attachments")
    screen.key("ctrl+Return")
    session.wait_for_result()
    session.shot(tmp_path, "get-help-sent.png")
    screen.key("Escape")  # closes the result
    code, stdout, stderr = session.finish()

    assert code == 0, stderr
    result = json.loads(stdout)
    assert set(result) == {"reference", "status", "request_id"}
    assert result["status"] == "created"
    assert result["reference"].startswith("BD-")
    assert result["request_id"].startswith("REQ-")
    opened = ticket(client, result["reference"])
    assert opened["description"] == "Outlook freezes\nwhen I open attachments"
    assert opened["subject"] == "Outlook freezes"
    assert opened["channel"] == "agent"
    assert opened["external_refs"]["agent_request"] == result["request_id"]
    assert opened["diagnostics"]["excluded"] == []
    assert set(opened["diagnostics"]["data"]) == {
        "system",
        "cpu",
        "memory",
        "disks",
        "network",
        "processes",
    }


def test_a_section_left_out_is_not_sent(
    screen: Screen, shared_desk: tuple[Agent, ApiClient], get_help: Any, tmp_path: Path
) -> None:
    agent, client = shared_desk
    session = get_help(agent, "--message", "The printer on floor 2 is jammed")
    wait_for(session.has_keyboard, 10, interval=0.05, what="the window to take the keyboard")
    # Tab from the message to the first section (System), again to Processor; Space
    # unchecks it. Five more Tabs reach "Show all data": Space shows what will be sent.
    screen.key("Tab", "Tab", "space")
    screen.key(*["Tab"] * 5, "space")
    time.sleep(0.3)
    session.form_height = screen.geometry(session.window)["HEIGHT"]  # taller with the data
    session.shot(tmp_path, "get-help-data.png")
    screen.key("ctrl+Return")
    session.wait_for_result()
    screen.key("Escape")
    code, stdout, stderr = session.finish()

    assert code == 0, stderr
    result = json.loads(stdout)
    assert result["status"] == "created"
    opened = ticket(client, result["reference"])
    assert opened["description"] == "The printer on floor 2 is jammed"
    assert opened["diagnostics"]["excluded"] == ["cpu"]
    assert "cpu" not in opened["diagnostics"]["data"]
    assert "memory" in opened["diagnostics"]["data"]


def test_escape_sends_nothing(
    screen: Screen, shared_desk: tuple[Agent, ApiClient], get_help: Any
) -> None:
    agent, client = shared_desk
    before = client.get("/api/v1/tickets")["tickets"]
    sent_before = json.loads(agent.cli("status", "--json").stdout)["recent_requests"]
    session = get_help(agent)
    wait_for(session.has_keyboard, 10, interval=0.05, what="the window to take the keyboard")
    screen.type("never mind")
    screen.key("Escape")
    code, stdout, stderr = session.finish()

    assert code == 1
    assert stdout == ""
    assert stderr.strip() == "backdesk-agent: error: nothing was sent"
    assert client.get("/api/v1/tickets")["tickets"] == before
    status = json.loads(agent.cli("status", "--json").stdout)
    assert status["outbox_pending"] == 0
    assert status["recent_requests"] == sent_before


def read_clipboard(screen: Screen) -> str:
    """What another program gets when it pastes (a fresh process: Tk answers from its
    own copy while it thinks it still owns the clipboard)."""
    script = "import tkinter; r = tkinter.Tk(); r.withdraw(); print(r.clipboard_get())"
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=screen.env,
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    return result.stdout.strip()


def test_coordinator_down_queues_then_delivers_once(
    screen: Screen,
    coordinator: Coordinator,
    desk: tuple[Agent, ApiClient],
    get_help: Any,
    tmp_path: Path,
) -> None:
    agent, client = desk
    coordinator.kill()
    session = get_help(agent)
    wait_for(session.has_keyboard, 10, interval=0.05, what="the window to take the keyboard")
    screen.type("No network since this morning")
    screen.key("ctrl+Return")
    session.wait_for_result()
    session.shot(tmp_path, "get-help-queued.png")
    screen.key("Tab", "space")  # the focus is on Close; Tab reaches Copy number
    time.sleep(0.3)
    copied = read_clipboard(screen)
    screen.key("Escape")
    code, stdout, stderr = session.finish()

    assert code == 0, stderr
    result = json.loads(stdout)
    assert result["status"] == "queued"
    assert result["reference"] == result["request_id"]
    assert result["reference"].startswith("REQ-")
    assert copied == result["reference"]

    # The link comes back: the service delivers the saved request, exactly once.
    coordinator.start()
    agent.start()

    def delivered() -> list[dict[str, Any]]:
        found = client.get("/api/v1/tickets?q=network")["tickets"]
        return [
            t
            for t in found
            if t.get("external_refs", {}).get("agent_request") == result["request_id"]
        ]

    tickets = wait_for(delivered, 30, interval=0.3, what="the queued request to be delivered")
    assert len(tickets) == 1
    assert tickets[0]["description"] == "No network since this morning"
