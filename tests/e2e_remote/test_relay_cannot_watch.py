"""DESIGN.md invariant 2: the coordinator relays, it cannot watch.

A real session goes through the real relay, which keeps every message it forwards
(``serve --relay-tap``). The screen's pixels, as the viewer decrypted them, must appear
nowhere in what the coordinator handled or stored: not in the relayed messages, not in
its database, not in its log.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from protocol import remote

from .conftest import Desk
from .test_remote_sessions import start_live


def tapped(path: Path) -> list[bytes]:
    data = path.read_bytes()
    messages, offset = [], 0
    while offset < len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        messages.append(data[offset + 4 : offset + 4 + size])
        offset += 4 + size
    return messages


def test_no_screen_byte_reaches_the_coordinator(desk: Desk) -> None:
    payloads: list[bytes] = []

    def keep(message: remote.RemoteMessage, _size: int, _at: float) -> None:
        if isinstance(message, remote.Frame):
            payloads.extend(r.data for r in message.rects if len(r.data) >= 16)

    tap = desk.coordinator.data_dir.parent / "relay.tap"
    session, viewer = start_live(desk, "view", "allow_view", on_message=keep, keep_raw=True)
    try:

        def red_block() -> list[np.ndarray]:
            red = viewer.canvas.rgb[50:150, 50:150]  # inside the pattern's red block
            near = np.abs(red.astype(int) - (0xE0, 0x20, 0x20)).max(axis=2) <= 24
            return [red.copy()] if red.size and near.all() else []

        (red,) = viewer.wait(red_block, 20, "the pattern's red block")
        assert payloads
        viewer.end()
        desk.wait_ended(session["id"])
    finally:
        viewer.close()

    relayed = tapped(tap)
    assert viewer.raw, "the viewer received nothing"
    assert set(viewer.raw) <= set(relayed), "the tap must hold what the relay forwarded"
    assert {m[0] for m in relayed} <= {0x01, 0x02, 0x03}, "only hellos and sealed messages"

    handled = b"".join(relayed)
    data_dir = desk.coordinator.data_dir
    stored = b"".join(p.read_bytes() for p in data_dir.glob("backdesk.db*"))
    logged = desk.coordinator.log_path.read_bytes()
    plain_rows = [red[0].tobytes(), red[0][:, ::-1].tobytes()]  # RGB and BGR
    secrets = payloads + plain_rows
    assert secrets
    for secret in secrets:
        assert secret not in handled, "screen bytes in what the relay forwarded"
        assert secret not in stored, "screen bytes in the coordinator's database"
        assert secret not in logged, "screen bytes in the coordinator's log"
