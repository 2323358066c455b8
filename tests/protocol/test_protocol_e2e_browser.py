"""The browser's e2e.js and remote-codec.js against protocol.e2e and protocol.remote.

Real headless Chromium (the system's, driven by Playwright's sync API) loads the two ES
modules from a throwaway HTTP server on 127.0.0.1 (a secure context, so WebCrypto is
there). Python plays the agent, the page plays the viewer. Without Playwright or
Chromium these tests are skipped, except in CI (``CI=true``) where that is a failure.
"""

from __future__ import annotations

import base64
import json
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocol import e2e, remote
from protocol.errors import ProtocolError
from protocol.identity import public_key_bytes
from tests.console.conftest import chromium

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "coordinator" / "web" / "static"

SESSION = "7a1c4e2f-0b9d-4f3a-8c6e-5d2b1a0f9e8d"
DEVICE = Ed25519PrivateKey.from_private_bytes(b"\x33" * 32)
DEVICE_KEY = public_key_bytes(DEVICE)
OTHER = Ed25519PrivateKey.from_private_bytes(b"\x44" * 32)

PAGE = b"""<!doctype html>
<meta charset="utf-8">
<title>e2e.js under test</title>
<script type="module">
import * as e2e from "/static/e2e.js";
import * as codec from "/static/remote-codec.js";

function toB64(u8) {
  let text = "";
  for (let i = 0; i < u8.length; i += 0x8000) {
    text += String.fromCharCode(...u8.subarray(i, i + 0x8000));
  }
  return btoa(text);
}
function fromB64(b64) {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}
// Plain JSON for Python: byte arrays as base64.
function plain(value) {
  if (value instanceof Uint8Array) return { b64: toB64(value) };
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}
async function outcome(promise) {
  try {
    return { ok: plain(await promise) };
  } catch (err) {
    return { error: err?.name ?? "?", message: String(err?.message ?? err),
             e2e: err instanceof e2e.E2EError };
  }
}
window.t = { e2e, codec, toB64, fromB64, plain, outcome };
window.ready = true;
</script>
"""


# --- a throwaway server and one browser for the module ----------------------------------


class _Handler(BaseHTTPRequestHandler):
    files: dict[str, tuple[bytes, str]] = {}

    def do_GET(self) -> None:
        found = self.files.get(self.path)
        if found is None:
            self.send_error(404)
            return
        body, kind = found
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    js = "text/javascript; charset=utf-8"
    _Handler.files = {
        "/": (PAGE, "text/html; charset=utf-8"),
        "/static/e2e.js": ((STATIC / "e2e.js").read_bytes(), js),
        "/static/remote-codec.js": ((STATIC / "remote-codec.js").read_bytes(), js),
    }
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def module_page(browser: Any, server: str) -> Iterator[tuple[Any, list[str]]]:
    """One page for the whole module (loading one per test costs more than the tests)."""
    context = browser.new_context()
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.goto(server)
    tab.wait_for_function("window.ready === true")
    assert tab.evaluate("window.isSecureContext")
    try:
        yield tab, errors
    finally:
        context.close()


@pytest.fixture
def page(module_page: tuple[Any, list[str]]) -> Iterator[Any]:
    tab, errors = module_page
    tab.evaluate("delete window.hs; delete window.ch;")
    yield tab
    assert not errors, errors


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def js_handshake(page: Any, session: str = SESSION, device_key: bytes = DEVICE_KEY) -> bytes:
    """Start the page's handshake (kept as window.hs); returns its hello."""
    hello = page.evaluate(
        """async ([sid, key]) => {
            window.hs = await t.e2e.startViewerHandshake(sid, t.fromB64(key));
            return t.toB64(window.hs.hello);
        }""",
        [session, b64(device_key)],
    )
    return unb64(hello)


def js_finish(page: Any, agent_hello: bytes) -> dict[str, Any]:
    """Finish the page's handshake (the channel becomes window.ch)."""
    result: dict[str, Any] = page.evaluate(
        """async (hello) => t.outcome((async () => {
            window.ch = await window.hs.finish(t.fromB64(hello));
            return window.ch.code;
        })())""",
        b64(agent_hello),
    )
    return result


