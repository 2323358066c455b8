"""The agent's screen pipeline as a candidate for /work/shared/bench/run.sh (x11vnc baseline).

    SB_CANDIDATE="/work/main/.venv/bin/python -m bench.screen_candidate" bash run.sh

run.sh starts it once per workload with ``DISPLAY``, ``SB_WORKLOAD_NAME``,
``SB_WORKLOAD_CMD`` (started here when measuring begins, stopped with SIGTERM),
``SB_SECONDS`` and, for ``keyprobe``, ``SB_KEYPROBE_N``. It prints one JSON line:
``{"tool", "workload", "bytes_per_s", "updates_per_s", ...}`` and for keyprobe
``"key_to_update_ms": {"median", "p95", ...}``.

The seam: :func:`measure` drives a workload and counts what a *source* delivers; the source
is anything with the :class:`Source` methods. :class:`LocalSource` runs the whole agent
side in this process (``ScreenEncoder`` capture and encoding, ``Pacer`` flow control,
``protocol.e2e.Channel`` sealing, a websocket frame header per message) and acks each frame
at once, as a viewer on loopback would. A source that goes through the real coordinator,
agent and a Python viewer implements the same four methods, counting the bytes the viewer
receives and acking from the viewer.

Figures: ``bytes_per_s`` is wire bytes (sealed message + websocket header, no TLS, like
the RFB byte count it is compared with), ``updates_per_s`` counts frame and cursor messages
(x11vnc's pointer-only updates count too), ``frames_per_s`` frames only.

``--through-coordinator`` measures the real path instead (``bench.screen_session``): the
coordinator, the agent service and a Python viewer, sealed end to end; ``tool`` is then
``backdesk-e2e`` and ``cpu_pct.agent`` the agent process's CPU.

``SB_TRACE=file`` appends each frame's rects to that file (JSON lines).
``python -m bench.screen_candidate --full-change`` prints the frame rate when every
frame is a new full screen, pinned to one core.
"""

from __future__ import annotations

import itertools
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from agent.remote.pacing import Pacer
from agent.remote.screen import ScreenEncoder
from protocol.remote import Cursor, Frame, encode, encode_frame

try:
    from protocol.e2e import Channel
except ImportError:  # pragma: no cover - before protocol.e2e existed
    Channel = None  # type: ignore[assignment,misc]

SEAL_OVERHEAD = 1 + 4 + 16
CURSOR_INTERVAL = 1 / 30  # as agent.remote.streamer polls the pointer


@dataclass(frozen=True, slots=True)
class Update:
    at: float
    kind: str  # "frame" | "cursor"
    nbytes: int
    pixels: bool  # a frame with at least one rect


class Source(Protocol):
    def settle(self, seconds: float) -> None: ...

    def poll(self, boost: bool = False) -> list[Update]: ...

    def key(self, code: str) -> None: ...

    def close(self) -> None: ...


def ws_header(n: int) -> int:
    """Bytes of a server-to-client websocket frame header for an n-byte binary message."""
    return 2 if n < 126 else 4 if n < 65536 else 10


