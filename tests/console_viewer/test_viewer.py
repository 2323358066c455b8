"""The live-session page: handshake and verification code, drawing, acks, input, chat,
ending, and refusing forged frames (see conftest.py for the stand-in coordinator/agent)."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from PIL import Image

from agent.remote.screen import ScreenEncoder
from protocol import remote
from protocol.remote import Encoding, Frame, Rect
from tests.agent_remote_screen.canvas import Canvas
from tests.agent_remote_screen.images import bgra, photo, text
from tests.conftest import wait_for

RED = (220, 30, 40)
GREEN = (20, 200, 60)
BLUE = (30, 60, 230)
WHITE = (255, 255, 255)
YELLOW = (250, 220, 0)
MAGENTA = (200, 0, 200)
SCREEN_SIZE = (
    "() => [document.getElementById('screen').width, document.getElementById('screen').height]"
)


def png_quadrants(w: int = 64, h: int = 48) -> bytes:
    """Red, green / blue, white quadrants."""
    image = Image.new("RGB", (w, h))
    for (x, y), colour in {(0, 0): RED, (1, 0): GREEN, (0, 1): BLUE, (1, 1): WHITE}.items():
        image.paste(colour, (x * w // 2, y * h // 2, (x + 1) * w // 2, (y + 1) * h // 2))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def jpeg_halves(w: int = 64, h: int = 64) -> bytes:
    """Yellow left half, magenta right half."""
    image = Image.new("RGB", (w, h), YELLOW)
    image.paste(MAGENTA, (w // 2, 0, w, h))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


def fill(x: int, y: int, w: int, h: int, colour: tuple[int, int, int]) -> Rect:
    return Rect(x, y, w, h, Encoding.FILL, remote.fill_data(*colour))


def copy(x: int, y: int, w: int, h: int, sx: int, sy: int) -> Rect:
    return Rect(x, y, w, h, Encoding.COPY, remote.copy_data(sx, sy))


def close(actual: tuple[int, int, int], expected: tuple[int, int, int], tolerance: int = 6) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def assert_colour(
    viewer: Any, x: int, y: int, expected: tuple[int, int, int], tol: int = 6
) -> None:
    actual = viewer.pixel(x, y)
    assert close(actual, expected, tol), f"pixel ({x}, {y}) is {actual}, expected {expected}"


def live_viewer(open_viewer: Any, width: int = 1600, height: int = 1000, **fields: Any) -> Any:
    """A live session showing one grey frame of width by height."""
    viewer = open_viewer(**fields)
    s = viewer.session
    s.live()
    viewer.wait("() => window.backdeskViewer.state === 'live' && window.backdeskViewer.code")
    s.send(Frame(1, 1, width, height, (fill(0, 0, width, height, (90, 90, 90)),)))
    viewer.wait("() => window.backdeskViewer.framesDrawn === 1")
    return viewer


def test_handshake_shows_the_agents_code_then_goes_live(open_viewer: Any) -> None:
    viewer = open_viewer()
    page, s = viewer.page, viewer.session
    s.wait_ready()
    viewer.wait("() => window.backdeskViewer.code !== ''")
    assert viewer.view()["code"] == s.code
    banner = page.locator("#code-banner")
    banner.wait_for(state="visible")
    assert "Read this code to the user" in banner.inner_text()
    assert page.locator("#code").inner_text() == f"{s.code[:3]} {s.code[3:]}"
    assert page.locator("#state-text").inner_text() == "Waiting for the user's consent"
    assert page.locator("#ticket-link").get_attribute("href") == "/tickets/BD-000123"
    root = page.locator("#remote-session")
    assert root.get_attribute("data-session-id") == s.id
    assert root.get_attribute("data-scope") == "control"
    assert page.locator("#remote-device").inner_text() == "PC-FLOOR2-17"

    s.live()
    viewer.wait("() => window.backdeskViewer.state === 'live'")
    assert page.locator("#state-text").inner_text() == "Live"
    assert page.locator("#code-banner").is_hidden()
    # Latency from the coordinator's pong.
    viewer.wait("() => /^\\d+$/.test(document.getElementById('latency').textContent)")
    assert s.pings >= 1
    assert s.errors == []
    assert viewer.csp_violations() == []
    assert not [m for m in viewer.console if "error" in m.lower()], viewer.console


def test_frames_draw_png_jpeg_copy_fill_and_are_acknowledged(open_viewer: Any) -> None:
    viewer = open_viewer()
    page, s = viewer.page, viewer.session
    s.live()
    s.send(
        remote.Screens(
            (
                remote.Monitor(0, 0, 0, 3840, 1080),
                remote.Monitor(1, 0, 0, 1920, 1080),
                remote.Monitor(2, 1920, 0, 1920, 1080),
            ),
            current=1,
        ),
        Frame(
            7,
            1,
            320,
            200,
            (
                fill(0, 0, 320, 200, (0, 0, 0)),
                Rect(10, 20, 64, 48, Encoding.PNG, png_quadrants()),
                Rect(200, 100, 64, 64, Encoding.JPEG, jpeg_halves()),
                fill(120, 150, 40, 30, GREEN),
            ),
        ),
    )
    viewer.wait("() => window.backdeskViewer.framesDrawn === 1")
    assert page.evaluate(SCREEN_SIZE) == [320, 200]
    assert viewer.view()["lastSeq"] == 7
    assert_colour(viewer, 10 + 5, 20 + 5, RED, 0)
    assert_colour(viewer, 10 + 60, 20 + 5, GREEN, 0)
    assert_colour(viewer, 10 + 5, 20 + 40, BLUE, 0)
    assert_colour(viewer, 10 + 60, 20 + 40, WHITE, 0)
    assert_colour(viewer, 200 + 10, 100 + 30, YELLOW, 14)
    assert_colour(viewer, 200 + 54, 100 + 30, MAGENTA, 14)
    assert_colour(viewer, 130, 160, GREEN, 0)
    assert_colour(viewer, 300, 10, (0, 0, 0), 0)

    # Copies read the canvas as it is when they apply, in order: a scroll by 10 pixels
    # (overlapping source and destination), then a fill over part of it.
    s.send(Frame(8, 1, 320, 200, (copy(10, 30, 64, 48, 10, 20), fill(10, 20, 64, 10, BLUE))))
    viewer.wait("() => window.backdeskViewer.framesDrawn === 2")
    assert_colour(viewer, 15, 22, BLUE, 0)  # the fill
    assert_colour(viewer, 15, 32, RED, 0)  # red moved down by 10
    assert_colour(viewer, 15, 50, RED, 0)  # red was 20..43, now 30..53
    assert_colour(viewer, 15, 56, BLUE, 0)  # blue quadrant moved down too
    assert_colour(viewer, 70, 76, WHITE, 0)  # white 44..67 → 54..77

    acks = s.wait_received(
        lambda m: isinstance(m, remote.FrameAck) and m.seq == 8, "the ack of frame 8"
    )
    assert acks
    assert [m.seq for m in s.received if isinstance(m, remote.FrameAck)] == [7, 8]

    # A size change resizes the canvas; the display keeps the aspect ratio.
    s.send(Frame(9, 1, 1920, 1080, (fill(0, 0, 1920, 1080, MAGENTA),)))
    viewer.wait("() => window.backdeskViewer.framesDrawn === 3")
    box = page.locator("#screen").bounding_box()
    assert page.evaluate(SCREEN_SIZE) == [1920, 1080]
    assert box["width"] < 1920
    assert abs(box["width"] / box["height"] - 1920 / 1080) < 0.01
    stage = page.locator("#stage").bounding_box()
    assert box["width"] <= stage["width"] and box["height"] <= stage["height"]
    assert_colour(viewer, 1900, 1000, MAGENTA, 0)

    # The monitor picker lists what the agent sent, "All monitors" first.
    options = page.locator("#monitor option").all_inner_texts()
    assert options[0] == "All monitors" and len(options) == 3
    assert page.locator("#monitor").input_value() == "1"
    page.select_option("#monitor", "2")
    s.wait_received(lambda m: m == remote.SelectMonitor(2), "the monitor choice")
    viewer.wait("() => /^\\d+$/.test(document.getElementById('fps').textContent)")
    viewer.wait("() => /^\\d+$/.test(document.getElementById('kbps').textContent)")
    assert s.errors == []
    assert viewer.csp_violations() == []


def test_cursor_overlay(open_viewer: Any) -> None:
    viewer = live_viewer(open_viewer, 800, 500)
    page, s = viewer.page, viewer.session
    s.send(remote.Cursor(400, 250))
    cursor = page.locator("#cursor")
    cursor.wait_for(state="visible")
    screen = page.locator("#screen").bounding_box()
    box = cursor.bounding_box()
    scale = screen["width"] / 800
    shrink = min(1, max(0.75, scale))  # the pointer shrinks less than the picture
    # The default arrow's hot spot (1, 1) is on the remote pointer.
    assert abs(box["x"] + 1 * shrink - (screen["x"] + 400 * scale)) < 2
    assert abs(box["y"] + 1 * shrink - (screen["y"] + 250 * scale)) < 2
    assert abs(box["width"] - 14 * shrink) < 1

    shape = io.BytesIO()
    Image.new("RGBA", (32, 32), (255, 0, 0, 255)).save(shape, "PNG")
    s.send(remote.Cursor(100, 50, 16, 16, shape.getvalue()))
    viewer.wait("() => document.getElementById('cursor').width === 32")
    s.send(remote.Cursor(120, 60))  # a move keeps the shape
    page.wait_for_function(
        "() => getComputedStyle(document.getElementById('cursor')).transform !== 'none'"
    )
    assert page.evaluate("() => document.getElementById('cursor').width") == 32
    assert s.errors == []


def test_click_wheel_and_typing_reach_the_agent_with_remote_coordinates(open_viewer: Any) -> None:
    viewer = live_viewer(open_viewer, 1600, 1000)
    page, s = viewer.page, viewer.session
    box = page.locator("#screen").bounding_box()
    assert box["width"] < 1600  # scaled down to fit
    css_x, css_y = box["width"] * 0.25 + 0.5, box["height"] * 0.6 + 0.5
    page.mouse.click(box["x"] + css_x, box["y"] + css_y)
    expected_x = int(css_x * 1600 / box["width"])
    expected_y = int(css_y * 1000 / box["height"])

    s.wait_received(lambda m: m == remote.PointerButton(1, False), "the left button up")
    inputs = s.inputs()
    down = inputs.index(remote.PointerButton(1, True))
    move = inputs[down - 1]
    assert isinstance(move, remote.PointerMove)
    assert abs(move.x - expected_x) <= 1 and abs(move.y - expected_y) <= 1, (move, expected_x)
    assert inputs[down + 1] == remote.PointerButton(1, False)
    assert page.evaluate("() => document.activeElement.id") == "screen"

    page.mouse.click(box["x"] + 10, box["y"] + 10, button="right")
    s.wait_received(lambda m: m == remote.PointerButton(3, False), "the right button up")
    page.mouse.wheel(0, 100)
    s.wait_received(lambda m: isinstance(m, remote.Wheel), "a wheel notch")
    assert [m for m in s.inputs() if isinstance(m, remote.Wheel)] == [remote.Wheel(0, 1)]

    page.keyboard.type("ab")
    page.keyboard.press("Enter")
    page.keyboard.press("Control+l")  # would focus the address bar; goes to the remote
    s.wait_received(lambda m: m == remote.Key("ControlLeft", False), "the last key up")
    keys = [m for m in s.inputs() if isinstance(m, remote.Key)]
    assert keys == [
        remote.Key("KeyA", True),
        remote.Key("KeyA", False),
        remote.Key("KeyB", True),
        remote.Key("KeyB", False),
        remote.Key("Enter", True),
        remote.Key("Enter", False),
        remote.Key("ControlLeft", True),
        remote.Key("KeyL", True),
        remote.Key("KeyL", False),
        remote.Key("ControlLeft", False),
    ]
    assert s.errors == []


def test_view_scope_sends_no_input(open_viewer: Any) -> None:
    viewer = live_viewer(open_viewer, 1280, 720, scope="view")
    page, s = viewer.page, viewer.session
    assert page.locator("#scope-badge").inner_text() == "View only"
    box = page.locator("#screen").bounding_box()
    page.mouse.click(box["x"] + 50, box["y"] + 50)
    page.mouse.move(box["x"] + 80, box["y"] + 90)
    page.mouse.wheel(0, 100)
    page.keyboard.type("secret")
    page.fill("#chat-input", "barrier")
    page.click("#chat-send")
    s.wait_received(lambda m: m == remote.Chat("barrier"), "the chat message")
    assert s.inputs() == []
    assert s.errors == []


def test_a_session_granted_view_only_sends_no_input(open_viewer: Any) -> None:
    """Asked for control, the user allowed viewing only: the state's scope rules."""
    viewer = open_viewer(scope="control")
    page, s = viewer.page, viewer.session
    s.wait_ready()
    s.state("live", scope="view")
    viewer.wait("() => window.backdeskViewer.state === 'live'")
    s.send(Frame(1, 1, 640, 400, (fill(0, 0, 640, 400, RED),)))
    viewer.wait("() => window.backdeskViewer.framesDrawn === 1")
    assert page.locator("#scope-badge").inner_text() == "View only"
    box = page.locator("#screen").bounding_box()
    page.mouse.click(box["x"] + 50, box["y"] + 50)
    page.keyboard.type("x")
    page.fill("#chat-input", "barrier")
    page.press("#chat-input", "Enter")
    s.wait_received(lambda m: m == remote.Chat("barrier"), "the chat message")
    assert s.inputs() == []


