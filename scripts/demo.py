"""`make demo`: a coordinator on SQLite with a local enrolled agent, ready to look at.

State lives in ./demo-data, so a second run reuses the same accounts and agent.
Stop with Ctrl+C.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "demo-data"
COORDINATOR_DIR = DATA / "coordinator"
AGENT_DIR = DATA / "agent"
LOGIN_FILE = DATA / "login.json"
BIN = Path(sys.executable).parent
PORT = int(os.environ.get("BACKDESK_DEMO_PORT", "8443"))
URL = f"https://127.0.0.1:{PORT}"


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def cli(*args: str, input: str | None = None) -> str:
    result = subprocess.run(args, input=input, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"demo: {' '.join(args[:3])} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def coordinator_cli(*args: str, input: str | None = None) -> str:
    return cli(
        str(BIN / "backdesk-coordinator"), *args, "--data-dir", str(COORDINATOR_DIR), input=input
    )


def ensure_login() -> dict[str, str]:
    if LOGIN_FILE.exists():
        return dict(json.loads(LOGIN_FILE.read_text()))
    step("Creating the demo administrator")
    password = secrets.token_urlsafe(12)
    coordinator_cli(
        "user",
        "add",
        "admin",
        "--role",
        "admin",
        "--password-stdin",
        input=f"{password}\n{password}\n",
    )
    key = coordinator_cli("apikey", "create", "--user", "admin")
    login = {"user": "admin", "password": password, "api_key": key}
    LOGIN_FILE.write_text(json.dumps(login, indent=2))
    LOGIN_FILE.chmod(0o600)
    return login


def main() -> None:
    DATA.mkdir(mode=0o700, exist_ok=True)
    fingerprint = coordinator_cli("fingerprint")
    login = ensure_login()

    step(f"Starting the coordinator on {URL} (SQLite in {COORDINATOR_DIR})")
    log = (DATA / "coordinator.log").open("a")
    coordinator = subprocess.Popen(
        [
            str(BIN / "backdesk-coordinator"),
            "serve",
            "--data-dir",
            str(COORDINATOR_DIR),
            "--port",
            str(PORT),
        ],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert coordinator.stdout is not None
    first = coordinator.stdout.readline()
    if "listening" not in first:
        sys.exit(f"demo: the coordinator did not start; see {DATA / 'coordinator.log'}")

    agent_cli = [str(BIN / "backdesk-agent"), "--config-dir", str(AGENT_DIR)]
    if not (AGENT_DIR / "agent.json").exists():
        step("Enrolling a local agent")
        token = coordinator_cli("token", "create", "--expires", "10m")
        cli(
            *agent_cli,
            "enroll",
            "--coordinator",
            URL,
            "--token",
            token,
            "--fingerprint",
            fingerprint,
        )
    step("Starting the local agent")
    agent = subprocess.Popen(
        [*agent_cli, "run"], stdout=(DATA / "agent.log").open("a"), stderr=subprocess.STDOUT
    )
    time.sleep(1.5)

    print(
        f"""
Backdesk is running.

  Console       {URL}/
  Certificate   {fingerprint}  (self-signed: your browser will ask you to accept it)
  Login         {login["user"]} / {login["password"]}
  API key       {login["api_key"]}

Try the API:
  curl -sk -H "Authorization: Bearer {login["api_key"]}" {URL}/api/v1/devices

Logs are in {DATA}. Press Ctrl+C to stop.
""",
        flush=True,
    )
    try:
        coordinator.wait()  # until Ctrl+C (or the coordinator exits)
    except KeyboardInterrupt:
        pass
    step("Stopping")
    for process in (agent, coordinator):
        process.terminate()
    for process in (agent, coordinator):
        process.wait(timeout=15)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    main()