class LocalSource:
    """Capture, encode, pace and seal in this process; acks arrive as soon as sent."""

    def __init__(self, monitor: int = 1, interval: float = 1 / 120) -> None:
        self.encoder = ScreenEncoder(monitor)
        # the loop keeps its own cadence; the pacer only holds frames back on a slow link
        self.pacer = Pacer(min_interval=interval / 2)
        self.interval = interval
        self.channel = None
        if Channel is not None:
            self.channel = Channel(
                "agent", send_key=os.urandom(32), receive_key=os.urandom(32), code="000000"
            )
        self._next = 0.0
        self._cursor_at = 0.0
        trace = os.environ.get("SB_TRACE")
        self._trace = open(trace, "a") if trace else None
        self._injector = None

    def _wire(self, plaintext: bytes) -> int:
        sealed = (
            self.channel.seal(plaintext)
            if self.channel is not None
            else b"\x03" + bytes(len(plaintext) + SEAL_OVERHEAD - 1)
        )
        return len(sealed) + ws_header(len(sealed))

    def poll(self, boost: bool = False) -> list[Update]:
        now = time.monotonic()
        if not boost and now < self._next:
            time.sleep(min(self._next - now, 0.05))
            return []
        self._next = max(now, self._next) + self.interval
        out: list[Update] = []
        if now - self._cursor_at >= CURSOR_INTERVAL:
            self._cursor_at = now
            cursor = self.encoder.cursor()
            if isinstance(cursor, Cursor):
                out.append(Update(time.monotonic(), "cursor", self._wire(encode(cursor)), False))
        if not self.pacer.may_send(now):
            return out
        self.encoder.quality = self.pacer.quality
        frame = self.encoder.next_frame(budget=self.pacer.byte_budget())
        if isinstance(frame, Frame):
            if self._trace is not None:  # SB_TRACE: one line per frame, its rects
                rects = [(r.x, r.y, r.w, r.h, r.encoding.name, len(r.data)) for r in frame.rects]
                self._trace.write(json.dumps({"t": round(now, 4), "rects": rects}) + "\n")
            size = self._wire(encode_frame(frame))
            at = time.monotonic()
            self.pacer.sent(frame.seq, size, at)
            out.append(Update(at, "frame", size, bool(frame.rects)))
            self.pacer.acked(frame.seq, time.monotonic())  # loopback viewer
        return out

    def settle(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.poll()

    def key(self, code: str) -> None:
        from agent.remote.inject import Injector
        from protocol.remote import Key

        if self._injector is None:
            self._injector = Injector()
        self._injector.apply(Key(code, True))
        self._injector.apply(Key(code, False))

    def close(self) -> None:
        self.encoder.close()
        if self._trace is not None:
            self._trace.close()
        if self._injector is not None:
            self._injector.close()


def start_workload(cmd: str) -> tuple[subprocess.Popen[str], threading.Event]:
    p = subprocess.Popen(
        shlex.split(cmd), stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    ready = threading.Event()

    def reader() -> None:
        assert p.stdout is not None
        for line in p.stdout:
            if "READY" in line:
                ready.set()

    threading.Thread(target=reader, daemon=True).start()
    return p, ready


def stop_workload(p: subprocess.Popen[str]) -> None:
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)


def pct(values: list[float], q: float) -> float | None:
    v = sorted(values)
    return v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))] if v else None


def measure(
    workload_name: str,
    workload_cmd: str | None,
    seconds: float,
    source: Source,
    keyprobe: int = 0,
) -> dict[str, object]:
    """Run one workload (or ``keyprobe`` key presses) and count what ``source`` delivers."""
    out: dict[str, object] = {"tool": "backdesk", "workload": workload_name}
    source.settle(1.0)  # the initial full frame and whatever follows it
    wl = None
    if workload_cmd:
        wl, ready = start_workload(workload_cmd)
        deadline = time.monotonic() + 30
        while not ready.is_set() and time.monotonic() < deadline:
            source.poll()
        if not ready.is_set():
            stop_workload(wl)
            raise SystemExit(f"workload did not become READY: {workload_cmd}")
    if keyprobe:
        subprocess.run(
            ["xdotool", "search", "--name", "^sb-typing$", "windowfocus", "--sync"],
            timeout=10,
            check=False,
        )
        source.settle(0.5)
    cpu0 = time.process_time()
    agent_cpu = getattr(source, "agent_cpu_times", None)  # a source with its own process
    agent0 = agent_cpu() if agent_cpu else 0.0
    t_start = time.monotonic()
    t_end = t_start + seconds
    updates: list[Update] = []
    key_lat: list[float] = []
    try:
        if keyprobe:
            gap = seconds / keyprobe
            for i in range(keyprobe):
                t_next = t_start + i * gap + ((i * 0.6180339887) % 1.0) * gap * 0.5
                while time.monotonic() < t_next:
                    updates += source.poll()
                tk = time.monotonic()
                source.key("Enter" if i % 20 == 19 else "KeyX")
                while time.monotonic() < t_end:
                    got = source.poll(boost=time.monotonic() - tk < 0.25)
                    updates += got
                    hit = [u for u in got if u.kind == "frame" and u.pixels]
                    if hit:
                        key_lat.append((hit[0].at - tk) * 1000)
                        break
        else:
            while time.monotonic() < t_end:
                updates += source.poll()
    finally:
        elapsed = time.monotonic() - t_start
        cpu = (time.process_time() - cpu0) / elapsed * 100
        if wl is not None:
            stop_workload(wl)
    nbytes = sum(u.nbytes for u in updates)
    frames = [u for u in updates if u.kind == "frame"]
    sizes = [u.nbytes for u in frames]
    times = [u.at for u in frames]
    intervals = [(b - a) * 1000 for a, b in itertools.pairwise(times)]
    out.update(
        {
            "seconds": round(elapsed, 2),
            "bytes": nbytes,
            "bytes_per_s": round(nbytes / elapsed),
            "updates": len(updates),
            "updates_per_s": round(len(updates) / elapsed, 2),
            "frames_per_s": round(len(frames) / elapsed, 2),
            "cursor_per_s": round((len(updates) - len(frames)) / elapsed, 2),
            "update_bytes_median": statistics.median(sizes) if sizes else 0,
            "update_bytes_max": max(sizes) if sizes else 0,
            "interval_ms_median": round(statistics.median(intervals), 1) if intervals else None,
            "cpu_pct": {"candidate": round(cpu, 1)},
        }
    )
    if agent_cpu:
        out["cpu_pct"] = {  # type: ignore[assignment]
            "viewer": round(cpu, 1),
            "agent": round((agent_cpu() - agent0) / elapsed * 100, 1),
        }
    if isinstance(source, LocalSource):
        out["encoder"] = dict(source.encoder.stats)
        out["quality"] = source.pacer.quality
    if keyprobe:
        out["key_to_update_ms"] = {
            "sent": keyprobe,
            "n": len(key_lat),
            "median": round(statistics.median(key_lat), 1) if key_lat else None,
            "p95": round(pct(key_lat, 0.95), 1) if key_lat else None,  # type: ignore[arg-type]
            "max": round(max(key_lat), 1) if key_lat else None,
        }
    return out