def test_chat_both_ways(open_viewer: Any) -> None:
    viewer = live_viewer(open_viewer, 640, 400)
    page, s = viewer.page, viewer.session
    s.send(remote.Chat("Hi! <b>bold</b> & it still hangs"))
    them = page.locator("#chat-log li.chat-them")
    them.wait_for()
    assert "Hi! <b>bold</b> & it still hangs" in them.inner_text()
    assert page.locator("#chat-log b").count() == 0
    page.fill("#chat-input", "I'm looking at it now")
    page.click("#chat-send")
    s.wait_received(lambda m: m == remote.Chat("I'm looking at it now"), "the chat message")
    assert "I'm looking at it now" in page.locator("#chat-log li.chat-me").inner_text()
    assert page.locator("#chat-input").input_value() == ""


def test_end_button_sends_end_and_shows_the_ended_state(open_viewer: Any) -> None:
    viewer = live_viewer(open_viewer, 640, 400)
    page, s = viewer.page, viewer.session
    page.click("#end-session")
    wait_for(lambda: {"type": "end", "reason": "technician"} in s.texts, 5, what="end")
    viewer.wait("() => window.backdeskViewer.state === 'ended'")
    assert page.locator("#state-text").inner_text() == "Ended — by you"
    assert page.locator("#end-session").is_disabled()
    assert s.closed.wait(5)


