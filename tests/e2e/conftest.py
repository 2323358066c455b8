"""End-to-end helpers on top of tests/conftest.py: shared coordinators and what they store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import Agent, ApiClient, Coordinator, wait_for


def identity_key(agent: Agent) -> Ed25519PrivateKey:
    """The agent's private key, read from its config dir."""
    key = serialization.load_pem_private_key(
        (agent.config_dir / "identity.key").read_bytes(), password=None
    )
    assert isinstance(key, Ed25519PrivateKey)
    return key


def devices_by_id(client: ApiClient) -> dict[str, dict[str, Any]]:
    return {d["id"]: d for d in client.get("/api/v1/devices")["devices"]}


def is_online(client: ApiClient, device_id: str) -> bool:
    device = devices_by_id(client).get(device_id)
    return bool(device and device["online"])


def wait_online(client: ApiClient, device_id: str, timeout: float = 20) -> None:
    wait_for(lambda: is_online(client, device_id), timeout, what=f"{device_id} to be online")


def wait_offline(client: ApiClient, device_id: str, timeout: float = 10) -> None:
    wait_for(lambda: not is_online(client, device_id), timeout, what=f"{device_id} to be offline")


def stored(coordinator: Coordinator) -> dict[str, Any]:
    """What must survive an attack unchanged: devices, enrollment tokens, delivered messages."""
    return {
        "devices": sorted(
            coordinator.sql("select id, hostname, public_key, enrolled_at from devices")
        ),
        "tokens": sorted(
            coordinator.sql(
                "select token_hash, created_at, expires_at, used_at, device_id"
                " from enrollment_tokens"
            )
        ),
        "messages": sorted(
            coordinator.sql("select device_id, idempotency_key, kind from agent_messages")
        ),
    }


class Desk:
    """A coordinator shared by a module, with an admin client and enrolled agents."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.coordinator = Coordinator(root / "coordinator")
        self.agents: list[Agent] = []
        self.client: ApiClient

    def start(self) -> None:
        self.coordinator.start()
        self.client = ApiClient(self.coordinator, self.coordinator.api_key("admin"))

    def agent(self, name: str) -> Agent:
        agent = Agent(self.root / f"{name}-{len(self.agents)}", self.coordinator)
        self.agents.append(agent)
        return agent

    def close(self) -> None:
        for agent in self.agents:
            agent.stop()
        self.coordinator.stop()


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    """One coordinator (SQLite) for a whole module of tests that leave it as they found it."""
    desk = Desk(tmp_path_factory.mktemp("desk"))
    desk.start()
    try:
        yield desk
    finally:
        desk.close()
