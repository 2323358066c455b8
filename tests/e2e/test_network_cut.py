"""A network that silently drops everything (no FIN, no RST) must not strand the agent.

A loopback TCP relay sits between agent and coordinator; cutting it black-holes every
byte of the live connection, as a dead Wi-Fi or a NAT timeout would. The coordinator
must notice the missed heartbeats and show the device offline, and the agent must notice
the missing acknowledgements and come back on its own once the network returns.
"""

import json
import socket
import threading

from tests.conftest import wait_for


class Relay:
    """Forwards 127.0.0.1:port to a target; ``cut()`` black-holes, ``restore()`` heals."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.blackhole = threading.Event()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.blackhole.is_set():
                with self.lock:
                    self.sockets.append(client)  # hold it open, never answer
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                return
            if not data:
                return
            if self.blackhole.is_set():
                continue  # dropped on the floor, as a dead network would
            try:
                dst.sendall(data)
            except OSError:
                return

    def cut(self) -> None:
        self.blackhole.set()

    def restore(self) -> None:
        self.blackhole.clear()
        with self.lock:
            dead, self.sockets = self.sockets, []
        for s in dead:
            s.close()

    def close(self) -> None:
        self.listener.close()
        self.restore()


def _online(client, device_id):
    devices = client.get("/api/v1/devices")["devices"]
    return any(d["id"] == device_id and d["online"] for d in devices)


def test_agent_recovers_from_a_silent_network_cut(coordinator, make_agent, api):
    relay = Relay(coordinator.port)
    try:
        agent = make_agent(coordinator)
        agent.cli(
            "enroll",
            "--coordinator",
            f"https://127.0.0.1:{relay.port}",
            "--token",
            coordinator.token(),
            "--fingerprint",
            coordinator.fingerprint,
            "--json",
        )
        device_id = agent.device_id
        agent.start()
        client = api(coordinator)
        wait_for(lambda: _online(client, device_id), 20, what="agent online through the relay")

        relay.cut()
        # Coordinator: 3 missed heartbeats of 1 s and the device is offline.
        wait_for(lambda: not _online(client, device_id), 20, what="device offline after the cut")

        relay.restore()
        wait_for(lambda: _online(client, device_id), 40, what="agent back online by itself")
        status = json.loads(agent.cli("status", "--json").stdout)
        assert status["device_id"] == device_id
        assert agent.process.poll() is None, "the agent process must keep running"
    finally:
        relay.close()
