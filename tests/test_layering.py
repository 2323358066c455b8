"""The layout's promises: protocol/ is pure, the agent does not drag in the server."""

import subprocess
import sys
from importlib.metadata import requires

SERVER_PACKAGES = {"aiohttp", "sqlalchemy", "alembic", "aiosqlite", "asyncpg", "argon2", "jinja2"}


def _modules_after_import(*modules: str) -> set[str]:
    code = f"import sys; import {', '.join(modules)}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in out.stdout.split()}


def test_protocol_imports_no_io_framework():
    loaded = _modules_after_import(
        "protocol",
        "protocol.frames",
        "protocol.messages",
        "protocol.identity",
        "protocol.link",
        "protocol.e2e",
        "protocol.remote",
        "protocol.canonical",
    )
    forbidden = {"asyncio", "socket", "websockets", "aiohttp", "threading", "agent", "coordinator"}
    assert not (loaded & forbidden), loaded & forbidden


def test_agent_imports_no_server_package():
    loaded = _modules_after_import(
        "agent.cli", "agent.link", "agent.outbox", "agent.remote.session", "agent.remote.screen"
    )
    assert not (loaded & (SERVER_PACKAGES | {"coordinator"})), loaded & SERVER_PACKAGES


def test_agent_extra_does_not_require_server_dependencies():
    reqs = requires("backdesk") or []
    agent_reqs = {
        r.split(";")[0].split(">")[0].split("[")[0].strip().lower()
        for r in reqs
        if 'extra == "agent"' in r or "extra == 'agent'" in r or ";" not in r
    }
    assert "websockets" in agent_reqs
    assert not (agent_reqs & SERVER_PACKAGES), agent_reqs & SERVER_PACKAGES