def connect(page: Any) -> e2e.Channel:
    """A finished handshake: the page's window.ch and the returned agent channel."""
    hello = js_handshake(page)
    answer = e2e.agent_handshake(SESSION, DEVICE, hello)
    assert not isinstance(answer, ProtocolError), answer
    agent_hello, agent = answer
    finished = js_finish(page, agent_hello)
    assert finished == {"ok": agent.code}, finished
    return agent


def js_open(page: Any, messages: list[bytes]) -> list[dict[str, Any]]:
    """Open messages one after the other (each awaited) in the page."""
    result: list[dict[str, Any]] = page.evaluate(
        """async (messages) => {
            const out = [];
            for (const m of messages) out.push(await t.outcome(window.ch.open(t.fromB64(m))));
            return out;
        }""",
        [b64(m) for m in messages],
    )
    return result


def js_seal(page: Any, plaintexts: list[bytes]) -> list[bytes]:
    sealed = page.evaluate(
        """async (plaintexts) => {
            const out = [];
            for (const p of plaintexts) out.push(t.toB64(await window.ch.seal(t.fromB64(p))));
            return out;
        }""",
        [b64(p) for p in plaintexts],
    )
    return [unb64(s) for s in sealed]


def plaintexts(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    sizes = [0, 1, 15, 16, 17, 100_000, *(rng.randrange(0, 3000) for _ in range(count - 6))]
    return [rng.randbytes(n) for n in sizes]


# --- handshake --------------------------------------------------------------------------


def test_transcript_hash_matches(page: Any) -> None:
    v, a = b"\x05" * 32, b"\x06" * 32
    js = page.evaluate(
        """async ([sid, d, v, a]) => t.toB64(await t.e2e.transcriptHash(
            sid, t.fromB64(d), t.fromB64(v), t.fromB64(a)))""",
        [SESSION, b64(DEVICE_KEY), b64(v), b64(a)],
    )
    assert unb64(js) == e2e.transcript_hash(SESSION, DEVICE_KEY, v, a)


def test_python_agent_and_js_viewer_show_the_same_code(page: Any) -> None:
    hello = js_handshake(page)
    assert len(hello) == 33 and hello[0] == e2e.VIEWER_HELLO
    answer = e2e.agent_handshake(SESSION, DEVICE, hello)
    assert not isinstance(answer, ProtocolError)
    agent_hello, agent = answer
    finished = js_finish(page, agent_hello)
    assert finished == {"ok": agent.code}
    assert len(agent.code) == 6 and agent.code.isdigit()
    # finish works once
    again = js_finish(page, agent_hello)
    assert again["e2e"] and "already finished" in again["message"]


def test_many_messages_both_directions(page: Any) -> None:
    agent = connect(page)
    down = plaintexts(60, seed=1)
    opened = js_open(page, [agent.seal(p) for p in down])
    assert [unb64(o["ok"]["b64"]) for o in opened] == down

    up = plaintexts(60, seed=2)
    sealed = js_seal(page, up)
    for n, (message, plaintext) in enumerate(zip(sealed, up, strict=True)):
        assert message[0] == e2e.SEALED
        assert int.from_bytes(message[1:5], "big") == n
        assert agent.open(message) == plaintext
    # Interleaved, as a live session goes.
    for n in range(10):
        assert agent.open(js_seal(page, [bytes([n]) * n])[0]) == bytes([n]) * n
        assert js_open(page, [agent.seal(b"frame %d" % n)]) == [
            {"ok": {"b64": b64(b"frame %d" % n)}}
        ]
    assert page.evaluate("[window.ch.sent, window.ch.received, window.ch.failed]") == [
        70,
        70,
        None,
    ]


def test_opens_called_without_waiting_settle_in_order(page: Any) -> None:
    agent = connect(page)
    down = plaintexts(30, seed=3)
    results = page.evaluate(
        """async (messages) => {
            // All calls made at once: counters are checked when open() is called.
            const all = messages.map((m) => t.outcome(window.ch.open(t.fromB64(m))));
            return Promise.all(all);
        }""",
        [b64(agent.seal(p)) for p in down],
    )
    assert [unb64(r["ok"]["b64"]) for r in results] == down
    sealed = page.evaluate(
        """async (n) => {
            const all = [];
            for (let i = 0; i < n; i++) all.push(window.ch.seal(new Uint8Array([i])));
            return (await Promise.all(all)).map(t.toB64);
        }""",
        20,
    )
    assert [agent.open(unb64(s)) for s in sealed] == [bytes([i]) for i in range(20)]


def test_js_refuses_a_replayed_message_and_stays_failed(page: Any) -> None:
    agent = connect(page)
    first = agent.seal(b"first")
    second = agent.seal(b"second")
    results = js_open(page, [first, first, second])
    assert results[0] == {"ok": {"b64": b64(b"first")}}
    assert results[1]["e2e"] and results[1]["error"] == "E2EError"
    assert "replayed, reordered or forged frame (counter 0, expected 1)" in results[1]["message"]
    assert results[2]["e2e"] and "already failed" in results[2]["message"]
    assert page.evaluate("window.ch.failed.message") == results[1]["message"]


def test_js_refuses_reordered_and_skipped_messages(page: Any) -> None:
    agent = connect(page)
    one, two = agent.seal(b"one"), agent.seal(b"two")
    results = js_open(page, [two, one])
    assert "counter 1, expected 0" in results[0]["message"]
    assert "already failed" in results[1]["message"]


@pytest.mark.parametrize("position", [0, 3, 5, 10, -1])
def test_js_refuses_a_forged_message_and_stays_failed(page: Any, position: int) -> None:
    agent = connect(page)
    forged = bytearray(agent.seal(b"a screen update"))
    forged[position] ^= 0x04
    later = agent.seal(b"later")  # counter 1
    results = js_open(page, [bytes(forged), later])
    assert results[0]["e2e"], results
    assert "already failed" in results[1]["message"]


def test_js_refuses_truncated_plaintext_and_reflected_messages(page: Any) -> None:
    agent = connect(page)
    sealed = agent.seal(b"some data")
    results = js_open(page, [sealed[:20]])
    assert results[0]["e2e"] and "truncated" in results[0]["message"]

    agent = connect(page)
    results = js_open(page, [b"\x13plain chat"])
    assert "expected a sealed message (0x03), got 0x13" in results[0]["message"]

    agent = connect(page)
    reflected = js_seal(page, [b"to the agent"])[0]
    results = js_open(page, [reflected])  # the viewer's own message sent back
    assert results[0]["e2e"] and "does not authenticate" in results[0]["message"]
    assert agent.failed is None


def test_python_refuses_what_js_did_not_seal_in_order(page: Any) -> None:
    agent = connect(page)
    _one, two = js_seal(page, [b"one", b"two"])
    error = agent.open(two)
    assert isinstance(error, ProtocolError) and "counter 1, expected 0" in error.message


def test_js_refuses_an_agent_hello_signed_by_another_key(page: Any) -> None:
    hello = js_handshake(page)
    answer = e2e.agent_handshake(SESSION, OTHER, hello)
    assert not isinstance(answer, ProtocolError)
    result = js_finish(page, answer[0])
    assert result["e2e"] and "not signed by the device" in result["message"]


def test_js_refuses_a_hello_for_another_session_or_swapped_keys(page: Any) -> None:
    hello = js_handshake(page)
    answer = e2e.agent_handshake(SESSION + "x", DEVICE, hello)
    assert not isinstance(answer, ProtocolError)
    assert "not signed" in js_finish(page, answer[0])["message"]

    # A relay swapping the viewer's key: the agent signs a transcript the page never saw.
    js_handshake(page)
    mallory = e2e.ViewerHandshake(SESSION, DEVICE_KEY)
    answer = e2e.agent_handshake(SESSION, DEVICE, mallory.hello())
    assert not isinstance(answer, ProtocolError)
    assert "not signed" in js_finish(page, answer[0])["message"]


def test_js_refuses_a_small_order_agent_key_even_when_signed(page: Any) -> None:
    hello = js_handshake(page)
    point = b"\x00" * 32
    transcript = e2e.transcript_hash(SESSION, DEVICE_KEY, hello[1:], point)
    result = js_finish(page, b"\x02" + point + DEVICE.sign(transcript))
    assert result["e2e"] and "small-order" in result["message"], result


@pytest.mark.parametrize(
    ("hello", "words"),
    [
        (b"", "empty"),
        (b"\x03" + b"\x00" * 96, "got 0x03"),
        (b"\x02" + b"\x00" * 95, "96 bytes"),
        (b"\x02" + b"\x00" * 97, "98 bytes"),
    ],
)
def test_js_refuses_malformed_agent_hellos(page: Any, hello: bytes, words: str) -> None:
    js_handshake(page)
    result = js_finish(page, hello)
    assert result["e2e"] and words in result["message"], result


def test_js_refuses_bad_arguments(page: Any) -> None:
    results = page.evaluate(
        """async (key) => Promise.all([
            t.outcome(t.e2e.startViewerHandshake("", t.fromB64(key))),
            t.outcome(t.e2e.startViewerHandshake("s\u00e9ance", t.fromB64(key))),
            t.outcome(t.e2e.startViewerHandshake("abc", new Uint8Array(31))),
        ])""",
        b64(DEVICE_KEY),
    )
    assert all(r.get("e2e") for r in results), results


# --- remote-codec.js --------------------------------------------------------------------


def expected_js(message: remote.RemoteMessage) -> dict[str, Any]:
    """What decodeMessage must give for a message the agent sends."""
    match message:
        case remote.Frame():
            rects = []
            for r in message.rects:
                rect: dict[str, Any] = {
                    "x": r.x,
                    "y": r.y,
                    "w": r.w,
                    "h": r.h,
                    "encoding": int(r.encoding),
                    "data": {"b64": b64(r.data)},
                }
                if r.encoding is remote.Encoding.COPY:
                    rect["srcX"] = int.from_bytes(r.data[:2], "big")
                    rect["srcY"] = int.from_bytes(r.data[2:], "big")
                elif r.encoding is remote.Encoding.FILL:
                    rect["rgb"] = list(r.data)
                rects.append(rect)
            return {
                "type": "frame",
                "seq": message.seq,
                "monitor": message.monitor,
                "width": message.width,
                "height": message.height,
                "rects": rects,
            }
        case remote.Cursor():
            return {
                "type": "cursor",
                "x": message.x,
                "y": message.y,
                "hotX": message.hot_x,
                "hotY": message.hot_y,
                "png": {"b64": b64(message.png)},
            }
        case remote.Screens():
            return {
                "type": "screens",
                "monitors": [
                    {
                        "index": m.index,
                        "left": m.left,
                        "top": m.top,
                        "width": m.width,
                        "height": m.height,
                    }
                    for m in message.monitors
                ],
                "current": message.current,
            }
        case remote.Chat():
            return {"type": "chat", "text": message.text}
    raise AssertionError(f"not sent by the agent: {message!r}")


AGENT_MESSAGES: list[remote.RemoteMessage] = [
    remote.Frame(0, 0, 1, 1, ()),
    remote.Frame(
        2**32 - 1,
        2,
        1920,
        1080,
        (
            remote.Rect(0, 100, 1920, 900, remote.Encoding.COPY, remote.copy_data(0, 0)),
            remote.Rect(10, 20, 64, 64, remote.Encoding.FILL, remote.fill_data(255, 0, 128)),
            remote.Rect(64, 0, 128, 64, remote.Encoding.JPEG, b"\xff\xd8 jpeg \xff\xd9"),
            remote.Rect(1856, 1016, 64, 64, remote.Encoding.PNG, b"\x89PNG" + bytes(range(256))),
        ),
    ),
    remote.Cursor(0, 0),
    remote.Cursor(65535, 1234, 7, 9, b"\x89PNG cursor"),
    remote.Screens(
        (remote.Monitor(0, -1920, 0, 3840, 1080), remote.Monitor(1, -1920, 0, 1920, 1080)), 1
    ),
    remote.Chat(""),
    remote.Chat("Bonjour 👋 — je regarde « ça »\n\u2028"),
    remote.Chat("é" * 1000),
    remote.Chat("\ufeffstarts with a BOM"),
]


def js_decode(page: Any, messages: list[bytes]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = page.evaluate(
        """(messages) => messages.map((m) => {
            try {
                return { ok: t.plain(t.codec.decodeMessage(t.fromB64(m))) };
            } catch (err) {
                return { error: err?.name ?? "?", message: String(err?.message ?? err) };
            }
        })""",
        [b64(m) for m in messages],
    )
    return result


def test_js_decodes_python_encoded_messages(page: Any) -> None:
    results = js_decode(page, [remote.encode(m) for m in AGENT_MESSAGES])
    for message, result in zip(AGENT_MESSAGES, results, strict=True):
        assert result == {"ok": expected_js(message)}, message


HOSTILE = [
    b"",
    b"\x00",
    b"\x03sealed",
    b"\x10",
    b"\x10\x00\x00\x00\x01\x00\x00\x00\x00\x0a\x00\x00",  # zero width
    remote.encode(remote.Frame(1, 0, 10, 10, ())) + b"\x00",  # trailing bytes
    remote.encode(remote.Frame(1, 0, 10, 10, ()))[:-2] + b"\x00\x01",  # rect missing
    remote.encode(remote.Frame(1, 0, 20, 20, ()))[:10]
    + b"\x00\x0a"
    + b"\x00\x00\x00\x00\x00\x01\x00\x01\x04\x00\x00\x00\x03\x01\x02\x03" * 9,  # count too high
    remote.encode_frame(
        remote.Frame(1, 0, 10, 10, (remote.Rect(5, 0, 6, 1, remote.Encoding.FILL, b"abc"),))
    ),  # rect outside
    remote.encode_frame(
        remote.Frame(
            1, 0, 10, 10, (remote.Rect(0, 0, 2, 2, remote.Encoding.COPY, remote.copy_data(9, 0)),)
        )
    ),  # copy source outside
    remote.encode_frame(
        remote.Frame(1, 0, 10, 10, (remote.Rect(0, 0, 2, 2, remote.Encoding.FILL, b"ab"),))
    ),
    remote.encode_frame(
        remote.Frame(1, 0, 10, 10, (remote.Rect(0, 0, 2, 2, remote.Encoding.JPEG, b""),))
    ),
    remote.encode_frame(
        remote.Frame(1, 0, 10, 10, (remote.Rect(0, 0, 2, 2, 9, b"x"),))  # type: ignore[arg-type]
    ),
    b"\x11\x00\x01",
    b"\x11\x00\x01\x00\x02\x00\x03\x00\x04",
    b'\x12{"monitors": [], "current": 0}',
    b'\x12{"monitors": [{"index": 0, "left": 0, "top": 0, "width": 1.0, "height": 1}], "current": 0}',
    b'\x12{"monitors": [{"index": 0, "left": 0, "top": 0, "width": 1e1, "height": 1}], "current": 0}',
    b'\x12{"monitors": [{"index": 0, "left": 0, "top": 0, "width": 1, "height": 1}], "current": true}',
    b'\x12{"monitors": [{"index": 0, "left": 0, "top": 0, "width": 1, "height": 1}], "current": NaN}',
    b'\x12{"monitors": [{"index": 0, "left": 0, "top": 0, "width": 1, "height": 1}], "current": 17}',
    b"\x12[]",
    b"\x12 " + b" " * 4096,
    b"\x13" + b"x" * 2001,
    b"\x13\xff",
    b"\x13\xed\xa0\x80",
    b"\x13\xc0\xaf",  # overlong
]


def test_js_refuses_what_python_refuses(page: Any) -> None:
    results = js_decode(page, HOSTILE)
    for data, result in zip(HOSTILE, results, strict=True):
        assert isinstance(remote.decode(data), ProtocolError), data
        assert result.get("error") == "RemoteCodecError", (data, result)
        assert result["message"].startswith("session message: ")


def mutations(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    valid = [remote.encode(m) for m in AGENT_MESSAGES]
    for _ in range(count):
        data = bytearray(rng.choice(valid))
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(0, max(len(data), 1))
            op = rng.choice(["flip", "set", "insert", "delete", "truncate"])
            if op == "flip" and data:
                data[at] ^= 1 << rng.randrange(8)
            elif op == "set" and data:
                data[at] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])
            elif op == "insert":
                data[at:at] = rng.randbytes(rng.randrange(1, 4))
            elif op == "delete" and data:
                del data[at]
            elif op == "truncate":
                del data[at:]
        out.append(bytes(data))
    return out


def test_js_and_python_agree_on_mutated_messages(page: Any) -> None:
    """Differential: whatever Python accepts JS decodes the same, whatever Python refuses
    JS refuses (apart from viewer-to-agent types, which the viewer never accepts)."""
    samples = mutations(seed=4, count=400)
    results = js_decode(page, samples)
    accepted = 0
    for data, result in zip(samples, results, strict=True):
        expected = remote.decode(data)
        to_agent = isinstance(
            expected,
            remote.FrameAck
            | remote.SelectMonitor
            | remote.PointerMove
            | remote.PointerButton
            | remote.Wheel
            | remote.Key,
        )
        if isinstance(expected, ProtocolError) or to_agent:
            assert "error" in result, (data, expected, result)
        else:
            accepted += 1
            assert result == {"ok": expected_js(expected)}, data
    assert accepted > 20  # the comparison means something


VIEWER_EVENTS: list[tuple[str, remote.RemoteMessage]] = [
    ("t.codec.encodeAck(0)", remote.FrameAck(0)),
    ("t.codec.encodeAck(4294967295)", remote.FrameAck(2**32 - 1)),
    ("t.codec.encodeAck(258)", remote.FrameAck(258)),
    ("t.codec.encodeMonitor(0)", remote.SelectMonitor(0)),
    ("t.codec.encodeMonitor(16)", remote.SelectMonitor(16)),
    ("t.codec.encodeChat('')", remote.Chat("")),
    ("t.codec.encodeChat('Merci ! 🙏 « ok »')", remote.Chat("Merci ! 🙏 « ok »")),
    ("t.codec.encodeChat('é'.repeat(1000))", remote.Chat("é" * 1000)),
    ("t.codec.encodeInput({t: 'move', x: 0, y: 65536})", remote.PointerMove(0, 65536)),
    ("t.codec.encodeInput({y: 2, x: 1, t: 'move'})", remote.PointerMove(1, 2)),
    ("t.codec.encodeInput({t: 'button', b: 1, down: true})", remote.PointerButton(1, True)),
    ("t.codec.encodeInput({t: 'button', down: false, b: 3})", remote.PointerButton(3, False)),
    ("t.codec.encodeInput({t: 'wheel', dx: -100, dy: 3})", remote.Wheel(-100, 3)),
    ("t.codec.encodeInput({t: 'wheel', dx: -0, dy: 0})", remote.Wheel(0, 0)),
    ("t.codec.encodeInput({t: 'key', code: 'KeyA', down: true})", remote.Key("KeyA", True)),
    (
        "t.codec.encodeInput({down: false, code: 'ShiftLeft', t: 'key'})",
        remote.Key("ShiftLeft", False),
    ),
]


def test_python_decodes_js_encoded_messages(page: Any) -> None:
    encoded = page.evaluate(
        "(exprs) => exprs.map((e) => t.toB64((0, eval)(e)))", [e for e, _ in VIEWER_EVENTS]
    )
    for (expr, message), data in zip(VIEWER_EVENTS, encoded, strict=True):
        raw = unb64(data)
        assert raw == remote.encode(message), expr  # byte for byte
        assert remote.decode(raw) == message, expr


@pytest.mark.parametrize(
    "expr",
    [
        "t.codec.encodeAck(-1)",
        "t.codec.encodeAck(2 ** 32)",
        "t.codec.encodeAck(1.5)",
        "t.codec.encodeMonitor(17)",
        "t.codec.encodeChat('x'.repeat(2001))",
        "t.codec.encodeChat(5)",
        "t.codec.encodeInput({t: 'move', x: -1, y: 0})",
        "t.codec.encodeInput({t: 'move', x: '1', y: 0})",
        "t.codec.encodeInput({t: 'button', b: 4, down: true})",
        "t.codec.encodeInput({t: 'button', b: 1, down: 1})",
        "t.codec.encodeInput({t: 'wheel', dx: 101, dy: 0})",
        "t.codec.encodeInput({t: 'key', code: 'Key A', down: true})",
        "t.codec.encodeInput({t: 'key', code: '', down: true})",
        "t.codec.encodeInput({t: 'type', text: 'rm -rf /'})",
        "t.codec.encodeInput(null)",
    ],
)
def test_js_encoders_refuse_what_the_agent_would_refuse(page: Any, expr: str) -> None:
    result = page.evaluate(
        "(e) => { try { (0, eval)(e); return 'encoded'; } catch (err) { return err.name; } }", expr
    )
    assert result in {"TypeError", "RangeError"}, (expr, result)


def test_encoding_constants(page: Any) -> None:
    assert page.evaluate("({...t.codec.Encoding})") == {e.name: e.value for e in remote.Encoding}
    assert json.loads(page.evaluate("JSON.stringify(t.codec.Kind)")) == {
        k.name: k.value for k in remote.Kind
    }
