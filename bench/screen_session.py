"""A screen source for ``bench.screen_candidate`` that goes the whole way: the real
coordinator, the real agent service (``backdesk-agent run``) on this ``DISPLAY``, and a
Python viewer (``bench/viewer.py``) with end-to-end encryption on.

Everything is set up in a temporary directory: a coordinator on a loopback port, an L2
account with an API key, the agent enrolled with a ``policy.toml`` that allows unattended
control (so no dialog waits for a click; the banner shows, as it would), a ticket for its
device and a control session. The figures count what the viewer receives from the relay
(websocket payloads plus frame headers, no TLS), and the agent's CPU is read from its
process.

    SB_CANDIDATE="/work/main/.venv/bin/python -m bench.screen_candidate --through-coordinator"
"""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from bench.screen_candidate import Update, ws_header
from bench.viewer import Viewer
from protocol import remote

BIN = Path(sys.executable).parent
PASSWORD = "bench password 123"


class _Api:
    def __init__(self, base: str, key: str) -> None:
        self.base, self.key = base, key
        self.context = ssl.create_default_context()
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE  # our own self-signed coordinator

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, context=self.context, timeout=30) as response:
            return json.loads(response.read())


class SessionSource:
    """``bench.screen_candidate.Source`` through the coordinator."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="backdesk-bench-session-"))
        self.processes: list[subprocess.Popen[str]] = []
        self._lock = threading.Lock()
        self._pending: list[Any] = []
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _cli(self, *args: str, input: str | None = None) -> str:
        result = subprocess.run(
            [str(BIN / args[0]), *args[1:]],
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout.strip()

    def _start(self) -> None:
        data = ["--data-dir", str(self.dir / "coordinator")]
        coordinator = subprocess.Popen(
            [str(BIN / "backdesk-coordinator"), "serve", *data, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=(self.dir / "coordinator.log").open("w"),
            text=True,
        )
        self.processes.append(coordinator)
        assert coordinator.stdout is not None
        first = coordinator.stdout.readline()
        fingerprint = coordinator.stdout.readline().split()[-1]
        match = re.search(r"https://127\.0\.0\.1:(\d+)", first)
        if not match:
            raise RuntimeError(f"coordinator did not start: {first}")
        url = f"https://127.0.0.1:{match.group(1)}"
        self._cli(
            "backdesk-coordinator",
            "user",
            "add",
            "bench",
            "--role",
            "l2",
            "--password-stdin",
            *data,
            input=PASSWORD + "\n",
        )
        key = self._cli("backdesk-coordinator", "apikey", "create", "--user", "bench", *data)
        token = self._cli("backdesk-coordinator", "token", "create", *data)
        agent_dir = self.dir / "agent"
        agent_args = [str(BIN / "backdesk-agent"), "--config-dir", str(agent_dir)]
        subprocess.run(
            [*agent_args, "enroll", "--coordinator", url, "--token", token,
             "--fingerprint", fingerprint, "--json"],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        policy = agent_dir / "policy.toml"
        policy.write_text('unattended = "control"\n')
        policy.chmod(0o600)
        agent_dir.chmod(0o700)
        agent = subprocess.Popen(
            [*agent_args, "run"],
            stdout=(self.dir / "agent.log").open("w"),
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.processes.append(agent)
        self.agent = psutil.Process(agent.pid)
        device_id = json.loads((agent_dir / "agent.json").read_text())["device_id"]
        api = _Api(url, key)
        deadline = time.monotonic() + 30
        while not api.call("GET", f"/api/v1/devices/{device_id}")["online"]:
            if time.monotonic() > deadline:
                raise RuntimeError("the agent did not come online")
            time.sleep(0.2)
        ticket = api.call(
            "POST",
            "/api/v1/tickets",
            {"subject": "bench", "description": "bench", "requester": "bench",
             "device_id": device_id},
        )["reference"]  # fmt: skip
        api.call("POST", f"/api/v1/tickets/{ticket}/actions", {"action": "take"})
        session = api.call("POST", f"/api/v1/tickets/{ticket}/sessions", {"scope": "control"})
        self.viewer = Viewer(url, session["id"], key, paint=False, on_message=self._received)
        self.viewer.start()
        self.viewer.wait(lambda: self.viewer.state == "live", 60, "the session to go live")

    def _received(self, message: remote.RemoteMessage, nbytes: int, at: float) -> None:
        if isinstance(message, remote.Frame):
            update = Update(at, "frame", nbytes + ws_header(nbytes), bool(message.rects))
        elif isinstance(message, remote.Cursor):
            update = Update(at, "cursor", nbytes + ws_header(nbytes), False)
        else:
            return
        with self._lock:
            self._pending.append(update)

    # --- the Source protocol ---------------------------------------------------------------

    def poll(self, boost: bool = False) -> list[Any]:
        time.sleep(0.001 if boost else 0.005)
        with self._lock:
            out, self._pending = self._pending, []
        return out

    def settle(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.poll()

    def key(self, code: str) -> None:
        self.viewer.send(remote.Key(code, True))
        self.viewer.send(remote.Key(code, False))

    def agent_cpu_times(self) -> float:
        times = self.agent.cpu_times()
        return float(times.user + times.system)

    def close(self) -> None:
        viewer = getattr(self, "viewer", None)
        if viewer is not None:
            viewer.close()
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
        if os.environ.get("SB_KEEP_LOGS"):
            print(f"logs in {self.dir}", file=sys.stderr)
