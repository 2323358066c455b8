"""Remote sessions end to end: the real coordinator, the real agent on an Xvfb screen,
its real consent dialog and banner answered with xdotool, and a viewer (bench/viewer.py,
or the browser page in test_browser_session.py).

One coordinator and one enrolled agent for the folder; each test opens its own ticket
and session, and ends it.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.viewer import Viewer
from tests.agent_gui import conftest as _gui
from tests.agent_gui.conftest import Screen, _require
from tests.conftest import Agent, ApiClient, Coordinator, wait_for

screen = _gui.screen  # one Xvfb (1280x800) for this folder

CONSENT_TITLE = "Backdesk — remote assistance request"
BANNER_TITLE = "Backdesk — remote session"
HERE = Path(__file__).parent


def pointer(screen: Screen) -> tuple[int, int]:
    out = screen.xdotool("getmouselocation", "--shell")
    values = dict(line.split("=", 1) for line in out.split())
    return int(values["X"]), int(values["Y"])


def consent_buttons(log_path: Path, since: int) -> dict[str, list[int]]:
    """Where the dialog's buttons are, from the agent's log (the dialog reports them once
    it accepts clicks), in the part of the log written after ``since``."""

    def ready() -> dict[str, list[int]] | None:
        text = log_path.read_text(errors="replace")[since:]
        for match in re.finditer(r'(\{"ready": true, "buttons": .*\})', text):
            return dict(json.loads(match.group(1))["buttons"])
        return None

    return dict(wait_for(ready, 30, what="the consent dialog to be ready"))


def answer_consent(screen: Screen, log_path: Path, since: int, button: str) -> None:
    """Click one of the consent dialog's buttons, like the person at the endpoint."""
    buttons = consent_buttons(log_path, since)
    assert screen.windows(CONSENT_TITLE), "the consent dialog is not shown"
    x, y, w, h = buttons[button]
    screen.xdotool("mousemove", "--sync", str(x + w // 2), str(y + h // 2))
    screen.xdotool("click", "1")


@dataclass
class Desk:
    coordinator: Coordinator
    agent: Agent
    screen: Screen
    technician: ApiClient  # an L2 with an API key
    key: str

    def ticket(self, take: bool = True) -> str:
        status, body = self.technician.request(
            "POST",
            "/api/v1/tickets",
            {
                "subject": "Excel freezes when saving",
                "description": "Since this morning",
                "requester": "Sam",
                "device_id": self.agent.device_id,
                "impact": 2,
                "urgency": 2,
            },
        )
        assert status == 201, body
        reference = str(body["reference"])
        if take:
            status, body = self.technician.request(
                "POST", f"/api/v1/tickets/{reference}/actions", {"action": "take"}
            )
            assert status == 200, body
        return reference

    def request(self, reference: str, scope: str) -> dict[str, Any]:
        status, body = self.technician.request(
            "POST", f"/api/v1/tickets/{reference}/sessions", {"scope": scope}
        )
        assert status == 201, body
        # Pending, or already waiting for consent if the agent was quick to join.
        assert body["state"] in ("pending", "awaiting_consent"), body
        assert body["viewer_url"] == f"/sessions/{body['id']}"
        return dict(body)

    def viewer(self, session_id: str, **kwargs: Any) -> Viewer:
        return Viewer(self.coordinator.url, session_id, self.key, **kwargs).start()

    def session(self, session_id: str) -> dict[str, Any]:
        return dict(self.technician.get(f"/api/v1/sessions/{session_id}"))

    def wait_ended(self, session_id: str, timeout: float = 15) -> dict[str, Any]:
        return dict(
            wait_for(
                lambda: (s := self.session(session_id))["state"] == "ended" and s,
                timeout,
                what=f"session {session_id} to end",
            )
        )

    def answer(self, since: int, button: str) -> None:
        answer_consent(self.screen, self.agent.log_path, since, button)

    def kill_agent(self) -> None:
        assert self.agent.process is not None
        self.agent.process.send_signal(signal.SIGKILL)
        self.agent.process.wait(10)

    def start_agent(self) -> None:
        self.agent.start()
        wait_for(
            lambda: self.technician.get(f"/api/v1/devices/{self.agent.device_id}")["online"],
            20,
            what="the agent online",
        )

    def log_size(self) -> int:
        return len(self.agent.log_path.read_text(errors="replace"))

    def banner_shown(self) -> bool:
        return bool(self.screen.windows(BANNER_TITLE))

    def no_banner(self, timeout: float = 2.5) -> None:
        wait_for(lambda: not self.banner_shown(), timeout, 0.1, "the banner to go")


@pytest.fixture(scope="module")
def desk(screen: Screen, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    _require("xterm", shutil.which("xterm") is not None)
    root = tmp_path_factory.mktemp("remote")
    # The relay tap keeps what the relay forwarded: test_relay_cannot_watch.py reads it.
    coordinator = Coordinator(
        root / "coordinator", extra=(*Coordinator.extra, "--relay-tap", str(root / "relay.tap"))
    )
    coordinator.start()
    agent = Agent(root / "agent", coordinator, env=screen.env)
    agent.enroll()
    key = coordinator.api_key("l2")
    desk = Desk(coordinator, agent, screen, ApiClient(coordinator, key), key)
    desk.start_agent()
    pattern = subprocess.Popen(
        [sys.executable, str(HERE / "pattern.py"), "900"],
        env=screen.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert pattern.stdout is not None and pattern.stdout.readline().strip() == "ready"
    try:
        yield desk
    finally:
        pattern.kill()
        agent.stop()
        coordinator.stop()


@pytest.fixture
def xterm_file(desk: Desk, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An xterm whose typed lines land in a file, focused (there is no window manager)."""
    out = tmp_path / "typed.txt"
    process = subprocess.Popen(
        ["xterm", "-geometry", "40x4+700+500", "-e", "sh", "-c", f"cat > {out}"],
        env=desk.screen.env,
    )
    window = wait_for(
        lambda: subprocess.run(
            ["xdotool", "search", "--onlyvisible", "--pid", str(process.pid)],
            env=desk.screen.env,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split(),
        15,
        what="the xterm",
    )[0]
    time.sleep(0.3)
    desk.screen.xdotool("windowfocus", "--sync", window)
    try:
        yield window, out
    finally:
        process.kill()
        process.wait()
