"""Flow control: bounded frames in flight, quality and rate follow the acks."""

from __future__ import annotations

from agent.remote.pacing import Pacer


def run(pacer: Pacer, seconds: float, size: int, link_bps: float, latency: float) -> dict:
    """Simulate a link carrying ``link_bps`` bytes/s with one-way ``latency``; returns stats."""
    now, seq = 0.0, 0
    link_free = 0.0
    acks: list[tuple[float, int]] = []
    max_in_flight = 0
    sent = 0
    while now < seconds:
        while acks and acks[0][0] <= now:
            at, done = acks.pop(0)
            pacer.acked(done, at)
        delay = pacer.delay(now)
        if delay is not None and delay <= 0:
            pacer.sent(seq, size, now)
            sent += 1
            link_free = max(link_free, now) + size / link_bps
            acks.append((link_free + 2 * latency, seq))
            seq += 1
            max_in_flight = max(max_in_flight, pacer.in_flight)
        now += 0.001
    return {"sent": sent, "max_in_flight": max_in_flight, "quality": pacer.quality}


def test_in_flight_is_bounded_and_a_slow_link_lowers_quality_and_rate():
    pacer = Pacer(max_in_flight=3, quality=70, min_quality=20)
    stats = run(pacer, 10, 100_000, link_bps=200_000, latency=0.02)
    assert stats["max_in_flight"] <= 3
    assert stats["quality"] < 70
    assert stats["sent"] <= 10 * 200_000 / 100_000 + 3  # no growing queue
    assert pacer.throughput is not None and 100_000 < pacer.throughput < 400_000
    assert pacer.interval >= 0.4


def test_quick_acks_keep_full_rate_and_quality():
    pacer = Pacer(max_in_flight=3, quality=70, min_interval=1 / 30)
    stats = run(pacer, 5, 20_000, link_bps=50_000_000, latency=0.002)
    assert stats["quality"] == 70
    assert stats["sent"] >= 5 * 30 * 0.9


def test_quality_recovers_when_acks_are_quick_again():
    pacer = Pacer(quality=70, min_quality=20, step=10, quick_acks=4)
    t = 0.0
    for seq in range(5):  # late acks
        pacer.sent(seq, 50_000, t)
        pacer.acked(seq, t + (0.01 if seq == 0 else 0.5))
        t += 1
    assert pacer.quality <= 40
    low = pacer.quality
    for seq in range(5, 60):
        pacer.sent(seq, 5_000, t)
        pacer.acked(seq, t + 0.01)
        t += 0.05
    assert pacer.quality > low
    assert pacer.quality == 70
    assert pacer.interval < 0.05


def test_window_full_means_wait_and_acks_free_it():
    pacer = Pacer(max_in_flight=2, min_interval=0)
    pacer.sent(1, 1000, 0.0)
    pacer.sent(2, 1000, 0.0)
    assert pacer.delay(0.0) is None and not pacer.may_send(0.0)
    pacer.acked(2, 0.01)  # acks frame 1 too
    assert pacer.in_flight == 0 and pacer.may_send(0.02)
    pacer.acked(7, 0.03)  # unknown: ignored
    assert pacer.rtt is not None


def test_a_long_but_fast_path_keeps_quality():
    """RTT 200 ms on a fat link: the window bounds the rate, quality stays."""
    pacer = Pacer(max_in_flight=3, quality=70, min_interval=1 / 60)
    stats = run(pacer, 5, 20_000, link_bps=50_000_000, latency=0.1)
    assert stats["max_in_flight"] <= 3
    assert stats["quality"] == 70
    assert stats["sent"] >= 5 * 3 / 0.2 * 0.8  # about a window per RTT
