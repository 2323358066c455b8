"""Run-time settings of one coordinator process, and the typed keys of the aiohttp app."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from .presence import Presence


@dataclass(frozen=True)
class Settings:
    fingerprint: bytes  # SHA-256 of our TLS certificate: what agents pin and sign over
    heartbeat_interval: float = 15.0
    handshake_timeout: float = 10.0
    # An agent that misses this many heartbeats in a row is considered gone.
    missed_heartbeats: int = 3
    # How often the webhook dispatcher looks for deliveries that are due.
    webhook_poll_interval: float = 1.0
    sla_check_interval: float = 30.0
    # Where the relay appends what it forwards (``serve --relay-tap``); None: nowhere.
    relay_tap: Path | None = None


SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
PRESENCE = web.AppKey("presence", Presence)
SOCKETS = web.AppKey("sockets", weakref.WeakSet[web.WebSocketResponse])
