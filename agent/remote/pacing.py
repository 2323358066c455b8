"""Flow control of screen frames: a bounded number in flight, paced to what the link carries.

:class:`Pacer` is pure (the caller passes the time): the sender asks :meth:`Pacer.delay`
how long to wait before the next frame, reports :meth:`Pacer.sent` and, when the viewer's
ack arrives, :meth:`Pacer.acked`. From the acks it measures the round-trip time and the
throughput (bytes of a frame over the time its delivery took), and from those it picks:

- at most ``max_in_flight`` frames unacknowledged, and not more bytes in flight than the
  link carries in ``target_delay`` seconds: the queue never grows;
- the frame interval: never shorter than ``min_interval``, and long enough for the last
  frame to drain at the measured throughput;
- the JPEG ``quality``: lowered by ``step`` when acks come late (the RTT grows well above
  the smallest seen: a queue), held while frames wait for the in-flight bound (a long
  but uncongested path), raised by ``step // 2`` after a run of quick acks, between
  ``min_quality`` and ``max_quality``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(slots=True)
class _InFlight:
    sent_at: float
    size: int


class Pacer:
    def __init__(
        self,
        *,
        max_in_flight: int = 3,
        min_interval: float = 1 / 60,
        max_interval: float = 0.5,
        quality: int = 70,
        min_quality: int = 20,
        max_quality: int = 70,
        step: int = 10,
        target_delay: float = 0.15,
        late_factor: float = 2.0,
        late_slack: float = 0.05,
        quick_acks: int = 8,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.max_in_flight = max_in_flight
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.min_quality, self.max_quality = min_quality, max_quality
        self.quality = min(max(quality, min_quality), max_quality)
        self.step = step
        self.target_delay = target_delay
        self.late_factor, self.late_slack = late_factor, late_slack
        self.quick_acks = quick_acks
        self.interval = min_interval
        self.rtt: float | None = None  # smoothed
        self.min_rtt: float | None = None
        self.throughput: float | None = None  # bytes/s, smoothed
        self._in_flight: OrderedDict[int, _InFlight] = OrderedDict()
        self._last_sent: float | None = None
        self._last_size = 0
        self._last_ack: float | None = None
        self._quick = 0
        self._blocked = False  # a frame waited for the in-flight bound since the last ack

    # -- what the sender asks --

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def bytes_in_flight(self) -> int:
        return sum(f.size for f in self._in_flight.values())

    def byte_budget(self) -> int | None:
        """Most bytes the next frame should carry, once the link has been measured."""
        if self.throughput is None:
            return None
        return max(16 * 1024, int(self.throughput * self.target_delay) - self.bytes_in_flight)

    def delay(self, now: float) -> float | None:
        """Seconds to wait before the next frame may go; None while the window is full."""
        if len(self._in_flight) >= self.max_in_flight:
            self._blocked = True
            return None
        if (
            self.throughput is not None
            and self.bytes_in_flight > self.throughput * self.target_delay
        ):
            self._blocked = True
            return None
        if self._last_sent is None:
            return 0.0
        return max(0.0, self._last_sent + self.interval - now)

    def may_send(self, now: float) -> bool:
        d = self.delay(now)
        return d is not None and d <= 0.0

    # -- what happened --

    def sent(self, seq: int, size: int, now: float) -> None:
        self._in_flight[seq] = _InFlight(now, size)
        self._last_sent = now
        self._last_size = size

    def acked(self, seq: int, now: float) -> None:
        """The viewer drew frame ``seq`` (acks of earlier frames are implied)."""
        frame = self._in_flight.get(seq)
        if frame is None:
            return  # unknown or already acked
        while self._in_flight:
            s, _ = self._in_flight.popitem(last=False)
            if s == seq:
                break
        rtt = max(1e-4, now - frame.sent_at)
        self.min_rtt = rtt if self.min_rtt is None else min(self.min_rtt, rtt)
        self.rtt = rtt if self.rtt is None else 0.8 * self.rtt + 0.2 * rtt
        # delivery time: from when the link was free for this frame to its ack
        start = frame.sent_at if self._last_ack is None else max(frame.sent_at, self._last_ack)
        took = max(1e-3, now - start - self.min_rtt / 2)
        if frame.size >= 4096:  # small frames say more about latency than bandwidth
            rate = frame.size / took
            self.throughput = (
                rate if self.throughput is None else 0.7 * self.throughput + 0.3 * rate
            )
        self._last_ack = now
        late = rtt > self.min_rtt * self.late_factor + self.late_slack
        if late:  # a queue is building up: fewer, coarser frames
            self._quick = 0
            self.quality = max(self.min_quality, self.quality - self.step)
            self.interval = min(self.max_interval, self.interval * 1.5 + 0.005)
        elif self._blocked:  # the window was full (a long RTT): not the link's fault, hold
            self._quick = 0
        else:
            self._quick += 1
            self.interval = max(self.min_interval, self.interval * 0.8)
            if self._quick >= self.quick_acks:
                self._quick = 0
                self.quality = min(self.max_quality, self.quality + max(1, self.step // 2))
        if self.throughput is not None:
            drain = self._last_size / self.throughput
            self.interval = min(self.max_interval, max(self.interval, drain))
        self._blocked = False

    def reset(self) -> None:
        """Forget the frames in flight (a new viewer; the link was reset)."""
        self._in_flight.clear()
        self._blocked = False
