"""`make demo`: a coordinator on SQLite with a local enrolled agent, ready to look at.

State lives in ./demo-data, so a second run reuses the same accounts and agent. The
first run also opens an example ticket from the agent, as a user clicking Get help
would. Stop with Ctrl+C.
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

import pyotp

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
    command = [str(BIN / "backdesk-coordinator"), *args, "--data-dir", str(COORDINATOR_DIR)]
    return cli(*command, input=input)


def ensure_login() -> dict[str, str]:
    if LOGIN_FILE.exists():
        return dict(json.loads(LOGIN_FILE.read_text()))
    step("Creating the demo administrator")
    password = secrets.token_urlsafe(12)
    answer = coordinator_cli(
        "user",
        "add",
        "admin",
        "--role",
        "admin",
        "--password-stdin",
        "--json",
        input=f"{password}\n{password}\n",
    )
    key = coordinator_cli("apikey", "create", "--user", "admin")
    login = {
        "user": "admin",
        "password": password,
        "api_key": key,
        "totp_uri": json.loads(answer)["totp_uri"],
    }
    LOGIN_FILE.write_text(json.dumps(login, indent=2))
    LOGIN_FILE.chmod(0o600)
    return login


def main() -> None:
    DATA.mkdir(mode=0o700, exist_ok=True)
    fingerprint = coordinator_cli("fingerprint")
    login = ensure_login()

    step(f"Starting the coordinator on {URL} (SQLite in {COORDINATOR_DIR})")
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
        stderr=(DATA / "coordinator.log").open("a"),
        text=True,
    )
    assert coordinator.stdout is not None
    if "listening" not in coordinator.stdout.readline():
        sys.exit(f"demo: the coordinator did not start; see {DATA / 'coordinator.log'}")

    agent_cli = [str(BIN / "backdesk-agent"), "--config-dir", str(AGENT_DIR)]
    first_run = not (AGENT_DIR / "agent.json").exists()
    if first_run:
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
    if first_run:
        step("Asking for help from the agent, as a user would")
        answer = cli(
            *agent_cli,
            "get-help",
            "--no-gui",
            "--json",
            "--message",
            "My laptop is very slow since this morning\nOutlook takes minutes to open.",
        )
        step(f"Ticket {json.loads(answer)['reference']} opened")
    time.sleep(1)

    totp = pyotp.parse_uri(login["totp_uri"])
    print(
        f"""
Backdesk is running.

  Console       {URL}/
  Certificate   {fingerprint}  (self-signed: your browser will ask you to accept it)
  Sign in       {login["user"]} / {login["password"]}
  TOTP          add {login["totp_uri"]}
                to an authenticator app; the code right now is {totp.now()}
  API key       {login["api_key"]}

Try the API:
  curl -sk -H "Authorization: Bearer {login["api_key"]}" {URL}/api/v1/tickets

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