def full_change_rate(seconds: float = 5.0, scenes: str = "/work/shared/bench") -> dict[str, object]:
    """Frames/s when every frame is a new full screen (the bench's scene variants in turn),
    on one core: a real grab of the display plus the encoding of the changed image."""
    import numpy as np

    sys.path.insert(0, scenes)
    import scene  # type: ignore[import-not-found]

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    enc = ScreenEncoder(1)
    w, h = enc.geometry()["width"], enc.geometry()["height"]
    images = []
    for variant in range(3):
        rgb = np.asarray(scene.make_scene(variant, (w, h)))
        bgra = np.zeros((h, w, 4), np.uint8)
        bgra[..., :3] = rgb[..., ::-1]
        images.append(bgra)
    enc.encode(images[0])
    cpu0, t0, n, nbytes = time.process_time(), time.monotonic(), 0, 0
    while time.monotonic() - t0 < seconds:
        enc.grab()
        frame = enc.encode(images[(n + 1) % len(images)])
        nbytes += len(encode_frame(frame)) if frame else 0
        n += 1
    elapsed = time.monotonic() - t0
    return {
        "tool": "backdesk",
        "workload": "full_change",
        "desktop": f"{w}x{h}",
        "frames_per_s": round(n / elapsed, 1),
        "ms_per_frame": round(elapsed / n * 1000, 1),
        "cpu_pct": round((time.process_time() - cpu0) / elapsed * 100, 1),
        # what one core would do if it were ours alone (other processes share it here)
        "cpu_ms_per_frame": round((time.process_time() - cpu0) / n * 1000, 1),
        "frames_per_cpu_s": round(n / (time.process_time() - cpu0), 1),
        "frame_bytes_mean": round(nbytes / n),
    }


def main() -> int:
    if sys.argv[1:] == ["--full-change"]:
        print(json.dumps(full_change_rate()), flush=True)
        return 0
    name = os.environ.get("SB_WORKLOAD_NAME", "idle")
    cmd = os.environ.get("SB_WORKLOAD_CMD") or None
    seconds = float(os.environ.get("SB_SECONDS", "10"))
    keyprobe = int(os.environ.get("SB_KEYPROBE_N", "0")) if name == "keyprobe" else 0
    source: Source
    if "--through-coordinator" in sys.argv[1:]:
        from bench.screen_session import SessionSource

        source = SessionSource()
    else:
        source = LocalSource()
    try:
        result = measure(name, None if keyprobe else cmd, seconds, source, keyprobe)
        if not isinstance(source, LocalSource):
            result["tool"] = "backdesk-e2e"
    finally:
        source.close()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
