"""Which agents are connected right now.

In-process for one node. Several nodes will share this through Redis behind the same
interface (the bus issue); callers only use these methods.
"""

from __future__ import annotations

from collections import Counter


class Presence:
    def __init__(self) -> None:
        # A device may briefly hold two connections while it reconnects.
        self._connections: Counter[str] = Counter()

    def connected(self, device_id: str) -> None:
        self._connections[device_id] += 1

    def disconnected(self, device_id: str) -> None:
        self._connections[device_id] -= 1
        if self._connections[device_id] <= 0:
            del self._connections[device_id]

    def is_online(self, device_id: str) -> bool:
        return self._connections[device_id] > 0

    def online(self) -> set[str]:
        return set(self._connections)
