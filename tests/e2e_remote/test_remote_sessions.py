"""Remote sessions with the real agent, coordinator, consent dialog and banner.

Each test is one session from the technician's request to its end, and checks what
DESIGN.md promises: nothing is captured or injected before the user allowed it on the
endpoint, the grant is provable, and whoever ends it, capture stops and the banner goes.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import psutil

from agent.config import AgentDir
from protocol import identity, remote
from tests.conftest import wait_for

from .conftest import BANNER_TITLE, CONSENT_TITLE, Desk, pointer

# tests/e2e_remote/pattern.py: 120-px blocks from (40, 40): red, green / blue, yellow.
BLOCKS = {
    (100, 100): (0xE0, 0x20, 0x20),
    (220, 100): (0x20, 0xC0, 0x40),
    (100, 220): (0x20, 0x40, 0xE0),
    (220, 220): (0xF0, 0xD0, 0x20),
}


def canonical(receipt: dict) -> bytes:
    return json.dumps(receipt, sort_keys=True, separators=(",", ":")).encode()


def start_live(desk: Desk, scope: str, button: str, **viewer_options) -> tuple[dict, object]:
    reference = desk.ticket()
    since = desk.log_size()
    session = desk.request(reference, scope)
    viewer = desk.viewer(session["id"], **viewer_options)
    viewer.wait(lambda: viewer.code, 30, "the handshake")
    desk.answer(since, button)
    live = viewer.wait_state("live")
    return {**session, "ticket": reference, "live": live}, viewer


def keys(viewer, *codes: str) -> None:
    for code in codes:
        viewer.send(remote.Key(code, True))
        viewer.send(remote.Key(code, False))


def test_control_session_from_request_to_technician_end(desk: Desk, xterm_file) -> None:
    window, typed = xterm_file
    session, viewer = start_live(desk, "control", "allow_control")
    try:
        assert session["live"]["scope"] == "control"
        assert desk.banner_shown(), "a live session is always shown on the endpoint"
        assert not desk.screen.windows(CONSENT_TITLE)

        # The grant is provable: signed by the device, naming this session and the code
        # both ends showed.
        stored = desk.session(session["id"])
        assert stored["state"] == "live" and stored["scope"] == "control"
        receipt, signature = stored["consent"]["receipt"], stored["consent"]["signature"]
        assert receipt["decision"] == "allow" and receipt["via"] == "user"
        assert receipt["code"] == viewer.code and len(viewer.code) == 6
        assert receipt["session"] == session["id"] and receipt["ticket"] == session["ticket"]
        device_key = identity.public_key_bytes(AgentDir(desk.agent.config_dir).load_key())
        assert identity.verify(device_key, base64.b64decode(signature), canonical(receipt))

        # The screen arrives: the known pattern's colours, on the canvas.
        def pattern_seen() -> bool:
            rgb = viewer.canvas.rgb
            return rgb.shape[:2] == (800, 1280) and all(
                np.abs(rgb[y, x].astype(int) - colour).max() <= 24
                for (x, y), colour in BLOCKS.items()
            )

        viewer.wait(pattern_seen, 20, "the pattern on the canvas")
        assert viewer.screens is not None and viewer.screens.current == 1

        # Input: the pointer goes where the technician points, typed keys reach the xterm.
        viewer.send(remote.PointerMove(321, 123))
        wait_for(lambda: pointer(desk.screen) == (321, 123), 5, what="the pointer to move")
        desk.screen.xdotool("windowfocus", "--sync", window)
        viewer.send(remote.Key("ShiftLeft", True))
        keys(viewer, "KeyH")
        viewer.send(remote.Key("ShiftLeft", False))
        keys(viewer, "KeyI", "Digit5", "Minus", "Enter")
        wait_for(lambda: typed.read_text() == "Hi5-\n", 10, what="the typed line")

        # The technician ends it: both ends learn why, capture stops, the banner goes.
        viewer.end()
        ended = desk.wait_ended(session["id"])
        assert ended["reason"] == "ended_by_technician"
        desk.no_banner()
        viewer.wait(lambda: viewer.closed, 5, "the viewer socket to close")
        timeline = desk.technician.get(f"/api/v1/tickets/{session['ticket']}")["timeline"]
        kinds = [e["kind"] for e in timeline]
        assert {"session.requested", "session.started", "session.ended"} <= set(kinds)
        end_event = next(e for e in timeline if e["kind"] == "session.ended")
        assert end_event["data"]["scope"] == "control"
        assert end_event["data"]["duration_s"] >= 0
    finally:
        viewer.close()


def test_allow_view_on_a_control_request_drops_input_and_audits_it(desk: Desk) -> None:
    session, viewer = start_live(desk, "control", "allow_view")
    try:
        assert session["live"]["scope"] == "view"
        viewer.wait(lambda: viewer.frames > 0, 20, "a frame")
        # One session per device at a time.
        status, body = desk.technician.request(
            "POST", f"/api/v1/tickets/{desk.ticket()}/sessions", {"scope": "view"}
        )
        assert status == 409 and "already has a session" in body["error"]["message"]
        # The technician picks "all monitors" (mss index 0): the agent follows.
        assert viewer.screens is not None and viewer.screens.current == 1
        viewer.send(remote.SelectMonitor(0))
        viewer.wait(lambda: viewer.screens.current == 0, 10, "the monitor choice")
        before = pointer(desk.screen)
        target = (before[0] // 2 + 7, before[1] // 2 + 9)
        viewer.send(remote.PointerMove(*target))
        viewer.send(remote.PointerButton(1, True))
        viewer.send(remote.PointerButton(1, False))
        wait_for(
            lambda: desk.coordinator.sql(
                "select details from audit_log where action = 'session.input_dropped'"
            ),
            10,
            what="the dropped input in the audit log",
        )
        assert pointer(desk.screen) == before, "view only: the pointer must not move"
        viewer.end()
        assert desk.wait_ended(session["id"])["scope"] == "view"
        desk.no_banner()
    finally:
        viewer.close()


def test_deny_ends_the_session_and_nothing_is_sent(desk: Desk) -> None:
    reference = desk.ticket()
    since = desk.log_size()
    session = desk.request(reference, "view")
    viewer = desk.viewer(session["id"])
    try:
        viewer.wait(lambda: viewer.code, 30, "the handshake")
        desk.answer(since, "deny")
        state = viewer.wait_state("ended")
        assert state["reason"] == "denied"
        ended = desk.wait_ended(session["id"])
        assert ended["reason"] == "denied" and ended["started_at"] is None
        assert ended["consent"]["receipt"]["decision"] == "deny"
        assert viewer.frames == 0 and viewer.screens is None
        assert not desk.banner_shown()
        assert "capture started" not in desk.agent.log_path.read_text()[since:]
    finally:
        viewer.close()


def test_the_user_ends_it_with_the_hotkey(desk: Desk) -> None:
    session, viewer = start_live(desk, "view", "allow_view")
    try:
        viewer.wait(lambda: viewer.frames > 0, 20, "a frame")
        desk.screen.xdotool("key", "ctrl+alt+shift+e")
        assert viewer.wait_state("ended")["reason"] == "ended_by_user"
        ended = desk.wait_ended(session["id"])
        assert ended["reason"] == "ended_by_user"
        # The agent's own signed account of the end.
        assert ended["end_receipt"]["receipt"]["reason"] == "ended_by_user"
        desk.no_banner()
    finally:
        viewer.close()


def test_a_forged_frame_ends_the_session(desk: Desk) -> None:
    session, viewer = start_live(desk, "control", "allow_control")
    try:
        viewer.wait(lambda: viewer.frames > 0, 20, "a frame")
        before = pointer(desk.screen)
        # What a relay that wants to inject input would have to do: it has no key.
        forged = b"\x03" + (10**6).to_bytes(4, "big") + b"\x00" * 40
        viewer.send_raw(forged)
        assert desk.wait_ended(session["id"])["reason"] in ("protocol_error", "agent_gone")
        desk.no_banner()
        assert pointer(desk.screen) == before
        assert "replayed, reordered or forged" in desk.agent.log_path.read_text()
    finally:
        viewer.close()


def test_the_viewer_going_away_stops_capture_within_two_seconds(desk: Desk) -> None:
    session, viewer = start_live(desk, "view", "allow_view")
    viewer.wait(lambda: viewer.frames > 0, 20, "a frame")
    since = desk.log_size()
    viewer.close()
    desk.no_banner(timeout=2.5)
    wait_for(
        lambda: "capture stopped" in desk.agent.log_path.read_text()[since:],
        2.5,
        0.1,
        "capture to stop",
    )
    assert desk.wait_ended(session["id"])["reason"] == "viewer_gone"


def test_the_agent_stopping_ends_the_session_and_leaves_no_window(desk: Desk) -> None:
    session, viewer = start_live(desk, "control", "allow_control")
    try:
        viewer.wait(lambda: viewer.frames > 0, 20, "a frame")
        desk.kill_agent()
        assert viewer.wait_state("ended")["reason"] == "agent_gone"
        assert desk.wait_ended(session["id"])["reason"] == "agent_gone"
        desk.no_banner(timeout=5)  # no orphan banner outlives its agent
    finally:
        viewer.close()
        desk.start_agent()


def test_the_agent_stopping_while_it_asks_leaves_no_dialog(desk: Desk) -> None:
    reference = desk.ticket()
    session = desk.request(reference, "control")
    viewer = desk.viewer(session["id"])
    try:
        viewer.wait(lambda: viewer.code, 30, "the handshake")
        wait_for(lambda: desk.screen.windows(CONSENT_TITLE), 20, what="the consent dialog")
        desk.kill_agent()
        wait_for(lambda: not desk.screen.windows(CONSENT_TITLE), 5, 0.1, "the dialog to go")
        assert desk.wait_ended(session["id"])["reason"] == "agent_gone"
        assert viewer.frames == 0
    finally:
        viewer.close()
        desk.start_agent()


def test_a_session_whose_banner_dies_ends(desk: Desk) -> None:
    session, viewer = start_live(desk, "view", "allow_view")
    try:
        viewer.wait(lambda: viewer.frames > 0, 20, "a frame")
        assert desk.screen.windows(BANNER_TITLE)
        assert desk.agent.process is not None
        (banner,) = [
            p
            for p in psutil.Process(desk.agent.process.pid).children(recursive=True)
            if "agent.remote.banner" in p.cmdline()
        ]
        banner.kill()  # nothing would show the session any more
        assert viewer.wait_state("ended")["reason"] == "agent_error"
        assert desk.wait_ended(session["id"])["reason"] == "agent_error"
        wait_for(
            lambda: "capture stopped" in desk.agent.log_path.read_text(), 5, what="capture to stop"
        )
    finally:
        viewer.close()