def test_the_coordinator_ends_the_session(open_viewer: Any) -> None:
    viewer = live_viewer(open_viewer, 640, 400)
    page, s = viewer.page, viewer.session
    s.state("ended", reason="agent_gone")
    viewer.wait("() => window.backdeskViewer.state === 'ended'")
    assert page.locator("#state-text").inner_text() == "Ended — the device disconnected"
    assert page.locator("#overlay-text").inner_text() == "Session ended: the device disconnected"
    assert page.locator("#chat-input").is_disabled()


def test_the_session_ends_when_the_socket_closes(open_viewer: Any) -> None:
    viewer = live_viewer(open_viewer, 640, 400)
    viewer.session.close()
    viewer.wait("() => window.backdeskViewer.state === 'ended'")
    assert viewer.page.locator("#state-text").inner_text() == "Ended — connection lost"
    assert viewer.page.locator("#end-session").is_disabled()


def _assert_forged(viewer: Any) -> None:
    page, s = viewer.page, viewer.session
    viewer.wait("() => window.backdeskViewer.state === 'ended'")
    assert "replayed, reordered or forged frame" in page.locator("#overlay-text").inner_text()
    assert "forged" in page.locator("#state-text").inner_text()
    assert s.closed.wait(5), "the page keeps the socket open"
    assert viewer.view()["framesDrawn"] == 1


