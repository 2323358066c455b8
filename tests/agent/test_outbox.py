"""The durable outbox: nothing is lost, nothing is stored twice, order is kept."""

import json
import subprocess
import sys

import pytest

from agent.outbox import MAX_BODY_BYTES, Outbox


@pytest.fixture
def outbox(tmp_path):
    box = Outbox(tmp_path / "outbox.db")
    yield box
    box.close()


def test_messages_come_out_oldest_first_with_their_bodies(outbox):
    keys = [outbox.put("event", {"n": i}) for i in range(5)]
    items = outbox.pending()
    assert [i.key for i in items] == keys
    assert [i.body["n"] for i in items] == list(range(5))
    assert all(i.kind == "event" for i in items)


def test_same_key_is_stored_once(outbox):
    outbox.put("event", {"n": 1}, key="k1")
    outbox.put("event", {"n": 2}, key="k1")
    assert len(outbox) == 1
    assert outbox.pending()[0].body == {"n": 1}


def test_remove_only_forgets_the_acknowledged_message(outbox):
    a = outbox.put("event", {"n": 1})
    b = outbox.put("event", {"n": 2})
    outbox.remove(a)
    assert [i.key for i in outbox.pending()] == [b]


def test_pending_skips_messages_in_flight(outbox):
    keys = [outbox.put("event", {"n": i}) for i in range(4)]
    items = outbox.pending(limit=2, exclude=frozenset(keys[:2]))
    assert [i.key for i in items] == keys[2:]


def test_oversized_body_is_refused_and_not_stored(outbox):
    with pytest.raises(ValueError, match="exceeds"):
        outbox.put("event", {"blob": "x" * (MAX_BODY_BYTES + 1)})
    assert len(outbox) == 0


def test_non_json_values_are_refused(outbox):
    with pytest.raises(ValueError):
        outbox.put("event", {"nan": float("nan")})
    assert len(outbox) == 0


def test_message_survives_a_killed_writer(tmp_path):
    """put() returning means the message is on disk, even if the process dies at once."""
    path = tmp_path / "outbox.db"
    code = (
        "import os; from agent.outbox import Outbox; "
        f"box = Outbox(__import__('pathlib').Path({str(path)!r})); "
        "print(box.put('event', {'from': 'child'}), flush=True); os._exit(9)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 9
    key = result.stdout.strip()
    box = Outbox(path)
    try:
        assert [(i.key, i.body) for i in box.pending()] == [(key, {"from": "child"})]
    finally:
        box.close()


def test_two_processes_share_one_outbox(tmp_path):
    path = tmp_path / "outbox.db"
    box = Outbox(path)
    code = (
        "from agent.outbox import Outbox; import pathlib; "
        f"b = Outbox(pathlib.Path({str(path)!r})); "
        "[b.put('event', {'n': i}) for i in range(50)]"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(3)]
    for i in range(50):
        box.put("event", {"n": i, "parent": True})
    assert all(p.wait(timeout=60) == 0 for p in procs)
    try:
        items = box.pending(limit=1000)
        assert len(items) == 200
        assert len({i.key for i in items}) == 200
        assert sum(1 for i in items if i.body.get("parent")) == 50
        assert json.dumps(items[0].body)
    finally:
        box.close()
