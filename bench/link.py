"""Figures for the agent link, through the real coordinator and agent processes.

Prints one JSON line per figure:
- ``auth_handshake_ms``: TLS connect + hello/welcome/authenticate round trips (p50, p95);
- ``outbox_delivery``: messages per second from an agent's durable outbox to committed
  rows in the coordinator's database, with acknowledgements;
- ``agent_idle_rss_mb``: resident memory of an idle ``backdesk-agent run``.

    .venv/bin/python -m bench.link [--connections 50] [--messages 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from websockets.asyncio.client import connect

from agent.config import AgentDir
from agent.outbox import Outbox
from protocol import identity
from protocol.link import AgentLink, LinkReady

BIN = Path(sys.executable).parent


def emit(**figure: object) -> None:
    print(json.dumps(figure), flush=True)


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()


async def handshakes(url: str, agent_dir: AgentDir, count: int) -> list[float]:
    enrollment = agent_dir.load_enrollment()
    fingerprint = identity.parse_fingerprint(enrollment.fingerprint)
    assert fingerprint is not None
    key = agent_dir.load_key()
    context = ssl.create_default_context(cadata=agent_dir.certificate_pem())
    context.check_hostname = False
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    times = []
    for _ in range(count):
        start = time.perf_counter()
        async with connect(url, ssl=context, compression=None) as ws:
            link = AgentLink(server_fingerprint=fingerprint, software="bench")
            link.start_authentication(enrollment.device_id, key)
            ready = False
            while not ready:
                for data in link.data_to_send():
                    await ws.send(data)
                link.receive_data(await ws.recv())  # type: ignore[arg-type]
                ready = any(isinstance(e, LinkReady) for e in link.events_received())
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "coordinator"
        coordinator = subprocess.Popen(
            [
                str(BIN / "backdesk-coordinator"),
                "serve",
                "--data-dir",
                str(data_dir),
                "--port",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        agent = None
        try:
            assert coordinator.stdout is not None
            port = re.search(r":(\d+)$", coordinator.stdout.readline().strip())
            assert port, "coordinator did not start"
            fingerprint = coordinator.stdout.readline().split()[-1]
            url = f"https://127.0.0.1:{port.group(1)}"
            admin = [str(BIN / "backdesk-coordinator")]
            token = run(*admin, "token", "create", "--data-dir", str(data_dir))
            agent_dir = AgentDir(Path(tmp) / "agent")
            agent_cli = [str(BIN / "backdesk-agent"), "--config-dir", str(agent_dir.root)]
            start = time.perf_counter()
            run(
                *agent_cli,
                "enroll",
                "--coordinator",
                url,
                "--token",
                token,
                "--fingerprint",
                fingerprint,
            )
            emit(figure="enroll_cli_s", value=round(time.perf_counter() - start, 3))

            times = asyncio.run(
                handshakes(url.replace("https", "wss") + "/ws/agent", agent_dir, args.connections)
            )
            emit(
                figure="auth_handshake_ms",
                n=len(times),
                p50=round(statistics.median(times), 2),
                p95=round(statistics.quantiles(times, n=20)[-1], 2),
            )

            outbox = Outbox(agent_dir.outbox_path)
            for i in range(args.messages):
                outbox.put("event", {"n": i, "text": "x" * 200})
            agent = subprocess.Popen(
                [*agent_cli, "run"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            start = time.perf_counter()
            while len(outbox) > 0:
                time.sleep(0.05)
            elapsed = time.perf_counter() - start
            emit(
                figure="outbox_delivery",
                messages=args.messages,
                seconds=round(elapsed, 2),
                per_s=round(args.messages / elapsed, 1),
            )
            time.sleep(2)
            rss = psutil.Process(agent.pid).memory_info().rss / 2**20
            emit(figure="agent_idle_rss_mb", value=round(rss, 1))
            outbox.close()
        finally:
            for process in (agent, coordinator):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=15)


if __name__ == "__main__":
    main()