def test_a_forged_message_ends_the_session(open_viewer: Any) -> None:
    viewer = live_viewer(open_viewer, 640, 400)
    sealed = bytearray(viewer.session.seal(Frame(2, 1, 640, 400, (fill(0, 0, 10, 10, RED),))))
    sealed[-20] ^= 0x01
    viewer.session.raw(bytes(sealed))
    _assert_forged(viewer)


def test_a_replayed_message_ends_the_session(open_viewer: Any) -> None:
    viewer = live_viewer(open_viewer, 640, 400)
    s = viewer.session
    sealed = s.seal(remote.Chat("once"))
    s.raw(sealed)
    viewer.page.locator("#chat-log li.chat-them").wait_for()
    s.raw(sealed)
    _assert_forged(viewer)


def test_a_hello_not_signed_by_the_device_ends_the_session(open_viewer: Any) -> None:
    viewer = open_viewer(wrong_key=True)
    page, s = viewer.page, viewer.session
    s.wait_ready()
    viewer.wait("() => window.backdeskViewer.state === 'ended'")
    assert "not signed by the device" in page.locator("#overlay-text").inner_text()
    assert viewer.view()["code"] == ""
    assert page.locator("#code-banner").is_hidden()
    assert s.closed.wait(5)


def test_an_undecodable_message_ends_the_session(open_viewer: Any) -> None:
    viewer = live_viewer(open_viewer, 640, 400)
    viewer.session.raw(viewer.session.seal_raw(b"\x10\x00\x00"))
    viewer.wait("() => window.backdeskViewer.state === 'ended'")
    assert "truncated frame" in viewer.page.locator("#overlay-text").inner_text()
    assert viewer.session.closed.wait(5)


def test_the_page_of_an_ended_session_does_not_connect(open_viewer: Any) -> None:
    viewer = open_viewer(page_state=("ended", "ended_by_user"))
    page = viewer.page
    assert page.locator("#state-text").inner_text() == "Ended — by the user"
    assert page.locator("#overlay-text").inner_text() == "Session ended by the user"
    page.wait_for_timeout(300)
    assert viewer.session.sockets == 0
    assert page.locator("#end-session").is_disabled()


CANVAS_PIXELS = """() => {
    const c = document.getElementById("screen");
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let s = "";
    for (let i = 0; i < d.length; i += 0x8000) {
        s += String.fromCharCode.apply(null, d.subarray(i, i + 0x8000));
    }
    return btoa(s);
}"""


def test_the_agents_encoder_output_paints_what_its_canvas_model_expects(open_viewer: Any) -> None:
    """Frames from the real ScreenEncoder (full picture, a scroll as a COPY plus the new
    strip, a window move) end up on the browser's canvas as on the agent's model of it."""
    w, h = 640, 480
    viewer = open_viewer()
    s = viewer.session
    s.live()
    encoder = ScreenEncoder(quality=70)
    model = Canvas(w, h)
    screen = photo(h, w, 3)
    screen[60:380, 80:500] = text(320, 420, 3)
    scrolled = screen.copy()
    scrolled[60:348, 80:500] = screen[92:380, 80:500]
    scrolled[348:380, 80:500] = text(32, 420, seed=11)
    moved = photo(h, w, 3)
    moved[70:390, 100:520] = scrolled[60:380, 80:500]
    frames = []
    for image in (screen, scrolled, moved):
        frame = encoder.encode(bgra(image))
        assert frame is not None
        model.apply(frame)
        frames.append(frame)
    assert any(r.encoding is Encoding.COPY for f in frames[1:] for r in f.rects)
    s.send(*frames)
    viewer.wait(f"() => window.backdeskViewer.lastSeq === {frames[-1].seq}")
    pixels = np.frombuffer(base64.b64decode(viewer.page.evaluate(CANVAS_PIXELS)), np.uint8)
    shown = pixels.reshape(h, w, 4)[..., :3].astype(int)
    diff = np.abs(shown - model.rgb.astype(int))
    assert diff.mean() < 1.0, diff.mean()
    assert np.percentile(diff, 99.9) <= 12, np.percentile(diff, 99.9)
    # Text goes lossless and copies move pixels as they are: that part is exact.
    assert diff[80:380, 120:500].max() == 0, diff[80:380, 120:500].max()
    assert np.abs(shown - moved.astype(int)).mean() < 5.0
    last = frames[-1].seq
    s.wait_received(lambda m: m == remote.FrameAck(last), "the last ack")
    acks = [m.seq for m in list(s.received) if isinstance(m, remote.FrameAck)]
    assert acks == [f.seq for f in frames]
    assert s.errors == []
